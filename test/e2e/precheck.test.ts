// nginx -t ahead of the window's end: a change that arrives and then pauses is checked while the
// batch window is still open, so that at its end the controller only renames and reloads (the render
// made for the check is reused when nothing changed since); a configuration refused ahead is refused
// at the end too, and nginx keeps serving the last good one.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { bundledTemplatesDir } from '../../src/render/templates.js';
import { type Backend, closeAll, type Echo, startBackends } from '../support/backends.js';
import { request } from '../support/http.js';
import { type ApiObject, namespace, pod, secret } from '../support/kube-objects.js';
import { type LiveRun, startLiveRun } from '../support/live-run.js';
import { waitFor } from '../support/wait.js';

const ROUTABLE = { 'github.com/30x.dispatcher.routable': 'true' };
const HOST = 'ahead.example.com';
const WINDOW_MS = 1500;

let backends: Backend[] = [];
let dir = '';
let templatesDir = '';
let live: LiveRun | undefined;

function podOn(b: Backend): ApiObject {
  return pod('ahead', 'web', {
    ip: b.host,
    ports: [b.port],
    labels: ROUTABLE,
    annotations: {
      'github.com/30x.dispatcher.paths': JSON.stringify([{ basePath: '/', containerPort: String(b.port) }]),
    },
  });
}

function writeCluster(...extra: ApiObject[]): void {
  const objects = [
    namespace('ahead', {
      labels: ROUTABLE,
      annotations: { 'github.com/30x.dispatcher.hosts': JSON.stringify({ [HOST]: {} }) },
    }),
    ...extra,
  ];
  writeFileSync(join(dir, 'cluster.yaml'), objects.map((o) => stringify(o)).join('---\n'));
}

async function servedBy(): Promise<string> {
  const answer = await request(live?.port ?? 0, { host: HOST });
  return answer.status === 200 ? answer.json<Echo>().pod : `status ${answer.status}`;
}

beforeAll(async () => {
  backends = await startBackends(2);
  dir = mkdtempSync(join(tmpdir(), 'dispatcher-ahead-'));
  // Templates that nginx refuses for a namespace whose API key is unusable: a refusal to provoke.
  templatesDir = mkdtempSync(join(tmpdir(), 'dispatcher-ahead-templates-'));
  cpSync(bundledTemplatesDir, templatesDir, { recursive: true });
  const location = join(templatesDir, 'partials', 'location.hbs');
  const text = readFileSync(location, 'utf8');
  writeFileSync(
    location,
    text.replace('{{#if deny}}', '{{#if deny}}\n      this_directive_does_not_exist on;'),
  );
});

afterAll(async () => {
  try {
    if (live) expect((await live.stop()).survivors).toEqual([]);
  } finally {
    await closeAll(backends);
    rmSync(dir, { recursive: true, force: true });
    rmSync(templatesDir, { recursive: true, force: true });
  }
});

describe('nginx -t while the batch window is open', () => {
  it('leaves only the rename and reload for the end of the window', async () => {
    const [first, second] = backends as [Backend, Backend];
    writeCluster(podOn(first));
    live = await startLiveRun({
      manifests: dir,
      env: { BATCH_WINDOW_MS: String(WINDOW_MS), TEMPLATES_DIR: templatesDir },
    });
    await waitFor('the first pod to serve', async () => (await servedBy()) === first.name);
    const state = live.running.controller.state;

    for (const target of [second, first]) {
      const applied = live.logged('configuration applied').length;
      writeCluster(podOn(target));
      await waitFor(
        'the change to be applied',
        () => live?.logged('configuration applied').length !== applied,
      );
      const record = live.logged('configuration applied').at(-1);
      expect(record?.prechecked).toBe(1);
      expect(record?.testMs).toBe(0);
      // Nothing changed after the check: the window's end applies the render made for it.
      expect(record?.renderedAhead).toBe(1);
      await live.settled();
      expect(await servedBy()).toBe(target.name);
    }
    expect(state.rejected).toBe(0);
  });

  it('refuses at the end what it refused ahead, and keeps serving the last good configuration', async () => {
    const [first] = backends as [Backend, Backend];
    const state = live?.running.controller.state;
    if (!live || !state) throw new Error('the first test starts the run');
    const rejected = state.rejected;
    // An API key over 1 KiB is unusable: the namespace's locations deny, and these templates then
    // render a directive nginx does not know.
    writeCluster(podOn(first), secret('ahead', 'routing', { 'api-key': 'k'.repeat(2000) }));
    await waitFor('nginx to refuse the configuration', () => state.rejected > rejected);
    expect(String(live.logged('configuration rejected').at(-1)?.nginx)).toContain(
      'this_directive_does_not_exist',
    );
    expect(live.liveConfig()).not.toContain('this_directive_does_not_exist');
    expect(await servedBy()).toBe(first.name);
  });
});
