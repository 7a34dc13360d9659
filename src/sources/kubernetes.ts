// The cluster as a source: one ListWatch per kind from @kubernetes/client-node. Routable namespaces
// and pods are selected server-side by label, routing secrets by name (never every secret).
// client-node 1.x relists by itself after `410 Gone` and re-watches after a normal close, but any
// other failure emits `error` and leaves the informer stopped: we restart it with capped backoff,
// and re-watch periodically in case a watch stalls without closing.
// Memory: a ListWatch keeps every object it delivers, for ever, only to read its name, namespace and
// resourceVersion; the store keeps what the model made of it. So the ListWatch gets a cache entry of
// those three fields, and the slimmed object goes to the sink once, beside it (see `delivering`).
import {
  CoreV1Api,
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { isPlainObject } from '../model/fields.js';
import type { KubeObject, ObjectKind } from '../types.js';
import { slimObject } from './slim.js';
import type { Source, SourceSink } from './source.js';

export interface KubernetesSourceOptions {
  kubeconfig: KubeConfig;
  labelSelector: string;
  secretName: string;
  /** Annotation keys routing reads (hosts, paths); other annotations are not kept in memory. */
  annotations: readonly string[];
  /** Objects per list page (`limit`); default 500. */
  pageSize?: number;
  /** First retry delay after a failed list/watch; doubles up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Watches last about this long (server-side `timeoutSeconds`, jittered) and are aborted client-side
   * a little later if the server has not closed them: a stalled watch cannot go unnoticed for longer.
   */
  rewatchEveryMs?: number;
  /** Reject start() when the first list of a kind fails, instead of retrying (for --once). */
  failFast?: boolean;
}

/** In-cluster service account when KUBERNETES_SERVICE_HOST is set, else --kubeconfig, KUBECONFIG, ~/.kube/config. */
export function loadKubeConfig(env: NodeJS.ProcessEnv, file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster())
    throw new Error('no Kubernetes cluster configured (kubeconfig has no current cluster)');
  return kc;
}

/** A Watch whose requests end: `timeoutSeconds` for the server, an abort for a server gone silent. */
class BoundedWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly lifetimeMs: number,
    private readonly onConnected: (path: string) => void,
    private readonly transform: (path: string, object: unknown) => unknown,
  ) {
    super(config);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const seconds = Math.max(1, Math.round((this.lifetimeMs * (0.5 + Math.random() * 0.5)) / 1000));
    let finished = false;
    let guard: NodeJS.Timeout | undefined;
    const controller = await super.watch(
      path,
      { ...queryParams, timeoutSeconds: seconds, allowWatchBookmarks: true },
      // ERROR events carry a Status (its code decides a relist): only objects are slimmed.
      (phase, object, watchObj) =>
        callback(phase, phase === 'ERROR' ? object : this.transform(path, object), watchObj),
      (err) => {
        finished = true;
        if (guard) clearTimeout(guard);
        done(err);
      },
    );
    if (!finished) {
      guard = setTimeout(() => controller.abort(), seconds * 1000 + 30_000);
      this.onConnected(path);
    }
    return controller;
  }
}

interface Informer {
  kind: ObjectKind;
  watch: ListWatch<KubernetesObject>;
}

export function createKubernetesSource(options: KubernetesSourceOptions): Source {
  const api = options.kubeconfig.makeApiClient(CoreV1Api);
  const failing = new Map<ObjectKind, string>();
  const backoffs = new Map<ObjectKind, number>();
  /** A list or a watch of `kind` works again: it is healthy and its next failure retries quickly. */
  const recovered = (kind: ObjectKind): void => {
    failing.delete(kind);
    backoffs.delete(kind);
  };
  const annotations = new Set(options.annotations);
  /** Slimmed objects on their way to the sink, by the cache entry ListWatch hands to the callbacks. */
  const delivering = new WeakMap<KubernetesObject, KubeObject>();
  /** The cache entry of an object (name, namespace, resourceVersion); its slimmed form waits beside it. */
  const cacheEntry = (kind: ObjectKind, object: unknown): KubernetesObject => {
    const slim = slimObject(kind, object, annotations) as KubeObject;
    const metadata: unknown = isPlainObject(slim) ? slim.metadata : undefined;
    if (!isPlainObject(metadata)) return slim as KubernetesObject;
    // Values as the server sent them (ListWatch only compares them), hence the cast.
    const kept: Record<string, unknown> = {};
    for (const key of ['name', 'namespace', 'resourceVersion'])
      if (metadata[key] !== undefined) kept[key] = metadata[key];
    const entry: KubernetesObject = { metadata: kept as KubernetesObject['metadata'] };
    delivering.set(entry, slim);
    return entry;
  };
  /**
   * What the sink gets for a cache entry: the slimmed object the first time (then it is forgotten).
   * A relist that finds an object gone hands back the entry itself, which names it: enough to delete.
   */
  const delivered = (entry: KubernetesObject): KubeObject => {
    const slim = delivering.get(entry);
    delivering.delete(entry);
    return slim ?? (entry as KubeObject);
  };
  const kindOf = (path: string): ObjectKind | undefined =>
    (Object.keys(paths) as ObjectKind[]).find((kind) => paths[kind] === path);
  const watcher = new BoundedWatch(
    options.kubeconfig,
    options.rewatchEveryMs ?? 5 * 60_000,
    (path) => {
      const kind = kindOf(path);
      if (kind) recovered(kind);
    },
    (path, object) => {
      const kind = kindOf(path);
      return kind ? cacheEntry(kind, object) : object;
    },
  );
  const minBackoff = options.minBackoffMs ?? 500;
  const maxBackoff = options.maxBackoffMs ?? 30_000;
  const labelSelector = options.labelSelector || undefined;
  const fieldSelector = `metadata.name=${options.secretName}`;
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  // The list function must apply the selectors itself: ListWatch only adds them to the watch.
  // Lists come in pages so that 10,000 pods never arrive as one response of tens of megabytes.
  type Page = { limit: number; _continue?: string };
  const lists: Record<ObjectKind, (page: Page) => Promise<KubernetesListObject<KubernetesObject>>> = {
    Namespace: (page) => api.listNamespace({ labelSelector, ...page }),
    Pod: (page) => api.listPodForAllNamespaces({ labelSelector, ...page }),
    Secret: (page) => api.listSecretForAllNamespaces({ fieldSelector, ...page }),
  };
  const pageSize = options.pageSize ?? 500;
  const paths: Record<ObjectKind, string> = {
    Namespace: '/api/v1/namespaces',
    Pod: '/api/v1/pods',
    Secret: '/api/v1/secrets',
  };

  function later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!stopped) fn();
    }, ms);
    timers.add(timer);
  }

  function makeInformer(
    kind: ObjectKind,
    sink: SourceSink,
    listed: () => void,
    failed: (error: unknown) => boolean,
  ): Informer {
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      // Every page is slimmed as it arrives; the list is the first page's snapshot (its resourceVersion).
      // ListWatch receives cache entries; the slimmed objects wait in `delivering`.
      const items: KubernetesObject[] = [];
      let first: KubernetesListObject<KubernetesObject> | undefined;
      let next: string | undefined;
      do {
        const page = await lists[kind]({ limit: pageSize, ...(next && { _continue: next }) });
        first ??= page;
        for (const item of page.items) items.push(cacheEntry(kind, item));
        next = page.metadata?._continue;
      } while (next);
      const result = { ...first, metadata: { resourceVersion: first.metadata?.resourceVersion }, items };
      recovered(kind);
      listed();
      return result;
    };
    const watch = new ListWatch<KubernetesObject>(
      paths[kind],
      watcher,
      list,
      false,
      kind === 'Secret' ? undefined : labelSelector,
      kind === 'Secret' ? fieldSelector : undefined,
    );
    const emit = (type: 'added' | 'modified' | 'deleted') => (object: KubernetesObject) =>
      sink.event({ type, kind, object: delivered(object) });
    watch.on('add', emit('added'));
    watch.on('update', emit('modified'));
    watch.on('delete', emit('deleted'));
    watch.on('error', (error: unknown) => {
      if (stopped || failed(error)) return;
      const backoff = backoffs.get(kind) ?? minBackoff;
      failing.set(kind, describeError(error));
      sink.problem('watch failed; retrying', { kind, reason: describeError(error), retryInMs: backoff });
      later(backoff, () => void watch.start().catch(() => undefined));
      backoffs.set(kind, Math.min(backoff * 2, maxBackoff));
    });
    return { kind, watch };
  }

  const informers: Informer[] = [];

  return {
    start(sink) {
      return new Promise<void>((resolve, reject) => {
        const kinds: ObjectKind[] = ['Namespace', 'Secret', 'Pod'];
        const pending = new Set<ObjectKind>(kinds);
        for (const kind of kinds) {
          const informer = makeInformer(
            kind,
            sink,
            () => {
              // ListWatch delivers the listed objects right after our list function returns:
              // setImmediate runs after that, so the initial state is in before start() resolves.
              setImmediate(() => {
                pending.delete(kind);
                if (pending.size === 0) resolve();
              });
            },
            (error) => {
              if (!options.failFast || !pending.has(kind)) return false;
              stopped = true;
              reject(new Error(`cannot list ${kind}s: ${describeError(error)}`));
              return true;
            },
          );
          informers.push(informer);
          void informer.watch.start().catch(() => undefined);
        }
      });
    },
    health() {
      if (failing.size === 0) return { ok: true };
      const reasons = [...failing].map(([kind, reason]) => `${kind} watch failing: ${reason}`);
      return { ok: false, reason: reasons.join('; ') };
    },
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all(informers.map(({ watch }) => watch.stop()));
    },
  };
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code =
      (error as Error & { code?: unknown; statusCode?: unknown }).statusCode ??
      (error as { code?: unknown }).code;
    return code === undefined ? error.message : `${error.message} (${String(code)})`;
  }
  return String(error);
}
