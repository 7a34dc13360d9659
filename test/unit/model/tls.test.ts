import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTlsMaterial } from '../../../src/model/tls.js';

/** Base64 (as in a Secret's data) of each generated PEM file. */
const pem: Record<string, string> = {};
let dir = '';

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dispatcher-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test ca');
  openssl('req', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=secure.dev');
  openssl(
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'leaf.crt',
    '-days',
    '2',
  );
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'rsa.key',
    '-out',
    'rsa.crt',
    '-days',
    '2',
    '-subj',
    '/CN=rsa.dev',
  );
  openssl('pkey', '-in', 'leaf.key', '-aes256', '-passout', 'pass:secret', '-out', 'encrypted.key');
  openssl('x509', '-in', 'leaf.crt', '-outform', 'DER', '-out', 'leaf.der');
  for (const file of [
    'ca.crt',
    'ca.key',
    'leaf.crt',
    'leaf.key',
    'rsa.crt',
    'rsa.key',
    'encrypted.key',
    'leaf.der',
  ]) {
    pem[file] = readFileSync(join(dir, file)).toString('base64');
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const file = (name: string): string => pem[name] ?? '';
const text = (name: string): string => Buffer.from(file(name), 'base64').toString('latin1');
const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');

describe('checkTlsMaterial', () => {
  it.each<[string, () => [string, string, string?]]>([
    ['an EC certificate and its key', () => [file('leaf.crt'), file('leaf.key')]],
    ['an RSA certificate and its key', () => [file('rsa.crt'), file('rsa.key')]],
    [
      'a chain (leaf then CA) and the leaf key',
      () => [b64(text('leaf.crt') + text('ca.crt')), file('leaf.key')],
    ],
    ['a pair and a client CA', () => [file('leaf.crt'), file('leaf.key'), file('ca.crt')]],
    [
      'a client CA bundle of two certificates',
      () => [file('leaf.crt'), file('leaf.key'), b64(text('ca.crt') + text('rsa.crt'))],
    ],
  ])('accepts %s', (_, inputs) => {
    expect(checkTlsMaterial(...inputs())).toEqual({ ok: true, value: true });
  });

  it.each<[string, () => [string, string, string?], string]>([
    [
      'a key of another certificate',
      () => [file('leaf.crt'), file('rsa.key')],
      'certificate key does not match the certificate',
    ],
    [
      'the CA key for the leaf',
      () => [file('leaf.crt'), file('ca.key')],
      'certificate key does not match the certificate',
    ],
    [
      "a chain whose first certificate is not the key's",
      () => [b64(text('ca.crt') + text('leaf.crt')), file('leaf.key')],
      'certificate key does not match the certificate',
    ],
    [
      'a certificate that is not PEM',
      () => [b64('hello'), file('leaf.key')],
      'certificate: no PEM certificate found',
    ],
    [
      'a DER certificate',
      () => [file('leaf.der'), file('leaf.key')],
      'certificate: no PEM certificate found',
    ],
    ['an empty certificate', () => ['', file('leaf.key')], 'certificate: no PEM certificate found'],
    [
      'a corrupted certificate',
      () => [b64(text('leaf.crt').replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!')), file('leaf.key')],
      'certificate: PEM certificate 1 does not parse',
    ],
    [
      'a chain with a corrupted second certificate',
      () => [
        b64(text('leaf.crt') + text('ca.crt').slice(0, 200) + text('ca.crt').slice(260)),
        file('leaf.key'),
      ],
      'certificate: PEM certificate 2 does not parse',
    ],
    [
      'an unterminated certificate',
      () => [b64(text('leaf.crt') + text('ca.crt').slice(0, 100)), file('leaf.key')],
      'certificate: a PEM certificate is not terminated',
    ],
    [
      'a key that is a certificate',
      () => [file('leaf.crt'), file('leaf.crt')],
      'certificate key: not a PEM private key (or it is encrypted)',
    ],
    [
      'an encrypted key',
      () => [file('leaf.crt'), file('encrypted.key')],
      'certificate key: not a PEM private key (or it is encrypted)',
    ],
    [
      'an empty key',
      () => [file('leaf.crt'), ''],
      'certificate key: not a PEM private key (or it is encrypted)',
    ],
    [
      'a client CA that is not PEM',
      () => [file('leaf.crt'), file('leaf.key'), b64('nope')],
      'client certificate: no PEM certificate found',
    ],
    [
      'an empty client CA',
      () => [file('leaf.crt'), file('leaf.key'), ''],
      'client certificate: no PEM certificate found',
    ],
  ])('rejects %s', (_, inputs, reason) => {
    expect(checkTlsMaterial(...inputs())).toEqual({ ok: false, reason });
  });

  it('never puts key material into a reason', () => {
    const keyLines = text('rsa.key')
      .split('\n')
      .filter((l) => l.length > 20 && !l.startsWith('-----'));
    for (const inputs of [
      [file('leaf.crt'), file('rsa.key')],
      [file('rsa.key'), file('rsa.key')],
      [file('leaf.crt'), b64(text('rsa.key').replace('MII', 'XXX'))],
    ] as const) {
      const result = checkTlsMaterial(...inputs);
      expect(result.ok).toBe(false);
      if (!result.ok) for (const line of keyLines) expect(result.reason).not.toContain(line.slice(0, 12));
    }
  });

  it('answers repeated checks of the same material from memory, and tells inputs apart', () => {
    const first = checkTlsMaterial(file('leaf.crt'), file('leaf.key'));
    expect(checkTlsMaterial(file('leaf.crt'), file('leaf.key'))).toBe(first);
    expect(checkTlsMaterial(file('leaf.crt'), file('leaf.key'), file('ca.crt'))).not.toBe(first);
    expect(checkTlsMaterial(file('leaf.crt'), file('rsa.key')).ok).toBe(false);
    // Moving text between the arguments must not hit another entry.
    expect(checkTlsMaterial(file('leaf.crt') + file('leaf.key'), '').ok).toBe(false);
  });

  it('stays correct when the memory overflows', () => {
    for (let i = 0; i < 300; i++) checkTlsMaterial(b64(`junk ${i}`), file('leaf.key'));
    expect(checkTlsMaterial(file('leaf.crt'), file('leaf.key'))).toEqual({ ok: true, value: true });
    expect(checkTlsMaterial(file('leaf.crt'), file('rsa.key')).ok).toBe(false);
  });
});
