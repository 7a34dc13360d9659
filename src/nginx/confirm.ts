// Confirms which configuration nginx's workers serve: the default server answers the version
// the configuration carries on a loopback-only location. The Host below is one no tenant can
// claim (`_` is outside the host-name allow-list), so the default server always answers it.
import { request } from 'node:http';

export const VERSION_PATH = '/_dispatcher/config-version';
export const INTERNAL_HOST = '_dispatcher-internal';

/** GET on nginx's default server over loopback: the body when it answers 200, else undefined. */
export function getFromDefaultServer(
  port: number,
  path: string,
  timeoutMs = 1000,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        headers: { Host: INTERNAL_HOST },
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : undefined));
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

export function fetchServedVersion(port: number): Promise<string | undefined> {
  return getFromDefaultServer(port, VERSION_PATH);
}

/** Polls until nginx serves `version`; false when `timeoutMs` passes first. */
export async function waitForVersion(port: number, version: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  while (Date.now() < deadline) {
    if ((await fetchServedVersion(port)) === version) return true;
    await new Promise((resolve) => setTimeout(resolve, delay));
    // A loopback request costs well under a millisecond: poll often, so a reload is seen served
    // (and the next batch can start) within ~20 ms of it happening.
    delay = Math.min(delay * 2, 20);
  }
  return false;
}
