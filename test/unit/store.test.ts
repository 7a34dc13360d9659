// The store says whether an event changed anything routing depends on.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { storeFor } from '../../src/pipeline.js';
import type { KubeObject, SourceEvent } from '../../src/types.js';
import { namespace, pod, secret } from '../support/kube-objects.js';

const ROUTABLE = { 'github.com/30x.dispatcher.routable': 'true' };
const PATHS = 'github.com/30x.dispatcher.paths';

function newStore() {
  const loaded = loadConfig({});
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return storeFor(loaded.config);
}

const web = (changes: Parameters<typeof pod>[2] = {}): KubeObject =>
  pod('shop', 'web', {
    ip: '10.0.0.1',
    ports: [3000],
    labels: ROUTABLE,
    annotations: { [PATHS]: '[{"basePath":"/","containerPort":"3000"}]' },
    ...changes,
  });
const ev = (type: SourceEvent['type'], object: KubeObject): SourceEvent => ({
  type,
  kind: object.kind as SourceEvent['kind'],
  object,
});

describe('store', () => {
  it('reports a change only when something routing depends on changed', () => {
    const store = newStore();
    expect(store.apply(ev('added', web()))).toBe(true);
    const relabelled = web({ labels: { ...ROUTABLE, team: 'blue' } });
    expect(store.apply(ev('modified', relabelled))).toBe(false);
    const heartbeat = web();
    (heartbeat.status as { conditions: { lastProbeTime?: string }[] }).conditions[0] = {
      lastProbeTime: '2030-01-01T00:00:00Z',
    };
    expect(store.apply(ev('modified', heartbeat))).toBe(false);
    expect(store.apply(ev('modified', web({ ready: false })))).toBe(true);
    expect(store.apply(ev('modified', web({ ready: false, labels: { ...ROUTABLE, x: 'y' } })))).toBe(false);
    expect(store.apply(ev('modified', web()))).toBe(true);
    expect(store.apply(ev('deleted', web()))).toBe(true);
    expect(store.apply(ev('deleted', web()))).toBe(false);
  });

  it('ignores objects that do not route and treats a label removal as leaving', () => {
    const store = newStore();
    expect(store.apply(ev('added', namespace('plain')))).toBe(false);
    expect(store.apply(ev('added', secret('shop', 'other', { 'api-key': 'x' })))).toBe(false);
    expect(store.apply(ev('added', secret('shop', 'routing', { 'api-key': 'x' })))).toBe(true);
    expect(store.apply(ev('added', web()))).toBe(true);
    expect(store.apply(ev('modified', web({ labels: {} })))).toBe(true);
    expect(store.snapshot().pods).toEqual([]);
  });
});
