// Sources keep only what routing reads: the model must make exactly the same of a slimmed object
// as of the full one the API server sends, and the slimmed one must be much smaller.
import { describe, expect, it } from 'vitest';
import { realisticPod, routableNamespace, routingSecret } from '../../bench/workload.js';
import { modelConfigFrom } from '../../src/model/config.js';
import { toNamespace } from '../../src/model/namespace.js';
import { toPod } from '../../src/model/pod.js';
import { toSecret } from '../../src/model/secret.js';
import { parseSelector } from '../../src/model/selector.js';
import { slimObject } from '../../src/sources/slim.js';
import type { KubeObject } from '../../src/types.js';
import { HOSTS, PATHS, ROUTABLE, testConfig } from '../support/cluster.js';
import { type PodOptions, pod } from '../support/kube-objects.js';

const cfg = modelConfigFrom(testConfig());
const parsed = parseSelector('github.com/30x.dispatcher.routable=true');
if (!parsed.ok) throw new Error(parsed.reason);
const selector = parsed.value;
const keep = new Set([HOSTS, PATHS]);
const slim = (kind: 'Namespace' | 'Pod' | 'Secret', o: KubeObject) => slimObject(kind, o, keep) as KubeObject;
/** A routable pod with one container declaring port 8080 as "web", routing `/` to `containerPort`. */
const probed = (name: string, containerPort: number | string, probes: PodOptions['probes']) =>
  pod('ns', name, {
    labels: ROUTABLE,
    annotations: { [PATHS]: JSON.stringify([{ basePath: '/', containerPort }]) },
    ports: [{ containerPort: 8080, name: 'web' }],
    probes,
  });

describe('slimObject', () => {
  const ports = { web: 8080, api: 9000 };
  const pods = [
    realisticPod({ namespace: 1, ordinal: 0, ipIndex: 7, ports }),
    realisticPod({ namespace: 1, ordinal: 1, ipIndex: 8, ports, ready: false }),
    realisticPod({
      namespace: 2,
      ordinal: 0,
      ipIndex: 9,
      ports,
      paths: [{ basePath: '/x;', containerPort: 1 }],
    }),
    // Probes: the readiness probe is read when it is an object, else the liveness probe; only
    // httpGet (else tcpSocket) and the timing fields of the probe read count.
    probed('http-named', 'web', {
      readiness: { httpGet: { path: '/healthz', port: 'web', scheme: 'HTTP' }, periodSeconds: 5 },
      liveness: { tcpSocket: { port: 8080 }, initialDelaySeconds: 3 },
    }),
    probed('exec-readiness', 8080, {
      readiness: { initialDelaySeconds: 1 } as never,
      liveness: { httpGet: { path: '/live', port: 8080 } },
    }),
    probed('liveness-only', 'web', { liveness: { tcpSocket: { port: 'web' }, timeoutSeconds: 3 } }),
    probed('https', 8080, { readiness: { httpGet: { path: '/', port: 8080, scheme: 'HTTPS' } } }),
    probed('bad-period', 8080, { readiness: { httpGet: { port: 8080 }, periodSeconds: 0 } }),
    probed('unknown-port', 'api', { readiness: { httpGet: { port: 'nope' } } }),
    {
      ...probed('odd-readiness', 8080, { liveness: { httpGet: { path: '/l', port: 8080 } } }),
      spec: {
        containers: [
          {
            name: 'c',
            ports: [{ containerPort: 8080 }, 7],
            readinessProbe: 'x',
            livenessProbe: { tcpSocket: {} },
          },
        ],
      },
    },
    {
      ...probed('conditions-odd', 8080, {}),
      status: { phase: 'Running', podIP: '10.0.0.1', conditions: 'x' },
    },
    {
      ...probed('ready-twice', 8080, {}),
      status: {
        phase: 'Running',
        podIP: '10.0.0.1',
        conditions: [7, { type: 'Ready', status: 'False' }, { type: 'Ready', status: 'True' }],
      },
    },
    // Malformed shapes stay malformed, so the model still reports them.
    pod('ns', 'odd', { containers: ['not an object', { name: 'c', ports: 'nope' }] }),
    {
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'ns', annotations: 'x' },
      spec: [],
      status: 7,
    } as unknown as KubeObject,
  ];

  it.each(pods.map((p, i) => [i, p] as const))('pod %i converts identically', (_i, full) => {
    expect(toPod(slim('Pod', full), cfg, selector)).toEqual(toPod(full, cfg, selector));
  });

  it('namespaces and secrets convert identically', () => {
    for (const i of [0, 1, 2, 3]) {
      const ns = routableNamespace(i);
      expect(toNamespace(slim('Namespace', ns), cfg, selector)).toEqual(toNamespace(ns, cfg, selector));
      const secret = routingSecret(i);
      expect(toSecret(slim('Secret', secret), cfg)).toEqual(toSecret(secret, cfg));
    }
  });

  it('keeps a fraction of a realistic pod', () => {
    const full = realisticPod({ namespace: 1, ordinal: 0, ipIndex: 7, ports });
    const before = JSON.stringify(full).length;
    const after = JSON.stringify(slim('Pod', full)).length;
    expect(before).toBeGreaterThan(4000);
    expect(after / before).toBeLessThan(0.15);
  });
});
