// Handover (NGINX_RELOAD=handover, the default): each configuration gets a new nginx master on the
// listening sockets dispatcher holds, and the old master is told to quit only once a new worker
// serves. What must hold besides routing (reload-confirmation.test.ts covers that): a new master that
// never serves changes nothing for clients; templates that listen on anything dispatcher does not
// hold are loaded by signal instead; the sockets are held on the ports asked, or the reason said.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { stringify } from 'yaml';
import { holdListeningSockets } from '../../src/nginx/listeners.js';
import { bundledTemplatesDir } from '../../src/render/templates.js';
import { type Backend, closeAll, type Echo, startBackends } from '../support/backends.js';
import { app, ns } from '../support/cluster.js';
import { request } from '../support/http.js';
import { type LiveRun, startLiveRun } from '../support/live-run.js';
import { freePort, isRunning } from '../support/nginx.js';
import { waitFor } from '../support/wait.js';

const HOST = 'handover.example.com';

let backends: Backend[] = [];
let dir = '';
let templatesDir = '';
let live: LiveRun | undefined;

function writeCluster(weight: number): void {
  const b = backends[0] as Backend;
  const objects = [
    ns('handover', { [HOST]: {} }),
    app('handover', 'web', b.host, [{ basePath: '/', containerPort: b.port, weight }], [b.port]),
  ];
  writeFileSync(join(dir, 'cluster.yaml'), objects.map((o) => stringify(o)).join('---\n'));
}

/** Replaces `from` by `to` in a template of the watched copy. */
function editTemplate(file: string, from: string, to: string): void {
  const path = join(templatesDir, file);
  const text = readFileSync(path, 'utf8');
  if (!text.includes(from)) throw new Error(`${path} has no ${from}`);
  writeFileSync(path, text.replace(from, to));
}

async function servedBy(port: number): Promise<string> {
  const answer = await request(port, { host: HOST });
  return answer.status === 200 ? answer.json<Echo>().pod : `status ${answer.status}`;
}

beforeAll(async () => {
  backends = await startBackends(1);
});

afterAll(async () => {
  await closeAll(backends);
});

afterEach(async () => {
  try {
    if (live) expect((await live.stop()).survivors).toEqual([]);
  } finally {
    live = undefined;
    rmSync(dir, { recursive: true, force: true });
    rmSync(templatesDir, { recursive: true, force: true });
  }
});

async function startWithTemplates(env: Record<string, string> = {}): Promise<LiveRun> {
  dir = mkdtempSync(join(tmpdir(), 'dispatcher-handover-'));
  templatesDir = mkdtempSync(join(tmpdir(), 'dispatcher-handover-templates-'));
  cpSync(bundledTemplatesDir, templatesDir, { recursive: true });
  writeCluster(1);
  live = await startLiveRun({ manifests: dir, env: { TEMPLATES_DIR: templatesDir, ...env } });
  const run = live;
  await waitFor('the pod to be routed', async () => (await servedBy(run.port)) === 'pod-1');
  return run;
}

describe('a new master that never serves', () => {
  it('is stopped and reported; the previous master never stops serving, and the live file is its text', async () => {
    const run = await startWithTemplates({ NGINX_RELOAD_TIMEOUT_MS: '2000' });
    const master = run.masterPid;
    const before = run.liveConfig();
    const state = run.running.controller.state;
    let answers = 0;
    const failures: string[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const by = await servedBy(run.port).catch((e: Error) => e.message);
        if (by === 'pod-1') answers += 1;
        else failures.push(by);
      }
    })();

    // nginx -t does not look at working_directory; each worker changes into it first and exits with
    // a fatal code when it cannot, so that master never has a worker that serves.
    editTemplate(
      'nginx.conf.hbs',
      'worker_processes auto;',
      'worker_processes auto;\nworking_directory "/nonexistent-dispatcher-dir";',
    );
    await waitFor('the render to be rejected', () => state.rejected > 0, 15_000);
    polling = false;
    await poller;

    expect(failures).toEqual([]);
    expect(answers).toBeGreaterThan(10);
    expect(run.masterPid).toBe(master);
    expect(run.liveConfig()).toBe(before);
    const [rejected] = run.logged('configuration rejected');
    expect(String(rejected?.nginx)).toMatch(
      /^the new nginx master did not serve within 2000 ms; nginx said: /,
    );
    expect(String(rejected?.nginx)).toContain('chdir("/nonexistent-dispatcher-dir") failed');

    // The templates mended: the next configuration is handed over as usual.
    editTemplate('nginx.conf.hbs', '\nworking_directory "/nonexistent-dispatcher-dir";', '');
    writeCluster(2);
    await waitFor('the next configuration to be applied', () =>
      run.logged('configuration applied').some((r) => r.pid !== master && r.handover === 1),
    );
    expect(await servedBy(run.port)).toBe('pod-1');
  });
});

describe('the check before a new master', () => {
  it('reads the file as the master will (its -g included): a template with daemon off; of its own is refused, no master started', async () => {
    const run = await startWithTemplates();
    const master = run.masterPid;
    const started = (): number =>
      run.logs.filter((r) => String(r.nginx ?? '').includes('using inherited sockets')).length;
    const before = started();
    editTemplate('nginx.conf.hbs', 'worker_processes auto;', 'worker_processes auto;\ndaemon off;');
    await waitFor('the render to be rejected', () => run.running.controller.state.rejected > 0);
    const [rejected] = run.logged('configuration rejected');
    expect(String(rejected?.nginx)).toContain('"daemon" directive is duplicate');
    expect(started()).toBe(before);
    expect(run.masterPid).toBe(master);
    expect(await servedBy(run.port)).toBe('pod-1');
  });
});

describe('connections held across handovers', () => {
  it('a WebSocket opened before a dozen handovers still echoes through its master; shutdown ends that master too', async () => {
    const run = await startWithTemplates({ BATCH_WINDOW_MS: '0' });
    const first = run.masterPid;
    const socket = new WebSocket(`ws://127.0.0.1:${run.port}/chat`, { headers: { Host: HOST } });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const echo = (message: string): Promise<string> =>
      new Promise((resolve) => {
        socket.once('message', (data) => resolve(data.toString()));
        socket.send(message);
      });
    expect(await echo('before')).toBe('before');
    const exitListeners = process.listenerCount('exit');
    const state = run.running.controller.state;
    for (let weight = 2; weight <= 13; weight += 1) {
      const before = state.applied;
      writeCluster(weight);
      await waitFor('the change to be applied', () => state.applied > before);
    }
    // Every master but the serving one was told to quit; the first one still finishes this socket
    // (NGINX_WORKER_SHUTDOWN_TIMEOUT, 30 s), and dispatcher keeps no listener per master.
    expect(run.masterPid).not.toBe(first);
    expect(isRunning(first)).toBe(true);
    expect(await echo('after')).toBe('after');
    expect(process.listenerCount('exit')).toBe(exitListeners);

    // SIGTERM while that old master still holds the socket: every master is ended, exit code 0.
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    live = undefined;
    const { code, survivors } = await run.stop();
    expect(code).toBe(0);
    expect(survivors).toEqual([]);
    expect(isRunning(first)).toBe(false);
    await closed;
  });
});

describe('templates that listen on a port dispatcher does not hold', () => {
  it('are loaded by signal, and so is the configuration after them; then handover resumes', async () => {
    const run = await startWithTemplates();
    const extra = await freePort();
    const applied = (): number => run.logged('configuration applied').length;
    const next = async (what: string, change: () => void): Promise<unknown> => {
      const before = applied();
      change();
      await waitFor(what, () => applied() > before);
      return run.logged('configuration applied').at(-1)?.handover;
    };
    const status = async (port: number): Promise<number> =>
      (await request(port, { host: 'unknown.example', path: '/dispatcher/status' }).catch(() => undefined))
        ?.status ?? 0;

    expect(await next('a weight change', () => writeCluster(2))).toBe(1);
    const methods = [
      await next('the extra listen', () =>
        editTemplate(
          'partials/default-server.hbs',
          'default_server;',
          `default_server;\n    listen ${extra};`,
        ),
      ),
    ];
    expect(await status(extra)).toBe(200);
    methods.push(await next('a weight change', () => writeCluster(3)));
    // Back to the held port alone: by signal once more, since the running master holds the extra one.
    methods.push(
      await next('the extra listen gone', () =>
        editTemplate('partials/default-server.hbs', `\n    listen ${extra};`, ''),
      ),
    );
    expect(await status(extra)).toBe(0);
    methods.push(await next('a weight change', () => writeCluster(4)));
    expect(methods).toEqual([0, 0, 0, 1]);
    expect(await servedBy(run.port)).toBe('pod-1');
  });
});

describe('the sockets dispatcher holds for nginx', () => {
  let taken: Server | undefined;
  afterEach(() => {
    taken?.close();
    taken = undefined;
  });

  it('are listening sockets on every IPv4 address of each port asked, which nobody here accepts on', async () => {
    const ports = [await freePort(), await freePort()];
    const held = await holdListeningSockets(ports);
    if (!held.ok) throw new Error(`${held.port}: ${held.reason}`);
    const clients: Socket[] = [];
    try {
      expect(held.sockets.ports).toEqual(ports);
      expect(new Set(held.sockets.fds).size).toBe(2);
      for (const port of ports) {
        const client = new Socket();
        clients.push(client);
        await new Promise<void>((resolve, reject) => {
          client.once('error', reject);
          client.connect(port, '127.0.0.1', resolve);
        });
        // The kernel completed the connection into the backlog, where it waits for an nginx worker.
        await waitFor(`a connection queued on ${port}`, () => acceptQueue(port) === 1);
      }
    } finally {
      for (const client of clients) client.destroy();
      held.sockets.close();
    }
  });

  it('are not held at all when one port cannot be opened, and the port and reason are said', async () => {
    const free = await freePort();
    taken = createServer();
    await new Promise<void>((resolve) => taken?.listen(0, '0.0.0.0', resolve));
    const address = taken.address();
    const busy = typeof address === 'object' && address ? address.port : 0;
    const held = await holdListeningSockets([free, busy]);
    expect(held).toEqual({ ok: false, port: busy, reason: 'EADDRINUSE' });
    // The port that could be opened was given back.
    const again = await holdListeningSockets([free]);
    expect(again.ok).toBe(true);
    if (again.ok) again.sockets.close();
  });
});

/** Connections waiting to be accepted on the IPv4 listening socket of `port` (/proc/net/tcp). */
function acceptQueue(port: number): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, , state, queues] = line.trim().split(/\s+/);
    if (local === `00000000:${hexPort}` && state === '0A')
      return Number.parseInt(queues?.split(':')[1] ?? '', 16);
  }
  return undefined;
}
