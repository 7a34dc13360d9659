// Tenants against each other, through a real nginx with real backends on 127.0.0.x: an older
// namespace keeps the host+path it serves, a newer one that claims it gets nothing there and a
// diagnostic; no spelling of the host or the path lets a request reach the older namespace's pods
// without its API key; and a routing secret in one namespace never changes another's locations.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Diagnostic, KubeObject } from '../../src/types.js';
import { type Backend, type Echo, startBackend } from '../support/backends.js';
import { request } from '../support/http.js';
import { namespace, pod, secret } from '../support/kube-objects.js';
import { freePort, type RunningNginx, startNginx } from '../support/nginx.js';
import { type Directive, parseNginxConf } from '../support/nginx-conf.js';
import { hostileString, hostileValue } from './arbitraries.js';
import {
  configFor,
  fuzzSeed,
  HOSTS,
  PATHS,
  ROUTABLE_LABEL,
  renderCluster,
  runsFor,
  tlsFixture,
} from './harness.js';

const ROUTABLE = { [ROUTABLE_LABEL]: 'true' };
const ELDER_KEY = 'elder-secret-key';
const KEY_HEADER = { 'X-ROUTING-API-KEY': Buffer.from(ELDER_KEY).toString('base64') };
/** No key, a wrong one, an empty one, the key itself unencoded. */
const WITHOUT_KEY: Record<string, string>[] = [
  {},
  { 'X-ROUTING-API-KEY': 'wrong' },
  { 'X-ROUTING-API-KEY': '' },
  { 'X-ROUTING-API-KEY': ELDER_KEY },
];

function tenant(name: string, createdAt: string, hosts: Record<string, unknown>): KubeObject {
  return namespace(name, {
    labels: ROUTABLE,
    annotations: { [HOSTS]: JSON.stringify(hosts) },
    creationTimestamp: createdAt,
  });
}

/** A pod that is backend `b`, serving `basePaths` on b's port. */
function podOn(ns: string, b: Backend, basePaths: string[]): KubeObject {
  const paths = basePaths.map((basePath) => ({ basePath, containerPort: b.port }));
  return pod(ns, b.name, {
    ip: b.host,
    ports: [b.port],
    labels: ROUTABLE,
    annotations: { [PATHS]: JSON.stringify(paths) },
  });
}

describe('an older namespace keeps its host+path and its API key (real nginx)', () => {
  let port = 0;
  let nginx: RunningNginx | undefined;
  const backends: Backend[] = [];
  let elderApi: Backend;
  let elderRoot: Backend;
  let rival: Backend;
  let diagnostics: Diagnostic[] = [];

  const isElder = (echo: Echo) => echo.pod.startsWith('elder');

  function cluster(): KubeObject[] {
    return [
      // The rival comes first in the list and by name: age alone decides.
      tenant('a-rival', '2024-01-01T00:00:00Z', {
        'SHOP.test': {},
        'shop.test.': {},
        'Shop.Test:80': {},
        '127.0.0.1': {},
      }),
      podOn('a-rival', rival, ['/api', '/', '/api/', '/ap', '/API', '/%61pi']),
      tenant('elder', '2020-01-01T00:00:00Z', { 'shop.test': {} }),
      secret('elder', 'routing', { 'api-key': ELDER_KEY }),
      podOn('elder', elderApi, ['/api']),
      podOn('elder', elderRoot, ['/']),
    ];
  }

  async function serve(hostSharing: 'shared' | 'exclusive'): Promise<void> {
    const config = configFor({ sslEnabled: false, hostSharing, healthChecks: false }, { PORT: String(port) });
    const rendered = renderCluster(cluster(), config);
    diagnostics = rendered.table.diagnostics;
    if (nginx) await nginx.reload(rendered.text);
    else nginx = await startNginx(rendered.text);
  }

  async function get(host: string, path: string, headers: Record<string, string> = {}) {
    const res = await request(port, { host, path, headers });
    return { res, echo: res.status === 200 ? res.json<Echo>() : undefined };
  }

  beforeAll(async () => {
    elderApi = await startBackend({ host: '127.0.0.21', name: 'elder-api' });
    elderRoot = await startBackend({ host: '127.0.0.22', name: 'elder-root' });
    rival = await startBackend({ host: '127.0.0.23', name: 'rival' });
    backends.push(elderApi, elderRoot, rival);
    port = await freePort();
  });

  afterAll(async () => {
    await nginx?.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  // Spellings of the elder's host and of its paths that nginx may route to the elder's locations.
  const hosts = () => ['shop.test', 'SHOP.TEST', 'Shop.Test', 'shop.test.', `shop.test:${port}`];
  const paths = [
    '/',
    '/api',
    '/api?x=1',
    '/%61pi',
    '/%61%70%69',
    '/%2561pi',
    '//api',
    '/./api',
    '/x/../api',
    '/api/',
    '/api/x',
    '/api/../api',
    '/API',
    '/ap',
    '/apx',
    '/api%2f',
    '/api;x',
    '/other',
    '/%2e%2e/api',
  ];

  for (const hostSharing of ['shared', 'exclusive'] as const) {
    describe(`HOST_SHARING=${hostSharing}`, () => {
      beforeAll(() => serve(hostSharing));

      it('a request without the key never reaches the elder namespace, however host and path are spelt', async () => {
        const reached: string[] = [];
        for (const host of hosts()) {
          for (const path of paths) {
            for (const headers of WITHOUT_KEY) {
              const { res, echo } = await get(host, path, headers);
              if (echo && isElder(echo))
                reached.push(`${host}${path} ${JSON.stringify(headers)} → ${echo.pod}`);
              else expect([200, 400, 403, 404], `${host}${path}`).toContain(res.status);
            }
          }
        }
        expect(reached).toEqual([]);
      });

      it("the elder's host+path answers from the elder with its key, not from the newer namespace", async () => {
        for (const host of hosts()) {
          expect((await get(host, '/api', KEY_HEADER)).echo?.pod, `${host}/api`).toBe('elder-api');
          expect((await get(host, '/%61pi', KEY_HEADER)).echo?.pod, `${host}/%61pi`).toBe('elder-api');
          expect((await get(host, '/', KEY_HEADER)).echo?.pod, `${host}/`).toBe('elder-root');
          expect((await get(host, '/api', {})).res.status, `${host}/api without key`).toBe(403);
        }
      });

      it('the newer namespace is told why it got nothing there', () => {
        const rivalDiagnostics = diagnostics.filter((d) => d.object === 'Namespace a-rival');
        const about = (text: string) =>
          rivalDiagnostics.filter((d) => `${d.field} ${d.reason}`.includes(text));
        if (hostSharing === 'shared') {
          for (const path of ['/', '/api']) {
            expect(
              rivalDiagnostics.some((d) => d.field.includes('shop.test') && d.field.endsWith(` ${path}`)),
              `conflict on shop.test${path}`,
            ).toBe(true);
          }
        } else {
          expect(about('shop.test').length).toBeGreaterThan(0);
        }
        // The spellings that are not host names are refused, each with a diagnostic.
        expect(
          rivalDiagnostics.filter((d) => d.field.startsWith('metadata.annotations')).length,
        ).toBeGreaterThanOrEqual(2);
      });

      it('the newer namespace routes what is its own: its IP-literal host, and in shared mode longer paths', async () => {
        expect((await get('127.0.0.1', '/api')).echo?.pod).toBe('rival');
        const subPath = (await get('shop.test', '/api/x')).res;
        if (hostSharing === 'shared') {
          // SPEC 3, HOST_SHARING=shared: a newer namespace may serve other paths under an older one's.
          expect(subPath.json<Echo>().pod).toBe('rival');
        } else {
          expect(subPath.status).toBe(403);
        }
      });
    });
  }
});

// ------------------------------------------------------------------ secrets stay in their namespace

/** A namespace's part of a configuration: its upstreams and every location that proxies to them. */
function partOf(text: string, ownsUpstream: (serverLines: string[][]) => boolean): unknown {
  const http = parseNginxConf(text).find((d) => d.name === 'http')?.block ?? [];
  const strip = (block: Directive[] = []): unknown[] =>
    block.map((d) => ({ name: d.name, args: d.args, ...(d.block && { block: strip(d.block) }) }));
  const upstreams = http.filter(
    (d) =>
      d.name === 'upstream' &&
      ownsUpstream((d.block ?? []).filter((s) => s.name === 'server').map((s) => s.args)),
  );
  const names = new Set(upstreams.map((u) => u.args[0]));
  const servers = http
    .filter((d) => d.name === 'server')
    .map((server) => {
      const body = server.block ?? [];
      const owned = body.filter(
        (d) =>
          d.name === 'location' &&
          (d.block ?? []).some(
            (p) => p.name === 'proxy_pass' && names.has(/^http:\/\/([^/]+)/.exec(p.args[0] ?? '')?.[1]),
          ),
      );
      return { head: strip(body.filter((d) => d.name !== 'location')), locations: strip(owned) };
    })
    .filter((server) => server.locations.length > 0);
  return { upstreams: strip(upstreams), servers };
}

describe('a routing secret never affects another namespace', () => {
  const ELDER_IP = '10.1.0.1';
  const { certB64, keyB64 } = tlsFixture();
  const elder = (withSecret: boolean): KubeObject[] => [
    tenant('elder', '2020-01-01T00:00:00Z', {
      'shop.test': {},
      'secure.shop.test': {
        ssl: {
          certificate: { valueFrom: { secretKeyRef: { key: 'tls-crt' } } },
          certificateKey: { valueFrom: { secretKeyRef: { key: 'tls-key' } } },
        },
      },
    }),
    pod('elder', 'web', {
      ip: ELDER_IP,
      ports: [3000],
      labels: ROUTABLE,
      annotations: {
        [PATHS]: JSON.stringify([
          { basePath: '/', containerPort: 3000 },
          { basePath: '/api', containerPort: 3000 },
        ]),
      },
    }),
    ...(withSecret
      ? [
          {
            ...secret('elder', 'routing', { 'api-key': ELDER_KEY }),
            data: {
              'api-key': Buffer.from(ELDER_KEY).toString('base64'),
              'tls-crt': certB64,
              'tls-key': keyB64,
            },
          },
        ]
      : []),
  ];
  const rival: KubeObject[] = [
    tenant('rival', '2024-01-01T00:00:00Z', { 'shop.test': {}, 'secure.shop.test': {} }),
    pod('rival', 'web', {
      ip: '10.2.0.1',
      ports: [3000],
      labels: ROUTABLE,
      annotations: {
        [PATHS]: JSON.stringify([
          { basePath: '/', containerPort: 3000 },
          { basePath: '/r', containerPort: 3000 },
        ]),
      },
    }),
  ];
  const elderOwns = (lines: string[][]) => lines.some((args) => (args[0] ?? '').startsWith(`${ELDER_IP}:`));

  /** What the rival's routing secret may hold: its own key, the elder's, TLS material, hostile fields. */
  const rivalSecretData = fc.dictionary(
    fc.oneof(fc.constantFrom('api-key', 'tls-crt', 'tls-key', 'ca-crt'), hostileString),
    fc.oneof(
      fc.constantFrom(certB64, keyB64, Buffer.from(ELDER_KEY).toString('base64'), ''),
      fc.string({ maxLength: 30 }).map((s) => Buffer.from(s).toString('base64')),
      hostileValue,
    ),
    { maxKeys: 6 },
  );

  for (const elderHasSecret of [true, false]) {
    it(`${elderHasSecret ? 'with' : 'without'} the elder's own secret, any rival secret leaves the elder's locations as they are`, () => {
      for (const sslEnabled of [true, false]) {
        for (const hostSharing of ['shared', 'exclusive'] as const) {
          const config = configFor({ sslEnabled, hostSharing, healthChecks: false });
          const baseline = partOf(
            renderCluster([...elder(elderHasSecret), ...rival], config).text,
            elderOwns,
          );
          fc.assert(
            fc.property(rivalSecretData, (data) => {
              const rivalSecret: KubeObject = {
                ...secret('rival', 'routing'),
                data: data as Record<string, string>,
              };
              const rendered = renderCluster([...elder(elderHasSecret), ...rival, rivalSecret], config).text;
              expect(partOf(rendered, elderOwns)).toEqual(baseline);
            }),
            { seed: fuzzSeed(), numRuns: runsFor(0.02, 40) },
          );
        }
      }
    });
  }

  it("the elder's SSL host is never served with material from another namespace's secret", () => {
    const config = configFor({ sslEnabled: true, hostSharing: 'shared', healthChecks: false });
    const rivalSecret: KubeObject = {
      ...secret('rival', 'routing'),
      data: { 'api-key': Buffer.from('rival-key').toString('base64'), 'tls-crt': certB64, 'tls-key': keyB64 },
    };
    const { table } = renderCluster([...elder(false), ...rival, rivalSecret], config);
    const secure = table.servers.find((s) => s.host === 'secure.shop.test');
    // The elder's SSL host is refused for want of the elder's secret; the rival's plain claim takes
    // the host, but never with TLS files from the rival's secret, and never the elder's locations.
    expect(secure?.tls).toBeUndefined();
    expect(table.tlsFiles).toEqual([]);
    expect(secure?.locations.every((l) => l.namespace === 'rival')).toBe(true);
    expect(
      table.diagnostics.some((d) => d.object === 'Namespace elder' && d.field.includes('secure.shop.test')),
    ).toBe(true);
    // And the rival's key guards only the rival's locations.
    for (const server of table.servers) {
      for (const location of server.locations) {
        if (location.namespace === 'elder') expect(location.apiKey).toBeUndefined();
      }
    }
  });
});
