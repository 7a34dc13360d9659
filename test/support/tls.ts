// Test certificates made with the real openssl: a CA, certificates it signs, and self-signed pairs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
}

const dir = mkdtempSync(join(tmpdir(), 'dispatcher-tls-'));
let counter = 0;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function read(certPath: string, keyPath: string): Pem {
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath };
}

/** A self-signed certificate for `cn` (also a CA, so it can sign client certificates). */
export function selfSigned(cn: string): Pem {
  counter += 1;
  const certPath = join(dir, `${counter}.crt`);
  const keyPath = join(dir, `${counter}.key`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '30',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=DNS:${cn}`,
  ]);
  return read(certPath, keyPath);
}

/** A certificate for `cn` signed by `ca`. */
export function signedBy(ca: Pem, cn: string): Pem {
  counter += 1;
  const certPath = join(dir, `${counter}.crt`);
  const keyPath = join(dir, `${counter}.key`);
  const csrPath = join(dir, `${counter}.csr`);
  openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    csrPath,
    '-subj',
    `/CN=${cn}`,
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    csrPath,
    '-CA',
    ca.certPath,
    '-CAkey',
    ca.keyPath,
    '-CAcreateserial',
    '-out',
    certPath,
    '-days',
    '30',
  ]);
  return read(certPath, keyPath);
}

export const b64 = (text: string): string => Buffer.from(text).toString('base64');
