// Configuration from the environment (SPEC section 6). VARIABLES is the single source for validation,
// defaults, `--help` (cli-args.ts, which parses the command line of SPEC section 7) and the README's
// variable list.
import { accessSync, constants, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { parseSelector } from './model/selector.js';
import {
  checkDefaultReturn,
  checkDnsSubdomain,
  checkHeaderName,
  checkPath,
  checkPort,
  checkSecretFieldName,
  checkSize,
  quoteUntrusted,
} from './model/validate.js';
import { bundledTemplatesDir } from './render/templates.js';
import type { Config } from './types.js';

export interface VariableSpec {
  readonly name: string;
  /** The value used when the variable is unset or empty; undefined: none (the feature is off, or computed). */
  readonly default: string | undefined;
  /** One line for `--help` and the README. */
  readonly description: string;
  /** What a valid value looks like, as the error line and `--help` print it. */
  readonly expected: string;
}

const PORT_TEXT = 'an integer 1-65535';
const BOOLEAN_TEXT = 'true or false';
const LABEL_KEY_TEXT =
  'a label/annotation key: [DNS subdomain/]name, name 1-63 of A-Z a-z 0-9 - _ . starting and ending alphanumeric';
const FILE_PATH_TEXT = 'a non-empty path without control characters';
const NGINX_PATH_TEXT =
  "a non-empty path without whitespace, control characters, quotes, '\\', ';', '{', '}', '$' or '#'";

const SPECS = [
  {
    name: 'API_KEY_SECRET_NAME',
    default: 'routing',
    description: 'Name of the secret, in each namespace, holding the routing API key and the SSL fields.',
    expected: "a Kubernetes object name (DNS subdomain: a-z, 0-9, '-', '.', at most 253)",
  },
  {
    name: 'API_KEY_SECRET_FIELD',
    default: 'api-key',
    description: "Field of that secret holding the namespace's API key (requests send its base64).",
    expected: 'a secret field name ([-._a-zA-Z0-9]+, at most 253)',
  },
  {
    name: 'APP_NAME_LABEL',
    default: 'github.com/30x.dispatcher.app.name',
    description: "Pod label recording the application's name (reported; does not change routing).",
    expected: LABEL_KEY_TEXT,
  },
  {
    name: 'APP_REV_LABEL',
    default: 'github.com/30x.dispatcher.app.rev',
    description: "Pod label recording the application's revision (reported; does not change routing).",
    expected: LABEL_KEY_TEXT,
  },
  {
    name: 'ENV_LABEL',
    default: 'github.com/30x.dispatcher.env',
    description: 'Namespace label recording the environment (reported; does not change routing).',
    expected: LABEL_KEY_TEXT,
  },
  {
    name: 'ORG_LABEL',
    default: 'github.com/30x.dispatcher.org',
    description: 'Namespace label recording the organization (reported; does not change routing).',
    expected: LABEL_KEY_TEXT,
  },
  {
    name: 'HOSTS_ANNOTATION',
    default: 'github.com/30x.dispatcher.hosts',
    description: 'Namespace annotation listing its hosts: JSON {"host": {options}} or space-separated names.',
    expected: LABEL_KEY_TEXT,
  },
  {
    name: 'PATHS_ANNOTATION',
    default: 'github.com/30x.dispatcher.paths',
    description:
      'Pod annotation listing its routes: JSON [{"basePath", "containerPort", "targetPath"?, "weight"?}].',
    expected: LABEL_KEY_TEXT,
  },
  {
    name: 'ROUTABLE_LABEL_SELECTOR',
    default: 'github.com/30x.dispatcher.routable=true',
    description: 'Label selector marking the namespaces and pods to route.',
    expected: 'a Kubernetes label selector (k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k; comma = and)',
  },
  {
    name: 'API_KEY_HEADER',
    default: 'X-ROUTING-API-KEY',
    description:
      "Request header that must equal the base64 of the owning namespace's API key, when it has one.",
    expected: 'a header name ([A-Za-z0-9-]+)',
  },
  {
    name: 'DEFAULT_LOCATION_RETURN',
    default: '404',
    description:
      "Answer for a known host's paths that no pod serves: a status code, or a URL nginx proxies to.",
    expected:
      "a status code 100-599 or an http(s):// URL without whitespace, quotes, ';', '{', '}', '$' or '#'",
  },
  {
    name: 'NGINX_ENABLE_HEALTH_CHECKS',
    default: 'false',
    description: "Health-check upstreams with checks built from the pods' readiness (else liveness) probes.",
    expected: BOOLEAN_TEXT,
  },
  {
    name: 'NGINX_MAX_CLIENT_BODY_SIZE',
    default: '0',
    description: "nginx's client_max_body_size: largest request body accepted; 0 = unlimited.",
    expected: 'a size: digits with an optional k, m or g suffix (0, 512k, 10m, 1g)',
  },
  {
    name: 'NGINX_STATUS_PATH',
    default: '/dispatcher/status',
    description: 'Path answering 200 on the default servers, for load-balancer health checks.',
    expected:
      "a path: '/' then A-Z a-z 0-9 - . _ ~ ! * + , = : @ & ( ) / or %XX, no '//', '.' or '..' segment, at most 1024",
  },
  {
    name: 'PORT',
    default: '80',
    description: 'Port nginx listens on for hosts without SSL options, and for the default server.',
    expected: PORT_TEXT,
  },
  {
    name: 'SSL_PORT',
    default: '443',
    description: 'Port nginx listens on for hosts with SSL options, and for the default SSL server.',
    expected: `${PORT_TEXT}, different from PORT`,
  },
  {
    name: 'SSL_CERT',
    default: undefined,
    description: 'Certificate of the default SSL server; set with SSL_KEY to enable SSL hosts.',
    expected: `the path of an existing readable file, set together with SSL_KEY: ${NGINX_PATH_TEXT}`,
  },
  {
    name: 'SSL_KEY',
    default: undefined,
    description: 'Private key of the default SSL server, matching SSL_CERT.',
    expected: `the path of an existing readable file, set together with SSL_CERT: ${NGINX_PATH_TEXT}`,
  },
  {
    name: 'SSL_CERT_DIR',
    default: '/etc/nginx/ssl',
    description: "Directory the SSL hosts' certificates and keys are written to, one subdirectory per host.",
    expected: NGINX_PATH_TEXT,
  },
  {
    name: 'BATCH_WINDOW_MS',
    default: '2000',
    description:
      'Milliseconds during which changes are gathered into one render; 0 = render on every change.',
    expected: 'an integer 0-60000',
  },
  {
    name: 'NGINX_BIN',
    default: 'nginx',
    description: 'nginx executable: a path, or a name looked up in PATH.',
    expected: 'a non-empty command name or path without control characters',
  },
  {
    name: 'NGINX_CONF',
    default: '/etc/nginx/nginx.conf',
    description: 'Configuration file dispatcher writes and nginx runs (-c).',
    expected: FILE_PATH_TEXT,
  },
  {
    name: 'NGINX_PREFIX',
    default: undefined,
    description:
      "nginx's -p prefix; pid, logs and temp files then live under it, so nginx can run unprivileged.",
    expected: FILE_PATH_TEXT,
  },
  {
    name: 'TEMPLATES_DIR',
    default: undefined,
    description:
      'Directory holding nginx.conf.hbs and partials/; unset = the templates shipped with dispatcher.',
    expected: FILE_PATH_TEXT,
  },
  {
    name: 'NGINX_WORKER_SHUTDOWN_TIMEOUT',
    default: '30s',
    description:
      'How long old nginx workers may keep open connections (WebSockets) after a reload before they are closed.',
    expected: 'an nginx time: an integer 1-86400 followed by s, or by m (at most 1440) or h (at most 24)',
  },
  {
    name: 'NGINX_RELOAD_TIMEOUT_MS',
    default: '30000',
    description:
      'Milliseconds a reload has to show the new configuration served before it is reported as failed.',
    expected: 'an integer 1000-600000',
  },
  {
    name: 'NGINX_RELOAD',
    default: 'handover',
    description:
      "handover: each configuration gets a new nginx master on dispatcher's sockets; signal: SIGHUP to one master.",
    expected: 'handover or signal',
  },
  {
    name: 'ROUTE_UNREADY_PODS',
    default: 'false',
    description: 'Also route running pods whose Ready condition is not True (as the Go program did).',
    expected: BOOLEAN_TEXT,
  },
  {
    name: 'HOST_SHARING',
    default: 'shared',
    description:
      'shared: a newer namespace may add paths to a host an older one lists; exclusive: oldest only.',
    expected: 'shared or exclusive',
  },
  {
    name: 'ADMIN_PORT',
    default: '10254',
    description: 'Port of the admin HTTP server (health, readiness, metrics, current routes).',
    expected: `${PORT_TEXT}, different from PORT and SSL_PORT`,
  },
  {
    name: 'ADMIN_BIND',
    default: '0.0.0.0',
    description: 'Address the admin HTTP server listens on (127.0.0.1 keeps it local to the node).',
    expected: 'an IPv4 or IPv6 address',
  },
  {
    name: 'LOG_LEVEL',
    default: 'info',
    description: 'Least severe level of the JSON logs written to stderr.',
    expected: 'fatal, error, warn, info, debug, trace or silent',
  },
] as const satisfies readonly VariableSpec[];

type VariableName = (typeof SPECS)[number]['name'];

/** Every environment variable dispatcher reads for its configuration, in `--help` order. */
export const VARIABLES: readonly VariableSpec[] = SPECS;

function spec(name: VariableName): VariableSpec {
  const found = VARIABLES.find((v) => v.name === name);
  if (!found) throw new Error(`unknown variable ${name}`);
  return found;
}

// ---------------------------------------------------------------- value parsers

/** Either the value, or a detail worth adding to the expectation (empty when it says all). */
type Parsed<T> = { ok: true; value: T } | { ok: false; detail?: string };

const good = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(detail?: string): Parsed<T> => ({ ok: false, detail });

/** Drops the reason of a validate.ts checker: the variable's `expected` text says it better. */
function viaCheck<T>(
  check: (v: unknown) => { ok: true; value: T } | { ok: false },
): (text: string) => Parsed<T> {
  return (text) => {
    const checked = check(text);
    return checked.ok ? good(checked.value) : bad();
  };
}

const parsePort = viaCheck(checkPort);

// Strict on purpose: 1/0/yes/TRUE are refused so that a typo never silently means false.
function parseBoolean(text: string): Parsed<boolean> {
  if (text === 'true') return good(true);
  if (text === 'false') return good(false);
  return bad();
}

function parseBatchWindow(text: string): Parsed<number> {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return bad();
  const ms = Number(text);
  return ms <= 60_000 ? good(ms) : bad();
}

function parseAddress(text: string): Parsed<string> {
  return isIP(text) === 0 ? bad() : good(text);
}

function parseShutdownTimeout(text: string): Parsed<string> {
  const match = /^([1-9][0-9]{0,4})(s|m|h)$/.exec(text);
  if (!match) return bad();
  const limit = { s: 86_400, m: 1440, h: 24 }[match[2] as 's' | 'm' | 'h'];
  return Number(match[1]) <= limit ? good(text) : bad();
}

function parseReloadTimeout(text: string): Parsed<number> {
  if (!/^[1-9][0-9]{3,5}$/.test(text)) return bad();
  const ms = Number(text);
  return ms <= 600_000 ? good(ms) : bad();
}

function oneOf<T extends string>(choices: readonly T[]): (text: string) => Parsed<T> {
  return (text) => (choices.includes(text as T) ? good(text as T) : bad());
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Kubernetes qualified name, as label and annotation keys must be. */
export function isQualifiedName(text: string): boolean {
  const slash = text.indexOf('/');
  const prefix = slash === -1 ? undefined : text.slice(0, slash);
  const name = slash === -1 ? text : text.slice(slash + 1);
  if (prefix !== undefined && !checkDnsSubdomain(prefix).ok) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

function parseQualifiedName(text: string): Parsed<string> {
  return isQualifiedName(text) ? good(text) : bad();
}

function parseSelectorText(text: string): Parsed<string> {
  const parsed = parseSelector(text);
  return parsed.ok ? good(text) : bad(parsed.reason.replace(/^invalid label selector: /, ''));
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

// Paths that end up inside nginx.conf: nothing nginx could read as syntax or a variable.
const NGINX_UNSAFE = /[\s"'\\;{}$#]/;

/** Relative paths are resolved against the working directory: nginx would read them against its own prefix. */
function parseFilePath(text: string): Parsed<string> {
  return hasControlCharacter(text) ? bad() : good(resolve(text));
}

function parseNginxPath(text: string): Parsed<string> {
  return NGINX_UNSAFE.test(text) || hasControlCharacter(text) ? bad() : good(resolve(text));
}

function parseCommand(text: string): Parsed<string> {
  return hasControlCharacter(text) ? bad() : good(text);
}

// ---------------------------------------------------------------- loadConfig

export type FileCheck = (path: string) => boolean;

/** True when `path` is a regular file this process can read. */
export function isReadableFile(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function errorLine(name: string, text: string | undefined, expected: string, detail?: string): string {
  const value = text === undefined ? ' (unset)' : `=${quoteUntrusted(text)}`;
  return `invalid ${name}${value}: expected ${expected}${detail ? ` (${detail})` : ''}`;
}

/**
 * Reads and validates every variable of VARIABLES. An empty value counts as unset. Every invalid
 * value gives one error line; all of them are returned, not just the first. `fileExists` decides
 * whether SSL_CERT/SSL_KEY name readable files (the only I/O here).
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  fileExists: FileCheck = isReadableFile,
): { ok: true; config: Config } | { ok: false; errors: string[] } {
  const errors: string[] = [];

  const textOf = (name: VariableName): string | undefined => {
    const raw = env[name];
    return raw === undefined || raw === '' ? spec(name).default : raw;
  };
  const optional = <T>(name: VariableName, parse: (text: string) => Parsed<T>): T | undefined => {
    const text = textOf(name);
    if (text === undefined) return undefined;
    const parsed = parse(text);
    if (parsed.ok) return parsed.value;
    errors.push(errorLine(name, text, spec(name).expected, parsed.detail));
    return undefined;
  };
  // On an invalid value the default stands in, so the remaining checks still run; errors decide the outcome.
  const required = <T>(name: VariableName, parse: (text: string) => Parsed<T>): T => {
    const value = optional(name, parse);
    if (value !== undefined) return value;
    const fallback = parse(spec(name).default ?? '');
    if (!fallback.ok) throw new Error(`the default of ${name} is invalid`);
    return fallback.value;
  };

  const port = optional('PORT', parsePort);
  const sslPort = optional('SSL_PORT', parsePort);
  const adminPort = optional('ADMIN_PORT', parsePort);
  if (port !== undefined && sslPort === port) {
    errors.push(errorLine('SSL_PORT', textOf('SSL_PORT'), `a port different from PORT (${port})`));
  }
  if (adminPort !== undefined && (adminPort === port || adminPort === sslPort)) {
    const clash = adminPort === port ? 'PORT' : 'SSL_PORT';
    errors.push(
      errorLine('ADMIN_PORT', textOf('ADMIN_PORT'), `a port different from ${clash} (${adminPort})`),
    );
  }

  const config: Config = {
    apiKeySecretName: required('API_KEY_SECRET_NAME', viaCheck(checkDnsSubdomain)),
    apiKeySecretField: required('API_KEY_SECRET_FIELD', viaCheck(checkSecretFieldName)),
    appNameLabel: required('APP_NAME_LABEL', parseQualifiedName),
    appRevLabel: required('APP_REV_LABEL', parseQualifiedName),
    envLabel: required('ENV_LABEL', parseQualifiedName),
    orgLabel: required('ORG_LABEL', parseQualifiedName),
    hostsAnnotation: required('HOSTS_ANNOTATION', parseQualifiedName),
    pathsAnnotation: required('PATHS_ANNOTATION', parseQualifiedName),
    routableLabelSelector: required('ROUTABLE_LABEL_SELECTOR', parseSelectorText),
    apiKeyHeader: required('API_KEY_HEADER', viaCheck(checkHeaderName)),
    defaultLocationReturn: required('DEFAULT_LOCATION_RETURN', viaCheck(checkDefaultReturn)),
    enableHealthChecks: required('NGINX_ENABLE_HEALTH_CHECKS', parseBoolean),
    maxClientBodySize: required('NGINX_MAX_CLIENT_BODY_SIZE', viaCheck(checkSize)),
    statusPath: required('NGINX_STATUS_PATH', viaCheck(checkPath)),
    port: port ?? 80,
    sslPort: sslPort ?? 443,
    sslCertDir: required('SSL_CERT_DIR', parseNginxPath),
    batchWindowMs: required('BATCH_WINDOW_MS', parseBatchWindow),
    nginxBin: required('NGINX_BIN', parseCommand),
    nginxConf: required('NGINX_CONF', parseFilePath),
    templatesDir: optional('TEMPLATES_DIR', parseFilePath) ?? bundledTemplatesDir,
    workerShutdownTimeout: required('NGINX_WORKER_SHUTDOWN_TIMEOUT', parseShutdownTimeout),
    reloadTimeoutMs: required('NGINX_RELOAD_TIMEOUT_MS', parseReloadTimeout),
    nginxReload: required('NGINX_RELOAD', oneOf(['handover', 'signal'] as const)),
    routeUnreadyPods: required('ROUTE_UNREADY_PODS', parseBoolean),
    hostSharing: required('HOST_SHARING', oneOf(['shared', 'exclusive'] as const)),
    adminPort: adminPort ?? 10254,
    adminBind: required('ADMIN_BIND', parseAddress),
    logLevel: required(
      'LOG_LEVEL',
      oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    ),
  };
  const nginxPrefix = optional('NGINX_PREFIX', parseFilePath);
  if (nginxPrefix !== undefined) config.nginxPrefix = nginxPrefix;

  const ssl = loadSslPair(textOf('SSL_CERT'), textOf('SSL_KEY'), fileExists);
  errors.push(...ssl.errors);
  if (ssl.cert !== undefined && ssl.key !== undefined) {
    config.sslCert = ssl.cert;
    config.sslKey = ssl.key;
  }

  return errors.length > 0 ? { ok: false, errors } : { ok: true, config };
}

/** SSL_CERT and SSL_KEY: both or neither, each a readable file. Only paths are ever printed. */
function loadSslPair(
  certText: string | undefined,
  keyText: string | undefined,
  fileExists: FileCheck,
): { cert?: string; key?: string; errors: string[] } {
  const errors: string[] = [];
  const file = (
    name: 'SSL_CERT' | 'SSL_KEY',
    text: string | undefined,
    other: string,
  ): string | undefined => {
    if (text === undefined) {
      errors.push(errorLine(name, undefined, `a path as well, since ${other} is set (set both or neither)`));
      return undefined;
    }
    const parsed = parseNginxPath(text);
    if (!parsed.ok) {
      errors.push(errorLine(name, text, spec(name).expected));
      return undefined;
    }
    if (!fileExists(parsed.value)) {
      errors.push(errorLine(name, text, 'the path of an existing readable file'));
      return undefined;
    }
    return parsed.value;
  };
  if (certText === undefined && keyText === undefined) return { errors };
  const cert = file('SSL_CERT', certText, 'SSL_KEY');
  const key = file('SSL_KEY', keyText, 'SSL_CERT');
  return { cert, key, errors };
}
