import { describe, expect, it } from 'vitest';
import { toNamespace } from '../../../src/model/namespace.js';
import type { Diagnostic, HostSpec, KubeObject } from '../../../src/types.js';
import { cfg, HOSTS, namespace, ROUTABLE, selector } from './fixtures.js';

const field = `metadata.annotations["${HOSTS}"]`;
const convert = (obj: KubeObject) => toNamespace(obj, cfg, selector());
const ref = (key: string) => ({ valueFrom: { secretKeyRef: { key } } });
const ssl = { certificate: ref('ssl.crt'), certificateKey: ref('ssl.key') };

function hostsOf(hosts: unknown): { hosts: HostSpec[] | undefined; diagnostics: Diagnostic[] } {
  const result = convert(namespace(typeof hosts === 'string' ? hosts : JSON.stringify(hosts)));
  return { hosts: result.value?.hosts, diagnostics: result.diagnostics };
}

describe('toNamespace: routable namespaces', () => {
  it('reads hosts, timestamps and recorded labels', () => {
    const obj = namespace(JSON.stringify({ 'b.example': {}, 'A.Example': {} }), {
      labels: {
        ...ROUTABLE,
        'github.com/30x.dispatcher.org': 'Some Org\n{ evil }',
        'github.com/30x.dispatcher.env': 'test',
      },
    });
    expect(convert(obj)).toEqual({
      value: {
        name: 'team-a',
        createdAt: '2020-01-02T03:04:05.000Z',
        org: 'Some Org\n{ evil }',
        env: 'test',
        hosts: [{ name: 'a.example' }, { name: 'b.example' }],
      },
      diagnostics: [],
    });
  });

  it('reads SSL options with and without a client certificate', () => {
    const { hosts, diagnostics } = hostsOf({
      'secure.dev': { ssl },
      'mtls.dev': { ssl: { ...ssl, clientCertificate: ref('client.crt') } },
    });
    expect(diagnostics).toEqual([]);
    expect(hosts).toEqual([
      {
        name: 'mtls.dev',
        ssl: { certificate: 'ssl.crt', certificateKey: 'ssl.key', clientCertificate: 'client.crt' },
      },
      { name: 'secure.dev', ssl: { certificate: 'ssl.crt', certificateKey: 'ssl.key' } },
    ]);
  });

  it('takes the creation time from a Date as client-node delivers it', () => {
    const obj = namespace('{}');
    (obj.metadata as { creationTimestamp: unknown }).creationTimestamp = new Date('2021-05-06T07:08:09Z');
    expect(convert(obj).value?.createdAt).toBe('2021-05-06T07:08:09.000Z');
  });

  it('treats a missing creation time as the oldest (empty string)', () => {
    const obj = namespace('{}');
    delete obj.metadata?.creationTimestamp;
    expect(convert(obj)).toMatchObject({ value: { createdAt: '' }, diagnostics: [] });
  });

  it('reports an unreadable creation time', () => {
    const obj = namespace('{}');
    (obj.metadata as { creationTimestamp: unknown }).creationTimestamp = 'yesterday';
    const result = convert(obj);
    expect(result.value?.createdAt).toBe('');
    expect(result.diagnostics).toEqual([
      expect.objectContaining({
        field: 'metadata.creationTimestamp',
        reason: '"yesterday" is not a timestamp',
      }),
    ]);
  });

  it('routes a namespace without hosts annotation with no hosts and says so (info)', () => {
    expect(convert(namespace(undefined))).toEqual({
      value: { name: 'team-a', createdAt: '2020-01-02T03:04:05.000Z', hosts: [] },
      diagnostics: [
        {
          severity: 'info',
          object: 'Namespace team-a',
          field,
          reason: 'annotation absent; the namespace serves no host',
        },
      ],
    });
  });
});

describe('toNamespace: objects that do not route', () => {
  it('ignores a namespace that does not match the selector, silently', () => {
    expect(convert(namespace('{"a.com":{}}', { labels: { other: 'x' } }))).toEqual({
      value: null,
      diagnostics: [],
    });
    expect(convert(namespace('{"a.com":{}}', { labels: 'garbage' }))).toEqual({
      value: null,
      diagnostics: [],
    });
  });

  it.each(['Team-A', 'a_b', 'a.b', 'x'.repeat(64), '', 'a\nb'])(
    'refuses the invalid namespace name %j',
    (name) => {
      const result = convert(namespace('{"a.com":{}}', { name }));
      expect(result.value).toBeNull();
      expect(result.diagnostics).toEqual([
        expect.objectContaining({
          severity: 'warning',
          field: 'metadata.name',
          reason: expect.stringMatching(/RFC 1123/),
        }),
      ]);
      expect(result.diagnostics[0]?.object).toMatch(/^Namespace "[ -~]*"$/);
    },
  );
});

describe('toNamespace: legacy space-separated hosts', () => {
  it('keeps valid names (lower-cased, deduplicated) and reports invalid ones', () => {
    const { hosts, diagnostics } = hostsOf(
      'host1.example  HOST2.example\tbad_host host1.example\n1.2.3.4 1.2.3.999',
    );
    expect(hosts).toEqual([{ name: '1.2.3.4' }, { name: 'host1.example' }, { name: 'host2.example' }]);
    expect(diagnostics.map((d) => [d.field, d.reason])).toEqual([
      [
        field,
        "\"bad_host\" is not a valid host name: labels are letters, digits and '-', not starting or ending with '-'; host left out",
      ],
      [field, '"1.2.3.999" is not a valid host name: not a valid IPv4 address; host left out'],
    ]);
  });

  it('reads an empty value as no hosts', () => {
    expect(hostsOf('   ')).toEqual({
      hosts: [],
      diagnostics: [expect.objectContaining({ severity: 'info', reason: 'lists no hosts' })],
    });
  });
});

describe('toNamespace: hosts annotation that is not a host map', () => {
  it.each<[string, RegExp]>([
    ['[]', /is an array, expected a JSON object/],
    ['["a.com"]', /is an array/],
    ['"a.com"', /is a string/],
    ['5', /is a number/],
    ['null', /is null/],
    ['true', /is a boolean/],
    ['{"a.com": {}', /is not valid JSON/],
    ['["a.com"', /is not valid JSON/],
  ])('%j gives no hosts and a warning', (text, reason) => {
    const { hosts, diagnostics } = hostsOf(text);
    expect(hosts).toEqual([]);
    expect(diagnostics).toEqual([
      expect.objectContaining({ severity: 'warning', field, reason: expect.stringMatching(reason) }),
    ]);
  });

  it('refuses an annotation that is not a string', () => {
    const obj = namespace(undefined);
    (obj.metadata as { annotations: unknown }).annotations = { [HOSTS]: { 'a.com': {} } };
    const result = convert(obj);
    expect(result.value?.hosts).toEqual([]);
    expect(result.diagnostics).toEqual([
      expect.objectContaining({ field, reason: expect.stringMatching(/must be a string/) }),
    ]);
  });

  it('refuses an annotation larger than 64 KiB', () => {
    const big = JSON.stringify({ 'a.com': {}, [`${'b'.repeat(60)}.com`]: {}, pad: 'x'.repeat(65536) });
    const { hosts, diagnostics } = hostsOf(big);
    expect(hosts).toEqual([]);
    expect(diagnostics[0]?.reason).toMatch(/more than the limit of 65536; ignored whole; no hosts/);
  });

  it('refuses more than 1000 hosts, in either form', () => {
    const many = Array.from({ length: 1001 }, (_, i) => `h${i}.example`);
    for (const text of [JSON.stringify(Object.fromEntries(many.map((h) => [h, {}]))), many.join(' ')]) {
      const { hosts, diagnostics } = hostsOf(text);
      expect(hosts).toEqual([]);
      expect(diagnostics).toEqual([
        expect.objectContaining({ reason: 'lists 1001 hosts, more than the limit of 1000; no hosts' }),
      ]);
    }
    expect(hostsOf(JSON.stringify(Object.fromEntries(many.slice(1).map((h) => [h, {}])))).hosts).toHaveLength(
      1000,
    );
  });
});

describe('toNamespace: each bad host name is left out while the others still come through', () => {
  it.each([
    'bad;host.com',
    'a{b}.com',
    'a"b.com',
    "a'b.com",
    '$host',
    'a#b.com',
    'a b.com',
    ' a.com',
    'a.com\n',
    'a.com\r',
    'a.com\nserver_name evil.com',
    'bücher.de',
    'a..com',
    '-a.com',
    '*.a.com',
    'a_b.com',
    '1.2.3.999',
    `${'a'.repeat(64)}.com`,
    `${'abcdefgh.'.repeat(29)}com`,
    '',
  ])('%j', (bad) => {
    const { hosts, diagnostics } = hostsOf({ 'good.example': {}, [bad]: {} });
    expect(hosts).toEqual([{ name: 'good.example' }]);
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ severity: 'warning', object: 'Namespace team-a' });
    expect(diagnostics[0]?.field.startsWith(`${field}["`)).toBe(true);
    expect(diagnostics[0]?.reason).toMatch(/(not a valid host name|host name is empty).*; host left out$/);
    expect(`${diagnostics[0]?.field} ${diagnostics[0]?.reason}`).toMatch(/^[\x20-\x7e…]+$/);
  });
});

describe('toNamespace: invalid host options leave the host out (a typo must not mean plain HTTP)', () => {
  it.each<[string, unknown, string, RegExp]>([
    ['unknown option', { sll: ssl }, '["bad.example"]["sll"]', /unknown option \(known: "ssl"\)/],
    ['options not an object', 'ssl', '["bad.example"]', /is a string, expected an object/],
    ['options null', null, '["bad.example"]', /is null/],
    ['options an array', [], '["bad.example"]', /is an array/],
    ['ssl not an object', { ssl: true }, '["bad.example"].ssl', /is a boolean/],
    ['ssl empty', { ssl: {} }, '["bad.example"].ssl.certificate', /is required/],
    [
      'certificateKey missing',
      { ssl: { certificate: ref('a') } },
      '["bad.example"].ssl.certificateKey',
      /is required/,
    ],
    [
      'unknown ssl field',
      { ssl: { ...ssl, cipher: 'x' } },
      '["bad.example"].ssl["cipher"]',
      /unknown option/,
    ],
    [
      'misspelt ssl field',
      { ssl: { certificate: ref('a'), certifcateKey: ref('b') } },
      '["bad.example"].ssl["certifcateKey"]',
      /unknown option/,
    ],
    [
      'ref without valueFrom',
      { ssl: { ...ssl, certificate: { secretKeyRef: { key: 'a' } } } },
      '["bad.example"].ssl.certificate["secretKeyRef"]',
      /unknown option/,
    ],
    [
      'ref a string',
      { ssl: { ...ssl, certificate: 'ssl.crt' } },
      '["bad.example"].ssl.certificate',
      /is a string/,
    ],
    [
      'secretKeyRef naming another secret',
      { ssl: { ...ssl, certificate: { valueFrom: { secretKeyRef: { name: 'other', key: 'a' } } } } },
      '["bad.example"].ssl.certificate.valueFrom.secretKeyRef["name"]',
      /unknown option/,
    ],
    [
      'key missing',
      { ssl: { ...ssl, certificate: { valueFrom: { secretKeyRef: {} } } } },
      '["bad.example"].ssl.certificate.valueFrom.secretKeyRef.key',
      /is required/,
    ],
    [
      'key with a slash',
      { ssl: { ...ssl, certificate: ref('../etc/passwd') } },
      '["bad.example"].ssl.certificate.valueFrom.secretKeyRef.key',
      /not a secret field name/,
    ],
    [
      'key with nginx syntax',
      { ssl: { ...ssl, certificateKey: ref('a;b') } },
      '["bad.example"].ssl.certificateKey.valueFrom.secretKeyRef.key',
      /not a secret field name/,
    ],
    [
      'key a number',
      { ssl: { ...ssl, clientCertificate: ref(5 as unknown as string) } },
      '["bad.example"].ssl.clientCertificate.valueFrom.secretKeyRef.key',
      /not a secret field name/,
    ],
  ])('%s', (_, options, suffix, reason) => {
    const { hosts, diagnostics } = hostsOf({ 'good.example': { ssl }, 'bad.example': options });
    expect(hosts).toEqual([
      { name: 'good.example', ssl: { certificate: 'ssl.crt', certificateKey: 'ssl.key' } },
    ]);
    expect(diagnostics).toEqual([
      {
        severity: 'warning',
        object: 'Namespace team-a',
        field: `${field}${suffix}`,
        reason: expect.stringMatching(reason),
      },
    ]);
    expect(diagnostics[0]?.reason).toMatch(/; host left out$/);
  });
});

describe('toNamespace: host names differing only in case', () => {
  it('merges identical options silently', () => {
    expect(hostsOf({ 'A.example': {}, 'a.example': {} })).toEqual({
      hosts: [{ name: 'a.example' }],
      diagnostics: [],
    });
  });

  it('keeps the spelling with SSL when options differ, and reports the other', () => {
    const { hosts, diagnostics } = hostsOf({ 'a.example': {}, 'A.Example': { ssl } });
    expect(hosts).toEqual([
      { name: 'a.example', ssl: { certificate: 'ssl.crt', certificateKey: 'ssl.key' } },
    ]);
    expect(diagnostics).toEqual([
      expect.objectContaining({
        field: `${field}["a.example"]`,
        reason:
          'duplicate of host a.example (host names are case-insensitive) with other options; the options of "A.Example" apply',
      }),
    ]);
  });

  it('leaves the host out when one spelling has invalid options', () => {
    const { hosts, diagnostics } = hostsOf({ 'a.example': {}, 'A.EXAMPLE': { sll: ssl }, 'b.example': {} });
    expect(hosts).toEqual([{ name: 'b.example' }]);
    expect(diagnostics.map((d) => d.field)).toEqual([
      `${field}["A.EXAMPLE"]["sll"]`,
      `${field}["a.example"]`,
    ]);
  });
});
