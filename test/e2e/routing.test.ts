import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { renderOptionsFrom, routeObjects } from '../../src/pipeline.js';
import { bundledTemplatesDir, loadTemplates } from '../../src/render/templates.js';
import { render } from '../../src/render.js';
import type { KubeObject } from '../../src/types.js';
import { type Backend, type Echo, startBackend, streamChunks } from '../support/backends.js';
import { keepAliveAgent, request, requestFirstChunk, wsEcho } from '../support/http.js';
import { namespace, pod, secret } from '../support/kube-objects.js';
import { freePort, nginxProcessesUnder, type RunningNginx, startNginx } from '../support/nginx.js';
import { groupingTemplatesDir } from '../support/templates.js';
import { waitFor } from '../support/wait.js';

const ROUTABLE = { 'github.com/30x.dispatcher.routable': 'true' };
const HOSTS = 'github.com/30x.dispatcher.hosts';
const PATHS = 'github.com/30x.dispatcher.paths';
const API_KEY = 'supersecret';
const API_KEY_HEADER_VALUE = Buffer.from(API_KEY).toString('base64');
/** Over the 1 KiB bound of API keys: refused, so its namespace denies every request. */
const TOO_LONG_KEY = 'k'.repeat(2000);

interface PathEntry {
  basePath: string;
  containerPort: string | number;
  targetPath?: string;
  weight?: number;
}

function routableNamespace(name: string, hosts: string[], createdAt: string): KubeObject {
  const hostOptions = Object.fromEntries(hosts.map((h) => [h, {}]));
  return namespace(name, {
    labels: ROUTABLE,
    annotations: { [HOSTS]: JSON.stringify(hostOptions) },
    creationTimestamp: createdAt,
  });
}

/** A ready pod at `ip` whose single container declares `ports` and routes `paths`. */
function routablePod(ns: string, name: string, ip: string, ports: number[], paths: PathEntry[]): KubeObject {
  return pod(ns, name, { ip, ports, labels: ROUTABLE, annotations: { [PATHS]: JSON.stringify(paths) } });
}

/** A pod that is the single backend `b` and routes `paths` (each entry's port defaults to b's). */
function podOn(ns: string, b: Backend, paths: Array<Omit<PathEntry, 'containerPort'>>): KubeObject {
  return routablePod(
    ns,
    b.name,
    b.host,
    [b.port],
    paths.map((p) => ({ ...p, containerPort: String(b.port) })),
  );
}

function routingSecret(ns: string): KubeObject {
  return secret(ns, 'routing', { 'api-key': API_KEY });
}

function renderedConfig(objects: KubeObject[], env: Record<string, string>): string {
  const loaded = loadConfig(env);
  if (!loaded.ok) throw new Error(`invalid test configuration: ${JSON.stringify(loaded.errors)}`);
  const table = routeObjects(objects, loaded.config);
  const options = renderOptionsFrom(loaded.config, { healthChecks: 'passive', prefixRelativePaths: true });
  return render(loadTemplates(loaded.config.templatesDir), table, options);
}

/** Pod name → how many of `echoes` it answered. */
function countByPod(echoes: Echo[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of echoes) counts[e.pod] = (counts[e.pod] ?? 0) + 1;
  return counts;
}

describe('routing through a real nginx', () => {
  const backends: Backend[] = [];
  let port = 0;
  let nginx: RunningNginx | undefined;

  // Pods (each a real HTTP server). shop-web and shop-nodejs share one pod IP, as two containers'
  // ports of one pod would.
  let web: Backend;
  let nodejs: Backend;
  let rewrite: Backend;
  let live: Backend;
  let rr: Backend[];
  let heavy: Backend;
  let light: Backend;
  let locked: Backend;
  let vault: Backend;
  let elder: Backend;
  let younger: Backend;
  let youngerExtra: Backend;
  let fallback: Backend;
  let brokenKey: Backend;
  let unready: Backend;

  async function backend(host: string, name: string): Promise<Backend> {
    const b = await startBackend({ host, name });
    backends.push(b);
    return b;
  }

  function cluster(): KubeObject[] {
    return [
      // The younger namespace comes first in the list and by name: age alone must decide.
      routableNamespace('a-younger', ['shared.test'], '2025-06-01T00:00:00Z'),
      podOn('a-younger', younger, [{ basePath: '/' }]),
      podOn('a-younger', youngerExtra, [{ basePath: '/extra' }]),
      routableNamespace('shop', ['h1.test', 'h2.test'], '2024-01-01T00:00:00Z'),
      routablePod(
        'shop',
        'shop-web',
        web.host,
        [web.port, nodejs.port],
        [
          { basePath: '/', containerPort: String(web.port) },
          { basePath: '/nodejs', containerPort: nodejs.port },
        ],
      ),
      podOn('shop', rewrite, [{ basePath: '/foo', targetPath: '/bar' }]),
      podOn('shop', live, [{ basePath: '/live' }]),
      ...rr.map((b) => podOn('shop', b, [{ basePath: '/rr' }])),
      podOn('shop', heavy, [{ basePath: '/weighted', weight: 3 }]),
      podOn('shop', light, [{ basePath: '/weighted', weight: 1 }]),
      routableNamespace('locked', ['locked.test'], '2024-01-02T00:00:00Z'),
      routingSecret('locked'),
      podOn('locked', locked, [{ basePath: '/' }]),
      routableNamespace('vault', ['keyed.test'], '2024-01-03T00:00:00Z'),
      routingSecret('vault'),
      podOn('vault', vault, [{ basePath: '/api' }]),
      routableNamespace('z-elder', ['shared.test'], '2023-01-01T00:00:00Z'),
      podOn('z-elder', elder, [{ basePath: '/' }]),
      routableNamespace('nopods', ['empty.test'], '2024-01-04T00:00:00Z'),
      routableNamespace('broken-key', ['broken-key.test'], '2024-01-05T00:00:00Z'),
      secret('broken-key', 'routing', { 'api-key': TOO_LONG_KEY }),
      podOn('broken-key', brokenKey, [{ basePath: '/' }]),
      routableNamespace('starting', ['unready.test'], '2024-01-06T00:00:00Z'),
      pod('starting', unready.name, {
        ip: unready.host,
        ports: [unready.port],
        ready: false,
        labels: ROUTABLE,
        annotations: { [PATHS]: JSON.stringify([{ basePath: '/', containerPort: unready.port }]) },
      }),
    ];
  }

  async function get(host: string, path = '/', headers: Record<string, string> = {}) {
    return request(port, { host, path, headers });
  }

  async function echoFrom(host: string, path = '/', headers: Record<string, string> = {}): Promise<Echo> {
    const res = await get(host, path, headers);
    expect(res.status, `${host}${path}: ${res.body}`).toBe(200);
    return res.json<Echo>();
  }

  /** Reloads nginx with the cluster rendered under `env`; resolves once nginx serves it. */
  async function serve(env: Record<string, string>) {
    if (!nginx) throw new Error('nginx did not start');
    await nginx.reload(renderedConfig(cluster(), { ...env, PORT: String(port) }));
  }

  beforeAll(async () => {
    web = await backend('127.0.0.2', 'shop-web');
    nodejs = await backend('127.0.0.2', 'shop-nodejs');
    rewrite = await backend('127.0.0.3', 'shop-rewrite');
    live = await backend('127.0.0.4', 'shop-live');
    rr = [
      await backend('127.0.0.5', 'rr-1'),
      await backend('127.0.0.6', 'rr-2'),
      await backend('127.0.0.7', 'rr-3'),
    ];
    heavy = await backend('127.0.0.8', 'weight-3');
    light = await backend('127.0.0.9', 'weight-1');
    locked = await backend('127.0.0.10', 'locked-web');
    vault = await backend('127.0.0.11', 'vault-api');
    elder = await backend('127.0.0.12', 'elder-web');
    younger = await backend('127.0.0.13', 'younger-web');
    youngerExtra = await backend('127.0.0.14', 'younger-extra');
    fallback = await backend('127.0.0.15', 'fallback');
    brokenKey = await backend('127.0.0.16', 'broken-key-web');
    unready = await backend('127.0.0.17', 'unready-web');
    port = await freePort();
    nginx = await startNginx(renderedConfig(cluster(), { PORT: String(port) }));
  });

  afterAll(async () => {
    const prefix = nginx?.prefix;
    await nginx?.stop();
    await Promise.all(backends.map((b) => b.close()));
    if (prefix) {
      await waitFor(`no nginx left under ${prefix}`, () => nginxProcessesUnder(prefix).length === 0);
      await rm(prefix, { recursive: true, force: true });
    }
  });

  describe('with the default configuration', () => {
    it.each([
      ['h1.test', '/', 'shop-web'],
      ['h2.test', '/', 'shop-web'],
      ['h1.test', '/nodejs', 'shop-nodejs'],
      ['h2.test', '/nodejs', 'shop-nodejs'],
      ['h1.test', '/nodejs/deeper/page', 'shop-nodejs'],
      ['h2.test', '/anything/else', 'shop-web'],
      ['H1.Test', '/nodejs', 'shop-nodejs'], // host names are case-insensitive
    ])('every host of the namespace serves every path: %s%s reaches %s', async (host, path, expectedPod) => {
      const echo = await echoFrom(host, path);
      expect(echo.pod).toBe(expectedPod);
      expect(echo.url).toBe(path);
    });

    it('round-robins over every pod behind a path', async () => {
      // One client connection: one nginx worker, whose round robin is deterministic.
      const agent = keepAliveAgent();
      const echoes: Echo[] = [];
      for (let i = 0; i < 30; i++) {
        const res = await request(port, { host: 'h1.test', path: '/rr', agent });
        expect(res.status).toBe(200);
        echoes.push(res.json<Echo>());
      }
      agent.destroy();
      expect(countByPod(echoes)).toEqual({ 'rr-1': 10, 'rr-2': 10, 'rr-3': 10 });
    });

    it('splits traffic by weight (3:1)', async () => {
      const agent = keepAliveAgent();
      const echoes: Echo[] = [];
      for (let i = 0; i < 40; i++) {
        const res = await request(port, { host: 'h2.test', path: '/weighted', agent });
        expect(res.status).toBe(200);
        echoes.push(res.json<Echo>());
      }
      agent.destroy();
      // nginx's smooth weighted round robin gives every window of 4 picks exactly 3:1.
      expect(countByPod(echoes)).toEqual({ 'weight-3': 30, 'weight-1': 10 });
    });

    it.each([
      ['/foo/1', '/bar/1'],
      ['/foo/1?x=y&z=1', '/bar/1?x=y&z=1'],
      ['/foo/a/b/', '/bar/a/b/'],
    ])('targetPath replaces the basePath: %s reaches the pod as %s', async (path, seen) => {
      const echo = await echoFrom('h1.test', path);
      expect(echo.pod).toBe('shop-rewrite');
      expect(echo.url).toBe(seen);
    });

    it('without targetPath the path and query string reach the pod untouched', async () => {
      const path = '/nodejs/a/b.json?x=1&y=%20two';
      const echo = await echoFrom('h1.test', path);
      expect(echo.url).toBe(path);
    });

    it.each([
      ['locked.test', '/', {}, 403],
      ['locked.test', '/', { 'X-ROUTING-API-KEY': 'wrong' }, 403],
      ['locked.test', '/', { 'X-ROUTING-API-KEY': API_KEY }, 403], // the raw value, not its base64
      ['locked.test', '/page', { 'X-ROUTING-API-KEY': API_KEY_HEADER_VALUE }, 200],
      ['locked.test', '/page', { 'x-routing-api-key': API_KEY_HEADER_VALUE }, 200],
      ['keyed.test', '/api/items', {}, 403],
      ['keyed.test', '/api/items', { 'X-ROUTING-API-KEY': 'wrong' }, 403],
      ['keyed.test', '/api/items', { 'X-ROUTING-API-KEY': API_KEY_HEADER_VALUE }, 200],
      // keyed.test has no `/`: its default location belongs to nobody and needs no key.
      ['keyed.test', '/', {}, 404],
      // A namespace without a routing secret needs no header.
      ['h1.test', '/', {}, 200],
    ])('API key: %s%s with %j answers %i', async (host, path, headers, status) => {
      const res = await get(host, path, headers as Record<string, string>);
      expect(res.status).toBe(status);
    });

    it('an API-key-protected location reaches its own pod', async () => {
      const echo = await echoFrom('keyed.test', '/api/items', { 'X-ROUTING-API-KEY': API_KEY_HEADER_VALUE });
      expect(echo.pod).toBe('vault-api');
      // The proxy headers, declared at http level, reach the pod through the key check too.
      expect(echo.headers).toMatchObject({ 'x-real-ip': '127.0.0.1', 'x-forwarded-host': 'keyed.test' });
    });

    it('fails closed: a namespace whose API key is refused (too long) answers 403 to everyone', async () => {
      expect((await get('broken-key.test', '/')).status).toBe(403);
      const sent = { 'X-ROUTING-API-KEY': Buffer.from(TOO_LONG_KEY).toString('base64') };
      expect((await get('broken-key.test', '/', sent)).status).toBe(403);
      expect(brokenKey.connections).toBe(0);
    });

    it('closes the connection without an answer for unknown hosts', async () => {
      for (const host of ['unknown.test', 'h1.test.evil', '127.0.0.1']) {
        const res = await get(host, '/');
        expect(res.closed, host).toBe(true);
      }
    });

    it('answers 200 on the status path of the default server', async () => {
      const res = await get('unknown.test', '/dispatcher/status');
      expect(res.status).toBe(200);
    });

    it('a host without `/` answers 404 there by default', async () => {
      expect((await get('empty.test', '/')).status).toBe(404);
      expect((await get('empty.test', '/some/page')).status).toBe(404);
    });

    it('passes Host, X-Real-IP, X-Forwarded-For/-Host/-Proto to the pod', async () => {
      const host = `h1.test:${port}`;
      const echo = await echoFrom(host, '/', { 'X-Forwarded-For': '203.0.113.7' });
      expect(echo.headers).toMatchObject({
        host,
        'x-real-ip': '127.0.0.1',
        'x-forwarded-for': '203.0.113.7, 127.0.0.1',
        'x-forwarded-host': host,
        'x-forwarded-proto': 'http',
      });
    });

    it('without a client X-Forwarded-For, the pod sees the client address alone', async () => {
      const echo = await echoFrom('h2.test', '/');
      expect(echo.headers).toMatchObject({
        host: 'h2.test',
        'x-forwarded-for': '127.0.0.1',
        'x-forwarded-host': 'h2.test',
      });
    });

    it('proxies WebSockets and reuses keepalive connections to pods in the same server', async () => {
      expect(await wsEcho(port, 'h1.test', '/live', 'hello over nginx')).toBe('hello over nginx');

      const before = live.connections;
      const agent = keepAliveAgent();
      const requests = 20;
      for (let i = 0; i < requests; i++) {
        const res = await request(port, { host: 'h1.test', path: `/live/${i}`, agent });
        expect(res.status).toBe(200);
        expect(res.json<Echo>().pod).toBe('shop-live');
      }
      agent.destroy();
      expect(live.connections - before).toBeLessThanOrEqual(2);

      // And WebSockets still work after the keepalive traffic.
      expect(await wsEcho(port, 'h2.test', '/live', 'again')).toBe('again');
    });

    it('streams a response marked X-Accel-Buffering: no before the pod has finished', async () => {
      const start = await requestFirstChunk(port, { host: 'h1.test', path: '/stream' });
      expect(start.status).toBe(200);
      expect(start.firstChunk).toBe(streamChunks.first);
      // The pod is still holding the second chunk: nginx forwarded the first one unbuffered.
      expect(web.heldStreams).toBe(1);
      web.releaseStreams();
      expect(await start.rest).toBe(streamChunks.second);
    });

    it('two namespaces claiming the same host and path: the older one gets the traffic', async () => {
      for (const path of ['/', '/x/y']) {
        expect((await echoFrom('shared.test', path)).pod).toBe('elder-web');
      }
      // HOST_SHARING=shared: the younger namespace still serves a path nobody older claims.
      expect((await echoFrom('shared.test', '/extra')).pod).toBe('younger-extra');
    });

    it('client_max_body_size is unlimited by default', async () => {
      const body = 'x'.repeat(2 * 1024 * 1024);
      const res = await request(port, { host: 'h1.test', path: '/upload', method: 'POST', body });
      expect(res.status).toBe(200);
      expect(res.json<Echo>().bodyLength).toBe(body.length);
    });
  });

  describe('with other settings (reloaded)', () => {
    it('DEFAULT_LOCATION_RETURN=418 answers 418 on a host without `/`', async () => {
      await serve({ DEFAULT_LOCATION_RETURN: '418' });
      expect((await get('empty.test', '/')).status).toBe(418);
      expect((await get('empty.test', '/any/page')).status).toBe(418);
      // Hosts that have `/` are untouched.
      expect((await echoFrom('h1.test', '/')).pod).toBe('shop-web');
    });

    it('DEFAULT_LOCATION_RETURN=<url> proxies a host without `/` to that URL', async () => {
      await serve({ DEFAULT_LOCATION_RETURN: `http://${fallback.address}` });
      expect((await echoFrom('empty.test', '/')).pod).toBe('fallback');
      const echo = await echoFrom('empty.test', '/some/page?q=1');
      expect(echo.pod).toBe('fallback');
      expect(echo.url).toBe('/some/page?q=1');
      expect(echo.headers).toMatchObject({ host: 'empty.test', 'x-forwarded-for': '127.0.0.1' });
      // keyed.test's default location is not behind the key either.
      expect((await echoFrom('keyed.test', '/')).pod).toBe('fallback');
    });

    it('ROUTE_UNREADY_PODS=true routes a running pod that is not Ready (not routed by default)', async () => {
      await serve({});
      expect((await get('unready.test', '/')).status).toBe(404);
      await serve({ ROUTE_UNREADY_PODS: 'true' });
      expect((await echoFrom('unready.test', '/')).pod).toBe('unready-web');
    });

    it('API_KEY_HEADER renames the header the key travels in', async () => {
      await serve({ API_KEY_HEADER: 'X-Tenant-Key' });
      expect((await get('locked.test', '/', { 'X-ROUTING-API-KEY': API_KEY_HEADER_VALUE })).status).toBe(403);
      expect((await echoFrom('locked.test', '/', { 'X-Tenant-Key': API_KEY_HEADER_VALUE })).pod).toBe(
        'locked-web',
      );
    });

    it('HOST_SHARING=exclusive gives a shared host to its oldest namespace alone', async () => {
      await serve({ HOST_SHARING: 'exclusive' });
      const before = youngerExtra.connections;
      // The younger namespace's /extra is gone: the elder's `/` answers it.
      expect((await echoFrom('shared.test', '/extra')).pod).toBe('elder-web');
      expect(youngerExtra.connections).toBe(before);
    });

    it('templates with server_name {{serverNames}}: hosts that route alike share a block, every route holds', async () => {
      const dir = groupingTemplatesDir(bundledTemplatesDir);
      try {
        const text = renderedConfig(cluster(), { TEMPLATES_DIR: dir, PORT: String(port) });
        expect(text).toContain('server_name "h1.test" "h2.test";');
        await serve({ TEMPLATES_DIR: dir });
        for (const host of ['h1.test', 'h2.test', 'H2.Test']) {
          expect((await echoFrom(host, '/')).pod).toBe('shop-web');
          expect((await echoFrom(host, '/nodejs/page')).pod).toBe('shop-nodejs');
        }
        expect((await get('locked.test', '/')).status).toBe(403);
        expect((await echoFrom('locked.test', '/', { 'X-ROUTING-API-KEY': API_KEY_HEADER_VALUE })).pod).toBe(
          'locked-web',
        );
        expect((await echoFrom('shared.test', '/extra')).pod).toBe('younger-extra');
        expect((await get('empty.test', '/')).status).toBe(404);
        expect((await get('h3.test', '/')).closed).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('NGINX_MAX_CLIENT_BODY_SIZE=1k refuses a 2 KiB body with 413 and lets a small one through', async () => {
      await serve({ NGINX_MAX_CLIENT_BODY_SIZE: '1k' });
      const big = await request(port, { host: 'h1.test', method: 'POST', body: 'x'.repeat(2048) });
      expect(big.status).toBe(413);
      const small = await request(port, { host: 'h1.test', method: 'POST', body: 'x'.repeat(100) });
      expect(small.status).toBe(200);
      expect(small.json<Echo>().bodyLength).toBe(100);
    });
  });
});
