// The live controller in a process of its own, as `dispatcher --nginx --kubeconfig FILE` runs it
// (same flags, environment, startRun), so that its memory is its own and not the bench's. It adds
// an IPC channel through which the bench asks for its counters, its memory after a full GC, whether
// it is idle, and for a graceful stop. Started by controller-handle.ts with --expose-gc.
import { readFileSync } from 'node:fs';
import { loadConfig, parseArgs } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { loadTemplates } from '../src/render.js';
import { type Running, startRun } from '../src/run.js';
import type { ChildMemory, ChildMessage, ChildRequest, ChildState } from './controller-handle.js';

function send(message: ChildMessage): void {
  process.send?.(message);
}

function stateOf(running: Running): ChildState {
  const state = running.controller.state;
  return {
    ready: state.ready,
    renders: state.renders,
    applied: state.applied,
    unchanged: state.unchanged,
    rejected: state.rejected,
    lastBatchSize: state.lastBatchSize,
    sourceProblems: state.sourceProblems,
    events: Object.fromEntries(state.events),
  };
}

function memory(): ChildMemory {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Twice: the first pass may only make more garbage collectable (weak references, finalizers).
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  const peak = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return {
    afterGc: gc !== undefined,
    rss: usage.rss,
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    peakRss: peak === undefined ? 0 : Number(peak) * 1024,
  };
}

async function main(): Promise<void> {
  const parsed = parseArgs(process.argv.slice(2));
  if (!parsed.ok) throw new Error(parsed.error);
  const loaded = loadConfig(process.env);
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const config = loaded.config;
  const templates = loadTemplates(config.templatesDir);
  // What the process holds before it lists anything: node, its modules, the templates.
  const baseline = memory();
  const began = performance.now();
  const running = await startRun({
    args: parsed.args,
    config,
    env: process.env,
    logger: createLogger(config.logLevel),
    templates: () => templates,
    print: () => undefined,
  });
  const startMs = performance.now() - began;

  process.on('message', (raw: ChildRequest) => {
    void (async () => {
      switch (raw.type) {
        case 'state':
          send({ id: raw.id, result: stateOf(running) });
          break;
        case 'memory':
          send({ id: raw.id, result: memory() });
          break;
        case 'idle':
          await running.controller.idle();
          send({ id: raw.id, result: stateOf(running) });
          break;
        case 'stop': {
          await running.shutdown();
          const code = await running.done;
          // Exit once the answer is out, whatever handle (a watch socket, a timer) would linger.
          process.send?.({ id: raw.id, result: { code } } satisfies ChildMessage, () => process.exit(code));
          break;
        }
      }
    })();
  });
  void running.done.then((code) => send({ type: 'done', code }));
  send({ type: 'ready', ok: running.controller.state.ready, startMs, baseline, state: stateOf(running) });
}

main().catch((error: unknown) => {
  send({
    type: 'ready',
    ok: false,
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  process.exitCode = 2;
  process.disconnect?.();
});
