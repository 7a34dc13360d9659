// The command as users run it: the compiled `dispatcher` (npm run build) in its own process, with
// real signals, real exit codes, stdout for configurations and stderr for JSON logs.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configVersion } from '../../src/render.js';
import { request } from '../support/http.js';
import { freePort, makePrefix, nginxBin, nginxProcessesUnder } from '../support/nginx.js';
import { waitFor } from '../support/wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli.js');
const sample = join(root, 'examples/cluster');

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function run(args: string[], env: Record<string, string> = {}): Promise<Finished> {
  return collect(spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }));
}

const logLines = (stderr: string): { level: number; msg: string; [k: string]: unknown }[] =>
  stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));

beforeAll(() => {
  // The test command builds first; build here too when a single file is run on its own.
  if (!existsSync(cli)) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' });
});

describe('dispatcher --manifests --mock --once', () => {
  it('prints the sample configuration on stdout and one JSON log line per left-out entry on stderr', async () => {
    const result = await run(['--manifests', sample, '--mock', '--once']);
    expect(result.code).toBe(0);
    expect(configVersion(result.stdout)).toMatch(/^[0-9a-f]{16}$/);
    expect(result.stdout).toContain('server_name "shop.example.com";');
    const warnings = logLines(result.stderr).filter((l) => l.level === 40);
    expect(warnings.map((w) => w.object)).toEqual(
      expect.arrayContaining(['Pod blog/blog-0', 'Pod legacy/legacy-app', 'Namespace blog']),
    );
    expect(result.stderr).not.toContain('server_name');
  });

  it('exits 1 with one line per invalid variable, naming it, its value and what is expected', async () => {
    const result = await run(['--manifests', sample, '--once'], { PORT: '80a', HOST_SHARING: 'maybe' });
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^dispatcher: invalid PORT="80a": expected an integer 1-65535/),
      expect.stringMatching(/^dispatcher: invalid HOST_SHARING="maybe": expected shared or exclusive/),
    ]);
    expect(result.stdout).toBe('');
  });

  it('exits 1 on an unknown flag and 0 with --help listing every flag', async () => {
    expect((await run(['--verbose'])).code).toBe(1);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--manifests', '--kubeconfig', '--mock', '--nginx', '--once'])
      expect(help.stdout).toContain(flag);
  });

  it('exits 2 when --once cannot reach the API server', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dispatcher-kubeconfig-'));
    const port = await freePort();
    const kubeconfig = join(dir, 'config');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "http://127.0.0.1:' +
          port +
          '", insecure-skip-tls-verify: true}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n'),
    );
    const result = await run(['--kubeconfig', kubeconfig, '--mock', '--once']);
    await rm(dir, { recursive: true, force: true });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('cannot start');
  });
});

describe('dispatcher --manifests --nginx', () => {
  let prefix = '';
  afterAll(async () => {
    if (prefix) await rm(prefix, { recursive: true, force: true });
  });

  it('serves the sample through nginx, and SIGTERM ends nginx and the process with exit code 0', async () => {
    prefix = await makePrefix();
    const [port, sslPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const child = spawn(process.execPath, [cli, '--manifests', sample, '--nginx'], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        SSL_PORT: String(sslPort),
        ADMIN_PORT: String(adminPort),
        ADMIN_BIND: '127.0.0.1',
        NGINX_PREFIX: prefix,
        NGINX_CONF: join(prefix, 'nginx.conf'),
        NGINX_BIN: nginxBin(),
        SSL_CERT_DIR: join(prefix, 'ssl'),
      },
    });
    const finished = collect(child);
    const deadline = Date.now() + 20_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = await request(port, { host: 'shop.example.com', path: '/' }).then(
        (answer) => answer.status,
        () => 0, // nginx not listening yet
      );
      if (status === 403) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // shop requires its API key: nginx answers from dispatcher's routes, not the empty configuration.
    expect(status).toBe(403);
    child.kill('SIGTERM');
    const result = await finished;
    expect(result.code).toBe(0);
    expect(logLines(result.stderr).map((l) => l.msg)).toContain('shutting down');
    expect(nginxProcessesUnder(prefix)).toEqual([]);
    await expect(request(port, { host: 'shop.example.com', path: '/' })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });

  it('exits 2 when nginx cannot start', async () => {
    const dir = await makePrefix();
    const result = await run(['--manifests', sample, '--nginx'], {
      PORT: String(await freePort()),
      ADMIN_PORT: String(await freePort()),
      NGINX_PREFIX: dir,
      NGINX_CONF: join(dir, 'nginx.conf'),
      NGINX_BIN: join(dir, 'no-such-nginx'),
    });
    await rm(dir, { recursive: true, force: true });
    expect(result.code).toBe(2);
    expect(logLines(result.stderr).find((l) => l.msg === 'cannot start')?.level).toBe(60);
  });

  it('ends on SIGTERM even while the first list is still pending (API unreachable)', async () => {
    const dir = await makePrefix();
    const apiPort = await freePort();
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${apiPort}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    const child = spawn(process.execPath, [cli, '--kubeconfig', kubeconfig, '--nginx'], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(await freePort()),
        ADMIN_PORT: String(await freePort()),
        ADMIN_BIND: '127.0.0.1',
        NGINX_PREFIX: dir,
        NGINX_CONF: join(dir, 'nginx.conf'),
        NGINX_BIN: nginxBin(),
      },
    });
    const finished = collect(child);
    const deadline = Date.now() + 20_000;
    while (!existsSync(join(dir, 'nginx.conf')) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    child.kill('SIGTERM');
    const result = await finished;
    await rm(dir, { recursive: true, force: true });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('watch failed; retrying');
  });

  it('in mock mode without --once, prints a new configuration when a manifest changes', async () => {
    const dir = await makePrefix();
    const manifest = (host: string) => `apiVersion: v1
kind: Namespace
metadata:
  name: watched
  labels: {github.com/30x.dispatcher.routable: "true"}
  annotations: {github.com/30x.dispatcher.hosts: '{"${host}": {}}'}
`;
    await writeFile(join(dir, 'ns.yaml'), manifest('first.example.com'));
    const child = spawn(process.execPath, [cli, '--manifests', dir, '--mock'], {
      env: {
        PATH: process.env.PATH ?? '',
        ADMIN_PORT: String(await freePort()),
        ADMIN_BIND: '127.0.0.1',
        BATCH_WINDOW_MS: '100',
      },
    });
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const finished = collect(child);
    const waitForOutput = async (text: string) => {
      const deadline = Date.now() + 20_000;
      while (!stdout.includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return stdout.includes(text);
    };
    expect(await waitForOutput('server_name "first.example.com";')).toBe(true);
    await writeFile(join(dir, 'ns.yaml'), manifest('second.example.com'));
    expect(await waitForOutput('server_name "second.example.com";')).toBe(true);
    child.kill('SIGTERM');
    const result = await finished;
    await rm(dir, { recursive: true, force: true });
    expect(result.code).toBe(0);
    expect(stdout.match(/^# dispatcher config-version:/gm)).toHaveLength(2);
  });
});

// The image's case without the pod sysctl: dispatcher runs unprivileged, may not bind a port below
// 1024, and nginx may (its binary carries cap_net_bind_service). Needs root to set that up.
describe.runIf(process.getuid?.() === 0)('dispatcher --nginx unprivileged on a low port', () => {
  it('says it cannot open the port, lets nginx open it and loads configurations by signal', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dispatcher-lowport-'));
    const nobody = 65534;
    try {
      const port = await freeLowPort();
      const prefix = join(dir, 'nginx');
      const manifests = join(dir, 'manifests');
      const bin = join(dir, 'nginx-bin');
      await mkdir(prefix);
      await cp(sample, manifests, { recursive: true });
      await copyFile(nginxBin(), bin);
      execFileSync('setcap', ['cap_net_bind_service=+ep', bin]);
      await chmod(dir, 0o755);
      execFileSync('chown', ['-R', `${nobody}:${nobody}`, prefix, manifests]);
      const child = spawn(
        'setpriv',
        [
          `--reuid=${nobody}`,
          `--regid=${nobody}`,
          '--clear-groups',
          process.execPath,
          cli,
          '--manifests',
          manifests,
          '--nginx',
        ],
        {
          env: {
            PATH: process.env.PATH ?? '',
            PORT: String(port),
            ADMIN_PORT: String(await freePort()),
            ADMIN_BIND: '127.0.0.1',
            BATCH_WINDOW_MS: '100',
            NGINX_PREFIX: prefix,
            NGINX_CONF: join(prefix, 'nginx.conf'),
            NGINX_BIN: bin,
            SSL_CERT_DIR: join(prefix, 'ssl'),
          },
        },
      );
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const finished = collect(child);
      const applied = () => logLines(stderr).filter((l) => l.msg === 'configuration applied');
      await waitFor('the first configuration', () => applied().length === 1);
      expect((await request(port, { host: 'shop.example.com', path: '/' })).status).toBe(403);
      const [warning] = logLines(stderr).filter((l) => l.level === 40 && l.port === port);
      expect(warning).toMatchObject({ reason: 'EACCES' });
      expect(warning?.msg).toMatch(
        /cannot open port \d+ itself.*by signal.*net\.ipv4\.ip_unprivileged_port_start/,
      );
      expect(logLines(stderr).find((l) => l.msg === 'nginx started')?.reload).toBe('signal');

      const shop = join(manifests, 'shop.yaml');
      await writeFile(shop, (await readFile(shop, 'utf8')).replace('"weight": 3', '"weight": 4'));
      await waitFor('the change', () => applied().length === 2);
      expect(applied().map((l) => l.handover)).toEqual([0, 0]);
      expect((await request(port, { host: 'shop.example.com', path: '/' })).status).toBe(403);

      child.kill('SIGTERM');
      expect((await finished).code).toBe(0);
      expect(nginxProcessesUnder(prefix)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A port below 1024 that nothing listens on (the test runs as root, so it may try). */
async function freeLowPort(): Promise<number> {
  for (let port = 1023; port > 900; port -= 1) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port between 901 and 1023');
}
