// The live loop: source events go into the store; a change opens a batch window; at its end the
// whole desired state is planned, rendered and handed to the output (nginx or stdout).
import { createBatcher } from './batcher.js';
import { diagnosticKey } from './diagnostics.js';
import { type Logger, logDiagnostics } from './log.js';
import type { NginxFacts } from './pipeline.js';
import { renderOptionsFrom, storeFor } from './pipeline.js';
import { createPlanCache, plan, planOptionsFrom } from './plan.js';
import type { Templates } from './render/templates.js';
import { render } from './render.js';
import type { Source } from './sources/source.js';
import type { Config, RoutingTable, SourceEvent } from './types.js';

/** Where a rendered configuration goes: a real nginx, or stdout in mock mode. */
export interface Output {
  /** Serves `text`; resolves with what happened. Never throws for a configuration nginx refuses. */
  apply(text: string, table: RoutingTable): Promise<OutputResult>;
  /**
   * Optional: checks `text` ahead of its apply (nginx -t while the batch window is still open), so
   * that an apply of the same text skips the check. Resolves with how long the check took (ms).
   */
  precheck?(text: string, table: RoutingTable): Promise<number>;
}

export type OutputResult =
  | { kind: 'unchanged' }
  | { kind: 'applied'; detail?: Record<string, number> }
  | { kind: 'rejected'; message: string };

/** What the controller has done so far; the admin endpoints and metrics read it. */
export interface ControllerState {
  ready: boolean;
  table: RoutingTable | undefined;
  events: Map<string, number>;
  renders: number;
  applied: number;
  unchanged: number;
  rejected: number;
  lastApplyOk: boolean;
  lastApplyAt: number | undefined;
  lastBatchSize: number;
  sourceProblems: number;
}

/** The state of a controller that has done nothing yet. */
export function initialState(): ControllerState {
  return {
    ready: false,
    table: undefined,
    events: new Map(),
    renders: 0,
    applied: 0,
    unchanged: 0,
    rejected: 0,
    lastApplyOk: true,
    lastApplyAt: undefined,
    lastBatchSize: 0,
    sourceProblems: 0,
  };
}

export interface ControllerOptions {
  config: Config;
  logger: Logger;
  source: Source;
  output: Output;
  nginx: NginxFacts;
  /** Templates in use; `templates()` is read at every render so that a reload of them takes effect. */
  templates: () => Templates;
  /** Told of everything that happens (metrics). */
  observer?: ControllerObserver;
}

export interface ControllerObserver {
  event(event: SourceEvent): void;
  rendered(seconds: number, table: RoutingTable, batchSize: number): void;
  applied(result: OutputResult): void;
  sourceProblem(what: string, detail: Record<string, unknown>): void;
}

export interface Controller {
  state: ControllerState;
  start(): Promise<OutputResult>;
  /** Re-render now (template change). */
  rerender(): void;
  /** Resolves when no batch is pending or running. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** Events must pause this long (at most a quarter of the window) before a check ahead starts. */
const PRECHECK_QUIET_MS = 100;
/** A check ahead starts only when the window has this many times the last check's duration left. */
const PRECHECK_MARGIN = 1.5;

export function createController(options: ControllerOptions): Controller {
  const { config, logger, source, output, observer } = options;
  const store = storeFor(config);
  const planOptions = planOptionsFrom(config);
  const renderOptions = renderOptionsFrom(config, options.nginx);
  // Remembers what unchanged namespaces made, so that a batch costs what it changed, not the cluster.
  const planCache = createPlanCache();
  const state = initialState();
  let started = false;
  let reported = new Set<string>();

  /** Each diagnostic is logged once, when it first appears (not at every render). */
  function logNewDiagnostics(table: RoutingTable): void {
    const now = new Set<string>();
    const fresh = table.diagnostics.filter((d) => {
      const key = diagnosticKey(d);
      now.add(key);
      return !reported.has(key);
    });
    reported = now;
    logDiagnostics(logger, fresh);
  }

  async function renderAndApply(batchSize: number): Promise<OutputResult> {
    const began = performance.now();
    const templates = options.templates();
    // The render made ahead for the check is this batch's when nothing changed since.
    const reuse = ahead?.changes === storeChanges && ahead.templates === templates ? ahead : undefined;
    ahead = undefined;
    const table = reuse?.table ?? plan(store.snapshot(), planOptions, planCache);
    const text = reuse?.text ?? render(templates, table, renderOptions);
    state.renders += 1;
    const renderMs = reuse?.renderMs ?? performance.now() - began;
    observer?.rendered(renderMs / 1000, table, batchSize);
    logNewDiagnostics(table);
    const result = await output.apply(text, table);
    observer?.applied(result);
    const testMs = result.kind === 'applied' ? result.detail?.testMs : undefined;
    if (testMs !== undefined && testMs > 0) checkEstimateMs = testMs;
    state.table = table;
    // Ready once nginx serves a render of the full state: the first one, or the first after refusals.
    if (started && result.kind !== 'rejected') state.ready = true;
    if (result.kind === 'unchanged') {
      state.unchanged += 1;
      state.lastApplyOk = true;
    } else if (result.kind === 'applied') {
      state.applied += 1;
      state.lastApplyOk = true;
      state.lastApplyAt = Date.now();
      logger.info(
        {
          hosts: table.servers.length,
          upstreams: table.upstreams.length,
          renderMs: Math.round(renderMs * 10) / 10,
          renderedAhead: reuse ? 1 : 0,
          ...result.detail,
        },
        'configuration applied',
      );
    } else {
      state.rejected += 1;
      state.lastApplyOk = false;
      state.lastApplyAt = Date.now();
      logger.error(
        { nginx: result.message },
        'configuration rejected; nginx keeps serving the last good one',
      );
    }
    return result;
  }

  // nginx -t of a large configuration takes hundreds of milliseconds. Checked while the window is
  // still open, once events have paused, it is off the path from the window's end to nginx
  // serving: the apply of the same text then only renames and reloads. At most one check runs at a
  // time, and one starts only when it is expected to end before the window does.
  let precheckTimer: NodeJS.Timeout | undefined;
  let prechecking = false;
  let checkEstimateMs: number | undefined;
  /** Store changes so far: tells whether a render made ahead still shows the store. */
  let storeChanges = 0;
  /** The last render made ahead of a window's end. */
  let ahead:
    | { changes: number; templates: Templates; table: RoutingTable; text: string; renderMs: number }
    | undefined;

  function schedulePrecheck(): void {
    if (!output.precheck || config.batchWindowMs === 0) return;
    if (precheckTimer !== undefined) clearTimeout(precheckTimer);
    precheckTimer = setTimeout(() => void precheck(), Math.min(PRECHECK_QUIET_MS, config.batchWindowMs / 4));
  }

  async function precheck(): Promise<void> {
    precheckTimer = undefined;
    const remaining = batcher.windowRemainingMs();
    if (!output.precheck || prechecking || remaining === undefined) return;
    if (checkEstimateMs !== undefined && checkEstimateMs * PRECHECK_MARGIN > remaining) return;
    prechecking = true;
    try {
      const began = performance.now();
      const templates = options.templates();
      const table = plan(store.snapshot(), planOptions, planCache);
      const text = render(templates, table, renderOptions);
      ahead = { changes: storeChanges, templates, table, text, renderMs: performance.now() - began };
      const testMs = await output.precheck(text, table);
      if (testMs > 0) checkEstimateMs = testMs;
    } catch (error) {
      logger.warn({ err: error }, 'check ahead of the window end failed; the apply checks again');
    } finally {
      prechecking = false;
    }
  }

  const batcher = createBatcher({
    windowMs: config.batchWindowMs,
    run: async (triggers) => {
      state.lastBatchSize = triggers;
      await renderAndApply(triggers);
    },
    onError: (error) => logger.error({ err: error }, 'render failed'),
  });

  function onEvent(event: SourceEvent): void {
    const key = `${event.kind}/${event.type}`;
    state.events.set(key, (state.events.get(key) ?? 0) + 1);
    observer?.event(event);
    if (store.apply(event) && started) {
      storeChanges += 1;
      batcher.trigger();
      schedulePrecheck();
    }
  }

  return {
    state,
    async start() {
      await source.start({
        event: onEvent,
        problem: (what, detail) => {
          state.sourceProblems += 1;
          observer?.sourceProblem(what, detail);
          logger.warn(detail, what);
        },
      });
      started = true;
      return renderAndApply(0);
    },
    // Before the first list the store is partial; the first render reads the templates anyway.
    rerender: () => {
      if (started) batcher.trigger();
    },
    idle: () => batcher.idle(),
    async stop() {
      if (precheckTimer !== undefined) clearTimeout(precheckTimer);
      batcher.stop();
      await source.stop();
      await batcher.idle();
    },
  };
}
