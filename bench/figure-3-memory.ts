// Figure 3: the controller's memory (its own process, after a full GC) once it has listed the
// cluster, and again after churn: pod events as a busy hour brings them — mostly kubelet status
// updates that change nothing routable, and pods replaced by new ones with new names and addresses.
// After the churn, once more when the cluster has been quiet for a while: V8's memory reducer, which
// runs 8 s after a full GC when the program has gone quiet, compacts the old generation and gives
// back the room the churn left between live objects. That is what the controller holds between
// bursts; the reading right after the churn, what it holds at their end.
import type { ChildMemory } from './controller-handle.js';
import type { LiveCluster } from './live-cluster.js';
import { type FigureResult, mb, round, sleep } from './stats.js';
import { bumpRestart, podCount, realisticPod, SPARE_IP_BASE, sizeLabel } from './workload.js';

const RSS_TARGET = 200 * 1024 * 1024;
/** "No growth": the heap after churn within this fraction of the heap after the initial list. */
const GROWTH_TOLERANCE = 0.1;
const CHUNK = 1000;
/** Long enough for V8's memory reducer (--gc-memory-reducer-start-delay-ms, 8000 by default). */
const QUIET_MS = 12_000;

export interface ChurnOptions {
  /** Pod events to cause. */
  events: number;
}

export function memoryAfterListRow(live: LiveCluster, memory: ChildMemory): FigureResult {
  const label = `${sizeLabel(live.size)}, ${podCount(live.size)} realistic pods`;
  const baseline = live.controller.baseline;
  return {
    rows: [
      {
        figure: 3,
        name: `controller memory after the initial list (${label}): RSS, heap`,
        value: `RSS ${mb(memory.rss)}, heap ${mb(memory.heapUsed)} (peak RSS ${mb(memory.peakRss)}; before the list: RSS ${mb(baseline?.rss ?? Number.NaN)}, heap ${mb(baseline?.heapUsed ?? Number.NaN)}; image settings: ${imageSettings(live)})`,
        target: `RSS ≤ ${mb(RSS_TARGET)}`,
        met: memory.rss <= RSS_TARGET,
      },
    ],
    data: {
      imageEnv: live.controller.imageEnv,
      beforeList: baseline && memoryData(baseline),
      afterList: memoryData(memory),
      startMs: round(live.controller.startMs),
    },
  };
}

/**
 * Churn in chunks of about CHUNK events, each followed by a wait until the controller has received
 * all of it (so that nothing waits in buffers when memory is measured). Of every 10 events: 8
 * restart-count updates, and one pod replaced (deleted, then a new one with a new name and address).
 */
export async function churnFigure(
  live: LiveCluster,
  afterList: ChildMemory,
  options: ChurnOptions,
): Promise<FigureResult> {
  const pods = live.cluster.pods;
  const began = performance.now();
  let replacements = 0;
  let midway: ChildMemory | undefined;
  const reloadsBefore = (await live.controller.state()).applied;
  const perNamespace = live.size.podsPerNamespace;
  let done = 0;
  let nextWait = CHUNK;
  for (let step = 0; done < options.events; step++) {
    const slot = (step * 7919) % pods.length;
    const pod = pods[slot];
    if (!pod) throw new Error(`no pod in slot ${slot}`);
    if (step % 9 === 8) {
      // A pod replaced: deleted, and a new one (new name, new address) created in its place.
      replacements += 1;
      const replacement = realisticPod({
        namespace: Math.floor(slot / perNamespace),
        ordinal: slot % perNamespace,
        ipIndex: SPARE_IP_BASE + 500_000 + replacements,
        ports: live.ports,
        generation: replacements,
      });
      live.remove('Pod', pod.metadata.namespace, pod.metadata.name);
      live.create(replacement);
      pods[slot] = replacement;
      done += 2;
    } else {
      // The API server stores a copy: the bench's own object can change in place.
      bumpRestart(pod, step);
      live.update(pod);
      done += 1;
    }
    if (done >= nextWait) {
      nextWait += CHUNK;
      await live.caughtUp();
      if (midway === undefined && done >= options.events / 2) midway = await live.controller.memory();
    }
  }
  await live.settle();
  const churnMs = performance.now() - began;
  const after = await live.controller.memory();
  const state = await live.controller.state();
  await sleep(QUIET_MS);
  const quiet = await live.controller.memory();
  const growth = (after.heapUsed - afterList.heapUsed) / afterList.heapUsed;
  process.stdout.write(
    `  figure 3: churn of ${options.events} pod events in ${(churnMs / 1000).toFixed(1)} s: RSS ${mb(after.rss)}, heap ${mb(after.heapUsed)} (${(growth * 100).toFixed(1)}% vs after list), ${state.applied - reloadsBefore} reloads; after ${QUIET_MS / 1000} s without events: RSS ${mb(quiet.rss)}\n`,
  );
  return {
    rows: [
      {
        figure: 3,
        name: `controller memory after ${options.events.toLocaleString('en')} pod events of churn: RSS, heap`,
        value: `RSS ${mb(after.rss)}, heap ${mb(after.heapUsed)} (peak RSS ${mb(after.peakRss)})`,
        target: `RSS ≤ ${mb(RSS_TARGET)}`,
        met: after.rss <= RSS_TARGET,
      },
      {
        figure: 3,
        name: `the same after ${QUIET_MS / 1000} s without events (V8's memory reducer has run): RSS, heap`,
        value: `RSS ${mb(quiet.rss)}, heap ${mb(quiet.heapUsed)}`,
        target: '',
        met: null,
      },
      {
        figure: 3,
        name: 'controller heap growth across the churn (after churn vs after the initial list)',
        value: `${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)}% (${mb(afterList.heapUsed)} → ${mb(after.heapUsed)})`,
        target: `≤ +${GROWTH_TOLERANCE * 100}%`,
        met: growth <= GROWTH_TOLERANCE,
      },
    ],
    data: {
      events: options.events,
      replacements,
      churnSeconds: round(churnMs / 1000),
      reloadsDuringChurn: state.applied - reloadsBefore,
      midway: midway && memoryData(midway),
      afterChurn: memoryData(after),
      quietMs: QUIET_MS,
      afterQuiet: memoryData(quiet),
      heapGrowth: round(growth, 3),
    },
  };
}

function imageSettings(live: LiveCluster): string {
  const settings = Object.entries(live.controller.imageEnv).map(([name, value]) => `${name}=${value}`);
  return settings.length > 0 ? settings.join(' ') : 'none';
}

export function memoryData(memory: ChildMemory): Record<string, unknown> {
  const toMb = (bytes: number): number => round(bytes / 1024 / 1024);
  return {
    afterGc: memory.afterGc,
    rssMb: toMb(memory.rss),
    heapUsedMb: toMb(memory.heapUsed),
    heapTotalMb: toMb(memory.heapTotal),
    externalMb: toMb(memory.external),
    arrayBuffersMb: toMb(memory.arrayBuffers),
    peakRssMb: toMb(memory.peakRss),
    fileBackedMb: toMb(memory.fileBacked),
    heapSpacesMb: Object.fromEntries(
      Object.entries(memory.spaces).map(([name, bytes]) => [name, toMb(bytes)]),
    ),
  };
}
