// SSL hosts through the live controller (SPEC section 3 "SSL"): certificates written from the
// routing secret and chosen by SNI, the default pair for unknown names, client certificates,
// file modes, removal of files of hosts that are gone, and modern protocols only.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { type ConnectionOptions, connect, createServer, type SecureVersion } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, startBackend } from '../support/backends.js';
import { request } from '../support/http.js';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.js';
import { namespace, pod, secret } from '../support/kube-objects.js';
import { type LiveRun, startLiveRun } from '../support/live-run.js';
import { type Pem, selfSigned, signedBy } from '../support/tls.js';
import { waitFor } from '../support/wait.js';

const ROUTABLE = { 'github.com/30x.dispatcher.routable': 'true' };
const SECURE = 'secure.example.com';
const MTLS = 'mtls.example.com';

const ref = (key: string) => ({ valueFrom: { secretKeyRef: { key } } });
const hostsAnnotation = (hosts: Record<string, unknown>) => ({
  'github.com/30x.dispatcher.hosts': JSON.stringify(hosts),
});

const defaultPair = selfSigned('dispatcher-default.invalid');
const secureCert = selfSigned(SECURE);
const mtlsCert = selfSigned(MTLS);
const clientCa = selfSigned('clients.example.com');
const client = signedBy(clientCa, 'client-1');
const stranger = signedBy(selfSigned('strangers.example.com'), 'stranger');

const secureHost = {
  ssl: { certificate: ref('secure.crt'), certificateKey: ref('secure.key') },
};
const mtlsHost = {
  ssl: {
    certificate: ref('mtls.crt'),
    certificateKey: ref('mtls.key'),
    clientCertificate: ref('clients.crt'),
  },
};

let app: Backend;
let api: KubeApiServer;
let live: LiveRun;

beforeAll(async () => {
  app = await startBackend({ host: '127.0.0.2', name: 'app' });
  api = await startKubeApiServer();
  api.create(
    namespace('secure', {
      labels: ROUTABLE,
      annotations: hostsAnnotation({ [SECURE]: secureHost, [MTLS]: mtlsHost }),
    }),
  );
  api.create(
    secret('secure', 'routing', {
      'secure.crt': secureCert.cert,
      'secure.key': secureCert.key,
      'mtls.crt': mtlsCert.cert,
      'mtls.key': mtlsCert.key,
      'clients.crt': clientCa.cert,
    }),
  );
  api.create(
    pod('secure', 'app', {
      ip: app.host,
      ports: [app.port],
      labels: ROUTABLE,
      annotations: {
        'github.com/30x.dispatcher.paths': JSON.stringify([{ basePath: '/', containerPort: app.port }]),
      },
    }),
  );
  live = await startLiveRun({
    kubeconfig: api.kubeconfigPath,
    env: { SSL_CERT: defaultPair.certPath, SSL_KEY: defaultPair.keyPath },
  });
  await live.settled();
});

afterAll(async () => {
  try {
    if (live) expect((await live.stop()).survivors).toEqual([]);
  } finally {
    await api?.close();
    await app?.close();
  }
});

interface Handshake {
  subjectCn: string;
  protocol: string | null;
}

/** A TLS handshake with SNI `servername`: which certificate nginx presented, over which protocol. */
function handshake(port: number, servername: string, options: ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, servername, rejectUnauthorized: false, ...options },
      () => {
        const subject = socket.getPeerCertificate().subject;
        resolve({ subjectCn: String(subject?.CN ?? ''), protocol: socket.getProtocol() });
        socket.destroy();
      },
    );
    socket.once('error', reject);
  });
}

interface HttpsAnswer {
  closed: boolean;
  status: number;
  body: string;
}

/**
 * GET / over TLS with SNI and Host `host`. nginx's certificate is verified against `ca`, and its
 * name against `host` unless `anyName`; `client` is the client certificate to present.
 */
function httpsGet(
  port: number,
  host: string,
  {
    ca,
    client: clientPair,
    anyName = false,
    path = '/',
  }: { ca: Pem; client?: Pem; anyName?: boolean; path?: string },
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: host,
        headers: { Host: host },
        ca: ca.cert,
        ...(clientPair && { cert: clientPair.cert, key: clientPair.key }),
        ...(anyName && { checkServerIdentity: () => undefined }),
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ closed: false, status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.message === 'socket hang up') {
        resolve({ closed: true, status: 0, body: '' });
      } else reject(error);
    });
    req.end();
  });
}

/** Whether this node/openssl can speak TLSv1.1 at all (to a local server that allows it). */
async function clientSpeaksTls11(): Promise<boolean> {
  const legacy = { minVersion: 'TLSv1' as SecureVersion, ciphers: 'DEFAULT@SECLEVEL=0' };
  const server = createServer({ cert: defaultPair.cert, key: defaultPair.key, ...legacy }, (s) => s.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    const made = await handshake(port, 'probe.invalid', { ...legacy, maxVersion: 'TLSv1.1' });
    return made.protocol === 'TLSv1.1';
  } catch {
    return false;
  } finally {
    server.close();
  }
}

const tls11Options: ConnectionOptions = {
  minVersion: 'TLSv1.1',
  maxVersion: 'TLSv1.1',
  ciphers: 'DEFAULT@SECLEVEL=0',
};

describe('SSL hosts through the live controller', () => {
  it("presents each host's own certificate by SNI and the default one, closing the connection, to unknown names", async () => {
    await waitFor(
      'the SSL host to answer',
      async () => (await httpsGet(live.sslPort, SECURE, { ca: secureCert })).status === 200,
    );
    expect(await handshake(live.sslPort, SECURE)).toMatchObject({ subjectCn: SECURE });
    expect(await handshake(live.sslPort, MTLS)).toMatchObject({ subjectCn: MTLS });

    const answer = await httpsGet(live.sslPort, SECURE, { ca: secureCert });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ pod: 'app', headers: { 'x-forwarded-proto': 'https' } });

    expect(await handshake(live.sslPort, 'unknown.example.com')).toMatchObject({
      subjectCn: 'dispatcher-default.invalid',
    });
    expect(
      await httpsGet(live.sslPort, 'unknown.example.com', { ca: defaultPair, anyName: true }),
    ).toMatchObject({ closed: true });
    // The default SSL server answers the status path, like the plain one.
    expect(
      await httpsGet(live.sslPort, 'unknown.example.com', {
        ca: defaultPair,
        anyName: true,
        path: '/dispatcher/status',
      }),
    ).toMatchObject({ closed: false, status: 200 });
    // An SSL host is served on SSL_PORT only.
    expect(await request(live.port, { host: SECURE })).toMatchObject({ closed: true });
  });

  it('requires a client certificate signed by the configured CA', async () => {
    const without = await httpsGet(live.sslPort, MTLS, { ca: mtlsCert });
    expect(without.status).toBe(400);
    expect(without.body).toContain('No required SSL certificate was sent');

    const untrusted = await httpsGet(live.sslPort, MTLS, { ca: mtlsCert, client: stranger });
    expect(untrusted.status).toBe(400);

    const trusted = await httpsGet(live.sslPort, MTLS, { ca: mtlsCert, client: client });
    expect(trusted.status).toBe(200);
    expect(JSON.parse(trusted.body)).toMatchObject({ pod: 'app' });

    // The host without client verification does not ask for one.
    expect((await httpsGet(live.sslPort, SECURE, { ca: secureCert })).status).toBe(200);
  });

  it('writes certificates 0644 and keys 0600 with the secret content under SSL_CERT_DIR/<host>/', () => {
    const files = [
      [SECURE, 'certificate.crt', 0o644, secureCert.cert],
      [SECURE, 'certificate.key', 0o600, secureCert.key],
      [MTLS, 'certificate.crt', 0o644, mtlsCert.cert],
      [MTLS, 'certificate.key', 0o600, mtlsCert.key],
      [MTLS, 'clientCertificate.crt', 0o644, clientCa.cert],
    ] as const;
    for (const [host, name, mode, content] of files) {
      const path = join(live.certDir, host, name);
      expect({ path, mode: statSync(path).mode & 0o777 }).toEqual({ path, mode });
      expect(readFileSync(path, 'utf8')).toBe(content);
    }
    const logText = JSON.stringify(live.logs);
    expect(logText).not.toContain(secureCert.key.split('\n')[1]);
    expect(logText).not.toContain(Buffer.from(secureCert.key).toString('base64').slice(0, 40));
  });

  it('accepts TLSv1.2 and TLSv1.3 only', async () => {
    expect(
      await handshake(live.sslPort, SECURE, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }),
    ).toMatchObject({
      protocol: 'TLSv1.2',
    });
    expect(
      await handshake(live.sslPort, SECURE, { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }),
    ).toMatchObject({
      protocol: 'TLSv1.3',
    });
    // The refusal below only means something if this client can speak TLSv1.1 at all; where the
    // local openssl cannot, only the configuration is checked.
    if (await clientSpeaksTls11()) {
      await expect(handshake(live.sslPort, SECURE, tls11Options)).rejects.toThrow();
    }
    expect(live.liveConfig()).toMatch(/ssl_protocols TLSv1\.2 TLSv1\.3;/);
    expect(live.liveConfig()).not.toMatch(/TLSv1(\.1)?[ ;]/);
  });

  it('removes the files of a host that is gone', async () => {
    expect(existsSync(join(live.certDir, MTLS))).toBe(true);
    api.patch('Namespace', undefined, 'secure', (ns) => {
      ns.metadata.annotations = hostsAnnotation({ [SECURE]: secureHost });
    });
    await waitFor('the removed host to lose its directory', () => !existsSync(join(live.certDir, MTLS)));
    await live.settled();
    expect(await handshake(live.sslPort, MTLS)).toMatchObject({ subjectCn: 'dispatcher-default.invalid' });
    expect(existsSync(join(live.certDir, SECURE, 'certificate.key'))).toBe(true);
    expect((await httpsGet(live.sslPort, SECURE, { ca: secureCert })).status).toBe(200);
    expect(live.running.controller.state.rejected).toBe(0);
  });

  it('hands every configuration to a new master on the PORT and SSL_PORT sockets dispatcher holds', () => {
    const applied = live.logged('configuration applied');
    expect(applied.length).toBeGreaterThan(1);
    expect(applied.map((r) => r.handover)).toEqual(applied.map(() => 1));
    const inherited = live.logs
      .map((r) => String(r.nginx ?? ''))
      .filter((line) => line.includes('using inherited sockets'));
    // Two sockets each time: fds 3 and 4.
    expect(inherited.length).toBe(applied.length + 1);
    expect(inherited.every((line) => line.includes('"3;4;"'))).toBe(true);
  });
});
