// TLS files of SSL hosts, written from routing secrets under SSL_CERT_DIR/<host>/. The plan says
// which files with which content; this module only makes the disk match.
import { chmod, mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { TlsFile } from '../types.js';

/** The only names dispatcher writes; a directory holding anything else is never removed. */
const OWN_FILES: ReadonlySet<string> = new Set([
  'certificate.crt',
  'certificate.key',
  'clientCertificate.crt',
]);

/** Writes every file whose content or mode differs; returns how many were written. */
export async function writeTlsFiles(files: readonly TlsFile[]): Promise<number> {
  let written = 0;
  for (const file of files) {
    const content = Buffer.from(file.contentBase64, 'base64');
    const current = await readFile(file.path).catch(() => undefined);
    if (current?.equals(content)) {
      await chmod(file.path, file.mode);
      continue;
    }
    await mkdir(dirname(file.path), { recursive: true, mode: 0o755 });
    const temp = join(dirname(file.path), `.${basename(file.path)}.next`);
    await writeFile(temp, content, { mode: file.mode });
    await chmod(temp, file.mode);
    await rename(temp, file.path);
    written += 1;
  }
  return written;
}

/**
 * Removes host directories under `certDir` that the current files do not use. Only directories
 * made of dispatcher's own file names are touched, so a default pair kept in the same folder stays.
 */
export async function removeStaleTlsFiles(certDir: string, keep: readonly TlsFile[]): Promise<string[]> {
  const used = new Set(keep.map((f) => dirname(f.path)));
  const entries = await readdir(certDir, { withFileTypes: true }).catch(() => []);
  const removed: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const dir = join(certDir, entry.name);
    if (used.has(dir)) continue;
    const names = await readdir(dir);
    if (!names.every((name) => OWN_FILES.has(name))) continue;
    for (const name of names) await rm(join(dir, name), { force: true });
    await rmdir(dir).catch(() => undefined);
    removed.push(entry.name);
  }
  return removed;
}
