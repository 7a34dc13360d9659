// nginx instances the bench runs itself: the backend every pod address leads to, dispatcher's rendered
// configuration without a controller, and hand-written configurations to compare against. Started
// and reloaded through dispatcher's own src/nginx/process.ts (the same `nginx -t` and master handling).
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createNginxApplier, type ReloadMethod } from '../src/nginx/apply.js';
import { fetchServedVersion } from '../src/nginx/confirm.js';
import { holdListeningSockets } from '../src/nginx/listeners.js';
import { preparePrefix, type RunningNginx, runNginx, testConfig } from '../src/nginx/process.js';
import { configVersion } from '../src/render.js';
import { makePrefix, nginxBin } from '../test/support/nginx.js';
import { sleep } from './stats.js';

export interface BenchNginx {
  prefix: string;
  conf: string;
  master: RunningNginx;
  /** nginx's own output, last lines. */
  output(): string[];
  stop(): Promise<void>;
}

const OUTPUT_LINES = 50;

/** Masters still running: ended with their workers if the bench itself ends early. */
const running = new Set<number>();
process.once('exit', () => {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL'); // runNginx starts each master in a process group of its own
    } catch {
      // gone already
    }
  }
});

/** What every hand-written configuration here shares with dispatcher's: prefix paths, no access log. */
const COMMON_HTTP = `
  access_log off;
  server_tokens off;
  client_body_temp_path "temp/client_body";
  proxy_temp_path "temp/proxy";
  fastcgi_temp_path "temp/fastcgi";
  uwsgi_temp_path "temp/uwsgi";
  scgi_temp_path "temp/scgi";`;

/** Writes `text` into a fresh prefix, checks it and starts the master; `ready` decides when it serves. */
export async function startNginxWith(
  text: string,
  ready: () => Promise<boolean>,
  what: string,
): Promise<BenchNginx> {
  const prefix = await makePrefix();
  await preparePrefix(prefix);
  const conf = join(prefix, 'nginx.conf');
  await writeFile(conf, text);
  const paths = { bin: nginxBin(), conf, prefix };
  const check = await testConfig(paths, conf);
  if (!check.ok) throw new Error(`${what}: nginx -t failed: ${check.output}`);
  const lines: string[] = [];
  const master = await runNginx(paths, (line) => {
    lines.push(line);
    if (lines.length > OUTPUT_LINES) lines.shift();
  });
  running.add(master.pid);
  void master.exited.then(() => running.delete(master.pid));
  const deadline = Date.now() + 60_000;
  while (!(await ready())) {
    if (Date.now() > deadline) {
      await master.stop(1000);
      throw new Error(`${what}: nginx did not serve within 60 s: ${lines.join('\n')}`);
    }
    await sleep(20);
  }
  return {
    prefix,
    conf,
    master,
    output: () => [...lines],
    async stop() {
      await master.stop(5000);
      await rm(prefix, { recursive: true, force: true });
    },
  };
}

/** dispatcher's configuration served by a bare nginx: ready when it serves the text's version. */
export function startRenderedNginx(text: string, port: number, what: string): Promise<BenchNginx> {
  const version = configVersion(text);
  return startNginxWith(text, async () => (await fetchServedVersion(port)) === version, what);
}

/**
 * The backend behind every pod: one nginx listening on the web and api ports of every address
 * (0.0.0.0), answering `<address the client reached>:<port> <uri>` so that a client can tell which
 * pod address answered and which path arrived.
 */
export function startBackend(ports: { web: number; api: number }): Promise<BenchNginx> {
  const text = `worker_processes auto;
pid "nginx.pid";
error_log stderr;
events {
  worker_connections 8192;
}
http {${COMMON_HTTP}
  keepalive_requests 100000;
  server {
    listen ${ports.web} backlog=4096;
    listen ${ports.api} backlog=4096;
    location / {
      default_type text/plain;
      return 200 "$server_addr:$server_port $request_uri\\n";
    }
  }
}
`;
  return startNginxWith(
    text,
    async () => (await get(ports.web, '127.0.0.1', '/')).status === 200,
    'backend nginx',
  );
}

/** The headers SPEC §3 requires on every proxied request, as dispatcher's templates set them. */
const SPEC_HEADERS = `
      proxy_set_header Host $http_host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;`;

/** What a person writes for a keepalive proxy that passes the client's Host and address on. */
const MINIMAL_HEADERS = `
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`;

/**
 * A minimal hand-written reverse proxy, as a person would write it for a few routes with upstream
 * keepalive to the same pod addresses: what dispatcher's configuration is compared against. A route
 * with `apiKey` has the same 403 check a keyed route needs. `specHeaders` sends the headers SPEC §3
 * requires (with the WebSocket upgrade map) instead of the usual three, to tell their cost apart.
 */
export function minimalProxyConfig(options: {
  port: number;
  routes: { host: string; servers: string[]; apiKey?: string }[];
  workerProcesses?: number | 'auto';
  specHeaders?: boolean;
}): string {
  const upstreams = options.routes
    .map(
      (route, i) => `
  upstream pods_${i} {
${route.servers.map((address) => `    server ${address};`).join('\n')}
    keepalive 32;
  }`,
    )
    .join('');
  const servers = options.routes
    .map(
      (route, i) => `
  server {
    listen ${options.port};
    server_name "${route.host}";
    location / {${
      route.apiKey === undefined
        ? ''
        : `
      if ($http_x_routing_api_key != "${route.apiKey}") {
        return 403;
      }`
    }
      proxy_http_version 1.1;${options.specHeaders ? SPEC_HEADERS : MINIMAL_HEADERS}
      proxy_pass http://pods_${i};
    }
  }`,
    )
    .join('');
  const upgradeMap = options.specHeaders
    ? `
  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' '';
  }`
    : '';
  return `worker_processes ${options.workerProcesses ?? 'auto'};
pid "nginx.pid";
error_log stderr;
events {
  worker_connections 4096;
}
http {${COMMON_HTTP}${upgradeMap}${upstreams}
  server {
    listen ${options.port} default_server;
    location / {
      return 444;
    }
  }${servers}
}
`;
}

export interface Answer {
  status: number;
  body: string;
  /** When the answer arrived (performance.now()). */
  at: number;
  error?: string;
}

/** One GET over a new connection to 127.0.0.1:port. Never throws: errors come back as status 0. */
export function get(
  port: number,
  host: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { ...headers, Host: host }, agent: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, at: performance.now() }));
        res.on('error', (error) => resolve({ status: 0, body, at: performance.now(), error: error.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve({ status: 0, body: '', at: performance.now(), error: error.message }));
    req.end();
  });
}

/**
 * What the controller's apply does, timed: the text written beside the live file, `nginx -t` on it,
 * rename into place, SIGHUP, then polling (every ~2 ms, new connections) until the new version is
 * served. Reload time is from the signal to the first answer of the new workers.
 */
export async function applyTimed(
  nginx: BenchNginx,
  port: number,
  text: string,
  timeoutMs = 60_000,
): Promise<{ testMs: number; reloadMs: number }> {
  const version = configVersion(text);
  if (version === undefined) throw new Error('the configuration carries no version');
  const candidate = join(nginx.prefix, '.nginx.conf.next');
  await writeFile(candidate, text);
  const tested = performance.now();
  const check = await testConfig({ bin: nginxBin(), conf: nginx.conf, prefix: nginx.prefix }, candidate);
  const testMs = performance.now() - tested;
  if (!check.ok) throw new Error(`nginx -t failed: ${check.output}`);
  await rename(candidate, nginx.conf);
  const signalled = performance.now();
  nginx.master.signal('SIGHUP');
  const deadline = signalled + timeoutMs;
  while (performance.now() < deadline) {
    if ((await fetchServedVersion(port)) === version)
      return { testMs, reloadMs: performance.now() - signalled };
    await sleep(2);
  }
  throw new Error(`nginx did not serve version ${version} within ${timeoutMs} ms of SIGHUP`);
}

export interface BenchApplier {
  /** Loads `text` (a new version); how long the load took as the controller reports it. */
  load(text: string): Promise<number>;
  stop(): Promise<void>;
}

/**
 * dispatcher's own applier (src/nginx/apply.ts) with an nginx it started on `first`, loading every
 * text by `method`. A load is timed as the controller reports it: from the handover's master start
 * or the signal until a new worker answers the new version and no old one accepts (`nginx -t` is
 * not part of it).
 */
export async function startBenchApplier(
  first: string,
  port: number,
  method: ReloadMethod,
): Promise<BenchApplier> {
  const prefix = await makePrefix();
  const held = method === 'handover' ? await holdListeningSockets([port]) : undefined;
  if (held && !held.ok) throw new Error(`cannot hold port ${held.port}: ${held.reason}`);
  const applier = createNginxApplier({
    paths: { bin: nginxBin(), conf: join(prefix, 'nginx.conf'), prefix },
    port,
    sslCertDir: join(prefix, 'ssl'),
    confirmTimeoutMs: 60_000,
    onOutput: () => undefined,
    ...(held?.ok && { sockets: held.sockets }),
  });
  const nginx = await applier.start(first);
  return {
    async load(text) {
      const outcome = await applier.apply(text, []);
      if (outcome.kind !== 'reloaded' || outcome.method !== method)
        throw new Error(`the ${method} load failed: ${JSON.stringify(outcome)}`);
      return outcome.reloadMs;
    },
    async stop() {
      await nginx.stop(5000);
      await rm(prefix, { recursive: true, force: true });
    },
  };
}

const CLOCK_TICKS_PER_SECOND = (() => {
  const answer = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
  return Number.isInteger(answer) && answer > 0 ? answer : 100;
})();

/** The fields of /proc/<pid>/stat after the command name: state is [0], ppid [1], utime [11]. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** An nginx master and its children (the workers). */
export function nginxProcesses(masterPid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(statFields(Number(entry))[1]) === masterPid) children.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return [masterPid, ...children];
}

/**
 * CPU time (ms) used so far by one process: from schedstat (nanoseconds) where the kernel has it,
 * else utime + stime in clock ticks (10 ms steps, coarse for a one-second run).
 */
function processCpuMs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    const fields = statFields(pid);
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  }
}

/**
 * CPU time (user + system, in ms) used so far by the children of an nginx master — its workers —
 * from /proc. Less sensitive than requests per second to other work on a shared machine.
 */
export function workerCpuMs(masterPid: number): number {
  let total = 0;
  for (const pid of nginxProcesses(masterPid).slice(1)) {
    try {
      total += processCpuMs(pid);
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

/**
 * Processes holding a listening TCP socket on `port` (an nginx master and its workers, which
 * inherit it): how the bench finds a server it did not start itself.
 */
export function processesListeningOn(port: number): number[] {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue; // no IPv6
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      const local = fields[1]?.split(':')[1];
      if (local && Number.parseInt(local, 16) === port && fields[3] === '0A') inodes.add(fields[9] ?? '');
    }
  }
  const holders: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fds = readdirSync(`/proc/${entry}/fd`);
      const sockets = fds.map(
        (fd) => /^socket:\[(\d+)\]$/.exec(readlinkOrEmpty(`/proc/${entry}/fd/${fd}`))?.[1],
      );
      if (sockets.some((inode) => inode !== undefined && inodes.has(inode))) holders.push(Number(entry));
    } catch {
      // the process ended meanwhile, or is not ours to read
    }
  }
  return holders;
}

function readlinkOrEmpty(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

/** The CPUs (taskset's list form) each process may run on now. */
export function cpuAffinity(pids: readonly number[]): Map<number, string> {
  const affinity = new Map<number, string>();
  for (const pid of pids) {
    const shown = spawnSync('taskset', ['--cpu-list', '--pid', String(pid)], { encoding: 'utf8' });
    const list = /affinity list: (\S+)/.exec(shown.stdout ?? '')?.[1];
    if (list) affinity.set(pid, list);
  }
  return affinity;
}

/** Runs every thread of each process on `cpus` only (taskset's list form: `1`, `0-2`). */
export function pinToCpus(pids: readonly number[], cpus: string): void {
  for (const pid of pids) {
    const done = spawnSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(pid)], {
      encoding: 'utf8',
    });
    if (done.status !== 0 && existsSync(`/proc/${pid}`)) {
      throw new Error(`taskset could not pin ${pid} to CPUs ${cpus}: ${done.error?.message ?? done.stderr}`);
    }
  }
}

/**
 * `nginx -s reload` against a running instance, as an operator would: it parses the configuration
 * (as the controller's `nginx -t` does) and signals the master named in the pid file. True when it
 * succeeded.
 */
export function signalReload(nginx: BenchNginx): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      nginxBin(),
      ['-p', nginx.prefix, '-c', nginx.conf, '-s', 'reload'],
      { timeout: 30_000 },
      (error) => resolve(error === null),
    );
  });
}
