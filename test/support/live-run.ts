// The live controller in-process, as `dispatcher --nginx` runs it: startRun with a real nginx in a
// private prefix on free high ports, a source (test API server or manifest directory), and its logs
// captured as parsed JSON records. Stopping it reports whatever nginx process outlived the run.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { CliArgs } from '../../src/cli-args.js';
import { loadConfig } from '../../src/config.js';
import { loadTemplates } from '../../src/render/templates.js';
import { type Running, startRun } from '../../src/run.js';
import type { Config } from '../../src/types.js';
import { type RequestOptions, type Response, request } from './http.js';
import { freePort, makePrefix, nginxBin, nginxProcessesUnder } from './nginx.js';
import { sleep, waitFor } from './wait.js';

/** One pino line: `msg`, numeric `level` (30 info, 40 warn, 50 error, 60 fatal) and its fields. */
export interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface LiveRunOptions {
  /** The source: a kubeconfig (test API server) or a manifest directory. */
  kubeconfig?: string;
  manifests?: string;
  /** Environment for loadConfig on top of the ports and paths chosen here (BATCH_WINDOW_MS defaults to 200). */
  env?: Record<string, string>;
}

export interface LiveRun {
  running: Running;
  config: Config;
  /** PORT and SSL_PORT nginx listens on. */
  port: number;
  sslPort: number;
  prefix: string;
  certDir: string;
  /** Every log line so far, parsed. */
  readonly logs: LogRecord[];
  /** Log records whose message contains `text`. */
  logged(text: string): LogRecord[];
  /** The pid of the nginx master serving now (a new one after every handover). */
  readonly masterPid: number;
  /** Every master of the run so far, the serving one last; each is checked for survival by stop(). */
  masterPids(): number[];
  /** The serving master's children now; each is also checked for survival by stop(). */
  workerPids(): number[];
  /**
   * Resolves when the serving master runs only its current generation of workers. After a reload
   * by signal the old workers finish their connections for a while: until they stop accepting, a
   * new connection may still be served by the previous configuration.
   */
  settled(): Promise<void>;
  /** The configuration file nginx runs now. */
  liveConfig(): string;
  /** shutdown() (idempotent), then the exit code and every nginx process of this run still alive. */
  stop(): Promise<{ code: number; survivors: string[] }>;
}

export async function startLiveRun(options: LiveRunOptions): Promise<LiveRun> {
  const prefix = await makePrefix();
  const certDir = await mkdtemp(join(tmpdir(), 'dispatcher-certs-'));
  const [port, sslPort, adminPort] = await distinctFreePorts(3);
  const env: Record<string, string> = {
    PORT: String(port),
    SSL_PORT: String(sslPort),
    ADMIN_PORT: String(adminPort),
    NGINX_PREFIX: prefix,
    NGINX_CONF: join(prefix, 'nginx.conf'),
    NGINX_BIN: nginxBin(),
    SSL_CERT_DIR: certDir,
    BATCH_WINDOW_MS: '200',
    LOG_LEVEL: 'debug',
    ...options.env,
  };
  const loaded = loadConfig(env);
  if (!loaded.ok) throw new Error(`invalid test configuration: ${loaded.errors.join('; ')}`);
  const config = loaded.config;
  const templates = loadTemplates(config.templatesDir);

  const logs: LogRecord[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        logs.push(JSON.parse(line) as LogRecord);
      },
    },
  );
  const args: CliArgs = {
    mode: 'nginx',
    once: false,
    help: false,
    ...(options.kubeconfig !== undefined && { kubeconfig: options.kubeconfig }),
    ...(options.manifests !== undefined && { manifests: options.manifests }),
  };
  const running = await startRun({
    args,
    config,
    env: {},
    logger,
    templates: () => templates,
    print: () => {},
  });
  const started = logs.find((r) => r.msg === 'nginx started');
  if (typeof started?.pid !== 'number') {
    await running.shutdown();
    throw new Error(`the run did not start nginx: ${JSON.stringify(logs)}`);
  }
  const firstMaster = started.pid;
  /** Masters and workers show no prefix in their command line: they are tracked by pid. */
  const masters = new Set<number>([firstMaster]);
  const workers = new Set<number>();
  const currentMaster = (): number => {
    const pid = running.nginxPid() ?? firstMaster;
    masters.add(pid);
    return pid;
  };
  const noteWorkers = (): number[] => {
    const now = childrenOf(currentMaster());
    for (const pid of now) workers.add(pid);
    return now;
  };

  let stopped: Promise<{ code: number; survivors: string[] }> | undefined;
  return {
    running,
    config,
    port,
    sslPort,
    prefix,
    certDir,
    logs,
    logged: (text) => logs.filter((r) => r.msg.includes(text)),
    get masterPid() {
      return currentMaster();
    },
    masterPids: () => {
      currentMaster();
      return [...masters];
    },
    workerPids: noteWorkers,
    settled: () =>
      waitFor('nginx to run only the current generation of workers', () => {
        const current = noteWorkers();
        return current.length === workerCount && current.every((pid) => !isShuttingDown(pid));
      }),
    liveConfig: () => readFileSync(config.nginxConf, 'utf8'),
    stop() {
      stopped ??= (async () => {
        noteWorkers();
        await running.shutdown();
        const code = await running.done;
        // Workers of a master that exits gracefully are gone before it; give orphans a moment anyway.
        let survivors = nginxSurvivors(prefix, [...masters, ...workers]);
        const deadline = Date.now() + 5000;
        while (survivors.length > 0 && Date.now() < deadline) {
          await sleep(100);
          survivors = nginxSurvivors(prefix, [...masters, ...workers]);
        }
        // Reported to the caller, but not left running for the tests that follow.
        for (const line of survivors) killQuietly(Number.parseInt(line, 10));
        await rm(prefix, { recursive: true, force: true });
        await rm(certDir, { recursive: true, force: true });
        return { code, survivors };
      })();
      return stopped;
    },
  };
}

/** What `worker_processes auto` starts: nginx counts the online processors. */
const workerCount = Number(execFileSync('getconf', ['_NPROCESSORS_ONLN'], { encoding: 'utf8' }).trim());

/** A worker of a previous generation: it has closed its listening sockets and only finishes. */
function isShuttingDown(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('shutting down');
  } catch {
    return true; // exiting now
  }
}

async function distinctFreePorts(count: 3): Promise<[number, number, number]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  const [a = 0, b = 0, c = 0] = ports;
  return [a, b, c];
}

/** Pids whose parent is `pid` (nginx's workers and cache processes). */
export function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/**
 * nginx processes of a run still alive: any process whose command line names the prefix (the
 * master, `nginx -t`), and any of `pids` still running nginx (workers show no prefix). Zombies count
 * as gone: they serve nothing and only wait to be reaped.
 */
export function nginxSurvivors(prefix: string, pids: readonly number[]): string[] {
  const found = new Set<string>(nginxProcessesUnder(prefix));
  for (const pid of pids) {
    const stat = `/proc/${pid}/stat`;
    if (!existsSync(stat)) continue;
    try {
      const state = readFileSync(stat, 'utf8')
        .replace(/^.*\) /s, '')
        .charAt(0);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (state !== 'Z' && cmdline.startsWith('nginx')) found.add(`${pid} ${cmdline}`);
    } catch {
      // exited meanwhile
    }
  }
  return [...found];
}

function killQuietly(pid: number): void {
  try {
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** Which pod answered, from a backend's JSON echo; `closed`, or the status code, otherwise. */
export function answeredBy(response: Response): string {
  if (response.closed) return 'closed';
  if (response.status !== 200) return String(response.status);
  return response.json<{ pod: string }>().pod;
}

/** Polls `request` until `accept` holds for `streak` answers in a row; returns the last answers. */
export async function waitForAnswers(
  what: string,
  port: number,
  options: RequestOptions,
  accept: (answer: string) => boolean,
  streak = 1,
  timeoutMs = 20_000,
): Promise<string[]> {
  let run: string[] = [];
  let last = '';
  try {
    await waitFor(
      what,
      async () => {
        last = answeredBy(await request(port, options));
        run = accept(last) ? [...run, last] : [];
        return run.length >= streak;
      },
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message} (last answer: ${last})`);
  }
  return run;
}

export interface RequestLoop {
  /** Stops the loop and returns every answer it got (see `answeredBy`). */
  stop(): Promise<string[]>;
}

/** Sends `options` every `everyMs` until stopped, one request at a time. */
export function keepRequesting(port: number, options: RequestOptions, everyMs = 50): RequestLoop {
  const answers: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        answers.push(answeredBy(await request(port, options)));
      } catch (error) {
        answers.push(`error: ${(error as Error).message}`);
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return answers;
    },
  };
}
