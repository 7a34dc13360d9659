import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkBase64,
  checkDefaultReturn,
  checkDnsLabel,
  checkDnsSubdomain,
  checkHeaderName,
  checkHost,
  checkIp,
  checkPath,
  checkPort,
  checkSecretFieldName,
  checkSize,
  checkWeight,
  describeObject,
  quoteUntrusted,
  type Result,
} from '../../../src/model/validate.js';

type Case = [input: unknown, expected: unknown];
type Rejection = [input: unknown, reason: RegExp];

function accepts<T>(check: (v: unknown) => Result<T>, cases: Case[]): void {
  it.each(cases)('accepts %j as %j', (input, expected) => {
    expect(check(input)).toEqual({ ok: true, value: expected });
  });
}

function rejects<T>(check: (v: unknown) => Result<T>, cases: Rejection[]): void {
  it.each(cases)('rejects %j', (input, reason) => {
    const result = check(input);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toMatch(reason);
      // A reason is one printable line whatever the input.
      expect(result.reason).toMatch(/^[\x20-\x7e…]+$/);
    }
  });
}

const label63 = 'a'.repeat(63);
const name253 = `${label63}.${label63}.${label63}.${'a'.repeat(61)}`;

describe('checkHost', () => {
  accepts(checkHost, [
    ['example.com', 'example.com'],
    ['A.Example.COM', 'a.example.com'],
    ['localhost', 'localhost'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['123abc.example', '123abc.example'],
    ['1.2.3.4', '1.2.3.4'],
    ['255.255.255.255', '255.255.255.255'],
    [`${label63}.com`, `${label63}.com`],
    [name253, name253],
  ]);
  rejects(checkHost, [
    ['1.2.3.999', /not a valid IPv4/],
    ['01.2.3.4', /not a valid IPv4/],
    ['1.2.3', /not a valid IPv4/],
    ['-a.com', /not starting or ending with '-'/],
    ['a-.com', /not starting or ending with '-'/],
    ['a..com', /empty label/],
    ['.a.com', /empty label/],
    ['a.com.', /empty label/],
    [`${'a'.repeat(64)}.com`, /label longer than 63/],
    [`${name253}a`, /longer than 253/],
    ['*.a.com', /not a valid host name/],
    ['a_b.com', /not a valid host name/],
    ['bücher.de', /"b\\u00fccher.de" is not a valid host name/],
    ['\u212Aey.example', /"\\u212aey.example" is not a valid host name: only ASCII/],
    [' a.com', /not a valid host name/],
    ['a.com ', /not a valid host name/],
    ['a\tb.com', /not a valid host name/],
    ['a.com\nserver_name evil', /"a.com\\nserver_name evil" is not a valid host name/],
    ['a.com\r', /not a valid host name/],
    ['a.com;', /not a valid host name/],
    ['a{b}.com', /not a valid host name/],
    ['"a.com"', /not a valid host name/],
    ["'a.com'", /not a valid host name/],
    ['$host', /not a valid host name/],
    ['a.com#x', /not a valid host name/],
    ['', /empty/],
    [123, /must be a string, got 123/],
    [null, /must be a string, got null/],
  ]);
});

describe('checkPath', () => {
  accepts(checkPath, [
    ['/', '/'],
    ['/foo', '/foo'],
    ['/foo/bar/', '/foo/bar/'],
    ['/a-b._~!*+,=:@&()', '/a-b._~!*+,=:@&()'],
    ['/%20x%2F', '/%20x%2F'],
    ['/a.b/..c/d..', '/a.b/..c/d..'],
    [`/${'a'.repeat(1023)}`, `/${'a'.repeat(1023)}`],
  ]);
  rejects(checkPath, [
    ['foo', /must start with '\/'/],
    ['', /must start with '\/'/],
    ['//', /contains '\/\/'/],
    ['/a//b', /contains '\/\/'/],
    ['/.', /'\.' or '\.\.' segment/],
    ['/..', /'\.' or '\.\.' segment/],
    ['/a/./b', /'\.' or '\.\.' segment/],
    ['/a/../b', /'\.' or '\.\.' segment/],
    ['/a/..', /'\.' or '\.\.' segment/],
    ['/%2e%2e/x', /'\.' or '\.\.' segment/],
    ['/a b', /only A-Z/],
    ['/a\tb', /only A-Z/],
    ['/a\nb', /"\/a\\nb" is not a valid path/],
    ['/a\rb', /only A-Z/],
    ['/a;b', /only A-Z/],
    ['/a{b', /only A-Z/],
    ['/a}b', /only A-Z/],
    ['/a"b', /only A-Z/],
    ["/a'b", /only A-Z/],
    ['/$uri', /only A-Z/],
    ['/a#b', /only A-Z/],
    ['/a?b', /only A-Z/],
    ['/a\\b', /only A-Z/],
    ['/é', /only A-Z/],
    ['/%zz', /only A-Z/],
    ['/%2', /only A-Z/],
    [`/${'a'.repeat(1024)}`, /longer than 1024/],
    [42, /must be a string, got 42/],
    [null, /must be a string/],
  ]);
});

describe('checkPort', () => {
  accepts(checkPort, [
    [8080, 8080],
    ['8080', 8080],
    [1, 1],
    ['65535', 65535],
  ]);
  rejects(
    checkPort,
    [
      0,
      65536,
      '0',
      '65536',
      ' 8080',
      '8080 ',
      '0x1f90',
      '1e3',
      8080.5,
      '8080.5',
      '08080',
      '+80',
      '-80',
      -80,
      '',
    ]
      .concat([Number.NaN, Number.POSITIVE_INFINITY, '８０８０', '80\n', true, null, {}] as never[])
      .map((input): Rejection => [input, /is not a port \(an integer 1-65535\)/]),
  );
});

describe('checkWeight', () => {
  accepts(checkWeight, [
    [1, 1],
    [5, 5],
    [1000, 1000],
  ]);
  rejects(
    checkWeight,
    ['5', 0, 1001, 5.5, -1, '1e2', true, null].map(
      (input): Rejection => [input, /not a weight \(a JSON integer 1-1000\)/],
    ),
  );
});

describe('checkHeaderName', () => {
  accepts(checkHeaderName, [
    ['X-ROUTING-API-KEY', 'X-ROUTING-API-KEY'],
    ['abc1', 'abc1'],
  ]);
  rejects(
    checkHeaderName,
    ['', 'X_Key', 'X Key', 'X:Key', 'X-Key\r\nX-Evil: 1', 'é', 'X;', 7].map(
      (i): Rejection => [i, /not a header name/],
    ),
  );
});

describe('checkSecretFieldName', () => {
  accepts(checkSecretFieldName, [
    ['ssl.crt', 'ssl.crt'],
    ['api-key', 'api-key'],
    ['A.b-c_d', 'A.b-c_d'],
    ['a'.repeat(253), 'a'.repeat(253)],
  ]);
  rejects(
    checkSecretFieldName,
    ['', '.', '..', 'a/b', 'a b', 'a\n', 'a;', 'é', 'a'.repeat(254), 1].map(
      (i): Rejection => [i, /not a secret field name/],
    ),
  );
});

describe('checkSize', () => {
  accepts(checkSize, [
    ['0', '0'],
    ['10m', '10m'],
    ['1K', '1K'],
    ['8G', '8G'],
    ['9223372036854775807', '9223372036854775807'],
  ]);
  rejects(checkSize, [
    ['', /not a size/],
    ['10mb', /not a size/],
    ['1.5m', /not a size/],
    [' 1m', /not a size/],
    ['-1', /not a size/],
    ['1t', /not a size/],
    ['1m;', /not a size/],
    [10, /not a size/],
    ['9223372036854775808', /too large/],
    ['9999999999g', /too large/],
  ]);
});

describe('checkDefaultReturn', () => {
  accepts(checkDefaultReturn, [
    ['404', { kind: 'status', code: 404 }],
    ['100', { kind: 'status', code: 100 }],
    ['599', { kind: 'status', code: 599 }],
    ['http://fallback.example/', { kind: 'url', url: 'http://fallback.example/' }],
    ['https://b.example:8443/x?y=1&z=2', { kind: 'url', url: 'https://b.example:8443/x?y=1&z=2' }],
  ]);
  rejects(
    checkDefaultReturn,
    [
      '99',
      '600',
      '0404',
      ' 404',
      '4o4',
      'ftp://x.example',
      'http://',
      'http:///x',
      'http://a b',
      'http://a;b',
      'http://a{b',
      'http://a}b',
      'http://a"b',
      "http://a'b",
      'http://a$b',
      'http://a#b',
      'http://a\\b',
      'http://a\nb',
      'http://a\rb',
      'http://a\tb',
      'http://bücher.de',
      `http://${'a'.repeat(2100)}`,
      404,
    ].map((i): Rejection => [i, /not a status code \(100-599\) or an http\(s\):\/\/ URL/]),
  );
});

describe('checkIp', () => {
  accepts(checkIp, [
    ['10.0.0.1', '10.0.0.1'],
    ['fd00::1', '[fd00::1]'],
    ['FD00::A', '[fd00::a]'],
  ]);
  rejects(
    checkIp,
    ['10.0.0.256', '01.0.0.1', 'fe80::1%eth0', ' 10.0.0.1', 'pod.local', '', '[fd00::1]', 167772161].map(
      (i): Rejection => [i, /not an IP address/],
    ),
  );
});

describe('checkDnsLabel and checkDnsSubdomain', () => {
  accepts(checkDnsLabel, [
    ['team-a', 'team-a'],
    ['a', 'a'],
    [label63, label63],
  ]);
  rejects(
    checkDnsLabel,
    ['Team', '-a', 'a-', 'a.b', 'a'.repeat(64), '', 'a_b', undefined].map(
      (i): Rejection => [i, /RFC 1123 label/],
    ),
  );
  accepts(checkDnsSubdomain, [
    ['web-1', 'web-1'],
    ['a.b-c', 'a.b-c'],
    ['a'.repeat(100), 'a'.repeat(100)],
    [name253, name253],
  ]);
  rejects(
    checkDnsSubdomain,
    [`${name253}a`, 'A', 'a..b', '.a', 'a_b', '', 'a\nb'].map((i): Rejection => [i, /RFC 1123 subdomain/]),
  );
});

describe('checkBase64', () => {
  accepts(checkBase64, [
    ['', ''],
    ['YQ==', 'YQ=='],
    ['YWI=', 'YWI='],
    ['YWJj', 'YWJj'],
    ['+/8=', '+/8='],
  ]);
  it.each(['YQ', 'YR==', 'Y Q==', 'YQ==\n', '====', 'a', '-_8=', 'c2VjcmV0'.slice(0, 7)])(
    'rejects %j without repeating it',
    (input) => {
      const result = checkBase64(input);
      expect(result).toEqual({ ok: false, reason: 'is not valid base64' });
    },
  );
  it('rejects a non-string', () => {
    expect(checkBase64(123)).toEqual({ ok: false, reason: 'is not a base64 string' });
  });
});

describe('quoteUntrusted', () => {
  it.each([
    ['abc', '"abc"'],
    ['a\nb', '"a\\nb"'],
    ['a\rb', '"a\\rb"'],
    ['tab\there', '"tab\\there"'],
    ['é', '"\\u00e9"'],
    ['\u202eevil', '"\\u202eevil"'],
    ['say "hi"', '"say \\"hi\\""'],
    ['x'.repeat(100), `"${'x'.repeat(64)}…"`],
    [8080, '8080'],
    [8080.5, '8080.5'],
    [null, 'null'],
    [undefined, 'undefined'],
    [{ a: 'é' }, '{"a":"\\u00e9"}'],
  ])('renders %j as %s', (input, expected) => {
    expect(quoteUntrusted(input)).toBe(expected);
  });

  it('honours the length limit', () => {
    expect(quoteUntrusted('abcdef', 3)).toBe('"abc…"');
  });

  it('never carries a raw control or non-ASCII character, and stays short', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 500 }), fc.anything()), (value) => {
        const out = quoteUntrusted(value);
        expect(out).toMatch(/^[\x20-\x7e…]*$/);
        expect(out.length).toBeLessThanOrEqual(64 * 6 + 3);
      }),
    );
  });
});

describe('describeObject', () => {
  it.each([
    [['Pod', 'team-a', 'web-1'], 'Pod team-a/web-1'],
    [['Namespace', undefined, 'team-a'], 'Namespace team-a'],
    [['Secret', 'team-a', 'routing'], 'Secret team-a/routing'],
    [['Pod', 'team-a', 'web\nserver {'], 'Pod team-a/"web\\nserver {"'],
    [['Namespace', '', 'Team A'], 'Namespace "Team A"'],
    [['Pod', undefined, 'web-1'], 'Pod undefined/web-1'],
  ] as const)('describes %j as %s', ([kind, ns, name], expected) => {
    expect(describeObject(kind, ns, name)).toBe(expected);
  });
});
