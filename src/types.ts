// The project's own types: what the model makes of Kubernetes objects, the routing table the plan
// computes, and the configuration every stage reads. Kubernetes' own shapes stay at the edges.

/** A Kubernetes object as a source delivers it: parsed JSON/YAML, not yet trusted. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    /** ISO string from JSON/YAML; client-node turns it into a Date. */
    creationTimestamp?: string | Date;
    deletionTimestamp?: string | Date;
    resourceVersion?: string;
  };
  /** Untrusted: the model reads it field by field, checking each type. */
  spec?: unknown;
  status?: unknown;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export type ObjectKind = 'Namespace' | 'Pod' | 'Secret';

export type EventType = 'added' | 'modified' | 'deleted';

/** What a source emits: the only thing that crosses from the outside world into the store. */
export interface SourceEvent {
  type: EventType;
  kind: ObjectKind;
  object: KubeObject;
}

/**
 * Something left out or worth reporting. `object` is `Kind namespace/name` (or `Kind name` for
 * namespaces), `field` the path of the offending value, `reason` a short sentence. Untrusted text
 * appears only through `quoteUntrusted` (truncated, escaped); secret values never appear.
 */
export interface Diagnostic {
  severity: 'warning' | 'error' | 'info';
  object: string;
  field: string;
  reason: string;
}

// ---------------------------------------------------------------- model

/** References to fields of the namespace's routing secret, already validated as field names. */
export interface SslRefs {
  certificate: string;
  certificateKey: string;
  clientCertificate?: string;
}

export interface HostSpec {
  /** Lower-cased, validated host name. */
  name: string;
  ssl?: SslRefs;
}

export interface NamespaceInfo {
  name: string;
  /** creationTimestamp as ISO string; '' when absent (sorts first, then by name). */
  createdAt: string;
  org?: string;
  env?: string;
  /** Valid hosts, sorted by name, unique. */
  hosts: HostSpec[];
}

export interface HealthCheck {
  type: 'http' | 'tcp';
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  port: number;
  /** httpGet path (validated path); only for type http. */
  path?: string;
}

export interface PodRoute {
  basePath: string;
  port: number;
  targetPath?: string;
  weight?: number;
  healthCheck?: HealthCheck;
}

export interface PodInfo {
  namespace: string;
  name: string;
  ip: string;
  appName?: string;
  appRev?: string;
  /** Valid path entries in annotation order (a later duplicate basePath is dropped with a diagnostic). */
  routes: PodRoute[];
}

export interface SecretInfo {
  namespace: string;
  /** base64 of the api-key field's value: what the API-key header must equal. */
  apiKey?: string;
  /**
   * The api-key field is there but unusable (not base64, too long): the namespace's locations then
   * deny every request until it is fixed, rather than serve without the check it asked for.
   */
  apiKeyRejected?: boolean;
  /** Every field with a valid name, value base64-encoded as in `data`. Never logged. */
  fields: Record<string, string>;
}

/** Result of converting one object: the value (or null when it does not route) and what was wrong. */
export interface Converted<T> {
  value: T | null;
  diagnostics: Diagnostic[];
}

// ---------------------------------------------------------------- plan

export interface UpstreamServer {
  /** `ip:port`, IPv6 in brackets. */
  address: string;
  pod: string;
  weight?: number;
}

export interface Upstream {
  /** Stable, unique, a valid nginx identifier: derived from namespace and basePath. */
  name: string;
  namespace: string;
  basePath: string;
  /** Sorted by pod name. Never empty. */
  servers: UpstreamServer[];
  healthCheck?: HealthCheck;
}

export interface Location {
  path: string;
  /** Namespace that owns this (host, path). */
  namespace: string;
  upstream: string;
  targetPath?: string;
  /** Header value required (base64 of the namespace's api key); absent: no check. */
  apiKey?: string;
  /** Answer 403 to every request: the owning namespace's API key is unusable (fail closed). */
  deny?: boolean;
  /** Pod names (namespace-local) behind it, sorted. */
  pods: string[];
}

export interface ServerTls {
  certificate: string;
  certificateKey: string;
  clientCertificate?: string;
}

export interface Server {
  host: string;
  /** Namespaces whose locations this server holds, oldest first; the first owns host-level options. */
  namespaces: string[];
  tls?: ServerTls;
  /** Sorted by path. */
  locations: Location[];
  /** True when no location is `/`: render adds the default location (DEFAULT_LOCATION_RETURN). */
  defaultLocation: boolean;
}

/** A file the apply step writes for TLS before testing the configuration. */
export interface TlsFile {
  path: string;
  mode: 0o644 | 0o600;
  /** base64 content, straight from the secret. Never logged. */
  contentBase64: string;
}

export interface RoutingTable {
  /** Sorted by host. */
  servers: Server[];
  /** Sorted by name. */
  upstreams: Upstream[];
  tlsFiles: TlsFile[];
  /** Every left-out object or entry, every conflict; deterministic order. */
  diagnostics: Diagnostic[];
  stats: { namespaces: number; pods: number };
}

// ---------------------------------------------------------------- configuration

export type HealthCheckMode = 'off' | 'active' | 'passive';

export interface Config {
  apiKeySecretName: string;
  apiKeySecretField: string;
  appNameLabel: string;
  appRevLabel: string;
  envLabel: string;
  orgLabel: string;
  hostsAnnotation: string;
  pathsAnnotation: string;
  /** Raw selector text; parsed by model/selector.ts. */
  routableLabelSelector: string;
  apiKeyHeader: string;
  /** Status code or http(s) URL. */
  defaultLocationReturn: { kind: 'status'; code: number } | { kind: 'url'; url: string };
  enableHealthChecks: boolean;
  maxClientBodySize: string;
  statusPath: string;
  port: number;
  sslPort: number;
  sslCert?: string;
  sslKey?: string;
  sslCertDir: string;
  batchWindowMs: number;
  nginxBin: string;
  nginxConf: string;
  nginxPrefix?: string;
  templatesDir: string;
  /** nginx time, e.g. `30s`: bounds how long old workers linger after a reload. */
  workerShutdownTimeout: string;
  /** How long a reload may take to show the new version served before it counts as failed. */
  reloadTimeoutMs: number;
  /** How nginx loads a new configuration: a new master on held sockets, or SIGHUP to the one master. */
  nginxReload: 'handover' | 'signal';
  routeUnreadyPods: boolean;
  hostSharing: 'shared' | 'exclusive';
  adminPort: number;
  adminBind: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** What the render step needs beyond the table: the subset of Config plus facts about the nginx. */
export interface RenderOptions {
  port: number;
  sslPort: number;
  /** Default SSL server pair; both or neither. */
  ssl?: { certificate: string; certificateKey: string };
  statusPath: string;
  apiKeyHeader: string;
  defaultLocationReturn: Config['defaultLocationReturn'];
  maxClientBodySize: string;
  /** nginx time, from NGINX_WORKER_SHUTDOWN_TIMEOUT. */
  workerShutdownTimeout: string;
  healthChecks: HealthCheckMode;
  /** When set, pid/temp paths are relative to nginx's -p prefix (unprivileged runs). */
  prefixRelativePaths: boolean;
}
