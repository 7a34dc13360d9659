import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { helpText, parseArgs } from '../../src/cli-args.js';
import { loadConfig, VARIABLES } from '../../src/config.js';
import { bundledTemplatesDir } from '../../src/render/templates.js';
import type { Config } from '../../src/types.js';

/** SPEC section 6, transcribed: every variable and its default (undefined: unset by default). */
const SPEC_DEFAULTS: Record<string, string | undefined> = {
  API_KEY_SECRET_NAME: 'routing',
  API_KEY_SECRET_FIELD: 'api-key',
  APP_NAME_LABEL: 'github.com/30x.dispatcher.app.name',
  APP_REV_LABEL: 'github.com/30x.dispatcher.app.rev',
  ENV_LABEL: 'github.com/30x.dispatcher.env',
  ORG_LABEL: 'github.com/30x.dispatcher.org',
  HOSTS_ANNOTATION: 'github.com/30x.dispatcher.hosts',
  PATHS_ANNOTATION: 'github.com/30x.dispatcher.paths',
  ROUTABLE_LABEL_SELECTOR: 'github.com/30x.dispatcher.routable=true',
  API_KEY_HEADER: 'X-ROUTING-API-KEY',
  DEFAULT_LOCATION_RETURN: '404',
  NGINX_ENABLE_HEALTH_CHECKS: 'false',
  NGINX_MAX_CLIENT_BODY_SIZE: '0',
  NGINX_STATUS_PATH: '/dispatcher/status',
  PORT: '80',
  SSL_PORT: '443',
  SSL_CERT: undefined,
  SSL_KEY: undefined,
  SSL_CERT_DIR: '/etc/nginx/ssl',
  BATCH_WINDOW_MS: '2000',
  NGINX_BIN: 'nginx',
  NGINX_CONF: '/etc/nginx/nginx.conf',
  NGINX_PREFIX: undefined,
  TEMPLATES_DIR: undefined,
  NGINX_WORKER_SHUTDOWN_TIMEOUT: '30s',
  NGINX_RELOAD_TIMEOUT_MS: '30000',
  NGINX_RELOAD: 'handover',
  ROUTE_UNREADY_PODS: 'false',
  HOST_SHARING: 'shared',
  ADMIN_PORT: '10254',
  ADMIN_BIND: '0.0.0.0',
  LOG_LEVEL: 'info',
};

const DEFAULT_CONFIG: Config = {
  apiKeySecretName: 'routing',
  apiKeySecretField: 'api-key',
  appNameLabel: 'github.com/30x.dispatcher.app.name',
  appRevLabel: 'github.com/30x.dispatcher.app.rev',
  envLabel: 'github.com/30x.dispatcher.env',
  orgLabel: 'github.com/30x.dispatcher.org',
  hostsAnnotation: 'github.com/30x.dispatcher.hosts',
  pathsAnnotation: 'github.com/30x.dispatcher.paths',
  routableLabelSelector: 'github.com/30x.dispatcher.routable=true',
  apiKeyHeader: 'X-ROUTING-API-KEY',
  defaultLocationReturn: { kind: 'status', code: 404 },
  enableHealthChecks: false,
  maxClientBodySize: '0',
  statusPath: '/dispatcher/status',
  port: 80,
  sslPort: 443,
  sslCertDir: '/etc/nginx/ssl',
  batchWindowMs: 2000,
  nginxBin: 'nginx',
  nginxConf: '/etc/nginx/nginx.conf',
  templatesDir: bundledTemplatesDir,
  workerShutdownTimeout: '30s',
  reloadTimeoutMs: 30000,
  nginxReload: 'handover',
  routeUnreadyPods: false,
  hostSharing: 'shared',
  adminPort: 10254,
  adminBind: '0.0.0.0',
  logLevel: 'info',
};

function errorsOf(env: Record<string, string | undefined>): string[] {
  const result = loadConfig(env);
  return result.ok ? [] : result.errors;
}

function configOf(env: Record<string, string | undefined>): Config {
  const result = loadConfig(env);
  if (!result.ok) throw new Error(`unexpected errors: ${result.errors.join('; ')}`);
  return result.config;
}

describe('VARIABLES', () => {
  it('lists exactly the variables of SPEC section 6 with their defaults', () => {
    const table = Object.fromEntries(VARIABLES.map((v) => [v.name, v.default]));
    expect(table).toEqual(SPEC_DEFAULTS);
    expect(VARIABLES).toHaveLength(Object.keys(SPEC_DEFAULTS).length);
  });

  it.each(VARIABLES.map((v) => [v.name, v] as const))(
    '%s has a one-line description and expectation',
    (_, v) => {
      for (const text of [v.description, v.expected]) {
        expect(text.length).toBeGreaterThan(5);
        expect(text).not.toMatch(/[\n\r]/);
      }
      expect(v.description.length).toBeLessThanOrEqual(110);
    },
  );
});

describe('loadConfig defaults', () => {
  it('an empty environment gives the documented defaults', () => {
    expect(configOf({})).toEqual(DEFAULT_CONFIG);
  });

  it('an empty value counts as unset', () => {
    const env = Object.fromEntries(VARIABLES.map((v) => [v.name, '']));
    expect(configOf(env)).toEqual(DEFAULT_CONFIG);
  });

  it('ignores variables it does not know', () => {
    expect(configOf({ HOME: '/root', PATH: '/bin', PORTS: 'x' })).toEqual(DEFAULT_CONFIG);
  });
});

describe('loadConfig valid values', () => {
  const cases: [string, Record<string, string>, Partial<Config>][] = [
    [
      'ports',
      { PORT: '8080', SSL_PORT: '8443', ADMIN_PORT: '65535' },
      { port: 8080, sslPort: 8443, adminPort: 65535 },
    ],
    ['SSL_PORT may take 80 when PORT moves', { PORT: '81', SSL_PORT: '80' }, { port: 81, sslPort: 80 }],
    ['port 1', { PORT: '1' }, { port: 1 }],
    [
      'booleans',
      { NGINX_ENABLE_HEALTH_CHECKS: 'true', ROUTE_UNREADY_PODS: 'true' },
      { enableHealthChecks: true, routeUnreadyPods: true },
    ],
    ['explicit false', { NGINX_ENABLE_HEALTH_CHECKS: 'false' }, { enableHealthChecks: false }],
    [
      'status code return',
      { DEFAULT_LOCATION_RETURN: '503' },
      { defaultLocationReturn: { kind: 'status', code: 503 } },
    ],
    [
      'URL return',
      { DEFAULT_LOCATION_RETURN: 'https://fallback.example.com/x' },
      { defaultLocationReturn: { kind: 'url', url: 'https://fallback.example.com/x' } },
    ],
    ['sizes', { NGINX_MAX_CLIENT_BODY_SIZE: '10m' }, { maxClientBodySize: '10m' }],
    ['status path', { NGINX_STATUS_PATH: '/healthz' }, { statusPath: '/healthz' }],
    ['batch window 0', { BATCH_WINDOW_MS: '0' }, { batchWindowMs: 0 }],
    ['batch window max', { BATCH_WINDOW_MS: '60000' }, { batchWindowMs: 60000 }],
    ['exclusive hosts', { HOST_SHARING: 'exclusive' }, { hostSharing: 'exclusive' }],
    ['reload by signal', { NGINX_RELOAD: 'signal' }, { nginxReload: 'signal' }],
    ['log level', { LOG_LEVEL: 'silent' }, { logLevel: 'silent' }],
    ['header', { API_KEY_HEADER: 'X-Api-Key' }, { apiKeyHeader: 'X-Api-Key' }],
    [
      'public/private names',
      {
        API_KEY_SECRET_FIELD: 'private-api-key',
        HOSTS_ANNOTATION: 'github.com/30x.dispatcher.hosts.private',
        PATHS_ANNOTATION: 'github.com/30x.dispatcher.paths.private',
      },
      {
        apiKeySecretField: 'private-api-key',
        hostsAnnotation: 'github.com/30x.dispatcher.hosts.private',
        pathsAnnotation: 'github.com/30x.dispatcher.paths.private',
      },
    ],
    ['label without prefix', { ORG_LABEL: 'org' }, { orgLabel: 'org' }],
    ['secret name with dots', { API_KEY_SECRET_NAME: 'routing.v2' }, { apiKeySecretName: 'routing.v2' }],
    [
      'full selector syntax',
      { ROUTABLE_LABEL_SELECTOR: 'routable in (yes,true),!disabled,tier!=batch' },
      { routableLabelSelector: 'routable in (yes,true),!disabled,tier!=batch' },
    ],
    ['nginx bin by name', { NGINX_BIN: 'openresty' }, { nginxBin: 'openresty' }],
    [
      'relative paths resolve against the working directory',
      {
        NGINX_PREFIX: 'run/nginx',
        NGINX_CONF: 'run/nginx.conf',
        SSL_CERT_DIR: 'run/ssl',
        TEMPLATES_DIR: 'tpl',
      },
      {
        nginxPrefix: resolve('run/nginx'),
        nginxConf: resolve('run/nginx.conf'),
        sslCertDir: resolve('run/ssl'),
        templatesDir: resolve('tpl'),
      },
    ],
  ];
  it.each(cases)('%s', (_, env, expected) => {
    expect(configOf(env)).toEqual({ ...DEFAULT_CONFIG, ...expected });
  });
});

describe('loadConfig invalid values', () => {
  // [variable, value, text the expectation must contain]
  const cases: [string, string, string][] = [
    ['PORT', '80a', 'an integer 1-65535'],
    ['NGINX_WORKER_SHUTDOWN_TIMEOUT', '30', 'an nginx time'],
    ['NGINX_WORKER_SHUTDOWN_TIMEOUT', '10s;', 'an nginx time'],
    ['NGINX_WORKER_SHUTDOWN_TIMEOUT', '25h', 'an nginx time'],
    ['NGINX_RELOAD_TIMEOUT_MS', '999', 'an integer 1000-600000'],
    ['ADMIN_BIND', 'localhost', 'an IPv4 or IPv6 address'],
    ['NGINX_RELOAD', 'hup', 'handover or signal'],
    ['NGINX_RELOAD', 'Handover', 'handover or signal'],
    ['NGINX_RELOAD_TIMEOUT_MS', '600001', 'an integer 1000-600000'],
    ['PORT', ' 8080', 'an integer 1-65535'],
    ['PORT', '0x1f90', 'an integer 1-65535'],
    ['PORT', '1e3', 'an integer 1-65535'],
    ['PORT', '8080.5', 'an integer 1-65535'],
    ['PORT', '0', 'an integer 1-65535'],
    ['PORT', '65536', 'an integer 1-65535'],
    ['PORT', '+80', 'an integer 1-65535'],
    ['SSL_PORT', '-443', 'an integer 1-65535'],
    ['ADMIN_PORT', 'admin', 'an integer 1-65535'],
    ['NGINX_ENABLE_HEALTH_CHECKS', 'yes', 'true or false'],
    ['NGINX_ENABLE_HEALTH_CHECKS', '1', 'true or false'],
    ['ROUTE_UNREADY_PODS', 'TRUE', 'true or false'],
    ['BATCH_WINDOW_MS', '60001', 'an integer 0-60000'],
    ['BATCH_WINDOW_MS', '-1', 'an integer 0-60000'],
    ['BATCH_WINDOW_MS', '2s', 'an integer 0-60000'],
    ['NGINX_MAX_CLIENT_BODY_SIZE', '10mb', 'a size'],
    ['NGINX_MAX_CLIENT_BODY_SIZE', '1 m', 'a size'],
    ['NGINX_MAX_CLIENT_BODY_SIZE', '-1', 'a size'],
    ['NGINX_STATUS_PATH', 'status', 'a path'],
    ['NGINX_STATUS_PATH', '/a//b', 'a path'],
    ['NGINX_STATUS_PATH', '/a/../b', 'a path'],
    ['NGINX_STATUS_PATH', '/status;return 200', 'a path'],
    ['API_KEY_HEADER', 'X Key', 'a header name'],
    ['API_KEY_HEADER', 'X-Key:', 'a header name'],
    ['DEFAULT_LOCATION_RETURN', '99', 'a status code 100-599 or an http(s):// URL'],
    ['DEFAULT_LOCATION_RETURN', '600', 'a status code 100-599 or an http(s):// URL'],
    ['DEFAULT_LOCATION_RETURN', 'ftp://files.example.com', 'a status code 100-599 or an http(s):// URL'],
    [
      'DEFAULT_LOCATION_RETURN',
      'http://x.example.com/;return 200',
      'a status code 100-599 or an http(s):// URL',
    ],
    ['API_KEY_SECRET_NAME', 'Routing', 'DNS subdomain'],
    ['API_KEY_SECRET_NAME', 'routing_secret', 'DNS subdomain'],
    ['API_KEY_SECRET_FIELD', 'api/key', 'a secret field name'],
    ['APP_NAME_LABEL', 'github.com/', 'label/annotation key'],
    ['APP_REV_LABEL', '/rev', 'label/annotation key'],
    ['ENV_LABEL', 'Example.COM/env', 'label/annotation key'],
    ['ORG_LABEL', '-org', 'label/annotation key'],
    ['HOSTS_ANNOTATION', `example.com/${'h'.repeat(64)}`, 'label/annotation key'],
    ['PATHS_ANNOTATION', 'a/b/c', 'label/annotation key'],
    ['ROUTABLE_LABEL_SELECTOR', 'tier in (web', 'label selector'],
    ['ROUTABLE_LABEL_SELECTOR', 'a b', 'label selector'],
    ['HOST_SHARING', 'Shared', 'shared or exclusive'],
    ['LOG_LEVEL', 'verbose', 'fatal, error, warn, info, debug, trace or silent'],
    ['NGINX_BIN', 'nginx\n-g daemon', 'without control characters'],
    ['NGINX_CONF', '/etc/nginx/\u0000nginx.conf', 'without control characters'],
    ['NGINX_PREFIX', '/tmp/\u007f', 'without control characters'],
    ['TEMPLATES_DIR', '/opt/\ttemplates', 'without control characters'],
    ['SSL_CERT_DIR', '/etc/nginx/my ssl', 'without whitespace'],
    ['SSL_CERT_DIR', '/etc/nginx/ssl;include /etc/passwd', "';'"],
    ['SSL_CERT_DIR', '/etc/$host', "'$'"],
  ];

  it.each(cases)('%s=%j gives one line naming variable, value and expectation', (name, value, expected) => {
    const errors = errorsOf({ [name]: value });
    expect(errors).toHaveLength(1);
    const [line] = errors as [string];
    expect(line.startsWith(`invalid ${name}="`)).toBe(true);
    expect(line).toContain(': expected ');
    expect(line).toContain(expected);
    expect([...line].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)).toBe(false);
  });

  it('prints the value quoted, with control characters escaped', () => {
    expect(errorsOf({ PORT: '80a' })).toEqual(['invalid PORT="80a": expected an integer 1-65535']);
    expect(errorsOf({ NGINX_BIN: 'nginx\n-g x' })[0]).toContain('NGINX_BIN="nginx\\n-g x"');
  });

  it('truncates a long value', () => {
    const [line] = errorsOf({ LOG_LEVEL: 'x'.repeat(5000) });
    expect(line).toContain('…');
    expect(line?.length).toBeLessThan(200);
  });

  it('adds the selector parser’s reason', () => {
    const [line] = errorsOf({ ROUTABLE_LABEL_SELECTOR: 'tier in (web' });
    expect(line).toMatch(/label selector.*\(.+\)$/);
  });

  it('reports every invalid variable, not just the first', () => {
    const errors = errorsOf({
      PORT: 'http',
      LOG_LEVEL: 'loud',
      HOST_SHARING: 'maybe',
      NGINX_STATUS_PATH: 'x',
    });
    expect(errors).toHaveLength(4);
    for (const name of ['PORT', 'LOG_LEVEL', 'HOST_SHARING', 'NGINX_STATUS_PATH']) {
      expect(errors.filter((e) => e.startsWith(`invalid ${name}=`))).toHaveLength(1);
    }
  });

  it.each([
    [
      { PORT: '8080', SSL_PORT: '8080' },
      'invalid SSL_PORT="8080": expected a port different from PORT (8080)',
    ],
    [{ SSL_PORT: '80' }, 'invalid SSL_PORT="80": expected a port different from PORT (80)'],
    [{ ADMIN_PORT: '80' }, 'invalid ADMIN_PORT="80": expected a port different from PORT (80)'],
    [{ ADMIN_PORT: '443' }, 'invalid ADMIN_PORT="443": expected a port different from SSL_PORT (443)'],
  ])('ports must differ: %j', (env, line) => {
    expect(errorsOf(env)).toEqual([line]);
  });
});

describe('loadConfig SSL pair', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dispatcher-config-'));
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  const secretMarker = 'PRIVATE-KEY-MATERIAL-1234';
  writeFileSync(cert, 'certificate');
  writeFileSync(key, secretMarker);
  mkdirSync(join(dir, 'a-directory'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('both files present: SSL is configured with their paths', () => {
    const config = configOf({ SSL_CERT: cert, SSL_KEY: key });
    expect(config.sslCert).toBe(cert);
    expect(config.sslKey).toBe(key);
  });

  it('neither: SSL is off', () => {
    const config = configOf({ SSL_CERT: '', SSL_KEY: '' });
    expect(config.sslCert).toBeUndefined();
    expect(config.sslKey).toBeUndefined();
  });

  it('relative paths resolve against the working directory', () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const config = configOf({ SSL_CERT: 'server.crt', SSL_KEY: './server.key' });
      expect(config.sslCert).toBe(cert);
      expect(config.sslKey).toBe(key);
    } finally {
      process.chdir(cwd);
    }
  });

  it.each([
    [
      'cert without key',
      { SSL_CERT: cert },
      ['invalid SSL_KEY (unset): expected a path as well, since SSL_CERT is set'],
    ],
    [
      'key without cert',
      { SSL_KEY: key },
      ['invalid SSL_CERT (unset): expected a path as well, since SSL_KEY is set'],
    ],
    [
      'missing cert file',
      { SSL_CERT: join(dir, 'missing.crt'), SSL_KEY: key },
      [`invalid SSL_CERT="${join(dir, 'missing.crt')}": expected the path of an existing readable file`],
    ],
    [
      'key is a directory',
      { SSL_CERT: cert, SSL_KEY: join(dir, 'a-directory') },
      [`invalid SSL_KEY="${join(dir, 'a-directory')}": expected the path of an existing readable file`],
    ],
    [
      'both missing',
      { SSL_CERT: '/nonexistent/a.crt', SSL_KEY: '/nonexistent/a.key' },
      ['invalid SSL_CERT="/nonexistent/a.crt"', 'invalid SSL_KEY="/nonexistent/a.key"'],
    ],
    [
      'unsafe characters',
      { SSL_CERT: `${cert};`, SSL_KEY: key },
      [`invalid SSL_CERT="${cert};": expected the path`],
    ],
  ])('%s is an error', (_, env, starts) => {
    const errors = errorsOf(env);
    expect(errors).toHaveLength(starts.length);
    starts.forEach((start, i) => {
      expect(errors[i]?.startsWith(start)).toBe(true);
    });
  });

  it('never prints the key file’s content, only its path', () => {
    const errors = errorsOf({ SSL_KEY: key, PORT: 'x' });
    expect(errors.join('\n')).not.toContain(secretMarker);
    expect(errors.join('\n')).toContain('SSL_CERT (unset)');
  });

  it('asks the injected file check', () => {
    const seen: string[] = [];
    const result = loadConfig({ SSL_CERT: '/x/a.crt', SSL_KEY: '/x/a.key' }, (path) => {
      seen.push(path);
      return path.endsWith('.crt');
    });
    expect(seen).toEqual(['/x/a.crt', '/x/a.key']);
    expect(result).toEqual({
      ok: false,
      errors: ['invalid SSL_KEY="/x/a.key": expected the path of an existing readable file'],
    });
  });
});

describe('helpText', () => {
  const help = helpText();

  it('shows the usage line and every flag', () => {
    expect(help).toContain('dispatcher [--manifests DIR] [--kubeconfig FILE] [--mock | --nginx] [--once]');
    for (const flag of ['--manifests DIR', '--kubeconfig FILE', '--mock', '--nginx', '--once', '--help']) {
      expect(help).toMatch(new RegExp(`^ +(-h, )?${flag} +\\S`, 'm'));
    }
  });

  it.each(VARIABLES.map((v) => [v.name, v] as const))(
    'lists %s with its default and description',
    (name, v) => {
      const heading =
        v.default === undefined ? `  ${name} (unset by default)` : `  ${name} (default: ${v.default})`;
      expect(help.split('\n')).toContain(heading);
      expect(help).toContain(v.description);
      expect(help).toContain(v.expected);
    },
  );

  it('lists the exit codes', () => {
    expect(help).toMatch(/^ {2}0 {2}done/m);
    expect(help).toMatch(/^ {2}1 {2}invalid configuration/m);
    expect(help).toMatch(/^ {2}2 {2}runtime failure/m);
  });
});

describe('parseArgs', () => {
  const valid: [string[], object][] = [
    [[], { once: false, help: false }],
    [
      ['--manifests', 'examples/cluster', '--mock', '--once'],
      { manifests: 'examples/cluster', mode: 'mock', once: true, help: false },
    ],
    [['--manifests=dir', '--nginx'], { manifests: 'dir', mode: 'nginx', once: false, help: false }],
    [['--kubeconfig', '/k/config'], { kubeconfig: '/k/config', once: false, help: false }],
    [['--help'], { once: false, help: true }],
    [['-h', '--once'], { once: true, help: true }],
  ];
  it.each(valid)('%j parses', (argv, args) => {
    expect(parseArgs(argv)).toEqual({ ok: true, args });
  });

  const invalid: [string[], RegExp][] = [
    [['--mock', '--nginx'], /--mock and --nginx cannot be used together/],
    [['--verbose'], /Unknown option '--verbose'/],
    [['-x'], /Unknown option '-x'/],
    [['--manifests'], /--manifests/],
    [['--manifests', '--once'], /--manifests/],
    [['--manifests='], /--manifests needs a non-empty value/],
    [['--once=yes'], /--once/],
    [['examples/cluster'], /Unexpected argument 'examples\/cluster'$/],
  ];
  it.each(invalid)('%j is an error', (argv, message) => {
    const result = parseArgs(argv);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error).toMatch(message);
      expect(result.error).not.toMatch(/\n|strict: false/);
    }
  });
});
