// Figure 4: reloads. (a) Per size, what one reload costs nginx: `nginx -t` of the configuration and
// the reload itself (SIGHUP → the new workers serve the new version), with the upstream count, since
// nginx's parse time grows with the square of it; then the same loads through dispatcher's applier,
// by handover (a new master on held sockets) and by signal. (b) Through the live controller: events
// that change nothing routable cause no reload; a burst of routable changes inside one window, one.

import { readFileSync, rmSync } from 'node:fs';
import { freePort } from '../test/support/nginx.js';
import { groupingTemplatesDir } from '../test/support/templates.js';
import { benchConfig, freshVersion, pipelineFor, withVersion } from './configs.js';
import type { LiveCluster } from './live-cluster.js';
import { applyTimed, startBenchApplier, startRenderedNginx } from './nginx.js';
import { type FigureResult, mmm, type Row, roundSummary, summarize } from './stats.js';
import {
  buildCluster,
  bumpRestart,
  NOMINAL_PORTS,
  namespaceName,
  SIZES,
  type Size,
  setReady,
  sizeLabel,
  upstreamCount,
} from './workload.js';

export async function reloadCostFigure(options: { runs: number }): Promise<FigureResult> {
  const rows: Row[] = [];
  const sizes: Record<string, unknown>[] = [];
  const grouping = groupingTemplatesDir(benchConfig().templatesDir);
  const variants = [
    ...SIZES.map((size) => ({ size, label: sizeLabel(size), templatesDir: undefined })),
    // Both hosts of a namespace in one server block (server_name {{serverNames}}): what it saves nginx.
    { size: LARGEST, label: `${sizeLabel(LARGEST)} hosts grouped`, templatesDir: grouping },
  ];
  try {
    for (const { size, label, templatesDir } of variants) {
      const port = await freePort();
      const { text } = pipelineFor(buildCluster(size, NOMINAL_PORTS), port, templatesDir).renderNow();
      const nginx = await startRenderedNginx(text, port, `nginx for ${label}`);
      const tests: number[] = [];
      const reloads: number[] = [];
      let masterRssMb = 0;
      try {
        for (let run = 0; run < options.runs; run++) {
          const timed = await applyTimed(nginx, port, withVersion(text, freshVersion()));
          tests.push(timed.testMs);
          reloads.push(timed.reloadMs);
        }
        masterRssMb = rssMb(nginx.master.pid);
      } finally {
        await nginx.stop();
      }
      // The same loads through dispatcher's applier, both methods at once on two ports, alternating
      // load by load; the first load of each is left out (a master's first reload by signal parses
      // in fresh memory: the steady state is every later one).
      const loads = { handover: [] as number[], signal: [] as number[] };
      const otherPort = await freePort();
      const texts = { handover: text, signal: onPort(text, port, otherPort) };
      const appliers = {
        handover: await startBenchApplier(texts.handover, port, 'handover'),
        signal: await startBenchApplier(texts.signal, otherPort, 'signal'),
      };
      try {
        for (let run = 0; run <= options.runs; run++) {
          for (const method of run % 2 === 0 ? METHODS : [...METHODS].reverse()) {
            const ms = await appliers[method].load(withVersion(texts[method], freshVersion()));
            if (run > 0) loads[method].push(ms);
          }
        }
      } finally {
        await Promise.all([appliers.handover.stop(), appliers.signal.stop()]);
      }
      const test = summarize(tests);
      const reload = summarize(reloads);
      const handover = summarize(loads.handover);
      const signal = summarize(loads.signal);
      const servers = (text.match(/^ {2}server \{$/gm) ?? []).length;
      rows.push({
        figure: 4,
        name: `nginx -t / reload, ${label} (${upstreamCount(size)} upstreams, ${servers} server blocks), min/median/max; dispatcher's load by handover / by signal`,
        value: `-t ${mmm(test)}; reload ${mmm(reload)}; master ${masterRssMb} MB; handover ${mmm(handover)}, signal ${mmm(signal)}`,
        target: '',
        met: null,
      });
      sizes.push({
        size: label,
        upstreams: upstreamCount(size),
        serverBlocks: servers,
        configBytes: Buffer.byteLength(text),
        testMs: roundSummary(test),
        reloadMs: roundSummary(reload),
        masterRssMb,
        applierLoadMs: { handover: roundSummary(handover), signal: roundSummary(signal) },
      });
      process.stdout.write(
        `  figure 4: ${label} (${upstreamCount(size)} upstreams, ${servers} server blocks): nginx -t ${mmm(test)}, reload ${mmm(reload)}, master ${masterRssMb} MB; dispatcher's load: handover ${mmm(handover)}, signal ${mmm(signal)}\n`,
      );
    }
  } finally {
    rmSync(grouping, { recursive: true, force: true });
  }
  return { rows, data: { perSize: sizes } };
}

const LARGEST: Size = { namespaces: 1000, podsPerNamespace: 10 };
const METHODS = ['handover', 'signal'] as const;

/** The configuration listening on `to` wherever it listened on `from`. */
function onPort(text: string, from: number, to: number): string {
  return text.replace(new RegExp(`^(\\s*listen )${from}\\b`, 'gm'), `$1${to}`);
}

/** Resident memory of a process, MB (VmRSS of /proc/<pid>/status). */
function rssMb(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return kb === undefined ? 0 : Math.round(Number(kb) / 1024);
}

export interface ReloadCountOptions {
  /** Events that change nothing routable. */
  quiet: number;
  /** Routable changes sent inside one batch window. */
  burst: number;
}

/**
 * (b) Counted by the controller itself (its `applied` counter: configurations nginx reloaded with).
 * Quiet events: kubelet restart-count updates of pods, an unrelated annotation on namespaces, and a
 * secret field no host references — the last two do change what the store holds (a render runs) but
 * not the configuration, so nothing is reloaded. The burst marks pods not ready, then ready again.
 */
export async function reloadCountFigure(
  live: LiveCluster,
  options: ReloadCountOptions,
): Promise<FigureResult> {
  const { pods, namespaces } = live.cluster;
  await live.settle();
  const before = await live.controller.state();
  for (let e = 0; e < options.quiet; e++) {
    const ns = namespaceName(e % namespaces.length);
    const secret = e % 10 === 9 ? live.api.get('Secret', ns, 'routing') : undefined;
    if (e % 10 === 8) {
      const namespace = live.api.get('Namespace', undefined, ns);
      if (!namespace) throw new Error(`namespace ${ns} is gone`);
      namespace.metadata.annotations = {
        ...namespace.metadata.annotations,
        'example.com/last-audit': `audit-${e}`,
      };
      live.update(namespace);
    } else if (secret) {
      secret.data = { ...secret.data, 'audit-token': Buffer.from(`token-${e}`).toString('base64') };
      live.update(secret);
    } else {
      const pod = pods[(e * 7919) % pods.length];
      if (!pod) continue;
      bumpRestart(pod, e);
      live.update(pod);
    }
  }
  await live.settle();
  const afterQuiet = await live.controller.state();
  const quietReloads = afterQuiet.applied - before.applied;
  const quietRenders = afterQuiet.renders - before.renders;

  const bursts: { reloads: number; batch: number; emitMs: number; renders: number }[] = [];
  const perNamespace = live.size.podsPerNamespace;
  const chosen = pods
    .map((pod, slot) => ({ pod, slot }))
    .filter(({ slot }) => slot % perNamespace < perNamespace / 2)
    .slice(0, options.burst);
  // The API server stores copies: the bench's own objects change in place.
  for (const ready of [false, true]) {
    const start = await live.controller.state();
    const began = performance.now();
    for (const { pod } of chosen) {
      setReady(pod, ready);
      live.update(pod);
    }
    const emitMs = performance.now() - began;
    await live.settle();
    const end = await live.controller.state();
    bursts.push({
      reloads: end.applied - start.applied,
      renders: end.renders - start.renders,
      batch: end.lastBatchSize,
      emitMs: Math.round(emitMs),
    });
  }
  const quietMet = quietReloads === 0;
  const burstMet = bursts.every((b) => b.reloads === 1);
  process.stdout.write(
    `  figure 4: ${options.quiet} quiet events → ${quietReloads} reloads (${quietRenders} renders); bursts of ${chosen.length} → ${bursts.map((b) => `${b.reloads} reload(s), batch ${b.batch}, sent in ${b.emitMs} ms`).join('; ')}\n`,
  );
  return {
    rows: [
      {
        figure: 4,
        name: `${options.quiet.toLocaleString('en')} events changing nothing routable → reloads`,
        value: `${quietReloads} (${quietRenders} renders)`,
        target: '0',
        met: quietMet,
      },
      {
        figure: 4,
        name: `burst of ${chosen.length.toLocaleString('en')} routable changes in one ${live.batchWindowMs} ms window → reloads (not ready; ready again)`,
        value: bursts.map((b) => `${b.reloads}`).join('; '),
        target: '1 each',
        met: burstMet,
      },
    ],
    data: {
      size: sizeLabel(live.size),
      quiet: { events: options.quiet, reloads: quietReloads, renders: quietRenders },
      bursts: bursts.map((b, i) => ({ ready: i === 1, changes: chosen.length, ...b })),
    },
  };
}
