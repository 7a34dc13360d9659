// Known attack payloads as fixed regression cases: the injections of ingress-nginx CVE-2021-25742
// (snippets closing a block), CVE-2023-5043/5044 (`;` then log_by_lua / permanent_redirect),
// CVE-2025-1974 (ssl_engine / load_module reaching `nginx -t`), CVE-2021-25748 (a newline in a
// path), plus CRLF, `$` expansion, `#` truncation, NUL, look-alike unicode, traversal and very long
// values. Each payload goes into every field a tenant writes, one attacking tenant per field, next
// to a victim and a neighbour, all in one configuration: it must pass the real `nginx -t`, hold
// none of the injected directives, keep every valid route, and report each bad entry naming the
// object and field.
import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../src/types.js';
import { checkConfig } from '../support/nginx.js';
import { flatten, parseNginxConf } from '../support/nginx-conf.js';
import { plainCluster, toObjects } from './arbitraries.js';
import { assertShape, assertTemplateStructure } from './conformance.js';
import {
  APP_NAME_LABEL,
  APP_REV_LABEL,
  configFor,
  ENV_LABEL,
  HOSTS_FIELD,
  ORG_LABEL,
  PATHS_FIELD,
  ROUTABLE_LABEL,
  renderCluster,
  tlsFixture,
  unprintableDiagnostic,
  writeTlsFiles,
} from './harness.js';
import { assertDiagnostics } from './hostile-properties.js';
import {
  expectRouting,
  type GenCluster,
  type GenNamespace,
  type GenPod,
  type GenSecret,
  specSecretFieldName,
} from './spec-oracle.js';

/** Every payload carries "pwned" so that a leak is easy to spot. */
const PAYLOADS: Record<string, string> = {
  // CVE-2021-25742: a snippet closes the block it sits in and opens its own.
  'close block, new server': 'a.test; } server { listen 80; server_name pwned.test; return 200 "pwned"; } #',
  'close quoted string and block': '/x"; } location /pwned { return 200 "pwned"; } location /y { #',
  'close single-quoted string': "/x'; } location /pwned { return 200 pwned; } #",
  // CVE-2023-5043: ";" then a directive that runs code.
  'log_by_lua after ;': '/api;\nlog_by_lua_block { os.execute("touch /tmp/pwned") }',
  // CVE-2023-5044: permanent-redirect smuggling a directive.
  'permanent_redirect after ;': 'https://pwned.test; permanent_redirect https://pwned.test;',
  'redirect with new location': '/api;\n}\nlocation /pwned {\nreturn 301 https://pwned.test;',
  // CVE-2025-1974: ssl_engine / load_module make `nginx -t` load a shared object.
  'ssl_engine in a quoted value': 'CN=a" ssl_engine /tmp/pwned.so; #',
  load_module: 'load_module /tmp/pwned.so;',
  // CVE-2021-25748: a newline in a path.
  'newline then proxy_pass': '/api\nproxy_pass http://pwned.test;',
  'CRLF header injection': '/api\r\nX-Pwned: 1\r\n',
  'CRLF in a host name': 'a.test\r\nHost: pwned.test',
  'variable expansion': '/$http_pwned$request_uri',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's variable syntax, on purpose
  'braced variable': '/${pwned}',
  'comment truncation': '/api#pwned',
  'spaced comment': '/api # pwned',
  'NUL byte': '/api\u0000pwned',
  'escaped quote': '/api\\"; return 200 pwned; #',
  braces: '/api { return 200 pwned; }',
  'fullwidth semicolon': '/api\uff1b return 200 pwned',
  'fullwidth host': 'ｐｗｎｅｄ.test',
  'Kelvin sign host': '\u212Apwned.test',
  'RTL override': '/\u202edenwp',
  'line separator': '/api\u2028pwned',
  traversal: '/../pwned',
  'encoded traversal': '/%2e%2e/pwned',
  'mixed-case encoded traversal': '/%2E%2e/pwned',
  'dot segment': '/a/./pwned',
  'double slash': '//pwned',
  'regex location': '~* ^/pwned',
  'exact location': '= /pwned',
  'named location': '@pwned',
  'wildcard host': '*.pwned.test',
  'trailing-dot host': 'pwned.test.',
  'host with port': 'pwned.test:443',
  'ESC sequence': '/api\u001b[31mpwned',
  'very long path': `/${'a'.repeat(5000)}pwned`,
  'very long host': `${'a'.repeat(300)}.pwned.test`,
};

/** Directives no template writes: if one appears, it was injected. */
const FOREIGN = [
  'load_module',
  'ssl_engine',
  'log_by_lua_block',
  'permanent_redirect',
  'include',
  'rewrite',
  'add_header',
  'set',
  'root',
  'alias',
  'X-Pwned:',
];

const NOW = '2024-06-01T00:00:00Z';
const LATER = '2025-01-01T00:00:00Z';
const CONTAINERS = [{ name: 'app', ports: [{ containerPort: 3000, name: 'http' }] }];
const b64 = (text: string) => Buffer.from(text).toString('base64');

const hostsText = (hosts: Record<string, unknown>): GenNamespace['hosts'] => ({
  kind: 'text',
  text: JSON.stringify(hosts),
});
const pathsText = (entries: unknown): GenPod['paths'] => ({ kind: 'text', text: JSON.stringify(entries) });
const ref = (key: string) => ({ valueFrom: { secretKeyRef: { key } } });

function tenant(
  name: unknown,
  hosts: GenNamespace['hosts'],
  extra: Partial<GenNamespace> = {},
): GenNamespace {
  return { name, creationTimestamp: LATER, labels: { [ROUTABLE_LABEL]: 'true' }, hosts, ...extra };
}

function pod(namespace: unknown, paths: GenPod['paths'], extra: Partial<GenPod> = {}): GenPod {
  return {
    namespace,
    name: 'web',
    ip: '10.0.0.9',
    labels: { [ROUTABLE_LABEL]: 'true' },
    containers: CONTAINERS,
    paths,
    ...extra,
  };
}

interface Attack {
  /** The field the payload goes into. */
  field: string;
  namespaces: GenNamespace[];
  pods: GenPod[];
  secrets: GenSecret[];
  /** The diagnostic the bad entry must give; none for fields that never reach nginx.conf. */
  diagnostic?: { object: (o: string) => boolean; field: (f: string) => boolean };
}

const is = (text: string) => (value: string) => value === text;
const startsWith = (text: string) => (value: string) => value.startsWith(text);

/** One attacking tenant per field, each with a valid host and path of its own beside the payload. */
function attacks(payload: string): Attack[] {
  const own = (n: number) => ({ [`attacker-${n}.test`]: {} });
  const ownPath = { basePath: '/own', containerPort: 3000 };
  const ns = (n: number) => `attacker-${n}`;
  const simplePod = (n: number, paths: unknown[]) => pod(ns(n), pathsText([ownPath, ...paths]));
  const entryField = (n: number, index: number, key: string) => ({
    object: is(`Pod ${ns(n)}/web`),
    field: is(`${PATHS_FIELD}[${index}].${key}`),
  });
  const list: Omit<Attack, 'secrets'>[] = [
    {
      field: 'hosts key',
      namespaces: [tenant(ns(1), hostsText({ ...own(1), [payload]: {} }))],
      pods: [simplePod(1, [])],
      diagnostic: { object: is(`Namespace ${ns(1)}`), field: startsWith(`${HOSTS_FIELD}[`) },
    },
    {
      field: 'hosts ssl secretKeyRef key',
      namespaces: [
        tenant(
          ns(2),
          hostsText({
            ...own(2),
            'ssl.attacker-2.test': { ssl: { certificate: ref(payload), certificateKey: ref('tls-key') } },
          }),
        ),
      ],
      pods: [simplePod(2, [])],
      // A payload that is a valid field name passes the model, and the plan then finds no such field.
      diagnostic: {
        object: is(`Namespace ${ns(2)}`),
        field: (f) =>
          (f.startsWith(`${HOSTS_FIELD}[`) && f.includes('certificate')) || f.includes('ssl.attacker-2.test'),
      },
    },
    {
      field: 'hosts annotation as a whole',
      namespaces: [tenant(ns(3), { kind: 'text', text: payload })],
      pods: [simplePod(3, [])],
      diagnostic: { object: is(`Namespace ${ns(3)}`), field: is(HOSTS_FIELD) },
    },
    {
      field: 'legacy hosts list',
      namespaces: [tenant(ns(4), { kind: 'text', text: `attacker-4.test ${payload}` })],
      pods: [simplePod(4, [])],
      diagnostic: { object: is(`Namespace ${ns(4)}`), field: is(HOSTS_FIELD) },
    },
    {
      field: 'basePath',
      namespaces: [tenant(ns(5), hostsText(own(5)))],
      pods: [simplePod(5, [{ basePath: payload, containerPort: 3000 }])],
      diagnostic: entryField(5, 1, 'basePath'),
    },
    {
      field: 'targetPath',
      namespaces: [tenant(ns(6), hostsText(own(6)))],
      pods: [simplePod(6, [{ basePath: '/t', containerPort: 3000, targetPath: payload }])],
      diagnostic: entryField(6, 1, 'targetPath'),
    },
    {
      field: 'containerPort',
      namespaces: [tenant(ns(7), hostsText(own(7)))],
      pods: [simplePod(7, [{ basePath: '/c', containerPort: payload }])],
      diagnostic: entryField(7, 1, 'containerPort'),
    },
    {
      field: 'weight',
      namespaces: [tenant(ns(8), hostsText(own(8)))],
      pods: [simplePod(8, [{ basePath: '/w', containerPort: 3000, weight: payload }])],
      diagnostic: entryField(8, 1, 'weight'),
    },
    {
      field: 'paths annotation as a whole',
      namespaces: [tenant(ns(9), hostsText(own(9)))],
      pods: [pod(ns(9), { kind: 'text', text: payload })],
      diagnostic: { object: is(`Pod ${ns(9)}/web`), field: is(PATHS_FIELD) },
    },
    {
      field: 'pod name',
      namespaces: [tenant(ns(10), hostsText(own(10)))],
      pods: [
        simplePod(10, []),
        pod(ns(10), pathsText([{ basePath: '/p', containerPort: 3000 }]), { name: payload }),
      ],
      diagnostic: { object: startsWith(`Pod ${ns(10)}/"`), field: is('metadata.name') },
    },
    {
      field: 'namespace name',
      namespaces: [tenant(payload, hostsText({ 'attacker-11.test': {} }))],
      pods: [pod(payload, pathsText([ownPath]))],
      diagnostic: { object: startsWith('Namespace "'), field: is('metadata.name') },
    },
    {
      field: 'podIP',
      namespaces: [tenant(ns(12), hostsText(own(12)))],
      pods: [
        simplePod(12, []),
        pod(ns(12), pathsText([{ basePath: '/ip', containerPort: 3000 }]), { name: 'web-ip', ip: payload }),
      ],
      diagnostic: { object: is(`Pod ${ns(12)}/web-ip`), field: is('status.podIP') },
    },
    {
      // A port name is only looked up, never written: the entry routes to the port's number.
      field: 'container port name',
      namespaces: [tenant(ns(13), hostsText(own(13)))],
      pods: [
        pod(ns(13), pathsText([ownPath, { basePath: '/named', containerPort: payload }]), {
          containers: [
            {
              name: 'app',
              ports: [
                { containerPort: 3000, name: 'http' },
                { containerPort: 3001, name: payload },
              ],
            },
          ],
        }),
      ],
    },
    {
      field: 'probe path',
      namespaces: [tenant(ns(14), hostsText(own(14)))],
      pods: [
        pod(ns(14), pathsText([ownPath]), {
          containers: [{ ...CONTAINERS[0], readinessProbe: { httpGet: { path: payload, port: 3000 } } }],
        }),
      ],
      diagnostic: {
        object: is(`Pod ${ns(14)}/web`),
        field: is('spec.containers[0].readinessProbe.httpGet.path'),
      },
    },
    {
      field: 'labels',
      namespaces: [
        tenant(ns(15), hostsText(own(15)), {
          labels: {
            [ROUTABLE_LABEL]: 'true',
            [ORG_LABEL]: payload,
            [ENV_LABEL]: payload,
            [payload]: payload,
          },
        }),
      ],
      pods: [
        pod(ns(15), pathsText([ownPath]), {
          labels: { [ROUTABLE_LABEL]: 'true', [APP_NAME_LABEL]: payload, [APP_REV_LABEL]: payload },
        }),
      ],
    },
    {
      field: 'secret field name',
      namespaces: [tenant(ns(16), hostsText(own(16)))],
      pods: [simplePod(16, [])],
      // Some payloads ("pwned.test.") are valid field names: harmless, they are only ever looked up.
      ...(specSecretFieldName(payload) === null && {
        diagnostic: { object: is(`Secret ${ns(16)}/routing`), field: startsWith('data[') },
      }),
    },
    {
      field: 'secret api-key, not base64',
      namespaces: [tenant(ns(17), hostsText(own(17)))],
      pods: [simplePod(17, [])],
      diagnostic: { object: is(`Secret ${ns(17)}/routing`), field: startsWith('data[') },
    },
    {
      // A key is compared in base64, whatever bytes it holds.
      field: 'secret api-key value',
      namespaces: [tenant(ns(18), hostsText(own(18)))],
      pods: [simplePod(18, [])],
    },
  ];
  const secrets: Record<string, GenSecret[]> = {
    'secret field name': [
      { namespace: ns(16), name: 'routing', data: { [payload]: b64('x'), 'api-key': b64('k16') } },
    ],
    'secret api-key, not base64': [{ namespace: ns(17), name: 'routing', data: { 'api-key': payload } }],
    // At most 2 KiB: a longer key is a known bug (limits-and-secrets.test.ts, "API key longer than").
    'secret api-key value': [
      { namespace: ns(18), name: 'routing', data: { 'api-key': b64(payload.slice(0, 2048)) } },
    ],
  };
  return list.map((attack) => ({ ...attack, secrets: secrets[attack.field] ?? [] }));
}

/** The victim (older, API key, SSL host) and a neighbour, both untouched by the attacks. */
function bystanders(): Pick<GenCluster, 'namespaces' | 'pods' | 'secrets'> {
  const { certB64, keyB64 } = tlsFixture();
  return {
    namespaces: [
      tenant(
        'victim',
        hostsText({
          'shop.test': {},
          'secure.shop.test': { ssl: { certificate: ref('tls-crt'), certificateKey: ref('tls-key') } },
        }),
        { creationTimestamp: NOW },
      ),
      tenant('neighbour', { kind: 'text', text: 'n.test  n2.test' }, { creationTimestamp: NOW }),
    ],
    pods: [
      pod(
        'victim',
        pathsText([
          { basePath: '/', containerPort: 3000 },
          { basePath: '/api', containerPort: 'http', weight: 3 },
        ]),
        {
          ip: '10.0.0.1',
        },
      ),
      pod('victim', pathsText([{ basePath: '/api', containerPort: 3000, weight: 1 }]), {
        name: 'web-2',
        ip: '10.0.0.2',
      }),
      pod('neighbour', pathsText([{ basePath: '/', containerPort: 3000, targetPath: '/v2' }]), {
        ip: 'fd00::1',
      }),
    ],
    secrets: [
      {
        namespace: 'victim',
        name: 'routing',
        data: { 'api-key': b64('victim-key'), 'tls-crt': certB64, 'tls-key': keyB64 },
      },
    ],
  };
}

function clusterFor(payload: string): { gen: GenCluster; attacks: Attack[] } {
  const list = attacks(payload);
  const base = bystanders();
  const gen: GenCluster = {
    env: { sslEnabled: true, hostSharing: 'shared', healthChecks: true },
    namespaces: [...base.namespaces, ...list.flatMap((a) => a.namespaces)],
    pods: [...base.pods, ...list.flatMap((a) => a.pods)],
    secrets: [...base.secrets, ...list.flatMap((a) => a.secrets)],
  };
  return { gen: plainCluster(gen), attacks: list };
}

function findDiagnostic(
  diagnostics: Diagnostic[],
  want: NonNullable<Attack['diagnostic']>,
): Diagnostic | undefined {
  return diagnostics.find((d) => want.object(d.object) && want.field(d.field));
}

describe('known attack payloads in every field a tenant writes', () => {
  it.each(Object.entries(PAYLOADS))('%s', async (_name, payload) => {
    const { gen, attacks: list } = clusterFor(payload);
    const config = configFor(gen.env);
    const rendered = renderCluster(toObjects(gen), config);
    writeTlsFiles(rendered.table);
    const nginx = await checkConfig(rendered.text);
    expect(nginx.output, 'nginx -t').toMatch(/test is successful/);

    const tree = parseNginxConf(rendered.text);
    const names = flatten(tree).map(({ directive }) => directive.name);
    expect(names.filter((n) => FOREIGN.includes(n))).toEqual([]);
    const expected = expectRouting(gen, tlsFixture());
    assertTemplateStructure(tree, expected, config, 'passive');
    assertShape(tree, expected);
    assertDiagnostics(expected.diagnostics, rendered.table.diagnostics);

    // The bystanders keep every route.
    const hosts = expected.servers.map((s) => s.host);
    expect(hosts).toEqual(expect.arrayContaining(['shop.test', 'secure.shop.test', 'n.test', 'n2.test']));
    expect(expected.servers.find((s) => s.host === 'shop.test')?.locations.map((l) => l.path)).toEqual([
      '/',
      '/api',
    ]);

    for (const attack of list) {
      if (!attack.diagnostic) continue;
      const found = findDiagnostic(rendered.table.diagnostics, attack.diagnostic);
      expect(found, `a diagnostic for the payload in ${attack.field}`).toBeDefined();
    }
    expect(unprintableDiagnostic(rendered.table.diagnostics)).toBeUndefined();
    // Labels, port names and secret values never reach nginx.conf, not even in a comment.
    expect(rendered.text).not.toContain(payload);
  });

  it.each(Object.entries(PAYLOADS))('%s as a probe path never reaches an active check', (_name, payload) => {
    const { gen } = clusterFor(payload);
    const config = configFor(gen.env);
    const tree = parseNginxConf(renderCluster(toObjects(gen), config, 'active').text);
    const expected = expectRouting(gen, tlsFixture());
    assertTemplateStructure(tree, expected, config, 'active');
    const sends = flatten(tree).filter(({ directive }) => directive.name === 'check_http_send');
    for (const { directive } of sends) {
      expect(directive.args).toHaveLength(1);
      expect(directive.args[0]).toMatch(/^GET \/[A-Za-z0-9\-._~!*+,=:@&()/%]* HTTP\/1\.0\r\n\r\n$/);
      expect(directive.args[0]).not.toContain('pwned');
    }
  });
});
