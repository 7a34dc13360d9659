// Figure 1: what the controller does at the end of every batch window — snapshot of the store, plan,
// render — timed per size over repeated runs, with the size of the configuration it produces. Two
// cases: a batch that changed one pod (the plan and render caches reuse every other namespace, as
// in the controller), and a full render with empty caches (the first render after the initial list,
// or a batch that touched every namespace).
import { performance } from 'node:perf_hooks';
import { createPlanCache, plan, planOptionsFrom } from '../src/plan.js';
import { render } from '../src/render.js';
import type { RoutingTable } from '../src/types.js';
import { type Pipeline, pipelineFor } from './configs.js';
import { type FigureResult, mmm, ms, type Row, roundSummary, type Summary, summarize } from './stats.js';
import {
  buildCluster,
  NOMINAL_PORTS,
  podCount,
  realisticPod,
  SIZES,
  type Size,
  SPARE_IP_BASE,
  sizeLabel,
  upstreamCount,
} from './workload.js';

export interface RenderFigureOptions {
  runs: number;
}

const TARGET_MS = 30;

interface Timing {
  total: Summary;
  plan: Summary;
  render: Summary;
  bytes: number;
  table: RoutingTable;
}

/** Runs `prepare` then times snapshot + plan + render, `runs` times. */
async function timeRuns(
  pipeline: Pipeline,
  runs: number,
  prepare: (run: number) => { fresh: boolean },
): Promise<Timing> {
  const planOptions = planOptionsFrom(pipeline.config);
  const totals: number[] = [];
  const plans: number[] = [];
  const renders: number[] = [];
  let bytes = 0;
  let table: RoutingTable | undefined;
  for (let run = 0; run < runs; run++) {
    const { fresh } = prepare(run);
    // A fresh plan cache and a copy of the render options: nothing an earlier render made is reused.
    const cache = fresh ? createPlanCache() : pipeline.planCache;
    const renderOptions = fresh ? { ...pipeline.renderOptions } : pipeline.renderOptions;
    const began = performance.now();
    table = plan(pipeline.store.snapshot(), planOptions, cache);
    const planned = performance.now();
    const text = render(pipeline.templates, table, renderOptions);
    const ended = performance.now();
    totals.push(ended - began);
    plans.push(planned - began);
    renders.push(ended - planned);
    bytes = Buffer.byteLength(text);
    // Yield, as the controller does between batches, so that timers and GC can run.
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (!table) throw new Error('no run');
  return { total: summarize(totals), plan: summarize(plans), render: summarize(renders), bytes, table };
}

/** One pod of a namespace that changes at each run gets a new address: one routable change per batch. */
function changeOnePod(pipeline: Pipeline, size: Size, run: number): void {
  const namespace = (run * 7919) % size.namespaces;
  const pod = realisticPod({ namespace, ordinal: 0, ipIndex: SPARE_IP_BASE + run, ports: NOMINAL_PORTS });
  pipeline.store.apply({ type: 'modified', kind: 'Pod', object: pod });
}

export async function planRenderFigure(options: RenderFigureOptions): Promise<FigureResult> {
  const rows: Row[] = [];
  const sizes: Record<string, unknown>[] = [];
  for (const size of SIZES) {
    const pipeline = pipelineFor(buildCluster(size, NOMINAL_PORTS), 18080);
    // Warm-up: compile the template functions, let the JIT see the code, fill the caches.
    await timeRuns(pipeline, 2, () => ({ fresh: true }));
    pipeline.renderNow();
    const oneChange = await timeRuns(pipeline, options.runs, (run) => {
      changeOnePod(pipeline, size, run);
      return { fresh: false };
    });
    const full = await timeRuns(pipeline, options.runs, () => ({ fresh: true }));
    const label = sizeLabel(size);
    const atTarget = size.namespaces === 1000 && size.podsPerNamespace === 10;
    rows.push({
      figure: 1,
      name: `plan+render ${label} (${podCount(size)} pods), batch changing one pod, min/median/max`,
      value: `${mmm(oneChange.total)}; ${(oneChange.bytes / 1024).toFixed(0)} KB`,
      target: atTarget ? `median ≤ ${TARGET_MS} ms` : '',
      met: atTarget ? oneChange.total.median <= TARGET_MS : null,
    });
    rows.push({
      figure: 1,
      name: `plan+render ${label}, full (empty caches: first render, or every namespace changed)`,
      value: mmm(full.total),
      target: '',
      met: null,
    });
    const servers = full.table.servers.length;
    const locations = full.table.servers.reduce((sum, server) => sum + server.locations.length, 0);
    sizes.push({
      size: label,
      pods: podCount(size),
      upstreams: upstreamCount(size),
      servers,
      locations,
      outputBytes: full.bytes,
      runs: options.runs,
      oneChange: {
        totalMs: roundSummary(oneChange.total),
        planMs: roundSummary(oneChange.plan),
        renderMs: roundSummary(oneChange.render),
      },
      full: {
        totalMs: roundSummary(full.total),
        planMs: roundSummary(full.plan),
        renderMs: roundSummary(full.render),
      },
    });
    process.stdout.write(
      `  figure 1: ${label}: one pod changed ${mmm(oneChange.total)} (plan median ${ms(oneChange.plan.median)}); ` +
        `full ${mmm(full.total)} (plan median ${ms(full.plan.median)}), ${full.bytes} bytes\n`,
    );
  }
  return { rows, data: { targetMedianMs: TARGET_MS, sizes } };
}
