// Whether TLS material from a routing secret would load in nginx: PEM certificate chain, a private key
// matching the first certificate, an optional client CA. Pure computation, memoized by content.
import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { Result } from './validate.js';

const CACHE_LIMIT = 256;
const cache = new Map<string, Result<true>>();

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export function checkTlsMaterial(certB64: string, keyB64: string, clientCaB64?: string): Result<true> {
  if (
    typeof certB64 !== 'string' ||
    typeof keyB64 !== 'string' ||
    !['string', 'undefined'].includes(typeof clientCaB64)
  ) {
    return { ok: false, reason: 'TLS material is not base64 text' };
  }
  const hash = createHash('sha256');
  for (const part of [certB64, keyB64, clientCaB64 ?? '']) hash.update(`${part.length}:${part}`);
  const id = `${clientCaB64 === undefined ? 'n' : 'c'}${hash.digest('hex')}`;
  const known = cache.get(id);
  if (known) return known;
  const result = check(certB64, keyB64, clientCaB64);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(id, result);
  return result;
}

function check(certB64: string, keyB64: string, clientCaB64: string | undefined): Result<true> {
  const chain = parseCertificates(certB64);
  if (!chain.ok) return { ok: false, reason: `certificate: ${chain.reason}` };
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: decode(keyB64), format: 'pem' });
  } catch {
    return { ok: false, reason: 'certificate key: not a PEM private key (or it is encrypted)' };
  }
  const leaf = chain.value[0] as X509Certificate;
  if (!leaf.checkPrivateKey(key))
    return { ok: false, reason: 'certificate key does not match the certificate' };
  if (clientCaB64 !== undefined) {
    const ca = parseCertificates(clientCaB64);
    if (!ca.ok) return { ok: false, reason: `client certificate: ${ca.reason}` };
  }
  return { ok: true, value: true };
}

function decode(b64: string): string {
  return Buffer.from(b64, 'base64').toString('latin1');
}

function parseCertificates(b64: string): Result<X509Certificate[]> {
  const text = decode(b64);
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return { ok: false, reason: 'no PEM certificate found' };
  if (text.split('-----BEGIN CERTIFICATE-----').length - 1 !== blocks.length) {
    return { ok: false, reason: 'a PEM certificate is not terminated' };
  }
  const certificates: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      return { ok: false, reason: `PEM certificate ${index + 1} does not parse` };
    }
  }
  return { ok: true, value: certificates };
}
