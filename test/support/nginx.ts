// The real nginx for tests: `nginx -t` on a rendered configuration, and an nginx running one in a
// private prefix (pid and temp files under it; render with prefixRelativePaths: true), reloaded the
// way the controller does it and stopped without leaving processes behind.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listWorkers, waitForOldWorkers } from '../../src/nginx/workers.js';
import { configVersion } from '../../src/render.js';

/** `NGINX_BIN`, else Debian's /usr/sbin/nginx, else `nginx` on the PATH. */
export function nginxBin(): string {
  const fromEnv = process.env.NGINX_BIN;
  if (fromEnv) return fromEnv;
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
}

/** A fresh nginx prefix with logs/ and temp/, readable by nginx's workers when the tests run as root. */
export async function makePrefix(): Promise<string> {
  const prefix = await mkdtemp(join(tmpdir(), 'dispatcher-nginx-'));
  // As root, workers run as nobody and need to reach the temp directories under the prefix.
  await chmod(prefix, 0o755);
  await mkdir(join(prefix, 'logs'));
  await mkdir(join(prefix, 'temp'));
  return prefix;
}

export interface ConfigCheck {
  ok: boolean;
  /** Everything `nginx -t` printed: warnings, errors, "test is successful". */
  output: string;
}

/** `nginx -t` on `text`, in a fresh prefix that is removed afterwards. */
export async function checkConfig(text: string): Promise<ConfigCheck> {
  const prefix = await makePrefix();
  try {
    const confPath = join(prefix, 'nginx.conf');
    await writeFile(confPath, text);
    return await testConfig(prefix, confPath);
  } finally {
    await rm(prefix, { recursive: true, force: true });
  }
}

function testConfig(prefix: string, confPath: string): Promise<ConfigCheck> {
  return new Promise((resolve) => {
    execFile(nginxBin(), ['-t', '-p', `${prefix}/`, '-c', confPath], (error, stdout, stderr) => {
      resolve({ ok: error === null, output: `${stderr}${stdout}`.trim() });
    });
  });
}

export interface RunningNginx {
  prefix: string;
  confPath: string;
  /** The master process. */
  pid: number;
  /** What nginx has written to stdout/stderr so far. */
  output(): string;
  /** Writes `text` beside the live file, checks it, moves it into place, SIGHUPs the master and
   * waits until the default server answers the new config version and no old worker accepts.
   * Throws with nginx's output. */
  reload(text: string): Promise<void>;
  /** Graceful quit (SIGQUIT, then SIGTERM, then SIGKILL of master and workers); waits for the exit
   * and removes the prefix. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const OUTPUT_LIMIT = 64 * 1024;
const running = new Set<ChildProcess>();

// A test file that fails before its afterAll must not leave an nginx behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGTERM');
});

/**
 * Starts `nginx -p PREFIX -c CONF -g 'daemon off;'` on `text` as a child process and waits until its
 * default server answers this configuration's version (or, for a text without one, answers at all).
 */
export async function startNginx(text: string): Promise<RunningNginx> {
  const prefix = await makePrefix();
  const confPath = join(prefix, 'nginx.conf');
  await writeFile(confPath, text);
  const checked = await testConfig(prefix, confPath);
  if (!checked.ok) throw new Error(`nginx -t rejected the configuration:\n${checked.output}`);

  const child = spawn(nginxBin(), ['-p', `${prefix}/`, '-c', confPath, '-g', 'daemon off;'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      running.delete(child);
      resolve();
    });
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${nginxBin()}`);

  const failure = (what: string): Error => new Error(`${what}\nnginx output:\n${output || '(none)'}`);

  async function waitForVersion(configText: string, what: string): Promise<void> {
    const port = defaultServerPort(configText);
    const version = configVersion(configText);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (hasExited) throw failure(`nginx exited while waiting for ${what}`);
      const answer = await probe(port);
      if (answer && (version === undefined || (answer.status === 200 && answer.body === version))) return;
      if (Date.now() > deadline) {
        throw failure(`nginx did not serve ${what} on port ${port} within ${READY_TIMEOUT_MS} ms`);
      }
      await sleep(50);
    }
  }

  async function stop(): Promise<void> {
    if (hasExited) return;
    const workers = childrenOf(pid as number);
    child.kill('SIGQUIT');
    if (await exitsWithin(exited, STOP_GRACE_MS)) return;
    child.kill('SIGTERM');
    if (await exitsWithin(exited, STOP_GRACE_MS)) return;
    for (const worker of [...workers, ...childrenOf(pid as number)]) killQuietly(worker);
    child.kill('SIGKILL');
    await exited;
  }

  try {
    await waitForVersion(text, 'its first configuration');
  } catch (error) {
    await stop();
    await rm(prefix, { recursive: true, force: true });
    throw error;
  }

  return {
    prefix,
    confPath,
    pid,
    output: () => output,
    async reload(next: string): Promise<void> {
      if (configVersion(next) === undefined)
        throw new Error('reload needs a rendered configuration (no version line)');
      const candidate = `${confPath}.new`;
      await writeFile(candidate, next);
      const result = await testConfig(prefix, candidate);
      if (!result.ok) throw new Error(`nginx -t rejected the configuration:\n${result.output}`);
      await rename(candidate, confPath);
      if (hasExited) throw failure('nginx is not running');
      const oldWorkers = await listWorkers(pid as number);
      child.kill('SIGHUP');
      await waitForVersion(next, 'the reloaded configuration');
      // The master lets its old workers accept for 100 ms more: until they stop, a request may
      // still be answered with the previous configuration.
      if (!(await waitForOldWorkers(pid as number, oldWorkers, READY_TIMEOUT_MS)))
        throw failure('the old workers did not stop accepting');
    },
    async stop(): Promise<void> {
      await stop();
      await rm(prefix, { recursive: true, force: true });
    },
  };
}

/** A TCP port free on every interface at the time of the call. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function defaultServerPort(text: string): number {
  const match = /^\s*listen\s+(\d+)\s+default_server\s*;/m.exec(text);
  if (!match?.[1]) throw new Error('the configuration has no `listen PORT default_server;`');
  return Number(match[1]);
}

/** GET /_dispatcher/config-version on a new connection; null while nothing answers. */
function probe(port: number): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/_dispatcher/config-version',
        headers: { Host: '_dispatcher-internal' },
        agent: false,
        timeout: 2_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve(null));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([exited.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

/** The worker processes of an nginx master (from /proc), so that a forced stop leaves none behind. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return children;
  }
  for (const entry of entries) {
    try {
      // Fields after the command name, which is in parentheses and may contain spaces: state, ppid.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return children;
}

/** Whether process `pid` is still there (a zombie counts: it has not been reaped yet). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Processes whose command line names `prefix` (an nginx master, `nginx -t`), as `pid command` lines. */
export function nginxProcessesUnder(prefix: string): string[] {
  try {
    return execFileSync('pgrep', ['-a', '-f', prefix], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches; it never lists itself
  }
}
