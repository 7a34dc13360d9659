// A Pod → its address and routes (with health checks from its probes), or null when it does not route.
import type { Converted, Diagnostic, HealthCheck, KubeObject, PodInfo, PodRoute } from '../types.js';
import type { ModelConfig } from './config.js';
import {
  annotationField,
  annotationText,
  isPlainObject,
  jsonKind,
  keyField,
  metadataOf,
  parseJson,
  stringLabel,
  stringLabels,
} from './fields.js';
import { matchesSelector, type Selector } from './selector.js';
import {
  checkDnsLabel,
  checkDnsSubdomain,
  checkIp,
  checkPath,
  checkPort,
  checkWeight,
  describeObject,
  quoteUntrusted,
  type Result,
} from './validate.js';

export const MAX_PATH_ENTRIES = 100;

type Report = (severity: Diagnostic['severity'], field: string, reason: string) => void;

/** A port a container of the pod declares (spec.containers[].ports[]). */
interface DeclaredPort {
  number: number;
  name?: string;
  containerIndex: number;
}

interface Container {
  index: number;
  spec: Record<string, unknown>;
  ports: DeclaredPort[];
}

export function toPod(obj: KubeObject, cfg: ModelConfig, selector: Selector): Converted<PodInfo> {
  const labels = stringLabels(obj);
  if (!matchesSelector(selector, labels)) return { value: null, diagnostics: [] };
  const metadata = metadataOf(obj);
  const object = describeObject('Pod', metadata.namespace, metadata.name);
  const diagnostics: Diagnostic[] = [];
  const report: Report = (severity, field, reason) => diagnostics.push({ severity, object, field, reason });
  const notRouted = (severity: Diagnostic['severity'], field: string, reason: string): Converted<PodInfo> => {
    report(severity, field, `${reason}; pod not routed`);
    return { value: null, diagnostics };
  };

  const namespace = checkDnsLabel(metadata.namespace);
  if (!namespace.ok) return notRouted('warning', 'metadata.namespace', namespace.reason);
  const name = checkDnsSubdomain(metadata.name);
  if (!name.ok) return notRouted('warning', 'metadata.name', name.reason);

  const status: Record<string, unknown> = isPlainObject(obj.status) ? obj.status : {};
  if (metadata.deletionTimestamp !== undefined && metadata.deletionTimestamp !== null) {
    return notRouted('info', 'metadata.deletionTimestamp', 'terminating');
  }
  if (status.phase !== 'Running') {
    const phase = status.phase === undefined ? 'no phase' : `phase ${quoteUntrusted(status.phase)}`;
    return notRouted('info', 'status.phase', `has ${phase}, not "Running"`);
  }
  if (status.podIP === undefined || status.podIP === null || status.podIP === '') {
    return notRouted('info', 'status.podIP', 'has no pod IP');
  }
  const ip = checkIp(status.podIP);
  if (!ip.ok) return notRouted('info', 'status.podIP', ip.reason);
  if (!cfg.routeUnreadyPods && !isReady(status)) return notRouted('info', 'status.conditions', 'not ready');

  const appName = stringLabel(labels, cfg.appNameLabel);
  const appRev = stringLabel(labels, cfg.appRevLabel);
  const routes = readRoutes(obj, cfg.pathsAnnotation, containersOf(obj.spec), report);
  return {
    value: {
      namespace: namespace.value,
      name: name.value,
      ip: ip.value,
      ...(appName !== undefined && { appName }),
      ...(appRev !== undefined && { appRev }),
      routes,
    },
    diagnostics,
  };
}

function isReady(status: Record<string, unknown>): boolean {
  const conditions = Array.isArray(status.conditions) ? status.conditions : [];
  return conditions.some((c) => isPlainObject(c) && c.type === 'Ready' && c.status === 'True');
}

function containersOf(spec: unknown): Container[] {
  const list = isPlainObject(spec) && Array.isArray(spec.containers) ? spec.containers : [];
  return list.flatMap((container: unknown, index: number) => {
    if (!isPlainObject(container)) return [];
    const ports = Array.isArray(container.ports) ? container.ports : [];
    const declared = ports.flatMap((port: unknown): DeclaredPort[] => {
      if (!isPlainObject(port)) return [];
      const number = checkPort(port.containerPort);
      if (!number.ok) return [];
      return [
        {
          number: number.value,
          containerIndex: index,
          ...(typeof port.name === 'string' && { name: port.name }),
        },
      ];
    });
    return [{ index, spec: container, ports: declared }];
  });
}

const ENTRY_FIELDS = ['basePath', 'containerPort', 'targetPath', 'weight'];

function readRoutes(
  obj: KubeObject,
  annotation: string,
  containers: Container[],
  report: Report,
): PodRoute[] {
  const field = annotationField(annotation);
  const text = annotationText(obj, annotation);
  if (!text.ok) {
    report('warning', field, `${text.reason}; no routes`);
    return [];
  }
  if (text.value === undefined) {
    report('info', field, 'annotation absent; the pod serves no path');
    return [];
  }
  const json = parseJson(text.value);
  if (!json.ok) {
    report('warning', field, `${json.reason}; no routes`);
    return [];
  }
  const entries = json.value;
  if (!Array.isArray(entries)) {
    report('warning', field, `is ${jsonKind(entries)}, expected a JSON array of path entries; no routes`);
    return [];
  }
  if (entries.length > MAX_PATH_ENTRIES) {
    report(
      'warning',
      field,
      `has ${entries.length} entries, more than the limit of ${MAX_PATH_ENTRIES}; no routes`,
    );
    return [];
  }

  const healthChecks = healthCheckCache(containers, report);
  const routes: PodRoute[] = [];
  const firstEntryOf = new Map<string, number>();
  entries.forEach((entry: unknown, index: number) => {
    const entryField = `${field}[${index}]`;
    const parsed = readEntry(entry, entryField, containers);
    if (!parsed.ok) {
      for (const problem of parsed.problems)
        report('warning', problem.field, `${problem.reason}; entry left out`);
      return;
    }
    const { basePath } = parsed.route;
    const first = firstEntryOf.get(basePath);
    if (first !== undefined) {
      report(
        'warning',
        `${entryField}.basePath`,
        `duplicate of entry [${first}] (basePath ${basePath}); entry left out`,
      );
      return;
    }
    firstEntryOf.set(basePath, index);
    const healthCheck = healthChecks(parsed.containerIndex);
    routes.push({ ...parsed.route, ...(healthCheck && { healthCheck }) });
  });
  return routes;
}

type EntryResult =
  | { ok: true; route: PodRoute; containerIndex: number }
  | { ok: false; problems: { field: string; reason: string }[] };

function readEntry(entry: unknown, entryField: string, containers: Container[]): EntryResult {
  if (!isPlainObject(entry)) {
    return {
      ok: false,
      problems: [{ field: entryField, reason: `is ${jsonKind(entry)}, expected an object` }],
    };
  }
  const problems: { field: string; reason: string }[] = [];
  for (const key of Object.keys(entry)) {
    if (!ENTRY_FIELDS.includes(key)) {
      const known = ENTRY_FIELDS.map((k) => JSON.stringify(k)).join(', ');
      problems.push({ field: keyField(entryField, key), reason: `unknown field (known: ${known})` });
    }
  }
  const check = <T>(key: string, required: boolean, checker: (v: unknown) => Result<T>): T | undefined => {
    if (!Object.hasOwn(entry, key)) {
      if (required) problems.push({ field: `${entryField}.${key}`, reason: 'is required' });
      return undefined;
    }
    const result = checker(entry[key]);
    if (result.ok) return result.value;
    problems.push({ field: `${entryField}.${key}`, reason: result.reason });
    return undefined;
  };
  const basePath = check('basePath', true, checkPath);
  const port = check('containerPort', true, (v) => resolveContainerPort(v, containers));
  const targetPath = check('targetPath', false, checkPath);
  const weight = check('weight', false, checkWeight);
  if (problems.length > 0 || basePath === undefined || port === undefined) {
    return { ok: false, problems };
  }
  return {
    ok: true,
    containerIndex: port.containerIndex,
    route: {
      basePath,
      port: port.number,
      ...(targetPath !== undefined && { targetPath }),
      ...(weight !== undefined && { weight }),
    },
  };
}

/** A port number or port name that one of the pod's containers declares. */
function resolveContainerPort(value: unknown, containers: Container[]): Result<DeclaredPort> {
  const declared = containers.flatMap((c) => c.ports);
  if (typeof value === 'number' || (typeof value === 'string' && /^[0-9]+$/.test(value))) {
    const port = checkPort(value);
    if (!port.ok) return port;
    const found = declared.find((p) => p.number === port.value);
    if (found) return { ok: true, value: found };
    return { ok: false, reason: `port ${port.value} is not declared by any container of the pod` };
  }
  const named = typeof value === 'string' ? declared.find((p) => p.name === value) : undefined;
  if (named) return { ok: true, value: named };
  return {
    ok: false,
    reason: `${quoteUntrusted(value)} is neither a port (an integer 1-65535) nor the name of a port a container declares`,
  };
}

/** One health check per container, so its diagnostics appear once however many routes use it. */
function healthCheckCache(
  containers: Container[],
  report: Report,
): (index: number) => HealthCheck | undefined {
  const cache = new Map<number, HealthCheck | undefined>();
  return (index) => {
    if (!cache.has(index)) {
      const container = containers.find((c) => c.index === index);
      cache.set(index, container && healthCheckOf(container, report));
    }
    return cache.get(index);
  };
}

const PROBE_DEFAULTS = { periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 };
const PROBE_LIMITS = {
  periodSeconds: 86400,
  timeoutSeconds: 86400,
  successThreshold: 1000,
  failureThreshold: 1000,
};

/** The readinessProbe (else livenessProbe) as an nginx active check; exec and grpc probes give none. */
function healthCheckOf(container: Container, report: Report): HealthCheck | undefined {
  const probeName = ['readinessProbe', 'livenessProbe'].find((n) => isPlainObject(container.spec[n]));
  if (probeName === undefined) return undefined;
  const probe = container.spec[probeName] as Record<string, unknown>;
  const probeField = `spec.containers[${container.index}].${probeName}`;
  const noCheck = (field: string, reason: string): undefined => {
    report('warning', field, `${reason}; no health check`);
    return undefined;
  };

  const action = isPlainObject(probe.httpGet)
    ? 'httpGet'
    : isPlainObject(probe.tcpSocket)
      ? 'tcpSocket'
      : undefined;
  if (action === undefined) return undefined;

  const timing = { ...PROBE_DEFAULTS };
  for (const key of Object.keys(PROBE_DEFAULTS) as (keyof typeof PROBE_DEFAULTS)[]) {
    const value = probe[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > PROBE_LIMITS[key]) {
      return noCheck(
        `${probeField}.${key}`,
        `${quoteUntrusted(value)} is not an integer 1-${PROBE_LIMITS[key]}`,
      );
    }
    timing[key] = value;
  }

  const handler = probe[action] as Record<string, unknown>;
  const actionField = `${probeField}.${action}`;
  const port = resolveProbePort(handler.port, container);
  if (!port.ok) return noCheck(`${actionField}.port`, port.reason);
  const check: HealthCheck = {
    type: action === 'httpGet' ? 'http' : 'tcp',
    intervalMs: timing.periodSeconds * 1000,
    timeoutMs: timing.timeoutSeconds * 1000,
    rise: timing.successThreshold,
    fall: timing.failureThreshold,
    port: port.value,
  };
  if (action === 'tcpSocket') return check;

  if (handler.scheme !== undefined && handler.scheme !== 'HTTP') {
    return noCheck(
      `${actionField}.scheme`,
      `scheme ${quoteUntrusted(handler.scheme)} cannot be checked (HTTP only)`,
    );
  }
  const path = checkPath(handler.path ?? '/');
  if (!path.ok) return noCheck(`${actionField}.path`, path.reason);
  return { ...check, path: path.value };
}

/** A probe's port: a number, or a name resolved against the probing container's own ports. */
function resolveProbePort(value: unknown, container: Container): Result<number> {
  if (typeof value === 'number' || (typeof value === 'string' && /^[0-9]+$/.test(value)))
    return checkPort(value);
  const named = typeof value === 'string' ? container.ports.find((p) => p.name === value) : undefined;
  if (named) return { ok: true, value: named.number };
  return {
    ok: false,
    reason: `${quoteUntrusted(value)} is neither a port (an integer 1-65535) nor the name of a port of this container`,
  };
}
