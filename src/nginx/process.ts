// The nginx binary as dispatcher drives it: test a file, run the master in the foreground, signal
// it, ask what it was built with. Nothing here decides what to serve.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface NginxPaths {
  bin: string;
  conf: string;
  /** nginx's -p; relative paths of the configuration resolve against it. */
  prefix?: string;
}

export interface NginxCheck {
  ok: boolean;
  /** nginx's own words (stderr of `nginx -t`), trimmed. */
  output: string;
}

export interface RunningNginx {
  pid: number;
  /** nginx's last lines of output (at most 20), for a report of why it stopped. */
  recentOutput(): string;
  /** Resolves when the master exits, for whatever reason. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  signal(sig: NodeJS.Signals): void;
  /** Graceful quit (SIGQUIT), then SIGTERM after `graceMs`, then SIGKILL. */
  stop(graceMs?: number): Promise<void>;
}

/** Directories nginx needs under a private prefix (logs, temp paths) before it can start. */
export const PREFIX_DIRS = [
  'logs',
  'temp/client_body',
  'temp/proxy',
  'temp/fastcgi',
  'temp/uwsgi',
  'temp/scgi',
] as const;

export async function preparePrefix(prefix: string): Promise<void> {
  await Promise.all(PREFIX_DIRS.map((dir) => mkdir(join(prefix, dir), { recursive: true })));
}

/**
 * The environment nginx runs with: dispatcher's own (GLIBC_TUNABLES included, as the operator set
 * it), without NGINX, which lists the descriptors nginx takes over as listening sockets and which
 * only runNginx sets. glibc's malloc is left on 4 KB pages: on our test machines transparent huge
 * pages (`glibc.malloc.hugetlb=1`) made `nginx -t` and a new master's parse at 2,000 upstreams 2–2.5x
 * slower whenever the memory had been handed back to the hypervisor since its last use (0.34 s
 * against 0.13 s with a load every 2.5 s), and gained 10–20% only when it had not.
 */
export function nginxEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NGINX: _inheritedSockets, ...rest } = env;
  return rest;
}

/** Descriptors a master gets as its listening sockets: they become its fds 3, 4, ... */
function inheritedSockets(fds: readonly number[]): { stdio: number[]; env: NodeJS.ProcessEnv } {
  if (fds.length === 0) return { stdio: [], env: {} };
  return { stdio: [...fds], env: { NGINX: fds.map((_, i) => `${3 + i};`).join('') } };
}

const RECENT_LINES = 20;

/**
 * The command line of both `nginx -t` and the master: the check must read the file exactly as the
 * master will, `-g` directives included (a configuration with `daemon off;` of its own passes a
 * check without them, and the master then refuses to start).
 */
function baseArgs(paths: NginxPaths, conf: string): string[] {
  return [...(paths.prefix ? ['-p', paths.prefix] : []), '-c', conf, '-g', 'daemon off;'];
}

/** `nginx -t` on `file` (the candidate beside the live configuration). */
export function testConfig(paths: NginxPaths, file: string): Promise<NginxCheck> {
  return new Promise((resolve) => {
    execFile(
      paths.bin,
      [...baseArgs(paths, file), '-t', '-q'],
      { timeout: 120_000, env: nginxEnvironment(process.env) },
      (error, stdout, stderr) => {
        const output = `${stderr}${stdout}`.trim();
        resolve({ ok: error === null, output: output || (error ? error.message : '') });
      },
    );
  });
}

/** Whether the binary was built with nginx_upstream_check_module (from `nginx -V`). */
export function hasUpstreamCheckModule(bin: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['-V'], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`cannot run ${bin} -V: ${error.message}`));
      else resolve(/upstream_check|nginx_upstream_check_module/.test(`${stdout}${stderr}`));
    });
  });
}

/**
 * Starts the master in the foreground (`daemon off`) so that its pid is ours to signal and its
 * death is ours to notice. `onOutput` receives nginx's stderr lines (its error log goes there).
 * With `sockets`, the master listens on those descriptors (held by dispatcher) instead of opening
 * its own for the same addresses.
 */
export function runNginx(
  paths: NginxPaths,
  onOutput: (line: string) => void,
  sockets: readonly number[] = [],
): Promise<RunningNginx> {
  return new Promise((resolve, reject) => {
    const inherited = inheritedSockets(sockets);
    // Its own process group: workers outlive a master that is killed (they are reparented and keep
    // listening), so the whole group is ended when the master exits. Signals meant for the
    // controller (a terminal's Ctrl-C) no longer reach nginx directly either: it quits gracefully.
    const child: ChildProcess = spawn(paths.bin, baseArgs(paths, paths.conf), {
      stdio: ['ignore', 'pipe', 'pipe', ...inherited.stdio],
      detached: true,
      env: { ...nginxEnvironment(process.env), ...inherited.env },
    });
    const recent: string[] = [];
    const forward = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        recent.push(line.trim());
        if (recent.length > RECENT_LINES) recent.shift();
        onOutput(line.trim());
      }
    };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    // If dispatcher itself exits without stopping nginx (a crash), nginx must not stay behind.
    if (child.pid !== undefined) runningGroups.add(child.pid);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
      child.once('exit', (code, signal) => {
        if (child.pid !== undefined) {
          runningGroups.delete(child.pid);
          killGroup(child.pid);
        }
        done({ code, signal });
      });
    });
    child.once('error', reject);
    child.once('spawn', () => {
      const pid = child.pid;
      if (pid === undefined) {
        reject(new Error(`${paths.bin} did not start`));
        return;
      }
      let gone = false;
      void exited.then(() => {
        gone = true;
      });
      resolve({
        pid,
        recentOutput: () => recent.join('\n'),
        exited,
        signal(sig) {
          if (!gone) child.kill(sig);
        },
        async stop(graceMs = 10_000) {
          if (gone) return;
          child.kill('SIGQUIT');
          const escalate = setTimeout(() => child.kill('SIGTERM'), graceMs);
          const kill = setTimeout(() => child.kill('SIGKILL'), graceMs * 2);
          await exited;
          clearTimeout(escalate);
          clearTimeout(kill);
        },
      });
    });
  });
}

/**
 * The process groups of the masters running now (one per master: several while old ones finish
 * after a handover), ended by one listener when dispatcher exits.
 */
const runningGroups = new Set<number>();
process.once('exit', () => {
  for (const pid of runningGroups) killGroup(pid);
});

/** Ends what is left of the process group `pid` leads (nothing after a graceful quit). */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is empty
  }
}
