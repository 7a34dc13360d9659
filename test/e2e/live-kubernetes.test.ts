// The live controller (`dispatcher --nginx --kubeconfig`) against the test API server: what a
// client sees through the real nginx while namespaces, pods and secrets change, while the API
// server misbehaves, and when nginx refuses a render or dies (SPEC section 4).
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bundledTemplatesDir } from '../../src/render/templates.js';
import { type Backend, closeAll, startBackends } from '../support/backends.js';
import { request } from '../support/http.js';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.js';
import { type ApiObject, namespace, pod, secret } from '../support/kube-objects.js';
import {
  answeredBy,
  keepRequesting,
  type LiveRun,
  startLiveRun,
  waitForAnswers,
} from '../support/live-run.js';
import { waitFor } from '../support/wait.js';

const ROUTABLE_LABEL = 'github.com/30x.dispatcher.routable';
const ROUTABLE_SELECTOR = `${ROUTABLE_LABEL}=true`;
const HOSTS = 'github.com/30x.dispatcher.hosts';
const PATHS = 'github.com/30x.dispatcher.paths';
const KEY_HEADER = 'X-ROUTING-API-KEY';
const HOST = 'shop.example.com';

const b64 = (text: string): string => Buffer.from(text).toString('base64');

function routableNamespace(name: string, hosts: string[]): ApiObject {
  return namespace(name, {
    labels: { [ROUTABLE_LABEL]: 'true' },
    annotations: { [HOSTS]: JSON.stringify(Object.fromEntries(hosts.map((h) => [h, {}]))) },
  });
}

/** A ready pod whose address is backend `b` and which routes `basePath` to b's port. */
function podOn(ns: string, name: string, b: Backend, basePath = '/', weight?: number): ApiObject {
  const entry = { basePath, containerPort: String(b.port), ...(weight !== undefined && { weight }) };
  return pod(ns, name, {
    ip: b.host,
    ports: [b.port],
    labels: { [ROUTABLE_LABEL]: 'true' },
    annotations: { [PATHS]: JSON.stringify([entry]) },
  });
}

function setReady(p: ApiObject, ready: boolean): void {
  const status = ready ? 'True' : 'False';
  for (const condition of p.status.conditions) {
    if (condition.type === 'Ready' || condition.type === 'ContainersReady') condition.status = status;
  }
  for (const container of p.status.containerStatuses) container.ready = ready;
}

let backends: Backend[] = [];
let server: KubeApiServer | undefined;
let run: LiveRun | undefined;

beforeAll(async () => {
  backends = await startBackends(4);
});

afterAll(async () => {
  await closeAll(backends);
});

afterEach(async () => {
  const ending = run;
  run = undefined;
  try {
    if (ending) expect((await ending.stop()).survivors).toEqual([]);
  } finally {
    await server?.close();
    server = undefined;
  }
});

function backend(index: number): Backend {
  const found = backends[index];
  if (!found) throw new Error(`no backend ${index}`);
  return found;
}

async function setup(env: Record<string, string> = {}): Promise<{ api: KubeApiServer; live: LiveRun }> {
  const api = await startKubeApiServer();
  server = api;
  const live = await startLiveRun({ kubeconfig: api.kubeconfigPath, env });
  run = live;
  return { api, live };
}

/** Namespace `shop` with HOST and pod web-1 on backend 0 at `/`, served by every worker when this resolves. */
async function shopWithOnePod(api: KubeApiServer, live: LiveRun): Promise<void> {
  api.create(routableNamespace('shop', [HOST]));
  api.create(podOn('shop', 'web-1', backend(0)));
  await waitForAnswers('web-1 to answer', live.port, { host: HOST }, (a) => a === 'pod-1');
  await live.running.controller.idle();
  await live.settled();
}

const errorsLogged = (live: LiveRun) => live.logs.filter((r) => r.level >= 50);

describe('live controller against the Kubernetes API', () => {
  it('routes pods as they come, scale, leave or turn unready, follows key changes, and drops a namespace that stops being routable', async () => {
    const { api, live } = await setup();
    api.create(routableNamespace('shop', [HOST]));
    api.create(secret('shop', 'routing', { 'api-key': 'key-one' }));
    api.create(podOn('shop', 'web-1', backend(0)));
    const withKey = (key: string) => ({ host: HOST, headers: { [KEY_HEADER]: b64(key) } });
    await waitForAnswers('web-1 to answer', live.port, withKey('key-one'), (a) => a === 'pod-1');

    api.create(podOn('shop', 'web-2', backend(1)));
    api.create(podOn('shop', 'web-3', backend(2)));
    const seen = new Set<string>();
    await waitFor(`all three pods to answer (seen: ${[...seen].join(', ')})`, async () => {
      seen.add(answeredBy(await request(live.port, withKey('key-one'))));
      return ['pod-1', 'pod-2', 'pod-3'].every((p) => seen.has(p));
    });
    expect([...seen].sort()).toEqual(['pod-1', 'pod-2', 'pod-3']);

    api.remove('Pod', 'shop', 'web-2');
    const afterDelete = await waitForAnswers(
      'web-2 to stop receiving traffic',
      live.port,
      withKey('key-one'),
      (a) => a === 'pod-1' || a === 'pod-3',
      20,
    );
    expect(new Set(afterDelete)).toEqual(new Set(['pod-1', 'pod-3']));

    api.patch('Pod', 'shop', 'web-3', (p) => setReady(p, false));
    await waitForAnswers(
      'unready web-3 to stop receiving traffic',
      live.port,
      withKey('key-one'),
      (a) => a === 'pod-1',
      20,
    );

    api.patch('Secret', 'shop', 'routing', (s) => {
      s.data = { 'api-key': b64('key-two') };
    });
    await waitForAnswers('the old key to be refused', live.port, withKey('key-one'), (a) => a === '403', 5);
    await waitForAnswers(
      'the new key to be accepted',
      live.port,
      withKey('key-two'),
      (a) => a === 'pod-1',
      5,
    );
    expect(answeredBy(await request(live.port, { host: HOST }))).toBe('403');

    api.patch('Namespace', undefined, 'shop', (ns) => {
      delete ns.metadata.labels?.[ROUTABLE_LABEL];
    });
    await waitForAnswers(
      'an unlabelled namespace to lose its host',
      live.port,
      withKey('key-two'),
      (a) => a === 'closed',
      5,
    );

    api.patch('Namespace', undefined, 'shop', (ns) => {
      ns.metadata.labels = { [ROUTABLE_LABEL]: 'true' };
    });
    await waitForAnswers(
      'the relabelled namespace to route again',
      live.port,
      withKey('key-two'),
      (a) => a === 'pod-1',
      5,
    );

    api.remove('Namespace', undefined, 'shop');
    await waitForAnswers(
      'a deleted namespace to lose its host',
      live.port,
      withKey('key-two'),
      (a) => a === 'closed',
      5,
    );

    expect(live.running.controller.state.rejected).toBe(0);
    expect(errorsLogged(live)).toEqual([]);
  });

  it('lists and watches only routing secrets by name, and namespaces and pods by the routable label', async () => {
    const { api, live } = await setup();
    api.create(routableNamespace('shop', [HOST]));
    api.create(secret('shop', 'routing', { 'api-key': 'key-one' }));
    api.create(secret('shop', 'database', { password: 'not for dispatcher' }));
    api.create(podOn('shop', 'web-1', backend(0)));
    api.create(pod('shop', 'unlabelled', { ip: backend(1).host, ports: [backend(1).port] }));
    await waitForAnswers(
      'web-1 to answer with the key',
      live.port,
      { host: HOST, headers: { [KEY_HEADER]: b64('key-one') } },
      (a) => a === 'pod-1',
    );

    const to = (path: string) => api.requests.filter((r) => r.path === path);
    for (const [path, selector] of [
      ['/api/v1/namespaces', { labelSelector: ROUTABLE_SELECTOR }],
      ['/api/v1/pods', { labelSelector: ROUTABLE_SELECTOR }],
      ['/api/v1/secrets', { fieldSelector: 'metadata.name=routing' }],
    ] as const) {
      const requests = to(path);
      expect(requests.some((r) => r.watch)).toBe(true);
      expect(requests.some((r) => !r.watch)).toBe(true);
      for (const r of requests) expect(r.query).toMatchObject(selector);
    }
    // Nothing else was asked for: no per-namespace secrets, no unselected lists.
    expect(new Set(api.requests.map((r) => r.path))).toEqual(
      new Set(['/api/v1/namespaces', '/api/v1/pods', '/api/v1/secrets']),
    );
    const events = live.running.controller.state.events;
    expect(events.get('Secret/added')).toBe(1);
    expect(events.get('Pod/added')).toBe(1);
  });

  it('gathers a burst of 500 events into one reload and does not reload for changes routing ignores', async () => {
    const { api, live } = await setup({ BATCH_WINDOW_MS: '2000' });
    await shopWithOnePod(api, live);
    const state = live.running.controller.state;
    const before = {
      applied: state.applied,
      renders: state.renders,
      added: state.events.get('Pod/added') ?? 0,
      modified: state.events.get('Pod/modified') ?? 0,
      appliedLines: live.logged('configuration applied').length,
    };

    // 250 new pods (nothing listens on their port 9: they only have to reach the configuration)
    // and 250 weight changes of web-1, all inside one window.
    for (let i = 1; i <= 250; i++) {
      const bulk = pod('shop', `bulk-${i}`, {
        ip: `127.0.1.${i}`,
        ports: [9],
        labels: { [ROUTABLE_LABEL]: 'true' },
        annotations: { [PATHS]: JSON.stringify([{ basePath: '/bulk', containerPort: '9' }]) },
      });
      api.create(bulk);
      api.update(podOn('shop', 'web-1', backend(0), '/', i));
    }
    await waitFor(
      'the controller to receive the burst',
      () =>
        state.events.get('Pod/added') === before.added + 250 &&
        state.events.get('Pod/modified') === before.modified + 250,
    );
    await waitFor('the burst to be applied', () => state.applied > before.applied);
    await live.running.controller.idle();

    expect(state.applied).toBe(before.applied + 1);
    expect(state.renders).toBe(before.renders + 1);
    expect(state.lastBatchSize).toBe(500);
    expect(live.logged('configuration applied')).toHaveLength(before.appliedLines + 1);
    const config = live.liveConfig();
    expect(config.match(/server 127\.0\.1\.\d+:9;/g)).toHaveLength(250);
    expect(config).toContain(`server ${backend(0).address} weight=250;`);
    expect(answeredBy(await request(live.port, { host: HOST }))).toBe('pod-1');

    // A label routing does not read, and status heartbeats: events arrive, nothing is rendered.
    const quiet = {
      renders: state.renders,
      applied: state.applied,
      modified: state.events.get('Pod/modified') ?? 0,
    };
    api.patch('Pod', 'shop', 'web-1', (p) => {
      p.metadata.labels = { ...p.metadata.labels, team: 'checkout' };
    });
    for (const second of [1, 2, 3]) {
      api.patch('Pod', 'shop', 'web-1', (p) => {
        for (const condition of p.status.conditions) condition.lastProbeTime = `2024-06-01T00:00:0${second}Z`;
      });
    }
    api.patch('Namespace', undefined, 'shop', (ns) => {
      ns.metadata.annotations = { ...ns.metadata.annotations, 'example.com/owner': 'team-checkout' };
    });
    await waitFor('the controller to receive the quiet changes', () => {
      return (
        state.events.get('Pod/modified') === quiet.modified + 4 &&
        (state.events.get('Namespace/modified') ?? 0) >= 1
      );
    });
    await live.running.controller.idle();
    expect(state.renders).toBe(quiet.renders);
    expect(state.applied).toBe(quiet.applied);
  });

  it('keeps serving through dropped watches, 410 Gone and an API outage, and routes what changed meanwhile', async () => {
    const { api, live } = await setup();
    await shopWithOnePod(api, live);
    const state = live.running.controller.state;
    const loop = keepRequesting(live.port, { host: HOST, path: '/' });
    try {
      // A watch dropped mid-stream.
      expect(api.dropWatches()).toBe(3);
      await waitFor('the watches to come back', () => api.openWatchCount() === 3);
      api.create(podOn('shop', 'two', backend(1), '/two'));
      await waitForAnswers(
        'a path added after the drop',
        live.port,
        { host: HOST, path: '/two' },
        (a) => a === 'pod-2',
      );

      // Expired history: every kind relists.
      const lists = () => api.requests.filter((r) => !r.watch).length;
      const listsBefore = lists();
      api.expireHistory();
      api.endWatches();
      await waitFor(
        'a relist of every kind after 410',
        () => lists() >= listsBefore + 3 && api.openWatchCount() === 3,
      );
      api.create(podOn('shop', 'three', backend(2), '/three'));
      await waitForAnswers(
        'a path added after the relist',
        live.port,
        { host: HOST, path: '/three' },
        (a) => a === 'pod-3',
      );

      // The API server goes away for three seconds; meanwhile a pod comes, another goes, and the
      // history it could have resumed from is lost.
      const problemsBefore = state.sourceProblems;
      const outage = api.goDown(3000);
      api.create(podOn('shop', 'later', backend(3), '/later'));
      api.remove('Pod', 'shop', 'two');
      api.expireHistory();
      await outage;
      await api.comeUp();
      await waitForAnswers(
        'the pod created during the outage',
        live.port,
        { host: HOST, path: '/later' },
        (a) => a === 'pod-4',
      );
      await waitForAnswers(
        'the pod deleted during the outage to be gone',
        live.port,
        { host: HOST, path: '/two' },
        (a) => a === 'pod-1',
      );
      expect(state.sourceProblems).toBeGreaterThan(problemsBefore);
      expect(live.logged('watch failed; retrying').length).toBeGreaterThan(0);
    } finally {
      const answers = await loop.stop();
      expect(answers.length).toBeGreaterThan(20);
      expect(answers.filter((a) => a !== 'pod-1')).toEqual([]);
    }
    for (const r of api.requests.filter((q) => q.path === '/api/v1/secrets')) {
      expect(r.query.fieldSelector).toBe('metadata.name=routing');
    }
    expect(state.rejected).toBe(0);
  });

  it('keeps serving the last good configuration when nginx rejects a render, and applies again after', async () => {
    // Templates whose location partial emits a directive nginx does not know for paths of six
    // characters or more (`/break`): a render nginx -t rejects, triggered by one pod.
    const templatesDir = mkdtempSync(join(tmpdir(), 'dispatcher-templates-'));
    try {
      cpSync(bundledTemplatesDir, templatesDir, { recursive: true });
      const locationPartial = join(templatesDir, 'partials', 'location.hbs');
      const original = readFileSync(locationPartial, 'utf8');
      const opening = /^\s*location .*\{\n/m;
      expect(original).toMatch(opening);
      const breaking = '{{#if (lookup path 5)}}\n      this_directive_does_not_exist on;\n{{/if}}\n';
      writeFileSync(
        locationPartial,
        original.replace(opening, (line) => `${line}${breaking}`),
      );

      const { api, live } = await setup({ TEMPLATES_DIR: templatesDir });
      await shopWithOnePod(api, live);
      const state = live.running.controller.state;
      const appliedBefore = state.applied;
      const loop = keepRequesting(live.port, { host: HOST, path: '/' });
      try {
        api.create(podOn('shop', 'breaker', backend(1), '/break'));
        await waitFor('the render to be rejected', () => state.rejected === 1);
        const [rejection, ...more] = live.logged('configuration rejected');
        expect(more).toEqual([]);
        expect(rejection?.level).toBe(50);
        expect(String(rejection?.nginx)).toContain('unknown directive "this_directive_does_not_exist"');
        expect(state.applied).toBe(appliedBefore);
        expect(live.liveConfig()).not.toContain('this_directive_does_not_exist');
        expect(existsSync(join(live.prefix, '.nginx.conf.next'))).toBe(false);
        // The last good configuration has no /break location: `/` answers it.
        const broken = await request(live.port, { host: HOST, path: '/break' });
        expect(broken.json<{ pod: string; url: string }>()).toMatchObject({ pod: 'pod-1', url: '/break' });

        // Without the pod the render is what nginx already serves; the next change applies.
        const rendersBefore = state.renders;
        api.remove('Pod', 'shop', 'breaker');
        await waitFor('a render without the breaking pod', () => state.renders > rendersBefore);
        await live.running.controller.idle();
        expect(state.rejected).toBe(1);
        api.create(podOn('shop', 'web-2', backend(1), '/ok'));
        await waitForAnswers(
          'a route added after the rejection',
          live.port,
          { host: HOST, path: '/ok' },
          (a) => a === 'pod-2',
        );
        await waitFor('the apply to be counted', () => state.applied === appliedBefore + 1);
        await live.running.controller.idle();
        expect(state.rejected).toBe(1);
        expect(state.lastApplyOk).toBe(true);
      } finally {
        const answers = await loop.stop();
        expect(answers.length).toBeGreaterThan(5);
        expect(answers.filter((a) => a !== 'pod-1')).toEqual([]);
      }
    } finally {
      rmSync(templatesDir, { recursive: true, force: true });
    }
  });

  it('shuts down as on SIGTERM: watches closed, nginx gone, exit code 0', async () => {
    const { api, live } = await setup();
    await shopWithOnePod(api, live);
    expect(live.workerPids().length).toBeGreaterThan(0);
    await live.running.shutdown();
    expect(await live.running.done).toBe(0);
    const { code, survivors } = await live.stop();
    expect(code).toBe(0);
    expect(survivors).toEqual([]);
    await expect(request(live.port, { host: HOST })).rejects.toThrow(/ECONNREFUSED/);
    await waitFor('the watches to close', () => api.openWatchCount() === 0);
  });

  it('ends with exit code 2 when nginx dies, leaving no nginx process behind', async () => {
    const { api, live } = await setup();
    await shopWithOnePod(api, live);
    expect(live.workerPids().length).toBeGreaterThan(0);
    process.kill(live.masterPid, 'SIGKILL');
    expect(await live.running.done).toBe(2);
    const [died, ...more] = live.logs.filter((r) => r.level === 60);
    expect(more).toEqual([]);
    expect(died?.msg).toMatch(/^nginx exited/);
    expect(died?.signal).toBe('SIGKILL');
    const { code, survivors } = await live.stop();
    expect(code).toBe(2);
    expect(survivors).toEqual([]);
    await waitFor('the watches to close', () => api.openWatchCount() === 0);
  });
});
