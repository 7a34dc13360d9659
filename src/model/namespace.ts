// A Namespace → its hosts (with SSL options) and recorded labels, or null when it does not route.
import type { Converted, Diagnostic, HostSpec, KubeObject, NamespaceInfo, SslRefs } from '../types.js';
import type { ModelConfig } from './config.js';
import {
  annotationField,
  annotationText,
  isoTimestamp,
  isPlainObject,
  jsonKind,
  keyField,
  metadataOf,
  parseJson,
  stringLabel,
  stringLabels,
} from './fields.js';
import { matchesSelector, type Selector } from './selector.js';
import {
  checkDnsLabel,
  checkHost,
  checkSecretFieldName,
  describeObject,
  quoteUntrusted,
} from './validate.js';

export const MAX_HOSTS = 1000;

type Report = (severity: Diagnostic['severity'], field: string, reason: string) => void;

export function toNamespace(obj: KubeObject, cfg: ModelConfig, selector: Selector): Converted<NamespaceInfo> {
  const labels = stringLabels(obj);
  if (!matchesSelector(selector, labels)) return { value: null, diagnostics: [] };
  const metadata = metadataOf(obj);
  const object = describeObject('Namespace', undefined, metadata.name);
  const diagnostics: Diagnostic[] = [];
  const report: Report = (severity, field, reason) => diagnostics.push({ severity, object, field, reason });

  const name = checkDnsLabel(metadata.name);
  if (!name.ok) {
    report('warning', 'metadata.name', `${name.reason}; namespace not routed`);
    return { value: null, diagnostics };
  }
  let createdAt = isoTimestamp(metadata.creationTimestamp);
  if (createdAt === undefined) {
    report(
      'warning',
      'metadata.creationTimestamp',
      `${quoteUntrusted(metadata.creationTimestamp)} is not a timestamp`,
    );
    createdAt = '';
  }
  const org = stringLabel(labels, cfg.orgLabel);
  const env = stringLabel(labels, cfg.envLabel);
  const hosts = readHosts(obj, cfg.hostsAnnotation, report);
  return {
    value: {
      name: name.value,
      createdAt,
      ...(org !== undefined && { org }),
      ...(env !== undefined && { env }),
      hosts,
    },
    diagnostics,
  };
}

function readHosts(obj: KubeObject, annotation: string, report: Report): HostSpec[] {
  const field = annotationField(annotation);
  const text = annotationText(obj, annotation);
  if (!text.ok) {
    report('warning', field, `${text.reason}; no hosts`);
    return [];
  }
  if (text.value === undefined) {
    report('info', field, 'annotation absent; the namespace serves no host');
    return [];
  }
  const json = parseJson(text.value);
  if (json.ok) return hostsFromJson(json.value, field, report);
  if (/^\s*[{["]/.test(text.value)) {
    report('warning', field, `${json.reason}; no hosts`);
    return [];
  }
  return hostsFromList(text.value, field, report);
}

/** The legacy form: host names separated by spaces, no options. */
function hostsFromList(text: string, field: string, report: Report): HostSpec[] {
  const names = text.split(/[ \t\r\n\f\v]+/).filter((n) => n.length > 0);
  if (names.length > MAX_HOSTS) {
    report('warning', field, `lists ${names.length} hosts, more than the limit of ${MAX_HOSTS}; no hosts`);
    return [];
  }
  if (names.length === 0) report('info', field, 'lists no hosts');
  const hosts = new Set<string>();
  for (const name of names) {
    const host = checkHost(name);
    if (host.ok) hosts.add(host.value);
    else report('warning', field, `${host.reason}; host left out`);
  }
  return [...hosts].sort().map((name) => ({ name }));
}

interface HostEntry {
  key: string;
  ssl?: SslRefs;
}

function hostsFromJson(json: unknown, field: string, report: Report): HostSpec[] {
  if (!isPlainObject(json)) {
    report(
      'warning',
      field,
      `is ${jsonKind(json)}, expected a JSON object of host names to host options; no hosts`,
    );
    return [];
  }
  const keys = Object.keys(json);
  if (keys.length > MAX_HOSTS) {
    report('warning', field, `lists ${keys.length} hosts, more than the limit of ${MAX_HOSTS}; no hosts`);
    return [];
  }
  const entries = new Map<string, HostEntry[]>();
  const refused = new Set<string>();
  for (const key of keys) {
    const hostField = keyField(field, key);
    const host = checkHost(key);
    if (!host.ok) {
      report('warning', hostField, `${host.reason}; host left out`);
      continue;
    }
    const options = readHostOptions(json[key], hostField);
    if (!options.ok) {
      report('warning', options.field, `${options.reason}; host left out`);
      refused.add(host.value);
      continue;
    }
    const list = entries.get(host.value) ?? [];
    list.push({ key, ...(options.ssl && { ssl: options.ssl }) });
    entries.set(host.value, list);
  }

  const hosts: HostSpec[] = [];
  for (const [name, list] of entries) {
    if (refused.has(name)) {
      // Another spelling of this host had invalid options: which options were meant is unknown.
      for (const entry of list) {
        report(
          'warning',
          keyField(field, entry.key),
          'another spelling of this host has invalid options; host left out',
        );
      }
      continue;
    }
    const kept = mergeDuplicates(name, list, field, report);
    hosts.push({ name, ...(kept.ssl && { ssl: kept.ssl }) });
  }
  return hosts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Spellings of one host that differ only in case. When their options differ, the first one with
 * SSL wins (never serve in plain HTTP what one spelling asked to protect), else the first.
 */
function mergeDuplicates(name: string, list: HostEntry[], field: string, report: Report): HostEntry {
  const first = list[0] as HostEntry;
  const kept = list.find((e) => e.ssl) ?? first;
  const keptOptions = JSON.stringify(kept.ssl ?? null);
  for (const entry of list) {
    if (entry === kept || JSON.stringify(entry.ssl ?? null) === keptOptions) continue;
    report(
      'warning',
      keyField(field, entry.key),
      `duplicate of host ${name} (host names are case-insensitive) with other options; the options of ${quoteUntrusted(kept.key)} apply`,
    );
  }
  return kept;
}

type OptionsResult = { ok: true; ssl?: SslRefs } | { ok: false; field: string; reason: string };

/** Host options: `{}` or `{"ssl": {...}}`; anything unknown refuses the host (a typo must not mean plain HTTP). */
function readHostOptions(value: unknown, field: string): OptionsResult {
  const shape = checkShape(value, field, ['ssl'], []);
  if (shape) return shape;
  const options = value as Record<string, unknown>;
  if (!Object.hasOwn(options, 'ssl')) return { ok: true };
  const sslField = `${field}.ssl`;
  const sslShape = checkShape(
    options.ssl,
    sslField,
    ['certificate', 'certificateKey', 'clientCertificate'],
    ['certificate', 'certificateKey'],
  );
  if (sslShape) return sslShape;
  const ssl = options.ssl as Record<string, unknown>;
  const certificate = readSecretRef(ssl.certificate, `${sslField}.certificate`);
  if (!certificate.ok) return certificate;
  const certificateKey = readSecretRef(ssl.certificateKey, `${sslField}.certificateKey`);
  if (!certificateKey.ok) return certificateKey;
  if (!Object.hasOwn(ssl, 'clientCertificate')) {
    return { ok: true, ssl: { certificate: certificate.key, certificateKey: certificateKey.key } };
  }
  const clientCertificate = readSecretRef(ssl.clientCertificate, `${sslField}.clientCertificate`);
  if (!clientCertificate.ok) return clientCertificate;
  return {
    ok: true,
    ssl: {
      certificate: certificate.key,
      certificateKey: certificateKey.key,
      clientCertificate: clientCertificate.key,
    },
  };
}

type RefResult = { ok: true; key: string } | { ok: false; field: string; reason: string };

/** `{"valueFrom": {"secretKeyRef": {"key": "<field>"}}}` and nothing else. */
function readSecretRef(value: unknown, field: string): RefResult {
  const refShape = checkShape(value, field, ['valueFrom'], ['valueFrom']);
  if (refShape) return refShape;
  const valueFrom = (value as Record<string, unknown>).valueFrom;
  const fromField = `${field}.valueFrom`;
  const fromShape = checkShape(valueFrom, fromField, ['secretKeyRef'], ['secretKeyRef']);
  if (fromShape) return fromShape;
  const secretKeyRef = (valueFrom as Record<string, unknown>).secretKeyRef;
  const refField = `${fromField}.secretKeyRef`;
  const keyShape = checkShape(secretKeyRef, refField, ['key'], ['key']);
  if (keyShape) return keyShape;
  const key = checkSecretFieldName((secretKeyRef as Record<string, unknown>).key);
  return key.ok ? { ok: true, key: key.value } : { ok: false, field: `${refField}.key`, reason: key.reason };
}

/** A failure when `value` is not an object with only `allowed` keys and every `required` key. */
function checkShape(
  value: unknown,
  field: string,
  allowed: readonly string[],
  required: readonly string[],
): { ok: false; field: string; reason: string } | undefined {
  if (!isPlainObject(value)) return { ok: false, field, reason: `is ${jsonKind(value)}, expected an object` };
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const known = allowed.map((k) => JSON.stringify(k)).join(', ');
      return { ok: false, field: keyField(field, key), reason: `unknown option (known: ${known})` };
    }
  }
  for (const key of required) {
    if (!Object.hasOwn(value, key)) return { ok: false, field: `${field}.${key}`, reason: 'is required' };
  }
  return undefined;
}
