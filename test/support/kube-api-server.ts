// A test Kubernetes API server for Namespaces, Pods and Secrets that speaks the real wire protocol
// (list, watch as JSON lines, label and field selectors, resourceVersion, 410 Expired, bookmarks),
// so that the real @kubernetes/client-node talks to it through a kubeconfig. Faults (dropped
// watches, expired history, the server going down) are under the test's control.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ObjectKind } from '../../src/types.js';
import type { ApiObject } from './kube-objects.js';

export interface KubeApiServerOptions {
  /** Bearer token the server requires (and the kubeconfig carries). */
  token?: string;
  /** How many changes the server remembers for watches that resume; older versions get 410. */
  historyLimit?: number;
  /** Interval of BOOKMARK events on watches that allow them. Default 1000 ms. */
  bookmarkIntervalMs?: number;
  /** Server-side watch timeout when the client sends no timeoutSeconds (the real server has one). */
  watchTimeoutSeconds?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** `watch=true` or a legacy /api/v1/watch/ path. */
  watch: boolean;
}

export interface KubeApiServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly token: string;
  /** A kubeconfig (in a temp dir) pointing at this server with the right token. */
  readonly kubeconfigPath: string;
  /** (Re)writes a kubeconfig; `token` to write a wrong one, `path` to write elsewhere. Returns the path. */
  writeKubeconfig(options?: { token?: string; path?: string }): string;
  /** Every request received, in order (live array; tests may empty it). */
  readonly requests: RecordedRequest[];
  /** The current global resourceVersion. */
  resourceVersion(): string;
  /** Adds an object (throws if it exists); sets uid, creationTimestamp (unless given), resourceVersion. */
  create(obj: ApiObject): ApiObject;
  /** Replaces an existing object (uid and creationTimestamp are kept); emits MODIFIED. */
  update(obj: ApiObject): ApiObject;
  /** Updates through `change`, which mutates its argument or returns a replacement. */
  patch(
    kind: ObjectKind,
    namespace: string | undefined,
    name: string,
    // biome-ignore lint/suspicious/noConfusingVoidType: a patch may mutate its argument and return nothing
    change: (obj: ApiObject) => ApiObject | void,
  ): ApiObject;
  /** Deletes an object (throws if absent); emits DELETED. Deleting a namespace does not cascade. */
  remove(kind: ObjectKind, namespace: string | undefined, name: string): ApiObject;
  get(kind: ObjectKind, namespace: string | undefined, name: string): ApiObject | undefined;
  list(kind: ObjectKind, namespace?: string): ApiObject[];
  /** Ends every open watch stream abruptly (socket destroyed mid-stream). Returns how many. */
  dropWatches(): number;
  /** Ends every open watch stream cleanly, as a server-side watch timeout does. Returns how many. */
  endWatches(): number;
  /** Sends a BOOKMARK now to every watch that allows bookmarks. */
  sendBookmarks(): void;
  /** Forgets the change history: every resourceVersion handed out so far is now too old (410). */
  expireHistory(): void;
  /** Stops listening and destroys every connection (clients get ECONNREFUSED); resolves when down
   *  and, with `downForMs`, after that long. It stays down until `comeUp()`. */
  goDown(downForMs?: number): Promise<void>;
  /** Listens again on the same port. */
  comeUp(): Promise<void>;
  isUp(): boolean;
  openWatchCount(kind?: ObjectKind): number;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- label and field selectors

export type LabelRequirement =
  | { key: string; op: 'exists' | 'notexists' }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'gt' | 'lt'; value: number };

type Token = { kind: 'ident' | 'op'; text: string };

const SPECIAL = new Set(['!', '=', '(', ')', ',', '<', '>']);

function lexSelector(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input.charAt(i);
    if (/\s/.test(c)) {
      i++;
    } else if (SPECIAL.has(c)) {
      const two = input.slice(i, i + 2);
      const text = two === '!=' || two === '==' ? two : c;
      tokens.push({ kind: 'op', text });
      i += text.length;
    } else {
      let j = i;
      while (j < input.length && !SPECIAL.has(input.charAt(j)) && !/\s/.test(input.charAt(j))) j++;
      tokens.push({ kind: 'ident', text: input.slice(i, j) });
      i = j;
    }
  }
  return tokens;
}

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isQualifiedName(key: string): boolean {
  const slash = key.indexOf('/');
  const name = slash === -1 ? key : key.slice(slash + 1);
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && NAME_PART.test(name);
}

function isLabelValue(value: string): boolean {
  return value === '' || (value.length <= 63 && NAME_PART.test(value));
}

/** Parses the full Kubernetes label-selector syntax; throws a message the server answers 400 with. */
export function parseLabelSelector(input: string): LabelRequirement[] {
  const tokens = lexSelector(input);
  let at = 0;
  const peek = (): Token | undefined => tokens[at];
  const next = (): Token | undefined => tokens[at++];
  const fail = (what: string): never => {
    throw new Error(`unable to parse requirement: ${what} in selector ${JSON.stringify(input)}`);
  };
  const requirements: LabelRequirement[] = [];
  while (at < tokens.length) {
    let negated = false;
    if (peek()?.text === '!' && peek()?.kind === 'op') {
      negated = true;
      next();
    }
    const keyToken = next();
    if (keyToken?.kind !== 'ident') return fail(`expected a key, found ${keyToken?.text ?? 'end of string'}`);
    const key = keyToken.text;
    if (!isQualifiedName(key)) fail(`invalid label key ${JSON.stringify(key)}`);
    const after = peek();
    if (negated || after === undefined || (after.kind === 'op' && after.text === ',')) {
      requirements.push({ key, op: negated ? 'notexists' : 'exists' });
    } else {
      next();
      const op = after.text;
      if (op === 'in' || op === 'notin') {
        requirements.push({ key, op, values: parseValueSet() });
      } else if (op === '=' || op === '==' || op === '!=') {
        const value = peek()?.kind === 'ident' ? (next()?.text ?? '') : '';
        if (!isLabelValue(value)) fail(`invalid label value ${JSON.stringify(value)}`);
        requirements.push({ key, op: op === '!=' ? 'notin' : 'in', values: [value] });
      } else if (op === '<' || op === '>') {
        const value = next()?.text ?? '';
        if (!/^-?\d+$/.test(value)) fail(`for 'gt', 'lt' operators the value must be an integer`);
        requirements.push({ key, op: op === '>' ? 'gt' : 'lt', value: Number(value) });
      } else {
        fail(`found ${JSON.stringify(op)}, expected: in, notin, =, ==, !=, gt, lt`);
      }
    }
    const separator = next();
    if (separator === undefined) break;
    if (separator.text !== ',' || at >= tokens.length) fail(`expected ',' and another requirement`);
  }
  return requirements;

  function parseValueSet(): string[] {
    if (next()?.text !== '(') fail(`expected '(' after in/notin`);
    if (peek()?.text === ')') fail(`for 'in', 'notin' operators, values set can't be empty`);
    const values: string[] = [];
    let value = '';
    for (;;) {
      const token = next();
      if (token === undefined) return fail(`expected ')'`);
      if (token.kind === 'ident' && value === '') {
        value = token.text;
      } else if (token.text === ',' || token.text === ')') {
        if (!isLabelValue(value)) fail(`invalid label value ${JSON.stringify(value)}`);
        values.push(value);
        value = '';
        if (token.text === ')') return values;
      } else {
        fail(`unexpected ${JSON.stringify(token.text)} in value set`);
      }
    }
  }
}

export function matchesLabels(
  requirements: LabelRequirement[],
  labels: Record<string, string> = {},
): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const value = labels[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'in':
        return has && r.values.includes(value ?? '');
      case 'notin':
        return !has || !r.values.includes(value ?? '');
      default: {
        if (!has || !/^-?\d+$/.test(value ?? '')) return false;
        return r.op === 'gt' ? Number(value) > r.value : Number(value) < r.value;
      }
    }
  });
}

export interface FieldRequirement {
  field: string;
  equal: boolean;
  value: string;
}

const FIELDS: Record<ObjectKind, Record<string, (o: ApiObject) => string>> = {
  Namespace: {
    'metadata.name': (o) => o.metadata.name,
    'status.phase': (o) => String(o.status?.phase ?? ''),
  },
  Pod: {
    'metadata.name': (o) => o.metadata.name,
    'metadata.namespace': (o) => o.metadata.namespace ?? '',
    'spec.nodeName': (o) => String(o.spec?.nodeName ?? ''),
    'status.phase': (o) => String(o.status?.phase ?? ''),
    'status.podIP': (o) => String(o.status?.podIP ?? ''),
  },
  Secret: {
    'metadata.name': (o) => o.metadata.name,
    'metadata.namespace': (o) => o.metadata.namespace ?? '',
    type: (o) => o.type ?? '',
  },
};

/** Field selectors as the real server reads them: `=`, `==`, `!=`, comma = and, `\` escapes. */
export function parseFieldSelector(kind: ObjectKind, input: string): FieldRequirement[] {
  const requirements: FieldRequirement[] = [];
  for (const term of splitUnescaped(input, ',')) {
    if (term === '') continue;
    const match = /^((?:[^\\=!]|\\.)*)(!=|==|=)(.*)$/.exec(term);
    if (!match) throw new Error(`invalid selector: '${input}'; can't understand '${term}'`);
    const field = unescapeSelector(match[1] ?? '');
    if (!Object.hasOwn(FIELDS[kind], field)) throw new Error(`field label not supported: ${field}`);
    requirements.push({ field, equal: match[2] !== '!=', value: unescapeSelector(match[3] ?? '') });
  }
  return requirements;
}

function splitUnescaped(input: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < input.length; i++) {
    const c = input.charAt(i);
    if (c === '\\') {
      current += c + input.charAt(i + 1);
      i++;
    } else if (c === separator) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

function unescapeSelector(text: string): string {
  return text.replace(/\\(.)/g, '$1');
}

export function matchesFields(kind: ObjectKind, requirements: FieldRequirement[], obj: ApiObject): boolean {
  return requirements.every((r) => {
    const read = FIELDS[kind][r.field];
    return read !== undefined && (read(obj) === r.value) === r.equal;
  });
}

// ---------------------------------------------------------------- the server

type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface Change {
  rv: number;
  kind: ObjectKind;
  type: WatchEventType;
  object: ApiObject;
  /** The object before the change (MODIFIED, DELETED): decides selector transitions. */
  previous?: ApiObject;
}

interface Filter {
  kind: ObjectKind;
  namespace?: string;
  name?: string;
  labels: LabelRequirement[];
  fields: FieldRequirement[];
}

interface OpenWatch {
  filter: Filter;
  res: ServerResponse;
  bookmarks: boolean;
  timers: NodeJS.Timeout[];
}

const RESOURCES: Record<string, ObjectKind> = { namespaces: 'Namespace', pods: 'Pod', secrets: 'Secret' };
const PLURAL: Record<ObjectKind, string> = { Namespace: 'namespaces', Pod: 'pods', Secret: 'secrets' };

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const token = options.token ?? `test-token-${randomUUID()}`;
  const historyLimit = options.historyLimit ?? 10_000;
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), 'kube-api-server-'));
  const kubeconfigPath = join(dir, 'kubeconfig');

  const objects = new Map<string, ApiObject>();
  let rv = 100;
  /** Snapshots of lists served in pages (`limit`/`continue`), by token id. */
  const snapshots = new Map<string, { rv: number; items: ApiObject[] }>();
  let snapshotIds = 0;
  let history: Change[] = [];
  /** A watch may resume from a version at or after this one; older ones get 410. */
  let compactedRv = rv;
  const watches = new Set<OpenWatch>();
  const sockets = new Set<Socket>();
  const requests: RecordedRequest[] = [];
  let up = false;
  let port = 0;

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (error) {
      if (error instanceof HttpError) sendStatus(res, error.code, error.reason, error.message, error.details);
      else sendStatus(res, 500, 'InternalError', String(error));
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await listen(0);

  function listen(onPort: number): Promise<void> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(onPort, '127.0.0.1', () => {
        server.off('error', reject);
        const address = server.address();
        if (address && typeof address === 'object') port = address.port;
        up = true;
        resolve();
      });
    });
  }

  function keyOf(kind: ObjectKind, namespace: string | undefined, name: string): string {
    return kind === 'Namespace' ? `${kind}//${name}` : `${kind}/${namespace ?? ''}/${name}`;
  }

  function keyOfObject(obj: ApiObject): string {
    if (!obj.metadata?.name) throw new Error(`${obj.kind} without metadata.name`);
    if (!(obj.kind in PLURAL)) throw new Error(`unsupported kind ${String(obj.kind)}`);
    if (obj.kind !== 'Namespace' && !obj.metadata.namespace) {
      throw new Error(`${obj.kind} ${obj.metadata.name} without metadata.namespace`);
    }
    return keyOf(obj.kind, obj.metadata.namespace, obj.metadata.name);
  }

  function record(change: Change): void {
    history.push(change);
    while (history.length > historyLimit) {
      const dropped = history.shift();
      if (dropped) compactedRv = dropped.rv;
    }
    for (const watch of watches) {
      const event = eventFor(watch.filter, change);
      if (event) writeEvent(watch.res, event.type, event.object);
    }
  }

  function stamp(obj: ApiObject, existing?: ApiObject): ApiObject {
    const copy = structuredClone(obj);
    if (copy.kind === 'Namespace') delete copy.metadata.namespace;
    rv += 1;
    copy.metadata.uid = existing?.metadata.uid ?? copy.metadata.uid ?? randomUUID();
    copy.metadata.creationTimestamp =
      existing?.metadata.creationTimestamp ?? copy.metadata.creationTimestamp ?? nowTimestamp();
    copy.metadata.resourceVersion = String(rv);
    return copy;
  }

  function requireExisting(kind: ObjectKind, namespace: string | undefined, name: string): ApiObject {
    const existing = objects.get(keyOf(kind, namespace, name));
    if (!existing) throw new Error(`${kind} ${namespace ? `${namespace}/` : ''}${name} does not exist`);
    return existing;
  }

  const api: KubeApiServer = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    token,
    kubeconfigPath,
    writeKubeconfig(opts = {}) {
      const path = opts.path ?? kubeconfigPath;
      writeFileSync(path, kubeconfigText(`http://127.0.0.1:${port}`, opts.token ?? token));
      return path;
    },
    requests,
    resourceVersion: () => String(rv),
    create(obj) {
      const key = keyOfObject(obj);
      if (objects.has(key)) throw new Error(`${key} already exists`);
      const stored = stamp(obj);
      objects.set(key, stored);
      record({ rv, kind: stored.kind, type: 'ADDED', object: stored });
      return structuredClone(stored);
    },
    update(obj) {
      const key = keyOfObject(obj);
      const existing = objects.get(key);
      if (!existing) throw new Error(`${key} does not exist`);
      const stored = stamp(obj, existing);
      objects.set(key, stored);
      record({ rv, kind: stored.kind, type: 'MODIFIED', object: stored, previous: existing });
      return structuredClone(stored);
    },
    patch(kind, namespace, name, change) {
      const copy = structuredClone(requireExisting(kind, namespace, name));
      return api.update(change(copy) ?? copy);
    },
    remove(kind, namespace, name) {
      const existing = requireExisting(kind, namespace, name);
      objects.delete(keyOf(kind, namespace, name));
      rv += 1;
      const gone = structuredClone(existing);
      gone.metadata.resourceVersion = String(rv);
      record({ rv, kind, type: 'DELETED', object: gone, previous: existing });
      return structuredClone(gone);
    },
    get(kind, namespace, name) {
      const found = objects.get(keyOf(kind, namespace, name));
      return found && structuredClone(found);
    },
    list(kind, namespace) {
      return currentMatching({ kind, namespace, labels: [], fields: [] });
    },
    dropWatches() {
      const count = watches.size;
      for (const watch of [...watches]) {
        closeWatch(watch);
        watch.res.socket?.destroy();
      }
      return count;
    },
    endWatches() {
      const count = watches.size;
      for (const watch of [...watches]) {
        closeWatch(watch);
        watch.res.end();
      }
      return count;
    },
    sendBookmarks() {
      for (const watch of watches) if (watch.bookmarks) writeBookmark(watch);
    },
    expireHistory() {
      rv += 1;
      compactedRv = rv;
      history = [];
    },
    async goDown(downForMs) {
      if (up) {
        up = false;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const watch of [...watches]) closeWatch(watch);
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        await closed;
      }
      if (downForMs) await new Promise((resolve) => setTimeout(resolve, downForMs));
    },
    async comeUp() {
      if (up) return;
      for (let attempt = 0; ; attempt++) {
        try {
          await listen(port);
          return;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 50) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    },
    isUp: () => up,
    openWatchCount(kind) {
      let count = 0;
      for (const watch of watches) if (kind === undefined || watch.filter.kind === kind) count++;
      return count;
    },
    async close() {
      await api.goDown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  api.writeKubeconfig();
  return api;

  // ------------------------------------------------------------ HTTP

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const query = Object.fromEntries(url.searchParams);
    let segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const legacyWatch = segments[0] === 'api' && segments[1] === 'v1' && segments[2] === 'watch';
    if (legacyWatch) segments = ['api', 'v1', ...segments.slice(3)];
    const watch = legacyWatch || query.watch === 'true' || query.watch === '1';
    requests.push({ method: req.method ?? '', path: url.pathname, query, watch });

    if (req.headers.authorization !== `Bearer ${token}`) {
      throw new HttpError(401, 'Unauthorized', 'Unauthorized');
    }
    const target = resolvePath(segments);
    if (!target) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    if (req.method !== 'GET') {
      throw new HttpError(
        405,
        'MethodNotAllowed',
        `the server does not allow this method on the requested resource`,
      );
    }
    const filter: Filter = {
      kind: target.kind,
      namespace: target.namespace,
      name: target.name,
      labels: parseOrBadRequest(() => parseLabelSelector(query.labelSelector ?? '')),
      fields: parseOrBadRequest(() => parseFieldSelector(target.kind, query.fieldSelector ?? '')),
    };
    if (watch) {
      startWatch(filter, query, res);
      return;
    }
    if (target.name !== undefined) {
      const found = objects.get(keyOf(target.kind, target.namespace, target.name));
      if (!found) {
        throw new HttpError(404, 'NotFound', `${PLURAL[target.kind]} "${target.name}" not found`, {
          name: target.name,
          kind: PLURAL[target.kind],
        });
      }
      sendJson(res, 200, found);
      return;
    }
    sendJson(res, 200, listPage(target.kind, filter, query));
  }

  /**
   * A list, or one page of it with `limit`: pages come from the snapshot the first page was cut
   * from, with that snapshot's resourceVersion, as the real server serves them (`continue`).
   */
  function listPage(kind: ObjectKind, filter: Filter, query: Record<string, string>): unknown {
    const token = query.continue;
    let snapshot: { rv: number; items: ApiObject[] } | undefined;
    let offset = 0;
    if (token) {
      const [id, at] = token.split(':');
      snapshot = snapshots.get(id ?? '');
      offset = Number(at);
      if (!snapshot || !Number.isInteger(offset)) {
        throw new HttpError(410, 'Expired', 'the provided continue parameter is too old');
      }
    } else {
      // The real server leaves kind and apiVersion out of list items.
      const items = currentMatching(filter).map(({ kind: _k, apiVersion: _a, ...item }) => item as ApiObject);
      snapshot = { rv, items };
    }
    const limit = query.limit ? Number(query.limit) : 0;
    const end = limit > 0 ? Math.min(offset + limit, snapshot.items.length) : snapshot.items.length;
    let next: string | undefined;
    if (end < snapshot.items.length) {
      const id = token?.split(':')[0] ?? String(++snapshotIds);
      snapshots.set(id, snapshot);
      next = `${id}:${end}`;
    }
    return {
      kind: `${kind}List`,
      apiVersion: 'v1',
      metadata: { resourceVersion: String(snapshot.rv), ...(next && { continue: next }) },
      items: snapshot.items.slice(offset, end),
    };
  }

  function resolvePath(
    segments: string[],
  ): { kind: ObjectKind; namespace?: string; name?: string } | undefined {
    if (segments[0] !== 'api' || segments[1] !== 'v1') return undefined;
    const [resource, second, third, fourth, ...rest] = segments.slice(2);
    if (resource === undefined || rest.length > 0) return undefined;
    const kind = RESOURCES[resource];
    if (kind === undefined) return undefined;
    if (second === undefined) return { kind };
    if (kind !== 'Namespace') return undefined;
    if (third === undefined) return { kind, name: second };
    const namespaced = RESOURCES[third];
    if (namespaced === undefined || namespaced === 'Namespace') return undefined;
    return { kind: namespaced, namespace: second, name: fourth };
  }

  function parseOrBadRequest<T>(parse: () => T): T {
    try {
      return parse();
    } catch (error) {
      throw new HttpError(400, 'BadRequest', (error as Error).message);
    }
  }

  function currentMatching(filter: Filter): ApiObject[] {
    return [...objects.entries()]
      .filter(([, obj]) => matches(filter, obj))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, obj]) => structuredClone(obj));
  }

  // ------------------------------------------------------------ watch

  function startWatch(filter: Filter, query: Record<string, string>, res: ServerResponse): void {
    const from = query.resourceVersion ?? '';
    if (from !== '' && !/^\d+$/.test(from)) {
      throw new HttpError(400, 'BadRequest', `invalid resourceVersion ${JSON.stringify(from)}`);
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();

    const initialEvents = from === '' || from === '0' || query.sendInitialEvents === 'true';
    if (!initialEvents && Number(from) < compactedRv) {
      writeEvent(res, 'ERROR', {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${from} (${compactedRv})`,
        reason: 'Expired',
        code: 410,
      });
      res.end();
      return;
    }
    const watch: OpenWatch = { filter, res, bookmarks: query.allowWatchBookmarks === 'true', timers: [] };
    if (initialEvents) {
      for (const obj of currentMatching(filter)) writeEvent(res, 'ADDED', obj);
      if (query.sendInitialEvents === 'true' && watch.bookmarks) {
        writeBookmark(watch, { 'k8s.io/initial-events-end': 'true' });
      }
    } else {
      for (const change of history) {
        if (change.rv <= Number(from)) continue;
        const event = eventFor(filter, change);
        if (event) writeEvent(res, event.type, event.object);
      }
    }
    watches.add(watch);
    res.on('close', () => closeWatch(watch));
    if (watch.bookmarks) watch.timers.push(setInterval(() => writeBookmark(watch), bookmarkIntervalMs));
    const timeoutSeconds = query.timeoutSeconds ? Number(query.timeoutSeconds) : options.watchTimeoutSeconds;
    if (timeoutSeconds && Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) {
      watch.timers.push(
        setTimeout(() => {
          closeWatch(watch);
          res.end();
        }, timeoutSeconds * 1000),
      );
    }
  }

  function closeWatch(watch: OpenWatch): void {
    for (const timer of watch.timers) clearTimeout(timer);
    watches.delete(watch);
  }

  function writeBookmark(watch: OpenWatch, annotations?: Record<string, string>): void {
    writeEvent(watch.res, 'BOOKMARK', {
      kind: watch.filter.kind,
      apiVersion: 'v1',
      metadata: { resourceVersion: String(rv), ...(annotations ? { annotations } : {}) },
    });
  }
}

/** What a watch with `filter` sees of `change`, as the real watch cache decides it. */
function eventFor(filter: Filter, change: Change): { type: WatchEventType; object: ApiObject } | undefined {
  if (change.kind !== filter.kind) return undefined;
  const nowMatches = change.type !== 'DELETED' && matches(filter, change.object);
  const matchedBefore = change.previous !== undefined && matches(filter, change.previous);
  if (nowMatches) return { type: matchedBefore ? 'MODIFIED' : 'ADDED', object: change.object };
  if (!matchedBefore || !change.previous) return undefined;
  // Leaving the selection is a deletion of the previous content at the new version.
  const object = structuredClone(change.previous);
  object.metadata.resourceVersion = String(change.rv);
  return { type: 'DELETED', object };
}

function matches(filter: Filter, obj: ApiObject): boolean {
  return (
    obj.kind === filter.kind &&
    (filter.namespace === undefined || obj.metadata.namespace === filter.namespace) &&
    (filter.name === undefined || obj.metadata.name === filter.name) &&
    matchesLabels(filter.labels, obj.metadata.labels) &&
    matchesFields(filter.kind, filter.fields, obj)
  );
}

function writeEvent(res: ServerResponse, type: string, object: unknown): void {
  if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify({ type, object })}\n`);
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function sendStatus(
  res: ServerResponse,
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, code, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
}

function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function kubeconfigText(server: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '  - name: test',
    '    cluster:',
    `      server: ${server}`,
    // client-node refuses plain http unless TLS verification is off.
    '      insecure-skip-tls-verify: true',
    'users:',
    '  - name: test',
    '    user:',
    `      token: ${token}`,
    'contexts:',
    '  - name: test',
    '    context:',
    '      cluster: test',
    '      user: test',
    '      namespace: default',
    'current-context: test',
    '',
  ].join('\n');
}
