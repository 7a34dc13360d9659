// Summaries of repeated measurements and the rows of the printed table. The machines are shared and
// noisy: every figure is a min/median/max (or percentiles) over repeats, never a single number.

export interface Summary {
  n: number;
  min: number;
  median: number;
  max: number;
  p50: number;
  p99: number;
}

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const median =
    sorted.length % 2 === 1
      ? (sorted[(sorted.length - 1) / 2] ?? Number.NaN)
      : ((sorted[sorted.length / 2 - 1] ?? Number.NaN) + (sorted[sorted.length / 2] ?? Number.NaN)) / 2;
  return {
    n: sorted.length,
    min: sorted[0] ?? Number.NaN,
    median,
    max: sorted[sorted.length - 1] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  };
}

export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** A summary rounded for latest.json. */
export function roundSummary(summary: Summary, digits = 1): Record<string, number> {
  return {
    n: summary.n,
    min: round(summary.min, digits),
    median: round(summary.median, digits),
    max: round(summary.max, digits),
    p50: round(summary.p50, digits),
    p99: round(summary.p99, digits),
  };
}

/** `12.3 ms`, or `1.23 s` from a second up. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(value >= 100 ? 0 : 1)} ms`;
}

export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** `min / median / max` in ms. */
export function mmm(summary: Summary): string {
  return `${ms(summary.min)} / ${ms(summary.median)} / ${ms(summary.max)}`;
}

/** One line of the printed table: what was measured, its target, whether it is met. */
export interface Row {
  figure: number;
  name: string;
  value: string;
  target: string;
  /** null: reported for information, no target. */
  met: boolean | null;
}

export interface FigureResult {
  rows: Row[];
  /** Every number behind the rows, for latest.json. */
  data: Record<string, unknown>;
}

export function sleep(msToWait: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msToWait));
}

/** Polls `condition` every `everyMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
