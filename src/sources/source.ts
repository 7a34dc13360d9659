// What every source offers: the outside world as events, nothing decided.
import type { SourceEvent } from '../types.js';

export interface SourceSink {
  event(event: SourceEvent): void;
  /** A problem the source recovers from by itself (it is logged and counted, routing keeps going). */
  problem(what: string, detail: Record<string, unknown>): void;
}

export interface SourceHealth {
  ok: boolean;
  /** Why not, when not ok (e.g. which watch is failing and how). */
  reason?: string;
}

export interface Source {
  /** Delivers the initial state as `added` events and resolves when it has; then keeps watching. */
  start(sink: SourceSink): Promise<void>;
  stop(): Promise<void>;
  /** Whether every list/watch is working now. */
  health(): SourceHealth;
}
