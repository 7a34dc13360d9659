// A reload counts as done only when nginx serves nothing but the new configuration: right after
// the controller reports it, every new connection sees the new version (nginx's master lets old
// workers accept for 100 ms after starting new ones; the controller tells them to quit as soon as a
// new worker serves, and waits until none accepts).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { fetchServedVersion } from '../../src/nginx/confirm.js';
import { bundledTemplatesDir } from '../../src/render/templates.js';
import { configVersion } from '../../src/render.js';
import { type Backend, closeAll, startBackends } from '../support/backends.js';
import { type ApiObject, namespace, pod } from '../support/kube-objects.js';
import { type LiveRun, startLiveRun } from '../support/live-run.js';
import { noticeLogTemplatesDir } from '../support/templates.js';
import { waitFor } from '../support/wait.js';

const ROUTABLE = { 'github.com/30x.dispatcher.routable': 'true' };

let backends: Backend[] = [];
let dir = '';
let live: LiveRun | undefined;
let noticed: LiveRun | undefined;
let noticeTemplates = '';

beforeAll(async () => {
  backends = await startBackends(1);
  dir = await mkdtemp(join(tmpdir(), 'dispatcher-reload-'));
  noticeTemplates = noticeLogTemplatesDir(bundledTemplatesDir);
});

afterAll(async () => {
  try {
    if (live) expect((await live.stop()).survivors).toEqual([]);
    if (noticed) expect((await noticed.stop()).survivors).toEqual([]);
  } finally {
    await closeAll(backends);
    await rm(dir, { recursive: true, force: true });
    await rm(noticeTemplates, { recursive: true, force: true });
  }
});

function cluster(weight: number): string {
  const b = backends[0] as Backend;
  const objects: ApiObject[] = [
    namespace('reload', {
      labels: ROUTABLE,
      annotations: { 'github.com/30x.dispatcher.hosts': '{"reload.example.com":{}}' },
    }),
    pod('reload', 'web', {
      ip: b.host,
      ports: [b.port],
      labels: ROUTABLE,
      annotations: {
        'github.com/30x.dispatcher.paths': JSON.stringify([{ basePath: '/', containerPort: b.port, weight }]),
      },
    }),
  ];
  return objects.map((o) => stringify(o)).join('---\n');
}

describe('reload confirmation', () => {
  it('reports a reload only once no worker serves the previous configuration', async () => {
    await writeFile(join(dir, 'cluster.yaml'), cluster(1));
    live = await startLiveRun({ manifests: dir, env: { BATCH_WINDOW_MS: '0' } });
    const state = live.running.controller.state;
    const stale: string[] = [];
    for (let weight = 2; weight <= 21; weight += 1) {
      const before = state.applied;
      await writeFile(join(dir, 'cluster.yaml'), cluster(weight));
      await waitFor('the change to be applied', () => state.applied > before);
      const expected = configVersion(live.liveConfig());
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => fetchServedVersion(live?.port ?? 0)),
      );
      stale.push(...answers.filter((v) => v !== expected).map((v) => `weight ${weight}: ${v}`));
    }
    expect(stale).toEqual([]);
  });

  it('tells the old workers to quit as soon as a new one serves, and nginx keeps its workers', async () => {
    const manifests = await mkdtemp(join(dir, 'notice-'));
    await writeFile(join(manifests, 'cluster.yaml'), cluster(1));
    noticed = await startLiveRun({
      manifests,
      env: { BATCH_WINDOW_MS: '0', TEMPLATES_DIR: noticeTemplates },
    });
    const run = noticed;
    await run.settled();
    const workers = run.workerPids().length;
    for (let weight = 2; weight <= 4; weight += 1) {
      const before = run.running.controller.state.applied;
      await writeFile(join(manifests, 'cluster.yaml'), cluster(weight));
      await waitFor('the change to be applied', () => run.running.controller.state.applied > before);
      await run.settled();
      expect(run.workerPids()).toHaveLength(workers);
    }
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
