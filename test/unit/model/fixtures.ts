// Small builders for the model tests: the default configuration and objects as a cluster sends them.
import type { ModelConfig } from '../../../src/model/config.js';
import { parseSelector, type Selector } from '../../../src/model/selector.js';
import type { KubeObject } from '../../../src/types.js';

export const HOSTS = 'github.com/30x.dispatcher.hosts';
export const PATHS = 'github.com/30x.dispatcher.paths';
export const ROUTABLE = { 'github.com/30x.dispatcher.routable': 'true' };

export const cfg: ModelConfig = {
  hostsAnnotation: HOSTS,
  pathsAnnotation: PATHS,
  orgLabel: 'github.com/30x.dispatcher.org',
  envLabel: 'github.com/30x.dispatcher.env',
  appNameLabel: 'github.com/30x.dispatcher.app.name',
  appRevLabel: 'github.com/30x.dispatcher.app.rev',
  apiKeySecretName: 'routing',
  apiKeySecretField: 'api-key',
  routeUnreadyPods: false,
};

export function selector(text = 'github.com/30x.dispatcher.routable=true'): Selector {
  const parsed = parseSelector(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
}

export function namespace(hosts: unknown, extra: { name?: unknown; labels?: unknown } = {}): KubeObject {
  return {
    kind: 'Namespace',
    metadata: {
      name: (extra.name ?? 'team-a') as string,
      labels: (extra.labels ?? ROUTABLE) as Record<string, string>,
      creationTimestamp: '2020-01-02T03:04:05Z',
      ...(hosts !== undefined && { annotations: { [HOSTS]: hosts as string } }),
    },
  };
}

export interface PodOptions {
  name?: unknown;
  namespace?: unknown;
  labels?: Record<string, string>;
  containers?: unknown[];
  status?: unknown;
  deletionTimestamp?: string;
}

export const readyStatus = {
  phase: 'Running',
  podIP: '10.0.0.7',
  conditions: [{ type: 'Ready', status: 'True' }],
};

/** A ready pod whose container declares ports 3000 ("http") and 8080 ("admin"). */
export function pod(paths: unknown, options: PodOptions = {}): KubeObject {
  return {
    kind: 'Pod',
    metadata: {
      name: (options.name ?? 'web-1') as string,
      namespace: (options.namespace ?? 'team-a') as string,
      labels: options.labels ?? ROUTABLE,
      ...(options.deletionTimestamp !== undefined && { deletionTimestamp: options.deletionTimestamp }),
      ...(paths !== undefined && {
        annotations: { [PATHS]: (typeof paths === 'string' ? paths : JSON.stringify(paths)) as string },
      }),
    },
    spec: {
      containers: options.containers ?? [
        {
          name: 'web',
          ports: [
            { name: 'http', containerPort: 3000 },
            { name: 'admin', containerPort: 8080 },
          ],
        },
      ],
    },
    status: options.status ?? readyStatus,
  };
}

export function secret(
  data: unknown,
  extra: { name?: string; namespace?: unknown; stringData?: unknown } = {},
): KubeObject {
  return {
    kind: 'Secret',
    metadata: { name: extra.name ?? 'routing', namespace: (extra.namespace ?? 'team-a') as string },
    ...(data !== undefined && { data: data as Record<string, string> }),
    ...(extra.stringData !== undefined && { stringData: extra.stringData as Record<string, string> }),
  };
}

export const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
