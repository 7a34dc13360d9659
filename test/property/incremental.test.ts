// The plan and render caches change only how long a batch takes, never what it produces: after any
// sequence of changes, the table and the text made with the controller's long-lived caches equal
// those a fresh store, plan and render make of the same objects.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { objectKey } from '../../src/kinds.js';
import { renderOptionsFrom, storeFor } from '../../src/pipeline.js';
import { createPlanCache, plan, planOptionsFrom } from '../../src/plan.js';
import { bundledTemplatesDir, loadTemplates } from '../../src/render/templates.js';
import { render } from '../../src/render.js';
import type { KubeObject, ObjectKind } from '../../src/types.js';
import { cluster, plainCluster, toObjects } from './arbitraries.js';
import { configFor, fuzzSeed, runsFor } from './harness.js';

/** Three generated clusters pooled; each step is the subset of the pool the cluster then holds. */
const history = fc.tuple(cluster(), cluster(), cluster()).chain(([first, second, third]) => {
  const pool = [first, second, third].flatMap((gen) => toObjects(plainCluster(gen)));
  const indices = [...pool.keys()];
  return fc.record({
    env: fc.constant(first.env),
    pool: fc.constant(pool),
    steps: fc.array(fc.subarray(indices), { minLength: 2, maxLength: 6 }),
  });
});

function kindOf(object: KubeObject): ObjectKind {
  return object.kind as ObjectKind;
}

/** The objects a step holds, one per key (a later pool entry replaces an earlier one). */
function stateOf(pool: readonly KubeObject[], step: readonly number[]): Map<string, KubeObject> {
  const state = new Map<string, KubeObject>();
  for (const index of step) {
    const object = pool[index] as KubeObject;
    state.set(objectKey(kindOf(object), object), object);
  }
  return state;
}

describe('incremental plan and render', () => {
  it('equal a fresh plan and render after every step of any history', () => {
    const cached = loadTemplates(bundledTemplatesDir);
    const fresh = loadTemplates(bundledTemplatesDir);
    fc.assert(
      fc.property(history, ({ env, pool, steps }) => {
        const config = configFor(env);
        const planOptions = planOptionsFrom(config);
        const renderOptions = renderOptionsFrom(config, {
          healthChecks: 'passive',
          prefixRelativePaths: true,
        });
        const store = storeFor(config);
        const cache = createPlanCache();
        let previous = new Map<string, KubeObject>();
        for (const step of steps) {
          const next = stateOf(pool, step);
          for (const [key, object] of previous) {
            if (!next.has(key)) store.apply({ type: 'deleted', kind: kindOf(object), object });
          }
          for (const object of next.values()) store.apply({ type: 'modified', kind: kindOf(object), object });
          previous = next;

          const table = plan(store.snapshot(), planOptions, cache);
          const text = render(cached, table, renderOptions);

          const reference = storeFor(config);
          for (const object of next.values())
            reference.apply({ type: 'added', kind: kindOf(object), object });
          const expected = plan(reference.snapshot(), planOptions);
          expect(table).toEqual(expected);
          // A copy of the options: none of the fresh templates' views or texts can be reused.
          expect(text).toBe(render(fresh, expected, { ...renderOptions }));
        }
      }),
      { seed: fuzzSeed(), numRuns: runsFor(0.05, 80) },
    );
  }, 120_000);
});
