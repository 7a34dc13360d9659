// The view the templates render: the routing table turned into values ready to print (strings
// quoted, bare words sanitised, numbers as digits). Views of unchanged table objects are reused.

import type {
  HealthCheck,
  HealthCheckMode,
  RenderOptions,
  RoutingTable,
  Server,
  ServerTls,
  Upstream,
} from '../types.js';
import { escapeNginxString, integer, nginxToken, quoteNginx } from './quoting.js';
import { createServerGroupCache, groupServers, type ServerGroupCache } from './server-groups.js';

/** The views made for one set of render options, by the identity of the table objects they show. */
export interface ViewCache {
  upstreams: WeakMap<Upstream, UpstreamView>;
  servers: WeakMap<Server, ServerView>;
  groups: ServerGroupCache;
}

/**
 * An nginx string literal, quotes included, made by `quoteNginx`: write `location {{path}} {`,
 * never `"{{path}}"`. Quoting happens here rather than through the `quote` helper in the
 * templates because a Handlebars helper call costs more than the rest of a location.
 */
export type Quoted = string;

/**
 * What the templates are rendered with. Every field is present (null when absent) because the
 * templates compile in strict mode; numbers are already digits, bare words already sanitised
 * (`nginxToken`) and strings already quoted (`Quoted`). Values shared by many items are repeated on
 * each item rather than reached through `../` or `@root`, which would slow large tables down.
 */
export interface RenderView {
  /** Hex digits. */
  version: string;
  paths: {
    pid: Quoted;
    clientBodyTemp: Quoted;
    proxyTemp: Quoted;
    fastcgiTemp: Quoted;
    uwsgiTemp: Quoted;
    scgiTemp: Quoted;
  };
  serverNamesHash: { maxSize: string; bucketSize: string };
  maxClientBodySize: string;
  /** nginx time (e.g. 30s): how long old workers may hold connections after a reload. */
  workerShutdownTimeout: string;
  port: string;
  sslPort: string;
  statusPath: Quoted;
  /** The default SSL server's pair; null without SSL. */
  defaultSsl: TlsView | null;
  upstreams: UpstreamView[];
  servers: ServerView[];
}

export interface TlsView {
  certificate: Quoted;
  certificateKey: Quoted;
  clientCertificate: Quoted | null;
}

export interface UpstreamView {
  name: string;
  /** `parameters`: what follows the address on the `server` line (` weight=2 max_fails=3 ...`). */
  servers: { address: string; parameters: string }[];
  /** Active check (nginx_upstream_check_module), once per upstream; null unless healthChecks is 'active'. */
  check: {
    type: string;
    intervalMs: string;
    timeoutMs: string;
    rise: string;
    fall: string;
    port: string;
    /** `check_http_send`'s argument: `"GET /path HTTP/1.0\r\n\r\n"`; null for tcp checks. */
    httpSend: Quoted | null;
  } | null;
}

export interface ServerView {
  /** The block's first host. */
  host: Quoted;
  /** Every host of the block, each quoted, separated by spaces: what `server_name` takes. */
  serverNames: string;
  /** `80` or `443 ssl`. */
  listen: string;
  tls: TlsView | null;
  locations: LocationView[];
  /** What `location /` answers when no location serves `/`; null when one does. */
  defaultLocation: DefaultLocationView | null;
}

export interface LocationView {
  path: Quoted;
  /** `"http://<upstream>"` or `"http://<upstream><targetPath>"`. */
  proxyPass: Quoted;
  apiKey: Quoted | null;
  /** nginx variable holding the API-key header, without `$`: `http_x_routing_api_key`. */
  apiKeyVariable: string;
  /** The owning namespace's API key is unusable: every request gets 403 (fail closed). */
  deny: boolean;
}

export interface DefaultLocationView {
  status: string | null;
  url: Quoted | null;
}

/**
 * Stands in for the version while rendering; the version is the hash of what is rendered around it.
 * NUL characters make it one no value can contain: quoting and sanitising drop them.
 */
export const VERSION_PLACEHOLDER = '\u0000config-version\u0000';

/**
 * What the templates see of `table`. `groupsHosts`: the templates name servers by `serverNames`,
 * so hosts that route alike share one server block.
 */
export function viewOf(
  table: RoutingTable,
  options: RenderOptions,
  views: ViewCache,
  groupsHosts: boolean,
): RenderView {
  const hash = serverNamesHash(table.servers);
  const context: ServerContext = {
    plainListen: integer(options.port),
    sslListen: `${integer(options.sslPort)} ssl`,
    // nginx's name for a request header: lower case, `-` as `_` (the allow-list leaves nothing else).
    apiKeyVariable: `http_${options.apiKeyHeader.toLowerCase().replace(/[^a-z0-9]/g, '_')}`,
    defaultLocation:
      options.defaultLocationReturn.kind === 'status'
        ? { status: integer(options.defaultLocationReturn.code), url: null }
        : { status: null, url: quoteNginx(options.defaultLocationReturn.url) },
  };
  const servers = table.servers.map((each) => {
    let view = views.servers.get(each);
    if (!view) {
      view = serverView(each, context);
      views.servers.set(each, view);
    }
    return view;
  });
  return {
    version: VERSION_PLACEHOLDER,
    paths: options.prefixRelativePaths ? PREFIX_PATHS : SYSTEM_PATHS,
    serverNamesHash: { maxSize: integer(hash.maxSize), bucketSize: integer(hash.bucketSize) },
    maxClientBodySize: nginxToken(options.maxClientBodySize),
    workerShutdownTimeout: nginxToken(options.workerShutdownTimeout),
    port: integer(options.port),
    sslPort: integer(options.sslPort),
    statusPath: quoteNginx(options.statusPath),
    defaultSsl: options.ssl ? tlsView({ ...options.ssl }) : null,
    upstreams: table.upstreams.map((upstream) => {
      let view = views.upstreams.get(upstream);
      if (!view) {
        view = upstreamView(upstream, options.healthChecks);
        views.upstreams.set(upstream, view);
      }
      return view;
    }),
    servers: groupsHosts ? groupServers(servers, views.groups) : servers,
  };
}

export function createViewCache(): ViewCache {
  return { upstreams: new WeakMap(), servers: new WeakMap(), groups: createServerGroupCache() };
}

/** Relative to nginx's -p prefix, so that an unprivileged nginx owns them. */
const PREFIX_PATHS: RenderView['paths'] = {
  pid: '"nginx.pid"',
  clientBodyTemp: '"temp/client_body"',
  proxyTemp: '"temp/proxy"',
  fastcgiTemp: '"temp/fastcgi"',
  uwsgiTemp: '"temp/uwsgi"',
  scgiTemp: '"temp/scgi"',
};

/** Debian's defaults. */
const SYSTEM_PATHS: RenderView['paths'] = {
  pid: '"/run/nginx.pid"',
  clientBodyTemp: '"/var/lib/nginx/body"',
  proxyTemp: '"/var/lib/nginx/proxy"',
  fastcgiTemp: '"/var/lib/nginx/fastcgi"',
  uwsgiTemp: '"/var/lib/nginx/uwsgi"',
  scgiTemp: '"/var/lib/nginx/scgi"',
};

function upstreamView(upstream: Upstream, mode: HealthCheckMode): UpstreamView {
  const check = upstream.healthCheck;
  const passive = check && mode === 'passive' ? passiveParameters(check) : '';
  return {
    name: nginxToken(upstream.name),
    servers: upstream.servers.map((server) => ({
      address: nginxToken(server.address),
      parameters: server.weight === undefined ? passive : ` weight=${integer(server.weight)}${passive}`,
    })),
    check: check && mode === 'active' ? activeCheck(check) : null,
  };
}

/** Passive checks: a server is out for the probe's failure window after `fall` failures. */
function passiveParameters(check: HealthCheck): string {
  const failTimeoutSeconds = Math.ceil((check.intervalMs * check.fall) / 1000);
  return ` max_fails=${integer(check.fall)} fail_timeout=${integer(failTimeoutSeconds)}s`;
}

function activeCheck(check: HealthCheck): UpstreamView['check'] {
  return {
    type: check.type === 'tcp' ? 'tcp' : 'http',
    intervalMs: integer(check.intervalMs),
    timeoutMs: integer(check.timeoutMs),
    rise: integer(check.rise),
    fall: integer(check.fall),
    port: integer(check.port),
    httpSend:
      check.type === 'tcp' ? null : `"${escapeNginxString(`GET ${check.path ?? '/'} HTTP/1.0`)}\\r\\n\\r\\n"`,
  };
}

/** What every server view shares, computed once per render. */
interface ServerContext {
  plainListen: string;
  sslListen: string;
  apiKeyVariable: string;
  defaultLocation: DefaultLocationView;
}

function serverView(server: Server, context: ServerContext): ServerView {
  const host = quoteNginx(server.host);
  return {
    host,
    serverNames: host,
    listen: server.tls ? context.sslListen : context.plainListen,
    tls: server.tls ? tlsView(server.tls) : null,
    locations: server.locations.map((location) => ({
      path: quoteNginx(location.path),
      proxyPass: quoteNginx(`http://${nginxToken(location.upstream)}${location.targetPath ?? ''}`),
      apiKey: location.apiKey === undefined ? null : quoteNginx(location.apiKey),
      apiKeyVariable: context.apiKeyVariable,
      deny: location.deny === true,
    })),
    defaultLocation: server.defaultLocation ? context.defaultLocation : null,
  };
}

function tlsView(tls: ServerTls): TlsView {
  return {
    certificate: quoteNginx(tls.certificate),
    certificateKey: quoteNginx(tls.certificateKey),
    clientCertificate: tls.clientCertificate === undefined ? null : quoteNginx(tls.clientCertificate),
  };
}

// ------------------------------------------------------------------ server_names hash sizing

const POINTER_SIZE = 8;
const MIN_BUCKET_SIZE = 64;
const MIN_MAX_SIZE = 512;
/** Elements of the longest name one bucket must hold: keeps nginx's search short and warning-free. */
const NAMES_PER_BUCKET = 8;

/**
 * nginx stores each name in a bucket as a pointer plus the name and 2 bytes, aligned to a pointer;
 * each bucket ends with a null pointer. A bucket that holds NAMES_PER_BUCKET of the longest name and
 * a table size of twice the name count let nginx find a fitting size without the "could not build
 * optimal server_names_hash" warning (checked with `nginx -t` on 5,000 hosts in the render tests).
 */
function serverNamesHash(servers: Server[]): { maxSize: number; bucketSize: number } {
  let longest = 0;
  for (const server of servers) if (server.host.length > longest) longest = server.host.length;
  const element = POINTER_SIZE + Math.ceil((longest + 2) / POINTER_SIZE) * POINTER_SIZE;
  const bucketSize = Math.max(MIN_BUCKET_SIZE, nextPowerOfTwo(POINTER_SIZE + NAMES_PER_BUCKET * element));
  const maxSize = Math.max(MIN_MAX_SIZE, 2 * servers.length);
  return { maxSize, bucketSize };
}

function nextPowerOfTwo(n: number): number {
  let power = 1;
  while (power < n) power *= 2;
  return power;
}
