// The admin server of the live controller (`dispatcher --nginx` against the test API server):
// health and readiness through the lifecycle, metrics as reloads succeed and fail, the routing
// table as JSON and as a page in a real headless Chromium, and TEMPLATES_DIR checked at start and
// watched while running.
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RoutesView } from '../../src/admin/routes-view.js';
import { main } from '../../src/cli.js';
import { bundledTemplatesDir } from '../../src/render/templates.js';
import { type Backend, closeAll, startBackends } from '../support/backends.js';
import { request } from '../support/http.js';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.js';
import { type ApiObject, namespace, pod } from '../support/kube-objects.js';
import { type LiveRun, startLiveRun, waitForAnswers } from '../support/live-run.js';
import { freePort } from '../support/nginx.js';
import { waitFor } from '../support/wait.js';

const ROUTABLE_LABEL = 'github.com/30x.dispatcher.routable';
const HOSTS = 'github.com/30x.dispatcher.hosts';
const PATHS = 'github.com/30x.dispatcher.paths';
const HOST = 'shop.example.com';
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

function routableNamespace(name: string, hosts: string[], creationTimestamp: string): ApiObject {
  return namespace(name, {
    labels: { [ROUTABLE_LABEL]: 'true' },
    annotations: { [HOSTS]: JSON.stringify(Object.fromEntries(hosts.map((h) => [h, {}]))) },
    creationTimestamp,
  });
}

/** A ready pod at backend `b`'s address routing `basePath` to `containerPort` (default: b's port, declared). */
function podOn(
  ns: string,
  name: string,
  b: Backend,
  basePath: string,
  containerPort = String(b.port),
): ApiObject {
  return pod(ns, name, {
    ip: b.host,
    ports: [b.port],
    labels: { [ROUTABLE_LABEL]: 'true' },
    annotations: { [PATHS]: JSON.stringify([{ basePath, containerPort }]) },
  });
}

// ------------------------------------------------------------------ the admin endpoints over HTTP

interface AdminAnswer {
  status: number;
  body: string;
}

async function admin(port: number, path: string): Promise<AdminAnswer> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

/** The admin answer, or undefined while nothing listens on the port. */
async function adminIfUp(port: number, path: string): Promise<AdminAnswer | undefined> {
  try {
    return await admin(port, path);
  } catch {
    return undefined;
  }
}

async function waitForAdmin(
  port: number,
  path: string,
  accept: (a: AdminAnswer) => boolean,
  what: string,
): Promise<AdminAnswer> {
  let last: AdminAnswer | undefined;
  try {
    await waitFor(what, async () => {
      last = await adminIfUp(port, path);
      return last !== undefined && accept(last);
    });
  } catch (error) {
    throw new Error(`${(error as Error).message} (last answer: ${JSON.stringify(last)})`);
  }
  return last as AdminAnswer;
}

async function routesOf(port: number): Promise<RoutesView> {
  return JSON.parse((await admin(port, '/routes')).body) as RoutesView;
}

/** One sample of the Prometheus exposition, e.g. `dispatcher_reloads_total{result="success"}`; 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

async function metric(port: number, series: string): Promise<number> {
  return sample((await admin(port, '/metrics')).body, series);
}

const RELOADED = 'dispatcher_reloads_total{result="success"}';
const REFUSED = 'dispatcher_reloads_total{result="failure"}';

// ------------------------------------------------------------------ templates

/** A copy of the bundled templates; `breakLongPaths` makes nginx refuse locations of 6+ characters (`/break`). */
function copyTemplates(options: { breakLongPaths?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'dispatcher-admin-templates-'));
  cpSync(bundledTemplatesDir, dir, { recursive: true });
  if (options.breakLongPaths) {
    // The view's path is quoted (`"/break"`): a 7th character exists only for paths of 6 or more.
    editLocation(dir, '{{#if (lookup path 6)}}\n      this_directive_does_not_exist on;\n{{/if}}\n');
  }
  return dir;
}

/** Inserts `lines` right after the opening line of the location partial. */
function editLocation(dir: string, lines: string): void {
  const file = join(dir, 'partials', 'location.hbs');
  const original = readFileSync(file, 'utf8');
  const opening = /^\s*location .*\{\n/m;
  if (!opening.test(original)) throw new Error(`no location block in ${file}`);
  writeFileSync(
    file,
    original.replace(opening, (line) => `${line}${lines}`),
  );
}

// ------------------------------------------------------------------ lifecycle of each test

let backends: Backend[] = [];
let server: KubeApiServer | undefined;
let run: LiveRun | undefined;
let pending: Promise<LiveRun> | undefined;
const temporary: string[] = [];

beforeAll(async () => {
  backends = await startBackends(3);
});

afterAll(async () => {
  await closeAll(backends);
});

afterEach(async () => {
  const ending = run ?? (await pending?.catch(() => undefined));
  run = undefined;
  pending = undefined;
  try {
    if (ending) expect((await ending.stop()).survivors).toEqual([]);
  } finally {
    await server?.close();
    server = undefined;
    for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
});

function backend(index: number): Backend {
  const found = backends[index];
  if (!found) throw new Error(`no backend ${index}`);
  return found;
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

async function setup(
  env: Record<string, string> = {},
): Promise<{ api: KubeApiServer; live: LiveRun; adminPort: number }> {
  const api = await startKubeApiServer();
  server = api;
  const live = await startLiveRun({
    kubeconfig: api.kubeconfigPath,
    env: { ADMIN_BIND: '127.0.0.1', ...env },
  });
  run = live;
  const adminPort = live.running.adminPort;
  if (adminPort === undefined) throw new Error('the live run has no admin server');
  return { api, live, adminPort };
}

/** Namespace `shop` on HOST with web-1 (backend 0) at `/`, served before this resolves. */
async function shopWithOnePod(api: KubeApiServer, live: LiveRun): Promise<void> {
  api.create(routableNamespace('shop', [HOST], '2020-01-01T00:00:00Z'));
  api.create(podOn('shop', 'web-1', backend(0), '/'));
  await waitForAnswers('web-1 to answer', live.port, { host: HOST }, (a) => a === 'pod-1');
  await live.running.controller.idle();
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // gone already
    }
  }
}

function chromium(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${CHROMIUM} failed: ${error.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

function headless(profile: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
  ];
}

describe('admin server of the live controller', () => {
  it('is not ready until the first full list is applied, then ready', async () => {
    const api = await startKubeApiServer();
    server = api;
    api.create(routableNamespace('shop', [HOST], '2020-01-01T00:00:00Z'));
    api.create(podOn('shop', 'web-1', backend(0), '/'));
    await api.goDown();
    const adminPort = await freePort();
    // startRun resolves once the first list is applied: with the API down, only the admin port answers.
    pending = startLiveRun({
      kubeconfig: api.kubeconfigPath,
      env: { ADMIN_PORT: String(adminPort), ADMIN_BIND: '127.0.0.1' },
    });
    pending.catch(() => undefined);

    const notReady = await waitForAdmin(adminPort, '/readyz', () => true, 'the admin server to answer');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain('first full list');
    const unhealthy = await waitForAdmin(
      adminPort,
      '/healthz',
      (a) => a.status === 503,
      'the failing list to show',
    );
    expect(unhealthy.body).toMatch(/^source: .*watch failing/m);
    const empty = await routesOf(adminPort);
    expect(empty).toMatchObject({ ready: false, hosts: [] });

    await api.comeUp();
    run = await pending;
    expect((await admin(adminPort, '/readyz')).status).toBe(200);
    await waitForAdmin(adminPort, '/healthz', (a) => a.status === 200, '/healthz to turn 200');
    const routes = await routesOf(adminPort);
    expect(routes.ready).toBe(true);
    expect(routes.hosts.map((h) => h.host)).toEqual([HOST]);
    await waitForAnswers('web-1 to answer', run.port, { host: HOST }, (a) => a === 'pod-1');
  });

  it('stays not ready while nginx refuses the first full list, and turns ready once a render is served', async () => {
    const templatesDir = copyTemplates({ breakLongPaths: true });
    temporary.push(templatesDir);
    const api = await startKubeApiServer();
    server = api;
    api.create(routableNamespace('shop', [HOST], '2020-01-01T00:00:00Z'));
    api.create(podOn('shop', 'web-1', backend(0), '/'));
    api.create(podOn('shop', 'breaker', backend(1), '/break'));
    const live = await startLiveRun({
      kubeconfig: api.kubeconfigPath,
      env: { ADMIN_BIND: '127.0.0.1', TEMPLATES_DIR: templatesDir },
    });
    run = live;
    const adminPort = live.running.adminPort as number;
    expect(live.running.controller.state.rejected).toBe(1);
    expect((await admin(adminPort, '/readyz')).status).toBe(503);
    expect((await admin(adminPort, '/healthz')).status).toBe(200);

    api.remove('Pod', 'shop', 'breaker');
    await waitForAdmin(adminPort, '/readyz', (a) => a.status === 200, '/readyz to turn 200');
    await waitForAnswers('web-1 to answer', live.port, { host: HOST }, (a) => a === 'pod-1');
  });

  it('answers /healthz 503 naming nginx while nginx is frozen, and naming the watch while the API is down', async () => {
    const { api, live, adminPort } = await setup();
    await shopWithOnePod(api, live);
    expect(await admin(adminPort, '/healthz')).toEqual({ status: 200, body: 'ok\n' });

    const frozen = [live.masterPid, ...live.workerPids()];
    expect(frozen.length).toBeGreaterThan(1);
    signal(frozen, 'SIGSTOP');
    try {
      const stopped = await waitForAdmin(
        adminPort,
        '/healthz',
        (a) => a.status === 503,
        '/healthz to notice nginx',
      );
      expect(stopped.body).toBe(`nginx: nginx does not answer on port ${live.port}\n`);
      expect((await admin(adminPort, '/readyz')).status).toBe(200);
    } finally {
      signal(frozen, 'SIGCONT');
    }
    await waitForAdmin(adminPort, '/healthz', (a) => a.status === 200, '/healthz to recover with nginx');

    await api.goDown();
    const down = await waitForAdmin(
      adminPort,
      '/healthz',
      (a) => a.status === 503,
      '/healthz to notice the API',
    );
    expect(down.body).toMatch(/^source: (Namespace|Pod|Secret) watch failing: /);
    expect(down.body).not.toContain('nginx:');
    await api.comeUp();
    await waitForAdmin(adminPort, '/healthz', (a) => a.status === 200, '/healthz to recover with the API');
    expect(await metric(adminPort, 'dispatcher_watch_restarts_total{kind="Pod"}')).toBeGreaterThan(0);
    await waitForAnswers('web-1 to answer after the outage', live.port, { host: HOST }, (a) => a === 'pod-1');
  });

  it('counts reloads and refusals, events, and the routing table in /metrics', async () => {
    const templatesDir = copyTemplates({ breakLongPaths: true });
    temporary.push(templatesDir);
    const { api, live, adminPort } = await setup({ TEMPLATES_DIR: templatesDir });
    await shopWithOnePod(api, live);
    const reloaded = await metric(adminPort, RELOADED);
    expect(reloaded).toBeGreaterThan(0);
    expect(await metric(adminPort, 'dispatcher_last_reload_success')).toBe(1);

    api.create(podOn('shop', 'two', backend(1), '/two'));
    await waitForAnswers('/two to answer', live.port, { host: HOST, path: '/two' }, (a) => a === 'pod-2');
    await waitFor(
      'the reload to be counted',
      async () => (await metric(adminPort, RELOADED)) === reloaded + 1,
    );

    const refusedAt = Date.now() / 1000;
    api.create(podOn('shop', 'breaker', backend(2), '/break'));
    await waitFor(
      'the refused configuration to be counted',
      async () => (await metric(adminPort, REFUSED)) === 1,
    );
    let text = (await admin(adminPort, '/metrics')).body;
    expect(sample(text, 'dispatcher_last_reload_success')).toBe(0);
    expect(sample(text, 'dispatcher_last_reload_timestamp_seconds')).toBeGreaterThanOrEqual(
      Math.floor(refusedAt),
    );
    expect(sample(text, RELOADED)).toBe(reloaded + 1);
    expect(live.liveConfig()).not.toContain('this_directive_does_not_exist');
    await waitForAnswers('nginx to keep serving /', live.port, { host: HOST }, (a) => a === 'pod-1');

    api.remove('Pod', 'shop', 'breaker');
    api.create(routableNamespace('blog', ['blog.example.com'], '2021-01-01T00:00:00Z'));
    api.create(podOn('blog', 'writer', backend(2), '/'));
    await waitForAnswers('the blog to answer', live.port, { host: 'blog.example.com' }, (a) => a === 'pod-3');
    await waitFor(
      'the recovery to be counted',
      async () => (await metric(adminPort, RELOADED)) >= reloaded + 2,
    );
    await live.running.controller.idle();

    text = (await admin(adminPort, '/metrics')).body;
    expect(sample(text, 'dispatcher_last_reload_success')).toBe(1);
    expect(sample(text, REFUSED)).toBe(1);
    // The cluster now: 2 namespaces, 3 pods; hosts shop and blog; locations shop / and /two, blog /.
    expect(sample(text, 'dispatcher_routable_namespaces')).toBe(2);
    expect(sample(text, 'dispatcher_routable_pods')).toBe(3);
    expect(sample(text, 'dispatcher_hosts')).toBe(2);
    expect(sample(text, 'dispatcher_locations')).toBe(3);
    expect(sample(text, 'dispatcher_upstreams')).toBe(3);
    expect(sample(text, 'dispatcher_events_total{kind="Pod",type="added"}')).toBe(4);
    expect(sample(text, 'dispatcher_events_total{kind="Pod",type="deleted"}')).toBe(1);
    expect(sample(text, 'dispatcher_events_total{kind="Namespace",type="added"}')).toBe(2);
    expect(sample(text, 'dispatcher_render_duration_seconds_count')).toBeGreaterThanOrEqual(4);
    expect(sample(text, 'dispatcher_batch_size_count')).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/^(process_cpu_user_seconds_total|nodejs_heap_size_total_bytes) \d/m);
  });

  it('explains in /routes and on the page in Chromium who serves what and what was left out', async () => {
    const { api, live, adminPort } = await setup();
    await shopWithOnePod(api, live);
    // blog is younger than shop: it may add /blog to the shared host but not take `/`.
    api.create(routableNamespace('blog', [HOST], '2021-01-01T00:00:00Z'));
    api.create(podOn('blog', 'writer', backend(1), '/blog'));
    api.create(podOn('blog', 'usurper', backend(2), '/'));
    api.create(podOn('shop', 'bad-port', backend(2), '/', '8080'));
    await waitForAnswers('/blog to answer', live.port, { host: HOST, path: '/blog' }, (a) => a === 'pod-2');
    await live.running.controller.idle();

    const routes = await routesOf(adminPort);
    expect(routes.ready).toBe(true);
    expect(routes.hosts).toHaveLength(1);
    const [host] = routes.hosts;
    expect(host?.host).toBe(HOST);
    expect(host?.namespaces).toEqual(['shop', 'blog']);
    expect(
      host?.locations.map((l) => ({ path: l.path, namespace: l.namespace, pods: l.pods.map((p) => p.name) })),
    ).toEqual([
      { path: '/', namespace: 'shop', pods: ['web-1'] },
      { path: '/blog', namespace: 'blog', pods: ['writer'] },
    ]);
    expect(host?.locations[0]?.pods[0]?.address).toBe(backend(0).address);
    expect(routes.diagnostics).toContainEqual({
      severity: 'warning',
      object: 'Pod shop/bad-port',
      field: `metadata.annotations["${PATHS}"][0].containerPort`,
      reason: 'port 8080 is not declared by any container of the pod; entry left out',
    });
    expect(routes.diagnostics).toContainEqual(
      expect.objectContaining({
        object: 'Namespace blog',
        field: `host ${HOST} path /`,
        reason: expect.stringContaining('already served by older namespace shop'),
      }),
    );

    const profile = tempDir('dispatcher-chromium-');
    const url = `http://127.0.0.1:${adminPort}/`;
    const { stdout: dom } = await chromium([...headless(profile), '--dump-dom', url]);
    expect(dom).toContain('<h1>dispatcher routes</h1>');
    for (const text of [
      HOST,
      '/blog',
      'web-1',
      'writer',
      backend(1).address,
      'Pod shop/bad-port',
      'Namespace blog',
    ]) {
      expect(dom).toContain(text);
    }
    expect(dom).toContain('port 8080 is not declared by any container of the pod; entry left out');
    expect(dom).toContain('already served by older namespace shop');

    const screenshot = join(profile, 'routes.png');
    await chromium([...headless(profile), `--screenshot=${screenshot}`, '--window-size=1200,900', url]);
    expect(existsSync(screenshot)).toBe(true);
    const png = readFileSync(screenshot);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    // A blank 1200×900 page compresses to about 5 KB, a heading and a line to about 12 KB; this page
    // with its tables to about 60 KB.
    expect(statSync(screenshot).size).toBeGreaterThan(30_000);
  });

  it('picks up a template edit, refuses a broken one and one nginx rejects, and keeps serving', async () => {
    const templatesDir = copyTemplates();
    temporary.push(templatesDir);
    const { api, live, adminPort } = await setup({ TEMPLATES_DIR: templatesDir });
    await shopWithOnePod(api, live);
    const state = live.running.controller.state;
    const hasEditHeader = async () =>
      (await request(live.port, { host: HOST })).headers['x-template-edit'] === 'yes';

    editLocation(templatesDir, '      add_header X-Template-Edit yes;\n');
    await waitFor('the edited template to be served', hasEditHeader);
    expect(live.logged('templates reloaded').length).toBeGreaterThan(0);

    const locationPartial = join(templatesDir, 'partials', 'location.hbs');
    const good = readFileSync(locationPartial, 'utf8');
    writeFileSync(locationPartial, `${good}{{#if apiKey}}\n  unclosed block\n`);
    await waitFor(
      'the broken template to be refused',
      () => live.logged('templates not reloaded').length > 0,
    );
    const [refusal] = live.logged('templates not reloaded');
    expect(refusal?.level).toBe(50);
    expect(String(refusal?.reason)).toContain(locationPartial);
    expect(String(refusal?.reason)).toMatch(/line \d+/);
    expect(await hasEditHeader()).toBe(true);
    expect((await request(live.port, { host: HOST })).status).toBe(200);

    const rejectedBefore = state.rejected;
    const refusedBefore = await metric(adminPort, REFUSED);
    writeFileSync(
      locationPartial,
      good.replace(
        'add_header X-Template-Edit yes;',
        'add_header X-Template-Edit yes;\n      this_directive_does_not_exist on;',
      ),
    );
    await waitFor('nginx to refuse the edited configuration', () => state.rejected > rejectedBefore);
    await live.running.controller.idle();
    // Every refusal counted (chokidar may report one write twice: each render is checked again).
    expect(await metric(adminPort, REFUSED)).toBe(refusedBefore + state.rejected - rejectedBefore);
    expect(await metric(adminPort, 'dispatcher_last_reload_success')).toBe(0);
    expect(String(live.logged('configuration rejected').at(-1)?.nginx)).toContain(
      'this_directive_does_not_exist',
    );
    expect(live.liveConfig()).not.toContain('this_directive_does_not_exist');
    const served = await request(live.port, { host: HOST });
    expect(served.status).toBe(200);
    expect(served.headers['x-template-edit']).toBe('yes');
  });
});

describe('TEMPLATES_DIR checked at start', () => {
  async function startWith(templatesDir: string): Promise<{ code: number; stderr: string }> {
    const manifests = tempDir('dispatcher-admin-manifests-');
    let stderr = '';
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    }) as typeof process.stderr.write;
    try {
      const code = await main(['--manifests', manifests, '--mock', '--once'], {
        TEMPLATES_DIR: templatesDir,
      });
      return { code, stderr };
    } finally {
      process.stderr.write = write;
    }
  }

  it('exits 1 naming the file and line when a partial is missing', async () => {
    const dir = copyTemplates();
    temporary.push(dir);
    unlinkSync(join(dir, 'partials', 'proxy-headers.hbs'));
    const { code, stderr } = await startWith(dir);
    expect(code).toBe(1);
    expect(stderr).toMatch(/TEMPLATES_DIR/);
    expect(stderr).toMatch(/nginx\.conf\.hbs line \d+: partial "proxy-headers" not found/);
  });

  it('exits 1 naming the file and line of a syntax error', async () => {
    const dir = copyTemplates();
    temporary.push(dir);
    const serverPartial = join(dir, 'partials', 'server.hbs');
    writeFileSync(serverPartial, `${readFileSync(serverPartial, 'utf8')}{{#each locations}\n`);
    const { code, stderr } = await startWith(dir);
    expect(code).toBe(1);
    expect(stderr).toContain(serverPartial);
    expect(stderr).toMatch(/line \d+/);
  });
});
