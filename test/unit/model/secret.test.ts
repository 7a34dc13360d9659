import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toSecret } from '../../../src/model/secret.js';
import type { KubeObject } from '../../../src/types.js';
import { b64, cfg, secret } from './fixtures.js';

const convert = (obj: KubeObject) => toSecret(obj, cfg);

describe('toSecret', () => {
  it('ignores every secret but the routing secret, silently', () => {
    expect(convert(secret({ 'api-key': b64('k') }, { name: 'other' }))).toEqual({
      value: null,
      diagnostics: [],
    });
  });

  it('reads the api key and every field as base64', () => {
    expect(convert(secret({ 'api-key': b64('s3cret'), 'ssl.crt': b64('CERT') }))).toEqual({
      value: {
        namespace: 'team-a',
        apiKey: b64('s3cret'),
        fields: { 'api-key': b64('s3cret'), 'ssl.crt': b64('CERT') },
      },
      diagnostics: [],
    });
  });

  it.each([
    ['without the api-key field', { other: b64('x') }],
    ['with an empty api-key field', { 'api-key': '' }],
    ['without data', undefined],
  ])('has no api key %s', (_, data) => {
    const result = convert(secret(data));
    expect(result.value).not.toBeNull();
    expect(result.value?.apiKey).toBeUndefined();
    expect(result.diagnostics).toEqual([]);
  });

  it('encodes stringData, which wins over data for the same key', () => {
    const result = convert(
      secret({ 'api-key': b64('old'), keep: b64('k') }, { stringData: { 'api-key': 'new ✓' } }),
    );
    expect(result.value?.apiKey).toBe(b64('new ✓'));
    expect(result.value?.fields).toEqual({ 'api-key': b64('new ✓'), keep: b64('k') });
  });

  it('drops values that are not strict base64, reporting the field but never the value', () => {
    const values = [
      'c3VwZXJzZWNyZXQ',
      'c3VwZXJzZWNyZXQ=\n',
      'c3Vw ZXJz',
      'c3VwZXJzZWNyZXR=',
      'super secret; value',
    ];
    const data = Object.fromEntries(values.map((v, i) => [`f${i}`, v]));
    const result = convert(secret({ ...data, 'api-key': b64('key') }));
    expect(result.value?.fields).toEqual({ 'api-key': b64('key') });
    expect(result.diagnostics.map((d) => [d.field, d.reason])).toEqual(
      values.map((_, i) => [`data["f${i}"]`, 'value is not valid base64; field ignored']),
    );
    const text = JSON.stringify(result.diagnostics);
    for (const value of values) expect(text).not.toContain(value.slice(0, 6));
  });

  it('drops values that are not strings, without showing them', () => {
    const result = convert(secret({ 'api-key': 12345678 }, { stringData: { pin: { code: 987654 } } }));
    // An api-key that is there but unusable fails closed: the namespace denies every request.
    expect(result.value).toEqual({ namespace: 'team-a', fields: {}, apiKeyRejected: true });
    expect(result.diagnostics.map((d) => [d.field, d.reason])).toEqual([
      [
        'data["api-key"]',
        'value is not a string; field ignored; every location of the namespace answers 403 until the API key is fixed',
      ],
      ['stringData["pin"]', 'value is not a string; field ignored'],
    ]);
    expect(JSON.stringify(result.diagnostics)).not.toMatch(/12345678|987654/);
  });

  it('refuses an API key over 1 KiB (nginx refuses arguments over 4 KiB) and fails closed', () => {
    const result = convert(secret({ 'api-key': b64('k'.repeat(1025)), other: b64('x'.repeat(5000)) }));
    expect(result.value?.apiKey).toBeUndefined();
    expect(result.value?.apiKeyRejected).toBe(true);
    expect(result.value?.fields).toEqual({ other: b64('x'.repeat(5000)) });
    expect(result.diagnostics.map((d) => d.reason)).toEqual([
      'value longer than 1024 bytes; field ignored; every location of the namespace answers 403 until the API key is fixed',
    ]);
    expect(convert(secret({ 'api-key': b64('k'.repeat(1024)) })).value?.apiKey).toBe(b64('k'.repeat(1024)));
  });

  it('lets a valid stringData api-key win over an invalid data one', () => {
    const result = convert(secret({ 'api-key': 'not base64!' }, { stringData: { 'api-key': 'plain' } }));
    expect(result.value?.apiKey).toBe(b64('plain'));
    expect(result.value?.apiKeyRejected).toBeUndefined();
  });

  it.each(['a/b', 'a b', 'a;b', 'é', '', '..', 'x'.repeat(254)])(
    'drops the invalid field name %j',
    (name) => {
      const result = convert(secret({ [name]: b64('v'), 'api-key': b64('k') }));
      expect(result.value?.fields).toEqual({ 'api-key': b64('k') });
      expect(result.diagnostics).toEqual([
        expect.objectContaining({
          severity: 'warning',
          reason: expect.stringMatching(/not a secret field name.*; field ignored$/),
        }),
      ]);
    },
  );

  it('reports data that is not a map', () => {
    const result = convert(secret('c2VjcmV0'));
    expect(result.value).toEqual({ namespace: 'team-a', fields: {} });
    expect(result.diagnostics).toEqual([
      expect.objectContaining({ field: 'data', reason: 'is a string, expected an object; ignored' }),
    ]);
    expect(JSON.stringify(result.diagnostics)).not.toContain('c2VjcmV0');
  });

  it('refuses a routing secret with an invalid namespace', () => {
    const result = convert(secret({ 'api-key': b64('k') }, { namespace: 'Bad NS' }));
    expect(result.value).toBeNull();
    expect(result.diagnostics).toEqual([expect.objectContaining({ field: 'metadata.namespace' })]);
  });

  it('inherits nothing: a reference to "toString" or "__proto__" finds no field', () => {
    const fields = convert(secret({ 'api-key': b64('k') })).value?.fields ?? {};
    for (const name of ['toString', '__proto__', 'constructor']) expect(fields[name]).toBeUndefined();
    const own = convert(secret(JSON.parse('{"__proto__": "cA=="}'))).value?.fields ?? {};
    expect(Object.hasOwn(own, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(own, '__proto__')?.value).toBe('cA==');
  });

  it('never puts a value into a diagnostic, whatever the value', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 6, maxLength: 80 }), (value) => {
        const marked = `!${value}`; // '!' is never base64: always reported
        const result = convert(secret({ field: marked }, { stringData: { 'bad name': marked } }));
        expect(result.diagnostics).toHaveLength(2);
        expect(JSON.stringify(result.diagnostics)).not.toContain(JSON.stringify(marked).slice(1, -1));
      }),
    );
  });
});
