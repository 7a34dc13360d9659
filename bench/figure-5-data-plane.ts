// Figure 5: the data plane. wrk through nginx running dispatcher's configuration (1000×10) against
// the same nginx binary running a minimal hand-written reverse proxy with upstream keepalive to the
// same pod addresses, and against that proxy sending the headers SPEC §3 requires, in one run.
// What makes the comparison hold on a small shared machine:
// - the same settings on every side: one worker each (dispatcher's `worker_processes auto` is the
//   one line changed in its text), the same backend, the same wrk;
// - the nginx under test alone on the last CPU, wrk and the backend on the others (taskset), so
//   every side gets the same CPU and the client never takes it from the proxy;
// - rounds of one second, the three sides in each of their six orders in turn, and every figure a
//   median of per-round ratios, so that the load of other work cancels out;
// - beside req/s, the worker's CPU time per request (schedstat, ns), which does not depend on how
//   much of the CPU other work left over.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { freePort } from '../test/support/nginx.js';
import { pipelineFor } from './configs.js';
import {
  type BenchNginx,
  cpuAffinity,
  get,
  minimalProxyConfig,
  nginxProcesses,
  pinToCpus,
  processesListeningOn,
  startNginxWith,
  startRenderedNginx,
  workerCpuMs,
} from './nginx.js';
import { type FigureResult, type Row, roundSummary, type Summary, summarize } from './stats.js';
import {
  API_KEY_HEADER,
  apiKeyHeaderValue,
  apiKeyOf,
  buildCluster,
  hasSecret,
  namespaceName,
  type Ports,
  publicHost,
  type Size,
  sizeLabel,
} from './workload.js';
import { runWrk, type WrkResult } from './wrk.js';

export interface DataPlaneOptions {
  size: Size;
  /** Cycles of six 1 s rounds (each order of the three sides once) per route. */
  cycles: number;
  connections: number;
}

const TARGET_RATIO = 0.95;
const ROUND_SECONDS = 1;
const WORKER_PROCESSES = 1;

type Side = 'dispatcher' | 'minimal' | 'headers';
const SIDES: readonly Side[] = ['dispatcher', 'minimal', 'headers'];
/** Every order of the three sides: a cycle of six rounds puts each side first, second and last twice. */
const ORDERS: readonly (readonly Side[])[] = [
  ['dispatcher', 'minimal', 'headers'],
  ['headers', 'minimal', 'dispatcher'],
  ['minimal', 'headers', 'dispatcher'],
  ['dispatcher', 'headers', 'minimal'],
  ['headers', 'dispatcher', 'minimal'],
  ['minimal', 'dispatcher', 'headers'],
];

interface Route {
  label: string;
  host: string;
  headers: Record<string, string>;
  servers: string[];
  apiKey?: string;
}

/** Where each part runs: undefined when the machine has one CPU or no taskset (nothing pinned). */
interface Placement {
  proxy: string;
  client: string;
}

interface Run {
  wrk: WrkResult;
  /** Worker CPU time per request, µs. */
  cpuMicroseconds: number;
  /** Share of the proxy's CPU and of the client's CPUs that was busy (any process) during the run. */
  busy: { proxy: number; client: number };
}

export async function dataPlaneFigure(ports: Ports, options: DataPlaneOptions): Promise<FigureResult> {
  const dispatcherPort = await freePort();
  const { table, text } = pipelineFor(buildCluster(options.size, ports), dispatcherPort).renderNow();
  const serversOf = (ns: number): string[] =>
    table.upstreams
      .find((u) => u.namespace === namespaceName(ns) && u.basePath === '/')
      ?.servers.map((s) => s.address) ?? [];
  const keyed = [...Array(options.size.namespaces).keys()].find(hasSecret) ?? 1;
  const key = apiKeyHeaderValue(apiKeyOf(keyed));
  const routes: Route[] = [
    { label: 'plain route', host: publicHost(0), headers: {}, servers: serversOf(0) },
    {
      label: 'API-key route',
      host: publicHost(keyed),
      headers: { [API_KEY_HEADER]: key },
      servers: serversOf(keyed),
      apiKey: key,
    },
  ];
  const otherPorts = await distinctFreePorts(dispatcherPort, 2);
  const minimalFor = (port: number, specHeaders: boolean): string =>
    minimalProxyConfig({
      port,
      workerProcesses: WORKER_PROCESSES,
      specHeaders,
      routes: routes.map((r) => ({
        host: r.host,
        servers: r.servers,
        ...(r.apiKey && { apiKey: r.apiKey }),
      })),
    });
  const portOf: Record<Side, number> = {
    dispatcher: dispatcherPort,
    minimal: otherPorts[0] as number,
    headers: otherPorts[1] as number,
  };
  const placement = placementFor(cpus().length);
  const rounds = Math.max(1, Math.round(options.cycles)) * ORDERS.length;

  const started: BenchNginx[] = [];
  const backendPids = processesListeningOn(ports.web);
  const backendAffinity = cpuAffinity(backendPids);
  try {
    const servesRoot = (port: number) => async () =>
      (await get(port, routes[0]?.host ?? '', '/')).status === 200;
    const dispatcherNginx = await startRenderedNginx(
      withWorkers(text, WORKER_PROCESSES),
      dispatcherPort,
      "nginx with dispatcher's configuration",
    );
    started.push(dispatcherNginx);
    const minimalNginx = await startNginxWith(
      minimalFor(portOf.minimal, false),
      servesRoot(portOf.minimal),
      'nginx with the minimal configuration',
    );
    started.push(minimalNginx);
    const headersNginx = await startNginxWith(
      minimalFor(portOf.headers, true),
      servesRoot(portOf.headers),
      'nginx with the minimal configuration and the SPEC headers',
    );
    started.push(headersNginx);
    const masterOf: Record<Side, number> = {
      dispatcher: dispatcherNginx.master.pid,
      minimal: minimalNginx.master.pid,
      headers: headersNginx.master.pid,
    };
    if (placement) {
      for (const side of SIDES) pinToCpus(nginxProcesses(masterOf[side]), placement.proxy);
      pinToCpus(backendPids, placement.client);
      if (backendPids.length === 0)
        process.stdout.write('  note: backend not found by its port; not pinned\n');
    }
    await checkAnswers(routes, portOf);

    const rows: Row[] = [];
    const data: Record<string, unknown> = {
      ...options,
      size: sizeLabel(options.size),
      rounds,
      roundSeconds: ROUND_SECONDS,
      workerProcesses: WORKER_PROCESSES,
      placement: placement ?? 'not pinned (one CPU or no taskset)',
      backendProcessesPinned: placement ? backendPids.length : 0,
    };
    for (const route of routes) {
      const measure = async (side: Side, seconds: number): Promise<Run> => {
        const cpuBefore = workerCpuMs(masterOf[side]);
        const busyBefore = cpuTimes();
        const wrk = await runWrk({
          port: portOf[side],
          host: route.host,
          headers: route.headers,
          seconds,
          connections: options.connections,
          ...(placement && { cpus: placement.client }),
        });
        const busy = busyShare(busyBefore, cpuTimes(), placement);
        const cpuMs = workerCpuMs(masterOf[side]) - cpuBefore;
        return { wrk, cpuMicroseconds: (cpuMs * 1000) / Math.max(1, wrk.requests), busy };
      };
      for (const side of SIDES) await measure(side, 1); // warm-up: connections to the pods, caches
      const runs: Record<Side, Run[]> = { dispatcher: [], minimal: [], headers: [] };
      for (let round = 0; round < rounds; round++) {
        for (const side of ORDERS[round % ORDERS.length] ?? SIDES)
          runs[side].push(await measure(side, ROUND_SECONDS));
      }
      const result = compare(runs);
      rows.push(...rowsFor(route.label, rounds, result));
      data[route.label] = { ...result.data, upstreamServers: route.servers.length };
      process.stdout.write(
        `  figure 5: ${route.label}: dispatcher/minimal req/s per round ${result.perRound.map((r) => r.toFixed(2)).join(' ')}; median busy share proxy CPU ${result.busy.proxy.toFixed(2)}, client CPUs ${result.busy.client.toFixed(2)}\n`,
      );
    }
    return { rows, data };
  } finally {
    for (const nginx of started) await nginx.stop();
    for (const [pid, cpuList] of backendAffinity) {
      try {
        pinToCpus([pid], cpuList);
      } catch {
        // the backend is gone
      }
    }
  }
}

interface Comparison {
  perRound: number[];
  busy: { proxy: number; client: number };
  failures: number;
  /** Per-round ratios: req/s (higher is better for the numerator) and CPU per request (inverted). */
  ratios: Record<
    'dispatcherVsMinimal' | 'dispatcherVsHeaders' | 'headersVsMinimal',
    { rps: Summary; cpu: Summary }
  >;
  medians: Record<Side, { rps: number; p99Ms: number; cpuMicroseconds: number }>;
  data: Record<string, unknown>;
}

function compare(runs: Record<Side, Run[]>): Comparison {
  const perRound = (a: Side, b: Side) => ({
    rps: runs[a].map(
      (run, i) => run.wrk.requestsPerSecond / (runs[b][i]?.wrk.requestsPerSecond ?? Number.NaN),
    ),
    // The cheaper side's CPU per request over the other's: reads like a throughput ratio.
    cpu: runs[a].map((run, i) => (runs[b][i]?.cpuMicroseconds ?? Number.NaN) / run.cpuMicroseconds),
  });
  const pairs = {
    dispatcherVsMinimal: perRound('dispatcher', 'minimal'),
    dispatcherVsHeaders: perRound('dispatcher', 'headers'),
    headersVsMinimal: perRound('headers', 'minimal'),
  };
  const ratios = Object.fromEntries(
    Object.entries(pairs).map(([name, p]) => [name, { rps: summarize(p.rps), cpu: summarize(p.cpu) }]),
  ) as Comparison['ratios'];
  const median = (side: Side, of: (run: Run) => number) => summarize(runs[side].map(of)).median;
  const medians = Object.fromEntries(
    SIDES.map((side) => [
      side,
      {
        rps: median(side, (r) => r.wrk.requestsPerSecond),
        p99Ms: median(side, (r) => r.wrk.latencyP99Ms),
        cpuMicroseconds: median(side, (r) => r.cpuMicroseconds),
      },
    ]),
  ) as Comparison['medians'];
  const all = SIDES.flatMap((side) => runs[side]);
  const failures = all.reduce(
    (sum, { wrk: r }) =>
      sum + r.non2xx + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout,
    0,
  );
  const busy = {
    proxy: summarize(all.map((r) => r.busy.proxy)).median,
    client: summarize(all.map((r) => r.busy.client)).median,
  };
  const data = {
    ratios: Object.fromEntries(
      Object.entries(ratios).map(([name, r]) => [
        name,
        { requestsPerSecond: roundSummary(r.rps, 3), cpuPerRequest: roundSummary(r.cpu, 3) },
      ]),
    ),
    ...Object.fromEntries(
      SIDES.map((side) => [
        side,
        {
          requestsPerSecond: roundSummary(summarize(runs[side].map((r) => r.wrk.requestsPerSecond)), 0),
          p99Ms: roundSummary(summarize(runs[side].map((r) => r.wrk.latencyP99Ms)), 2),
          workerCpuMicrosecondsPerRequest: roundSummary(
            summarize(runs[side].map((r) => r.cpuMicroseconds)),
            2,
          ),
        },
      ]),
    ),
    busyShare: { proxyCpu: busy.proxy, clientCpus: busy.client },
    failedRequests: failures,
  };
  return { perRound: pairs.dispatcherVsMinimal.rps, busy, failures, ratios, medians, data };
}

function rowsFor(label: string, rounds: number, c: Comparison): Row[] {
  const { dispatcher: d, minimal: m, headers: h } = c.medians;
  const range = (s: Summary) => `${s.median.toFixed(3)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
  const vsMinimal = c.ratios.dispatcherVsMinimal;
  return [
    {
      figure: 5,
      name: `data plane, ${label}: dispatcher / minimal req/s (median of ${rounds} rounds)`,
      value: `${range(vsMinimal.rps)}; ${k(d.rps)} vs ${k(m.rps)} req/s; p99 ${d.p99Ms.toFixed(2)} vs ${m.p99Ms.toFixed(2)} ms; CPU per request ${vsMinimal.cpu.median.toFixed(3)} (${d.cpuMicroseconds.toFixed(1)} vs ${m.cpuMicroseconds.toFixed(1)} µs)${c.failures ? `; ${c.failures} failed requests` : ''}`,
      target: `≥ ${TARGET_RATIO}`,
      met: vsMinimal.rps.median >= TARGET_RATIO && c.failures === 0,
    },
    {
      figure: 5,
      name: `data plane, ${label}: the gap in two parts, req/s and CPU per request ratios`,
      value: `SPEC §3 headers (minimal with them / minimal): ${c.ratios.headersVsMinimal.rps.median.toFixed(3)}, CPU ${c.ratios.headersVsMinimal.cpu.median.toFixed(3)} (${h.cpuMicroseconds.toFixed(1)} µs); the rest of dispatcher's configuration (dispatcher / minimal with them): ${c.ratios.dispatcherVsHeaders.rps.median.toFixed(3)}, CPU ${c.ratios.dispatcherVsHeaders.cpu.median.toFixed(3)}`,
      target: '',
      met: null,
    },
  ];
}

/** Every side answers every route from one of the route's pods, and keyed routes refuse a wrong key. */
async function checkAnswers(routes: readonly Route[], portOf: Record<Side, number>): Promise<void> {
  for (const route of routes) {
    for (const side of SIDES) {
      const answer = await get(portOf[side], route.host, '/', route.headers);
      const from = answer.body.split(':')[0] ?? '';
      if (answer.status !== 200 || !route.servers.some((s) => s.startsWith(`${from}:`))) {
        throw new Error(`${side} ${route.label}: unexpected answer ${answer.status} ${answer.body}`);
      }
      if (
        route.apiKey &&
        (await get(portOf[side], route.host, '/', { [API_KEY_HEADER]: 'wrong' })).status !== 403
      ) {
        throw new Error(`${side}: the keyed route accepts a wrong key`);
      }
    }
  }
}

/** dispatcher's text with the worker count of the other sides: the one line the bench changes. */
function withWorkers(text: string, workers: number): string {
  const pattern = /^worker_processes auto;$/m;
  if (!pattern.test(text)) throw new Error("dispatcher's configuration has no `worker_processes auto;` line");
  return text.replace(pattern, `worker_processes ${workers};`);
}

/** The nginx under test on the last CPU, the client and the backend on the others. */
function placementFor(cpuCount: number): Placement | undefined {
  if (cpuCount < 2 || spawnSync('taskset', ['--version']).status !== 0) return undefined;
  const last = cpuCount - 1;
  return { proxy: String(last), client: last === 1 ? '0' : `0-${last - 1}` };
}

/** Busy and total jiffies per CPU, from /proc/stat. */
function cpuTimes(): { busy: number; total: number }[] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((line) => /^cpu\d+ /.test(line))
    .map((line) => {
      const fields = line.trim().split(/\s+/).slice(1).map(Number);
      const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal; guest is inside user
      const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
      return { busy: total - idle, total };
    });
}

function busyShare(
  before: ReturnType<typeof cpuTimes>,
  after: ReturnType<typeof cpuTimes>,
  placement: Placement | undefined,
): { proxy: number; client: number } {
  const share = (indexes: number[]) => {
    let busy = 0;
    let total = 0;
    for (const i of indexes) {
      busy += (after[i]?.busy ?? 0) - (before[i]?.busy ?? 0);
      total += (after[i]?.total ?? 0) - (before[i]?.total ?? 0);
    }
    return total > 0 ? busy / total : Number.NaN;
  };
  const everyCpu = [...after.keys()];
  if (!placement) return { proxy: share(everyCpu), client: share(everyCpu) };
  const proxy = Number(placement.proxy);
  return { proxy: share([proxy]), client: share(everyCpu.filter((i) => i !== proxy)) };
}

async function distinctFreePorts(taken: number, count: number): Promise<number[]> {
  const found: number[] = [];
  while (found.length < count) {
    const port = await freePort();
    if (port !== taken && !found.includes(port)) found.push(port);
  }
  return found;
}

function k(requestsPerSecond: number): string {
  return `${(requestsPerSecond / 1000).toFixed(1)}k`;
}
