// The long fuzz campaign over hostile tenants: the same properties as test/property/hostile.test.ts,
// with FUZZ_RUNS cases in total (default 20,000) and FUZZ_SEED (default: a random seed, printed).
// Run: `npm run fuzz` (vite-node bench/fuzz.ts). Prints the cases each property tried, any failure
// with fast-check's counterexample, seed and path, how to replay it, and the total time. Exits 1 on
// a failure.

import { fuzzSeed } from '../test/property/harness.js';
import {
  failureReport,
  hostileProperties,
  type PropertyRun,
  runProperty,
} from '../test/property/hostile-properties.js';

const DEFAULT_RUNS = '20000';

async function main(): Promise<number> {
  process.env.FUZZ_RUNS ||= DEFAULT_RUNS;
  process.env.FUZZ_SEED ||= 'random';
  const seed = fuzzSeed();
  const total = process.env.FUZZ_RUNS;
  console.log(`fuzz: ${total} cases over ${hostileProperties().length} properties, seed ${seed}`);
  const started = performance.now();
  const runs: PropertyRun[] = [];
  for (const property of hostileProperties()) {
    const run = await runProperty(property);
    runs.push(run);
    const status = run.details.failed ? 'FAILED' : 'ok';
    console.log(`  ${status}  ${run.details.numRuns} cases in ${seconds(run.ms)}: ${run.name}`);
    const report = failureReport(run);
    if (report) {
      console.log(indent(report));
      console.log(
        indent(`replay: FUZZ_SEED=${seed} FUZZ_RUNS=${total} npx vitest run test/property/hostile.test.ts`),
      );
    }
  }
  const cases = runs.reduce((sum, run) => sum + run.details.numRuns, 0);
  const failed = runs.filter((run) => run.details.failed).length;
  console.log(
    `fuzz: ${cases} cases tried, ${failed} propert${failed === 1 ? 'y' : 'ies'} failed, ${seconds(performance.now() - started)} in total (seed ${seed})`,
  );
  return failed === 0 ? 0 : 1;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `      ${line}`)
    .join('\n');
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
