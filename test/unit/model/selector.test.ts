import { describe, expect, it } from 'vitest';
import {
  matchesSelector,
  parseSelector,
  type Selector,
  selectorToString,
} from '../../../src/model/selector.js';

function parsed(text: string): Selector {
  const result = parseSelector(text);
  if (!result.ok) throw new Error(result.reason);
  return result.value;
}

const routable = { 'github.com/30x.dispatcher.routable': 'true' };

describe('matchesSelector', () => {
  it.each<[string, Record<string, string> | undefined, boolean]>([
    ['github.com/30x.dispatcher.routable=true', routable, true],
    ['github.com/30x.dispatcher.routable=true', { 'github.com/30x.dispatcher.routable': 'false' }, false],
    ['github.com/30x.dispatcher.routable=true', undefined, false],
    ['github.com/30x.dispatcher.routable==true', routable, true],
    ['a!=x', { a: 'y' }, true],
    ['a!=x', {}, true],
    ['a!=x', { a: 'x' }, false],
    ['a in (x, y)', { a: 'y' }, true],
    ['a in (x,y)', { a: 'z' }, false],
    ['a in (x,y)', {}, false],
    ['a notin (x,y)', { a: 'z' }, true],
    ['a notin (x,y)', {}, true],
    ['a notin (x,y)', { a: 'x' }, false],
    ['a', { a: '' }, true],
    ['a', { b: 'x' }, false],
    ['!a', { b: 'x' }, true],
    ['!a', { a: 'x' }, false],
    ['a=x,b', { a: 'x', b: '1' }, true],
    ['a=x,b', { a: 'x' }, false],
    ['  a = x ,  b  in ( 1 , 2 )  ', { a: 'x', b: '2' }, true],
    ['a=', { a: '' }, true],
    ['a=', { a: 'x' }, false],
    ['', undefined, true],
    ['   ', { any: 'thing' }, true],
    ['toString', {}, false],
  ])('%j against %j → %s', (text, labels, expected) => {
    expect(matchesSelector(parsed(text), labels)).toBe(expected);
  });
});

describe('parseSelector rejects invalid syntax with a reason', () => {
  it.each<[string, RegExp]>([
    ['a in x', /expected '\(' after in/],
    ['a in (x', /expected ',' or '\)'/],
    ['a in ()', /expected a value/],
    ['a in (x,)', /expected a value/],
    ['a b', /expected an operator after "a"/],
    ['a=x y', /expected ','/],
    ['a=x,', /expected a label key, found end of selector/],
    [',a', /expected a label key/],
    ['!a=x', /expected ','/],
    ['=x', /expected a label key/],
    ['a=b=c', /expected ','/],
    ['a>1', /"a>1" is not a valid label key/],
    ['-a=x', /not a valid label key/],
    ['a=x;y', /"x;y" is not a valid label value/],
    [`a=${'v'.repeat(64)}`, /not a valid label value/],
    [`${'k'.repeat(64)}=v`, /not a valid label key/],
    ['Bad_Prefix/k=v', /not a valid label key/],
    ['a=é', /not a valid label value/],
  ])('%j', (text, reason) => {
    const result = parseSelector(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});

describe('selectorToString', () => {
  it.each<[string, string]>([
    ['github.com/30x.dispatcher.routable==true', 'github.com/30x.dispatcher.routable=true'],
    ['b notin (z, y), a in (y,x,x), !c, d, e!=1', '!c,a in (x,y),b notin (y,z),d,e!=1'],
    ['', ''],
  ])('%j prints as %j and parses back to the same selector', (text, canonical) => {
    const selector = parsed(text);
    expect(selectorToString(selector)).toBe(canonical);
    expect(selectorToString(parsed(canonical))).toBe(canonical);
  });
});
