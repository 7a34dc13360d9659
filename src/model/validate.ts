// Every allow-list of SPEC section 5, in one place. Each checker takes untrusted input and returns
// either the value in the form the rest of the program uses or a short reason that quotes the input
// only through quoteUntrusted.
import { isIP } from 'node:net';
import type { Config, ObjectKind } from '../types.js';

export type Result<T> = { ok: true; value: T } | { ok: false; reason: string };

const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const fail = <T>(reason: string): Result<T> => ({ ok: false, reason });

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;

function isIpv4Literal(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => DECIMAL_OCTET.test(p) && Number(p) <= 255);
}

/** RFC 1123 host name (lower-cased first) or a dotted-decimal IPv4 literal. */
export function checkHost(value: unknown): Result<string> {
  if (typeof value !== 'string') return fail(`host must be a string, got ${quoteUntrusted(value)}`);
  const host = value.toLowerCase();
  const bad = `${quoteUntrusted(value)} is not a valid host name`;
  if (host.length === 0) return fail('host name is empty');
  // Checked before lower-casing too: U+212A (Kelvin sign) lower-cases to an ASCII 'k'.
  if (/[^\x21-\x7e]/.test(value)) return fail(`${bad}: only ASCII letters, digits, '-' and '.' are allowed`);
  if (host.length > 253) return fail(`${bad}: longer than 253 characters`);
  if (isIpv4Literal(host)) return ok(host);
  const labels = host.split('.');
  for (const label of labels) {
    if (label.length === 0) return fail(`${bad}: empty label`);
    if (label.length > 63) return fail(`${bad}: label longer than 63 characters`);
    if (!DNS_LABEL.test(label)) {
      return fail(`${bad}: labels are letters, digits and '-', not starting or ending with '-'`);
    }
  }
  // An all-numeric last label is an IPv4 literal gone wrong ("1.2.3.999"), never a DNS name.
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) return fail(`${bad}: not a valid IPv4 address`);
  return ok(host);
}

const PATH_CHARS = /^(?:[A-Za-z0-9\-._~!*+,=:@&()/]|%[0-9A-Fa-f]{2})*$/;

/** basePath, targetPath, status path: SPEC section 5. */
export function checkPath(value: unknown): Result<string> {
  if (typeof value !== 'string') return fail(`path must be a string, got ${quoteUntrusted(value)}`);
  const bad = `${quoteUntrusted(value)} is not a valid path`;
  if (!value.startsWith('/')) return fail(`${bad}: must start with '/'`);
  if (value.length > 1024) return fail(`${bad}: longer than 1024 characters`);
  if (!PATH_CHARS.test(value)) {
    return fail(`${bad}: only A-Z a-z 0-9 - . _ ~ ! * + , = : @ & ( ) / and %XX are allowed`);
  }
  if (value.includes('//')) return fail(`${bad}: contains '//'`);
  for (const segment of value.split('/')) {
    const decoded = segment.replace(/%2e/gi, '.');
    if (decoded === '.' || decoded === '..') return fail(`${bad}: contains a '.' or '..' segment`);
  }
  return ok(value);
}

/** Strict port: a JS integer 1–65535 or its plain decimal string (no sign, space, leading zero). */
export function checkPort(value: unknown): Result<number> {
  const bad = `${quoteUntrusted(value)} is not a port (an integer 1-65535)`;
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 1 && value <= 65535 ? ok(value) : fail(bad);
  }
  if (typeof value === 'string' && /^[1-9][0-9]{0,4}$/.test(value)) {
    const port = Number(value);
    return port <= 65535 ? ok(port) : fail(bad);
  }
  return fail(bad);
}

/** A JSON integer 1–1000; strings are rejected. */
export function checkWeight(value: unknown): Result<number> {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 1000) return ok(value);
  return fail(`${quoteUntrusted(value)} is not a weight (a JSON integer 1-1000)`);
}

export function checkHeaderName(value: unknown): Result<string> {
  if (typeof value === 'string' && /^[A-Za-z0-9-]+$/.test(value)) return ok(value);
  return fail(`${quoteUntrusted(value)} is not a header name ([A-Za-z0-9-]+)`);
}

export function checkSecretFieldName(value: unknown): Result<string> {
  if (
    typeof value === 'string' &&
    value.length <= 253 &&
    /^[-._a-zA-Z0-9]+$/.test(value) &&
    value !== '.' &&
    value !== '..'
  ) {
    return ok(value);
  }
  return fail(
    `${quoteUntrusted(value)} is not a secret field name ([-._a-zA-Z0-9]+, at most 253, not . or ..)`,
  );
}

const SIZE_SCALE: Record<string, bigint> = { '': 1n, k: 1024n, m: 1024n ** 2n, g: 1024n ** 3n };
const MAX_OFF_T = 2n ** 63n - 1n;

/** nginx size (`0`, `10m`, ...); also refuses sizes nginx would overflow on. */
export function checkSize(value: unknown): Result<string> {
  const match = typeof value === 'string' ? /^([0-9]+)([kKmMgG]?)$/.exec(value) : null;
  const bad = `${quoteUntrusted(value)} is not a size (digits with an optional k, m or g)`;
  if (!match) return fail(bad);
  const bytes = BigInt(match[1] ?? '0') * (SIZE_SCALE[(match[2] ?? '').toLowerCase()] ?? 1n);
  return bytes <= MAX_OFF_T ? ok(match[0]) : fail(`${bad}: too large`);
}

/** A status code 100–599 or an http(s):// URL free of anything nginx would read as syntax. */
export function checkDefaultReturn(value: unknown): Result<Config['defaultLocationReturn']> {
  const bad = `${quoteUntrusted(value)} is not a status code (100-599) or an http(s):// URL`;
  if (typeof value !== 'string') return fail(bad);
  if (/^[0-9]{3}$/.test(value)) {
    const code = Number(value);
    return code >= 100 && code <= 599 ? ok({ kind: 'status', code }) : fail(bad);
  }
  // Printable ASCII only (no whitespace, controls or non-ASCII), minus what nginx reads as syntax.
  if (value.length <= 2048 && /^https?:\/\/[!-~]+$/.test(value) && !/["'`;{}$#\\]/.test(value)) {
    if (/^https?:\/\/[/?]/.test(value) || !URL.canParse(value)) return fail(bad);
    return ok({ kind: 'url', url: value });
  }
  return fail(bad);
}

/** A pod IP, formatted for nginx (`1.2.3.4`, `[fd00::1]`); zone ids are refused. */
export function checkIp(value: unknown): Result<string> {
  const bad = `${quoteUntrusted(value)} is not an IP address`;
  if (typeof value !== 'string' || value.includes('%')) return fail(bad);
  const version = isIP(value);
  if (version === 4) return ok(value);
  if (version === 6) return ok(`[${value.toLowerCase()}]`);
  return fail(bad);
}

/** RFC 1123 label: namespace names. */
export function checkDnsLabel(value: unknown): Result<string> {
  if (typeof value === 'string' && value.length <= 63 && DNS_LABEL.test(value)) return ok(value);
  return fail(`${quoteUntrusted(value)} is not a valid name (RFC 1123 label: a-z, 0-9, '-', at most 63)`);
}

/** RFC 1123 subdomain as Kubernetes checks it: pod and secret names. */
export function checkDnsSubdomain(value: unknown): Result<string> {
  if (typeof value === 'string' && value.length <= 253 && value.split('.').every((l) => DNS_LABEL.test(l))) {
    return ok(value);
  }
  return fail(
    `${quoteUntrusted(value)} is not a valid name (RFC 1123 subdomain: a-z, 0-9, '-', '.', at most 253)`,
  );
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Canonical padded base64 (unused trailing bits zero). The reason never repeats the value. */
export function checkBase64(value: unknown): Result<string> {
  if (typeof value !== 'string') return fail('is not a base64 string');
  if (!BASE64.test(value) || Buffer.from(value, 'base64').toString('base64') !== value) {
    return fail('is not valid base64');
  }
  return ok(value);
}

/**
 * A short, escaped rendering of untrusted input for diagnostics: strings JSON-quoted, other
 * values as JSON text, cut to `max` characters with "…", every control and non-ASCII character as
 * \uXXXX, so a log line never carries a raw newline or look-alike text.
 */
export function quoteUntrusted(value: unknown, max = 64): string {
  const isString = typeof value === 'string';
  let text: string;
  if (isString) text = value;
  else if (value === undefined) text = 'undefined';
  else if (typeof value === 'bigint') text = `${value}n`;
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  const truncated = text.length > max;
  if (truncated) text = text.slice(0, max);
  let out = isString ? JSON.stringify(text).slice(1, -1) : text;
  out = out.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (truncated) out += '…';
  return isString ? `"${out}"` : out;
}

/** `Pod ns/name`, `Namespace name`, `Secret ns/name`; names that are not valid come quoted. */
export function describeObject(kind: ObjectKind, namespace: unknown, name: unknown): string {
  const nameText = kind === 'Namespace' ? safeName(name, checkDnsLabel) : safeName(name, checkDnsSubdomain);
  if (kind === 'Namespace') return `Namespace ${nameText}`;
  return `${kind} ${safeName(namespace, checkDnsLabel)}/${nameText}`;
}

function safeName(value: unknown, check: (v: unknown) => Result<string>): string {
  return check(value).ok ? (value as string) : quoteUntrusted(value);
}
