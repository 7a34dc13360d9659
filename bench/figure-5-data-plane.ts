// Figure 5: the data plane. wrk through nginx running dispatcher's configuration (10,000 pods,
// 1000×10) against the same nginx binary running a minimal hand-written reverse proxy with upstream
// keepalive to the same pod addresses, in one run: rounds alternate which goes first, and the figure
// is the median of the per-round ratios, so that drift of a shared machine cancels out.
import { freePort } from '../test/support/nginx.js';
import { pipelineFor } from './configs.js';
import {
  type BenchNginx,
  get,
  minimalProxyConfig,
  startNginxWith,
  startRenderedNginx,
  workerCpuMs,
} from './nginx.js';
import { type FigureResult, type Row, round, roundSummary, summarize } from './stats.js';
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
  rounds: number;
  seconds: number;
  connections: number;
}

const TARGET_RATIO = 0.95;

interface Route {
  label: string;
  host: string;
  headers: Record<string, string>;
  servers: string[];
  apiKey?: string;
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
  let minimalPort = await freePort();
  while (minimalPort === dispatcherPort) minimalPort = await freePort();
  const minimalText = minimalProxyConfig({
    port: minimalPort,
    routes: routes.map((r) => ({ host: r.host, servers: r.servers, ...(r.apiKey && { apiKey: r.apiKey }) })),
  });

  const started: BenchNginx[] = [];
  try {
    started.push(await startRenderedNginx(text, dispatcherPort, "nginx with dispatcher's configuration"));
    started.push(
      await startNginxWith(
        minimalText,
        async () => (await get(minimalPort, routes[0]?.host ?? '', '/')).status === 200,
        'nginx with the minimal configuration',
      ),
    );
    const [dispatcherNginx, minimalNginx] = started;
    if (!dispatcherNginx || !minimalNginx) throw new Error('nginx did not start');
    const targets = [
      { name: 'dispatcher', port: dispatcherPort, pid: dispatcherNginx.master.pid },
      { name: 'minimal', port: minimalPort, pid: minimalNginx.master.pid },
    ] as const;
    // Both answer every route from one of the route's pods, and the keyed route refuses a wrong key.
    for (const route of routes) {
      for (const target of targets) {
        const answer = await get(target.port, route.host, '/', route.headers);
        const from = answer.body.split(':')[0] ?? '';
        if (answer.status !== 200 || !route.servers.some((s) => s.startsWith(`${from}:`))) {
          throw new Error(`${target.name} ${route.label}: unexpected answer ${answer.status} ${answer.body}`);
        }
      }
      if (
        route.apiKey &&
        (await get(dispatcherPort, route.host, '/', { [API_KEY_HEADER]: 'wrong' })).status !== 403
      ) {
        throw new Error('dispatcher: the keyed route accepts a wrong key');
      }
    }

    const rows: Row[] = [];
    const data: Record<string, unknown> = { ...options, size: sizeLabel(options.size) };
    for (const route of routes) {
      const runs: Record<'dispatcher' | 'minimal', WrkResult[]> = { dispatcher: [], minimal: [] };
      const cpu: Record<'dispatcher' | 'minimal', number[]> = { dispatcher: [], minimal: [] };
      for (const target of targets) {
        await runWrk({
          port: target.port,
          host: route.host,
          headers: route.headers,
          seconds: 1,
          connections: options.connections,
        });
      }
      for (let round = 0; round < options.rounds; round++) {
        const order = round % 2 === 0 ? targets : [...targets].reverse();
        for (const target of order) {
          const cpuBefore = workerCpuMs(target.pid);
          const result = await runWrk({
            port: target.port,
            host: route.host,
            headers: route.headers,
            seconds: options.seconds,
            connections: options.connections,
          });
          runs[target.name].push(result);
          cpu[target.name].push(
            ((workerCpuMs(target.pid) - cpuBefore) * 1000) / Math.max(1, result.requests),
          );
        }
      }
      const ratios = runs.dispatcher.map(
        (d, i) => d.requestsPerSecond / (runs.minimal[i]?.requestsPerSecond ?? Number.NaN),
      );
      const p99Ratios = runs.dispatcher.map(
        (d, i) => (runs.minimal[i]?.latencyP99Ms ?? Number.NaN) / d.latencyP99Ms,
      );
      const ratio = summarize(ratios);
      const rps = (list: WrkResult[]) => summarize(list.map((r) => r.requestsPerSecond));
      const p99 = (list: WrkResult[]) => summarize(list.map((r) => r.latencyP99Ms));
      const failures = [...runs.dispatcher, ...runs.minimal].reduce(
        (sum, r) => sum + r.non2xx + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout,
        0,
      );
      const d = rps(runs.dispatcher);
      const m = rps(runs.minimal);
      const cpuD = summarize(cpu.dispatcher);
      const cpuM = summarize(cpu.minimal);
      rows.push({
        figure: 5,
        name: `data plane, ${route.label}: dispatcher / minimal req/s (median of ${options.rounds} paired runs)`,
        value: `${ratio.median.toFixed(3)} (${k(d.median)} vs ${k(m.median)} req/s; p99 ${p99(runs.dispatcher).median.toFixed(2)} vs ${p99(runs.minimal).median.toFixed(2)} ms; nginx CPU ${cpuD.median.toFixed(1)} vs ${cpuM.median.toFixed(1)} µs/request)${failures ? `; ${failures} failed requests` : ''}`,
        target: `≥ ${TARGET_RATIO}`,
        met: ratio.median >= TARGET_RATIO && failures === 0,
      });
      data[route.label] = {
        ratio: roundSummary(ratio, 3),
        p99RatioMinimalOverDispatcher: roundSummary(summarize(p99Ratios), 3),
        dispatcher: { requestsPerSecond: roundSummary(d, 0), p99Ms: roundSummary(p99(runs.dispatcher), 2) },
        minimal: { requestsPerSecond: roundSummary(m, 0), p99Ms: roundSummary(p99(runs.minimal), 2) },
        workerCpuMicrosecondsPerRequest: {
          dispatcher: roundSummary(cpuD, 2),
          minimal: roundSummary(cpuM, 2),
        },
        failedRequests: failures,
        upstreamServers: route.servers.length,
      };
      process.stdout.write(
        `  figure 5: ${route.label}: ratio ${ratios.map((r) => round(r, 3)).join(', ')}; dispatcher ${k(d.median)} req/s, minimal ${k(m.median)} req/s\n`,
      );
    }
    return { rows, data };
  } finally {
    for (const nginx of started) await nginx.stop();
  }
}

function k(requestsPerSecond: number): string {
  return `${(requestsPerSecond / 1000).toFixed(1)}k`;
}
