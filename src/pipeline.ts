// The pure pipeline from cluster objects to a routing table and render options: what the CLI,
// the live controller and the tests share.

import { isRoutingKind } from './kinds.js';
import { modelConfigFrom } from './model/config.js';
import { parseSelector, type Selector } from './model/selector.js';
import { plan, planOptionsFrom } from './plan.js';
import { createStore, type Store } from './store.js';
import type { Config, HealthCheckMode, KubeObject, RenderOptions, RoutingTable } from './types.js';

export interface NginxFacts {
  /** What the nginx in use supports when health checks are enabled. */
  healthChecks: Exclude<HealthCheckMode, 'off'>;
  prefixRelativePaths: boolean;
}

/** The selector of a validated configuration (config.ts already refused one that does not parse). */
export function selectorOf(config: Config): Selector {
  const parsed = parseSelector(config.routableLabelSelector);
  if (!parsed.ok) throw new Error(`ROUTABLE_LABEL_SELECTOR: ${parsed.reason}`);
  return parsed.value;
}

/** The annotations the model reads; a source may drop every other one. */
export function annotationsRead(config: Config): string[] {
  return [config.hostsAnnotation, config.pathsAnnotation];
}

export function storeFor(config: Config): Store {
  return createStore(modelConfigFrom(config), selectorOf(config));
}

/** Every object (Namespaces, Pods, Secrets, any order; other kinds ignored) → the routing table. */
export function routeObjects(objects: readonly KubeObject[], config: Config): RoutingTable {
  const store = storeFor(config);
  for (const object of objects) {
    if (isRoutingKind(object.kind)) store.apply({ type: 'added', kind: object.kind, object });
  }
  return plan(store.snapshot(), planOptionsFrom(config));
}

export function renderOptionsFrom(config: Config, facts: NginxFacts): RenderOptions {
  return {
    port: config.port,
    sslPort: config.sslPort,
    ...(config.sslCert !== undefined &&
      config.sslKey !== undefined && { ssl: { certificate: config.sslCert, certificateKey: config.sslKey } }),
    statusPath: config.statusPath,
    apiKeyHeader: config.apiKeyHeader,
    defaultLocationReturn: config.defaultLocationReturn,
    maxClientBodySize: config.maxClientBodySize,
    workerShutdownTimeout: config.workerShutdownTimeout,
    healthChecks: config.enableHealthChecks ? facts.healthChecks : 'off',
    prefixRelativePaths: facts.prefixRelativePaths,
  };
}

/** The table of a cluster with nothing routable: what nginx serves before the first list. */
export function emptyTable(): RoutingTable {
  return { servers: [], upstreams: [], tlsFiles: [], diagnostics: [], stats: { namespaces: 0, pods: 0 } };
}
