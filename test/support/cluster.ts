// Short builders for routable objects and a validated configuration, shared by tests that route
// small clusters (plan, admin, hostile input).
import { loadConfig } from '../../src/config.js';
import type { Config, KubeObject } from '../../src/types.js';
import { namespace, pod } from './kube-objects.js';

export const ROUTABLE = { 'github.com/30x.dispatcher.routable': 'true' };
export const HOSTS = 'github.com/30x.dispatcher.hosts';
export const PATHS = 'github.com/30x.dispatcher.paths';

/** A validated configuration from `env`; SSL_CERT/SSL_KEY are accepted without files. */
export function testConfig(env: Record<string, string> = {}): Config {
  const loaded = loadConfig(env, () => true);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.config;
}

/** A routable namespace; `hosts` is JSON-encoded unless it is already a string (the legacy form). */
export function ns(name: string, hosts: unknown, createdAt = '2020-01-01T00:00:00Z'): KubeObject {
  return namespace(name, {
    labels: ROUTABLE,
    annotations: { [HOSTS]: typeof hosts === 'string' ? hosts : JSON.stringify(hosts) },
    creationTimestamp: createdAt,
  });
}

/** A ready, routable pod at `ip` whose container declares `ports`. */
export function app(
  namespaceName: string,
  name: string,
  ip: string,
  paths: unknown[],
  ports = [3000],
): KubeObject {
  return pod(namespaceName, name, {
    ip,
    ports,
    labels: ROUTABLE,
    annotations: { [PATHS]: JSON.stringify(paths) },
  });
}
