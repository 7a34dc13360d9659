// The listening sockets dispatcher holds for nginx, so that every nginx master it starts serves on the
// same sockets (nginx takes them over from its NGINX environment variable, as in its own binary
// upgrade) and a new master can replace a running one without a connection being refused or lost:
// both accept on one socket until the old one stops.
//
// node cannot open a listening socket without accepting on it itself, so a short-lived node child
// opens them and sends each raw socket handle over its IPC channel: the handle this process receives
// is an open descriptor nobody here reads from. Nothing here decides which ports to hold.
import { spawn } from 'node:child_process';

export interface HeldSockets {
  /** The ports held, each on every IPv4 address (nginx's `listen PORT`). */
  readonly ports: readonly number[];
  /** This process's descriptor of each port's socket, in the order of `ports`. */
  readonly fds: readonly number[];
  /** Closes this process's descriptors (the sockets stay open in any nginx that still has them). */
  close(): void;
}

export type HoldResult = { ok: true; sockets: HeldSockets } | { ok: false; port: number; reason: string };

/** The socket handle node hands over an IPC channel: a descriptor and a way to close it. */
interface RawHandle {
  fd: number;
  close(): void;
}

function isRawHandle(value: unknown): value is RawHandle {
  const handle = value as Partial<RawHandle> | undefined;
  return typeof handle?.fd === 'number' && handle.fd >= 0 && typeof handle.close === 'function';
}

// Runs as `node -e`: listens on each port given, sends every server's handle (not the server: a
// server would start accepting in the receiver), then exits. A connection that reaches it in the
// few milliseconds it listens alone is closed; nginx does not serve yet at that point anyway.
const OPENER = `
const net = require('node:net');
const ports = process.argv.slice(1).map(Number);
let sent = 0;
for (const port of ports) {
  const server = net.createServer((socket) => socket.destroy());
  server.once('error', (error) => {
    process.send({ port, error: error.code || error.message }, () => process.exit(1));
  });
  server.listen({ host: '0.0.0.0', port, backlog: 511, exclusive: true }, () => {
    process.send({ port }, server._handle, () => {
      sent += 1;
      if (sent === ports.length) process.exit(0);
    });
  });
}
`;

/** Opens a listening socket on every IPv4 address for each of `ports`, or says which one failed and why. */
export function holdListeningSockets(ports: readonly number[], timeoutMs = 10_000): Promise<HoldResult> {
  return new Promise((resolve) => {
    const handles = new Map<number, RawHandle>();
    const closeAll = (): void => {
      for (const handle of handles.values()) handle.close();
    };
    let settled = false;
    const settle = (result: HoldResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!result.ok) closeAll();
      resolve(result);
    };
    const opener = spawn(process.execPath, ['-e', OPENER, ...ports.map(String)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // The opener needs none of dispatcher's node options (heap sizes, --expose-gc of the bench).
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let stderr = '';
    opener.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-2000);
    });
    const timer = setTimeout(() => {
      opener.kill('SIGKILL');
      settle({ ok: false, port: ports[0] ?? 0, reason: `no socket within ${timeoutMs} ms` });
    }, timeoutMs);
    opener.on('message', (message: { port?: unknown; error?: unknown }, handle: unknown) => {
      const port = Number(message.port);
      if (message.error !== undefined) {
        settle({ ok: false, port, reason: String(message.error) });
      } else if (isRawHandle(handle)) {
        handles.set(port, handle);
        if (handles.size === ports.length) {
          const held = ports.map((p) => handles.get(p) as RawHandle);
          settle({ ok: true, sockets: { ports, fds: held.map((h) => h.fd), close: closeAll } });
        }
      }
    });
    opener.once('error', (error) => settle({ ok: false, port: ports[0] ?? 0, reason: error.message }));
    // 'close', not 'exit': messages still in the channel when the opener exits arrive before it.
    opener.once('close', (code) => {
      if (handles.size < ports.length) {
        settle({
          ok: false,
          port: ports.find((p) => !handles.has(p)) ?? 0,
          reason: stderr.trim() || `the socket opener exited with code ${code}`,
        });
      }
    });
  });
}
