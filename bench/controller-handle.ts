// The bench's side of a live controller in its own process (controller-process.ts): start it with
// an environment of its own, ask it things over IPC, read its log lines, stop it, and make sure its
// nginx does not outlive it. The process runs with the image's NODE_OPTIONS, as deployed.
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, makePrefix, nginxBin } from '../test/support/nginx.js';

export interface ChildState {
  ready: boolean;
  renders: number;
  applied: number;
  unchanged: number;
  rejected: number;
  lastBatchSize: number;
  sourceProblems: number;
  /** `Kind/type` → events received. */
  events: Record<string, number>;
}

export interface ChildMemory {
  /** Whether a full GC ran first (the process has --expose-gc). */
  afterGc: boolean;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Highest RSS of the process so far (VmHWM). */
  peakRss: number;
  /** RSS mapped from files (the node binary, shared libraries): code, not data. */
  fileBacked: number;
  /** Resident bytes of each V8 heap space (new_space is the young generation's semi-spaces). */
  spaces: Record<string, number>;
}

export type ChildRequest = { id: number; type: 'state' | 'memory' | 'idle' | 'stop' };

export type ChildMessage =
  | {
      type: 'ready';
      ok: boolean;
      startMs?: number;
      baseline?: ChildMemory;
      state?: ChildState;
      error?: string;
    }
  | { type: 'done'; code: number }
  | { id: number; result: unknown };

/** A "configuration applied" log line: what one reload cost the controller. */
export interface AppliedRecord {
  /** performance.now() of the bench when the line arrived. */
  at: number;
  renderMs: number;
  testMs: number;
  reloadMs: number;
  /** 1 when the configuration was loaded by handover to a new master, 0 by signal. */
  handover: number;
  upstreams: number;
}

export interface ControllerHandle {
  port: number;
  pid: number;
  /** startRun to the first configuration served (initial list, render, nginx start), as the child measured it. */
  startMs: number;
  /** The image's settings the child runs with (see imageEnvironment), as `env` left them. */
  imageEnv: Record<string, string>;
  /** The child's memory before startRun: node, the modules, the templates. */
  baseline: ChildMemory | undefined;
  state(): Promise<ChildState>;
  memory(): Promise<ChildMemory>;
  /** Resolves when no batch is open or running (after the events sent have arrived). */
  idle(): Promise<ChildState>;
  /** Every "configuration applied" line so far (bounded). */
  applied: AppliedRecord[];
  /** Last log lines at warn level or above. */
  problems: string[];
  stop(): Promise<void>;
}

export interface ControllerOptions {
  kubeconfig: string;
  batchWindowMs: number;
  /** Extra environment (on top of ports, prefix and paths chosen here). */
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'controller-process.js');
/** The Dockerfile, from dist/bench/ where this file runs compiled. */
const DOCKERFILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'Dockerfile');

/** The image's `ENV` settings that shape the controller's memory: node's and glibc's malloc's. */
const IMAGE_MEMORY_SETTINGS = ['NODE_OPTIONS', 'MALLOC_ARENA_MAX'] as const;

/** Those of IMAGE_MEMORY_SETTINGS the Dockerfile sets (`ENV NAME=value`), with their values. */
export function imageEnvironment(): Record<string, string> {
  const dockerfile = readFileSync(DOCKERFILE, 'utf8');
  const found: Record<string, string> = {};
  for (const name of IMAGE_MEMORY_SETTINGS) {
    const match = new RegExp(`\\b${name}=(?:"([^"]*)"|(\\S+))`).exec(dockerfile);
    const value = match?.[1] ?? match?.[2];
    if (value !== undefined) found[name] = value;
  }
  return found;
}
const REQUEST_TIMEOUT_MS = 120_000;
const KEPT_RECORDS = 10_000;
const KEPT_PROBLEMS = 30;

/** Processes still to end if the bench itself ends early: the children and their nginx groups. */
const live = new Set<{ child: ChildProcess; nginxPid: () => number | undefined }>();
process.once('exit', () => {
  for (const entry of live) {
    entry.child.kill('SIGKILL');
    killGroup(entry.nginxPid());
  }
});

export async function startController(options: ControllerOptions): Promise<ControllerHandle> {
  const prefix = await makePrefix();
  const certDir = await mkdtemp(join(tmpdir(), 'dispatcher-bench-certs-'));
  const port = await freePort();
  let adminPort = await freePort();
  while (adminPort === port) adminPort = await freePort();
  const image = imageEnvironment();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    ...image,
    PORT: String(port),
    ADMIN_PORT: String(adminPort),
    ADMIN_BIND: '127.0.0.1',
    NGINX_PREFIX: prefix,
    NGINX_CONF: join(prefix, 'nginx.conf'),
    NGINX_BIN: nginxBin(),
    SSL_CERT_DIR: certDir,
    BATCH_WINDOW_MS: String(options.batchWindowMs),
    LOG_LEVEL: 'info',
    ...(process.env.NGINX_RELOAD && { NGINX_RELOAD: process.env.NGINX_RELOAD }),
    ...(process.env.GLIBC_TUNABLES && { GLIBC_TUNABLES: process.env.GLIBC_TUNABLES }),
    ...options.env,
  };
  const child = fork(CHILD, ['--nginx', '--kubeconfig', options.kubeconfig], {
    env,
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let nginxPid: number | undefined;
  const entry = { child, nginxPid: () => nginxPid };
  live.add(entry);

  const applied: AppliedRecord[] = [];
  const problems: string[] = [];
  let partial = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) readLogLine(line);
  });
  function readLogLine(line: string): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      if (line.trim()) keep(problems, line, KEPT_PROBLEMS);
      return;
    }
    if (record.msg === 'nginx started' && typeof record.pid === 'number') nginxPid = record.pid;
    if (record.msg === 'configuration applied') {
      // A handover leaves a new master serving: that is the group to end if the child dies.
      if (typeof record.pid === 'number') nginxPid = record.pid;
      keep(
        applied,
        {
          at: performance.now(),
          renderMs: Number(record.renderMs ?? Number.NaN),
          testMs: Number(record.testMs ?? Number.NaN),
          reloadMs: Number(record.reloadMs ?? Number.NaN),
          handover: Number(record.handover ?? 0),
          upstreams: Number(record.upstreams ?? 0),
        },
        KEPT_RECORDS,
      );
    }
    if (typeof record.level === 'number' && record.level >= 40)
      keep(problems, line.slice(0, 500), KEPT_PROBLEMS);
  }

  let nextId = 1;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let exited = false;
  const ready = new Promise<{ startMs: number; baseline: ChildMemory | undefined }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the controller did not start within ${options.startTimeoutMs ?? 300_000} ms`)),
      options.startTimeoutMs ?? 300_000,
    );
    child.on('message', (message: ChildMessage) => {
      if ('id' in message) {
        pending.get(message.id)?.resolve(message.result);
        pending.delete(message.id);
      } else if (message.type === 'ready') {
        clearTimeout(timer);
        if (message.ok) resolve({ startMs: message.startMs ?? Number.NaN, baseline: message.baseline });
        else reject(new Error(`the controller did not start: ${message.error ?? problems.join('\n')}`));
      }
    });
    child.once('exit', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      const error = new Error(`the controller exited (${code ?? signal}): ${problems.slice(-5).join('\n')}`);
      reject(error);
      for (const waiter of pending.values()) waiter.reject(error);
      pending.clear();
    });
  });

  function ask<T>(type: ChildRequest['type']): Promise<T> {
    if (exited) return Promise.reject(new Error('the controller has exited'));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`the controller did not answer "${type}" within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      child.send({ id, type } satisfies ChildRequest);
    });
  }

  async function cleanUp(): Promise<void> {
    if (!exited) child.kill('SIGKILL');
    killGroup(nginxPid);
    live.delete(entry);
    await rm(prefix, { recursive: true, force: true });
    await rm(certDir, { recursive: true, force: true });
  }

  let started: { startMs: number; baseline: ChildMemory | undefined };
  try {
    started = await ready;
  } catch (error) {
    await cleanUp();
    throw error;
  }

  return {
    port,
    pid: child.pid ?? 0,
    imageEnv: Object.fromEntries(
      Object.keys(image).flatMap((name) => (env[name] === undefined ? [] : [[name, env[name]]])),
    ),
    ...started,
    state: () => ask<ChildState>('state'),
    memory: () => ask<ChildMemory>('memory'),
    idle: () => ask<ChildState>('idle'),
    applied,
    problems,
    async stop() {
      if (!exited) {
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        await ask('stop').catch(() => undefined);
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await gone;
        clearTimeout(timer);
      }
      await cleanUp();
    },
  };
}

function keep<T>(list: T[], item: T, limit: number): void {
  list.push(item);
  if (list.length > limit) list.splice(0, list.length - limit);
}

/** Ends what is left of the nginx process group the child started (nothing after a graceful stop). */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is gone
  }
}
