// Builders for valid v1 Namespaces, Pods and Secrets as the API server sends them (JSON, timestamps
// as ISO strings), for the test API server and for tests that feed sources directly.
import type { ObjectKind } from '../../src/types.js';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A v1 object on the wire. Assignable to `KubeObject` of src/types.ts. */
export interface ApiObject {
  apiVersion: string;
  kind: ObjectKind;
  metadata: ObjectMeta;
  // biome-ignore lint/suspicious/noExplicitAny: free-form JSON, as the API server sends it
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: free-form JSON, as the API server sends it
  status?: any;
  data?: Record<string, string>;
  type?: string;
}

export interface MetaOptions {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** ISO timestamp; the server sets "now" when absent. */
  creationTimestamp?: string;
}

export function namespace(name: string, options: MetaOptions = {}): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, ...metaFields(options) },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

export interface ContainerPort {
  containerPort: number;
  name?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface ProbeHandler {
  httpGet?: { path?: string; port: number | string; scheme?: 'HTTP' | 'HTTPS' };
  tcpSocket?: { port: number | string };
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  initialDelaySeconds?: number;
}

export interface PodOptions extends MetaOptions {
  /** status.podIP; `null` leaves it out (a pod not yet scheduled). Default 127.0.0.1. */
  ip?: string | null;
  /** Ports of the pod's single container: numbers or full port objects. */
  ports?: Array<number | ContainerPort>;
  /** Ready condition (and container readiness). Default true. */
  ready?: boolean;
  /** status.phase. Default Running. */
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  probes?: { readiness?: ProbeHandler; liveness?: ProbeHandler };
  /** Marks the pod as terminating. */
  deletionTimestamp?: string;
  /** Replaces the single generated container (ports and probes are then ignored). */
  containers?: unknown[];
}

export function pod(ns: string, name: string, options: PodOptions = {}): ApiObject {
  const ready = options.ready ?? true;
  const phase = options.phase ?? 'Running';
  const ip = options.ip === undefined ? '127.0.0.1' : options.ip;
  const readyStatus = ready ? 'True' : 'False';
  const containers = options.containers ?? [
    {
      name: 'app',
      image: 'example/app:1',
      ports: (options.ports ?? []).map((p) =>
        typeof p === 'number' ? { containerPort: p, protocol: 'TCP' } : { protocol: 'TCP', ...p },
      ),
      ...(options.probes?.readiness ? { readinessProbe: options.probes.readiness } : {}),
      ...(options.probes?.liveness ? { livenessProbe: options.probes.liveness } : {}),
    },
  ];
  const since = options.creationTimestamp ?? '2024-01-01T00:00:00Z';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: ns,
      ...metaFields(options),
      ...(options.deletionTimestamp ? { deletionTimestamp: options.deletionTimestamp } : {}),
    },
    spec: { containers, nodeName: 'node-1', restartPolicy: 'Always' },
    status: {
      phase,
      ...(ip === null ? {} : { podIP: ip, podIPs: [{ ip }], hostIP: '10.0.0.1' }),
      conditions: [
        { type: 'Initialized', status: 'True', lastTransitionTime: since },
        { type: 'Ready', status: readyStatus, lastTransitionTime: since },
        { type: 'ContainersReady', status: readyStatus, lastTransitionTime: since },
        { type: 'PodScheduled', status: 'True', lastTransitionTime: since },
      ],
      containerStatuses: containers.map((c) => ({
        name: (c as { name?: string }).name ?? 'app',
        ready,
        restartCount: 0,
        image: 'example/app:1',
        imageID: '',
        started: phase === 'Running',
        state: phase === 'Running' ? { running: { startedAt: since } } : { waiting: { reason: 'Pending' } },
      })),
    },
  };
}

/** A secret of type Opaque; `data` values are plain text and are base64-encoded here. */
export function secret(
  ns: string,
  name: string,
  data: Record<string, string> = {},
  options: MetaOptions = {},
): ApiObject {
  const encoded: Record<string, string> = {};
  for (const [key, value] of Object.entries(data)) encoded[key] = Buffer.from(value).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns, ...metaFields(options) },
    type: 'Opaque',
    data: encoded,
  };
}

function metaFields(options: MetaOptions): Partial<ObjectMeta> {
  return {
    ...(options.labels ? { labels: { ...options.labels } } : {}),
    ...(options.annotations ? { annotations: { ...options.annotations } } : {}),
    ...(options.creationTimestamp ? { creationTimestamp: options.creationTimestamp } : {}),
  };
}
