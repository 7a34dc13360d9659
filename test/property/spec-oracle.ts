// What SPEC sections 2, 3 and 5 say a cluster must route, computed straight from the text of the
// spec and independently of src/: its own allow-list predicates, its own reading of annotations and
// secrets, its own ownership rules. The hostile-input properties compare the rendered nginx.conf
// with this, and the diagnostics with the entries it finds invalid.
import { isIP } from 'node:net';
import {
  type ClusterEnv,
  HOSTS_FIELD,
  PATHS_FIELD,
  PORT,
  ROUTABLE_LABEL,
  SSL_PORT,
  type TlsFixture,
} from './harness.js';

// ------------------------------------------------------------------ SPEC section 5 allow-lists

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

/** RFC 1123 host name (ASCII, lower-cased; an all-numeric top label is never a name) or IPv4 literal. */
export function specHost(value: unknown): string | null {
  if (typeof value !== 'string' || !/^[\x21-\x7e]+$/.test(value)) return null;
  const host = value.toLowerCase();
  if (IPV4.test(host)) return host;
  if (host.length > 253) return null;
  const labels = host.split('.');
  if (!labels.every((l) => l.length <= 63 && DNS_LABEL.test(l))) return null;
  return /^[0-9]+$/.test(labels[labels.length - 1] as string) ? null : host;
}

const PATH = /^(?:[A-Za-z0-9\-._~!*+,=:@&()/]|%[0-9A-Fa-f]{2})*$/;

/** basePath / targetPath: `/`-rooted, allowed characters, no `//`, no `.`/`..` segment (also as %2e), ≤ 1024. */
export function specPath(value: unknown): string | null {
  if (typeof value !== 'string' || !value.startsWith('/') || value.length > 1024 || !PATH.test(value))
    return null;
  if (value.includes('//')) return null;
  const dotted = value.split('/').some((s) => ['.', '..'].includes(s.replace(/%2e/gi, '.')));
  return dotted ? null : value;
}

export function specPort(value: unknown): number | null {
  if (typeof value === 'number')
    return Number.isInteger(value) && value >= 1 && value <= 65535 ? value : null;
  if (typeof value === 'string' && /^[1-9][0-9]{0,4}$/.test(value) && Number(value) <= 65535)
    return Number(value);
  return null;
}

export function specWeight(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 1000 ? value : null;
}

/** Secret field names as Kubernetes itself allows them. */
export function specSecretFieldName(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 253 || value === '.' || value === '..') return null;
  return /^[-._a-zA-Z0-9]+$/.test(value) ? value : null;
}

export function specDnsLabel(value: unknown): string | null {
  return typeof value === 'string' && value.length <= 63 && DNS_LABEL.test(value) ? value : null;
}

export function specDnsSubdomain(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 253) return null;
  return value.split('.').every((l) => DNS_LABEL.test(l)) ? value : null;
}

/** A pod IP as nginx gets it: IPv4 as is, IPv6 lower-cased in brackets; zone ids refused. */
export function specIp(value: unknown): string | null {
  if (typeof value !== 'string' || value.includes('%')) return null;
  const version = isIP(value);
  return version === 4 ? value : version === 6 ? `[${value.toLowerCase()}]` : null;
}

/** A `data` value of a secret: canonical padded base64. */
export function specBase64(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) return null;
  return Buffer.from(value, 'base64').toString('base64') === value ? value : null;
}

// ------------------------------------------------------------------ the generated cluster

/** An annotation as generated: absent, a value that is not a string, or a string. */
export type Annotation =
  | { kind: 'absent' }
  | { kind: 'value'; value: unknown }
  | { kind: 'text'; text: string };

export interface GenNamespace {
  name: unknown;
  creationTimestamp: string | undefined;
  labels: Record<string, unknown>;
  hosts: Annotation;
}

export interface GenPod {
  namespace: unknown;
  name: unknown;
  ip: unknown;
  labels: Record<string, unknown>;
  containers: unknown;
  paths: Annotation;
}

export interface GenSecret {
  namespace: unknown;
  name: unknown;
  data: unknown;
}

export interface GenCluster {
  env: ClusterEnv;
  namespaces: GenNamespace[];
  pods: GenPod[];
  secrets: GenSecret[];
}

// ------------------------------------------------------------------ what must come out

export interface ExpectedLocation {
  path: string;
  namespace: string;
  /** Arguments of each upstream `server` line: `[address]` or `[address, "weight=N"]`, by pod name. */
  servers: string[][];
  /** What follows the upstream name in proxy_pass: the targetPath or ''. */
  targetPath: string;
  /** Base64 API key the location demands, or null. */
  apiKey: string | null;
  /** The owning namespace's api-key is there but unusable: the location answers 403 to everyone. */
  deny: boolean;
}

export interface ExpectedServer {
  host: string;
  listen: string[];
  tls: boolean;
  clientCertificate: boolean;
  locations: ExpectedLocation[];
  defaultLocation: boolean;
}

/** A diagnostic that must exist: at least `atLeast` of them match both predicates. */
export interface ExpectedDiagnostic {
  what: string;
  object: (object: string) => boolean;
  field: (field: string) => boolean;
  atLeast: number;
}

export interface Expectation {
  servers: ExpectedServer[];
  /** Distinct (namespace, basePath) pairs that have a location. */
  upstreams: number;
  diagnostics: ExpectedDiagnostic[];
}

const is = (text: string) => (value: string) => value === text;
const startsWith = (text: string) => (value: string) => value.startsWith(text);
/** `field[3]` itself or anything under it (`field[3].basePath`), not `field[30]`. */
const under = (text: string) => (value: string) =>
  value === text || value.startsWith(`${text}.`) || value.startsWith(`${text}[`);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const MAX_ANNOTATION_BYTES = 64 * 1024;
const MAX_HOSTS = 1000;
const MAX_PATH_ENTRIES = 100;

interface SslRefs {
  certificate: string;
  certificateKey: string;
  clientCertificate?: string;
}

interface OracleNamespace {
  name: string;
  createdAt: string;
  /** Host → its SSL references (null: plain HTTP). */
  hosts: Map<string, SslRefs | null>;
}

interface OracleRoute {
  basePath: string;
  port: number;
  targetPath?: string;
  weight?: number;
}

interface OraclePod {
  namespace: string;
  name: string;
  ip: string;
  routes: OracleRoute[];
}

type Reporter = (d: Omit<ExpectedDiagnostic, 'atLeast'> & { atLeast?: number }) => void;

/** Text of an annotation the model may read: null when it must be ignored whole (reported). */
function annotationText(
  annotation: Annotation,
  field: string,
  report: Reporter,
  object: (o: string) => boolean,
) {
  if (annotation.kind === 'absent') return null;
  if (annotation.kind === 'value') {
    if (annotation.value === null || annotation.value === undefined) return null;
    report({ what: `${field} not a string`, object, field: is(field) });
    return null;
  }
  if (Buffer.byteLength(annotation.text, 'utf8') > MAX_ANNOTATION_BYTES) {
    report({ what: `${field} larger than 64 KiB`, object, field: is(field) });
    return null;
  }
  return annotation.text;
}

function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** `{"valueFrom": {"secretKeyRef": {"key": NAME}}}` exactly. */
function secretRef(value: unknown): string | null {
  const only = (v: unknown, key: string): unknown =>
    isPlainObject(v) && Object.keys(v).length === 1 && Object.hasOwn(v, key) ? v[key] : undefined;
  return specSecretFieldName(only(only(only(value, 'valueFrom'), 'secretKeyRef'), 'key'));
}

/** Host options: `{}` or `{"ssl": {...}}`; anything else (unknown keys included) refuses the host. */
function hostOptions(value: unknown): { ok: true; ssl: SslRefs | null } | { ok: false } {
  if (!isPlainObject(value) || Object.keys(value).some((k) => k !== 'ssl')) return { ok: false };
  if (!Object.hasOwn(value, 'ssl')) return { ok: true, ssl: null };
  const ssl = value.ssl;
  const known = ['certificate', 'certificateKey', 'clientCertificate'];
  if (!isPlainObject(ssl) || Object.keys(ssl).some((k) => !known.includes(k))) return { ok: false };
  if (!Object.hasOwn(ssl, 'certificate') || !Object.hasOwn(ssl, 'certificateKey')) return { ok: false };
  const certificate = secretRef(ssl.certificate);
  const certificateKey = secretRef(ssl.certificateKey);
  if (certificate === null || certificateKey === null) return { ok: false };
  if (!Object.hasOwn(ssl, 'clientCertificate')) return { ok: true, ssl: { certificate, certificateKey } };
  const clientCertificate = secretRef(ssl.clientCertificate);
  return clientCertificate === null
    ? { ok: false }
    : { ok: true, ssl: { certificate, certificateKey, clientCertificate } };
}

/** SPEC 2, hosts annotation: a JSON object of host → options, or the legacy space-separated list. */
function readHosts(annotation: Annotation, namespace: string, report: Reporter): Map<string, SslRefs | null> {
  const object = is(`Namespace ${namespace}`);
  const hosts = new Map<string, SslRefs | null>();
  const text = annotationText(annotation, HOSTS_FIELD, report, object);
  if (text === null) return hosts;
  const json = tryJson(text);
  if (json.ok) {
    if (!isPlainObject(json.value)) {
      report({ what: 'hosts annotation not a JSON object', object, field: is(HOSTS_FIELD) });
      return hosts;
    }
    const keys = Object.keys(json.value);
    if (keys.length > MAX_HOSTS) {
      report({ what: 'more than 1000 hosts', object, field: is(HOSTS_FIELD) });
      return hosts;
    }
    const refused = new Set<string>();
    let rejected = 0;
    for (const key of keys) {
      const host = specHost(key);
      const options = hostOptions(json.value[key]);
      if (host === null || !options.ok) {
        rejected++;
        if (host !== null) refused.add(host);
        continue;
      }
      // Spellings of one host that differ in case: the one with SSL wins.
      if (!hosts.has(host) || (hosts.get(host) === null && options.ssl)) hosts.set(host, options.ssl);
    }
    // A host one of whose spellings has invalid options is refused whole.
    for (const host of refused) hosts.delete(host);
    if (rejected > 0) {
      report({
        what: `${rejected} invalid host entries`,
        object,
        field: startsWith(`${HOSTS_FIELD}[`),
        atLeast: rejected,
      });
    }
    return hosts;
  }
  // Text that opens like JSON but does not parse is broken JSON, not a list of names.
  if (/^\s*[{["]/.test(text)) {
    report({ what: 'hosts annotation is broken JSON', object, field: is(HOSTS_FIELD) });
    return hosts;
  }
  const names = text.split(/[ \t\r\n\f\v]+/).filter((n) => n.length > 0);
  if (names.length > MAX_HOSTS) {
    report({ what: 'more than 1000 legacy hosts', object, field: is(HOSTS_FIELD) });
    return hosts;
  }
  let rejected = 0;
  for (const name of names) {
    const host = specHost(name);
    if (host === null) rejected++;
    else hosts.set(host, null);
  }
  if (rejected > 0)
    report({ what: `${rejected} invalid legacy hosts`, object, field: is(HOSTS_FIELD), atLeast: rejected });
  return hosts;
}

interface DeclaredPort {
  number: number;
  name?: string;
}

function declaredPorts(containers: unknown): DeclaredPort[] {
  if (!Array.isArray(containers)) return [];
  return containers.flatMap((container: unknown) => {
    if (!isPlainObject(container) || !Array.isArray(container.ports)) return [];
    return container.ports.flatMap((port: unknown): DeclaredPort[] => {
      if (!isPlainObject(port)) return [];
      const number = specPort(port.containerPort);
      if (number === null) return [];
      return [{ number, ...(typeof port.name === 'string' && { name: port.name }) }];
    });
  });
}

/** SPEC 2: a declared port, as a number, its decimal string, or the name a container gives it. */
function resolvePort(value: unknown, declared: DeclaredPort[]): number | null {
  if (typeof value === 'number' || (typeof value === 'string' && /^[0-9]+$/.test(value))) {
    const port = specPort(value);
    return port !== null && declared.some((d) => d.number === port) ? port : null;
  }
  if (typeof value !== 'string') return null;
  return declared.find((d) => d.name === value)?.number ?? null;
}

const ENTRY_KEYS = ['basePath', 'containerPort', 'targetPath', 'weight'];

function readEntry(entry: unknown, declared: DeclaredPort[]): OracleRoute | null {
  if (!isPlainObject(entry) || Object.keys(entry).some((k) => !ENTRY_KEYS.includes(k))) return null;
  const basePath = specPath(entry.basePath);
  const port = resolvePort(entry.containerPort, declared);
  const targetPath = Object.hasOwn(entry, 'targetPath') ? specPath(entry.targetPath) : undefined;
  const weight = Object.hasOwn(entry, 'weight') ? specWeight(entry.weight) : undefined;
  if (basePath === null || port === null || targetPath === null || weight === null) return null;
  return {
    basePath,
    port,
    ...(targetPath !== undefined && { targetPath }),
    ...(weight !== undefined && { weight }),
  };
}

function readRoutes(pod: GenPod, object: string, report: Reporter): OracleRoute[] {
  const matchObject = is(object);
  const text = annotationText(pod.paths, PATHS_FIELD, report, matchObject);
  if (text === null) return [];
  const json = tryJson(text);
  if (!json.ok || !Array.isArray(json.value) || json.value.length > MAX_PATH_ENTRIES) {
    report({
      what: 'paths annotation not a JSON array of at most 100 entries',
      object: matchObject,
      field: is(PATHS_FIELD),
    });
    return [];
  }
  const declared = declaredPorts(pod.containers);
  const routes: OracleRoute[] = [];
  json.value.forEach((entry: unknown, index: number) => {
    const route = readEntry(entry, declared);
    const field = `${PATHS_FIELD}[${index}]`;
    if (route === null) {
      report({ what: `invalid paths entry ${index}`, object: matchObject, field: under(field) });
    } else if (routes.some((r) => r.basePath === route.basePath)) {
      report({ what: `duplicate basePath in entry ${index}`, object: matchObject, field: under(field) });
    } else {
      routes.push(route);
    }
  });
  return routes;
}

function timestamp(value: string | undefined, name: string, report: Reporter): string {
  if (value === undefined || value === '') return '';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    report({
      what: 'invalid creationTimestamp',
      object: is(`Namespace ${name}`),
      field: is('metadata.creationTimestamp'),
    });
    return '';
  }
  return date.toISOString();
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Everything SPEC 3 says `cluster` must route, and every diagnostic its invalid parts call for. */
export function expectRouting(cluster: GenCluster, fixture: TlsFixture | undefined): Expectation {
  const diagnostics: ExpectedDiagnostic[] = [];
  const report: Reporter = (d) => diagnostics.push({ atLeast: 1, ...d });

  // Namespaces.
  const namespaces: OracleNamespace[] = [];
  for (const ns of cluster.namespaces) {
    if (ns.labels[ROUTABLE_LABEL] !== 'true') continue;
    const name = specDnsLabel(ns.name);
    if (name === null) {
      report({
        what: 'invalid namespace name',
        object: startsWith('Namespace '),
        field: is('metadata.name'),
      });
      continue;
    }
    namespaces.push({
      name,
      createdAt: timestamp(ns.creationTimestamp, name, report),
      hosts: readHosts(ns.hosts, name, report),
    });
  }
  namespaces.sort((a, b) => compare(a.createdAt, b.createdAt) || compare(a.name, b.name));
  const routable = new Set(namespaces.map((ns) => ns.name));

  // Routing secrets: valid fields of the secret named `routing` in each namespace.
  const secrets = new Map<string, Map<string, string>>();
  const deniedNamespaces = new Set<string>();
  for (const secret of cluster.secrets) {
    if (secret.name !== 'routing') continue;
    const namespace = specDnsLabel(secret.namespace);
    if (namespace === null) {
      report({
        what: 'secret in an invalid namespace',
        object: startsWith('Secret '),
        field: is('metadata.namespace'),
      });
      continue;
    }
    const object = is(`Secret ${namespace}/routing`);
    const fields = new Map<string, string>();
    secrets.set(namespace, fields);
    if (secret.data === undefined || secret.data === null) continue;
    if (!isPlainObject(secret.data)) {
      report({ what: 'secret data not an object', object, field: is('data') });
      continue;
    }
    let rejected = 0;
    for (const [key, value] of Object.entries(secret.data)) {
      const valid = specSecretFieldName(key) !== null && specBase64(value) !== null;
      // SPEC 5: no input may make nginx -t fail, and nginx refuses arguments over 4096 bytes:
      // an API key over 1 KiB is refused, and its namespace fails closed.
      if (key === 'api-key' && (!valid || Buffer.byteLength(value as string, 'base64') > 1024)) {
        deniedNamespaces.add(namespace);
        rejected++;
      } else if (valid) fields.set(key, value as string);
      else rejected++;
    }
    if (rejected > 0)
      report({
        what: `${rejected} invalid secret fields`,
        object,
        field: startsWith('data['),
        atLeast: rejected,
      });
  }
  const isDenied = (namespace: string): boolean => deniedNamespaces.has(namespace);
  const apiKeyOf = (namespace: string): string | null => {
    const key = secrets.get(namespace)?.get('api-key');
    return key === undefined || key === '' ? null : key;
  };

  // Pods.
  const pods: OraclePod[] = [];
  for (const pod of cluster.pods) {
    if (pod.labels[ROUTABLE_LABEL] !== 'true') continue;
    const namespace = specDnsLabel(pod.namespace);
    const name = namespace === null ? null : specDnsSubdomain(pod.name);
    const ip = name === null ? null : specIp(pod.ip);
    if (namespace === null || name === null || ip === null) {
      const field =
        namespace === null ? 'metadata.namespace' : name === null ? 'metadata.name' : 'status.podIP';
      report({ what: `pod not routed (${field})`, object: startsWith('Pod '), field: is(field) });
      continue;
    }
    const routes = readRoutes(pod, `Pod ${namespace}/${name}`, report);
    if (routable.has(namespace)) pods.push({ namespace, name, ip, routes });
  }
  pods.sort((a, b) => compare(a.name, b.name));

  // (namespace, basePath) → pods serving it, by pod name.
  const groups = new Map<string, Map<string, { pod: OraclePod; route: OracleRoute }[]>>();
  for (const pod of pods) {
    const paths = groups.get(pod.namespace) ?? new Map();
    groups.set(pod.namespace, paths);
    for (const route of pod.routes)
      paths.set(route.basePath, [...(paths.get(route.basePath) ?? []), { pod, route }]);
  }

  // Which namespaces claim each host, oldest first; SSL hosts only when their TLS material resolves.
  const claims = new Map<string, { namespace: string; ssl: SslRefs | null }[]>();
  for (const ns of namespaces) {
    for (const [host, ssl] of ns.hosts) {
      if (ssl && !tlsResolves(ssl, secrets.get(ns.name), cluster.env.sslEnabled, fixture)) {
        report({
          what: `ssl host ${host} left out`,
          object: is(`Namespace ${ns.name}`),
          field: (f) => f.includes(host),
        });
        continue;
      }
      const existing = claims.get(host);
      if (!existing) claims.set(host, [{ namespace: ns.name, ssl }]);
      else if (cluster.env.hostSharing === 'shared') existing.push({ namespace: ns.name, ssl: null });
      else
        report({
          what: `host ${host} of an older namespace`,
          object: is(`Namespace ${ns.name}`),
          field: (f) => f.includes(host),
        });
    }
  }

  const servers: ExpectedServer[] = [];
  const upstreams = new Set<string>();
  for (const [host, hostClaims] of [...claims].sort(([a], [b]) => compare(a, b))) {
    const owner = hostClaims[0];
    if (!owner) continue;
    const locations = new Map<string, ExpectedLocation>();
    for (const claim of hostClaims) {
      for (const [basePath, members] of [...(groups.get(claim.namespace) ?? [])].sort(([a], [b]) =>
        compare(a, b),
      )) {
        if (locations.has(basePath)) {
          report({
            what: `conflict on ${host}${basePath}`,
            object: is(`Namespace ${claim.namespace}`),
            field: (f) => f.includes(host) && f.includes(basePath),
          });
          continue;
        }
        upstreams.add(`${claim.namespace}\u0000${basePath}`);
        locations.set(basePath, {
          path: basePath,
          namespace: claim.namespace,
          servers: members.map(({ pod, route }) => [
            `${pod.ip}:${route.port}`,
            ...(route.weight === undefined ? [] : [`weight=${route.weight}`]),
          ]),
          targetPath: members[0]?.route.targetPath ?? '',
          apiKey: apiKeyOf(claim.namespace),
          deny: isDenied(claim.namespace),
        });
      }
    }
    servers.push({
      host,
      listen: owner.ssl ? [String(SSL_PORT), 'ssl'] : [String(PORT)],
      tls: owner.ssl !== null,
      clientCertificate: owner.ssl?.clientCertificate !== undefined,
      locations: [...locations.values()].sort((a, b) => compare(a.path, b.path)),
      defaultLocation: !locations.has('/'),
    });
  }
  return { servers, upstreams: upstreams.size, diagnostics };
}

/** SPEC 3 SSL: enabled, the namespace's secret has every referenced field, and they hold a matching pair. */
function tlsResolves(
  ssl: SslRefs,
  fields: Map<string, string> | undefined,
  sslEnabled: boolean,
  fixture: TlsFixture | undefined,
): boolean {
  if (!sslEnabled || !fields || !fixture) return false;
  if (fields.get(ssl.certificate) !== fixture.certB64 || fields.get(ssl.certificateKey) !== fixture.keyB64)
    return false;
  return ssl.clientCertificate === undefined || fields.get(ssl.clientCertificate) === fixture.certB64;
}
