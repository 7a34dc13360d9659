// Real HTTP servers standing in for pods: each listens on its own loopback address and answers with
// what it received, so that a test can tell which pod answered and what nginx forwarded.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

/** What every backend answers (except /stream): the request as the pod saw it. */
export interface Echo {
  pod: string;
  method: string;
  /** Path and query string as the backend received them. */
  url: string;
  headers: IncomingHttpHeaders;
  /** Length in bytes of the request body the backend received. */
  bodyLength: number;
}

export interface Backend {
  name: string;
  host: string;
  port: number;
  /** `host:port`, as a pod's address in an upstream. */
  address: string;
  /** Distinct TCP connections accepted so far (keepalive reuse keeps this low). */
  readonly connections: number;
  /** Requests to /stream that have sent their first chunk and wait for `releaseStreams()`. */
  readonly heldStreams: number;
  /** Lets every held /stream response send its second chunk and end. */
  releaseStreams(): void;
  close(): Promise<void>;
}

export const streamChunks = { first: 'first chunk\n', second: 'second chunk\n' } as const;

// A /stream response left unreleased by a failing test still ends, so that close() never hangs.
const streamReleaseFallbackMs = 30_000;

/**
 * Starts a backend on `host` (a 127.0.0.x address) and a random port. Every request gets its
 * `Echo` as JSON; `/stream` answers `X-Accel-Buffering: no` with one chunk, then a second one only
 * after `releaseStreams()`; WebSocket connections on any path echo every message back.
 */
export async function startBackend({ host, name }: { host: string; name: string }): Promise<Backend> {
  let connections = 0;
  let releases: Array<() => void> = [];

  const server: Server = createServer((req, res) => {
    const url = req.url ?? '';
    let bodyLength = 0;
    req.on('data', (chunk: Buffer) => {
      bodyLength += chunk.length;
    });
    req.on('end', () => {
      if (url === '/stream' || url.startsWith('/stream?')) {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Accel-Buffering': 'no' });
        res.write(streamChunks.first);
        const release = () => {
          clearTimeout(fallback);
          releases = releases.filter((r) => r !== release);
          res.end(streamChunks.second);
        };
        const fallback = setTimeout(release, streamReleaseFallbackMs);
        releases.push(release);
        return;
      }
      const echo: Echo = { pod: name, method: req.method ?? '', url, headers: req.headers, bodyLength };
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(echo));
    });
  });
  server.on('connection', () => {
    connections += 1;
  });

  const webSockets = new WebSocketServer({ server });
  webSockets.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    name,
    host,
    port,
    address: `${host}:${port}`,
    get connections() {
      return connections;
    },
    get heldStreams() {
      return releases.length;
    },
    releaseStreams() {
      for (const release of [...releases]) release();
    },
    async close() {
      for (const release of [...releases]) release();
      for (const client of webSockets.clients) client.terminate();
      await new Promise<void>((resolve) => webSockets.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/** `n` backends named pod-1…pod-n on 127.0.0.2…127.0.0.(n+1). */
export async function startBackends(n: number): Promise<Backend[]> {
  const hosts = Array.from({ length: n }, (_, i) => ({ host: `127.0.0.${i + 2}`, name: `pod-${i + 1}` }));
  return Promise.all(hosts.map(startBackend));
}

export async function closeAll(backends: Backend[]): Promise<void> {
  await Promise.all(backends.map((b) => b.close()));
}
