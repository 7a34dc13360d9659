// What a source keeps of an object: the fields the model reads, nothing else. A pod as the API
// server sends it (managedFields, env, volumes, container statuses) is several kilobytes, of which
// routing reads a few hundred bytes; a list of ten thousand waits in memory until it is delivered.
// Only fields are dropped, never values changed, and a field of an unexpected type is kept as it
// is so that the model still reports it. What the model cannot read (a condition other than Ready,
// the liveness probe of a container whose readiness probe it uses) is dropped.
import { isPlainObject } from '../model/fields.js';
import type { ObjectKind } from '../types.js';

type Json = Record<string, unknown>;

function pick(source: Json, keys: readonly string[]): Json {
  const out: Json = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

/** resourceVersion is client-node's (its cache compares it), the rest the model's. */
const METADATA: Record<ObjectKind, readonly string[]> = {
  Namespace: ['name', 'namespace', 'resourceVersion', 'creationTimestamp', 'labels'],
  Pod: ['name', 'namespace', 'resourceVersion', 'deletionTimestamp', 'labels'],
  Secret: ['name', 'namespace', 'resourceVersion'],
};
const PORT = ['containerPort', 'name'];
const PROBE_TIMING = ['periodSeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold'];
const HTTP_GET = ['port', 'scheme', 'path'];

function slimMetadata(kind: ObjectKind, metadata: unknown, annotations: ReadonlySet<string>): unknown {
  if (!isPlainObject(metadata)) return metadata;
  const out = pick(metadata, METADATA[kind]);
  const given = metadata.annotations;
  if (isPlainObject(given)) {
    const kept = Object.fromEntries(Object.entries(given).filter(([key]) => annotations.has(key)));
    if (Object.keys(kept).length > 0) out.annotations = kept;
  } else if (given !== undefined) out.annotations = given;
  return out;
}

/** The probe's timing and the one action the model reads: httpGet if it is an object, else tcpSocket. */
function slimProbe(probe: Json): Json {
  const out = pick(probe, PROBE_TIMING);
  if (isPlainObject(probe.httpGet)) out.httpGet = pick(probe.httpGet, HTTP_GET);
  else if (isPlainObject(probe.tcpSocket)) out.tcpSocket = pick(probe.tcpSocket, ['port']);
  return out;
}

function slimContainer(container: Json): Json {
  const out: Json = {};
  const ports = container.ports;
  if (Array.isArray(ports)) out.ports = ports.map((p) => (isPlainObject(p) ? pick(p, PORT) : p));
  else if (ports !== undefined) out.ports = ports;
  // The model checks the readiness probe when it is an object, else the liveness probe.
  const probeName = ['readinessProbe', 'livenessProbe'].find((name) => isPlainObject(container[name]));
  if (probeName !== undefined) out[probeName] = slimProbe(container[probeName] as Json);
  return out;
}

function slimPodSpec(spec: unknown): unknown {
  if (!isPlainObject(spec)) return spec;
  const containers = spec.containers;
  if (!Array.isArray(containers)) return pick(spec, ['containers']);
  return { containers: containers.map((c) => (isPlainObject(c) ? slimContainer(c) : c)) };
}

function slimPodStatus(status: unknown): unknown {
  if (!isPlainObject(status)) return status;
  const out = pick(status, ['phase', 'podIP']);
  const conditions = status.conditions;
  if (Array.isArray(conditions)) {
    out.conditions = conditions
      .filter((c) => isPlainObject(c) && c.type === 'Ready')
      .map((c) => pick(c as Json, ['type', 'status']));
  } else if (conditions !== undefined) out.conditions = conditions;
  return out;
}

/** The object with only what routing reads; `annotations` are the annotation keys the model uses. */
export function slimObject(kind: ObjectKind, object: unknown, annotations: ReadonlySet<string>): unknown {
  if (!isPlainObject(object)) return object;
  const out = pick(object, ['apiVersion', 'kind']);
  out.metadata = slimMetadata(kind, object.metadata, annotations);
  if (kind === 'Pod') {
    if (object.spec !== undefined) out.spec = slimPodSpec(object.spec);
    if (object.status !== undefined) out.status = slimPodStatus(object.status);
  } else if (kind === 'Secret') {
    Object.assign(out, pick(object, ['data', 'stringData']));
  }
  return out;
}
