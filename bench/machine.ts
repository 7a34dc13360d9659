// What the machine is, printed at the start of every run and kept in the JSON, so that a slow run
// can be told from a slow controller and runs on different machines can be compared.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { nginxBin } from '../test/support/nginx.js';
import { wrkBin } from './wrk.js';

export interface MachineFacts {
  cpus: number;
  cpuModel: string;
  kernel: string;
  memoryMb: number;
  loadAtStart: number[];
  nginx: string;
  wrk: string;
  freshMemory: FreshMemoryCost;
}

export interface FreshMemoryCost {
  /** Median time to write `megabytes` of memory never touched before, over `runs`. */
  ms: number;
  megabytes: number;
  runs: number;
  /** The same per 4 KB page: roughly the cost of one page fault plus writing the page. */
  usPerPage: number;
}

export function machineFacts(): MachineFacts {
  // nginx -v and wrk --version print to stderr (wrk exits 1).
  const version = (bin: string, args: string[]): string => {
    const result = spawnSync(bin, args, { encoding: 'utf8', timeout: 10_000 });
    return `${result.stderr ?? ''}${result.stdout ?? ''}`.trim().split('\n')[0] ?? 'unknown';
  };
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    memoryMb: Math.round(totalmem() / 1024 / 1024),
    loadAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    nginx: version(nginxBin(), ['-v']),
    wrk: version(wrkBin(), ['--version']),
    freshMemory: freshMemoryCost(),
  };
}

/**
 * How dear new memory is here. An nginx reload writes its whole parsed configuration into memory
 * the master has not touched or shares copy-on-write with its workers (some 37,000 page faults at
 * 1000×10), so figure 4's reload times, and figure 2 through them, follow this figure from machine
 * to machine more than anything dispatcher does: on common hardware it is around 1 µs per page.
 */
export function freshMemoryCost(megabytes = 256, runs = 3): FreshMemoryCost {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const began = performance.now();
    // Large enough for malloc to map it fresh from the kernel; fill touches every page.
    Buffer.allocUnsafeSlow(megabytes * 1024 * 1024).fill(1);
    times.push(performance.now() - began);
  }
  const ms = times.sort((a, b) => a - b)[Math.floor(runs / 2)] ?? Number.NaN;
  const pages = (megabytes * 1024) / 4;
  return { ms: Math.round(ms), megabytes, runs, usPerPage: Math.round((ms * 1000 * 100) / pages) / 100 };
}
