// Property-based tests over hostile tenants (see hostile-properties.ts). The test command runs a few
// hundred cases with a fixed seed; FUZZ_RUNS (total over the properties) and FUZZ_SEED (`random`
// or an integer) change that, and `npm run fuzz` runs the long campaign (bench/fuzz.ts).
import { describe, expect, it } from 'vitest';
import { fuzzSeed, runsFor } from './harness.js';
import { failureReport, hostileProperties, runProperty } from './hostile-properties.js';

describe('hostile annotations, names and secrets never reach nginx.conf', () => {
  for (const property of hostileProperties()) {
    // Generous: each case runs nginx -t, and a failure shrinks through more of them.
    const timeout = 120_000 + runsFor(property.share, property.defaultRuns) * 1_000;
    it(
      property.name,
      async () => {
        const run = await runProperty(property);
        console.log(
          `${run.details.numRuns} cases, FUZZ_SEED=${fuzzSeed()}, ${Math.round(run.ms)} ms: ${run.name}`,
        );
        expect(failureReport(run)).toBeUndefined();
        expect(run.details.numRuns).toBe(run.runs);
      },
      timeout,
    );
  }
});
