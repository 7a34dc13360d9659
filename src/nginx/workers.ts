// nginx's worker processes as Linux shows them in /proc. After a reload the master starts new
// workers, waits a little, then tells the old ones to quit; until then an old worker still accepts
// connections with the old configuration. Reading their titles tells when that window is over.
import { readdir, readFile } from 'node:fs/promises';

export interface Worker {
  pid: number;
  /** The title nginx gives a worker that has stopped accepting: "... is shutting down". */
  shuttingDown: boolean;
}

async function parentOf(pid: string): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  // The command name is in parentheses and may contain spaces: fields follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[1]);
}

/** The master's children; empty where /proc cannot be read. */
export async function listWorkers(masterPid: number): Promise<Worker[]> {
  const entries = await readdir('/proc').catch(() => [] as string[]);
  const workers: Worker[] = [];
  await Promise.all(
    entries
      .filter((name) => /^\d+$/.test(name))
      .map(async (name) => {
        if ((await parentOf(name)) !== masterPid) return;
        const title = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
        workers.push({ pid: Number(name), shuttingDown: title.includes('shutting down') });
      }),
  );
  return workers;
}

/** Waits until none of `old` still accepts connections (each exited or shutting down); false on timeout. */
export async function waitForOldWorkers(
  masterPid: number,
  old: readonly Worker[],
  timeoutMs: number,
): Promise<boolean> {
  const waiting = new Set(old.filter((w) => !w.shuttingDown).map((w) => w.pid));
  const deadline = Date.now() + timeoutMs;
  while (waiting.size > 0) {
    const now = new Map((await listWorkers(masterPid)).map((w) => [w.pid, w]));
    for (const pid of waiting) {
      const worker = now.get(pid);
      if (!worker || worker.shuttingDown) waiting.delete(pid);
    }
    if (waiting.size === 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}
