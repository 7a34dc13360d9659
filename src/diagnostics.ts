import type { Diagnostic } from './types.js';

/** Identity of a diagnostic, for "new since last time" comparisons. */
export function diagnosticKey(d: Diagnostic): string {
  return `${d.severity}\u0000${d.object}\u0000${d.field}\u0000${d.reason}`;
}
