// The live controller over a directory of manifests (`dispatcher --manifests DIR --nginx`): the
// routes follow the files as they are edited, added and deleted.
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type Backend, closeAll, startBackends } from '../support/backends.js';
import { type ApiObject, namespace, pod, secret } from '../support/kube-objects.js';
import { type LiveRun, startLiveRun, waitForAnswers } from '../support/live-run.js';

const ROUTABLE = { 'github.com/30x.dispatcher.routable': 'true' };
const HOST = 'files.example.com';
const KEY = { 'X-ROUTING-API-KEY': Buffer.from('file-key').toString('base64') };

function podOn(name: string, b: Backend, basePath: string): ApiObject {
  return pod('files', name, {
    ip: b.host,
    ports: [b.port],
    labels: ROUTABLE,
    annotations: {
      'github.com/30x.dispatcher.paths': JSON.stringify([{ basePath, containerPort: String(b.port) }]),
    },
  });
}

/** One YAML document per object, `---` between them. */
const yamlOf = (...objects: ApiObject[]): string => objects.map((o) => stringify(o)).join('---\n');

let backends: Backend[] = [];
let dir = '';
let live: LiveRun | undefined;

beforeAll(async () => {
  backends = await startBackends(3);
  dir = await mkdtemp(join(tmpdir(), 'dispatcher-manifests-'));
});

afterAll(async () => {
  try {
    if (live) expect((await live.stop()).survivors).toEqual([]);
  } finally {
    await closeAll(backends);
    await rm(dir, { recursive: true, force: true });
  }
});

function backend(index: number): Backend {
  const found = backends[index];
  if (!found) throw new Error(`no backend ${index}`);
  return found;
}

describe('live controller over a manifest directory', () => {
  it('serves the initial files, then follows edits, new files and deleted files', async () => {
    const files = namespace('files', {
      labels: ROUTABLE,
      annotations: { 'github.com/30x.dispatcher.hosts': JSON.stringify({ [HOST]: {} }) },
    });
    await writeFile(
      join(dir, 'namespace.yaml'),
      yamlOf(files, secret('files', 'routing', { 'api-key': 'file-key' })),
    );
    await writeFile(join(dir, 'app.yaml'), yamlOf(podOn('app', backend(0), '/app')));

    live = await startLiveRun({ manifests: dir });
    const port = live.port;
    const app = { host: HOST, path: '/app', headers: KEY };
    const extra = { host: HOST, path: '/extra', headers: KEY };
    // The initial state is planned and applied before startRun resolves.
    expect(live.running.controller.state.table?.servers.map((s) => s.host)).toEqual([HOST]);
    expect(live.running.controller.state.applied).toBe(1);
    await waitForAnswers('the initial route', port, app, (a) => a === 'pod-1');
    await waitForAnswers(
      'the API key from the initial secret',
      port,
      { host: HOST, path: '/app' },
      (a) => a === '403',
    );

    await writeFile(join(dir, 'app.yaml'), yamlOf(podOn('app', backend(1), '/app')));
    await waitForAnswers('the edited pod address', port, app, (a) => a === 'pod-2', 10);

    await writeFile(join(dir, 'extra.yaml'), yamlOf(podOn('extra', backend(2), '/extra')));
    await waitForAnswers('the route of the added file', port, extra, (a) => a === 'pod-3');
    await waitForAnswers('the first route, still', port, app, (a) => a === 'pod-2');

    await unlink(join(dir, 'extra.yaml'));
    // The host has no `/` location: what no location serves gets DEFAULT_LOCATION_RETURN (404).
    await waitForAnswers('the route of the deleted file to go', port, extra, (a) => a === '404', 5);
    await waitForAnswers('the remaining route', port, app, (a) => a === 'pod-2');

    await unlink(join(dir, 'namespace.yaml'));
    await waitForAnswers('the host of the deleted namespace file to go', port, app, (a) => a === 'closed', 5);

    expect(live.running.controller.state.rejected).toBe(0);
    expect(live.logs.filter((r) => r.level >= 50)).toEqual([]);
  });
});
