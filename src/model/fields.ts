// Reading fields of untrusted Kubernetes objects: nothing is assumed about their shape.
import type { KubeObject } from '../types.js';
import { quoteUntrusted, type Result } from './validate.js';

export const MAX_ANNOTATION_BYTES = 64 * 1024;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `metadata` when it is an object, else an empty one. */
export function metadataOf(obj: unknown): Record<string, unknown> {
  const metadata: unknown = isPlainObject(obj) ? obj.metadata : undefined;
  return isPlainObject(metadata) ? metadata : {};
}

/** The string-valued labels of an object (anything else a label map holds is ignored). */
export function stringLabels(obj: KubeObject): Record<string, string> {
  const labels = metadataOf(obj).labels;
  if (!isPlainObject(labels)) return {};
  return Object.fromEntries(Object.entries(labels).filter(([, v]) => typeof v === 'string')) as Record<
    string,
    string
  >;
}

export function stringLabel(labels: Record<string, string>, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}

/** Field path of an annotation in diagnostics: `metadata.annotations["name"]`. */
export function annotationField(name: string): string {
  return `metadata.annotations[${JSON.stringify(name)}]`;
}

/** `field[key]` with an untrusted key quoted safely. */
export function keyField(field: string, key: string): string {
  return `${field}[${quoteUntrusted(key)}]`;
}

/**
 * The text of an annotation: undefined when absent, a reason when it is not a string or is larger
 * than the limit (64 KiB).
 */
export function annotationText(obj: KubeObject, name: string): Result<string | undefined> {
  const annotations = metadataOf(obj).annotations;
  if (!isPlainObject(annotations) || !Object.hasOwn(annotations, name)) return { ok: true, value: undefined };
  const text = annotations[name];
  if (text === undefined || text === null) return { ok: true, value: undefined };
  if (typeof text !== 'string') return { ok: false, reason: `must be a string, got ${quoteUntrusted(text)}` };
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_ANNOTATION_BYTES) {
    return {
      ok: false,
      reason: `is ${bytes} bytes, more than the limit of ${MAX_ANNOTATION_BYTES}; ignored whole`,
    };
  }
  return { ok: true, value: text };
}

/** Parses JSON, reporting a short reason instead of throwing. */
export function parseJson(text: string): Result<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, reason: 'is not valid JSON' };
  }
}

/** A timestamp as a normalized ISO string; '' when absent, undefined when present but invalid. */
export function isoTimestamp(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return '';
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) return undefined;
  return date.toISOString();
}

/** What a JSON value is, for reasons: "an array", "a number", ... */
export function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
