// Figure 6: reloads under load. wrk on a route while the live controller reloads nginx twice a
// second, driven by real API events (a pod of the route's own upstream going not ready, then ready);
// then, in the same run, the same load against a bare nginx on the same configuration reloaded by
// `nginx -s reload` at the same rate. Two clients run at once: wrk with keep-alive connections, and
// wrk sending `Connection: close` (a new connection per request). nginx closes idle keep-alive
// connections when old workers shut down, so keep-alive clients see some resets even with a perfect
// controller: the baseline says how many.
import { freePort } from '../test/support/nginx.js';
import { pipelineFor } from './configs.js';
import { startLiveCluster } from './live-cluster.js';
import { get, signalReload, startRenderedNginx } from './nginx.js';
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
import { errorCount, runWrk, type WrkResult } from './wrk.js';

export interface ReloadUnderLoadOptions {
  size: Size;
  seconds: number;
  everyMs: number;
  connections: number;
}

interface Phase {
  reloads: number;
  keepAlive: WrkResult;
  close: WrkResult;
}

const HOST = publicHost(0);

export async function reloadUnderLoadFigure(
  ports: Ports,
  options: ReloadUnderLoadOptions,
): Promise<FigureResult> {
  const controller = await controllerPhase(ports, options);
  // The bare nginx is reloaded as often as the controller managed to: resets per reload depend on
  // how far apart reloads are (bare nginx here: 2.5-3.6 per reload every 500 ms, 4.9-7.6 about
  // a second apart), so they compare only at the same rate. The phase without reloads shows the load
  // itself resets nothing.
  const sameRate = { ...options, everyMs: spacingFor(controller.reloads, options) };
  const bare = await bareNginxPhase(ports, sameRate);
  const idle = await bareNginxPhase(ports, {
    ...options,
    everyMs: 0,
    seconds: Math.min(options.seconds, 10),
  });
  const label = `${sizeLabel(options.size)}, ${options.seconds} s`;
  const non2xx = (phase: Phase): number => phase.keepAlive.non2xx + phase.close.non2xx;
  const resets = (phase: Phase): number => errorCount(phase.keepAlive);
  const perReload = (phase: Phase): number => (phase.reloads > 0 ? resets(phase) / phase.reloads : 0);
  const describe = (phase: Phase): string =>
    `${resets(phase)} in ${phase.reloads} reloads (${perReload(phase).toFixed(1)}/reload)`;
  process.stdout.write(
    `  figure 6: controller: ${controller.reloads} reloads, non-2xx ${non2xx(controller)}, close-client errors ${errorCount(controller.close)}, keep-alive resets ${resets(controller)}; bare nginx: ${bare.reloads} reloads, non-2xx ${non2xx(bare)}, close-client errors ${errorCount(bare.close)}, keep-alive resets ${resets(bare)}; no reload: keep-alive resets ${resets(idle)}\n`,
  );
  return {
    rows: [
      {
        figure: 6,
        name: `reload under load (${label}, ${controller.reloads} controller reloads): non-2xx responses`,
        value: `${non2xx(controller)} (bare nginx: ${non2xx(bare)})`,
        target: '0',
        met: non2xx(controller) === 0,
      },
      {
        figure: 6,
        name: 'reload under load: errors of clients that do not reuse connections',
        value: `${errorCount(controller.close)} of ${controller.close.requests} (bare nginx: ${errorCount(bare.close)})`,
        target: '0',
        met: errorCount(controller.close) === 0,
      },
      {
        figure: 6,
        name: 'reload under load: resets of keep-alive clients, controller vs bare nginx reloaded as often',
        value: `${describe(controller)} vs ${describe(bare)}; with no reload at all: ${resets(idle)}`,
        target: '≤ bare nginx per reload (within counting noise)',
        met: notMoreThan(controller, bare),
      },
    ],
    data: {
      size: sizeLabel(options.size),
      pods: podCount(options.size),
      seconds: options.seconds,
      everyMs: options.everyMs,
      connectionsPerClient: options.connections,
      controller: phaseData(controller),
      bareNginx: { everyMs: sameRate.everyMs, ...phaseData(bare) },
      noReload: phaseData(idle),
    },
  };
}

/**
 * Resets are counts of a random process (which connections happen to be idle when old workers quit).
 * The controller's are "no more than the baseline's" unless they exceed the baseline's, scaled to
 * the same number of reloads, by more than two standard deviations of that counting noise.
 */
function notMoreThan(controller: Phase, bare: Phase): boolean {
  const observed = errorCount(controller.keepAlive);
  if (observed === 0) return true;
  if (bare.reloads === 0) return false;
  const scale = controller.reloads / bare.reloads;
  const expected = errorCount(bare.keepAlive) * scale;
  const sigma = Math.sqrt(observed + errorCount(bare.keepAlive) * scale * scale);
  return observed - expected <= 2 * sigma;
}

function startLoad(port: number, options: ReloadUnderLoadOptions): Promise<[WrkResult, WrkResult]> {
  const common = { port, host: HOST, seconds: options.seconds, connections: options.connections };
  return Promise.all([runWrk(common), runWrk({ ...common, headers: { Connection: 'close' } })]);
}

/** The spacing at which `every` makes `reloads` steps in the load's time (at least one step). */
function spacingFor(reloads: number, options: ReloadUnderLoadOptions): number {
  return Math.floor((options.seconds * 1000 - 750) / Math.max(1, reloads));
}

/**
 * Calls `act` every `everyMs` while the load runs (from a quarter second in, until half a second
 * before its end); never when `everyMs` is 0.
 */
async function every(options: ReloadUnderLoadOptions, act: (step: number) => void): Promise<number> {
  await sleep(250);
  if (options.everyMs <= 0) {
    await sleep(options.seconds * 1000 - 750);
    return 0;
  }
  const began = Date.now();
  const steps = Math.floor((options.seconds * 1000 - 750) / options.everyMs);
  for (let step = 0; step < steps; step++) {
    const due = began + step * options.everyMs;
    if (Date.now() < due) await sleep(due - Date.now());
    act(step);
  }
  return steps;
}

async function controllerPhase(ports: Ports, options: ReloadUnderLoadOptions): Promise<Phase> {
  const live = await startLiveCluster({ size: options.size, ports, batchWindowMs: 0 });
  try {
    const check = await get(live.port, HOST, '/');
    if (check.status !== 200) throw new Error(`the route does not answer: ${check.status} ${check.body}`);
    await live.settle();
    const before = await live.controller.state();
    const load = startLoad(live.port, options);
    const pods = live.cluster.pods;
    await every(options, (step) => {
      // Pods of namespace 0 are slots 0..P-1: one goes not ready, then ready again, then the next.
      const pod = pods[Math.floor(step / 2) % options.size.podsPerNamespace];
      if (!pod) return;
      setReady(pod, step % 2 === 1);
      live.update(pod);
    });
    const [keepAlive, close] = await load;
    await live.settle();
    const after = await live.controller.state();
    return { reloads: after.applied - before.applied, keepAlive, close };
  } finally {
    await live.stop();
  }
}

async function bareNginxPhase(ports: Ports, options: ReloadUnderLoadOptions): Promise<Phase> {
  const port = await freePort();
  const { text } = pipelineFor(buildCluster(options.size, ports), port).renderNow();
  const nginx = await startRenderedNginx(text, port, 'bare nginx for the reload baseline');
  try {
    const load = startLoad(port, options);
    const signals: Promise<boolean>[] = [];
    await every(options, () => signals.push(signalReload(nginx)));
    const reloads = (await Promise.all(signals)).filter(Boolean).length;
    const [keepAlive, close] = await load;
    return { reloads, keepAlive, close };
  } finally {
    await nginx.stop();
  }
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
