// Whether the controller's keep-alive resets under reloads are no more than bare nginx's: a decision
// on counts, kept apart from the figure that measures them.

/** One segment of load on one side: the keep-alive client's resets and the reloads that caused them. */
export interface ResetCount {
  resets: number;
  reloads: number;
}

export interface ResetComparison {
  met: boolean;
  /** The controller's resets less the baseline's scaled to the controller's reloads. */
  excess: number;
  /** Two standard deviations of the noise on that excess. */
  twoSigma: number;
}

/**
 * The controller's resets are "no more than the baseline's" unless they exceed the baseline's,
 * scaled to the same number of reloads, by more than two standard deviations of the noise. Resets
 * come in clumps (each reload closes every idle connection of the old workers at one instant), so
 * segments spread far wider than counts of independent events would: the noise is estimated from
 * the spread of each side's segments, with the counting (Poisson) noise as its floor.
 */
export function compareResets(
  controller: readonly ResetCount[],
  bare: readonly ResetCount[],
): ResetComparison {
  const observed = sum(controller.map((c) => c.resets));
  const controllerReloads = sum(controller.map((c) => c.reloads));
  const bareReloads = sum(bare.map((b) => b.reloads));
  if (bareReloads === 0) return { met: observed === 0, excess: observed, twoSigma: 0 };
  const scale = controllerReloads / bareReloads;
  const expected = sum(bare.map((b) => b.resets)) * scale;
  const counting = observed + expected * scale;
  const spread = totalVariance(controller) + totalVariance(bare) * scale * scale;
  const excess = observed - expected;
  const twoSigma = 2 * Math.sqrt(Math.max(counting, spread));
  return { met: observed === 0 || excess <= twoSigma, excess, twoSigma };
}

/** The variance of the sum of the segments' resets, from the spread between segments. */
function totalVariance(segments: readonly ResetCount[]): number {
  if (segments.length < 2) return 0;
  const mean = sum(segments.map((s) => s.resets)) / segments.length;
  const variance = sum(segments.map((s) => (s.resets - mean) ** 2)) / (segments.length - 1);
  return variance * segments.length;
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
