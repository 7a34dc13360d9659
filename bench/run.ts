// `npm run bench [-- --quick] [-- --only 1,5]`: runs the six figures of the benchmark issue, prints
// each beside its target as a Markdown table, and writes the same figures to
// bench/results/latest.json (and a timestamped copy) for comparison between runs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/support/nginx.js';
import { planRenderFigure } from './figure-1-render.js';
import { eventToServedFigure } from './figure-2-latency.js';
import { churnFigure, memoryAfterListRow } from './figure-3-memory.js';
import { reloadCostFigure, reloadCountFigure } from './figure-4-reloads.js';
import { dataPlaneFigure } from './figure-5-data-plane.js';
import { reloadUnderLoadFigure } from './figure-6-reload-under-load.js';
import { type LiveCluster, type LiveClusterOptions, startLiveCluster } from './live-cluster.js';
import { machineFacts } from './machine.js';
import { type BenchNginx, startBackend } from './nginx.js';
import type { FigureResult, Row } from './stats.js';
import { type Ports, type Size, sizeLabel } from './workload.js';

interface Profile {
  renderRuns: number;
  reloadRuns: number;
  live: Size;
  /** Figure 2 once more with the same pods behind few upstreams, where nginx's reload is cheap. */
  fewUpstreams?: Size;
  batchWindowMs: number;
  latencyEvents: number;
  quietEvents: number;
  burst: number;
  churnEvents: number;
  dataPlane: { size: Size; cycles: number; connections: number };
  underLoad: { size: Size; seconds: number; everyMs: number; connections: number; rounds: number };
}

const FULL: Profile = {
  renderRuns: 7,
  reloadRuns: 5,
  live: { namespaces: 1000, podsPerNamespace: 10 },
  fewUpstreams: { namespaces: 10, podsPerNamespace: 1000 },
  batchWindowMs: 2000,
  latencyEvents: 21,
  quietEvents: 1000,
  burst: 5000,
  churnEvents: 50_000,
  dataPlane: { size: { namespaces: 1000, podsPerNamespace: 10 }, cycles: 2, connections: 32 },
  underLoad: {
    size: { namespaces: 10, podsPerNamespace: 1000 },
    seconds: 20,
    everyMs: 500,
    connections: 16,
    rounds: 4,
  },
};

const QUICK: Profile = {
  renderRuns: 5,
  reloadRuns: 2,
  live: { namespaces: 100, podsPerNamespace: 10 },
  batchWindowMs: 2000,
  latencyEvents: 6,
  quietEvents: 200,
  burst: 500,
  churnEvents: 5000,
  dataPlane: { size: { namespaces: 100, podsPerNamespace: 10 }, cycles: 1, connections: 32 },
  underLoad: {
    size: { namespaces: 10, podsPerNamespace: 100 },
    seconds: 6,
    everyMs: 500,
    connections: 16,
    rounds: 2,
  },
};

/** Seconds each figure and each live controller's start took: the whole run must stay under ten minutes. */
const durations: Record<string, number> = {};

const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RESULTS_DIR = join(PACKAGE_ROOT, 'bench', 'results');

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } },
  });
  const profile = values.quick ? QUICK : FULL;
  const only = new Set((values.only ?? '1,2,3,4,5,6').split(',').map((f) => Number(f.trim())));
  const wanted = (figure: number): boolean => only.has(figure);
  const began = Date.now();
  const machine = machineFacts();
  process.stdout.write(
    `dispatcher bench (${values.quick ? 'quick' : 'full'}): ${machine.cpus} CPUs, load ${machine.loadAtStart.join(' ')}, node ${process.version}, ${machine.nginx}, kernel ${machine.kernel}\n` +
      `  fresh memory: ${machine.freshMemory.megabytes} MB written in ${machine.freshMemory.ms} ms (${machine.freshMemory.usPerPage} µs per 4 KB page; nginx's reload times follow it)\n`,
  );
  if (machine.loadAtStart[0] !== undefined && machine.loadAtStart[0] > machine.cpus * 0.5) {
    process.stdout.write('  note: the machine is busy with other work; figures will be noisier and slower\n');
  }

  const rows: Row[] = [];
  const figures: Record<string, unknown> = {};
  const errors: string[] = [];
  async function figure(number: number, name: string, run: () => Promise<FigureResult>): Promise<void> {
    process.stdout.write(`figure ${number}: ${name}\n`);
    const figureBegan = performance.now();
    try {
      const result = await run();
      rows.push(...result.rows);
      figures[`${number}:${name}`] = result.data;
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      errors.push(`figure ${number} (${name}): ${message}`);
      process.stdout.write(`  failed: ${message}\n`);
      rows.push({ figure: number, name, value: 'failed (see errors)', target: '', met: false });
    } finally {
      const seconds = secondsSince(figureBegan);
      durations[`${number}:${name}`] = seconds;
      process.stdout.write(`  (${seconds} s)\n`);
    }
  }

  if (wanted(1)) await figure(1, 'plan + render time', () => planRenderFigure({ runs: profile.renderRuns }));
  if (wanted(4))
    await figure(4, 'nginx -t and reload time per size', () =>
      reloadCostFigure({ runs: profile.reloadRuns }),
    );

  let backend: BenchNginx | undefined;
  const ports = await backendPorts();
  try {
    if (wanted(2) || wanted(3) || wanted(4) || wanted(5) || wanted(6)) backend = await startBackend(ports);
    if (wanted(5)) await figure(5, 'data plane', () => dataPlaneFigure(ports, profile.dataPlane));
    if (wanted(2) || wanted(3) || wanted(4)) {
      // A live controller that does not start fails figures 2-4 but not the rest of the run.
      await liveFigures(profile, ports, wanted, figure).catch((error: unknown) => {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        errors.push(`live controller: ${message}`);
        process.stdout.write(`  failed: ${message}\n`);
        rows.push({
          figure: 2,
          name: 'live controller',
          value: 'failed (see errors)',
          target: '',
          met: false,
        });
      });
    }
    if (wanted(6))
      await figure(6, 'reload under load', () => reloadUnderLoadFigure(ports, profile.underLoad));
  } finally {
    await backend?.stop();
  }

  rows.sort((a, b) => a.figure - b.figure);
  const seconds = Math.round((Date.now() - began) / 1000);
  const report = {
    startedAt: new Date(began).toISOString(),
    seconds,
    profile: values.quick ? 'quick' : 'full',
    machine: { ...machine, loadAtEnd: loadavg().map((l) => Math.round(l * 100) / 100) },
    rows,
    figures,
    durations,
    errors,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(join(RESULTS_DIR, 'latest.json'), json);
  writeFileSync(join(RESULTS_DIR, `${report.startedAt.replace(/[:.]/g, '-')}-${report.profile}.json`), json);

  process.stdout.write(`\n${table(rows)}\n`);
  process.stdout.write(
    `\n${rows.filter((r) => r.met === true).length} met, ${rows.filter((r) => r.met === false).length} not met, in ${seconds} s (${report.profile}; load ${machine.loadAtStart.join(' ')} → ${report.machine.loadAtEnd.join(' ')}). Written: bench/results/latest.json\n`,
  );
  if (errors.length > 0) process.stdout.write(`\nerrors:\n${errors.join('\n')}\n`);
  return errors.length > 0 ? 1 : 0;
}

/**
 * Figures 2, 3 and 4(b) share one live controller; figure 2 runs again on one without batching, and
 * (full profile) on the same number of pods behind few upstreams.
 */
async function liveFigures(
  profile: Profile,
  ports: Ports,
  wanted: (figure: number) => boolean,
  figure: (number: number, name: string, run: () => Promise<FigureResult>) => Promise<void>,
): Promise<void> {
  process.stdout.write(
    `live controller: ${profile.live.namespaces}×${profile.live.podsPerNamespace} realistic pods, BATCH_WINDOW_MS=${profile.batchWindowMs}\n`,
  );
  const live = await startTimed({ size: profile.live, ports, batchWindowMs: profile.batchWindowMs });
  try {
    const afterList = await live.controller.memory();
    if (wanted(3))
      await figure(3, 'memory after the initial list', async () => memoryAfterListRow(live, afterList));
    if (wanted(2)) {
      await figure(2, `event → served, window ${profile.batchWindowMs} ms`, () =>
        eventToServedFigure(live, { events: profile.latencyEvents, probeBase: 0 }),
      );
    }
    if (wanted(4)) {
      await figure(4, 'reload counts', () =>
        reloadCountFigure(live, { quiet: profile.quietEvents, burst: profile.burst }),
      );
    }
    if (wanted(3)) {
      await figure(3, 'memory after churn', () =>
        churnFigure(live, afterList, { events: profile.churnEvents }),
      );
    }
  } finally {
    await live.stop();
  }
  if (!wanted(2)) return;
  process.stdout.write('live controller: the same, BATCH_WINDOW_MS=0\n');
  const unbatched = await startTimed({ size: profile.live, ports, batchWindowMs: 0 });
  try {
    await figure(2, 'event → served, no batching', () =>
      eventToServedFigure(unbatched, { events: profile.latencyEvents, probeBase: 1000 }),
    );
  } finally {
    await unbatched.stop();
  }
  if (!profile.fewUpstreams) return;
  const few = profile.fewUpstreams;
  process.stdout.write(
    `live controller: ${few.namespaces}×${few.podsPerNamespace} realistic pods, BATCH_WINDOW_MS=${profile.batchWindowMs}\n`,
  );
  const cheap = await startTimed({ size: few, ports, batchWindowMs: profile.batchWindowMs });
  try {
    await figure(2, `event → served, ${few.namespaces}×${few.podsPerNamespace}`, () =>
      eventToServedFigure(cheap, { events: profile.latencyEvents, probeBase: 2000 }),
    );
  } finally {
    await cheap.stop();
  }
}

/** Seconds since `began` (a performance.now() reading), to a tenth. */
function secondsSince(began: number): number {
  return Math.round((performance.now() - began) / 100) / 10;
}

/** A live cluster and controller, with how long the start (the initial list included) took. */
async function startTimed(options: LiveClusterOptions): Promise<LiveCluster> {
  const began = performance.now();
  const live = await startLiveCluster(options);
  const seconds = secondsSince(began);
  durations[`start ${sizeLabel(options.size)}, BATCH_WINDOW_MS=${options.batchWindowMs}`] = seconds;
  process.stdout.write(`  (started in ${seconds} s)\n`);
  return live;
}

async function backendPorts(): Promise<Ports> {
  const web = await freePort();
  let api = await freePort();
  while (api === web) api = await freePort();
  return { web, api };
}

/** The figures as a Markdown table: figure, what, measured, target, met. */
export function table(rows: readonly Row[]): string {
  const cell = (text: string): string => text.replace(/\|/g, '\\|');
  const lines = [
    '| # | figure | measured | target | met |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.figure} | ${cell(r.name)} | ${cell(r.value)} | ${cell(r.target || '—')} | ${r.met === null ? '—' : r.met ? 'yes' : '**no**'} |`,
    ),
  ];
  return lines.join('\n');
}

// Ctrl-C: exit through process.exit so that the exit handlers end the controllers and nginx started here.
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

main().then(
  (code) => {
    process.exitCode = code;
    // Whatever handle lingers (a keep-alive socket), the run is over.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(2);
  },
);
