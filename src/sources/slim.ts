// What a source keeps of an object: the fields the model reads, nothing else. client-node's
// informers cache every object they see; a pod as the API server sends it (managedFields, env,
// volumes, container statuses) is several kilobytes, of which routing reads a few hundred bytes.
// Only fields are dropped, never values changed, and a field of an unexpected type is kept as it
// is so that the model still reports it.
import { isPlainObject } from '../model/fields.js';
import type { ObjectKind } from '../types.js';

type Json = Record<string, unknown>;

function pick(source: Json, keys: readonly string[]): Json {
  const out: Json = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

const METADATA = [
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'creationTimestamp',
  'deletionTimestamp',
  'labels',
];
const CONTAINER = ['name', 'ports', 'readinessProbe', 'livenessProbe'];

function slimMetadata(metadata: unknown, annotations: ReadonlySet<string>): unknown {
  if (!isPlainObject(metadata)) return metadata;
  const out = pick(metadata, METADATA);
  const given = metadata.annotations;
  if (isPlainObject(given)) {
    const kept = Object.fromEntries(Object.entries(given).filter(([key]) => annotations.has(key)));
    if (Object.keys(kept).length > 0) out.annotations = kept;
  } else if (given !== undefined) out.annotations = given;
  return out;
}

function slimPodSpec(spec: unknown): unknown {
  if (!isPlainObject(spec)) return spec;
  const containers = spec.containers;
  if (!Array.isArray(containers)) return pick(spec, ['containers']);
  return { containers: containers.map((c) => (isPlainObject(c) ? pick(c, CONTAINER) : c)) };
}

function slimPodStatus(status: unknown): unknown {
  if (!isPlainObject(status)) return status;
  const out = pick(status, ['phase', 'podIP']);
  const conditions = status.conditions;
  if (Array.isArray(conditions)) {
    out.conditions = conditions.map((c) => (isPlainObject(c) ? pick(c, ['type', 'status']) : c));
  } else if (conditions !== undefined) out.conditions = conditions;
  return out;
}

/** The object with only what routing reads; `annotations` are the annotation keys the model uses. */
export function slimObject(kind: ObjectKind, object: unknown, annotations: ReadonlySet<string>): unknown {
  if (!isPlainObject(object)) return object;
  const out = pick(object, ['apiVersion', 'kind']);
  out.metadata = slimMetadata(object.metadata, annotations);
  if (kind === 'Pod') {
    if (object.spec !== undefined) out.spec = slimPodSpec(object.spec);
    if (object.status !== undefined) out.status = slimPodStatus(object.status);
  } else if (kind === 'Secret') {
    Object.assign(out, pick(object, ['data', 'stringData']));
  }
  return out;
}
