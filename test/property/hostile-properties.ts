// The hostile-input properties, shared by the test command (hostile.test.ts, a few hundred cases
// with a fixed seed) and the fuzz campaign (bench/fuzz.ts, tens of thousands with a random seed).
// Each case renders a cluster of several tenants, runs the real `nginx -t` on it, parses it and
// compares what nginx would route with what the spec oracle says the valid inputs call for.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { flatten, parseNginxConf } from '../support/nginx-conf.js';
import { cluster, plainCluster, toObjects } from './arbitraries.js';
import { assertShape, assertTemplateStructure } from './conformance.js';
import {
  assertNginxAccepts,
  configFor,
  fuzzSeed,
  renderCluster,
  runsFor,
  shuffled,
  tlsFixture,
  unprintableDiagnostic,
} from './harness.js';
import { type Expectation, expectRouting, type GenCluster, specPath } from './spec-oracle.js';

/** Each diagnostic the oracle calls for is there (at least as many as it counts). */
export function assertDiagnostics(
  diagnostics: Expectation['diagnostics'],
  actual: { object: string; field: string }[],
) {
  for (const want of diagnostics) {
    const found = actual.filter((d) => want.object(d.object) && want.field(d.field)).length;
    assert.ok(found >= want.atLeast, `no diagnostic for: ${want.what} (found ${found} of ${want.atLeast})`);
  }
}

// ------------------------------------------------------------------ the properties

/** One case: render, `nginx -t`, parse, compare with the oracle, check diagnostics and order independence. */
async function checkCluster(generated: GenCluster, shuffleSeed: number): Promise<void> {
  const gen = plainCluster(generated);
  const config = configFor(gen.env);
  const objects = toObjects(gen);
  const rendered = renderCluster(objects, config);
  await assertNginxAccepts(rendered);

  const tree = parseNginxConf(rendered.text);
  const expected = expectRouting(gen, tlsFixture());
  assertTemplateStructure(tree, expected, config, 'passive');
  assertShape(tree, expected);
  assertDiagnostics(expected.diagnostics, rendered.table.diagnostics);
  const bad = unprintableDiagnostic(rendered.table.diagnostics);
  assert.equal(bad, undefined, `diagnostic with raw or overlong text: ${bad}`);

  const reordered = renderCluster(shuffled(objects, shuffleSeed), config);
  assert.equal(reordered.text, rendered.text, 'the configuration depends on the order of the objects');
}

const CHECK_ARG = /^(interval|rise|fall|timeout|port)=[0-9]+$|^type=(http|tcp)$/;
const HTTP_SEND = /^GET (\S*) HTTP\/1\.0\r\n\r\n$/;

/**
 * Active health checks need a module Debian's nginx lacks, so `nginx -t` cannot judge them: the
 * parsed text must hold the same routes plus well-formed check directives whose probe path is an
 * allow-listed path.
 */
async function checkActiveHealthChecks(generated: GenCluster): Promise<void> {
  const gen = plainCluster({ ...generated, env: { ...generated.env, healthChecks: true } });
  const config = configFor(gen.env);
  const rendered = renderCluster(toObjects(gen), config, 'active');
  const tree = parseNginxConf(rendered.text);
  const expected = expectRouting(gen, tlsFixture());
  assertTemplateStructure(tree, expected, config, 'active');
  assertShape(tree, expected);
  for (const { context, directive } of flatten(tree)) {
    if (context === 'http/upstream/check') {
      for (const arg of directive.args) assert.match(arg, CHECK_ARG, `check argument ${JSON.stringify(arg)}`);
    }
    if (context === 'http/upstream/check_http_send') {
      assert.equal(directive.args.length, 1, `check_http_send ${JSON.stringify(directive.args)}`);
      const match = HTTP_SEND.exec(directive.args[0] ?? '');
      assert.ok(match && specPath(match[1]) !== null, `check_http_send ${JSON.stringify(directive.args[0])}`);
    }
  }
}

export interface NamedProperty {
  name: string;
  /** Share of FUZZ_RUNS this property gets. */
  share: number;
  /** Cases in the test command (FUZZ_RUNS unset). */
  defaultRuns: number;
  /** Added to FUZZ_SEED, so that properties sharing a generator do not see the same clusters. */
  salt: number;
  property: fc.IAsyncProperty<[GenCluster, number]>;
}

export function hostileProperties(): NamedProperty[] {
  return [
    {
      name: 'hostile tenants (hosts as JSON): nginx -t passes, exactly the valid routes, a diagnostic per rejected entry',
      share: 0.6,
      defaultRuns: 220,
      salt: 0,
      property: fc.asyncProperty(cluster('json'), fc.integer(), checkCluster),
    },
    {
      name: 'hostile tenants (legacy space-separated hosts): same guarantees',
      share: 0.25,
      defaultRuns: 90,
      salt: 1,
      property: fc.asyncProperty(cluster('legacy'), fc.integer(), checkCluster),
    },
    {
      name: 'active health checks: only allow-listed probe paths reach check_http_send',
      share: 0.15,
      defaultRuns: 120,
      salt: 2,
      property: fc.asyncProperty(cluster('json'), fc.integer(), (gen, _unused) =>
        checkActiveHealthChecks(gen),
      ),
    },
  ];
}

export interface PropertyRun {
  name: string;
  runs: number;
  seed: number;
  details: fc.RunDetails<[GenCluster, number]>;
  ms: number;
}

/** Runs one property with FUZZ_RUNS/FUZZ_SEED from the environment (the test command and the fuzz script alike). */
export async function runProperty(named: NamedProperty): Promise<PropertyRun> {
  const seed = (fuzzSeed() + named.salt) | 0;
  const runs = runsFor(named.share, named.defaultRuns);
  const started = performance.now();
  const details = await fc.check(named.property, { seed, numRuns: runs });
  return { name: named.name, runs, seed, details, ms: performance.now() - started };
}

/** fast-check's report of a failure (counterexample, seed, path), or undefined when the property held. */
export function failureReport(run: PropertyRun): string | undefined {
  if (!run.details.failed) return undefined;
  const error = run.details.errorInstance;
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return `${fc.defaultReportMessage(run.details) ?? 'failed'}\n\nError: ${message}`;
}
