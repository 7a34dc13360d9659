// Limits that keep one tenant from slowing or breaking every render (64 KiB annotations, 100 paths
// per pod, 1000 hosts per namespace), secret values kept out of logs, diagnostics and the routes
// view at every log level (the real controller and logger, logs captured), and diagnostics that
// quote untrusted input only truncated and escaped.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { routesView } from '../../src/admin/routes-view.js';
import { createController } from '../../src/controller.js';
import { type Logger, logDiagnostics } from '../../src/log.js';
import { bundledTemplatesDir, loadTemplates } from '../../src/render/templates.js';
import { printingOutput } from '../../src/run.js';
import { createManifestSource } from '../../src/sources/manifests.js';
import type { Config, Diagnostic, KubeObject, RoutingTable } from '../../src/types.js';
import { namespace, pod, secret } from '../support/kube-objects.js';
import { checkConfig } from '../support/nginx.js';
import {
  assertNginxAccepts,
  configFor,
  fuzzSeed,
  HOSTS,
  HOSTS_FIELD,
  PATHS,
  PATHS_FIELD,
  ROUTABLE_LABEL,
  renderCluster,
  runsFor,
  tlsFixture,
  unprintableDiagnostic,
} from './harness.js';

const ROUTABLE = { [ROUTABLE_LABEL]: 'true' };
const plain = () => configFor({ sslEnabled: false, hostSharing: 'shared', healthChecks: false });
const b64 = (text: string) => Buffer.from(text).toString('base64');

function tenant(name: string, hosts: string, createdAt = '2024-01-01T00:00:00Z'): KubeObject {
  return namespace(name, { labels: ROUTABLE, annotations: { [HOSTS]: hosts }, creationTimestamp: createdAt });
}

function podWith(ns: string, paths: string, name = 'web'): KubeObject {
  return pod(ns, name, { ip: '10.0.0.5', ports: [3000], labels: ROUTABLE, annotations: { [PATHS]: paths } });
}

/** A bystander that must keep routing whatever its neighbours do. */
const bystander = [
  tenant('bystander', JSON.stringify({ 'bystander.test': {} }), '2020-01-01T00:00:00Z'),
  podWith('bystander', JSON.stringify([{ basePath: '/', containerPort: 3000 }])),
];

function hasDiagnostic(table: RoutingTable, object: string, field: string, reason: RegExp): boolean {
  return table.diagnostics.some((d) => d.object === object && d.field === field && reason.test(d.reason));
}

function bystanderRoutes(table: RoutingTable): boolean {
  const server = table.servers.find((s) => s.host === 'bystander.test');
  return server?.locations.some((l) => l.path === '/' && l.namespace === 'bystander') ?? false;
}

describe('limits: one tenant cannot make every render slow or fail', () => {
  const hostList = (n: number) => Array.from({ length: n }, (_, i) => `h${i}.big.test`);
  const entries = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ basePath: `/p${i}`, containerPort: 3000 }));

  it.each([
    ['JSON', (n: number) => JSON.stringify(Object.fromEntries(hostList(n).map((h) => [h, {}])))],
    ['legacy list', (n: number) => hostList(n).join(' ')],
  ])(
    'a namespace listing more than 1000 hosts (%s) gets none, with a diagnostic; 1000 are served',
    async (_form, hosts) => {
      const over = renderCluster(
        [...bystander, tenant('big', hosts(1001)), podWith('big', '[{"basePath":"/","containerPort":3000}]')],
        plain(),
      );
      expect(hasDiagnostic(over.table, 'Namespace big', HOSTS_FIELD, /1001 hosts.*1000/)).toBe(true);
      expect(over.table.servers.filter((s) => s.host.endsWith('.big.test'))).toEqual([]);
      expect(bystanderRoutes(over.table)).toBe(true);
      await assertNginxAccepts(over);

      const at = renderCluster(
        [...bystander, tenant('big', hosts(1000)), podWith('big', '[{"basePath":"/","containerPort":3000}]')],
        plain(),
      );
      expect(at.table.servers.filter((s) => s.host.endsWith('.big.test'))).toHaveLength(1000);
      await assertNginxAccepts(at);
    },
  );

  it('a pod with more than 100 paths gets none, with a diagnostic; 100 are routed', async () => {
    const over = renderCluster(
      [...bystander, tenant('many', '{"many.test":{}}'), podWith('many', JSON.stringify(entries(101)))],
      plain(),
    );
    expect(hasDiagnostic(over.table, 'Pod many/web', PATHS_FIELD, /101 entries.*100/)).toBe(true);
    expect(over.table.servers.find((s) => s.host === 'many.test')?.locations).toEqual([]);
    expect(bystanderRoutes(over.table)).toBe(true);
    await assertNginxAccepts(over);

    const at = renderCluster(
      [...bystander, tenant('many', '{"many.test":{}}'), podWith('many', JSON.stringify(entries(100)))],
      plain(),
    );
    expect(at.table.servers.find((s) => s.host === 'many.test')?.locations).toHaveLength(100);
    await assertNginxAccepts(at);
  });

  const LIMIT = 64 * 1024;
  /** Valid JSON of exactly `bytes` UTF-8 bytes: the content padded with spaces. */
  const padded = (json: string, bytes: number) => `${json}${' '.repeat(bytes - Buffer.byteLength(json))}`;

  it.each([
    ['hosts', HOSTS_FIELD],
    ['paths', PATHS_FIELD],
  ])(
    'a %s annotation larger than 64 KiB is ignored whole, with a diagnostic; 64 KiB is read',
    async (which, field) => {
      const hosts = JSON.stringify({ 'large.test': {} });
      const paths = JSON.stringify([{ basePath: '/', containerPort: 3000 }]);
      const build = (bytes: number) =>
        which === 'hosts'
          ? [tenant('large', padded(hosts, bytes)), podWith('large', paths)]
          : [tenant('large', hosts), podWith('large', padded(paths, bytes))];
      const object = which === 'hosts' ? 'Namespace large' : 'Pod large/web';

      const over = renderCluster([...bystander, ...build(LIMIT + 1)], plain());
      expect(hasDiagnostic(over.table, object, field, /65537 bytes.*65536/)).toBe(true);
      const large = over.table.servers.find((s) => s.host === 'large.test');
      expect(large === undefined || large.locations.length === 0).toBe(true);
      expect(bystanderRoutes(over.table)).toBe(true);
      await assertNginxAccepts(over);

      const at = renderCluster([...bystander, ...build(LIMIT)], plain());
      expect(at.table.servers.find((s) => s.host === 'large.test')?.locations.map((l) => l.path)).toEqual([
        '/',
      ]);
    },
  );

  it('the 64 KiB limit counts UTF-8 bytes, not characters', () => {
    // 40,000 two-byte characters: 80,000 bytes in fewer than 65,536 characters.
    const text = JSON.stringify({ 'wide.test': {}, ['\u00e9'.repeat(40_000)]: {} });
    expect(text.length).toBeLessThan(LIMIT);
    const { table } = renderCluster([...bystander, tenant('wide', text)], plain());
    expect(hasDiagnostic(table, 'Namespace wide', HOSTS_FIELD, /800\d\d bytes/)).toBe(true);
    expect(table.servers.find((s) => s.host === 'wide.test')).toBeUndefined();
  });

  // An API key's base64 goes into one quoted `if` argument and nginx refuses any word over 4096
  // bytes: keys are bounded (1 KiB), and a namespace whose key is refused denies every request.
  it('an API key longer than 3 KiB does not make nginx -t refuse everyone’s configuration', async () => {
    const rendered = renderCluster(
      [
        ...bystander,
        tenant('keyed', '{"keyed.test":{}}'),
        podWith('keyed', '[{"basePath":"/","containerPort":3000}]'),
        secret('keyed', 'routing', { 'api-key': 'k'.repeat(3100) }),
      ],
      plain(),
    );
    const result = await checkConfig(rendered.text);
    expect(result.output).toMatch(/test is successful/);
    const keyed = rendered.table.servers.find((s) => s.host === 'keyed.test');
    expect(keyed?.locations.map((l) => [l.path, l.deny, l.apiKey])).toEqual([['/', true, undefined]]);
    expect(
      hasDiagnostic(rendered.table, 'Secret keyed/routing', 'data["api-key"]', /longer than 1024 bytes/),
    ).toBe(true);
  });
});

// ------------------------------------------------------------------ secrets never logged

/** A pino logger like createLogger's (level, base), writing into `lines` instead of stderr. */
function capturingLogger(lines: string[]): Logger {
  return pino(
    { level: 'trace', base: { name: 'dispatcher' } },
    { write: (line: string) => lines.push(line) },
  );
}

/** Characters a log line or diagnostic must never carry raw: controls, line/paragraph separators, bidi controls. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('secret values never reach logs, diagnostics or the routes view', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const API_KEY = 'api-key-S3cr3t-7f1c2d';
  const STRING_DATA = 'stringData-S3cr3t-9a8b';
  const NOT_BASE64 = 'not-base64 S3cr3t-4e5f!';
  const BAD_NAME_VALUE = 'badname-S3cr3t-0c0d';

  /** The real controller over a manifest directory, logging at trace into `lines`. */
  async function runController(files: Record<string, string>, config: Config, lines: string[]) {
    const dir = mkdtempSync(join(tmpdir(), 'dispatcher-secrets-'));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const printed: string[] = [];
    const templates = loadTemplates(bundledTemplatesDir);
    const controller = createController({
      config,
      logger: capturingLogger(lines),
      source: createManifestSource({ dir, watch: false }),
      output: printingOutput((text) => printed.push(text)),
      nginx: { healthChecks: 'passive', prefixRelativePaths: true },
      templates: () => templates,
    });
    await controller.start();
    await controller.idle();
    await controller.stop();
    return { table: controller.state.table as RoutingTable, printed };
  }

  function cluster(): KubeObject[] {
    const { pair } = tlsFixture();
    const ssl = (certificate: string, certificateKey: string) => ({
      ssl: {
        certificate: { valueFrom: { secretKeyRef: { key: certificate } } },
        certificateKey: { valueFrom: { secretKeyRef: { key: certificateKey } } },
      },
    });
    return [
      tenant(
        'vault',
        JSON.stringify({
          'vault.test': {},
          'secure.vault.test': ssl('tls-crt', 'tls-key'),
          // The private key used as the certificate: fails validation.
          'swapped.vault.test': ssl('tls-key', 'tls-crt'),
          'missing.vault.test': ssl('tls-crt', 'no-such-field'),
        }),
      ),
      podWith('vault', JSON.stringify([{ basePath: '/', containerPort: 3000 }])),
      {
        ...secret('vault', 'routing'),
        data: {
          'api-key': b64(API_KEY),
          'tls-crt': b64(pair.cert),
          'tls-key': b64(pair.key),
          'bad-b64': NOT_BASE64,
          'bad name!': b64(BAD_NAME_VALUE),
          'not-a-string': 12345 as unknown as string,
        },
        stringData: { other: STRING_DATA },
      },
      {
        // The same private key where a certificate belongs in another namespace's secret.
        ...tenant('other', JSON.stringify({ 'other.test': ssl('tls-crt', 'tls-key') })),
      },
      { ...secret('other', 'routing'), data: { 'tls-crt': b64(pair.key), 'tls-key': b64(pair.key) } },
      // Without a hosts annotation: an info diagnostic, logged at debug level.
      namespace('quiet', { labels: ROUTABLE }),
    ];
  }

  /** Every form in which a secret value could leak. */
  function secretForms(): string[] {
    const { pair } = tlsFixture();
    const keyBody = pair.key.split('\n').filter((line) => line.length > 0 && !line.startsWith('-----'));
    return [
      API_KEY,
      b64(API_KEY),
      STRING_DATA,
      b64(STRING_DATA),
      NOT_BASE64,
      'S3cr3t-4e5f',
      BAD_NAME_VALUE,
      b64(BAD_NAME_VALUE),
      pair.key,
      b64(pair.key),
      b64(pair.key).slice(0, 40),
      ...keyBody,
    ];
  }

  it('the controller logs every skipped entry at trace level, and no secret value in any form', async () => {
    const lines: string[] = [];
    const fixture = tlsFixture();
    const config = configFor({ sslEnabled: true, hostSharing: 'shared', healthChecks: false });
    const manifests = {
      'cluster.yaml': cluster()
        .map((object) => stringify(object))
        .join('---\n'),
      // A broken document holding a secret: reported, never quoted.
      'broken.yaml': `apiVersion: v1\nkind: Secret\nmetadata: {name: routing, namespace: vault}\ndata:\n  api-key: ${b64(API_KEY)}: x\n`,
    };
    const { table, printed } = await runController(manifests, config, lines);

    // The run did what a leak would hide in: the bad entries are logged, the key routes.
    const logged = lines.join('');
    expect(logged).toContain('Secret vault/routing');
    expect(logged).toContain('swapped.vault.test');
    expect(logged).toContain('missing.vault.test');
    expect(logged).toContain('other.test');
    expect(logged).toContain('broken.yaml');
    expect(lines.some((line) => JSON.parse(line).level === 20)).toBe(true); // debug lines too
    expect(printed.at(-1)).toContain(`"${b64(API_KEY)}"`); // in nginx.conf, where it belongs
    expect(table.servers.find((s) => s.host === 'secure.vault.test')?.tls).toBeDefined();
    expect(fixture.pair.key.length).toBeGreaterThan(100);

    const views = [logged, JSON.stringify(table.diagnostics), JSON.stringify(routesView(table, true))];
    for (const form of secretForms()) {
      for (const view of views)
        expect(view.includes(form), `${JSON.stringify(form.slice(0, 20))} leaked`).toBe(false);
    }
    for (const line of lines) expect(RAW_CONTROL.test(line), line).toBe(false);
  });

  // An unquoted YAML value that starts with `*` is an alias; yaml's error for a missing anchor names
  // it, i.e. the would-be secret value: the manifest reader reports the document without the message.
  it('a manifest secret value read as a YAML alias is not logged', async () => {
    const lines: string[] = [];
    const config = configFor({ sslEnabled: false, hostSharing: 'shared', healthChecks: false });
    await runController(
      {
        'alias.yaml':
          'apiVersion: v1\nkind: Secret\nmetadata: {name: routing, namespace: vault}\nstringData:\n  api-key: *Alias-S3cr3t-77\n',
      },
      config,
      lines,
    );
    expect(lines.join('')).toContain('alias.yaml');
    expect(lines.join('')).not.toContain('Alias-S3cr3t-77');
  });

  it('random secret values, referenced as TLS fields or not, never reach a diagnostic or a log line', () => {
    const value = fc.stringMatching(/^[A-Za-z0-9]{12,24}$/).map((s) => `S3cr3t${s}`);
    const field = fc.constantFrom('api-key', 'tls-crt', 'tls-key', 'ca-crt', 'x', 'bad field', '../up');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(field, value, fc.constantFrom('base64', 'raw', 'number')), { maxLength: 6 }),
        fc.boolean(),
        (fields, ssl) => {
          const data: Record<string, unknown> = {};
          for (const [name, secretValue, form] of fields) {
            data[name] =
              form === 'base64' ? b64(secretValue) : form === 'raw' ? secretValue : secretValue.length;
          }
          const refs = {
            certificate: { valueFrom: { secretKeyRef: { key: 'tls-crt' } } },
            certificateKey: { valueFrom: { secretKeyRef: { key: 'tls-key' } } },
          };
          const objects = [
            tenant('t', JSON.stringify({ 't.test': ssl ? { ssl: refs } : {} })),
            podWith('t', '[{"basePath":"/","containerPort":3000}]'),
            { ...secret('t', 'routing'), data: data as Record<string, string> },
          ];
          const config = configFor({ sslEnabled: true, hostSharing: 'shared', healthChecks: false });
          const { table } = renderCluster(objects, config);
          const lines: string[] = [];
          logDiagnostics(capturingLogger(lines), table.diagnostics);
          const views = [
            lines.join(''),
            JSON.stringify(table.diagnostics),
            JSON.stringify(routesView(table, true)),
          ];
          for (const [, secretValue] of fields) {
            for (const view of views) {
              expect(view).not.toContain(secretValue);
              expect(view).not.toContain(b64(secretValue));
            }
          }
        },
      ),
      { seed: fuzzSeed(), numRuns: runsFor(0.02, 150) },
    );
  });
});

// ------------------------------------------------------------------ how diagnostics quote untrusted text

describe('diagnostics name the object and the reason, quoting untrusted input truncated and escaped', () => {
  /** 10,000 characters of deterministic noise: any run of 81 of them is unique to this input. */
  const noise = (() => {
    let state = 0x2545f491;
    let out = '';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    while (out.length < 10_000) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      out += alphabet[(state >>> 0) % alphabet.length];
    }
    return out;
  })();
  const nasty = `\r\n\u001b[2J\u202e\u2028\u0000"'\\${noise}`;

  function diagnosticsFor(value: string): Diagnostic[] {
    const objects: KubeObject[] = [
      tenant('quoting', JSON.stringify({ [value]: {}, 'ok.test': { ssl: { certificate: value } } })),
      tenant('legacy', `ok.test ${value}`),
      podWith(
        'quoting',
        JSON.stringify([
          { basePath: value, containerPort: 3000 },
          { basePath: '/t', containerPort: 3000, targetPath: value },
          { basePath: '/c', containerPort: value },
          { basePath: '/w', containerPort: 3000, weight: value },
          { basePath: '/k', containerPort: 3000, [value]: 1 },
        ]),
      ),
      podWith('quoting', '[]', value),
      pod('quoting', 'bad-ip', { ip: value, labels: ROUTABLE }),
      namespace(value, { labels: ROUTABLE }),
      { ...secret('quoting', 'routing'), data: { [value]: b64('x') } },
      {
        ...tenant('stamped', '{}'),
        metadata: { ...tenant('stamped', '{}').metadata, creationTimestamp: value } as never,
      },
    ];
    return renderCluster(objects, plain()).table.diagnostics;
  }

  it.each([
    ['noise', noise],
    ['noise after control and bidi characters', nasty],
  ])('%s: at most 80 characters of it in any diagnostic, nothing raw', (_name, value) => {
    const diagnostics = diagnosticsFor(value);
    // Every way in was reported, naming its object.
    const objects = new Set(diagnostics.map((d) => d.object.split(' ')[0]));
    expect([...objects]).toEqual(expect.arrayContaining(['Namespace', 'Pod', 'Secret']));
    expect(diagnostics.length).toBeGreaterThanOrEqual(10);
    expect(unprintableDiagnostic(diagnostics)).toBeUndefined();
    const text = diagnostics.map((d) => `${d.object}\n${d.field}\n${d.reason}`).join('\n');
    expect(RAW_CONTROL.test(text)).toBe(false);
    expect(text).toContain(noise.slice(0, 20)); // quoted, so a reader can tell which value
    for (let i = 0; i + 81 <= noise.length; i++) {
      if (text.includes(noise.slice(i, i + 81)))
        throw new Error(`81 characters of the input at ${i} are quoted`);
    }
  });
});
