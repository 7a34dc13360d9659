import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledTemplatesDir, loadTemplates, type Templates } from '../../src/render/templates.js';
import { configVersion, render } from '../../src/render.js';
import type {
  HealthCheck,
  Location,
  RenderOptions,
  RoutingTable,
  Server,
  Upstream,
  UpstreamServer,
} from '../../src/types.js';
import { checkConfig } from '../support/nginx.js';
import { selfSigned } from '../support/tls.js';

// ------------------------------------------------------------------ building tables by hand

function options(overrides: Partial<RenderOptions> = {}): RenderOptions {
  return {
    port: 8080,
    sslPort: 8443,
    statusPath: '/dispatcher/status',
    apiKeyHeader: 'X-ROUTING-API-KEY',
    defaultLocationReturn: { kind: 'status', code: 404 },
    maxClientBodySize: '0',
    workerShutdownTimeout: '30s',
    healthChecks: 'passive',
    prefixRelativePaths: true,
    ...overrides,
  };
}

function table(
  servers: Server[],
  upstreams: Upstream[] = [],
  extra: Partial<RoutingTable> = {},
): RoutingTable {
  return { servers, upstreams, tlsFiles: [], diagnostics: [], stats: { namespaces: 1, pods: 1 }, ...extra };
}

function server(host: string, locations: Location[], extra: Partial<Server> = {}): Server {
  return {
    host,
    namespaces: ['shop'],
    locations,
    defaultLocation: !locations.some((location) => location.path === '/'),
    ...extra,
  };
}

function location(path: string, upstream: string, extra: Partial<Location> = {}): Location {
  return { path, namespace: 'shop', upstream, pods: ['web-1'], ...extra };
}

function upstream(name: string, servers: UpstreamServer[], extra: Partial<Upstream> = {}): Upstream {
  return { name, namespace: 'shop', basePath: '/', servers, ...extra };
}

function pod(address: string, podName = `pod-${address}`, weight?: number): UpstreamServer {
  return weight === undefined ? { address, pod: podName } : { address, pod: podName, weight };
}

const httpCheck: HealthCheck = {
  type: 'http',
  intervalMs: 10_000,
  timeoutMs: 1_000,
  rise: 2,
  fall: 3,
  port: 3000,
  path: '/healthz',
};

/** One host serving `/` from one upstream: the smallest table that routes. */
function simpleTable(
  extra: { upstream?: Partial<Upstream>; location?: Partial<Location> } = {},
): RoutingTable {
  return table(
    [server('shop.test', [location('/', 'shop_root', extra.location)])],
    [upstream('shop_root', [pod('10.0.0.1:3000', 'web-1')], extra.upstream)],
  );
}

// ------------------------------------------------------------------ reading the result back

/** A directive of the rendered file: quoted arguments unquoted and unescaped as nginx reads them. */
interface Directive {
  name: string;
  args: string[];
  block?: Directive[];
}

function parseNginx(text: string): Directive[] {
  const tokens = tokenize(text);
  let at = 0;
  function parseBlock(): Directive[] {
    const directives: Directive[] = [];
    while (at < tokens.length) {
      const token = tokens[at++] as Token;
      if (token.punct === '}') return directives;
      if (token.punct) throw new Error(`unexpected ${token.punct} at token ${at}`);
      const args: string[] = [];
      for (;;) {
        const next = tokens[at++];
        if (!next) throw new Error(`unterminated directive ${token.value}`);
        if (next.punct === ';') {
          directives.push({ name: token.value, args });
          break;
        }
        if (next.punct === '{') {
          directives.push({ name: token.value, args, block: parseBlock() });
          break;
        }
        if (next.punct === '}') throw new Error(`unexpected } in ${token.value}`);
        args.push(next.value);
      }
    }
    return directives;
  }
  return parseBlock();
}

interface Token {
  value: string;
  punct?: '{' | '}' | ';';
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (/\s/.test(ch)) i++;
    else if (ch === '#') while (i < text.length && text[i] !== '\n') i++;
    else if (ch === '{' || ch === '}' || ch === ';') {
      tokens.push({ value: ch, punct: ch });
      i++;
    } else if (ch === '"' || ch === "'") {
      let value = '';
      i++;
      while (i < text.length && text[i] !== ch) {
        if (text[i] === '\\' && (text[i + 1] === ch || text[i + 1] === '\\')) i++;
        value += text[i];
        i++;
      }
      i++;
      tokens.push({ value });
    } else {
      let value = '';
      while (i < text.length && !/[\s{};]/.test(text[i] as string)) value += text[i++];
      tokens.push({ value });
    }
  }
  return tokens;
}

function http(text: string): Directive[] {
  const block = parseNginx(text).find((d) => d.name === 'http')?.block;
  if (!block) throw new Error('no http block');
  return block;
}

function all(directives: Directive[], name: string): Directive[] {
  return directives.filter((d) => d.name === name);
}

function one(directives: Directive[], name: string): Directive {
  const found = all(directives, name);
  if (found.length !== 1) throw new Error(`expected one ${name}, found ${found.length}`);
  return found[0] as Directive;
}

function serverFor(text: string, host: string): Directive[] {
  const found = all(http(text), 'server').filter((s) =>
    s.block?.some((d) => d.name === 'server_name' && d.args.includes(host)),
  );
  if (found.length !== 1) throw new Error(`expected one server for ${host}, found ${found.length}`);
  return (found[0] as Directive).block ?? [];
}

function defaultServer(text: string, ssl = false): Directive[] {
  const found = all(http(text), 'server').filter((s) =>
    s.block?.some(
      (d) => d.name === 'listen' && d.args.includes('default_server') && d.args.includes('ssl') === ssl,
    ),
  );
  if (found.length !== 1) throw new Error(`expected one default server (ssl: ${ssl}), found ${found.length}`);
  return (found[0] as Directive).block ?? [];
}

/** `location` blocks by their arguments joined by a space (`= /x` or `/api`). */
function locations(block: Directive[]): Map<string, Directive[]> {
  return new Map(all(block, 'location').map((l) => [l.args.join(' '), l.block ?? []]));
}

function locationIn(block: Directive[], path: string): Directive[] {
  const found = locations(block).get(path);
  if (!found) throw new Error(`no location ${path}; have ${[...locations(block).keys()].join(', ')}`);
  return found;
}

function upstreamBlock(text: string, name: string): Directive[] {
  return one(
    all(http(text), 'upstream').filter((u) => u.args[0] === name),
    'upstream',
  ).block as Directive[];
}

const lines = (directives: Directive[], name: string): string[] =>
  all(directives, name).map((d) => d.args.join(' '));

const EXPECTED_PROXY_HEADERS = [
  'Host $http_host',
  'X-Real-IP $remote_addr',
  'X-Forwarded-For $proxy_add_x_forwarded_for',
  'X-Forwarded-Host $http_host',
  'X-Forwarded-Proto $scheme',
  'Upgrade $http_upgrade',
  'Connection $connection_upgrade',
];

// ------------------------------------------------------------------ setup

let templates: Templates;
let cert: string;
let key: string;

/** Renders, asserts that the real nginx accepts it without a warning, returns the text. */
async function renderChecked(
  routing: RoutingTable,
  renderOptions: RenderOptions = options(),
): Promise<string> {
  const text = render(templates, routing, renderOptions);
  const check = await checkConfig(text);
  expect(check.ok, check.output).toBe(true);
  expect(check.output).not.toMatch(/\[(warn|emerg|alert|crit|error)\]/);
  return text;
}

beforeAll(() => {
  templates = loadTemplates(bundledTemplatesDir);
  const pair = selfSigned('render-test');
  cert = pair.certPath;
  key = pair.keyPath;
});

// ------------------------------------------------------------------ tests

describe('render', () => {
  it('renders the empty table: status path 200, config version for loopback, 444 for everything else', async () => {
    const text = await renderChecked(table([]));
    const fallback = defaultServer(text);
    expect(lines(fallback, 'listen')).toEqual(['8080 default_server']);
    expect(lines(locationIn(fallback, '= /dispatcher/status'), 'return')).toEqual(['200']);
    expect(lines(locationIn(fallback, '/'), 'return')).toEqual(['444']);
    const versionLocation = locationIn(fallback, '= /_dispatcher/config-version');
    expect(lines(versionLocation, 'allow')).toEqual(['127.0.0.1', '::1']);
    expect(lines(versionLocation, 'deny')).toEqual(['all']);
    expect(lines(versionLocation, 'return')).toEqual([`200 ${configVersion(text)}`]);
    expect(all(http(text), 'server')).toHaveLength(1);
  });

  it('runs unprivileged under -p: pid and temp paths relative, errors to stderr, no access log', async () => {
    const text = await renderChecked(table([]));
    const main = parseNginx(text);
    expect(lines(main, 'pid')).toEqual(['nginx.pid']);
    expect(lines(main, 'error_log')).toEqual(['stderr']);
    expect(lines(one(main, 'events').block ?? [], 'worker_connections')).toEqual(['4096']);
    const block = http(text);
    expect(lines(block, 'access_log')).toEqual(['off']);
    for (const name of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      expect(lines(block, `${name}_temp_path`)).toEqual([`temp/${name}`]);
    }
  });

  it('uses Debian absolute paths without prefixRelativePaths, and changes nothing else', async () => {
    // nginx -t is run on the relative variant only: the absolute one names system directories
    // (/var/lib/nginx) that a test must not create; every other line is asserted identical.
    const relative = await renderChecked(table([]), options({ prefixRelativePaths: true }));
    const absolute = render(templates, table([]), options({ prefixRelativePaths: false }));
    const main = parseNginx(absolute);
    expect(lines(main, 'pid')).toEqual(['/run/nginx.pid']);
    expect(lines(http(absolute), 'client_body_temp_path')).toEqual(['/var/lib/nginx/body']);
    expect(lines(http(absolute), 'proxy_temp_path')).toEqual(['/var/lib/nginx/proxy']);
    const differing = (a: string, b: string) => a.split('\n').filter((line, i) => line !== b.split('\n')[i]);
    const pathLine = /^(pid |\s*\w+_temp_path |# dispatcher config-version: |\s*return 200 "[0-9a-f]+";)/;
    expect(differing(absolute, relative).every((line) => pathLine.test(line))).toBe(true);
  });

  it('fans out: every host gets every path, and hosts of a namespace share one upstream per path', async () => {
    const text = await renderChecked(
      table(
        ['h1.test', 'h2.test'].map((host) =>
          server(host, [location('/', 'shop_root'), location('/nodejs', 'shop_nodejs')]),
        ),
        [
          upstream('shop_nodejs', [pod('10.0.0.1:3000', 'web-1'), pod('10.0.0.2:3000', 'web-2')], {
            basePath: '/nodejs',
          }),
          upstream('shop_root', [pod('10.0.0.1:80', 'web-1'), pod('10.0.0.2:80', 'web-2')]),
        ],
      ),
    );
    for (const host of ['h1.test', 'h2.test']) {
      const block = serverFor(text, host);
      expect(lines(block, 'listen')).toEqual(['8080']);
      expect([...locations(block).keys()]).toEqual(['/', '/nodejs']);
      expect(lines(locationIn(block, '/'), 'proxy_pass')).toEqual(['http://shop_root']);
      expect(lines(locationIn(block, '/nodejs'), 'proxy_pass')).toEqual(['http://shop_nodejs']);
    }
    expect(all(http(text), 'upstream').map((u) => u.args[0])).toEqual(['shop_nodejs', 'shop_root']);
    expect(lines(upstreamBlock(text, 'shop_root'), 'server')).toEqual(['10.0.0.1:80', '10.0.0.2:80']);
    expect(lines(upstreamBlock(text, 'shop_root'), 'keepalive')).toEqual(['32']);
  });

  it('declares the proxy headers once in the http block, where every location inherits them', async () => {
    const text = await renderChecked(
      table(
        [
          server('a.test', [location('/api', 'shop_api', { apiKey: 'c2VjcmV0' })]),
          server('b.test', [location('/', 'shop_api')]),
        ],
        [upstream('shop_api', [pod('10.0.0.1:3000')])],
      ),
      options({ defaultLocationReturn: { kind: 'url', url: 'http://127.0.0.1:9/fallback' } }),
    );
    expect(lines(http(text), 'proxy_http_version')).toEqual(['1.1']);
    expect(lines(http(text), 'proxy_set_header')).toEqual(EXPECTED_PROXY_HEADERS);
    // nginx: a level that declares any proxy_set_header inherits none, so no server, location or
    // if below http may declare one (or proxy_http_version, kept beside them).
    const declaredBelowHttp = (directives: Directive[]): string[] =>
      directives.flatMap((d) => [
        ...(['proxy_set_header', 'proxy_http_version'].includes(d.name) ? [d.name] : []),
        ...declaredBelowHttp(d.block ?? []),
      ]);
    const blocks = all(http(text), 'server').flatMap((s) => s.block ?? []);
    expect(declaredBelowHttp(blocks)).toEqual([]);
    const proxied = [
      locationIn(serverFor(text, 'a.test'), '/api'),
      locationIn(serverFor(text, 'a.test'), '/'),
      locationIn(serverFor(text, 'b.test'), '/'),
    ];
    for (const block of proxied) expect(all(block, 'proxy_pass')).toHaveLength(1);
    expect(lines(locationIn(serverFor(text, 'a.test'), '/'), 'proxy_ssl_server_name')).toEqual(['on']);
    expect(text).not.toMatch(/proxy_buffering|X-Accel-Buffering/);
    const upgradeMap = one(http(text), 'map');
    expect(upgradeMap.args).toEqual(['$http_upgrade', '$connection_upgrade']);
    expect(upgradeMap.block).toEqual([
      { name: 'default', args: ['upgrade'] },
      { name: '', args: [''] },
    ]);
  });

  it.each([
    {
      name: 'no API key: no check',
      location: {},
      apiKeyHeader: 'X-ROUTING-API-KEY',
      check: undefined,
    },
    {
      name: 'API key: 403 unless the header equals it',
      location: { apiKey: 'c2VjcmV0' },
      apiKeyHeader: 'X-ROUTING-API-KEY',
      check: '($http_x_routing_api_key != c2VjcmV0 )',
    },
    {
      name: 'API key under another header name',
      location: { apiKey: 'c2VjcmV0' },
      apiKeyHeader: 'X-Tenant-Key',
      check: '($http_x_tenant_key != c2VjcmV0 )',
    },
  ])('API key check: $name', async ({ location: extra, apiKeyHeader, check }) => {
    const text = await renderChecked(
      table(
        [server('shop.test', [location('/api', 'shop_api', extra)])],
        [upstream('shop_api', [pod('10.0.0.1:3000')])],
      ),
      options({ apiKeyHeader }),
    );
    const block = serverFor(text, 'shop.test');
    const ifs = all(locationIn(block, '/api'), 'if');
    expect(ifs.map((d) => d.args.join(' '))).toEqual(check ? [check] : []);
    for (const d of ifs) expect(d.block).toEqual([{ name: 'return', args: ['403'] }]);
    // The default location a host gets when nobody serves / never asks for the key.
    expect(all(locationIn(block, '/'), 'if')).toEqual([]);
  });

  it.each([
    { name: 'path passed untouched', targetPath: undefined, proxyPass: 'http://shop_foo' },
    { name: 'targetPath replaces the matched prefix', targetPath: '/bar', proxyPass: 'http://shop_foo/bar' },
    { name: 'targetPath /', targetPath: '/', proxyPass: 'http://shop_foo/' },
  ])('proxy_pass: $name', async ({ targetPath, proxyPass }) => {
    const text = await renderChecked(
      table(
        [server('shop.test', [location('/foo', 'shop_foo', targetPath ? { targetPath } : {})])],
        [upstream('shop_foo', [pod('10.0.0.1:3000')], { basePath: '/foo' })],
      ),
    );
    expect(lines(locationIn(serverFor(text, 'shop.test'), '/foo'), 'proxy_pass')).toEqual([proxyPass]);
    expect(text).toContain(`proxy_pass "${proxyPass}";`);
  });

  it('writes weights, explicit ports and bracketed IPv6 addresses on upstream server lines', async () => {
    const text = await renderChecked(
      simpleTable({
        upstream: {
          servers: [pod('10.0.0.1:3000', 'a', 5), pod('10.0.0.2:80', 'b'), pod('[fd00::1]:8080', 'c', 1000)],
        },
      }),
      options({ healthChecks: 'off' }),
    );
    expect(lines(upstreamBlock(text, 'shop_root'), 'server')).toEqual([
      '10.0.0.1:3000 weight=5',
      '10.0.0.2:80',
      '[fd00::1]:8080 weight=1000',
    ]);
  });

  it.each([
    { name: 'status code', value: { kind: 'status', code: 404 } as const, expectReturn: ['404'], proxy: [] },
    {
      name: 'another status code',
      value: { kind: 'status', code: 503 } as const,
      expectReturn: ['503'],
      proxy: [],
    },
    {
      name: 'URL',
      value: { kind: 'url', url: 'http://127.0.0.1:9/fallback' } as const,
      expectReturn: [],
      proxy: ['http://127.0.0.1:9/fallback'],
    },
  ])('default location (no / served): $name', async ({ value, expectReturn, proxy }) => {
    const text = await renderChecked(
      table(
        [
          server('api-only.test', [location('/api', 'shop_api', { apiKey: 'c2VjcmV0' })]),
          server('root.test', [location('/', 'shop_api')]),
          server('no-pods.test', []),
        ],
        [upstream('shop_api', [pod('10.0.0.1:3000')])],
      ),
      options({ defaultLocationReturn: value }),
    );
    for (const host of ['api-only.test', 'no-pods.test']) {
      const fallback = locationIn(serverFor(text, host), '/');
      expect(lines(fallback, 'return')).toEqual(expectReturn);
      expect(lines(fallback, 'proxy_pass')).toEqual(proxy);
    }
    expect(lines(locationIn(serverFor(text, 'root.test'), '/'), 'proxy_pass')).toEqual(['http://shop_api']);
    expect([...locations(serverFor(text, 'root.test')).keys()]).toEqual(['/']);
  });

  it.each([
    { name: 'without client certificate', clientCertificate: false },
    { name: 'with client certificate', clientCertificate: true },
  ])('SSL host $name: served on the SSL port only, modern protocols', async ({ clientCertificate }) => {
    const tls = clientCertificate
      ? { certificate: cert, certificateKey: key, clientCertificate: cert }
      : { certificate: cert, certificateKey: key };
    const text = await renderChecked(
      table(
        [
          server('secure.test', [location('/', 'shop_root')], { tls }),
          server('plain.test', [location('/', 'shop_root')]),
        ],
        [upstream('shop_root', [pod('10.0.0.1:3000')])],
      ),
      options({ ssl: { certificate: cert, certificateKey: key } }),
    );
    const secure = serverFor(text, 'secure.test');
    expect(lines(secure, 'listen')).toEqual(['8443 ssl']);
    expect(lines(secure, 'ssl_certificate')).toEqual([cert]);
    expect(lines(secure, 'ssl_certificate_key')).toEqual([key]);
    expect(lines(secure, 'ssl_protocols')).toEqual(['TLSv1.2 TLSv1.3']);
    expect(lines(secure, 'ssl_client_certificate')).toEqual(clientCertificate ? [cert] : []);
    expect(lines(secure, 'ssl_verify_client')).toEqual(clientCertificate ? ['on'] : []);
    expect(lines(serverFor(text, 'plain.test'), 'listen')).toEqual(['8080']);

    const sslDefault = defaultServer(text, true);
    expect(lines(sslDefault, 'listen')).toEqual(['8443 ssl default_server']);
    expect(lines(sslDefault, 'ssl_certificate')).toEqual([cert]);
    expect(lines(sslDefault, 'ssl_protocols')).toEqual(['TLSv1.2 TLSv1.3']);
    expect(lines(locationIn(sslDefault, '= /dispatcher/status'), 'return')).toEqual(['200']);
    expect(lines(locationIn(sslDefault, '/'), 'return')).toEqual(['444']);
  });

  it('has no SSL default server without options.ssl', async () => {
    const text = await renderChecked(simpleTable());
    expect(() => defaultServer(text, true)).toThrow(/found 0/);
  });

  it('writes ports explicitly, 80 and 443 included', async () => {
    const text = await renderChecked(
      table(
        [
          server('plain.test', [location('/', 'shop_root')]),
          server('secure.test', [location('/', 'shop_root')], {
            tls: { certificate: cert, certificateKey: key },
          }),
        ],
        [upstream('shop_root', [pod('10.0.0.1:80')])],
      ),
      options({ port: 80, sslPort: 443, ssl: { certificate: cert, certificateKey: key } }),
    );
    expect(lines(serverFor(text, 'plain.test'), 'listen')).toEqual(['80']);
    expect(lines(serverFor(text, 'secure.test'), 'listen')).toEqual(['443 ssl']);
    expect(lines(defaultServer(text), 'listen')).toEqual(['80 default_server']);
    expect(lines(upstreamBlock(text, 'shop_root'), 'server')).toEqual(['10.0.0.1:80']);
  });

  it('takes the status path and client_max_body_size from the options', async () => {
    const text = await renderChecked(
      simpleTable(),
      options({ statusPath: '/healthz', maxClientBodySize: '10m' }),
    );
    expect(lines(locationIn(defaultServer(text), '= /healthz'), 'return')).toEqual(['200']);
    expect(lines(http(text), 'client_max_body_size')).toEqual(['10m']);
  });

  describe('health checks', () => {
    const withChecks = (check: HealthCheck) =>
      simpleTable({
        upstream: { servers: [pod('10.0.0.1:3000', 'a', 2), pod('10.0.0.2:3000', 'b')], healthCheck: check },
      });

    it('active: one check per upstream from the probe (text only: needs nginx_upstream_check_module)', () => {
      const text = render(templates, withChecks(httpCheck), options({ healthChecks: 'active' }));
      const block = upstreamBlock(text, 'shop_root');
      expect(lines(block, 'server')).toEqual(['10.0.0.1:3000 weight=2', '10.0.0.2:3000']);
      expect(lines(block, 'check')).toEqual([
        'interval=10000 rise=2 fall=3 timeout=1000 port=3000 type=http',
      ]);
      expect(text).toContain('    check_http_send "GET /healthz HTTP/1.0\\r\\n\\r\\n";\n');
      expect(lines(block, 'check_http_expect_alive')).toEqual(['http_2xx']);
    });

    it('active tcp: the check without an HTTP request', () => {
      const tcp: HealthCheck = {
        type: 'tcp',
        intervalMs: 5_000,
        timeoutMs: 2_000,
        rise: 1,
        fall: 2,
        port: 3000,
      };
      const block = upstreamBlock(
        render(templates, withChecks(tcp), options({ healthChecks: 'active' })),
        'shop_root',
      );
      expect(lines(block, 'check')).toEqual(['interval=5000 rise=1 fall=2 timeout=2000 port=3000 type=tcp']);
      expect(lines(block, 'check_http_send')).toEqual([]);
      expect(lines(block, 'check_http_expect_alive')).toEqual([]);
    });

    it.each([
      { intervalMs: 10_000, fall: 3, expected: 'max_fails=3 fail_timeout=30s' },
      { intervalMs: 2_500, fall: 3, expected: 'max_fails=3 fail_timeout=8s' },
      { intervalMs: 1_000, fall: 1, expected: 'max_fails=1 fail_timeout=1s' },
    ])(
      'passive: $expected from interval $intervalMs ms × fall $fall',
      async ({ intervalMs, fall, expected }) => {
        const text = await renderChecked(
          withChecks({ ...httpCheck, intervalMs, fall }),
          options({ healthChecks: 'passive' }),
        );
        const block = upstreamBlock(text, 'shop_root');
        expect(lines(block, 'server')).toEqual([
          `10.0.0.1:3000 weight=2 ${expected}`,
          `10.0.0.2:3000 ${expected}`,
        ]);
        expect(lines(block, 'check')).toEqual([]);
      },
    );

    it('off: plain server lines', async () => {
      const text = await renderChecked(withChecks(httpCheck), options({ healthChecks: 'off' }));
      const block = upstreamBlock(text, 'shop_root');
      expect(lines(block, 'server')).toEqual(['10.0.0.1:3000 weight=2', '10.0.0.2:3000']);
      expect(text).not.toMatch(/max_fails|^\s*check/m);
    });

    it('passive without a probe: plain server lines', async () => {
      const text = await renderChecked(simpleTable(), options({ healthChecks: 'passive' }));
      expect(lines(upstreamBlock(text, 'shop_root'), 'server')).toEqual(['10.0.0.1:3000']);
    });
  });

  describe('config version', () => {
    const base = () =>
      table(
        [
          server('shop.test', [location('/', 'shop_root', { apiKey: 'c2VjcmV0' })], {
            tls: { certificate: cert, certificateKey: key },
          }),
        ],
        [upstream('shop_root', [pod('10.0.0.1:3000', 'web-1', 2)])],
        { tlsFiles: [{ path: cert, mode: 0o644, contentBase64: 'Y2VydA==' }] },
      );

    it('is the same text and version for the same inputs, built separately', async () => {
      const text = await renderChecked(base(), options({ ssl: { certificate: cert, certificateKey: key } }));
      expect(render(templates, base(), options({ ssl: { certificate: cert, certificateKey: key } }))).toBe(
        text,
      );
      expect(configVersion(text)).toMatch(/^[0-9a-f]{16}$/);
      expect(text.split('\n')[0]).toBe(`# dispatcher config-version: ${configVersion(text)}`);
    });

    it('changes when the default location answer changes for a host that has one', () => {
      const withFallback = () => ({ ...base(), servers: [...base().servers, server('z.test', [])] });
      const before = render(templates, withFallback(), options());
      const after = render(
        templates,
        withFallback(),
        options({ defaultLocationReturn: { kind: 'status', code: 410 } }),
      );
      expect(configVersion(after)).not.toBe(configVersion(before));
    });

    it('is the hash of what nginx gets: an option no host uses changes nothing', () => {
      // base() serves / on its only host, so the default location is not rendered at all.
      const before = render(templates, base(), options());
      const after = render(
        templates,
        base(),
        options({ defaultLocationReturn: { kind: 'status', code: 410 } }),
      );
      expect(after).toBe(before);
    });

    it('is written only where the templates ask for it, never into values', async () => {
      // render puts the version in place of a NUL-delimited placeholder; NULs never survive quoting.
      const text = await renderChecked(
        table(
          [server('\u0000config-version\u0000.test', [location('/\u0000config-version\u0000', 'shop_root')])],
          [upstream('shop_root', [pod('10.0.0.1:3000')])],
        ),
      );
      expect([...locations(serverFor(text, 'config-version.test')).keys()]).toEqual(['/config-version', '/']);
      expect(text.split(configVersion(text) as string)).toHaveLength(3);
    });

    it('ignores what does not reach nginx: diagnostics and stats', () => {
      const before = render(templates, base(), options());
      const after = render(
        templates,
        {
          ...base(),
          diagnostics: [{ severity: 'warning', object: 'Pod shop/x', field: 'paths', reason: 'invalid' }],
          stats: { namespaces: 7, pods: 70 },
        },
        options(),
      );
      expect(after).toBe(before);
    });

    const changes: [string, (t: RoutingTable) => RoutingTable, Partial<RenderOptions>][] = [
      [
        'a pod added',
        (t) => ({
          ...t,
          upstreams: [upstream('shop_root', [pod('10.0.0.1:3000', 'web-1', 2), pod('10.0.0.2:3000')])],
        }),
        {},
      ],
      [
        'a weight changed',
        (t) => ({ ...t, upstreams: [upstream('shop_root', [pod('10.0.0.1:3000', 'web-1', 3)])] }),
        {},
      ],
      [
        'the API key changed',
        (t) => ({
          ...t,
          servers: [
            { ...(t.servers[0] as Server), locations: [location('/', 'shop_root', { apiKey: 'b3RoZXI=' })] },
          ],
        }),
        {},
      ],
      ['a host added', (t) => ({ ...t, servers: [...t.servers, server('z.test', [])] }), {}],
      [
        'a certificate rotated (same path)',
        (t) => ({ ...t, tlsFiles: [{ path: cert, mode: 0o644, contentBase64: 'bmV3' }] }),
        {},
      ],
      ['the port changed', (t) => t, { port: 8081 }],
      ['the status path changed', (t) => t, { statusPath: '/healthz' }],
    ];
    it.each(changes)('changes when %s', (_name, change, optionChange) => {
      const before = configVersion(render(templates, base(), options()));
      const afterText = render(templates, change(base()), options(optionChange));
      expect(configVersion(afterText)).toMatch(/^[0-9a-f]{16}$/);
      expect(configVersion(afterText)).not.toBe(before);
      expect(afterText).toContain(`return 200 "${configVersion(afterText)}";`);
    });

    it.each([
      ['', undefined],
      ['events {}\n', undefined],
      ['# dispatcher config-version: 0123456789abcdef\nevents {}\n', '0123456789abcdef'],
      ['# dispatcher config-version: 0123456789abcdef', '0123456789abcdef'],
      ['# dispatcher config-version: not-hex\n', undefined],
    ])('configVersion(%j) is %s', (text, expected) => {
      expect(configVersion(text)).toBe(expected);
    });
  });

  describe('quoting (second line of defence behind the allow-lists)', () => {
    // None of these passes the allow-lists; render must still neither break the file nor let a value
    // add a directive of its own.
    const hostile = [
      '/a"b',
      '/x"; return 200 "owned',
      '/back\\slash\\',
      '/brace} location /y {',
      '/semi;colon',
      '/new\nline\r\n',
      '/hash#comment',
      "/single'quote",
      '/dollar$uri',
    ];

    it.each(hostile)('location path %j stays one quoted argument', async (path) => {
      const text = await renderChecked(
        table(
          [
            server('shop.test', [
              location(path, 'shop_root', { apiKey: 'k"ey; return 200', targetPath: `${path}/t` }),
            ]),
          ],
          [upstream('shop_root', [pod('10.0.0.1:3000')])],
        ),
      );
      const clean = path.replace(/[\r\n$]/g, '');
      const block = serverFor(text, 'shop.test');
      expect([...locations(block).keys()]).toEqual([clean, '/']);
      const routed = locationIn(block, clean);
      expect(lines(routed, 'proxy_pass')).toEqual([`http://shop_root${clean}/t`]);
      expect(all(routed, 'if').map((d) => d.args.join(' '))).toEqual([
        '($http_x_routing_api_key != k"ey; return 200 )',
      ]);
      expect(all(routed, 'return')).toEqual([]);
    });

    it('keeps a hostile host name inside server_name and out of comments', async () => {
      const host = 'evil.test"; } server { listen 1; server_name "x\n# injected';
      const text = await renderChecked(table([server(host, [])]));
      const servers = all(http(text), 'server');
      expect(servers).toHaveLength(2);
      expect(lines(servers[1]?.block ?? [], 'server_name')).toEqual([host.replace(/\n/g, '')]);
      expect(text).not.toMatch(/^\s*# injected/m);
    });

    it('keeps bare words bare: upstream names and addresses lose anything but [A-Za-z0-9._:[]-]', async () => {
      const text = await renderChecked(
        table(
          [server('shop.test', [location('/', 'up; deny all')])],
          [upstream('up; deny all', [pod('10.0.0.1:3000 ; #')])],
        ),
      );
      expect(all(http(text), 'upstream').map((u) => u.args)).toEqual([['updenyall']]);
      expect(lines(upstreamBlock(text, 'updenyall'), 'server')).toEqual(['10.0.0.1:3000']);
      expect(lines(locationIn(serverFor(text, 'shop.test'), '/'), 'proxy_pass')).toEqual([
        'http://updenyall',
      ]);
      expect(upstreamBlock(text, 'updenyall').map((d) => d.name)).toEqual(['server', 'keepalive']);
    });
  });

  const longLabel = (i: number) => `${'x'.repeat(58)}${String(i).padStart(5, '0')}`;
  const longest = (i: number) =>
    [longLabel(i), longLabel(i + 1), longLabel(i + 2), `${'y'.repeat(56)}.test`].join('.');
  it.each([
    { shape: 'ordinary names', host: (i: number) => `app-${i}.tenant-${i % 97}.example.com` },
    { shape: 'IPv4 literals', host: (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
    {
      shape: 'ordinary names and some of the longest allowed (253 characters)',
      host: (i: number) => (i % 100 === 0 ? longest(i) : `app-${i}.tenant-${i % 97}.example.com`),
    },
  ])(
    'sizes server_names_hash so that 5,000 hosts load without any nginx warning: $shape',
    async ({ host }) => {
      const hosts = Array.from({ length: 5000 }, (_, i) => host(i)).sort();
      const text = render(
        templates,
        table(
          hosts.map((name) => server(name, [location('/', 'shop_root')])),
          [upstream('shop_root', [pod('10.0.0.1:3000')])],
        ),
        options(),
      );
      const check = await checkConfig(text);
      expect(check.ok, check.output).toBe(true);
      expect(check.output).not.toMatch(/\[warn\]|could not build|server_names_hash/);
      const names = all(http(text), 'server').flatMap((block) => lines(block.block ?? [], 'server_name'));
      expect(names.join(' ').split(' ')).toHaveLength(5000);
    },
  );

  describe('templates', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'dispatcher-templates-'));
    });
    afterAll(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    function copyOfBundled(name: string): string {
      const copy = join(dir, name);
      cpSync(bundledTemplatesDir, copy, { recursive: true });
      return copy;
    }

    it('finds the bundled templates from the module location', () => {
      expect(bundledTemplatesDir).toMatch(/\/templates$/);
      expect(() => loadTemplates(bundledTemplatesDir)).not.toThrow();
    });

    it('gives hosts that route the same way one block with server_name {{serverNames}}; TLS hosts and hosts that differ keep theirs', async () => {
      const grouping = copyOfBundled('grouping');
      const serverPath = join(grouping, 'partials', 'server.hbs');
      writeFileSync(
        serverPath,
        readFileSync(serverPath, 'utf8').replace('server_name {{host}};', 'server_name {{serverNames}};'),
      );
      const same = [location('/', 'shop_root'), location('/api', 'shop_root', { apiKey: 'c2VjcmV0' })];
      const tls = { certificate: cert, certificateKey: key };
      const hosts = table(
        [
          server('a.test', same),
          server('b.test', [location('/', 'shop_root')]),
          server('c.test', same),
          server('s1.test', same, { tls }),
          server('s2.test', same, { tls }),
          server('z.test', same),
        ],
        [upstream('shop_root', [pod('10.0.0.1:80')])],
      );
      const namesPerBlock = (text: string) =>
        all(http(text), 'server')
          .map((block) => lines(block.block ?? [], 'server_name'))
          .filter((names) => names.length > 0);

      const text = render(loadTemplates(grouping), hosts, options({ ssl: tls }));
      const check = await checkConfig(text);
      expect(check.ok, check.output).toBe(true);
      expect(namesPerBlock(text)).toEqual([['a.test c.test z.test'], ['b.test'], ['s1.test'], ['s2.test']]);
      for (const host of ['a.test', 'c.test', 'z.test']) {
        expect(lines(locationIn(serverFor(text, host), '/api'), 'proxy_pass')).toEqual(['http://shop_root']);
      }
      // The bundled templates keep one block per host.
      expect(namesPerBlock(render(templates, hosts, options({ ssl: tls })))).toEqual(
        ['a.test', 'b.test', 'c.test', 's1.test', 's2.test', 'z.test'].map((host) => [host]),
      );
    });

    it('loads a TEMPLATES_DIR of the user: an access log added, @index/@first/@last still there', async () => {
      const custom = copyOfBundled('custom');
      const mainPath = join(custom, 'nginx.conf.hbs');
      const original = readFileSync(mainPath, 'utf8');
      writeFileSync(
        mainPath,
        original
          .replace('  access_log off;\n', '  access_log logs/access.log;\n')
          .replace(
            '{{#each servers}}\n',
            '{{#each servers}}\n  # server {{@index}} first={{@first}} last={{@last}}\n',
          ),
      );
      const three = table(
        ['a', 'b', 'c'].map((name) => server(`${name}.test`, [location(`/${name}`, 'shop_root')])),
        [upstream('shop_root', [pod('10.0.0.1:3000')])],
      );
      const customText = render(loadTemplates(custom), three, options());
      expect(lines(http(render(templates, three, options())), 'access_log')).toEqual(['off']);
      const check = await checkConfig(customText);
      expect(check.ok, check.output).toBe(true);
      expect(lines(http(customText), 'access_log')).toEqual(['logs/access.log']);
      expect(customText).toContain('# server 0 first=true last=false\n');
      expect(customText).toContain('# server 2 first=false last=true\n');
    });

    it.each([
      {
        name: 'a missing main template',
        setup: (d: string) => rmSync(join(d, 'nginx.conf.hbs')),
        message: /nginx\.conf\.hbs/,
      },
      {
        name: 'a missing partials directory',
        setup: (d: string) => rmSync(join(d, 'partials'), { recursive: true }),
        message: /partials/,
      },
      {
        name: 'a syntax error',
        setup: (d: string) =>
          writeFileSync(join(d, 'partials', 'location.hbs'), '\n\n    location {{path {\n'),
        message: /partials\/location\.hbs.*line 3/s,
      },
      {
        name: 'a block closed by the wrong name',
        setup: (d: string) => writeFileSync(join(d, 'partials', 'ssl.hbs'), '{{#if tls}}\nx\n{{/each}}\n'),
        message: /partials\/ssl\.hbs.*line \d/s,
      },
      {
        name: 'an unknown helper',
        setup: (d: string) => writeFileSync(join(d, 'partials', 'ssl.hbs'), '\n{{shout certificate}}\n'),
        message: /partials\/ssl\.hbs line 2: .*unknown helper shout/,
      },
      {
        name: 'a partial that does not exist',
        setup: (d: string) => {
          mkdirSync(join(d, 'partials'), { recursive: true });
          writeFileSync(join(d, 'partials', 'server.hbs'), '  server {\n{{> nowhere}}\n  }\n');
        },
        message: /partials\/server\.hbs line 2: partial "nowhere"/,
      },
    ])('refuses $name with an error naming the file', ({ setup, message }) => {
      const broken = copyOfBundled(`broken-${Math.random().toString(36).slice(2)}`);
      setup(broken);
      expect(() => loadTemplates(broken)).toThrow(message);
    });

    it('fails at render, naming the field, when a template asks for one the view lacks (strict)', () => {
      const strictDir = copyOfBundled('strict');
      writeFileSync(join(strictDir, 'partials', 'ssl.hbs'), '    ssl_certificate {{certificat}};\n');
      const strict = loadTemplates(strictDir);
      expect(() =>
        render(
          strict,
          table([server('s.test', [], { tls: { certificate: cert, certificateKey: key } })]),
          options(),
        ),
      ).toThrow(/certificat/);
    });
  });
});

describe('worker_shutdown_timeout', () => {
  it('bounds how long old workers linger after a reload, from NGINX_WORKER_SHUTDOWN_TIMEOUT', async () => {
    const text = render(
      loadTemplates(bundledTemplatesDir),
      table([]),
      options({ workerShutdownTimeout: '45s' }),
    );
    expect(text).toMatch(/^worker_shutdown_timeout 45s;$/m);
    expect((await checkConfig(text)).ok).toBe(true);
  });
});
