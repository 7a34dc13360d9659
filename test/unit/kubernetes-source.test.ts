// The Kubernetes source against the test API server with the real client-node: lists come in
// pages, every object arrives once, slimmed, and the watch follows from the list's snapshot.
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { createKubernetesSource, type KubernetesSourceOptions } from '../../src/sources/kubernetes.js';
import type { Source } from '../../src/sources/source.js';
import type { SourceEvent } from '../../src/types.js';
import { ROUTABLE } from '../support/cluster.js';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.js';
import { namespace, pod } from '../support/kube-objects.js';
import { waitFor } from '../support/wait.js';

let server: KubeApiServer | undefined;
let source: Source | undefined;

afterEach(async () => {
  await source?.stop();
  await server?.close();
});

/** Starts a source against `api` (routable objects, secrets named routing) and collects its events. */
async function startSource(
  api: KubeApiServer,
  extra: Partial<KubernetesSourceOptions> = {},
): Promise<SourceEvent[]> {
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(api.kubeconfigPath);
  source = createKubernetesSource({
    kubeconfig,
    labelSelector: 'github.com/30x.dispatcher.routable=true',
    secretName: 'routing',
    annotations: [],
    ...extra,
  });
  const events: SourceEvent[] = [];
  await source.start({ event: (e) => events.push(e), problem: () => undefined });
  return events;
}

describe('Kubernetes source', () => {
  it('lists in pages of `limit`, delivers every object once, slimmed, then watches from the snapshot', async () => {
    server = await startKubeApiServer();
    server.create(namespace('big', { labels: ROUTABLE }));
    for (let i = 0; i < 250; i += 1) {
      server.create(
        pod('big', `p-${String(i).padStart(3, '0')}`, { ip: '10.0.0.1', ports: [80], labels: ROUTABLE }),
      );
    }
    const events = await startSource(server, { pageSize: 60 });

    const pods = events.filter((e) => e.kind === 'Pod');
    expect(pods).toHaveLength(250);
    expect(new Set(pods.map((e) => e.object.metadata?.name)).size).toBe(250);
    expect(pods.every((e) => e.type === 'added')).toBe(true);
    // Slimmed: what routing reads is there, container statuses are not.
    expect(pods[0]?.object.status).toEqual({
      phase: 'Running',
      podIP: '10.0.0.1',
      conditions: expect.arrayContaining([{ type: 'Ready', status: 'True' }]),
    });

    const podLists = server.requests.filter((r) => r.path === '/api/v1/pods' && !r.watch);
    expect(podLists.map((r) => r.query.limit)).toEqual(['60', '60', '60', '60', '60']);
    expect(podLists.filter((r) => r.query.continue).length).toBe(4);

    // A change after the list arrives through the watch.
    server.create(pod('big', 'late', { ip: '10.0.0.2', ports: [80], labels: ROUTABLE }));
    await waitFor('the late pod', () => events.some((e) => e.object.metadata?.name === 'late'));
    expect(events.filter((e) => e.object.metadata?.name === 'late').map((e) => e.type)).toEqual(['added']);
  });

  it('after a relist, delivers the change and the deletion of objects that changed or went meanwhile', async () => {
    server = await startKubeApiServer();
    server.create(namespace('shop', { labels: ROUTABLE }));
    for (const name of ['stays', 'changes', 'goes']) {
      server.create(pod('shop', name, { ip: '10.0.0.1', ports: [80], labels: ROUTABLE }));
    }
    const events = await startSource(server, { minBackoffMs: 50, maxBackoffMs: 200 });
    const podEvents = () =>
      events.filter((e) => e.kind === 'Pod').map((e) => `${e.type} ${e.object.metadata?.name}`);
    expect(podEvents().sort()).toEqual(['added changes', 'added goes', 'added stays']);

    // Changes while the API server is away, and the history the watches could resume from lost:
    // the source learns of them only by listing again.
    const lists = () => server?.requests.filter((r) => r.path === '/api/v1/pods' && !r.watch).length;
    const listsBefore = lists();
    await server.goDown();
    server.patch('Pod', 'shop', 'changes', (p) => {
      p.status.podIP = '10.0.0.2';
    });
    server.remove('Pod', 'shop', 'goes');
    server.expireHistory();
    await server.comeUp();
    const afterRelist = () => events.filter((e) => e.kind === 'Pod').slice(3);
    await waitFor('the relist to deliver two pod events', () => afterRelist().length >= 2);
    expect(
      afterRelist()
        .map((e) => `${e.type} ${e.object.metadata?.namespace}/${e.object.metadata?.name}`)
        .sort(),
    ).toEqual(['deleted shop/goes', 'modified shop/changes']);
    expect(lists()).toBeGreaterThan(listsBefore ?? 0);
    // The change arrives whole (slimmed), not as the name and version the informer's cache keeps.
    expect(afterRelist().find((e) => e.type === 'modified')?.object.status).toEqual(
      expect.objectContaining({ phase: 'Running', podIP: '10.0.0.2' }),
    );
  });
});
