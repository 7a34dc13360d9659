// A reload counts as done only when nginx serves nothing but the new configuration: right after
// the controller reports it, every new connection sees the new version, and no request fails while
// it happens. Both ways of loading a configuration are held to it: handover (a new master on
// dispatcher's listening sockets, the old one told to quit once a new worker serves) and signal
// (SIGHUP; the old workers told to quit as soon as a new one serves, not 100 ms later).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { fetchServedVersion } from '../../src/nginx/confirm.js';
import { bundledTemplatesDir } from '../../src/render/templates.js';
import { configVersion } from '../../src/render.js';
import { type Backend, closeAll, startBackends } from '../support/backends.js';
import { app, ns } from '../support/cluster.js';
import { request } from '../support/http.js';
import { type LiveRun, startLiveRun } from '../support/live-run.js';
import { isRunning } from '../support/nginx.js';
import { noticeLogTemplatesDir } from '../support/templates.js';
import { waitFor } from '../support/wait.js';

const HOST = 'reload.example.com';

let backends: Backend[] = [];
let dir = '';
let noticeTemplates = '';
const runs: LiveRun[] = [];
const manifestsOf = new Map<LiveRun, string>();

beforeAll(async () => {
  backends = await startBackends(1);
  dir = await mkdtemp(join(tmpdir(), 'dispatcher-reload-'));
  noticeTemplates = noticeLogTemplatesDir(bundledTemplatesDir);
});

afterAll(async () => {
  try {
    for (const run of runs) expect((await run.stop()).survivors).toEqual([]);
  } finally {
    await closeAll(backends);
    await rm(dir, { recursive: true, force: true });
    await rm(noticeTemplates, { recursive: true, force: true });
  }
});

function cluster(weight: number): string {
  const b = backends[0] as Backend;
  const objects = [
    ns('reload', { [HOST]: {} }),
    app('reload', 'web', b.host, [{ basePath: '/', containerPort: b.port, weight }], [b.port]),
  ];
  return objects.map((o) => stringify(o)).join('---\n');
}

async function start(method: 'handover' | 'signal', env: Record<string, string> = {}): Promise<LiveRun> {
  const manifests = await mkdtemp(join(dir, `${method}-`));
  await writeFile(join(manifests, 'cluster.yaml'), cluster(1));
  const run = await startLiveRun({ manifests, env: { BATCH_WINDOW_MS: '0', NGINX_RELOAD: method, ...env } });
  runs.push(run);
  manifestsOf.set(run, manifests);
  await waitFor('the pod to be routed', async () => (await request(run.port, { host: HOST })).status === 200);
  return run;
}

async function change(run: LiveRun, weight: number): Promise<void> {
  const state = run.running.controller.state;
  const before = state.applied;
  await writeFile(join(manifestsOf.get(run) ?? '', 'cluster.yaml'), cluster(weight));
  await waitFor('the change to be applied', () => state.applied > before);
}

/** Requests over new connections until stopped; every answer that is not the pod's 200, by kind. */
function steadyClient(run: LiveRun): { stop(): Promise<{ sent: number; failed: string[] }> } {
  let running = true;
  let sent = 0;
  const failed: string[] = [];
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      sent += 1;
      try {
        const answer = await request(run.port, { host: HOST });
        if (answer.status !== 200) failed.push(answer.closed ? 'closed' : `status ${answer.status}`);
      } catch (error) {
        failed.push((error as NodeJS.ErrnoException).code ?? String(error));
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { sent, failed };
    },
  };
}

describe.each(['handover', 'signal'] as const)('reload confirmation, NGINX_RELOAD=%s', (method) => {
  it('reports a reload only once no worker serves the previous configuration; no request fails meanwhile', async () => {
    const run = await start(method);
    const client = steadyClient(run);
    const stale: string[] = [];
    for (let weight = 2; weight <= 16; weight += 1) {
      await change(run, weight);
      const expected = configVersion(run.liveConfig());
      const answers = await Promise.all(Array.from({ length: 20 }, () => fetchServedVersion(run.port)));
      stale.push(...answers.filter((v) => v !== expected).map((v) => `weight ${weight}: ${v}`));
    }
    const { sent, failed } = await client.stop();
    expect(stale).toEqual([]);
    expect(failed).toEqual([]);
    expect(sent).toBeGreaterThan(100);
    const applied = run.logged('configuration applied').slice(1);
    expect(applied.map((r) => r.handover)).toEqual(applied.map(() => (method === 'handover' ? 1 : 0)));
  });
});

describe('handing nginx over to a new master', () => {
  it('starts one per configuration and tells the old one to quit: one master and its workers are left, no alert', async () => {
    const run = await start('handover', { TEMPLATES_DIR: noticeTemplates });
    await run.settled();
    const workers = run.workerPids().length;
    const masters = [run.masterPid];
    for (let weight = 2; weight <= 4; weight += 1) {
      await change(run, weight);
      await run.settled();
      masters.push(run.masterPid);
      expect(run.workerPids()).toHaveLength(workers);
      await waitFor('the previous master to exit', () => !isRunning(masters.at(-2) as number));
    }
    expect(new Set(masters).size).toBe(masters.length);
    // The serving master named in nginx's pid file, though every old master deleted it on its way out.
    await waitFor('the pid file to name the serving master', async () => {
      const named = await readFile(join(run.prefix, 'nginx.pid'), 'utf8').catch(() => '');
      return named.trim() === String(run.masterPid);
    });
    const nginxLines = run.logs.filter((r) => r.msg === 'nginx').map((r) => String(r.nginx));
    // Every master (the first, for the empty configuration, and one per configuration applied) ran on
    // dispatcher's sockets; each but the serving one was told to quit by dispatcher.
    const started = 1 + run.logged('configuration applied').filter((r) => r.handover === 1).length;
    expect(started).toBe(masters.length + 1);
    expect(nginxLines.filter((line) => line.includes('using inherited sockets')).length).toBe(started);
    const quitBy = nginxLines.flatMap(
      (line) => /signal 3 \(SIGQUIT\) received from (\d+)/.exec(line)?.[1] ?? [],
    );
    expect(quitBy).toEqual(Array.from({ length: started - 1 }, () => String(process.pid)));
    expect(nginxLines.filter((line) => /\[(alert|emerg|crit)\]/.test(line))).toEqual([]);
  });
});

describe('reloading nginx by signal', () => {
  it('tells the old workers to quit as soon as a new one serves, and nginx keeps its workers', async () => {
    const run = await start('signal', { TEMPLATES_DIR: noticeTemplates });
    await run.settled();
    const master = run.masterPid;
    const workers = run.workerPids().length;
    for (let weight = 2; weight <= 4; weight += 1) {
      await change(run, weight);
      await run.settled();
      expect(run.workerPids()).toHaveLength(workers);
    }
    expect(run.masterPid).toBe(master);
    const nginxLines = run.logs.filter((r) => r.msg === 'nginx').map((r) => String(r.nginx));
    // The master tells its workers to quit over a channel; a signal an old worker logs came from us.
    const quitBy = nginxLines.flatMap(
      (line) => /signal 3 \(SIGQUIT\) received from (\d+)/.exec(line)?.[1] ?? [],
    );
    expect(quitBy.length).toBeGreaterThan(0);
    expect(new Set(quitBy)).toEqual(new Set([String(process.pid)]));
    expect(nginxLines.filter((line) => /\[(alert|emerg|crit)\]/.test(line))).toEqual([]);
  });
});
