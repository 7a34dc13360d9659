// The admin HTTP server: health and readiness for probes, metrics for Prometheus, the routing table
// for people. It only reads; nothing here changes routing.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { ControllerState } from '../controller.js';
import { routesPage } from './page.js';
import { routesView } from './routes-view.js';

export interface Health {
  ok: boolean;
  reason?: string;
}

export interface AdminDeps {
  state: ControllerState;
  registry: Registry;
  /** Each check answers whether that part is alive; /healthz is 200 only when all are. */
  checks: Record<string, () => Health | Promise<Health>>;
}

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
  });
  res.end(body);
}

const json = (res: ServerResponse, status: number, value: unknown): void =>
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value, null, 2)}\n`);

export function adminHandlers(deps: AdminDeps): Record<string, Handler> {
  return {
    '/healthz': async (_req, res) => {
      const results = await Promise.all(
        Object.entries(deps.checks).map(async ([name, check]) => [name, await check()] as const),
      );
      const failing = results
        .filter(([, h]) => !h.ok)
        .map(([name, h]) => `${name}: ${h.reason ?? 'failing'}`);
      if (failing.length === 0) send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      else send(res, 503, 'text/plain; charset=utf-8', `${failing.join('\n')}\n`);
    },
    '/readyz': async (_req, res) => {
      if (deps.state.ready) send(res, 200, 'text/plain; charset=utf-8', 'ready\n');
      else
        send(
          res,
          503,
          'text/plain; charset=utf-8',
          'not ready: the first full list has not been applied yet\n',
        );
    },
    '/metrics': async (_req, res) => {
      send(res, 200, deps.registry.contentType, await deps.registry.metrics());
    },
    '/routes': async (_req, res) => {
      json(res, 200, routesView(deps.state.table, deps.state.ready));
    },
    '/': async (_req, res) => {
      send(res, 200, 'text/html; charset=utf-8', routesPage(routesView(deps.state.table, deps.state.ready)));
    },
  };
}

export function startAdminServer(deps: AdminDeps, port: number, host: string): Promise<AdminServer> {
  const handlers = adminHandlers(deps);
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://admin').pathname;
    const handler = handlers[path];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (!handler) {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    handler(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${(error as Error).message}\n`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
