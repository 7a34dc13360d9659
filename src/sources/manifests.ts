// A directory of YAML/JSON manifests standing in for the cluster: multi-document files and
// `kind: List` are both read. This module only reads; it never decides what is routable.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { parseAllDocuments } from 'yaml';
import { isRoutingKind, objectKey } from '../kinds.js';
import type { KubeObject, ObjectKind } from '../types.js';
import type { Source, SourceSink } from './source.js';

export interface ManifestProblem {
  file: string;
  reason: string;
}

export interface ManifestFile {
  file: string;
  objects: KubeObject[];
  problems: ManifestProblem[];
}

const MANIFEST = /\.(ya?ml|json)$/i;
/** A manifest larger than this is refused rather than parsed (the cluster's own limit is 1.5 MiB per object). */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

export async function listManifestFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && MANIFEST.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Parses one file's text into objects; documents that are not objects are reported, not thrown. */
export function parseManifest(file: string, text: string): ManifestFile {
  const objects: KubeObject[] = [];
  const problems: ManifestProblem[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, index) => {
    const at = list.length > 1 ? `${file} (document ${index + 1})` : file;
    const first = doc.errors[0];
    if (first) {
      problems.push({
        file: at,
        // The error's code and line only: its message may quote the offending text (a secret?).
        reason: `invalid YAML/JSON (${first?.code ?? 'error'} at line ${lineOf(text, first?.pos[0] ?? 0)})`,
      });
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS();
    } catch {
      // yaml's message names the unresolved alias, which may be a secret value written unquoted.
      problems.push({ file: at, reason: 'document cannot be resolved (an alias without its anchor?)' });
      return;
    }
    if (value === null || value === undefined) return;
    collect(value, at, objects, problems);
  });
  return { file, objects, problems };
}

function lineOf(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}

function collect(value: unknown, at: string, objects: KubeObject[], problems: ManifestProblem[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push({ file: at, reason: 'document is not a Kubernetes object' });
    return;
  }
  const object = value as KubeObject & { items?: unknown };
  if (typeof object.kind === 'string' && object.kind.endsWith('List') && Array.isArray(object.items)) {
    for (const item of object.items) collect(item, at, objects, problems);
    return;
  }
  objects.push(object);
}

export async function readManifestFile(file: string, dir: string): Promise<ManifestFile> {
  const name = relative(dir, file) || file;
  try {
    const text = await readFile(file, 'utf8');
    if (Buffer.byteLength(text) > MAX_FILE_BYTES) {
      return {
        file: name,
        objects: [],
        problems: [{ file: name, reason: 'file larger than 16 MiB; ignored' }],
      };
    }
    return parseManifest(name, text);
  } catch (error) {
    return { file: name, objects: [], problems: [{ file: name, reason: (error as Error).message }] };
  }
}

/** Reads every manifest under `dir` once. */
export async function readManifests(dir: string): Promise<ManifestFile[]> {
  const files = await listManifestFiles(dir);
  return Promise.all(files.map((file) => readManifestFile(file, dir)));
}

/** Objects of one file by key, so that a changed file turns into added/modified/deleted events. */
type FileObjects = Map<string, { kind: ObjectKind; object: KubeObject; text: string }>;

function indexObjects(objects: readonly KubeObject[]): FileObjects {
  const index: FileObjects = new Map();
  for (const object of objects) {
    if (!isRoutingKind(object.kind)) continue;
    const key = objectKey(object.kind, object);
    index.set(key, { kind: object.kind, object, text: JSON.stringify(object) });
  }
  return index;
}

export interface ManifestSourceOptions {
  dir: string;
  /** Keep watching after the initial read (false for --once). */
  watch: boolean;
}

/**
 * The directory as a source: the initial read delivers `added` events; then chokidar reports file
 * changes, which are diffed per file against what that file held before.
 */
export function createManifestSource({ dir: given, watch: keepWatching }: ManifestSourceOptions): Source {
  const dir = resolve(given);
  const files = new Map<string, FileObjects>();
  let watcher: FSWatcher | undefined;
  let sink: SourceSink | undefined;
  let queue = Promise.resolve();
  let watchError: string | undefined;

  function report(file: ManifestFile): void {
    for (const p of file.problems) sink?.problem('manifest ignored', { file: p.file, reason: p.reason });
  }

  function update(path: string, next: FileObjects): void {
    const before = files.get(path) ?? new Map();
    for (const [key, item] of before) {
      if (!next.has(key)) sink?.event({ type: 'deleted', kind: item.kind, object: item.object });
    }
    for (const [key, item] of next) {
      const old = before.get(key);
      if (!old) sink?.event({ type: 'added', kind: item.kind, object: item.object });
      else if (old.text !== item.text)
        sink?.event({ type: 'modified', kind: item.kind, object: item.object });
    }
    if (next.size > 0) files.set(path, next);
    else files.delete(path);
  }

  const reread = (path: string): void => {
    if (!MANIFEST.test(path)) return;
    queue = queue.then(async () => {
      const file = await readManifestFile(path, dir);
      report(file);
      update(path, indexObjects(file.objects));
    });
  };
  const removed = (path: string): void => {
    queue = queue.then(() => update(path, new Map()));
  };

  return {
    async start(target) {
      sink = target;
      for (const path of await listManifestFiles(dir)) {
        const file = await readManifestFile(path, dir);
        report(file);
        update(path, indexObjects(file.objects));
      }
      if (!keepWatching) return;
      watcher = watch(dir, {
        ignoreInitial: true,
        awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 10 },
      });
      watcher.on('add', reread).on('change', reread).on('unlink', removed);
      watcher.on('error', (error) => {
        watchError = `watching ${dir} failed: ${String(error)}`;
        sink?.problem('manifest watch error', { dir, reason: String(error) });
      });
      await new Promise<void>((resolve) => watcher?.once('ready', () => resolve()));
    },
    async stop() {
      await watcher?.close();
      await queue;
    },
    health: () => (watchError ? { ok: false, reason: watchError } : { ok: true }),
  };
}
