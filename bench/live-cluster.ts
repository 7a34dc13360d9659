// A live setup for the figures that need the whole loop: the test Kubernetes API server (real wire
// protocol) holding a synthetic cluster of realistic objects, and the controller in its own process
// watching it through the real @kubernetes/client-node and driving a real nginx. The bench changes
// the cluster only through this module, which counts the events it causes so that it can wait until
// the controller has seen them all.
import type { ObjectKind } from '../src/types.js';
import { type KubeApiServer, startKubeApiServer } from '../test/support/kube-api-server.js';
import type { ApiObject } from '../test/support/kube-objects.js';
import { type ControllerHandle, startController } from './controller-handle.js';
import { sleep } from './stats.js';
import { buildCluster, type Cluster, type Ports, type Size } from './workload.js';

export interface LiveCluster {
  size: Size;
  ports: Ports;
  api: KubeApiServer;
  controller: ControllerHandle;
  /** nginx's PORT. */
  port: number;
  batchWindowMs: number;
  /** The objects as the bench last wrote them (pods in creation order; replaced pods in place). */
  cluster: Cluster;
  create(object: ApiObject): void;
  update(object: ApiObject): void;
  remove(kind: ObjectKind, namespace: string | undefined, name: string): void;
  /** Events caused so far (the initial objects included). */
  sent(): number;
  /** Waits until the controller has received every event caused so far. */
  caughtUp(timeoutMs?: number): Promise<void>;
  /** caughtUp, then waits until no batch window is open or running. */
  settle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface LiveClusterOptions {
  size: Size;
  ports: Ports;
  batchWindowMs: number;
}

export async function startLiveCluster(options: LiveClusterOptions): Promise<LiveCluster> {
  const api = await startKubeApiServer({ historyLimit: 20_000 });
  const cluster = buildCluster(options.size, options.ports);
  let sent = 0;
  for (const object of [...cluster.namespaces, ...cluster.secrets, ...cluster.pods]) {
    api.create(object);
    sent += 1;
  }
  let controller: ControllerHandle;
  try {
    controller = await startController({
      kubeconfig: api.kubeconfigPath,
      batchWindowMs: options.batchWindowMs,
    });
  } catch (error) {
    await api.close();
    throw error;
  }

  async function received(): Promise<number> {
    const state = await controller.state();
    return Object.values(state.events).reduce((sum, count) => sum + count, 0);
  }

  async function caughtUp(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen = await received();
    while (seen < sent) {
      if (Date.now() > deadline) {
        throw new Error(`the controller saw ${seen} of ${sent} events after ${timeoutMs} ms`);
      }
      await sleep(20);
      seen = await received();
    }
  }

  return {
    size: options.size,
    ports: options.ports,
    api,
    controller,
    port: controller.port,
    batchWindowMs: options.batchWindowMs,
    cluster,
    create(object) {
      api.create(object);
      sent += 1;
    },
    update(object) {
      api.update(object);
      sent += 1;
    },
    remove(kind, namespace, name) {
      api.remove(kind, namespace, name);
      sent += 1;
    },
    sent: () => sent,
    caughtUp,
    async settle(timeoutMs = 120_000) {
      await caughtUp(timeoutMs);
      await controller.idle();
    },
    async stop() {
      try {
        await controller.stop();
      } finally {
        await api.close();
      }
    },
  };
}
