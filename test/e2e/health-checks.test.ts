// NGINX_ENABLE_HEALTH_CHECKS=true with Debian's nginx, which lacks nginx_upstream_check_module:
// the live controller says so once and falls back to passive checks that nginx loads (SPEC
// section 3 "Health checks").
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type Backend, startBackend } from '../support/backends.js';
import { namespace, pod } from '../support/kube-objects.js';
import { type LiveRun, startLiveRun, waitForAnswers } from '../support/live-run.js';
import { waitFor } from '../support/wait.js';

const ROUTABLE = { 'github.com/30x.dispatcher.routable': 'true' };
const HOST = 'checked.example.com';

let app: Backend;
let dir = '';
let live: LiveRun | undefined;

beforeAll(async () => {
  app = await startBackend({ host: '127.0.0.2', name: 'checked-app' });
  dir = await mkdtemp(join(tmpdir(), 'dispatcher-health-'));
});

afterAll(async () => {
  try {
    if (live) expect((await live.stop()).survivors).toEqual([]);
  } finally {
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  }
});

describe('health checks with an nginx that lacks the check module', () => {
  it('says so once, renders passive checks from the probe instead of `check`, and routes', async () => {
    const objects = [
      namespace('checked', {
        labels: ROUTABLE,
        annotations: { 'github.com/30x.dispatcher.hosts': JSON.stringify({ [HOST]: {} }) },
      }),
      pod('checked', 'app', {
        ip: app.host,
        ports: [{ containerPort: app.port, name: 'http' }],
        labels: ROUTABLE,
        annotations: {
          'github.com/30x.dispatcher.paths': JSON.stringify([{ basePath: '/', containerPort: 'http' }]),
        },
        probes: {
          readiness: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5, failureThreshold: 2 },
        },
      }),
    ];
    await writeFile(join(dir, 'cluster.yaml'), objects.map((o) => stringify(o)).join('---\n'));

    live = await startLiveRun({ manifests: dir, env: { NGINX_ENABLE_HEALTH_CHECKS: 'true' } });
    await waitForAnswers('the checked pod to answer', live.port, { host: HOST }, (a) => a === 'checked-app');

    // period 5 s × failureThreshold 2: out for 10 s after 2 failures.
    expect(live.liveConfig()).toContain(`server ${app.address} max_fails=2 fail_timeout=10s;`);

    // A later render (the probe is now a TCP one with Kubernetes' defaults) says nothing again.
    const state = live.running.controller.state;
    const appliedBefore = state.applied;
    const tcpProbe = structuredClone(objects[1]);
    if (tcpProbe) tcpProbe.spec.containers[0].readinessProbe = { tcpSocket: { port: app.port } };
    await writeFile(join(dir, 'cluster.yaml'), [objects[0], tcpProbe].map((o) => stringify(o)).join('---\n'));
    await waitFor('the probe change to be applied', () => state.applied > appliedBefore);
    await waitForAnswers(
      'the checked pod to answer again',
      live.port,
      { host: HOST },
      (a) => a === 'checked-app',
    );

    const missing = live.logs.filter((r) => r.msg.includes('nginx_upstream_check_module'));
    expect(missing).toHaveLength(1);
    expect(missing[0]?.level).toBe(40);
    // period 10 s × failureThreshold 3 (the defaults).
    const config = live.liveConfig();
    expect(config).toContain(`server ${app.address} max_fails=3 fail_timeout=30s;`);
    expect(config).not.toMatch(/^\s*check(_http_send|_http_expect_alive)?\s/m);
    expect(live.running.controller.state.rejected).toBe(0);
  });
});
