// Figure 1: what the controller does at the end of every batch window — snapshot of the store, plan,
// render — timed per size over repeated runs, with the size of the configuration it produces.
import { performance } from 'node:perf_hooks';
import { plan, planOptionsFrom } from '../src/plan.js';
import { render } from '../src/render.js';
import { pipelineFor } from './configs.js';
import { type FigureResult, mmm, ms, type Row, roundSummary, summarize } from './stats.js';
import { buildCluster, NOMINAL_PORTS, podCount, SIZES, sizeLabel, upstreamCount } from './workload.js';

export interface RenderFigureOptions {
  runs: number;
}

const TARGET_MS = 30;

export async function planRenderFigure(options: RenderFigureOptions): Promise<FigureResult> {
  const rows: Row[] = [];
  const sizes: Record<string, unknown>[] = [];
  for (const size of SIZES) {
    const pipeline = pipelineFor(buildCluster(size, NOMINAL_PORTS), 18080);
    const planOptions = planOptionsFrom(pipeline.config);
    pipeline.renderNow(); // warm-up: compile the template functions and let the JIT see the code
    const totals: number[] = [];
    const plans: number[] = [];
    const renders: number[] = [];
    let bytes = 0;
    let servers = 0;
    let locations = 0;
    for (let run = 0; run < options.runs; run++) {
      const began = performance.now();
      const table = plan(pipeline.store.snapshot(), planOptions);
      const planned = performance.now();
      const text = render(pipeline.templates, table, pipeline.renderOptions);
      const ended = performance.now();
      totals.push(ended - began);
      plans.push(planned - began);
      renders.push(ended - planned);
      bytes = Buffer.byteLength(text);
      servers = table.servers.length;
      locations = table.servers.reduce((sum, server) => sum + server.locations.length, 0);
      // Yield, as the controller does between batches, so that timers and GC can run.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const total = summarize(totals);
    const label = sizeLabel(size);
    const atTarget = size.namespaces === 1000 && size.podsPerNamespace === 10;
    rows.push({
      figure: 1,
      name: `plan+render ${label} (${podCount(size)} pods), min/median/max`,
      value: `${mmm(total)}; ${(bytes / 1024).toFixed(0)} KB`,
      target: atTarget ? `median ≤ ${TARGET_MS} ms` : '',
      met: atTarget ? total.median <= TARGET_MS : null,
    });
    sizes.push({
      size: label,
      pods: podCount(size),
      upstreams: upstreamCount(size),
      servers,
      locations,
      outputBytes: bytes,
      runs: options.runs,
      totalMs: roundSummary(total),
      planMs: roundSummary(summarize(plans)),
      renderMs: roundSummary(summarize(renders)),
    });
    process.stdout.write(
      `  figure 1: ${label}: plan+render ${mmm(total)} (plan median ${ms(summarize(plans).median)}), ${bytes} bytes\n`,
    );
  }
  return { rows, data: { targetMedianMs: TARGET_MS, sizes } };
}
