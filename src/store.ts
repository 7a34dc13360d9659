// The store keeps what the model made of every object, keyed kind/namespace/name, and tells the
// caller whether an event changed anything routing depends on.
import { objectKey } from './kinds.js';
import type { ModelConfig } from './model/config.js';
import { toNamespace } from './model/namespace.js';
import { toPod } from './model/pod.js';
import { toSecret } from './model/secret.js';
import type { Selector } from './model/selector.js';
import type {
  Diagnostic,
  KubeObject,
  NamespaceInfo,
  ObjectKind,
  PodInfo,
  SecretInfo,
  SourceEvent,
} from './types.js';

interface Entry<T> {
  value: T | null;
  diagnostics: Diagnostic[];
  /** Canonical JSON of `value`: equal fingerprints route identically. */
  fingerprint: string;
}

export interface StoreSnapshot {
  namespaces: NamespaceInfo[];
  pods: PodInfo[];
  secrets: SecretInfo[];
  /**
   * What conversion found wrong, per object. Every list is in the store's own order, which depends
   * on the order of events: the plan sorts whatever it walks.
   */
  diagnostics: Diagnostic[];
}

export interface Store {
  /** Applies the event; true when the routable value of the object changed (appeared, disappeared). */
  apply(event: SourceEvent): boolean;
  snapshot(): StoreSnapshot;
}

type AnyEntry = Entry<NamespaceInfo> | Entry<PodInfo> | Entry<SecretInfo>;

export function createStore(cfg: ModelConfig, selector: Selector): Store {
  const entries = new Map<string, { kind: ObjectKind; entry: AnyEntry }>();

  function convert(kind: ObjectKind, object: KubeObject): AnyEntry {
    const converted =
      kind === 'Namespace'
        ? toNamespace(object, cfg, selector)
        : kind === 'Pod'
          ? toPod(object, cfg, selector)
          : toSecret(object, cfg);
    return {
      value: converted.value,
      diagnostics: converted.diagnostics,
      fingerprint: converted.value === null ? '' : JSON.stringify(converted.value),
    } as AnyEntry;
  }

  function apply(event: SourceEvent): boolean {
    const key = objectKey(event.kind, event.object);
    const previous = entries.get(key)?.entry;
    if (event.type === 'deleted') {
      entries.delete(key);
      return previous !== undefined && previous.value !== null;
    }
    const next = convert(event.kind, event.object);
    const changed = (previous?.fingerprint ?? '') !== next.fingerprint;
    // An unchanged value keeps its identity: the plan and render caches recognise it by reference.
    if (!changed && previous) next.value = previous.value as typeof next.value;
    if (next.value === null && next.diagnostics.length === 0) entries.delete(key);
    else entries.set(key, { kind: event.kind, entry: next });
    return changed;
  }

  function snapshot(): StoreSnapshot {
    const namespaces: NamespaceInfo[] = [];
    const pods: PodInfo[] = [];
    const secrets: SecretInfo[] = [];
    const diagnostics: Diagnostic[] = [];
    for (const item of entries.values()) {
      if (item.entry.diagnostics.length > 0) diagnostics.push(...item.entry.diagnostics);
      if (item.entry.value === null) continue;
      if (item.kind === 'Namespace') namespaces.push(item.entry.value as NamespaceInfo);
      else if (item.kind === 'Pod') pods.push(item.entry.value as PodInfo);
      else secrets.push(item.entry.value as SecretInfo);
    }
    return { namespaces, pods, secrets, diagnostics };
  }

  return { apply, snapshot };
}
