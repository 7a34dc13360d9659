// Figure 6: reloads under load. wrk on a route while the live controller reloads nginx twice a
// second, driven by real API events (a pod of the route's own upstream going not ready, then ready);
// and the same load against a bare nginx on the same configuration reloaded by `nginx -s reload` at
// the same rate, in segments of a few seconds alternating with the controller's. Two clients run at
// once: wrk with keep-alive connections, and wrk sending `Connection: close` (a new connection per
// request). nginx closes idle keep-alive
// connections when old workers shut down, so keep-alive clients see some resets even with a perfect
// controller: the baseline says how many.
import { freePort } from '../test/support/nginx.js';
import { pipelineFor } from './configs.js';
import { type LiveCluster, startLiveCluster } from './live-cluster.js';
import { type BenchNginx, get, signalReload, startRenderedNginx } from './nginx.js';
import { compareResets } from './resets.js';
import { type FigureResult, sleep } from './stats.js';
import {
  buildCluster,
  type Ports,
  podCount,
  publicHost,
  type Size,
  setReady,
  sizeLabel,
} from './workload.js';
import { errorCount, mergeWrk, runWrk, type WrkResult } from './wrk.js';

export interface ReloadUnderLoadOptions {
  size: Size;
  /** Seconds of load on each side, the controller's and bare nginx's. */
  seconds: number;
  everyMs: number;
  connections: number;
  /** The seconds on each side are split into this many segments, the two sides alternating. */
  rounds: number;
}

/** Load on one side, with the reloads it saw: one segment, or a side's segments joined. */
interface Phase {
  reloads: number;
  keepAlive: WrkResult;
  close: WrkResult;
}

/** The side under load: how to reach it and how to cause a reload on it. */
interface Side {
  port: number;
  /** Called before a segment's load starts. */
  begin(): Promise<void>;
  /** Starts what makes it reload once. */
  reload(): void;
  /** Waits until this segment's reloads are done and counts them. */
  finish(): Promise<number>;
}

const HOST = publicHost(0);

export async function reloadUnderLoadFigure(
  ports: Ports,
  options: ReloadUnderLoadOptions,
): Promise<FigureResult> {
  const rounds = Math.max(1, options.rounds);
  const segmentSeconds = options.seconds / rounds;
  if (!Number.isInteger(segmentSeconds) || segmentSeconds < 2) {
    throw new Error(
      `figure 6: ${options.seconds} s in ${rounds} rounds is not whole segments of 2 s or more`,
    );
  }
  const controllerSegments: Phase[] = [];
  const bareSegments: Phase[] = [];
  const live = await startLiveCluster({ size: options.size, ports, batchWindowMs: 0 });
  let bare: BenchNginx | undefined;
  let idle: Phase;
  try {
    const check = await get(live.port, HOST, '/');
    if (check.status !== 200) throw new Error(`the route does not answer: ${check.status} ${check.body}`);
    await live.settle();
    const barePort = await freePort();
    const { text } = pipelineFor(buildCluster(options.size, ports), barePort).renderNow();
    bare = await startRenderedNginx(text, barePort, 'bare nginx for the reload baseline');
    const controllerSide = liveSide(live, options.size);
    const bareSide = bareNginxSide(bare, barePort);
    // The two sides alternate, each going first in every other round, so that whatever else the
    // machine does in these seconds falls on both alike.
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['controller', 'bare'] as const) : (['bare', 'controller'] as const);
      for (const side of order) {
        if (side === 'controller') {
          controllerSegments.push(await segment(controllerSide, { ...options, seconds: segmentSeconds }));
        } else {
          // Reloaded as often as the controller managed to so far (it goes first in round 0):
          // resets per reload depend on how far apart reloads are (bare nginx here: 2.5-3.6 per
          // reload every 500 ms, 4.9-7.6 about a second apart), so they compare only at the same rate.
          const controllerReloads = controllerSegments.reduce((n, c) => n + c.reloads, 0);
          const everyMs = spacingFor(controllerReloads / controllerSegments.length, segmentSeconds);
          bareSegments.push(await segment(bareSide, { ...options, seconds: segmentSeconds, everyMs }));
        }
      }
    }
    // Without reloads: the load itself resets nothing.
    idle = await segment(bareSide, { ...options, everyMs: 0, seconds: Math.min(options.seconds, 10) });
  } finally {
    await bare?.stop();
    await live.stop();
  }
  const controller = joined(controllerSegments, options.seconds);
  const bareNginx = joined(bareSegments, options.seconds);
  const label = `${sizeLabel(options.size)}, ${options.seconds} s in ${rounds} segments of ${segmentSeconds} s`;
  const non2xx = (phase: Phase): number => phase.keepAlive.non2xx + phase.close.non2xx;
  const resets = (phase: Phase): number => errorCount(phase.keepAlive);
  const perReload = (phase: Phase): number => (phase.reloads > 0 ? resets(phase) / phase.reloads : 0);
  const describe = (phase: Phase): string =>
    `${resets(phase)} in ${phase.reloads} reloads (${perReload(phase).toFixed(1)}/reload)`;
  const resetsOf = (segments: readonly Phase[]) =>
    segments.map((s) => ({ resets: errorCount(s.keepAlive), reloads: s.reloads }));
  const comparison = compareResets(resetsOf(controllerSegments), resetsOf(bareSegments));
  const bySegment = (segments: readonly Phase[]): string =>
    segments.map((s) => `${errorCount(s.keepAlive)}/${s.reloads}`).join(' ');
  process.stdout.write(
    `  figure 6: controller: ${controller.reloads} reloads, non-2xx ${non2xx(controller)}, close-client errors ${errorCount(controller.close)}, keep-alive resets ${resets(controller)} (per segment, resets/reloads: ${bySegment(controllerSegments)}); bare nginx: ${bareNginx.reloads} reloads, non-2xx ${non2xx(bareNginx)}, close-client errors ${errorCount(bareNginx.close)}, keep-alive resets ${resets(bareNginx)} (${bySegment(bareSegments)}); no reload: keep-alive resets ${resets(idle)}\n`,
  );
  return {
    rows: [
      {
        figure: 6,
        name: `reload under load (${label}, ${controller.reloads} controller reloads): non-2xx responses`,
        value: `${non2xx(controller)} (bare nginx: ${non2xx(bareNginx)})`,
        target: '0',
        met: non2xx(controller) === 0,
      },
      {
        figure: 6,
        name: 'reload under load: errors of clients that do not reuse connections',
        value: `${errorCount(controller.close)} of ${controller.close.requests} (bare nginx: ${errorCount(bareNginx.close)})`,
        target: '0',
        met: errorCount(controller.close) === 0,
      },
      {
        figure: 6,
        name: 'reload under load: resets of keep-alive clients, controller vs bare nginx reloaded as often (segments alternating)',
        value: `${describe(controller)} vs ${describe(bareNginx)} (${comparison.excess >= 0 ? '+' : ''}${Math.round(comparison.excess)}, noise 2σ ${Math.round(comparison.twoSigma)}); with no reload at all: ${resets(idle)}`,
        target: '≤ bare nginx per reload (within noise: 2σ)',
        met: comparison.met,
      },
    ],
    data: {
      size: sizeLabel(options.size),
      pods: podCount(options.size),
      seconds: options.seconds,
      rounds,
      everyMs: options.everyMs,
      connectionsPerClient: options.connections,
      controller: { ...phaseData(controller), segments: controllerSegments.map(phaseData) },
      bareNginx: { ...phaseData(bareNginx), segments: bareSegments.map(phaseData) },
      noReload: phaseData(idle),
      keepAliveResetsExcess: Math.round(comparison.excess * 10) / 10,
      keepAliveResetsTwoSigma: Math.round(comparison.twoSigma * 10) / 10,
    },
  };
}

function joined(segments: readonly Phase[], seconds: number): Phase {
  return {
    reloads: segments.reduce((n, s) => n + s.reloads, 0),
    keepAlive: mergeWrk(
      segments.map((s) => s.keepAlive),
      seconds,
    ),
    close: mergeWrk(
      segments.map((s) => s.close),
      seconds,
    ),
  };
}

/** `every` acts from this far into a segment's load until this long before its end. */
const LEAD_IN_MS = 250;
const TAIL_MS = 500;

/** The spacing at which `every` makes `reloads` steps in `seconds` of load (at least one step). */
function spacingFor(reloads: number, seconds: number): number {
  return Math.floor((seconds * 1000 - LEAD_IN_MS - TAIL_MS) / Math.max(1, reloads));
}

/** Both clients on `side` for `options.seconds`, reloading it every `options.everyMs`. */
async function segment(side: Side, options: ReloadUnderLoadOptions): Promise<Phase> {
  await side.begin();
  const common = { port: side.port, host: HOST, seconds: options.seconds, connections: options.connections };
  const load = Promise.all([runWrk(common), runWrk({ ...common, headers: { Connection: 'close' } })]);
  await every(options, () => side.reload());
  const [keepAlive, close] = await load;
  return { reloads: await side.finish(), keepAlive, close };
}

/** Calls `act` every `everyMs` while the load runs (see LEAD_IN_MS); never when `everyMs` is 0. */
async function every(options: ReloadUnderLoadOptions, act: () => void): Promise<void> {
  await sleep(LEAD_IN_MS);
  const acting = options.seconds * 1000 - LEAD_IN_MS - TAIL_MS;
  if (options.everyMs <= 0) {
    await sleep(acting);
    return;
  }
  const began = Date.now();
  const steps = Math.floor(acting / options.everyMs);
  for (let step = 0; step < steps; step++) {
    const due = began + step * options.everyMs;
    if (Date.now() < due) await sleep(due - Date.now());
    act();
  }
}

/** The live controller, reloaded by API events: a pod of the route's upstream not ready, then ready. */
function liveSide(live: LiveCluster, size: Size): Side {
  let steps = 0;
  let appliedBefore = 0;
  return {
    port: live.port,
    async begin() {
      await live.settle();
      appliedBefore = (await live.controller.state()).applied;
    },
    reload() {
      const step = steps;
      steps += 1;
      // Pods of namespace 0 are slots 0..P-1: one goes not ready, then ready again, then the next.
      const pod = live.cluster.pods[Math.floor(step / 2) % size.podsPerNamespace];
      if (!pod) return;
      setReady(pod, step % 2 === 1);
      live.update(pod);
    },
    async finish() {
      await live.settle();
      return (await live.controller.state()).applied - appliedBefore;
    },
  };
}

/** A bare nginx on the same configuration, reloaded by `nginx -s reload`. */
function bareNginxSide(nginx: BenchNginx, port: number): Side {
  let signals: Promise<boolean>[] = [];
  return {
    port,
    async begin() {
      signals = [];
    },
    reload() {
      signals.push(signalReload(nginx));
    },
    async finish() {
      const done = await Promise.all(signals);
      return done.filter(Boolean).length;
    },
  };
}

function phaseData(phase: Phase): Record<string, unknown> {
  const client = (result: WrkResult) => ({
    requests: result.requests,
    requestsPerSecond: Math.round(result.requestsPerSecond),
    p99Ms: result.latencyP99Ms,
    non2xx: result.non2xx,
    errors: result.errors,
  });
  return { reloads: phase.reloads, keepAlive: client(phase.keepAlive), close: client(phase.close) };
}
