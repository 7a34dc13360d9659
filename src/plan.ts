// The plan: a pure function from the store's objects to the routing table of SPEC section 3.
// Deterministic: every collection is sorted before it is walked, so neither event order nor map
// order can change the output.
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
  /** Made by the first location of the group, shared by the others. */
  shared?: { upstream: string; pods: string[] };
}

export function plan(snapshot: StoreSnapshot, options: PlanOptions): RoutingTable {
  const diagnostics: Diagnostic[] = [...snapshot.diagnostics];
  const namespaces = [...snapshot.namespaces].sort(byAge);
  const routable = new Set(namespaces.map((ns) => ns.name));
  const secrets = new Map(snapshot.secrets.map((s) => [s.namespace, s]));

  const groups = groupPaths(snapshot.pods, routable, diagnostics);
  const claims = claimHosts(namespaces, secrets, options, diagnostics);

  const upstreams = new Map<string, Upstream>();
  const servers: Server[] = [];
  const tlsFiles: TlsFile[] = [];

  for (const [host, hostClaims] of [...claims].sort(([a], [b]) => compare(a, b))) {
    const owner = hostClaims[0];
    if (!owner) continue;
    const locations = new Map<string, Location>();
    for (const claim of hostClaims) {
      for (const group of groups.get(claim.namespace) ?? []) {
        const taken = locations.get(group.basePath);
        if (taken) {
          diagnostics.push({
            severity: 'warning',
            object: describeObject('Namespace', '', claim.namespace),
            field: `host ${host} path ${group.basePath}`,
            reason: `conflict: already served by older namespace ${taken.namespace}; left out`,
          });
          continue;
        }
        locations.set(group.basePath, locationFor(group, upstreams, secrets.get(claim.namespace)));
      }
    }
    const sorted = [...locations.values()].sort((a, b) => compare(a.path, b.path));
    servers.push({
      host,
      namespaces: hostClaims.map((c) => c.namespace),
      ...(owner.tls && { tls: owner.tls }),
      locations: sorted,
      defaultLocation: !locations.has('/'),
    });
    if (owner.tls && owner.ssl)
      tlsFiles.push(...tlsFilesFor(owner.tls, owner.ssl, secrets.get(owner.namespace)));
  }

  return {
    servers,
    upstreams: [...upstreams.values()].sort((a, b) => compare(a.name, b.name)),
    tlsFiles,
    diagnostics: diagnostics.sort(compareDiagnostics),
    stats: {
      namespaces: namespaces.length,
      pods: countRoutablePods(snapshot.pods, routable),
    },
  };
}

function countRoutablePods(pods: readonly PodInfo[], routable: ReadonlySet<string>): number {
  let count = 0;
  for (const pod of pods) if (routable.has(pod.namespace)) count += 1;
  return count;
}

/** Groups every route of every pod by (namespace, basePath); pods of non-routable namespaces are reported. */
function groupPaths(
  pods: PodInfo[],
  routable: ReadonlySet<string>,
  diagnostics: Diagnostic[],
): Map<string, PathGroup[]> {
  const byNamespace = new Map<string, Map<string, PathGroup>>();
  for (const pod of [...pods].sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name))) {
    if (!routable.has(pod.namespace)) {
      diagnostics.push({
        severity: 'info',
        object: describeObject('Pod', pod.namespace, pod.name),
        field: 'metadata.namespace',
        reason: 'namespace is not routable; pod not routed',
      });
      continue;
    }
    let paths = byNamespace.get(pod.namespace);
    if (!paths) {
      paths = new Map<string, PathGroup>();
      byNamespace.set(pod.namespace, paths);
    }
    for (const route of pod.routes) {
      let group = paths.get(route.basePath);
      if (!group) {
        group = { namespace: pod.namespace, basePath: route.basePath, members: [] };
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
  const result = new Map<string, PathGroup[]>();
  for (const [ns, paths] of byNamespace) {
    result.set(
      ns,
      [...paths.values()].sort((a, b) => compare(a.basePath, b.basePath)),
    );
  }
  return result;
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
): Map<string, HostClaim[]> {
  const claims = new Map<string, HostClaim[]>();
  for (const ns of namespaces) {
    for (const spec of ns.hosts) {
      const object = describeObject('Namespace', '', ns.name);
      const field = `hosts ${spec.name}`;
      let tls: ServerTls | undefined;
      if (spec.ssl) {
        const resolved = resolveTls(spec.name, spec.ssl, secrets.get(ns.name), options);
        if (!resolved.ok) {
          diagnostics.push({
            severity: 'warning',
            object,
            field: `${field} ssl`,
            reason: `${resolved.reason}; host left out`,
          });
          continue;
        }
        tls = resolved.tls;
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
): { ok: true; tls: ServerTls } | { ok: false; reason: string } {
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
 * The location of a group on one host. Every host of the namespace gets an equal location: the
 * upstream and the list of pod names are made once per group and shared (the table is never mutated).
 */
function locationFor(
  group: PathGroup,
  upstreams: Map<string, Upstream>,
  secret: SecretInfo | undefined,
): Location {
  if (!group.shared) {
    const upstream = upstreamFor(group);
    upstreams.set(upstream.name, upstream);
    group.shared = { upstream: upstream.name, pods: group.members.map((m) => m.pod.name) };
  }
  const { upstream, pods } = group.shared;
  const location: Location = { path: group.basePath, namespace: group.namespace, upstream, pods };
  const targetPath = group.members[0]?.route.targetPath;
  if (targetPath !== undefined) location.targetPath = targetPath;
  if (secret?.apiKey !== undefined) location.apiKey = secret.apiKey;
  if (secret?.apiKeyRejected) location.deny = true;
  return location;
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
