// The test API server against the real @kubernetes/client-node: lists, informers, watches and the
// failures the live controller must survive (dropped watches, 410 Expired, the server going down).
import {
  ApiException,
  CoreV1Api,
  type Informer,
  KubeConfig,
  type KubernetesObject,
  ListWatch,
  makeInformer,
  type ObjectCache,
  type V1Namespace,
  type V1Pod,
  type V1Secret,
  Watch,
} from '@kubernetes/client-node';
import { describe, expect, onTestFinished, test } from 'vitest';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.js';
import { namespace, pod, secret } from '../support/kube-objects.js';
import { waitFor } from '../support/wait.js';

interface Setup {
  server: KubeApiServer;
  kubeconfig: KubeConfig;
  api: CoreV1Api;
}

async function setup(options?: Parameters<typeof startKubeApiServer>[0]): Promise<Setup> {
  const server = await startKubeApiServer(options);
  onTestFinished(() => server.close());
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(server.kubeconfigPath);
  return { server, kubeconfig, api: kubeconfig.makeApiClient(CoreV1Api) };
}

type Cache<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

interface Recorded {
  events: string[];
  errors: unknown[];
}

/** Records `verb name@resourceVersion` and errors; restarts on error as the controller will. */
async function run<T extends KubernetesObject>(informer: Cache<T>): Promise<Recorded> {
  const recorded: Recorded = { events: [], errors: [] };
  let stopped = false;
  for (const verb of ['add', 'update', 'delete'] as const) {
    informer.on(verb, (obj: T) => recorded.events.push(`${verb} ${obj.metadata?.name}`));
  }
  informer.on('error', (error: unknown) => {
    // stop() itself surfaces as an AbortError; a stopped informer must stay stopped.
    if (stopped) return;
    recorded.errors.push(error);
    setTimeout(() => {
      if (!stopped) void informer.start();
    }, 100);
  });
  onTestFinished(async () => {
    stopped = true;
    await informer.stop();
  });
  await informer.start();
  return recorded;
}

function names(items: Array<{ metadata?: { name?: string } }>): string[] {
  return items.map((item) => item.metadata?.name ?? '');
}

function plainRequests(server: KubeApiServer, path: string): number {
  return server.requests.filter((r) => r.path === path && !r.watch).length;
}

describe('lists through CoreV1Api', () => {
  const namespaces = [
    namespace('prod-web', { labels: { env: 'prod', tier: 'web' } }),
    namespace('prod-db', { labels: { env: 'prod', tier: 'db' } }),
    namespace('dev', { labels: { env: 'dev' } }),
    namespace('plain'),
  ];

  test.each([
    ['', ['dev', 'plain', 'prod-db', 'prod-web']],
    ['env=prod', ['prod-db', 'prod-web']],
    ['env==prod', ['prod-db', 'prod-web']],
    ['env!=prod', ['dev', 'plain']],
    ['env in (dev, prod),tier', ['prod-db', 'prod-web']],
    ['env notin (prod)', ['dev', 'plain']],
    ['env', ['dev', 'prod-db', 'prod-web']],
    ['!env', ['plain']],
    ['env=prod,tier=web', ['prod-web']],
    [' env = prod , !tier ', []],
  ])('labelSelector %j selects %j', async (labelSelector, expected) => {
    const { server, api } = await setup();
    for (const ns of namespaces) server.create(ns);
    const list = await api.listNamespace({ labelSelector });
    expect(names(list.items)).toEqual(expected);
    expect(list.metadata?.resourceVersion).toBe(server.resourceVersion());
  });

  test.each([
    ['env in ()'],
    ['env in (a b)'],
    ['env=prod,'],
    ['env prod'],
    ['-bad-key'],
    ['env=not a value'],
  ])('a malformed labelSelector %j is a 400', async (labelSelector) => {
    const { api } = await setup();
    await expect(api.listNamespace({ labelSelector })).rejects.toMatchObject({ code: 400 });
  });

  test.each([
    ['metadata.name=routing', ['a/routing', 'b/routing']],
    ['metadata.name==routing,metadata.namespace=b', ['b/routing']],
    ['metadata.name!=routing', ['a/other']],
  ])('fieldSelector %j on all secrets selects %j', async (fieldSelector, expected) => {
    const { server, api } = await setup();
    server.create(secret('a', 'routing', { 'api-key': 'one' }));
    server.create(secret('a', 'other'));
    server.create(secret('b', 'routing', { 'api-key': 'two' }));
    const list = await api.listSecretForAllNamespaces({ fieldSelector });
    expect(list.items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`)).toEqual(expected);
  });

  test('an unsupported field label is a 400', async () => {
    const { api } = await setup();
    await expect(api.listSecretForAllNamespaces({ fieldSelector: 'spec.nothing=x' })).rejects.toMatchObject({
      code: 400,
    });
  });

  test('namespaced lists and single reads see only their namespace', async () => {
    const { server, api } = await setup();
    server.create(pod('a', 'p1', { ip: '10.1.0.1', ports: [8080], labels: { app: 'x' } }));
    server.create(pod('a', 'p2', { ip: '10.1.0.2', labels: { app: 'y' } }));
    server.create(pod('b', 'p3', { ip: '10.1.0.3', labels: { app: 'x' } }));
    server.create(secret('a', 'routing', { 'api-key': 'secret-value' }));

    expect(names((await api.listNamespacedPod({ namespace: 'a' })).items)).toEqual(['p1', 'p2']);
    expect(names((await api.listPodForAllNamespaces({ labelSelector: 'app=x' })).items)).toEqual([
      'p1',
      'p3',
    ]);
    const p1 = await api.readNamespacedPod({ namespace: 'a', name: 'p1' });
    expect(p1.status?.podIP).toBe('10.1.0.1');
    expect(p1.spec?.containers[0]?.ports?.[0]?.containerPort).toBe(8080);
    expect(p1.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    const routing = await api.readNamespacedSecret({ namespace: 'a', name: 'routing' });
    expect(Buffer.from(routing.data?.['api-key'] ?? '', 'base64').toString()).toBe('secret-value');
    await expect(api.readNamespacedPod({ namespace: 'b', name: 'p1' })).rejects.toMatchObject({ code: 404 });
  });

  test('listed items are client-node models: Date timestamps and no kind', async () => {
    const { server, api } = await setup();
    server.create(namespace('old', { creationTimestamp: '2020-05-01T10:00:00Z' }));
    const [item] = (await api.listNamespace()).items;
    expect(item?.metadata?.creationTimestamp).toEqual(new Date('2020-05-01T10:00:00Z'));
    expect(item?.kind).toBeUndefined();
    expect(item?.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('a kubeconfig with the wrong token gets 401', async () => {
    const { server } = await setup();
    const wrong = new KubeConfig();
    wrong.loadFromFile(server.writeKubeconfig({ token: 'wrong', path: `${server.kubeconfigPath}.wrong` }));
    const error = await wrong
      .makeApiClient(CoreV1Api)
      .listNamespace()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiException);
    expect((error as ApiException<unknown>).code).toBe(401);
  });

  test('an unknown path is a 404 Status', async () => {
    const { server } = await setup();
    const response = await fetch(`${server.url}/api/v1/configmaps`, {
      headers: { Authorization: `Bearer ${server.token}` },
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ kind: 'Status', code: 404, reason: 'NotFound' });
  });
});

describe('watches and informers', () => {
  test('an informer sees add, update and delete of selected pods', async () => {
    const { server, kubeconfig, api } = await setup();
    server.create(pod('a', 'early', { labels: { routable: 'true' } }));
    server.create(pod('a', 'ignored'));
    const informer = makeInformer<V1Pod>(
      kubeconfig,
      '/api/v1/pods',
      () => api.listPodForAllNamespaces({ labelSelector: 'routable=true' }),
      'routable=true',
    );
    const seen = await run(informer);
    await waitFor('the initial list', () => seen.events.includes('add early'));
    await waitFor('the watch', () => server.openWatchCount('Pod') === 1);

    server.create(pod('a', 'late', { labels: { routable: 'true' } }));
    server.patch('Pod', 'a', 'early', (p) => {
      p.status.podIP = '10.9.9.9';
    });
    server.remove('Pod', 'a', 'late');
    server.patch('Pod', 'a', 'ignored', (p) => {
      p.metadata.annotations = { touched: 'yes' };
    });
    await waitFor('the delete', () => seen.events.includes('delete late'));
    expect(seen.events).toEqual(['add early', 'add late', 'update early', 'delete late']);
    expect(informer.get('early', 'a')?.status?.podIP).toBe('10.9.9.9');
    expect(seen.errors).toEqual([]);
  });

  test('a label-selected watch gets DELETED when the label goes and ADDED when it returns', async () => {
    const { server, kubeconfig } = await setup();
    server.create(namespace('ns', { labels: { routable: 'true' } }));
    const from = server.resourceVersion();
    const events: string[] = [];
    let ended = false;
    const request = await new Watch(kubeconfig).watch(
      '/api/v1/namespaces',
      { labelSelector: 'routable=true', resourceVersion: from },
      (type: string, obj: V1Namespace) => events.push(`${type} ${obj.metadata?.resourceVersion}`),
      () => {
        ended = true;
      },
    );
    onTestFinished(() => request.abort());
    await waitFor('the watch', () => server.openWatchCount() === 1);

    const relabel = (labels: Record<string, string>) =>
      server.patch('Namespace', undefined, 'ns', (n) => {
        n.metadata.labels = labels;
      }).metadata.resourceVersion;
    const modified = relabel({ routable: 'true', other: 'x' });
    const unlabelled = relabel({ other: 'x' });
    relabel({ other: 'y' });
    const relabelled = relabel({ routable: 'true' });
    await waitFor('the returning label', () => events.length === 3);
    expect(events).toEqual([`MODIFIED ${modified}`, `DELETED ${unlabelled}`, `ADDED ${relabelled}`]);
    expect(ended).toBe(false);
  });

  test('a ListWatch of secrets with a field selector never asks for other secrets', async () => {
    const { server, kubeconfig, api } = await setup();
    const fieldSelector = 'metadata.name=routing';
    server.create(secret('a', 'routing', { 'api-key': 'k' }));
    server.create(secret('a', 'unrelated'));
    const informer = new ListWatch<V1Secret>(
      '/api/v1/secrets',
      new Watch(kubeconfig),
      () => api.listSecretForAllNamespaces({ fieldSelector }),
      false,
      undefined,
      fieldSelector,
    );
    const seen = await run(informer);
    await waitFor('the watch', () => server.openWatchCount('Secret') === 1);
    server.create(secret('b', 'unrelated'));
    server.create(secret('b', 'routing', { 'api-key': 'k2' }));
    await waitFor('the second routing secret', () => seen.events.length === 2);

    expect(seen.events).toEqual(['add routing', 'add routing']);
    const secretRequests = server.requests.filter((r) => r.path.endsWith('/secrets'));
    expect(secretRequests.length).toBeGreaterThanOrEqual(2);
    expect(secretRequests.every((r) => r.query.fieldSelector === fieldSelector)).toBe(true);
  });

  test('a dropped watch surfaces as an error; restarted, the informer resumes without a relist', async () => {
    const { server, kubeconfig, api } = await setup();
    server.create(namespace('one'));
    const informer = makeInformer<V1Namespace>(kubeconfig, '/api/v1/namespaces', () => api.listNamespace());
    const seen = await run(informer);
    await waitFor('the watch', () => server.openWatchCount() === 1);

    expect(server.dropWatches()).toBe(1);
    server.create(namespace('two'));
    await waitFor('the missed namespace', () => seen.events.includes('add two'));
    expect(seen.errors).toHaveLength(1);
    expect(seen.errors[0]).toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(plainRequests(server, '/api/v1/namespaces')).toBe(1);
  });

  test('a watch the server ends cleanly is re-opened by the informer itself', async () => {
    const { server, kubeconfig, api } = await setup();
    const informer = makeInformer<V1Namespace>(kubeconfig, '/api/v1/namespaces', () => api.listNamespace());
    const seen = await run(informer);
    await waitFor('the watch', () => server.openWatchCount() === 1);

    server.endWatches();
    server.create(namespace('after-end'));
    await waitFor('the namespace', () => seen.events.includes('add after-end'));
    expect(seen.errors).toEqual([]);
    expect(server.requests.filter((r) => r.watch).length).toBeGreaterThanOrEqual(2);
  });

  test('an expired resourceVersion (410) makes the informer relist and reconcile', async () => {
    const { server, kubeconfig, api } = await setup();
    server.create(namespace('kept'));
    server.create(namespace('removed'));
    const informer = makeInformer<V1Namespace>(kubeconfig, '/api/v1/namespaces', () => api.listNamespace());
    const seen = await run(informer);
    await waitFor('the watch', () => server.openWatchCount() === 1);

    await server.goDown();
    server.remove('Namespace', undefined, 'removed');
    server.create(namespace('added'));
    server.expireHistory();
    await server.comeUp();
    await waitFor(
      'the relist',
      () => seen.events.includes('add added') && seen.events.includes('delete removed'),
    );
    expect(seen.events.filter((e) => e.includes('kept'))).toEqual(['add kept']);
    expect(plainRequests(server, '/api/v1/namespaces')).toBeGreaterThanOrEqual(2);
    expect(informer.list().map((n) => n.metadata?.name)).toEqual(expect.arrayContaining(['kept', 'added']));
    expect(informer.list()).toHaveLength(2);
  });

  test('a raw watch from an expired version gets an ERROR event with a 410 Expired Status', async () => {
    const { server, kubeconfig } = await setup();
    server.create(namespace('x'));
    const old = server.resourceVersion();
    server.expireHistory();
    const events: Array<{ type: string; object: { code?: number; reason?: string } }> = [];
    let done: unknown = 'not yet';
    await new Watch(kubeconfig).watch(
      '/api/v1/namespaces',
      { resourceVersion: old },
      (type: string, object: { code?: number; reason?: string }) => events.push({ type, object }),
      (error: unknown) => {
        done = error;
      },
    );
    await waitFor('the end of the stream', () => done !== 'not yet');
    expect(done).toBeNull();
    expect(events).toEqual([
      { type: 'ERROR', object: expect.objectContaining({ code: 410, reason: 'Expired' }) },
    ]);
  });

  test('the API server going down and coming up again: the restarted informer catches up', async () => {
    const { server, kubeconfig, api } = await setup();
    server.create(pod('a', 'web', { ip: '10.0.0.1' }));
    const informer = makeInformer<V1Pod>(kubeconfig, '/api/v1/pods', () => api.listPodForAllNamespaces());
    const seen = await run(informer);
    await waitFor('the watch', () => server.openWatchCount() === 1);

    const down = server.goDown(2000);
    await expect(api.listPodForAllNamespaces()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    server.patch('Pod', 'a', 'web', (p) => {
      p.status.podIP = '10.0.0.2';
    });
    await down;
    expect(server.isUp()).toBe(false);
    await server.comeUp();

    await waitFor('the catch-up', () => informer.get('web', 'a')?.status?.podIP === '10.0.0.2');
    await waitFor('a watch again', () => server.openWatchCount() === 1);
    expect(seen.events).toEqual(['add web', 'update web']);
    expect(seen.errors.length).toBeGreaterThanOrEqual(1);
    expect((await api.listPodForAllNamespaces()).items).toHaveLength(1);
  });

  test('bookmarks when allowed, and timeoutSeconds ends the watch cleanly', async () => {
    const { server, kubeconfig } = await setup({ bookmarkIntervalMs: 60_000 });
    const events: string[] = [];
    let done: unknown = 'not yet';
    await new Watch(kubeconfig).watch(
      '/api/v1/pods',
      { allowWatchBookmarks: true, resourceVersion: server.resourceVersion(), timeoutSeconds: 1 },
      (type: string, obj: V1Pod) => events.push(`${type} ${obj.metadata?.resourceVersion}`),
      (error: unknown) => {
        done = error;
      },
    );
    await waitFor('the watch', () => server.openWatchCount() === 1);
    server.create(pod('a', 'p'));
    server.sendBookmarks();
    await waitFor('the timeout', () => done !== 'not yet');
    expect(done).toBeNull();
    const rv = server.resourceVersion();
    expect(events).toEqual([`ADDED ${rv}`, `BOOKMARK ${rv}`]);
  });
});
