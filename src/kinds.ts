import type { ObjectKind } from './types.js';

const KINDS: ReadonlySet<string> = new Set<ObjectKind>(['Namespace', 'Pod', 'Secret']);

/** The kinds routing reads; every other kind a manifest may hold is ignored. */
export function isRoutingKind(kind: unknown): kind is ObjectKind {
  return typeof kind === 'string' && KINDS.has(kind);
}
