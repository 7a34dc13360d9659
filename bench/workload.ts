// The synthetic cluster every figure uses, the same shape at every size: N namespaces app-<i>, each
// listing hosts app-<i>.example.com and app-<i>.internal; P pods per namespace, each routing `/` to
// the web port and `/api` to the api port with targetPath /v1; every odd namespace has a routing
// secret with an API key. Pods look like what the API server returns (managedFields, labels,
// annotations, containers with env, volumes and probes, status with conditions): 5–6 KB of JSON.
import type { ApiObject, ObjectMeta } from '../test/support/kube-objects.js';

export interface Size {
  namespaces: number;
  podsPerNamespace: number;
}

export const SIZES: readonly Size[] = [
  { namespaces: 10, podsPerNamespace: 10 },
  { namespaces: 100, podsPerNamespace: 10 },
  { namespaces: 1000, podsPerNamespace: 10 },
  { namespaces: 10, podsPerNamespace: 1000 },
];

export function sizeLabel(size: Size): string {
  return `${size.namespaces}×${size.podsPerNamespace}`;
}

export function podCount(size: Size): number {
  return size.namespaces * size.podsPerNamespace;
}

/** Two upstreams per namespace (`/` and `/api`), shared by both of its hosts. */
export function upstreamCount(size: Size): number {
  return size.namespaces * 2;
}

/** The container ports pods declare and nginx connects to: free high ports in live figures. */
export interface Ports {
  web: number;
  api: number;
}

/** The numbers; only for figures that render without sending traffic. */
export const NOMINAL_PORTS: Ports = { web: 8080, api: 9000 };

export const ROUTABLE_LABEL = 'github.com/30x.dispatcher.routable';
export const HOSTS_ANNOTATION = 'github.com/30x.dispatcher.hosts';
export const PATHS_ANNOTATION = 'github.com/30x.dispatcher.paths';
export const APP_NAME_LABEL = 'github.com/30x.dispatcher.app.name';
export const APP_REV_LABEL = 'github.com/30x.dispatcher.app.rev';
export const ORG_LABEL = 'github.com/30x.dispatcher.org';
export const ENV_LABEL = 'github.com/30x.dispatcher.env';
export const API_KEY_HEADER = 'X-ROUTING-API-KEY';

export const namespaceName = (i: number): string => `app-${i}`;
export const publicHost = (i: number): string => `app-${i}.example.com`;
export const internalHost = (i: number): string => `app-${i}.internal`;
export const hasSecret = (i: number): boolean => i % 2 === 1;
export const apiKeyOf = (i: number, generation = 0): string => `key-${i}-${generation}-s3cr3t`;
/** What a request must send in API_KEY_HEADER for a key: the base64 of its value. */
export const apiKeyHeaderValue = (key: string): string => Buffer.from(key).toString('base64');

/**
 * Pod addresses across 127.1.0.0–127.200.255.255 (all of 127.0.0.0/8 is loopback on Linux), never
 * 127.0.0.x, so that every upstream server line is unique while one backend on 0.0.0.0 answers
 * for all of them. Index 0..12,499,999.
 */
export function podIp(index: number): string {
  const a = 1 + Math.floor(index / 62_500);
  const b = Math.floor(index / 250) % 250;
  const c = 1 + (index % 250);
  return `127.${a}.${b}.${c}`;
}

/** Pod IPs of the initial cluster use indexes below this; probes and replacements use others. */
export const SPARE_IP_BASE = 1_000_000;

const BASE_TIME = Date.parse('2024-03-01T08:00:00Z');
const iso = (offsetSeconds: number): string =>
  new Date(BASE_TIME + offsetSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function routableNamespace(i: number): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: namespaceName(i),
      creationTimestamp: iso(i),
      labels: {
        [ROUTABLE_LABEL]: 'true',
        [ORG_LABEL]: `org-${i % 37}`,
        [ENV_LABEL]: i % 3 === 0 ? 'prod' : 'test',
        'kubernetes.io/metadata.name': namespaceName(i),
      },
      annotations: {
        [HOSTS_ANNOTATION]: JSON.stringify({ [publicHost(i)]: {}, [internalHost(i)]: {} }),
      },
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

export function routingSecret(i: number, generation = 0): ApiObject {
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'routing', namespace: namespaceName(i), creationTimestamp: iso(i) },
    type: 'Opaque',
    data: {
      'api-key': b64(apiKeyOf(i, generation)),
      'public-api-key': b64(`public-${apiKeyOf(i, generation)}`),
    },
  };
}

export interface PodSpecOptions {
  namespace: number;
  /** Pod number inside its namespace (names) and global index (address). */
  ordinal: number;
  ipIndex: number;
  ports: Ports;
  /** The paths annotation; the standard `/` + `/api` when absent. */
  paths?: unknown[];
  /** Distinguishes replacement pods from the ones they replace. */
  generation?: number;
  ready?: boolean;
  restartCount?: number;
}

export function standardPaths(ports: Ports): unknown[] {
  return [
    { basePath: '/', containerPort: String(ports.web) },
    { basePath: '/api', containerPort: String(ports.api), targetPath: '/v1' },
  ];
}

const podName = (ns: number, ordinal: number, generation: number): string =>
  `web-${ns.toString(36)}${generation.toString(36)}f8c9d-${ordinal.toString(36).padStart(5, 'x')}`;

/** A pod as the API server returns it: 5–6 KB of JSON. */
export function realisticPod(options: PodSpecOptions): ApiObject {
  const { namespace: nsIndex, ordinal, ports } = options;
  const generation = options.generation ?? 0;
  const ns = namespaceName(nsIndex);
  const name = podName(nsIndex, ordinal, generation);
  const ip = podIp(options.ipIndex);
  const ready = options.ready ?? true;
  const readyText = ready ? 'True' : 'False';
  const created = iso(3600 + nsIndex + ordinal);
  const started = iso(3605 + nsIndex + ordinal);
  const template = `${nsIndex.toString(36)}${generation.toString(36)}f8c9d`;
  const owner = `0c1e${nsIndex.toString(16).padStart(4, '0')}-5b2a-4d7e-9c31-${generation.toString(16).padStart(12, '0')}`;
  const env = [
    ['NODE_ENV', 'production'],
    ['LOG_LEVEL', 'info'],
    ['PORT', String(ports.web)],
    ['API_PORT', String(ports.api)],
    ['DATABASE_URL', `postgres://app:password@db.${ns}.svc.cluster.local:5432/app`],
    ['REDIS_URL', `redis://cache.${ns}.svc.cluster.local:6379/0`],
    ['FEATURE_FLAGS', 'checkout-v2,search-suggestions,new-header'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'http://otel-collector.observability.svc:4317'],
  ].map(([key, value]) => ({ name: key, value }));
  const probe = (path: string, port: string, period: number) => ({
    httpGet: { path, port, scheme: 'HTTP' },
    initialDelaySeconds: 5,
    timeoutSeconds: 2,
    periodSeconds: period,
    successThreshold: 1,
    failureThreshold: 3,
  });
  const conditionFields = (type: string) => ({
    [`k:{"type":"${type}"}`]: {
      '.': {},
      'f:lastProbeTime': {},
      'f:lastTransitionTime': {},
      'f:status': {},
      'f:type': {},
    },
  });
  // generateName, ownerReferences and managedFields are not fields the tests' ObjectMeta names.
  const metadata: ObjectMeta & Record<string, unknown> = {
    name,
    namespace: ns,
    creationTimestamp: created,
    labels: {
      [ROUTABLE_LABEL]: 'true',
      [APP_NAME_LABEL]: 'web',
      [APP_REV_LABEL]: `r${generation}`,
      'app.kubernetes.io/name': 'web',
      'app.kubernetes.io/instance': `${ns}-web`,
      'app.kubernetes.io/version': '3.14.2',
      'pod-template-hash': template,
      team: `team-${nsIndex % 11}`,
    },
    annotations: {
      [PATHS_ANNOTATION]: JSON.stringify(options.paths ?? standardPaths(ports)),
      'kubectl.kubernetes.io/restartedAt': iso(3000),
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '9102',
      'cluster-autoscaler.kubernetes.io/safe-to-evict': 'true',
    },
    generateName: `web-${template}-`,
    ownerReferences: [
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: `web-${template}`,
        uid: owner,
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
    managedFields: [
      {
        manager: 'kube-controller-manager',
        operation: 'Update',
        apiVersion: 'v1',
        time: created,
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:metadata': {
            'f:annotations': {
              '.': {},
              [`f:${PATHS_ANNOTATION}`]: {},
              'f:kubectl.kubernetes.io/restartedAt': {},
              'f:prometheus.io/port': {},
              'f:prometheus.io/scrape': {},
            },
            'f:generateName': {},
            'f:labels': {
              '.': {},
              'f:app.kubernetes.io/instance': {},
              'f:app.kubernetes.io/name': {},
              'f:pod-template-hash': {},
              [`f:${ROUTABLE_LABEL}`]: {},
            },
            'f:ownerReferences': { '.': {}, [`k:{"uid":"${owner}"}`]: {} },
          },
          'f:spec': {
            'f:containers': {
              'k:{"name":"app"}': {
                '.': {},
                'f:env': Object.fromEntries(
                  env.map((e) => [`k:{"name":"${e.name}"}`, { '.': {}, 'f:name': {}, 'f:value': {} }]),
                ),
                'f:image': {},
                'f:imagePullPolicy': {},
                'f:livenessProbe': { '.': {}, 'f:httpGet': { '.': {}, 'f:path': {}, 'f:port': {} } },
                'f:name': {},
                'f:ports': {
                  '.': {},
                  [`k:{"containerPort":${ports.web},"protocol":"TCP"}`]: {
                    '.': {},
                    'f:containerPort': {},
                    'f:name': {},
                  },
                  [`k:{"containerPort":${ports.api},"protocol":"TCP"}`]: {
                    '.': {},
                    'f:containerPort': {},
                    'f:name': {},
                  },
                },
                'f:readinessProbe': { '.': {}, 'f:httpGet': { '.': {}, 'f:path': {}, 'f:port': {} } },
                'f:resources': { '.': {}, 'f:limits': {}, 'f:requests': {} },
                'f:volumeMounts': {
                  '.': {},
                  'k:{"mountPath":"/etc/app"}': { '.': {}, 'f:mountPath': {}, 'f:name': {} },
                },
              },
            },
            'f:dnsPolicy': {},
            'f:enableServiceLinks': {},
            'f:restartPolicy': {},
            'f:schedulerName': {},
            'f:securityContext': {},
            'f:terminationGracePeriodSeconds': {},
            'f:volumes': { '.': {}, 'k:{"name":"config"}': { '.': {}, 'f:configMap': {}, 'f:name': {} } },
          },
        },
      },
      {
        manager: 'kubelet',
        operation: 'Update',
        apiVersion: 'v1',
        time: started,
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:status': {
            'f:conditions': {
              ...conditionFields('ContainersReady'),
              ...conditionFields('Initialized'),
              ...conditionFields('PodReadyToStartContainers'),
              ...conditionFields('Ready'),
            },
            'f:containerStatuses': {},
            'f:hostIP': {},
            'f:hostIPs': {},
            'f:phase': {},
            'f:podIP': {},
            'f:podIPs': { '.': {}, [`k:{"ip":"${ip}"}`]: { '.': {}, 'f:ip': {} } },
            'f:startTime': {},
          },
        },
        subresource: 'status',
      },
    ],
  };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec: {
      volumes: [
        { name: 'config', configMap: { name: 'web-config', defaultMode: 420 } },
        {
          name: 'kube-api-access-x7k2p',
          projected: {
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              {
                downwardAPI: {
                  items: [
                    { path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
                  ],
                },
              },
            ],
            defaultMode: 420,
          },
        },
      ],
      containers: [
        {
          name: 'app',
          image: 'registry.example.com/shop/web:3.14.2',
          ports: [
            { name: 'http', containerPort: ports.web, protocol: 'TCP' },
            { name: 'api', containerPort: ports.api, protocol: 'TCP' },
          ],
          env,
          resources: { limits: { cpu: '1', memory: '512Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
          volumeMounts: [
            { name: 'config', readOnly: true, mountPath: '/etc/app' },
            {
              name: 'kube-api-access-x7k2p',
              readOnly: true,
              mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
            },
          ],
          livenessProbe: probe('/healthz', 'http', 20),
          readinessProbe: probe('/ready', 'http', 10),
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      serviceAccount: 'default',
      nodeName: `node-${nsIndex % 7}.cluster.example.com`,
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        {
          key: 'node.kubernetes.io/not-ready',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
        {
          key: 'node.kubernetes.io/unreachable',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {
      phase: 'Running',
      conditions: [
        {
          type: 'PodReadyToStartContainers',
          status: 'True',
          lastProbeTime: null,
          lastTransitionTime: started,
        },
        { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: created },
        { type: 'Ready', status: readyText, lastProbeTime: null, lastTransitionTime: started },
        { type: 'ContainersReady', status: readyText, lastProbeTime: null, lastTransitionTime: started },
        { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: created },
      ],
      hostIP: `10.0.${nsIndex % 7}.10`,
      hostIPs: [{ ip: `10.0.${nsIndex % 7}.10` }],
      podIP: ip,
      podIPs: [{ ip }],
      startTime: created,
      containerStatuses: [
        {
          name: 'app',
          state: { running: { startedAt: started } },
          lastState: {},
          ready,
          restartCount: options.restartCount ?? 0,
          image: 'registry.example.com/shop/web:3.14.2',
          imageID:
            'registry.example.com/shop/web@sha256:4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2918070605040302010f',
          containerID: `containerd://${owner.replace(/-/g, '')}${ordinal.toString(16).padStart(24, '0')}`,
          started: true,
        },
      ],
      qosClass: 'Burstable',
    },
  };
}

/** Sets a pod's readiness as the kubelet reports it (Ready and ContainersReady, container ready). */
export function setReady(pod: ApiObject, ready: boolean): void {
  const status = ready ? 'True' : 'False';
  for (const condition of pod.status.conditions as { type: string; status: string }[]) {
    if (condition.type === 'Ready' || condition.type === 'ContainersReady') condition.status = status;
  }
  for (const container of pod.status.containerStatuses as { ready: boolean }[]) container.ready = ready;
}

/** What the kubelet changes most often and routing ignores: a restart count and its timestamps. */
export function bumpRestart(pod: ApiObject, at: number): void {
  const container = (pod.status.containerStatuses as Record<string, unknown>[])[0];
  if (!container) return;
  container.restartCount = Number(container.restartCount ?? 0) + 1;
  container.lastState = { terminated: { exitCode: 137, reason: 'OOMKilled', finishedAt: iso(at) } };
  container.state = { running: { startedAt: iso(at + 1) } };
}

export interface Cluster {
  namespaces: ApiObject[];
  secrets: ApiObject[];
  pods: ApiObject[];
}

/** Every object of a size; pod j of namespace i has address podIp(i * P + j). */
export function buildCluster(size: Size, ports: Ports): Cluster {
  const namespaces: ApiObject[] = [];
  const secrets: ApiObject[] = [];
  const pods: ApiObject[] = [];
  for (let i = 0; i < size.namespaces; i++) {
    namespaces.push(routableNamespace(i));
    if (hasSecret(i)) secrets.push(routingSecret(i));
    for (let j = 0; j < size.podsPerNamespace; j++) {
      pods.push(realisticPod({ namespace: i, ordinal: j, ipIndex: i * size.podsPerNamespace + j, ports }));
    }
  }
  return { namespaces, secrets, pods };
}

export function allObjects(cluster: Cluster): ApiObject[] {
  return [...cluster.namespaces, ...cluster.secrets, ...cluster.pods];
}
