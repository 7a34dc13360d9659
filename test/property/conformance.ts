// Whether a parsed nginx.conf holds exactly what the templates write for the expected routes:
// - structure: every block has the directives the templates give that kind of block, learnt by
//   rendering small reference tables (so template edits need no change here) — an injected
//   directive anywhere makes some block differ;
// - counts of server, listen, server_name, location, proxy_pass, upstream, if, and of proxy_set_header
//   (all at http level, none below it);
// - shape: hosts, listen arguments, location paths, upstream lines, targetPaths and API-key guards
//   equal the oracle's, and every (namespace, basePath) has one upstream of its own.
import assert from 'node:assert/strict';
import type { Config, HealthCheck, HealthCheckMode, RoutingTable, Upstream } from '../../src/types.js';
import { type Directive, directiveCounts, parseNginxConf, routingShape } from '../support/nginx-conf.js';
import { API_KEY_VARIABLE, renderTable } from './harness.js';
import type { Expectation, ExpectedServer } from './spec-oracle.js';

type Mode = Exclude<HealthCheckMode, 'off'>;

/** Names of a block's directives and, recursively, of their blocks: order-free. */
function signature(block: readonly Directive[], skip: readonly string[] = []): string {
  return block
    .filter((d) => !skip.includes(d.name))
    .map((d) => (d.block ? `${d.name}{${signature(d.block)}}` : d.name))
    .sort()
    .join(',');
}

const isDefaultServer = (server: Directive) =>
  (server.block ?? []).some((d) => d.name === 'listen' && d.args.includes('default_server'));
const httpOf = (tree: Directive[]) => tree.find((d) => d.name === 'http')?.block ?? [];
const serversOf = (tree: Directive[]) => httpOf(tree).filter((d) => d.name === 'server');
const locationsOf = (server: Directive) => (server.block ?? []).filter((d) => d.name === 'location');
const proxies = (location: Directive) => (location.block ?? []).some((d) => d.name === 'proxy_pass');

interface Signatures {
  top: string;
  http: string;
  defaultServers: string[];
  /** Server-level directives (locations aside) of a plain, a TLS and a client-verifying TLS host. */
  server: { plain: string; tls: string; clientTls: string };
  /** A proxying location (its `if` aside) and the default location of a host without `/`. */
  proxyLocation: string;
  defaultLocation: string;
  /** An upstream's directives other than `server`, with any kind of health check. */
  upstream: Set<string>;
  baseline: Record<string, number>;
}

const check = (type: 'http' | 'tcp'): HealthCheck => ({
  type,
  intervalMs: 10_000,
  timeoutMs: 1_000,
  rise: 1,
  fall: 3,
  port: 3000,
  ...(type === 'http' && { path: '/healthz' }),
});

function upstream(name: string, healthCheck?: HealthCheck): Upstream {
  return {
    name,
    namespace: 'ref',
    basePath: '/',
    servers: [{ address: '10.0.0.1:3000', pod: 'p' }],
    ...(healthCheck && { healthCheck }),
  };
}

/** One host of each kind, every kind of location and upstream. */
const REFERENCE: RoutingTable = {
  servers: [
    {
      host: 'plain.ref',
      namespaces: ['ref'],
      locations: [{ path: '/api', namespace: 'ref', upstream: 'u_plain', apiKey: 'aw==', pods: ['p'] }],
      defaultLocation: true,
    },
    {
      host: 'tls.ref',
      namespaces: ['ref'],
      tls: { certificate: '/ref/c.crt', certificateKey: '/ref/c.key' },
      locations: [{ path: '/', namespace: 'ref', upstream: 'u_http', targetPath: '/t', pods: ['p'] }],
      defaultLocation: false,
    },
    {
      host: 'client.ref',
      namespaces: ['ref'],
      tls: { certificate: '/ref/c.crt', certificateKey: '/ref/c.key', clientCertificate: '/ref/ca.crt' },
      locations: [{ path: '/', namespace: 'ref', upstream: 'u_tcp', pods: ['p'] }],
      defaultLocation: false,
    },
  ],
  upstreams: [upstream('u_plain'), upstream('u_http', check('http')), upstream('u_tcp', check('tcp'))],
  tlsFiles: [],
  diagnostics: [],
  stats: { namespaces: 1, pods: 1 },
};

const EMPTY: RoutingTable = { ...REFERENCE, servers: [], upstreams: [] };

const cache = new Map<string, Signatures>();

function signaturesFor(config: Config, mode: Mode): Signatures {
  const key = `${mode}|${config.sslCert ?? ''}|${config.enableHealthChecks}`;
  const known = cache.get(key);
  if (known) return known;
  const empty = parseNginxConf(renderTable(EMPTY, config, mode).text);
  const reference = parseNginxConf(renderTable(REFERENCE, config, mode).text);
  const [plain, tls, clientTls] = serversOf(reference).filter((s) => !isDefaultServer(s));
  if (!plain || !tls || !clientTls) throw new Error('the reference table did not render three hosts');
  const plainLocations = locationsOf(plain);
  const proxyLocation = plainLocations.find(proxies);
  const defaultLocation = plainLocations.find((l) => !proxies(l));
  if (!proxyLocation || !defaultLocation)
    throw new Error('the reference host lacks a proxying or a default location');
  const upstreams = httpOf(reference).filter((d) => d.name === 'upstream');
  const signatures: Signatures = {
    top: signature(empty, ['http']),
    http: signature(httpOf(empty), ['server', 'upstream']),
    defaultServers: serversOf(empty).map((s) => signature(s.block ?? [])),
    server: {
      plain: signature(plain.block ?? [], ['location']),
      tls: signature(tls.block ?? [], ['location']),
      clientTls: signature(clientTls.block ?? [], ['location']),
    },
    proxyLocation: signature(proxyLocation.block ?? [], ['if']),
    defaultLocation: signature(defaultLocation.block ?? []),
    upstream: new Set(upstreams.map((u) => signature(u.block ?? [], ['server']))),
    baseline: directiveCounts(empty),
  };
  // Every proxied request gets its headers from the one set declared at http level.
  if (!signatures.baseline['http/proxy_set_header'])
    throw new Error('the templates declare no proxy_set_header in the http block');
  cache.set(key, signatures);
  return signatures;
}

/** Every block holds the directives the templates give its kind, nothing more, nothing less. */
export function assertTemplateStructure(
  tree: Directive[],
  expected: Expectation,
  config: Config,
  mode: Mode,
): void {
  const want = signaturesFor(config, mode);
  assert.equal(signature(tree, ['http']), want.top, 'top-level directives differ from the templates');
  assert.equal(signature(httpOf(tree), ['server', 'upstream']), want.http, 'http-level directives differ');
  const servers = serversOf(tree);
  const defaults = servers.filter(isDefaultServer);
  assert.deepEqual(
    defaults.map((s) => signature(s.block ?? [])),
    want.defaultServers,
    'default servers differ from the templates',
  );
  const routed = servers.filter((s) => !isDefaultServer(s));
  assert.equal(routed.length, expected.servers.length, 'number of routed servers');
  routed.forEach((server, index) => {
    const spec = expected.servers[index] as ExpectedServer;
    const kind = spec.clientCertificate ? 'clientTls' : spec.tls ? 'tls' : 'plain';
    assert.equal(signature(server.block ?? [], ['location']), want.server[kind], `server ${index} (${kind})`);
    for (const location of locationsOf(server)) {
      const got = signature(location.block ?? [], proxies(location) ? ['if'] : []);
      const denied = spec.locations.find((l) => l.path === location.args[0])?.deny === true;
      // A location of a namespace whose API key was refused also returns 403 before proxying.
      const proxyLocation = denied
        ? [...want.proxyLocation.split(','), 'return'].sort().join(',')
        : want.proxyLocation;
      const expectedSignature = proxies(location) ? proxyLocation : want.defaultLocation;
      assert.equal(got, expectedSignature, `location ${location.args.join(' ')} of server ${index}`);
    }
  });
  for (const block of httpOf(tree).filter((d) => d.name === 'upstream')) {
    const got = signature(block.block ?? [], ['server']);
    assert.ok(want.upstream.has(got), `upstream ${block.args.join(' ')} holds ${got}`);
  }
  assertCounts(tree, expected, want);
}

function assertCounts(tree: Directive[], expected: Expectation, want: Signatures): void {
  const locations = expected.servers.flatMap((s) => s.locations);
  const upstreamSizes = new Map(locations.map((l) => [`${l.namespace}\u0000${l.path}`, l.servers.length]));
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const keyed = locations.filter((l) => l.apiKey !== null).length;
  const tls = expected.servers.filter((s) => s.tls).length;
  const clientTls = expected.servers.filter((s) => s.clientCertificate).length;
  const added: Record<string, number> = {
    'http/server': expected.servers.length,
    'http/server/listen': expected.servers.length,
    'http/server/server_name': expected.servers.length,
    'http/server/location': sum(
      expected.servers.map((s) => s.locations.length + (s.defaultLocation ? 1 : 0)),
    ),
    'http/server/location/proxy_pass': locations.length,
    // The proxy headers are declared once at http level (as many as the empty table has) and nowhere
    // below: in nginx a block that declares any proxy_set_header inherits none of http's.
    'http/proxy_set_header': 0,
    'http/server/proxy_set_header': 0,
    'http/server/location/proxy_set_header': 0,
    'http/server/location/if/proxy_set_header': 0,
    'http/server/location/if': keyed,
    'http/server/location/if/return': keyed,
    'http/upstream': expected.upstreams,
    'http/upstream/server': sum([...upstreamSizes.values()]),
    'http/server/ssl_certificate': tls,
    'http/server/ssl_client_certificate': clientTls,
  };
  const counts = directiveCounts(tree);
  const got = Object.fromEntries(Object.keys(added).map((k) => [k, counts[k] ?? 0]));
  const expectedCounts = Object.fromEntries(
    Object.entries(added).map(([k, n]) => [k, n + (want.baseline[k] ?? 0)]),
  );
  assert.deepEqual(got, expectedCounts, 'routing directives differ from what the valid inputs call for');
}

/** Upstream `server` arguments without the passive-check parameters (checked for form, then dropped). */
function withoutPassiveCheck(args: string[]): string[] {
  return args.filter(
    (arg, index) => index === 0 || !(/^max_fails=[0-9]+$/.test(arg) || /^fail_timeout=[0-9]+s$/.test(arg)),
  );
}

const UPSTREAM_TARGET = /^http:\/\/([A-Za-z0-9_-]+)(\/.*)?$/;

/**
 * The rendered hosts, listen arguments, locations, upstream lines, targetPaths and API-key guards
 * equal the expected ones; each (namespace, basePath) has one upstream, shared by every host, and
 * no two share one.
 */
export function assertShape(tree: Directive[], expected: Expectation): void {
  const shape = routingShape(tree);
  const actual = shape.servers
    .filter((server) => !server.listen.some((args) => args.includes('default_server')))
    .map((server) => ({
      host: server.serverNames,
      listen: server.listen,
      locations: server.locations
        .filter((l) => l.proxyPass !== null)
        .map((l) => {
          const target = UPSTREAM_TARGET.exec(l.proxyPass ?? '');
          assert.ok(target, `proxy_pass ${JSON.stringify(l.proxyPass)} does not name an upstream`);
          const name = target[1] as string;
          const lines = shape.upstreams.get(name);
          assert.ok(lines, `proxy_pass names undefined upstream ${name}`);
          return {
            path: l.match,
            upstream: name,
            servers: lines.map(withoutPassiveCheck),
            targetPath: target[2] ?? '',
            apiKey: guardedKey(l.guards),
          };
        }),
      defaultLocation: server.locations.some((l) => l.proxyPass === null && l.match.join(' ') === '/'),
    }));
  const want = expected.servers.map((server) => ({
    host: [server.host],
    listen: [server.listen],
    locations: server.locations.map((l) => ({
      path: [l.path],
      upstream: `${l.namespace}\u0000${l.path}`,
      servers: l.servers,
      targetPath: l.targetPath,
      apiKey: l.apiKey,
    })),
    defaultLocation: server.defaultLocation,
  }));

  // Upstream names are the renderer's to choose: one per (namespace, basePath), then compared as that pair.
  const nameOf = new Map<string, string>();
  const pairOf = new Map<string, string>();
  actual.forEach((server, s) => {
    server.locations.forEach((location, l) => {
      const pair = want[s]?.locations[l]?.upstream;
      if (pair === undefined) return;
      assert.equal(nameOf.get(pair) ?? location.upstream, location.upstream, `${pair} has two upstreams`);
      assert.equal(
        pairOf.get(location.upstream) ?? pair,
        pair,
        `upstream ${location.upstream} serves two paths`,
      );
      nameOf.set(pair, location.upstream);
      pairOf.set(location.upstream, pair);
      location.upstream = pair;
    });
  });
  assert.deepEqual(actual, want, 'rendered routes differ from what the valid inputs call for');
}

/** The API key a location's `if` demands; null without one; a description of anything else. */
function guardedKey(guards: { condition: string[]; body: Directive[] }[]): string | null {
  if (guards.length === 0) return null;
  const [guard] = guards;
  const [open, operator, value, close] = guard?.condition ?? [];
  const body = guard?.body ?? [];
  const returns403 = body.length === 1 && body[0]?.name === 'return' && body[0].args.join(' ') === '403';
  if (
    guards.length === 1 &&
    open === `(${API_KEY_VARIABLE}` &&
    operator === '!=' &&
    close === ')' &&
    returns403
  ) {
    return value ?? null;
  }
  return `unexpected guard: ${JSON.stringify(guards)}`;
}
