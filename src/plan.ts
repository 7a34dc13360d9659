// The plan: a pure function from the store's objects to the routing table of SPEC section 3.
// Deterministic: every collection is sorted before it is walked, so neither event order nor map
// order can change the output. An optional PlanCache makes the next plan cheap when few namespaces
// changed: it remembers, by object identity, what each namespace's pods made, and hands back the
// previous Server, Location and Upstream objects when they would be equal (the render cache then
// recognises them by reference). The table is the same with or without it.
import * as crypto from 'node:crypto';
import { checkTlsMaterial } from './model/tls.js';
import { describeObject } from './model/validate.js';
import type { StoreSnapshot } from './store.js';
import type {
  Config,
  Diagnostic,
  Location,
  NamespaceInfo,
  PodInfo,
  PodRoute,
  RoutingTable,
  SecretInfo,
  Server,
  ServerTls,
  SslRefs,
  TlsFile,
  Upstream,
} from './types.js';

export interface PlanOptions {
  sslEnabled: boolean;
  sslCertDir: string;
  hostSharing: Config['hostSharing'];
}

export function planOptionsFrom(config: Config): PlanOptions {
  return {
    sslEnabled: config.sslCert !== undefined && config.sslKey !== undefined,
    sslCertDir: config.sslCertDir,
    hostSharing: config.hostSharing,
  };
}

/** A host as one namespace lists it, after SSL resolution. */
interface HostClaim {
  host: string;
  namespace: string;
  tls?: ServerTls;
  ssl?: SslRefs;
}

/** Pods of one namespace serving one basePath, sorted by pod name. */
interface PathGroup {
  namespace: string;
  basePath: string;
  members: { pod: PodInfo; route: PodRoute }[];
  /** Made by the first location of the group, shared by the others and by later plans. */
  shared?: { upstream: Upstream; pods: string[] };
  /** The group's location for the last API-key state it was asked with (equal on every host). */
  location?: Location;
}

/** What one namespace's pods made: reused while the namespace holds the very same pod objects. */
interface NamespaceGroups {
  pods: readonly PodInfo[];
  groups: PathGroup[];
  diagnostics: Diagnostic[];
}

/** What one namespace listing a host brings to it. */
interface HostInput {
  namespace: string;
  groups: PathGroup[] | undefined;
  secret: SecretInfo | undefined;
}

/** A host's server and what it asks of the rest of the table; reused while its inputs are the same objects. */
interface HostServer {
  tls: ServerTls | undefined;
  inputs: HostInput[];
  server: Server;
  upstreams: Upstream[];
  /** Conflicts found on this host. */
  diagnostics: Diagnostic[];
}

type TlsResolution = { ok: true; tls: ServerTls } | { ok: false; reason: string };

/**
 * What a plan remembers for the next one. Only speed depends on it: entries are found by the identity
 * of the store's objects (the store keeps an unchanged object's identity) and dropped when their
 * object is gone.
 */
export interface PlanCache {
  options?: PlanOptions;
  groups: Map<string, NamespaceGroups>;
  tls: WeakMap<NamespaceInfo, { secret: SecretInfo | undefined; byHost: Map<string, TlsResolution> }>;
  hosts: Map<string, HostServer>;
}

export function createPlanCache(): PlanCache {
  return { groups: new Map(), tls: new WeakMap(), hosts: new Map() };
}

export function plan(
  snapshot: StoreSnapshot,
  options: PlanOptions,
  cache: PlanCache = createPlanCache(),
): RoutingTable {
  if (!cache.options || !samePlanOptions(cache.options, options)) {
    Object.assign(cache, createPlanCache(), { options: { ...options } });
  }
  const diagnostics: Diagnostic[] = [...snapshot.diagnostics];
  const namespaces = [...snapshot.namespaces].sort(byAge);
  const routable = new Set(namespaces.map((ns) => ns.name));
  const secrets = new Map(snapshot.secrets.map((s) => [s.namespace, s]));

  const { groups, routablePods } = groupPaths(snapshot.pods, routable, diagnostics, cache);
  const claims = claimHosts(namespaces, secrets, options, diagnostics, cache);

  const upstreams = new Map<string, Upstream>();
  const servers: Server[] = [];
  const tlsFiles: TlsFile[] = [];

  const hosts = new Map<string, HostServer>();
  for (const [host, hostClaims] of [...claims].sort(([a], [b]) => compare(a, b))) {
    const owner = hostClaims[0];
    if (!owner) continue;
    const inputs = hostClaims.map(
      (claim): HostInput => ({
        namespace: claim.namespace,
        groups: groups.get(claim.namespace),
        secret: secrets.get(claim.namespace),
      }),
    );
    const previous = cache.hosts.get(host);
    const made =
      previous && sameHostInputs(previous, owner.tls, inputs)
        ? previous
        : serverFor(host, owner.tls, inputs, previous?.server);
    hosts.set(host, made);
    servers.push(made.server);
    for (const upstream of made.upstreams) upstreams.set(upstream.name, upstream);
    if (made.diagnostics.length > 0) diagnostics.push(...made.diagnostics);
    if (owner.tls && owner.ssl)
      tlsFiles.push(...tlsFilesFor(owner.tls, owner.ssl, secrets.get(owner.namespace)));
  }
  cache.hosts = hosts;

  return {
    servers,
    upstreams: [...upstreams.values()].sort((a, b) => compare(a.name, b.name)),
    tlsFiles,
    diagnostics: diagnostics.sort(compareDiagnostics),
    stats: {
      namespaces: namespaces.length,
      pods: routablePods,
    },
  };
}

/**
 * Groups every route of every pod by (namespace, basePath); pods of non-routable namespaces are
 * reported. A namespace holding the same pod objects as at the last plan gets its previous groups.
 */
function groupPaths(
  pods: readonly PodInfo[],
  routable: ReadonlySet<string>,
  diagnostics: Diagnostic[],
  cache: PlanCache,
): { groups: Map<string, PathGroup[]>; routablePods: number } {
  const podsByNamespace = new Map<string, PodInfo[]>();
  let routablePods = 0;
  for (const pod of pods) {
    if (!routable.has(pod.namespace)) {
      diagnostics.push({
        severity: 'info',
        object: describeObject('Pod', pod.namespace, pod.name),
        field: 'metadata.namespace',
        reason: 'namespace is not routable; pod not routed',
      });
      continue;
    }
    routablePods += 1;
    const list = podsByNamespace.get(pod.namespace);
    if (list) list.push(pod);
    else podsByNamespace.set(pod.namespace, [pod]);
  }
  const result = new Map<string, PathGroup[]>();
  const remembered = new Map<string, NamespaceGroups>();
  for (const [namespace, list] of podsByNamespace) {
    const previous = cache.groups.get(namespace);
    const made = previous && sameItems(previous.pods, list) ? previous : groupNamespace(namespace, list);
    remembered.set(namespace, made);
    diagnostics.push(...made.diagnostics);
    result.set(namespace, made.groups);
  }
  cache.groups = remembered;
  return { groups: result, routablePods };
}

function groupNamespace(namespace: string, pods: PodInfo[]): NamespaceGroups {
  const diagnostics: Diagnostic[] = [];
  const paths = new Map<string, PathGroup>();
  for (const pod of [...pods].sort((a, b) => compare(a.name, b.name))) {
    for (const route of pod.routes) {
      let group = paths.get(route.basePath);
      if (!group) {
        group = { namespace, basePath: route.basePath, members: [] };
        paths.set(route.basePath, group);
      }
      const first = group.members[0];
      if (first && first.route.targetPath !== route.targetPath) {
        diagnostics.push({
          severity: 'warning',
          object: describeObject('Pod', pod.namespace, pod.name),
          field: `paths basePath ${route.basePath} targetPath`,
          reason: `targetPath disagrees with pod ${first.pod.name}, whose targetPath applies`,
        });
      }
      group.members.push({ pod, route });
    }
  }
  const groups = [...paths.values()].sort((a, b) => compare(a.basePath, b.basePath));
  return { pods, groups, diagnostics };
}

/**
 * Which namespaces list each host, oldest first, after SSL resolution. In exclusive mode only the
 * oldest keeps the host. Host-level options (TLS) come from the oldest.
 */
function claimHosts(
  namespaces: NamespaceInfo[],
  secrets: ReadonlyMap<string, SecretInfo>,
  options: PlanOptions,
  diagnostics: Diagnostic[],
  cache: PlanCache,
): Map<string, HostClaim[]> {
  const claims = new Map<string, HostClaim[]>();
  for (const ns of namespaces) {
    const secret = secrets.get(ns.name);
    let resolved = cache.tls.get(ns);
    if (!resolved || resolved.secret !== secret) {
      resolved = { secret, byHost: new Map() };
      cache.tls.set(ns, resolved);
    }
    for (const spec of ns.hosts) {
      const object = describeObject('Namespace', '', ns.name);
      const field = `hosts ${spec.name}`;
      let tls: ServerTls | undefined;
      if (spec.ssl) {
        let resolution = resolved.byHost.get(spec.name);
        if (!resolution) {
          resolution = resolveTls(spec.name, spec.ssl, secret, options);
          resolved.byHost.set(spec.name, resolution);
        }
        if (!resolution.ok) {
          diagnostics.push({
            severity: 'warning',
            object,
            field: `${field} ssl`,
            reason: `${resolution.reason}; host left out`,
          });
          continue;
        }
        tls = resolution.tls;
      }
      const existing = claims.get(spec.name);
      if (!existing) {
        claims.set(spec.name, [{ host: spec.name, namespace: ns.name, ...(tls && { tls, ssl: spec.ssl }) }]);
        continue;
      }
      const owner = existing[0];
      if (options.hostSharing === 'exclusive') {
        diagnostics.push({
          severity: 'warning',
          object,
          field,
          reason: `conflict: host belongs to older namespace ${owner?.namespace} (HOST_SHARING=exclusive); left out`,
        });
        continue;
      }
      if (Boolean(owner?.tls) !== Boolean(tls)) {
        diagnostics.push({
          severity: 'warning',
          object,
          field: `${field} ssl`,
          reason: `host options of older namespace ${owner?.namespace} apply`,
        });
      }
      existing.push({ host: spec.name, namespace: ns.name });
    }
  }
  return claims;
}

function resolveTls(
  host: string,
  ssl: SslRefs,
  secret: SecretInfo | undefined,
  options: PlanOptions,
): TlsResolution {
  if (!options.sslEnabled) return { ok: false, reason: 'SSL is disabled (SSL_CERT and SSL_KEY are not set)' };
  if (!secret) return { ok: false, reason: 'the namespace has no routing secret' };
  const missing = [ssl.certificate, ssl.certificateKey, ssl.clientCertificate]
    .filter((f): f is string => f !== undefined)
    .filter((f) => !Object.hasOwn(secret.fields, f));
  if (missing.length > 0) return { ok: false, reason: `routing secret lacks field(s) ${missing.join(', ')}` };
  const material = checkTlsMaterial(
    secret.fields[ssl.certificate] ?? '',
    secret.fields[ssl.certificateKey] ?? '',
    ssl.clientCertificate === undefined ? undefined : secret.fields[ssl.clientCertificate],
  );
  if (!material.ok) return { ok: false, reason: material.reason };
  const dir = `${options.sslCertDir.replace(/\/+$/, '')}/${host}`;
  return {
    ok: true,
    tls: {
      certificate: `${dir}/certificate.crt`,
      certificateKey: `${dir}/certificate.key`,
      ...(ssl.clientCertificate !== undefined && { clientCertificate: `${dir}/clientCertificate.crt` }),
    },
  };
}

function tlsFilesFor(tls: ServerTls, ssl: SslRefs, secret: SecretInfo | undefined): TlsFile[] {
  const field = (name: string): string => secret?.fields[name] ?? '';
  const files: TlsFile[] = [
    { path: tls.certificate, mode: 0o644, contentBase64: field(ssl.certificate) },
    { path: tls.certificateKey, mode: 0o600, contentBase64: field(ssl.certificateKey) },
  ];
  if (tls.clientCertificate && ssl.clientCertificate) {
    files.push({ path: tls.clientCertificate, mode: 0o644, contentBase64: field(ssl.clientCertificate) });
  }
  return files;
}

/**
 * The location of a group on one host. Every host of the namespace gets the same Location object, and
 * so does the next plan while the group and the namespace's API-key state are unchanged (the table
 * is never mutated).
 */
function locationFor(group: PathGroup, secret: SecretInfo | undefined): Location {
  const { upstream, pods } = sharedOf(group);
  const apiKey = secret?.apiKey;
  const deny = secret?.apiKeyRejected === true;
  const previous = group.location;
  if (previous && previous.apiKey === apiKey && (previous.deny === true) === deny) return previous;
  const location: Location = {
    path: group.basePath,
    namespace: group.namespace,
    upstream: upstream.name,
    pods,
  };
  const targetPath = group.members[0]?.route.targetPath;
  if (targetPath !== undefined) location.targetPath = targetPath;
  if (apiKey !== undefined) location.apiKey = apiKey;
  if (deny) location.deny = true;
  group.location = location;
  return location;
}

/** The group's upstream and pod names, made once and shared by every host and later plans. */
function sharedOf(group: PathGroup): { upstream: Upstream; pods: string[] } {
  group.shared ??= { upstream: upstreamFor(group), pods: group.members.map((m) => m.pod.name) };
  return group.shared;
}

/**
 * The server of one host: the locations of every namespace listing it, oldest first; a basePath an
 * older namespace serves is left out and reported. The previous server is handed back when equal.
 */
function serverFor(
  host: string,
  tls: ServerTls | undefined,
  inputs: HostInput[],
  previous: Server | undefined,
): HostServer {
  const locations = new Map<string, Location>();
  const upstreams: Upstream[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const input of inputs) {
    for (const group of input.groups ?? []) {
      const taken = locations.get(group.basePath);
      if (taken) {
        diagnostics.push({
          severity: 'warning',
          object: describeObject('Namespace', '', input.namespace),
          field: `host ${host} path ${group.basePath}`,
          reason: `conflict: already served by older namespace ${taken.namespace}; left out`,
        });
        continue;
      }
      locations.set(group.basePath, locationFor(group, input.secret));
      upstreams.push(sharedOf(group).upstream);
    }
  }
  const server: Server = {
    host,
    namespaces: inputs.map((input) => input.namespace),
    ...(tls && { tls }),
    locations: [...locations.values()].sort((a, b) => compare(a.path, b.path)),
    defaultLocation: !locations.has('/'),
  };
  return {
    tls,
    inputs,
    server: previous && sameServer(previous, server) ? previous : server,
    upstreams,
    diagnostics,
  };
}

function sameHostInputs(previous: HostServer, tls: ServerTls | undefined, inputs: HostInput[]): boolean {
  if (!sameTls(previous.tls, tls) || previous.inputs.length !== inputs.length) return false;
  for (let i = 0; i < inputs.length; i++) {
    const a = previous.inputs[i] as HostInput;
    const b = inputs[i] as HostInput;
    if (a.namespace !== b.namespace || a.groups !== b.groups || a.secret !== b.secret) return false;
  }
  return true;
}

function upstreamFor(group: PathGroup): Upstream {
  const healthCheck = group.members[0]?.route.healthCheck;
  const upstream: Upstream = {
    name: upstreamName(group.namespace, group.basePath),
    namespace: group.namespace,
    basePath: group.basePath,
    // Conditional spreads cost as much as the rest of the line on large tables: plain literals.
    servers: group.members.map(({ pod, route }) =>
      route.weight === undefined
        ? { address: `${pod.ip}:${route.port}`, pod: pod.name }
        : { address: `${pod.ip}:${route.port}`, pod: pod.name, weight: route.weight },
    ),
  };
  if (healthCheck) upstream.healthCheck = healthCheck;
  return upstream;
}

/**
 * Readable and stable: namespace and basePath with every other character folded to `_`, plus a
 * short hash of the exact pair so that folding can never make two upstreams collide.
 */
export function upstreamName(namespace: string, basePath: string): string {
  const readablePath =
    basePath
      .replace(/[^A-Za-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 48) || 'root';
  const readableNs = namespace.replace(/[^a-z0-9-]+/g, '_').slice(0, 63);
  const hash = sha256Hex(`${namespace}\u0000${basePath}`).slice(0, 8);
  return `${readableNs}__${readablePath}__${hash}`;
}

// crypto.hash (Node ≥ 20.12) hashes a short string several times faster than a Hash object.
const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');

function byAge(a: NamespaceInfo, b: NamespaceInfo): number {
  return compare(a.createdAt, b.createdAt) || compare(a.name, b.name);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  return compare(a.object, b.object) || compare(a.field, b.field) || compare(a.reason, b.reason);
}

function samePlanOptions(a: PlanOptions, b: PlanOptions): boolean {
  return a.sslEnabled === b.sslEnabled && a.sslCertDir === b.sslCertDir && a.hostSharing === b.hostSharing;
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Equal servers; locations are compared by identity, which the cache keeps for unchanged groups. */
function sameServer(a: Server, b: Server): boolean {
  return (
    a.host === b.host &&
    a.defaultLocation === b.defaultLocation &&
    sameItems(a.namespaces, b.namespaces) &&
    sameItems(a.locations, b.locations) &&
    sameTls(a.tls, b.tls)
  );
}

function sameTls(a: ServerTls | undefined, b: ServerTls | undefined): boolean {
  return (
    a?.certificate === b?.certificate &&
    a?.certificateKey === b?.certificateKey &&
    a?.clientCertificate === b?.clientCertificate
  );
}
