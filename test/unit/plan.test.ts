// The routing table of SPEC section 3, built from objects as the cluster sends them.
import { describe, expect, it } from 'vitest';
import { routeObjects } from '../../src/pipeline.js';
import { upstreamName } from '../../src/plan.js';
import type { KubeObject, RoutingTable } from '../../src/types.js';
import { app, testConfig as config, HOSTS, ns } from '../support/cluster.js';
import { namespace, secret } from '../support/kube-objects.js';
import { selfSigned } from '../support/tls.js';

function route(objects: KubeObject[], env: Record<string, string> = {}): RoutingTable {
  return routeObjects(objects, config(env));
}

function locationsOf(table: RoutingTable): string[] {
  return table.servers.flatMap((s) => s.locations.map((l) => `${s.host}${l.path} -> ${l.namespace}`));
}

describe('plan: hosts × paths', () => {
  it('exposes every path of every pod on every host of its namespace, one upstream per (namespace, basePath)', () => {
    const table = route([
      ns('shop', { 'h1.example.com': {}, 'h2.example.com': {} }),
      app(
        'shop',
        'web-1',
        '10.0.0.1',
        [
          { basePath: '/', containerPort: '3000' },
          { basePath: '/nodejs', containerPort: 8080 },
        ],
        [3000, 8080],
      ),
    ]);
    expect(locationsOf(table)).toEqual([
      'h1.example.com/ -> shop',
      'h1.example.com/nodejs -> shop',
      'h2.example.com/ -> shop',
      'h2.example.com/nodejs -> shop',
    ]);
    const byPath = [...table.upstreams].sort((a, b) => a.basePath.localeCompare(b.basePath));
    expect(byPath.map((u) => [u.basePath, u.servers.map((s) => s.address)])).toEqual([
      ['/', ['10.0.0.1:3000']],
      ['/nodejs', ['10.0.0.1:8080']],
    ]);
    const [h1, h2] = table.servers;
    expect(h1?.locations.map((l) => l.upstream)).toEqual(h2?.locations.map((l) => l.upstream));
  });

  it('lists pods sorted by name with explicit ports and weights', () => {
    const table = route([
      ns('shop', { 'h.example.com': {} }),
      app('shop', 'web-b', '10.0.0.2', [{ basePath: '/', containerPort: '3000', weight: 3 }]),
      app('shop', 'web-a', '10.0.0.1', [{ basePath: '/', containerPort: 3000 }]),
    ]);
    expect(table.upstreams[0]?.servers).toEqual([
      { address: '10.0.0.1:3000', pod: 'web-a' },
      { address: '10.0.0.2:3000', pod: 'web-b', weight: 3 },
    ]);
    expect(table.servers[0]?.locations[0]?.pods).toEqual(['web-a', 'web-b']);
  });

  it('gives a server to every valid host even before any pod serves it, with the default location', () => {
    const table = route([ns('empty', { 'idle.example.com': {} })]);
    expect(table.servers).toEqual([
      { host: 'idle.example.com', namespaces: ['empty'], locations: [], defaultLocation: true },
    ]);
  });

  it('marks the default location only for hosts that nobody serves at /', () => {
    const table = route([
      ns('a', { 'root.example.com': {} }),
      app('a', 'p', '10.0.0.1', [{ basePath: '/', containerPort: 3000 }]),
      ns('b', { 'api.example.com': {} }),
      app('b', 'p', '10.0.0.2', [{ basePath: '/api', containerPort: 3000 }]),
    ]);
    expect(table.servers.map((s) => [s.host, s.defaultLocation])).toEqual([
      ['api.example.com', true],
      ['root.example.com', false],
    ]);
  });

  it('keys pods by namespace and name: same-named pods in two namespaces both route', () => {
    const table = route([
      ns('a', { 'a.example.com': {} }),
      ns('b', { 'b.example.com': {} }),
      app('a', 'web', '10.0.0.1', [{ basePath: '/', containerPort: 3000 }]),
      app('b', 'web', '10.0.0.2', [{ basePath: '/', containerPort: 3000 }]),
    ]);
    expect(table.upstreams.map((u) => u.servers[0]?.address)).toEqual(['10.0.0.1:3000', '10.0.0.2:3000']);
  });

  it('routes no pod whose namespace is not routable', () => {
    const table = route([
      namespace('plain', { annotations: { [HOSTS]: '{"p.example.com":{}}' } }),
      app('plain', 'web', '10.0.0.1', [{ basePath: '/', containerPort: 3000 }]),
    ]);
    expect(table.servers).toEqual([]);
    expect(table.upstreams).toEqual([]);
    expect(table.stats).toEqual({ namespaces: 0, pods: 0 });
  });
});

describe('plan: API key and targetPath', () => {
  it('requires the API key on every location the keyed namespace owns, and only there', () => {
    const table = route([
      ns('keyed', { 'k.example.com': {} }),
      secret('keyed', 'routing', { 'api-key': 'supersecret' }),
      app('keyed', 'web', '10.0.0.1', [
        { basePath: '/', containerPort: 3000 },
        { basePath: '/x', containerPort: 3000 },
      ]),
      ns('open', { 'o.example.com': {} }),
      app('open', 'web', '10.0.0.2', [{ basePath: '/', containerPort: 3000 }]),
    ]);
    const keys = table.servers.flatMap((s) => s.locations.map((l) => [s.host, l.path, l.apiKey]));
    expect(keys).toEqual([
      ['k.example.com', '/', 'c3VwZXJzZWNyZXQ='],
      ['k.example.com', '/x', 'c3VwZXJzZWNyZXQ='],
      ['o.example.com', '/', undefined],
    ]);
  });

  it('denies every location of a namespace whose API key is refused, instead of dropping the check', () => {
    const table = route([
      ns('keyed', { 'k.example.com': {} }),
      secret('keyed', 'routing', { 'api-key': 'k'.repeat(2000) }),
      app('keyed', 'web', '10.0.0.1', [{ basePath: '/', containerPort: 3000 }]),
    ]);
    expect(table.servers[0]?.locations.map((l) => [l.path, l.deny, l.apiKey])).toEqual([
      ['/', true, undefined],
    ]);
  });

  it('takes targetPath from the first pod by name and reports a disagreeing pod', () => {
    const table = route([
      ns('shop', { 'h.example.com': {} }),
      app('shop', 'web-2', '10.0.0.2', [{ basePath: '/foo', containerPort: 3000, targetPath: '/other' }]),
      app('shop', 'web-1', '10.0.0.1', [{ basePath: '/foo', containerPort: 3000, targetPath: '/bar' }]),
    ]);
    expect(table.servers[0]?.locations[0]?.targetPath).toBe('/bar');
    expect(table.diagnostics).toContainEqual(
      expect.objectContaining({ object: 'Pod shop/web-2', reason: expect.stringContaining('web-1') }),
    );
  });
});

describe('plan: ownership', () => {
  const older = '2020-01-01T00:00:00Z';
  const newer = '2021-01-01T00:00:00Z';
  const cluster = (env: Record<string, string> = {}) =>
    route(
      [
        ns('newcomer', { 'shared.example.com': {} }, newer),
        app('newcomer', 'evil', '10.0.0.9', [
          { basePath: '/', containerPort: 3000 },
          { basePath: '/api', containerPort: 3000 },
        ]),
        ns('owner', { 'shared.example.com': {} }, older),
        app('owner', 'web', '10.0.0.1', [{ basePath: '/', containerPort: 3000 }]),
      ],
      env,
    );

  it('gives a contested (host, path) to the oldest namespace and reports the newer one', () => {
    const table = cluster();
    expect(locationsOf(table)).toEqual([
      'shared.example.com/ -> owner',
      'shared.example.com/api -> newcomer',
    ]);
    expect(table.diagnostics).toContainEqual(
      expect.objectContaining({
        object: 'Namespace newcomer',
        field: 'host shared.example.com path /',
        reason: expect.stringContaining('owner'),
      }),
    );
  });

  it('gives the whole host to the oldest namespace with HOST_SHARING=exclusive', () => {
    const table = cluster({ HOST_SHARING: 'exclusive' });
    expect(locationsOf(table)).toEqual(['shared.example.com/ -> owner']);
    expect(table.servers[0]?.namespaces).toEqual(['owner']);
    expect(table.diagnostics).toContainEqual(
      expect.objectContaining({ object: 'Namespace newcomer', reason: expect.stringContaining('exclusive') }),
    );
  });

  it('breaks a creationTimestamp tie by namespace name', () => {
    const table = route([
      ns('zeta', { 't.example.com': {} }, older),
      ns('alpha', { 't.example.com': {} }, older),
      app('zeta', 'web', '10.0.0.2', [{ basePath: '/', containerPort: 3000 }]),
      app('alpha', 'web', '10.0.0.1', [{ basePath: '/', containerPort: 3000 }]),
    ]);
    expect(locationsOf(table)).toEqual(['t.example.com/ -> alpha']);
  });

  it('does not depend on the order objects arrive in', () => {
    const objects = [
      ns('b', { 'x.example.com': {}, 'y.example.com': {} }, newer),
      ns('a', { 'x.example.com': {} }, older),
      secret('a', 'routing', { 'api-key': 'k' }),
      app('a', 'p1', '10.0.0.1', [{ basePath: '/', containerPort: 3000 }]),
      app(
        'b',
        'p2',
        '10.0.0.2',
        [
          { basePath: '/', containerPort: 3000 },
          { basePath: '/b', containerPort: 8080, targetPath: '/v1' },
        ],
        [3000, 8080],
      ),
      app('b', 'p3', '10.0.0.3', [{ basePath: '/b', containerPort: 8080, weight: 2 }], [8080]),
    ];
    const expected = JSON.stringify(route(objects));
    for (let i = 0; i < 20; i += 1) {
      const shuffled = [...objects].sort(() => Math.random() - 0.5);
      expect(JSON.stringify(route(shuffled))).toBe(expected);
    }
  });
});

describe('plan: SSL hosts', () => {
  const pair = selfSigned('secure.example.com');
  const other = selfSigned('other.example.com');
  const ca = selfSigned('clients-ca');
  const sslHost = (extra: Record<string, unknown> = {}) => ({
    'secure.example.com': {
      ssl: {
        certificate: { valueFrom: { secretKeyRef: { key: 'tls.crt' } } },
        certificateKey: { valueFrom: { secretKeyRef: { key: 'tls.key' } } },
        ...extra,
      },
    },
    'plain.example.com': {},
  });
  const sslEnv = { SSL_CERT: '/certs/default.crt', SSL_KEY: '/certs/default.key', SSL_CERT_DIR: '/var/ssl' };

  it('leaves SSL hosts out with a warning when SSL is not enabled', () => {
    const table = route([
      ns('s', sslHost()),
      secret('s', 'routing', { 'tls.crt': pair.cert, 'tls.key': pair.key }),
    ]);
    expect(table.servers.map((s) => s.host)).toEqual(['plain.example.com']);
    expect(table.diagnostics).toContainEqual(
      expect.objectContaining({ object: 'Namespace s', reason: expect.stringContaining('SSL is disabled') }),
    );
  });

  it('resolves certificate files under SSL_CERT_DIR/<host>/ with their modes', () => {
    const table = route(
      [
        ns('s', sslHost({ clientCertificate: { valueFrom: { secretKeyRef: { key: 'ca.crt' } } } })),
        secret('s', 'routing', { 'tls.crt': pair.cert, 'tls.key': pair.key, 'ca.crt': ca.cert }),
      ],
      sslEnv,
    );
    const secure = table.servers.find((s) => s.host === 'secure.example.com');
    expect(secure?.tls).toEqual({
      certificate: '/var/ssl/secure.example.com/certificate.crt',
      certificateKey: '/var/ssl/secure.example.com/certificate.key',
      clientCertificate: '/var/ssl/secure.example.com/clientCertificate.crt',
    });
    expect(table.tlsFiles.map((f) => [f.path, f.mode.toString(8)])).toEqual([
      ['/var/ssl/secure.example.com/certificate.crt', '644'],
      ['/var/ssl/secure.example.com/certificate.key', '600'],
      ['/var/ssl/secure.example.com/clientCertificate.crt', '644'],
    ]);
    expect(Buffer.from(table.tlsFiles[1]?.contentBase64 ?? '', 'base64').toString()).toBe(pair.key);
  });

  it.each([
    ['no routing secret', [] as KubeObject[], 'no routing secret'],
    ['a missing field', [secret('s', 'routing', { 'tls.crt': pair.cert })], 'tls.key'],
    [
      'a key that does not match the certificate',
      [secret('s', 'routing', { 'tls.crt': pair.cert, 'tls.key': other.key })],
      '',
    ],
    [
      'a certificate that is not PEM',
      [secret('s', 'routing', { 'tls.crt': 'garbage', 'tls.key': pair.key })],
      '',
    ],
  ])('leaves an SSL host out when it has %s, and keeps the others', (_case, extra, reason) => {
    const table = route([ns('s', sslHost()), ...extra], sslEnv);
    expect(table.servers.map((s) => s.host)).toEqual(['plain.example.com']);
    const warning = table.diagnostics.find((d) => d.field.startsWith('hosts secure.example.com'));
    expect(warning?.reason).toContain(reason);
    expect(JSON.stringify(table.diagnostics)).not.toContain('PRIVATE KEY');
  });
});

describe('upstream names', () => {
  it.each([
    ['team-a', '/'],
    ['team-a', '/api/v1'],
    ['team-a', '/a-b'],
    ['team-a', '/a_b'],
    ['team-a', "/x!*+,=:@&()'~"],
    ['b', '/API'],
    ['b', '/api'],
  ])('%s %s is a stable, valid nginx identifier', (namespaceName, basePath) => {
    const name = upstreamName(namespaceName, basePath);
    expect(name).toMatch(/^[a-z0-9-]+__[A-Za-z0-9_]+__[0-9a-f]{8}$/);
    expect(upstreamName(namespaceName, basePath)).toBe(name);
  });

  it('never collides when folding makes two paths look alike', () => {
    const names = ['/a-b', '/a_b', '/a.b', '/A-B', '/a-b/'].map((p) => upstreamName('ns', p));
    expect(new Set(names).size).toBe(names.length);
  });
});
