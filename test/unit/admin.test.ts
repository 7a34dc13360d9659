// The admin endpoints (health, readiness, metrics, the routing table as JSON and as a page) on a
// real HTTP server, fed with routing tables built from cluster objects as the controller builds them.
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics, diagnosticCategory } from '../../src/admin/metrics.js';
import { escapeHtml, routesPage } from '../../src/admin/page.js';
import { routesView } from '../../src/admin/routes-view.js';
import { type AdminServer, type Health, startAdminServer } from '../../src/admin/server.js';
import { type ControllerState, initialState } from '../../src/controller.js';
import { routeObjects } from '../../src/pipeline.js';
import type { RoutingTable } from '../../src/types.js';
import { app, testConfig as config, HOSTS, ns, PATHS } from '../support/cluster.js';
import { secret } from '../support/kube-objects.js';
import { selfSigned } from '../support/tls.js';

/** base64 of the api key `secret`: the value the header must carry, and a secret itself. */
const API_KEY_B64 = 'c2VjcmV0';

const pair = selfSigned('secure.example.com');
const sslEnv = { SSL_CERT: '/certs/default.crt', SSL_KEY: '/certs/default.key', SSL_CERT_DIR: '/var/ssl' };

/**
 * shop (shop.example.com, secure.example.com with SSL, api key `secret`) with web-1 and web-2 at `/`
 * and `/api`; web-3 left out for an undeclared port; a hostile host name left out.
 */
function shopTable(): RoutingTable {
  return routeObjects(
    [
      ns('shop', {
        'shop.example.com': {},
        'secure.example.com': {
          ssl: {
            certificate: { valueFrom: { secretKeyRef: { key: 'tls.crt' } } },
            certificateKey: { valueFrom: { secretKeyRef: { key: 'tls.key' } } },
          },
        },
        '<script>alert(1)</script>': {},
      }),
      secret('shop', 'routing', { 'api-key': 'secret', 'tls.crt': pair.cert, 'tls.key': pair.key }),
      app('shop', 'web-1', '10.0.0.1', [
        { basePath: '/', containerPort: 3000 },
        { basePath: '/api', containerPort: '3000', weight: 3 },
      ]),
      app('shop', 'web-2', '10.0.0.2', [{ basePath: '/', containerPort: '3000' }]),
      app('shop', 'web-3', '10.0.0.3', [{ basePath: '/', containerPort: '8080' }]),
    ],
    config(sslEnv),
  );
}

function state(table: RoutingTable | undefined, ready: boolean): ControllerState {
  return { ...initialState(), ready, table, renders: table ? 1 : 0, applied: ready ? 1 : 0 };
}

/** The value of one sample in Prometheus text format, e.g. `dispatcher_reloads_total{result="success"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

let servers: AdminServer[] = [];

afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function serve(
  controllerState: ControllerState,
  checks: Record<string, () => Health | Promise<Health>> = {},
): Promise<{ url: string; metrics: ReturnType<typeof createMetrics> }> {
  const metrics = createMetrics();
  const server = await startAdminServer(
    { state: controllerState, registry: metrics.registry, checks },
    0,
    '127.0.0.1',
  );
  servers.push(server);
  return { url: `http://127.0.0.1:${server.port}`, metrics };
}

describe('routes view', () => {
  it('shows host → path → pods with the owning namespace, and every diagnostic', () => {
    const table = shopTable();
    const view = routesView(table, true, new Date('2024-05-01T00:00:00Z'));
    expect(view.generatedAt).toBe('2024-05-01T00:00:00.000Z');
    expect(view.stats).toEqual({ namespaces: 1, pods: 3, hosts: 2, locations: 4, upstreams: 2 });
    const shop = view.hosts.find((h) => h.host === 'shop.example.com');
    expect(shop).toMatchObject({ namespaces: ['shop'], tls: false, defaultLocation: false });
    expect(shop?.locations.map((l) => [l.path, l.namespace, l.apiKeyRequired, l.pods])).toEqual([
      [
        '/',
        'shop',
        true,
        [
          { name: 'web-1', address: '10.0.0.1:3000' },
          { name: 'web-2', address: '10.0.0.2:3000' },
        ],
      ],
      ['/api', 'shop', true, [{ name: 'web-1', address: '10.0.0.1:3000', weight: 3 }]],
    ]);
    expect(view.hosts.find((h) => h.host === 'secure.example.com')?.tls).toBe(true);
    expect(view.diagnostics).toContainEqual({
      severity: 'warning',
      object: 'Pod shop/web-3',
      field: `metadata.annotations["${PATHS}"][0].containerPort`,
      reason: 'port 8080 is not declared by any container of the pod; entry left out',
    });
    expect(view.diagnostics).toEqual(table.diagnostics);
  });

  it('is empty and not ready before the first render', () => {
    const view = routesView(undefined, false);
    expect(view).toMatchObject({
      ready: false,
      hosts: [],
      diagnostics: [],
      stats: { namespaces: 0, pods: 0, hosts: 0, locations: 0, upstreams: 0 },
    });
  });
});

describe('routes page', () => {
  it('renders every host, path, pod and diagnostic as a self-contained page', () => {
    const html = routesPage(routesView(shopTable(), true));
    for (const text of [
      'shop.example.com',
      'secure.example.com',
      'web-1',
      'web-2',
      '10.0.0.2:3000',
      '/api',
      'weight 3',
    ]) {
      expect(html).toContain(text);
    }
    expect(html).toContain('Pod shop/web-3');
    expect(html).toContain('port 8080 is not declared by any container of the pod');
    expect(html).not.toMatch(/<(script|link|img|iframe)\b/i);
    expect(html).not.toMatch(/\b(src|href)=/i);
  });

  it('escapes hostile text from the cluster instead of letting it become markup', () => {
    const html = routesPage(routesView(shopTable(), true));
    expect(html).toContain('&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot; is not a valid host name');
    expect(html).not.toContain('<script');

    const view = routesView(undefined, true);
    view.diagnostics = [
      {
        severity: 'error',
        object: 'Pod a/<b>',
        field: '"><img src=x>',
        reason: "<script>alert('x')</script> & more",
      },
    ];
    const page = routesPage(view);
    expect(page).toContain('&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more');
    expect(page).toContain('&quot;&gt;&lt;img src=x&gt;');
    expect(page).not.toContain('<script');
    expect(page).not.toContain('<img');
  });

  it('escapes the five HTML-special characters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});

describe('diagnostic categories (the reason label of skipped entries)', () => {
  it.each([
    [
      `metadata.annotations["${PATHS}"][0].containerPort`,
      'port 8080 is not declared; entry left out',
      'containerPort',
    ],
    [`metadata.annotations["${PATHS}"][1].basePath`, 'is not a valid path; entry left out', 'basePath'],
    [
      `metadata.annotations["${HOSTS}"]["Bad_Host"]`,
      'is not a valid host name; host left out',
      'annotations',
    ],
    // An escaped quote inside an untrusted key must not let the key's text become a label value.
    [`metadata.annotations["${HOSTS}"]["a\\"attackerChosenWord"]`, 'is not a valid host name', 'annotations'],
    ['hosts secure.example.com ssl', 'no routing secret; host left out', 'ssl'],
    [
      'host shop.example.com path /api',
      'conflict: already served by older namespace a; left out',
      'conflict',
    ],
    ['metadata.name', 'is not a valid name; pod not routed', 'name'],
    ['', 'nothing to name', 'other'],
  ])('field %s with reason %j counts as %s', (field, reason, category) => {
    expect(diagnosticCategory({ severity: 'warning', object: 'Pod a/b', field, reason })).toBe(category);
  });
});

describe('metrics observer', () => {
  it('counts events, reloads by result, the routing table and what was left out', async () => {
    const { registry, observer } = createMetrics();
    const table = shopTable();
    observer.event({ type: 'added', kind: 'Pod', object: {} });
    observer.event({ type: 'added', kind: 'Pod', object: {} });
    observer.event({ type: 'deleted', kind: 'Namespace', object: {} });
    observer.rendered(0.004, table, 3);
    observer.applied({ kind: 'applied' });
    observer.applied({ kind: 'unchanged' });
    observer.sourceProblem('watch failed; retrying', { kind: 'Pod' });

    let text = await registry.metrics();
    expect(sample(text, 'dispatcher_events_total{kind="Pod",type="added"}')).toBe(2);
    expect(sample(text, 'dispatcher_events_total{kind="Namespace",type="deleted"}')).toBe(1);
    expect(sample(text, 'dispatcher_reloads_total{result="success"}')).toBe(1);
    expect(sample(text, 'dispatcher_last_reload_success')).toBe(1);
    expect(sample(text, 'dispatcher_last_reload_timestamp_seconds')).toBeGreaterThan(1_600_000_000);
    expect(sample(text, 'dispatcher_render_duration_seconds_count')).toBe(1);
    expect(sample(text, 'dispatcher_batch_size_sum')).toBe(3);
    expect(sample(text, 'dispatcher_routable_namespaces')).toBe(1);
    expect(sample(text, 'dispatcher_routable_pods')).toBe(3);
    expect(sample(text, 'dispatcher_hosts')).toBe(2);
    expect(sample(text, 'dispatcher_locations')).toBe(4);
    expect(sample(text, 'dispatcher_upstreams')).toBe(2);
    expect(sample(text, 'dispatcher_skipped_entries{reason="containerPort",severity="warning"}')).toBe(1);
    expect(sample(text, 'dispatcher_watch_restarts_total{kind="Pod"}')).toBe(1);
    expect(text).toContain('process_cpu_user_seconds_total');

    observer.applied({ kind: 'rejected', message: 'nginx: [emerg] unknown directive' });
    // A later render without the left-out pod: skipped entries reflect the current table only.
    observer.rendered(0.002, routeObjects([ns('shop', { 'shop.example.com': {} })], config()), 1);
    text = await registry.metrics();
    expect(sample(text, 'dispatcher_reloads_total{result="failure"}')).toBe(1);
    expect(sample(text, 'dispatcher_reloads_total{result="success"}')).toBe(1);
    expect(sample(text, 'dispatcher_last_reload_success')).toBe(0);
    expect(
      sample(text, 'dispatcher_skipped_entries{reason="containerPort",severity="warning"}'),
    ).toBeUndefined();
    expect(sample(text, 'dispatcher_hosts')).toBe(1);
    expect(sample(text, 'dispatcher_locations')).toBe(0);

    // Back to exactly what nginx serves: nothing is failing any more.
    observer.applied({ kind: 'unchanged' });
    text = await registry.metrics();
    expect(sample(text, 'dispatcher_last_reload_success')).toBe(1);
    expect(sample(text, 'dispatcher_reloads_total{result="failure"}')).toBe(1);
  });
});

describe('admin server', () => {
  it('answers /readyz 503 until the first full list is applied, then 200', async () => {
    const controllerState = state(undefined, false);
    const { url } = await serve(controllerState);
    const before = await fetch(`${url}/readyz`);
    expect(before.status).toBe(503);
    expect(await before.text()).toContain('first full list');
    controllerState.table = shopTable();
    controllerState.ready = true;
    const after = await fetch(`${url}/readyz`);
    expect(after.status).toBe(200);
  });

  it('answers /healthz 200 when every check passes and 503 naming each failing check otherwise', async () => {
    let nginx: Health = { ok: true };
    const { url } = await serve(state(shopTable(), true), {
      source: () => ({ ok: true }),
      nginx: async () => nginx,
    });
    const healthy = await fetch(`${url}/healthz`);
    expect(healthy.status).toBe(200);
    nginx = { ok: false, reason: 'nginx does not answer on port 8080' };
    const unhealthy = await fetch(`${url}/healthz`);
    expect(unhealthy.status).toBe(503);
    const body = await unhealthy.text();
    expect(body).toContain('nginx: nginx does not answer on port 8080');
    expect(body).not.toContain('source');
  });

  it('serves /routes as JSON, / as HTML and /metrics in Prometheus format', async () => {
    const { url, metrics } = await serve(state(shopTable(), true));
    metrics.observer.rendered(0.001, shopTable(), 1);
    const routes = await fetch(`${url}/routes`);
    expect(routes.status).toBe(200);
    expect(routes.headers.get('content-type')).toMatch(/^application\/json/);
    const view = (await routes.json()) as ReturnType<typeof routesView>;
    expect(view.hosts.map((h) => h.host)).toEqual(['secure.example.com', 'shop.example.com']);
    expect(view.diagnostics.some((d) => d.object === 'Pod shop/web-3')).toBe(true);

    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await page.text()).toContain('web-2');

    const exposition = await fetch(`${url}/metrics`);
    expect(exposition.status).toBe(200);
    expect(exposition.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(sample(await exposition.text(), 'dispatcher_hosts')).toBe(2);
  });

  it('never shows the API key or certificate contents, even though the table holds them', async () => {
    const table = shopTable();
    expect(table.servers.flatMap((s) => s.locations).every((l) => l.apiKey === API_KEY_B64)).toBe(true);
    expect(table.tlsFiles.length).toBeGreaterThan(0);
    const { url, metrics } = await serve(state(table, true));
    metrics.observer.rendered(0.001, table, 1);
    const pemBody = (pem: string) =>
      pem
        .split('\n')
        .filter((line) => line.length > 0 && !line.startsWith('-----'))
        .join('');
    const secrets = [
      API_KEY_B64,
      ...table.tlsFiles.map((f) => f.contentBase64.slice(0, 40)),
      pemBody(pair.cert).slice(0, 40),
      pemBody(pair.key).slice(0, 40),
      pemBody(pair.key).slice(-40),
    ];
    for (const path of ['/routes', '/', '/metrics', '/healthz', '/readyz']) {
      const body = await (await fetch(`${url}${path}`)).text();
      for (const value of secrets) expect(body, `${path} shows ${value}`).not.toContain(value);
    }
    const view = (await (await fetch(`${url}/routes`)).json()) as ReturnType<typeof routesView>;
    expect(view.hosts.flatMap((h) => h.locations).every((l) => l.apiKeyRequired)).toBe(true);
  });

  it('answers 404 for an unknown path and 405 for anything but GET and HEAD', async () => {
    const { url } = await serve(state(shopTable(), true));
    const missing = await fetch(`${url}/nope`);
    expect(missing.status).toBe(404);
    for (const path of ['/routes', '/healthz', '/nope']) {
      const posted = await fetch(`${url}${path}`, { method: 'POST', body: 'x' });
      expect(posted.status).toBe(405);
    }
    const head = await fetch(`${url}/readyz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const withQuery = await fetch(`${url}/routes?pretty=1`);
    expect(withQuery.status).toBe(200);
  });

  it('answers 500 with the message when a check throws, and keeps serving', async () => {
    const { url } = await serve(state(shopTable(), true), {
      nginx: () => {
        throw new Error('cannot probe');
      },
    });
    const failed = await fetch(`${url}/healthz`);
    expect(failed.status).toBe(500);
    expect(await failed.text()).toContain('cannot probe');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });
});
