// Keeps a real nginx serving the last good configuration: write beside the live file, `nginx -t`,
// atomic rename, then one of two ways to load it, and confirm that only the new version answers.
// - handover (when dispatcher holds the listening sockets and the text listens on nothing else): a
//   new nginx master starts on those sockets, parses the file in fresh memory, and once one of its
//   workers serves, the old master is told to quit gracefully. A new master that cannot serve is
//   stopped and the old one never stops serving.
// - signal: SIGHUP to the one master, which parses the file again in memory it shares copy-on-write
//   with its workers (about twice as slow at 2,000 upstreams); its old workers are told to quit as
//   soon as new ones serve.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { configVersion } from '../render.js';
import type { TlsFile } from '../types.js';
import { removeStaleTlsFiles, writeTlsFiles } from './certs.js';
import { listensOnlyOn, pidFile } from './conf-facts.js';
import { waitForVersion } from './confirm.js';
import type { HeldSockets } from './listeners.js';
import { type NginxPaths, preparePrefix, type RunningNginx, runNginx, testConfig } from './process.js';
import { listWorkers, retireOldWorkers, waitForOldWorkers, waitForServingWorker } from './workers.js';

export type ReloadMethod = 'handover' | 'signal';

export type ApplyOutcome =
  | { kind: 'unchanged' }
  /** `testMs` is 0 when a check made while the batch window was still open covered this text. */
  | {
      kind: 'reloaded';
      version: string;
      testMs: number;
      reloadMs: number;
      prechecked: boolean;
      method: ReloadMethod;
      /** The master serving now. */
      pid: number;
    }
  | { kind: 'rejected'; message: string }
  | { kind: 'unconfirmed'; version: string; message: string };

export interface NginxApplierOptions {
  paths: NginxPaths;
  /** PORT: where the default server answers the version location. */
  port: number;
  sslCertDir: string;
  confirmTimeoutMs: number;
  onOutput: (line: string) => void;
  /**
   * Listening sockets held for nginx (handed over to each new master, closed by stop()); without
   * them every configuration is loaded by signal.
   */
  sockets?: HeldSockets;
}

/** The nginx serving now, across handovers: one master at a time serves, older ones finish. */
export interface ServingNginx {
  /** The master serving now (a new one after every handover). */
  readonly pid: number;
  /** Resolves when the serving master exits without dispatcher having retired it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Quits every master still running, serving or finishing; then closes the held sockets. */
  stop(graceMs?: number): Promise<void>;
}

export interface NginxApplier {
  /** Writes and starts nginx with `text` (the empty configuration) and waits until it serves it. */
  start(text: string): Promise<ServingNginx>;
  apply(text: string, tlsFiles: readonly TlsFile[]): Promise<ApplyOutcome>;
  /**
   * Writes `text` beside the live file and runs `nginx -t` on it without loading it, so that an
   * apply of the same text that follows only renames and reloads. Resolves with the check's time.
   */
  check(text: string, tlsFiles: readonly TlsFile[]): Promise<{ ok: boolean; testMs: number }>;
  /** The text nginx was last confirmed (or asked) to serve. */
  live(): string | undefined;
}

type Exit = { code: number | null; signal: NodeJS.Signals | null };

export function createNginxApplier(options: NginxApplierOptions): NginxApplier {
  const { paths, sockets } = options;
  const held = new Set(sockets?.ports ?? []);
  const candidate = join(dirname(paths.conf), `.${basename(paths.conf)}.next`);
  let liveText: string | undefined;
  /** What nginx needs to know of `liveText` (read once per text: it is over a megabyte at scale). */
  let liveFacts: TextFacts | undefined;
  /** The master serving `liveText`; masters being retired finish their requests in `retiring`. */
  let serving: RunningNginx | undefined;
  const retiring = new Set<RunningNginx>();
  /** A master started for a handover that does not serve yet. */
  let starting: RunningNginx | undefined;
  let stopping = false;
  let servingExited: (exit: Exit) => void = () => undefined;
  const exited = new Promise<Exit>((resolve) => {
    servingExited = resolve;
  });
  /** The candidate file holds this text (and its TLS files are written), checked with this result. */
  let checked: { text: string; facts: TextFacts; ok: boolean; message: string; testMs: number } | undefined;
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
    const testing = testConfig(paths, candidate);
    const facts = factsOf(text, held); // while nginx -t runs
    const result = await testing;
    const testMs = performance.now() - testStart;
    if (!result.ok) await rm(candidate, { force: true });
    checked = { text, facts, ok: result.ok, message: result.output, testMs };
    return testMs;
  }

  /**
   * A master leaving nginx's pid file deletes it, though a newer master wrote it: the file names the
   * serving master again (dispatcher signals masters by the pids it started; operators use the file).
   */
  async function rewritePidFile(): Promise<void> {
    const path = liveFacts?.pidFile;
    if (path === undefined || serving === undefined) return;
    // A relative path is nginx's prefix's: known only when NGINX_PREFIX sets it.
    if (!isAbsolute(path) && paths.prefix === undefined) return;
    const full = isAbsolute(path) ? path : join(paths.prefix ?? '', path);
    await writeFile(full, `${serving.pid}\n`).catch(() => undefined);
  }

  function watch(master: RunningNginx): void {
    void master.exited.then((exit) => {
      if (stopping) return;
      if (master === serving) {
        servingExited(exit);
        return;
      }
      if (retiring.delete(master)) void rewritePidFile();
    });
  }

  async function launch(): Promise<RunningNginx> {
    const master = await runNginx(paths, options.onOutput, sockets?.fds ?? []);
    watch(master);
    return master;
  }

  const servingNginx: ServingNginx = {
    get pid() {
      return serving?.pid ?? 0;
    },
    exited,
    async stop(graceMs) {
      stopping = true;
      const masters = [serving, starting, ...retiring].filter((m): m is RunningNginx => m !== undefined);
      await Promise.all(masters.map((m) => m.stop(graceMs)));
      sockets?.close();
    },
  };

  return {
    async start(text) {
      if (paths.prefix) await preparePrefix(paths.prefix);
      await mkdir(dirname(paths.conf), { recursive: true });
      await writeCandidate(text);
      const check = await testConfig(paths, candidate);
      if (!check.ok) throw new Error(`the initial configuration fails nginx -t: ${check.output}`);
      await rename(candidate, paths.conf);
      const master = await launch();
      serving = master;
      const version = configVersion(text) ?? '';
      const served = await Promise.race([
        waitForVersion(options.port, version, options.confirmTimeoutMs),
        master.exited.then(() => false),
      ]);
      if (!served) {
        await servingNginx.stop(1000);
        throw new Error(`nginx did not start serving on port ${options.port}`);
      }
      liveText = text;
      liveFacts = factsOf(text, held);
      return servingNginx;
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

  /** Handover needs both the running and the new configuration to listen on held sockets only. */
  function methodFor(facts: TextFacts): ReloadMethod {
    return sockets && liveFacts?.onHeldSockets && facts.onHeldSockets ? 'handover' : 'signal';
  }

  async function applyNow(text: string, tlsFiles: readonly TlsFile[]): Promise<ApplyOutcome> {
    if (text === liveText) return { kind: 'unchanged' };
    if (!serving) throw new Error('nginx is not running');
    const version = configVersion(text) ?? '';
    const prechecked = checked?.text === text;
    const testMs = prechecked ? 0 : await checkCandidate(text, tlsFiles);
    const check = checked;
    checked = undefined;
    if (!check?.ok) return { kind: 'rejected', message: check?.message ?? 'not checked' };
    const method = methodFor(check.facts);
    await rename(candidate, paths.conf);
    const reloadStart = performance.now();
    const loaded =
      method === 'handover' ? await handOver(text, version) : await signalReload(text, version, check.testMs);
    if (loaded.kind !== 'reloaded') return loaded;
    liveFacts = check.facts;
    await removeStaleTlsFiles(options.sslCertDir, tlsFiles);
    const reloadMs = performance.now() - reloadStart;
    return { kind: 'reloaded', version, testMs, reloadMs, prechecked, method, pid: servingNginx.pid };
  }

  type Loaded = { kind: 'reloaded' } | Extract<ApplyOutcome, { kind: 'rejected' | 'unconfirmed' }>;

  function unconfirmed(version: string): Loaded {
    liveText = undefined; // unknown what serves now: the next render tries again
    liveFacts = undefined;
    return {
      kind: 'unconfirmed',
      version,
      message: `nginx did not serve version ${version} within ${options.confirmTimeoutMs} ms of the reload`,
    };
  }

  async function signalReload(text: string, version: string, parseMs: number): Promise<Loaded> {
    const master = serving as RunningNginx;
    const oldWorkers = await listWorkers(master.pid);
    master.signal('SIGHUP');
    liveText = text;
    // The old workers quit as soon as a new one serves (not 100 ms later, when the master would);
    // confirmed once a new worker answers and no old worker accepts any more.
    const [served] = await Promise.all([
      waitForVersion(options.port, version, options.confirmTimeoutMs),
      // The master parses the file again before it starts workers, which takes at least as long.
      retireOldWorkers(master.pid, oldWorkers, options.confirmTimeoutMs, parseMs),
    ]);
    const confirmed = served && (await waitForOldWorkers(master.pid, oldWorkers, options.confirmTimeoutMs));
    return confirmed ? { kind: 'reloaded' } : unconfirmed(version);
  }

  async function handOver(text: string, version: string): Promise<Loaded> {
    const old = serving as RunningNginx;
    const oldWorkers = await listWorkers(old.pid);
    const previous = liveText as string;
    let next: RunningNginx;
    try {
      next = await launch();
    } catch (error) {
      await restoreLiveFile(previous);
      return { kind: 'rejected', message: `cannot start nginx: ${(error as Error).message}` };
    }
    starting = next;
    const outcome = await waitForServingWorker(next.pid, next.exited, options.confirmTimeoutMs);
    starting = undefined;
    if (outcome.kind !== 'serving') {
      // The previous master never stopped: it keeps serving the previous configuration.
      const why =
        outcome.kind === 'exited'
          ? `exited (${outcome.signal ?? `code ${outcome.code}`}) before serving`
          : `did not serve within ${options.confirmTimeoutMs} ms`;
      await next.stop(1000);
      await restoreLiveFile(previous);
      await rewritePidFile();
      return { kind: 'rejected', message: `the new nginx master ${why}; nginx said: ${next.recentOutput()}` };
    }
    serving = next;
    retiring.add(old);
    liveText = text;
    // The old master tells its workers to stop accepting at once; they finish what they hold.
    old.signal('SIGQUIT');
    const served = await waitForVersion(options.port, version, options.confirmTimeoutMs);
    const confirmed = served && (await waitForOldWorkers(old.pid, oldWorkers, options.confirmTimeoutMs));
    return confirmed ? { kind: 'reloaded' } : unconfirmed(version);
  }

  /** After a failed handover the live file holds what still serves again. */
  async function restoreLiveFile(text: string): Promise<void> {
    await writeCandidate(text);
    await rename(candidate, paths.conf);
  }
}

interface TextFacts {
  /** Every listen is on a socket dispatcher holds: a new master can take this text over. */
  onHeldSockets: boolean;
  pidFile: string | undefined;
}

function factsOf(text: string, held: ReadonlySet<number>): TextFacts {
  return { onHeldSockets: listensOnlyOn(text, held), pidFile: pidFile(text) };
}

/** The configuration file nginx runs now, if any (for diagnostics and tests). */
export function readLiveConfig(paths: NginxPaths): Promise<string | undefined> {
  return readFile(paths.conf, 'utf8').catch(() => undefined);
}
