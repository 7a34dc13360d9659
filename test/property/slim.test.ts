// What the Kubernetes source keeps of an object (src/sources/slim.ts) never changes routing: for any
// cluster, with what the API server adds (managedFields, uid, other annotations, container images
// and statuses) and with pods in any phase, terminating or not, with any conditions, hostile values
// included, the table planned from the slimmed objects (routes, upstreams, TLS files and every
// diagnostic) equals the one planned from the objects as sent.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRoutingKind } from '../../src/kinds.js';
import { annotationsRead, routeObjects } from '../../src/pipeline.js';
import { slimObject } from '../../src/sources/slim.js';
import type { KubeObject } from '../../src/types.js';
import { cluster, hostileValue, toObjects } from './arbitraries.js';
import { configFor, fuzzSeed, runsFor } from './harness.js';

/** What the API server sends beside the fields a generated object has, and how a pod stands. */
const serverSide = fc.record({
  deletionTimestamp: fc.option(fc.oneof(fc.constant('2026-11-30T10:00:00Z'), hostileValue), {
    nil: undefined,
    freq: 3,
  }),
  phase: fc.oneof(fc.constantFrom('Running', 'Pending', 'Succeeded', 'Failed'), hostileValue),
  conditions: fc.oneof(
    fc.array(
      fc.oneof(
        fc.record({
          type: fc.constantFrom('Ready', 'PodScheduled', 'ContainersReady', 'Initialized'),
          status: fc.oneof(fc.constantFrom('True', 'False', 'Unknown'), hostileValue),
        }),
        hostileValue,
      ),
      { maxLength: 5 },
    ),
    hostileValue,
  ),
});
type ServerSide = typeof serverSide extends fc.Arbitrary<infer T> ? T : never;

function asSent(object: KubeObject, side: ServerSide): KubeObject {
  const metadata = {
    ...object.metadata,
    uid: '6f1c1b7e-0000-4000-8000-000000000000',
    resourceVersion: '4711',
    managedFields: [{ manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:metadata': {} } }],
    annotations: { ...object.metadata?.annotations, 'kubectl.kubernetes.io/restartedAt': 'now' },
  };
  if (object.kind !== 'Pod') return { ...object, metadata };
  const spec = object.spec as { containers?: unknown };
  const containers = Array.isArray(spec.containers)
    ? spec.containers.map((c) =>
        typeof c === 'object' && c !== null ? { ...c, image: 'app:1', env: [{ name: 'A', value: 'b' }] } : c,
      )
    : spec.containers;
  const status = object.status as { podIP?: unknown };
  return {
    ...object,
    metadata: {
      ...metadata,
      ...(side.deletionTimestamp !== undefined && { deletionTimestamp: side.deletionTimestamp }),
    },
    spec: { ...spec, containers, nodeName: 'node-1' },
    status: {
      phase: side.phase,
      podIP: status.podIP,
      hostIP: '10.9.9.9',
      conditions: side.conditions,
      containerStatuses: [{ name: 'c', ready: true, restartCount: 3 }],
    },
  } as KubeObject;
}

describe('slimmed objects', () => {
  it('plan to the same table as the objects they were made of', () => {
    fc.assert(
      fc.property(cluster(), fc.array(serverSide, { minLength: 1, maxLength: 8 }), (gen, sides) => {
        const config = configFor(gen.env);
        const objects = toObjects(gen).map((object, index) =>
          asSent(object, sides[index % sides.length] as ServerSide),
        );
        const kept = new Set(annotationsRead(config));
        const slimmed = objects.map((object) =>
          isRoutingKind(object.kind) ? (slimObject(object.kind, object, kept) as KubeObject) : object,
        );
        expect(routeObjects(slimmed, config)).toEqual(routeObjects(objects, config));
      }),
      { seed: fuzzSeed(), numRuns: runsFor(0.05, 150) },
    );
  }, 120_000);
});
