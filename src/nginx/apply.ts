// Keeps a real nginx serving the last good configuration: write beside the live file, `nginx -t`,
// atomic rename, SIGHUP to the master, the old workers told to quit as soon as new ones serve, then
// confirm that only the new version answers.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { configVersion } from '../render.js';
import type { TlsFile } from '../types.js';
import { removeStaleTlsFiles, writeTlsFiles } from './certs.js';
import { waitForVersion } from './confirm.js';
import { type NginxPaths, preparePrefix, type RunningNginx, runNginx, testConfig } from './process.js';
import { listWorkers, retireOldWorkers, waitForOldWorkers } from './workers.js';

export type ApplyOutcome =
  | { kind: 'unchanged' }
  /** `testMs` is 0 when a check made while the batch window was still open covered this text. */
  | { kind: 'reloaded'; version: string; testMs: number; reloadMs: number; prechecked: boolean }
  | { kind: 'rejected'; message: string }
  | { kind: 'unconfirmed'; version: string; message: string };

export interface NginxApplierOptions {
  paths: NginxPaths;
  /** PORT: where the default server answers the version location. */
  port: number;
  sslCertDir: string;
  confirmTimeoutMs: number;
  onOutput: (line: string) => void;
}

export interface NginxApplier {
  /** Writes and starts nginx with `text` (the empty configuration) and waits until it serves it. */
  start(text: string): Promise<RunningNginx>;
  apply(text: string, tlsFiles: readonly TlsFile[]): Promise<ApplyOutcome>;
  /**
   * Writes `text` beside the live file and runs `nginx -t` on it without loading it, so that an
   * apply of the same text that follows only renames and reloads. Resolves with the check's time.
   */
  check(text: string, tlsFiles: readonly TlsFile[]): Promise<{ ok: boolean; testMs: number }>;
  /** The text nginx was last confirmed (or asked) to serve. */
  live(): string | undefined;
}

export function createNginxApplier(options: NginxApplierOptions): NginxApplier {
  const { paths } = options;
  const candidate = join(dirname(paths.conf), `.${basename(paths.conf)}.next`);
  let liveText: string | undefined;
  let master: RunningNginx | undefined;
  /** The candidate file holds this text (and its TLS files are written), checked with this result. */
  let checked: { text: string; ok: boolean; message: string; testMs: number } | undefined;
  // One operation on the candidate file and nginx at a time: a check and an apply never interleave.
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(operation: () => Promise<T>): Promise<T> => {
    const next = queue.then(operation, operation);
    queue = next.catch(() => undefined);
    return next;
  };

  async function writeCandidate(text: string): Promise<void> {
    await writeFile(candidate, text, { mode: 0o644 });
  }

  /** TLS files and candidate written, `nginx -t` run; a refused candidate is removed. */
  async function checkCandidate(text: string, tlsFiles: readonly TlsFile[]): Promise<number> {
    checked = undefined;
    await writeTlsFiles(tlsFiles);
    await writeCandidate(text);
    const testStart = performance.now();
    const result = await testConfig(paths, candidate);
    const testMs = performance.now() - testStart;
    if (!result.ok) await rm(candidate, { force: true });
    checked = { text, ok: result.ok, message: result.output, testMs };
    return testMs;
  }

  return {
    async start(text) {
      if (paths.prefix) await preparePrefix(paths.prefix);
      await mkdir(dirname(paths.conf), { recursive: true });
      await writeCandidate(text);
      const check = await testConfig(paths, candidate);
      if (!check.ok) throw new Error(`the initial configuration fails nginx -t: ${check.output}`);
      await rename(candidate, paths.conf);
      master = await runNginx(paths, options.onOutput);
      const version = configVersion(text) ?? '';
      const serving = await Promise.race([
        waitForVersion(options.port, version, options.confirmTimeoutMs),
        master.exited.then(() => false),
      ]);
      if (!serving) {
        await master.stop(1000);
        throw new Error(`nginx did not start serving on port ${options.port}`);
      }
      liveText = text;
      return master;
    },

    apply: (text, tlsFiles) => exclusive(() => applyNow(text, tlsFiles)),

    check: (text, tlsFiles) =>
      exclusive(async () => {
        if (text === liveText) return { ok: true, testMs: 0 };
        if (checked?.text === text) return { ok: checked.ok, testMs: 0 };
        const testMs = await checkCandidate(text, tlsFiles);
        return { ok: checked?.ok === true, testMs };
      }),

    live: () => liveText,
  };

  async function applyNow(text: string, tlsFiles: readonly TlsFile[]): Promise<ApplyOutcome> {
    if (text === liveText) return { kind: 'unchanged' };
    if (!master) throw new Error('nginx is not running');
    const version = configVersion(text) ?? '';
    const prechecked = checked?.text === text;
    const testMs = prechecked ? 0 : await checkCandidate(text, tlsFiles);
    const check = checked;
    checked = undefined;
    if (!check?.ok) return { kind: 'rejected', message: check?.message ?? 'not checked' };
    await rename(candidate, paths.conf);
    const oldWorkers = await listWorkers(master.pid);
    const reloadStart = performance.now();
    master.signal('SIGHUP');
    liveText = text;
    // The old workers quit as soon as a new one serves (not 100 ms later, when the master would);
    // confirmed once a new worker answers and no old worker accepts any more.
    const [served] = await Promise.all([
      waitForVersion(options.port, version, options.confirmTimeoutMs),
      // The master parses the file again before it starts workers, which takes at least as long.
      retireOldWorkers(master.pid, oldWorkers, options.confirmTimeoutMs, check.testMs),
    ]);
    const confirmed = served && (await waitForOldWorkers(master.pid, oldWorkers, options.confirmTimeoutMs));
    if (!confirmed) {
      liveText = undefined; // unknown what serves now: the next render tries again
      return {
        kind: 'unconfirmed',
        version,
        message: `nginx did not serve version ${version} within ${options.confirmTimeoutMs} ms of the reload signal`,
      };
    }
    await removeStaleTlsFiles(options.sslCertDir, tlsFiles);
    return { kind: 'reloaded', version, testMs, reloadMs: performance.now() - reloadStart, prechecked };
  }
}

/** The configuration file nginx runs now, if any (for diagnostics and tests). */
export function readLiveConfig(paths: NginxPaths): Promise<string | undefined> {
  return readFile(paths.conf, 'utf8').catch(() => undefined);
}
