// The namespace's routing Secret → its API key and fields (base64). Values never reach a diagnostic.
import type { Converted, Diagnostic, KubeObject, SecretInfo } from '../types.js';
import type { ModelConfig } from './config.js';
import { isPlainObject, jsonKind, keyField, metadataOf } from './fields.js';
import { checkBase64, checkDnsLabel, checkSecretFieldName, describeObject } from './validate.js';

/**
 * An API key travels as one quoted nginx argument, and nginx refuses arguments over 4096 bytes: a
 * longer key could make nginx -t refuse every tenant's configuration. 1 KiB (1368 base64
 * characters) is far beyond any real key.
 */
export const MAX_API_KEY_BYTES = 1024;

const DENY_NOTE = '; every location of the namespace answers 403 until the API key is fixed';

export function toSecret(obj: KubeObject, cfg: ModelConfig): Converted<SecretInfo> {
  const metadata = metadataOf(obj);
  if (metadata.name !== cfg.apiKeySecretName) return { value: null, diagnostics: [] };
  const object = describeObject('Secret', metadata.namespace, metadata.name);
  const diagnostics: Diagnostic[] = [];
  const report = (field: string, reason: string): void => {
    diagnostics.push({ severity: 'warning', object, field, reason });
  };

  const namespace = checkDnsLabel(metadata.namespace);
  if (!namespace.ok) {
    report('metadata.namespace', `${namespace.reason}; secret ignored`);
    return { value: null, diagnostics };
  }

  const fields = new Map<string, string>();
  let apiKeyRejected = false;
  for (const [section, encode] of [
    ['data', (v: string) => checkBase64(v)],
    ['stringData', (v: string) => ({ ok: true as const, value: Buffer.from(v, 'utf8').toString('base64') })],
  ] as const) {
    const values: unknown = (obj as Record<string, unknown>)[section];
    if (values === undefined || values === null) continue;
    if (!isPlainObject(values)) {
      report(section, `is ${jsonKind(values)}, expected an object; ignored`);
      continue;
    }
    for (const [key, value] of Object.entries(values)) {
      const field = keyField(section, key);
      const name = checkSecretFieldName(key);
      if (!name.ok) {
        report(field, `${name.reason}; field ignored`);
        continue;
      }
      // The reason names the problem only: the value is secret, even when malformed.
      const encoded =
        typeof value === 'string' ? encode(value) : { ok: false as const, reason: 'is not a string' };
      const isApiKey = name.value === cfg.apiKeySecretField;
      // stringData wins over data: the last occurrence of a field decides, valid or not.
      if (!encoded.ok) {
        fields.delete(name.value);
        apiKeyRejected ||= isApiKey;
        report(field, `value ${encoded.reason}; field ignored${isApiKey ? DENY_NOTE : ''}`);
        continue;
      }
      if (isApiKey && Buffer.byteLength(encoded.value, 'base64') > MAX_API_KEY_BYTES) {
        fields.delete(name.value);
        apiKeyRejected = true;
        report(field, `value longer than ${MAX_API_KEY_BYTES} bytes; field ignored${DENY_NOTE}`);
        continue;
      }
      if (isApiKey) apiKeyRejected = false;
      fields.set(name.value, encoded.value);
    }
  }

  // No prototype: a reference to a field named "toString" or "__proto__" must not find an inherited value.
  const sorted: Record<string, string> = Object.create(null);
  for (const [key, value] of [...fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    sorted[key] = value;
  const apiKey = fields.get(cfg.apiKeySecretField);
  return {
    value: {
      namespace: namespace.value,
      ...(apiKey !== undefined && apiKey !== '' && { apiKey }),
      ...(apiKeyRejected && { apiKeyRejected }),
      fields: sorted,
    },
    diagnostics,
  };
}
