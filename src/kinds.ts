import type { KubeObject, ObjectKind } from './types.js';

const KINDS: ReadonlySet<string> = new Set<ObjectKind>(['Namespace', 'Pod', 'Secret']);

/** The kinds routing reads; every other kind a manifest may hold is ignored. */
export function isRoutingKind(kind: unknown): kind is ObjectKind {
  return typeof kind === 'string' && KINDS.has(kind);
}

/**
 * `Kind/namespace/name`, the identity of an object in the store and in a manifest file. A name or
 * namespace that is not a string (only a hand-written manifest can have one) gets a key no valid
 * object can have, so a malformed object never replaces a valid one of the same spelling.
 */
export function objectKey(kind: ObjectKind, object: KubeObject): string {
  const part = (value: unknown): string => (typeof value === 'string' ? value : `\u0000${typeof value}`);
  return `${kind}/${part(object.metadata?.namespace ?? '')}/${part(object.metadata?.name ?? '')}`;
}
