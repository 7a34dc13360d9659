// Keeps a real nginx serving the last good configuration: write beside the live file, `nginx -t`,
// atomic rename, SIGHUP to the master, then confirm the workers serve the new version.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { configVersion } from '../render.js';
import type { TlsFile } from '../types.js';
import { removeStaleTlsFiles, writeTlsFiles } from './certs.js';
import { waitForVersion } from './confirm.js';
import { type NginxPaths, preparePrefix, type RunningNginx, runNginx, testConfig } from './process.js';
import { listWorkers, waitForOldWorkers } from './workers.js';

export type ApplyOutcome =
  | { kind: 'unchanged' }
  | { kind: 'reloaded'; version: string; testMs: number; reloadMs: number }
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
  /** The text nginx was last confirmed (or asked) to serve. */
  live(): string | undefined;
}

export function createNginxApplier(options: NginxApplierOptions): NginxApplier {
  const { paths } = options;
  const candidate = join(dirname(paths.conf), `.${basename(paths.conf)}.next`);
  let liveText: string | undefined;
  let master: RunningNginx | undefined;

  async function writeCandidate(text: string): Promise<void> {
    await writeFile(candidate, text, { mode: 0o644 });
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

    async apply(text, tlsFiles) {
      if (text === liveText) return { kind: 'unchanged' };
      if (!master) throw new Error('nginx is not running');
      const version = configVersion(text) ?? '';
      await writeTlsFiles(tlsFiles);
      await writeCandidate(text);
      const testStart = performance.now();
      const check = await testConfig(paths, candidate);
      const testMs = performance.now() - testStart;
      if (!check.ok) {
        await rm(candidate, { force: true });
        return { kind: 'rejected', message: check.output };
      }
      await rename(candidate, paths.conf);
      const oldWorkers = await listWorkers(master.pid);
      const reloadStart = performance.now();
      master.signal('SIGHUP');
      liveText = text;
      // Served by a new worker, and no old worker accepts any more: only the new version answers.
      const confirmed =
        (await waitForVersion(options.port, version, options.confirmTimeoutMs)) &&
        (await waitForOldWorkers(master.pid, oldWorkers, options.confirmTimeoutMs));
      if (!confirmed) {
        liveText = undefined; // unknown what serves now: the next render tries again
        return {
          kind: 'unconfirmed',
          version,
          message: `nginx did not serve version ${version} within ${options.confirmTimeoutMs} ms of the reload signal`,
        };
      }
      await removeStaleTlsFiles(options.sslCertDir, tlsFiles);
      return { kind: 'reloaded', version, testMs, reloadMs: performance.now() - reloadStart };
    },

    live: () => liveText,
  };
}

/** The configuration file nginx runs now, if any (for diagnostics and tests). */
export function readLiveConfig(paths: NginxPaths): Promise<string | undefined> {
  return readFile(paths.conf, 'utf8').catch(() => undefined);
}
