// The live controller in a process of its own, as `dispatcher --nginx --kubeconfig FILE` runs it
// in the image (same flags, environment, NODE_OPTIONS, heap tuning, startRun), so that its memory is
// its own and not the bench's. It adds an IPC channel through which the bench asks for its
// counters, its memory after a full GC, whether it is idle, and for a graceful stop. Started by
// controller-handle.ts with --expose-gc, the one flag the image does not have.
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
import { tuneHeap } from '../src/cli.js';
import { parseArgs } from '../src/cli-args.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { loadTemplates } from '../src/render/templates.js';
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

/** The kB value of `field` in a /proc file ("VmHWM:   1234 kB"), in bytes; 0 when absent. */
function procBytes(text: string, field: string): number {
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

function rssNow(): number {
  return procBytes(readFileSync('/proc/self/status', 'utf8'), 'VmRSS');
}

async function memory(): Promise<ChildMemory> {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Twice: the first pass may only make more garbage collectable (weak references, finalizers).
  gc?.();
  gc?.();
  // V8 hands the pages a GC freed back to the OS from a background thread: wait (≤ 1 s) until the
  // RSS stops falling, so that it shows what the process keeps, not what it is still releasing.
  let rss = rssNow();
  for (let waited = 0; waited < 1000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = rssNow();
    if (now >= rss) break;
    rss = now;
  }
  const usage = process.memoryUsage();
  const rollup = readFileSync('/proc/self/smaps_rollup', 'utf8');
  const spaces: Record<string, number> = {};
  for (const space of getHeapSpaceStatistics())
    if (space.physical_space_size > 0) spaces[space.space_name] = space.physical_space_size;
  return {
    afterGc: gc !== undefined,
    rss: usage.rss,
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    peakRss: procBytes(readFileSync('/proc/self/status', 'utf8'), 'VmHWM'),
    fileBacked: procBytes(rollup, 'Rss') - procBytes(rollup, 'Anonymous'),
    spaces,
  };
}

async function main(): Promise<void> {
  // As dist/src/cli.js does when it is the entry point.
  tuneHeap();
  const parsed = parseArgs(process.argv.slice(2));
  if (!parsed.ok) throw new Error(parsed.error);
  const loaded = loadConfig(process.env);
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const config = loaded.config;
  const templates = loadTemplates(config.templatesDir);
  // What the process holds before it lists anything: node, its modules, the templates.
  const baseline = await memory();
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
          send({ id: raw.id, result: await memory() });
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
