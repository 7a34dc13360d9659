// A client for the end-to-end tests: plain node:http to nginx on 127.0.0.1 with an explicit Host
// header, telling nginx's 444 (connection closed without an answer) apart from a real error.
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import WebSocket from 'ws';

export interface RequestOptions {
  /** Host header, sent as given (add `:port` to send one). */
  host: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** A keep-alive agent (see `keepAliveAgent`) to reuse the client connection; default: a new one. */
  agent?: Agent;
}

export interface Response {
  /** True when nginx closed the connection without answering (its 444); status is then 0. */
  closed: boolean;
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = unknown>(): T;
}

const closedResponse: Response = {
  closed: true,
  status: 0,
  headers: {},
  body: '',
  json() {
    throw new Error('the connection was closed without a response');
  },
};

/** An agent that keeps one connection to nginx open and reuses it for every request. */
export function keepAliveAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 1 });
}

function closedWithoutResponse(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.message === 'socket hang up';
}

export function request(port: number, options: RequestOptions): Promise<Response> {
  const { host, path = '/', method = 'GET', headers = {}, body, agent } = options;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        headers: { ...headers, Host: host },
        agent: agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            closed: false,
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            json: <T>() => JSON.parse(text) as T,
          });
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (closedWithoutResponse(err)) resolve(closedResponse);
      else reject(err);
    });
    req.end(body);
  });
}

export interface StreamStart {
  status: number;
  headers: IncomingHttpHeaders;
  /** The first chunk of the body, as soon as it arrived. */
  firstChunk: string;
  /** Everything after the first chunk, once the response has ended. */
  rest: Promise<string>;
}

/** Resolves as soon as the first chunk of the response body arrives, before the response ends. */
export function requestFirstChunk(port: number, options: RequestOptions): Promise<StreamStart> {
  const { host, path = '/', headers = {} } = options;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { ...headers, Host: host }, agent: false },
      (res) => {
        let first: string | undefined;
        const later: Buffer[] = [];
        const rest = new Promise<string>((resolveRest, rejectRest) => {
          res.on('end', () => resolveRest(Buffer.concat(later).toString('utf8')));
          res.on('error', rejectRest);
        });
        rest.catch(() => undefined);
        res.on('data', (chunk: Buffer) => {
          if (first !== undefined) {
            later.push(chunk);
            return;
          }
          first = chunk.toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, firstChunk: first, rest });
        });
        res.on('end', () => {
          if (first === undefined) reject(new Error('the response ended without a body'));
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Opens a WebSocket through nginx with the given Host, sends `message`, resolves with the echo. */
export function wsEcho(port: number, host: string, path: string, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { Host: host } });
    socket.once('open', () => socket.send(message));
    socket.once('message', (data) => {
      resolve(data.toString());
      socket.close();
    });
    socket.once('unexpected-response', (_req, res) => {
      reject(new Error(`WebSocket upgrade refused with HTTP ${res.statusCode}`));
      socket.terminate();
    });
    socket.once('error', reject);
  });
}
