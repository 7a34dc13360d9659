// wrk (Debian's /usr/bin/wrk) against nginx on loopback, and what it printed, parsed.
import { spawn } from 'node:child_process';
import { summarize } from './stats.js';

export interface WrkOptions {
  port: number;
  host: string;
  path?: string;
  headers?: Record<string, string>;
  seconds: number;
  connections: number;
  threads?: number;
  /** CPUs to run wrk on (taskset's list form: `0`, `0-2`); anywhere when absent. */
  cpus?: string;
}

export interface WrkResult {
  requests: number;
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Responses with status ≥ 400 (wrk's "Non-2xx or 3xx responses"). */
  non2xx: number;
  /** Socket errors: connect, read (a connection closed or reset under a request), write, timeout. */
  errors: { connect: number; read: number; write: number; timeout: number };
  output: string;
}

export function wrkBin(): string {
  return process.env.WRK_BIN ?? 'wrk';
}

/** Runs wrk to the end (bounded by its duration plus a margin) and parses its report. */
export function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${options.threads ?? 1}`,
    `-c${options.connections}`,
    `-d${Math.max(1, Math.round(options.seconds))}s`, // whole seconds only
    '--latency',
    '-H',
    `Host: ${options.host}`,
  ];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(`http://127.0.0.1:${options.port}${options.path ?? '/'}`);
  return new Promise((resolve, reject) => {
    const [command, commandArgs] =
      options.cpus === undefined
        ? [wrkBin(), args]
        : ['taskset', ['--cpu-list', options.cpus, wrkBin(), ...args]];
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk: string) => {
      output += chunk;
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), (options.seconds + 30) * 1000);
    child.once('error', (error) => {
      clearTimeout(guard);
      reject(new Error(`cannot run ${command}: ${error.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(guard);
      if (code !== 0) {
        reject(new Error(`wrk exited with ${code}: ${output}`));
        return;
      }
      try {
        resolve(parseWrk(output));
      } catch (error) {
        reject(error);
      }
    });
  });
}

const UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function durationMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!match) throw new Error(`wrk: cannot read duration ${JSON.stringify(text)}`);
  return Number(match[1]) * (UNITS_MS[match[2] ?? 'ms'] ?? 1);
}

export function parseWrk(output: string): WrkResult {
  const number = (pattern: RegExp, fallback?: number): number => {
    const match = pattern.exec(output);
    if (!match?.[1]) {
      if (fallback !== undefined) return fallback;
      throw new Error(`wrk: ${pattern} not found in:\n${output}`);
    }
    return Number(match[1]);
  };
  const latency = (percent: number): number => {
    const match = new RegExp(`^\\s+${percent}%\\s+(\\S+)\\s*$`, 'm').exec(output);
    return match?.[1] ? durationMs(match[1]) : Number.NaN;
  };
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return {
    requests: number(/(\d+) requests in /),
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
    latencyP50Ms: latency(50),
    latencyP99Ms: latency(99),
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/, 0),
    errors: {
      connect: Number(errors?.[1] ?? 0),
      read: Number(errors?.[2] ?? 0),
      write: Number(errors?.[3] ?? 0),
      timeout: Number(errors?.[4] ?? 0),
    },
    output,
  };
}

export function errorCount(result: WrkResult): number {
  const { connect, read, write, timeout } = result.errors;
  return connect + read + write + timeout;
}

/**
 * Several runs of the same load as one: counts add up, req/s over the whole time, p50 the median of
 * the runs' p50s, p99 the worst run's (wrk reports percentiles per run only).
 */
export function mergeWrk(results: readonly WrkResult[], seconds: number): WrkResult {
  const sum = (pick: (r: WrkResult) => number): number => results.reduce((total, r) => total + pick(r), 0);
  const requests = sum((r) => r.requests);
  return {
    requests,
    requestsPerSecond: seconds > 0 ? requests / seconds : Number.NaN,
    latencyP50Ms: summarize(results.map((r) => r.latencyP50Ms)).median,
    latencyP99Ms: summarize(results.map((r) => r.latencyP99Ms)).max,
    non2xx: sum((r) => r.non2xx),
    errors: {
      connect: sum((r) => r.errors.connect),
      read: sum((r) => r.errors.read),
      write: sum((r) => r.errors.write),
      timeout: sum((r) => r.errors.timeout),
    },
    output: results.map((r) => r.output).join('\n'),
  };
}
