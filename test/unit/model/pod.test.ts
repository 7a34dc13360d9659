import { describe, expect, it } from 'vitest';
import { toPod } from '../../../src/model/pod.js';
import type { Diagnostic, KubeObject, PodRoute } from '../../../src/types.js';
import { cfg, PATHS, type PodOptions, pod, readyStatus, selector } from './fixtures.js';

const field = `metadata.annotations["${PATHS}"]`;
const convert = (obj: KubeObject, config = cfg) => toPod(obj, config, selector());
const good = { basePath: '/good', containerPort: '3000' };

function routesOf(
  paths: unknown,
  options?: PodOptions,
): { routes: PodRoute[] | undefined; diagnostics: Diagnostic[] } {
  const result = convert(pod(paths, options));
  return { routes: result.value?.routes, diagnostics: result.diagnostics };
}

/** A container whose port 3000 ("http") carries the given probes. */
function probed(probes: Record<string, unknown>): PodOptions {
  return { containers: [{ name: 'web', ports: [{ name: 'http', containerPort: 3000 }], ...probes }] };
}

describe('toPod: routable pods', () => {
  it('reads address, recorded labels and every path entry in order', () => {
    const obj = pod(
      [
        { basePath: '/', containerPort: '3000' },
        { basePath: '/api', containerPort: 8080, targetPath: '/v1', weight: 5 },
      ],
      {
        labels: {
          'github.com/30x.dispatcher.routable': 'true',
          'github.com/30x.dispatcher.app.name': 'web app\n',
          'github.com/30x.dispatcher.app.rev': '7',
        },
      },
    );
    expect(convert(obj)).toEqual({
      value: {
        namespace: 'team-a',
        name: 'web-1',
        ip: '10.0.0.7',
        appName: 'web app\n',
        appRev: '7',
        routes: [
          { basePath: '/', port: 3000 },
          { basePath: '/api', port: 8080, targetPath: '/v1', weight: 5 },
        ],
      },
      diagnostics: [],
    });
  });

  it('resolves a containerPort that names a declared port', () => {
    expect(routesOf([{ basePath: '/', containerPort: 'admin' }]).routes).toEqual([
      { basePath: '/', port: 8080 },
    ]);
  });

  it('accepts a container port declared as a string (manifest files)', () => {
    const options = { containers: [{ ports: [{ containerPort: '9000' }] }] };
    expect(routesOf([{ basePath: '/', containerPort: 9000 }], options).routes).toEqual([
      { basePath: '/', port: 9000 },
    ]);
  });

  it('writes an IPv6 pod address in brackets, ready for ip:port', () => {
    const result = convert(pod([good], { status: { ...readyStatus, podIP: 'FD00::7' } }));
    expect(result.value?.ip).toBe('[fd00::7]');
  });

  it('routes an unready pod when ROUTE_UNREADY_PODS is set', () => {
    const obj = pod([good], { status: { ...readyStatus, conditions: [{ type: 'Ready', status: 'False' }] } });
    expect(convert(obj, { ...cfg, routeUnreadyPods: true }).value?.routes).toEqual([
      { basePath: '/good', port: 3000 },
    ]);
  });

  it('routes a pod without paths annotation with no routes, and says so (info)', () => {
    expect(routesOf(undefined)).toEqual({
      routes: [],
      diagnostics: [
        {
          severity: 'info',
          object: 'Pod team-a/web-1',
          field,
          reason: 'annotation absent; the pod serves no path',
        },
      ],
    });
  });

  it('routes a pod whose annotation is an empty array with no routes', () => {
    expect(routesOf([])).toEqual({ routes: [], diagnostics: [] });
  });
});

describe('toPod: pods that do not route', () => {
  it('ignores a pod that does not match the selector, silently', () => {
    expect(convert(pod([good], { labels: { app: 'x' } }))).toEqual({ value: null, diagnostics: [] });
  });

  it.each<[string, PodOptions, string, string]>([
    [
      'terminating',
      { deletionTimestamp: '2024-01-01T00:00:00Z' },
      'metadata.deletionTimestamp',
      'terminating; pod not routed',
    ],
    [
      'pending',
      { status: { ...readyStatus, phase: 'Pending' } },
      'status.phase',
      'has phase "Pending", not "Running"; pod not routed',
    ],
    [
      'without phase',
      { status: { podIP: '10.0.0.7' } },
      'status.phase',
      'has no phase, not "Running"; pod not routed',
    ],
    [
      'without IP',
      { status: { ...readyStatus, podIP: undefined } },
      'status.podIP',
      'has no pod IP; pod not routed',
    ],
    [
      'with an invalid IP',
      { status: { ...readyStatus, podIP: '10.0.0.7; evil' } },
      'status.podIP',
      '"10.0.0.7; evil" is not an IP address; pod not routed',
    ],
    [
      'not ready',
      { status: { ...readyStatus, conditions: [{ type: 'Ready', status: 'False' }] } },
      'status.conditions',
      'not ready; pod not routed',
    ],
    [
      'without conditions',
      { status: { phase: 'Running', podIP: '10.0.0.7' } },
      'status.conditions',
      'not ready; pod not routed',
    ],
  ])('a pod %s gives one info diagnostic', (_, options, diagField, reason) => {
    expect(convert(pod([good], options))).toEqual({
      value: null,
      diagnostics: [{ severity: 'info', object: 'Pod team-a/web-1', field: diagField, reason }],
    });
  });

  it.each<[PodOptions, string]>([
    [{ name: 'Web_1' }, 'metadata.name'],
    [{ name: 'web\n1' }, 'metadata.name'],
    [{ name: 'a'.repeat(254) }, 'metadata.name'],
    [{ namespace: 'Team A' }, 'metadata.namespace'],
    [{ namespace: 7 }, 'metadata.namespace'],
  ])('refuses invalid names %j', (options, diagField) => {
    const result = convert(pod([good], options));
    expect(result.value).toBeNull();
    expect(result.diagnostics).toEqual([expect.objectContaining({ severity: 'warning', field: diagField })]);
    expect(result.diagnostics[0]?.object).toMatch(/^Pod [ -~…]+$/);
  });
});

describe('toPod: a paths annotation that is not a list of entries', () => {
  it.each<[string, RegExp]>([
    ['not json', /is not valid JSON; no routes/],
    [
      '{"basePath": "/", "containerPort": "3000"}',
      /is an object, expected a JSON array of path entries; no routes/,
    ],
    ['"/"', /is a string, expected a JSON array/],
    ['null', /is null, expected a JSON array/],
    ['3000', /is a number/],
  ])('%j', (text, reason) => {
    const { routes, diagnostics } = routesOf(text);
    expect(routes).toEqual([]);
    expect(diagnostics).toEqual([
      expect.objectContaining({ severity: 'warning', field, reason: expect.stringMatching(reason) }),
    ]);
  });

  it('refuses an annotation larger than 64 KiB whole', () => {
    const entries = [good, { basePath: `/${'a'.repeat(1000)}`, containerPort: 3000 }];
    const padded = `${JSON.stringify(entries)}${' '.repeat(65536)}`;
    const { routes, diagnostics } = routesOf(padded);
    expect(routes).toEqual([]);
    expect(diagnostics[0]?.reason).toMatch(/more than the limit of 65536; ignored whole; no routes/);
  });

  it('refuses more than 100 entries whole, accepts 100', () => {
    const entries = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ basePath: `/p${i}`, containerPort: 3000 }));
    const over = routesOf(entries(101));
    expect(over.routes).toEqual([]);
    expect(over.diagnostics[0]?.reason).toBe('has 101 entries, more than the limit of 100; no routes');
    expect(routesOf(entries(100)).routes).toHaveLength(100);
  });
});

/** The bad entry sits at index 1, behind a good one; the good one must still route. */
function expectOnlyBadEntryLeftOut(bad: unknown, badField: string, reason: RegExp | string): void {
  const { routes, diagnostics } = routesOf([good, bad]);
  expect(routes).toEqual([{ basePath: '/good', port: 3000 }]);
  expect(diagnostics).toEqual([
    {
      severity: 'warning',
      object: 'Pod team-a/web-1',
      field: `${field}[1]${badField}`,
      reason: expect.stringMatching(reason),
    },
  ]);
  expect(diagnostics[0]?.reason).toMatch(/; entry left out$/);
  expect(`${diagnostics[0]?.field} ${diagnostics[0]?.reason}`).toMatch(/^[\x20-\x7e…]+$/);
}

const badPaths: unknown[] = [
  'relative',
  '',
  '/a;b',
  '/a{b',
  '/a}b',
  '/a"b',
  "/a'b",
  '/$uri',
  '/a#b',
  '/a b',
  '/a\tb',
  '/a\nb',
  '/a\rb',
  '/a\r\n  return 200',
  '/ü',
  '/a//b',
  '/a/../b',
  '/./x',
  '/a?b',
  '/a\\b',
  '/%zz',
  `/${'a'.repeat(1024)}`,
  42,
  null,
  ['/'],
];

describe('toPod: each bad entry is left out whole while the others still route', () => {
  it.each(badPaths)('basePath %j', (bad) => {
    expectOnlyBadEntryLeftOut({ basePath: bad, containerPort: 3000 }, '.basePath', /path/);
  });

  it.each(badPaths)('targetPath %j', (bad) => {
    expectOnlyBadEntryLeftOut(
      { basePath: '/x', containerPort: 3000, targetPath: bad },
      '.targetPath',
      /path/,
    );
  });

  it.each<[unknown, RegExp]>([
    [' 3000', /neither a port/],
    ['3000 ', /neither a port/],
    ['0x1f90', /neither a port/],
    ['1e3', /neither a port/],
    [3000.5, /is not a port/],
    ['3000.5', /neither a port/],
    ['03000', /is not a port/],
    ['+3000', /neither a port/],
    [0, /is not a port/],
    ['0', /is not a port/],
    [65536, /is not a port/],
    ['65536', /is not a port/],
    [-3000, /is not a port/],
    ['3000;', /neither a port/],
    ['３０００', /neither a port/],
    ['', /neither a port/],
    [null, /neither a port/],
    [true, /neither a port/],
    [[3000], /neither a port/],
    [9999, /port 9999 is not declared by any container of the pod/],
    ['9999', /port 9999 is not declared/],
    ['metrics', /"metrics" is neither a port .* nor the name of a port a container declares/],
    ['HTTP', /neither a port/],
  ])('containerPort %j', (bad, reason) => {
    expectOnlyBadEntryLeftOut({ basePath: '/x', containerPort: bad }, '.containerPort', reason);
  });

  it.each(['5', 0, 1001, 5.5, -1, null, '1e2', true])('weight %j', (bad) => {
    expectOnlyBadEntryLeftOut(
      { basePath: '/x', containerPort: 3000, weight: bad },
      '.weight',
      /not a weight/,
    );
  });

  it.each<[unknown, string, RegExp]>([
    ['a string', '', /is a string, expected an object/],
    [null, '', /is null/],
    [3000, '', /is a number/],
    [{ basepath: '/x', basePath: '/x', containerPort: 3000 }, '["basepath"]', /unknown field/],
    [{ basePath: '/x', containerPort: 3000, 'x\n': 1 }, '["x\\n"]', /unknown field/],
    [{ containerPort: 3000 }, '.basePath', /is required/],
    [{ basePath: '/x' }, '.containerPort', /is required/],
  ])('entry %j', (bad, badField, reason) => {
    expectOnlyBadEntryLeftOut(bad, badField, reason);
  });

  it('names every invalid field of an entry', () => {
    const { routes, diagnostics } = routesOf([
      { basePath: 'x', containerPort: '0x1f90', weight: '5', extra: 1 },
      good,
    ]);
    expect(routes).toEqual([{ basePath: '/good', port: 3000 }]);
    expect(diagnostics.map((d) => d.field)).toEqual([
      `${field}[0]["extra"]`,
      `${field}[0].basePath`,
      `${field}[0].containerPort`,
      `${field}[0].weight`,
    ]);
  });

  it('keeps the first of two entries with the same basePath', () => {
    const { routes, diagnostics } = routesOf([
      { basePath: '/bad', containerPort: 1 },
      good,
      { basePath: '/good', containerPort: 8080 },
    ]);
    expect(routes).toEqual([{ basePath: '/good', port: 3000 }]);
    expect(diagnostics.map((d) => [d.field, d.reason])).toEqual([
      [`${field}[0].containerPort`, 'port 1 is not declared by any container of the pod; entry left out'],
      [`${field}[2].basePath`, 'duplicate of entry [1] (basePath /good); entry left out'],
    ]);
  });
});

describe('toPod: health checks from probes', () => {
  const route = (paths: unknown, options: PodOptions) => routesOf(paths, options);

  it('builds an http check from the readinessProbe of the container declaring the port', () => {
    const options = probed({
      readinessProbe: {
        httpGet: { path: '/healthz', port: 3000 },
        periodSeconds: 5,
        timeoutSeconds: 2,
        successThreshold: 2,
        failureThreshold: 4,
      },
      livenessProbe: { tcpSocket: { port: 3000 } },
    });
    expect(route([good], options)).toEqual({
      routes: [
        {
          basePath: '/good',
          port: 3000,
          healthCheck: {
            type: 'http',
            intervalMs: 5000,
            timeoutMs: 2000,
            rise: 2,
            fall: 4,
            port: 3000,
            path: '/healthz',
          },
        },
      ],
      diagnostics: [],
    });
  });

  it('fills Kubernetes defaults, resolves a named probe port and defaults the path to /', () => {
    const { routes } = route([good], probed({ readinessProbe: { httpGet: { port: 'http' } } }));
    expect(routes?.[0]?.healthCheck).toEqual({
      type: 'http',
      intervalMs: 10000,
      timeoutMs: 1000,
      rise: 1,
      fall: 3,
      port: 3000,
      path: '/',
    });
  });

  it('falls back to the livenessProbe; tcpSocket gives a tcp check', () => {
    const { routes } = route(
      [good],
      probed({ livenessProbe: { tcpSocket: { port: 3001 }, failureThreshold: 5 } }),
    );
    expect(routes?.[0]?.healthCheck).toEqual({
      type: 'tcp',
      intervalMs: 10000,
      timeoutMs: 1000,
      rise: 1,
      fall: 5,
      port: 3001,
    });
  });

  it('takes the probe of the container that declares the routed port', () => {
    const options: PodOptions = {
      containers: [
        { name: 'web', ports: [{ containerPort: 3000 }], readinessProbe: { tcpSocket: { port: 3000 } } },
        {
          name: 'side',
          ports: [{ name: 'side', containerPort: 9000 }],
          readinessProbe: { httpGet: { port: 'side', path: '/ok' } },
        },
      ],
    };
    const { routes } = route([good, { basePath: '/side', containerPort: 9000 }], options);
    expect(routes?.map((r) => [r.basePath, r.healthCheck?.type, r.healthCheck?.port])).toEqual([
      ['/good', 'tcp', 3000],
      ['/side', 'http', 9000],
    ]);
  });

  it.each([
    ['exec', { readinessProbe: { exec: { command: ['true'] } } }],
    ['grpc', { readinessProbe: { grpc: { port: 3000 } } }],
    ['no probe', {}],
    [
      'an exec readinessProbe even with an http livenessProbe',
      { readinessProbe: { exec: {} }, livenessProbe: { httpGet: { port: 3000 } } },
    ],
  ])('%s gives no health check and no diagnostic', (_, probes) => {
    expect(route([good], probed(probes))).toEqual({
      routes: [{ basePath: '/good', port: 3000 }],
      diagnostics: [],
    });
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    [
      'an invalid path',
      { readinessProbe: { httpGet: { port: 3000, path: '/health?full=1' } } },
      'readinessProbe.httpGet.path',
      /is not a valid path/,
    ],
    [
      'a path with nginx syntax',
      { readinessProbe: { httpGet: { port: 3000, path: '/h";\r\n' } } },
      'readinessProbe.httpGet.path',
      /is not a valid path/,
    ],
    [
      'an unknown port name',
      { readinessProbe: { httpGet: { port: 'nope' } } },
      'readinessProbe.httpGet.port',
      /"nope" is neither a port/,
    ],
    [
      'an invalid port',
      { livenessProbe: { tcpSocket: { port: 70000 } } },
      'livenessProbe.tcpSocket.port',
      /is not a port/,
    ],
    [
      'an HTTPS probe',
      { readinessProbe: { httpGet: { port: 3000, scheme: 'HTTPS' } } },
      'readinessProbe.httpGet.scheme',
      /HTTP only/,
    ],
    [
      'a zero period',
      { readinessProbe: { tcpSocket: { port: 3000 }, periodSeconds: 0 } },
      'readinessProbe.periodSeconds',
      /not an integer 1-86400/,
    ],
    [
      'a string timeout',
      { readinessProbe: { tcpSocket: { port: 3000 }, timeoutSeconds: '5' } },
      'readinessProbe.timeoutSeconds',
      /"5" is not an integer/,
    ],
  ])('%s: the route stays, without health check, with a diagnostic', (_, probes, probeField, reason) => {
    const { routes, diagnostics } = route(
      [good, { basePath: '/also', containerPort: 'http' }],
      probed(probes),
    );
    expect(routes).toEqual([
      { basePath: '/good', port: 3000 },
      { basePath: '/also', port: 3000 },
    ]);
    // Reported once for the container, not once per route.
    expect(diagnostics).toEqual([
      {
        severity: 'warning',
        object: 'Pod team-a/web-1',
        field: `spec.containers[0].${probeField}`,
        reason: expect.stringMatching(reason),
      },
    ]);
    expect(diagnostics[0]?.reason).toMatch(/; no health check$/);
  });
});
