// nginx's worker processes as Linux shows them in /proc. After a reload the master starts new
// workers, sleeps 100 ms, then tells the old ones to quit; until then an old worker still accepts
// connections with the old configuration (the kernel even prefers it: it waited on the listening
// socket first). dispatcher tells the old workers to quit itself as soon as a new one runs, and reads
// their titles to know when no old worker accepts any more.
import { readdir, readFile } from 'node:fs/promises';

export interface Worker {
  pid: number;
  /** Titled "worker process" (not a cache manager or loader, not a child still starting). */
  serving: boolean;
  /** The title nginx gives a worker that has stopped accepting: "... is shutting down". */
  shuttingDown: boolean;
}

const POLL_MS = 5;
/** After the new workers serve, the old ones quit within milliseconds: polling cost is off the reload. */
const CONFIRM_POLL_MS = 10;

async function parentOf(pid: string): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  // The command name is in parentheses and may contain spaces: fields follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[1]);
}

/**
 * The children of `pid`: one read of /proc/<pid>/task/<pid>/children where the kernel has it
 * (CONFIG_PROC_CHILDREN), else a scan of every process's parent.
 */
async function childrenOf(pid: number): Promise<number[]> {
  const listed = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => undefined);
  if (listed !== undefined) return listed.split(' ').filter(Boolean).map(Number);
  const entries = await readdir('/proc').catch(() => [] as string[]);
  const parents = await Promise.all(
    entries.filter((name) => /^\d+$/.test(name)).map(async (name) => [name, await parentOf(name)] as const),
  );
  return parents.filter(([, parent]) => parent === pid).map(([name]) => Number(name));
}

/** The master's children; empty where /proc cannot be read. */
export async function listWorkers(masterPid: number): Promise<Worker[]> {
  const workers = await Promise.all(
    (await childrenOf(masterPid)).map(async (pid) => {
      const title = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
      if (title === undefined) return undefined; // exited meanwhile
      return {
        pid,
        serving: title.includes('worker process'),
        shuttingDown: title.includes('shutting down'),
      };
    }),
  );
  return workers.filter((worker): worker is Worker => worker !== undefined);
}

/**
 * The workers of `before` (listed ahead of a reload) to tell to quit, given the master's children
 * `now`: those still accepting, once a worker that was not there before has started serving (nginx
 * titles a worker only after it has joined the listening sockets). Empty until then.
 */
export function workersToRetire(before: readonly Worker[], now: readonly Worker[]): number[] {
  const old = new Set(before.filter((w) => w.serving).map((w) => w.pid));
  const replaced = now.some((w) => w.serving && !w.shuttingDown && !old.has(w.pid));
  return replaced ? stillAccepting(old, now) : [];
}

/** The pids of `old` that are among the master's children `now` and not shutting down. */
function stillAccepting(old: ReadonlySet<number>, now: readonly Worker[]): number[] {
  return now.filter((w) => old.has(w.pid) && !w.shuttingDown).map((w) => w.pid);
}

/**
 * After a reload signal: as soon as a new worker serves, sends the old workers the graceful quit
 * their master would send 100 ms later (they finish the requests they hold, as they would then).
 * Stops early when the master got there first; on timeout (the master kept its old workers: the
 * reload failed) it sends nothing. Resolves with the pids told to quit.
 *
 * It looks only after `notBeforeMs` (no new worker runs before the master has parsed the file), then
 * at intervals of a tenth of the time since the signal: on our test machines, reading /proc every
 * 5 ms through a 1.5 s reload made the reload itself a fifth slower.
 */
export async function retireOldWorkers(
  masterPid: number,
  before: readonly Worker[],
  timeoutMs: number,
  notBeforeMs = 0,
): Promise<number[]> {
  const old = new Set(before.filter((w) => w.serving && !w.shuttingDown).map((w) => w.pid));
  if (old.size === 0) return [];
  const began = Date.now();
  const deadline = began + timeoutMs;
  await new Promise((resolve) => setTimeout(resolve, notBeforeMs));
  while (Date.now() <= deadline) {
    const now = await listWorkers(masterPid);
    if (stillAccepting(old, now).length === 0) return [];
    const retire = workersToRetire(before, now);
    if (retire.length > 0) {
      for (const pid of retire) {
        try {
          process.kill(pid, 'SIGQUIT');
        } catch {
          // exited meanwhile, or not ours to signal: the master's own quit follows
        }
      }
      return retire;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(POLL_MS, (Date.now() - began) / 10)));
  }
  return [];
}

export type NewMasterOutcome =
  | { kind: 'serving' }
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'timeout' };

/**
 * After a new master was started on dispatcher's listening sockets: `serving` as soon as one of its
 * workers serves (nginx titles a worker only after it has joined the listening sockets), `exited`
 * when the master exits first, `timeout` when `timeoutMs` passes. It looks from the start, every
 * 5 ms: until the old master quits, the kernel hands new connections to the old workers (they
 * waited on the socket first), so each look it misses delays the change; and while the new master
 * parses, a look reads one small file (its list of children), nothing of the master's memory.
 */
export async function waitForServingWorker(
  masterPid: number,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  timeoutMs: number,
): Promise<NewMasterOutcome> {
  let exit: NewMasterOutcome | undefined;
  void exited.then((e) => {
    exit = { kind: 'exited', ...e };
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() <= deadline) {
    const serving = (await listWorkers(masterPid)).some((w) => w.serving && !w.shuttingDown);
    if (exit) return exit;
    if (serving) return { kind: 'serving' };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return exit ?? { kind: 'timeout' };
}

/** Waits until none of `old` still accepts connections (each exited or shutting down); false on timeout. */
export async function waitForOldWorkers(
  masterPid: number,
  old: readonly Worker[],
  timeoutMs: number,
): Promise<boolean> {
  const waiting = new Set(old.filter((w) => !w.shuttingDown).map((w) => w.pid));
  const deadline = Date.now() + timeoutMs;
  while (waiting.size > 0 && stillAccepting(waiting, await listWorkers(masterPid)).length > 0) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, CONFIRM_POLL_MS));
  }
  return true;
}
