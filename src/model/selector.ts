// Kubernetes label selectors (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
// comma = and), parsed into requirements, matched against labels and printed back canonically.
import { checkDnsSubdomain, quoteUntrusted, type Result } from './validate.js';

export type Requirement =
  | { key: string; op: 'equals' | 'notEquals'; value: string }
  | { key: string; op: 'in' | 'notIn'; values: string[] }
  | { key: string; op: 'exists' | 'doesNotExist' };

/** Every requirement must hold; no requirement matches every object. */
export interface Selector {
  requirements: Requirement[];
}

type Token =
  | { kind: 'word'; text: string }
  | { kind: 'op'; text: '=' | '==' | '!=' | '!' | ',' | '(' | ')' }
  | { kind: 'end' };

const WORD = /^[^\s,()=!]+/;
const OPERATORS = ['==', '!=', '=', '!', ',', '(', ')'] as const;

function tokenize(text: string): Result<Token[]> {
  const tokens: Token[] = [];
  let rest = text;
  for (;;) {
    rest = rest.replace(/^[ \t\r\n]+/, '');
    if (rest.length === 0) break;
    const operator = OPERATORS.find((op) => rest.startsWith(op));
    if (operator) {
      tokens.push({ kind: 'op', text: operator });
      rest = rest.slice(operator.length);
      continue;
    }
    const word = WORD.exec(rest)?.[0];
    if (!word) return { ok: false, reason: `unexpected character ${quoteUntrusted(rest[0])}` };
    tokens.push({ kind: 'word', text: word });
    rest = rest.slice(word.length);
  }
  tokens.push({ kind: 'end' });
  return { ok: true, value: tokens };
}

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function checkKey(key: string): Result<string> {
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  const prefixOk = prefix === undefined || (prefix.length > 0 && checkDnsSubdomain(prefix).ok);
  if (prefixOk && name.length <= 63 && NAME.test(name)) return { ok: true, value: key };
  return { ok: false, reason: `${quoteUntrusted(key)} is not a valid label key` };
}

function checkValue(value: string): Result<string> {
  if (value === '' || (value.length <= 63 && NAME.test(value))) return { ok: true, value };
  return { ok: false, reason: `${quoteUntrusted(value)} is not a valid label value` };
}

/** Parses selector text; the empty (or blank) selector selects everything. */
export function parseSelector(text: string): Result<Selector> {
  const tokenized = tokenize(text);
  if (!tokenized.ok) return tokenized;
  const tokens = tokenized.value;
  let at = 0;
  const peek = (): Token => tokens[at] ?? { kind: 'end' };
  const next = (): Token => tokens[at++] ?? { kind: 'end' };
  const isOp = (t: Token, op: string): boolean => t.kind === 'op' && t.text === op;
  const describe = (t: Token): string => (t.kind === 'end' ? 'end of selector' : quoteUntrusted(t.text));

  const requirements: Requirement[] = [];
  if (peek().kind === 'end') return { ok: true, value: { requirements } };

  const parseValues = (keyword: string): Result<string[]> => {
    const open = next();
    if (!isOp(open, '('))
      return { ok: false, reason: `expected '(' after ${keyword}, found ${describe(open)}` };
    const values: string[] = [];
    for (;;) {
      const token = next();
      if (token.kind !== 'word') return { ok: false, reason: `expected a value, found ${describe(token)}` };
      const value = checkValue(token.text);
      if (!value.ok) return value;
      values.push(value.value);
      const separator = next();
      if (isOp(separator, ')')) return { ok: true, value: [...new Set(values)].sort() };
      if (!isOp(separator, ','))
        return { ok: false, reason: `expected ',' or ')', found ${describe(separator)}` };
    }
  };

  const parseRequirement = (): Result<Requirement> => {
    const negated = isOp(peek(), '!');
    if (negated) next();
    const keyToken = next();
    if (keyToken.kind !== 'word')
      return { ok: false, reason: `expected a label key, found ${describe(keyToken)}` };
    const key = checkKey(keyToken.text);
    if (!key.ok) return key;
    const after = peek();
    if (negated || after.kind === 'end' || isOp(after, ',')) {
      return { ok: true, value: { key: key.value, op: negated ? 'doesNotExist' : 'exists' } };
    }
    next();
    if (after.kind === 'op' && (after.text === '=' || after.text === '==' || after.text === '!=')) {
      const valueToken = peek();
      if (valueToken.kind === 'word') next();
      const text = valueToken.kind === 'word' ? valueToken.text : '';
      const value = checkValue(text);
      if (!value.ok) return value;
      return {
        ok: true,
        value: { key: key.value, op: after.text === '!=' ? 'notEquals' : 'equals', value: text },
      };
    }
    if (after.kind === 'word' && (after.text === 'in' || after.text === 'notin')) {
      const values = parseValues(after.text);
      if (!values.ok) return values;
      return {
        ok: true,
        value: { key: key.value, op: after.text === 'in' ? 'in' : 'notIn', values: values.value },
      };
    }
    return {
      ok: false,
      reason: `expected an operator after ${quoteUntrusted(key.value)}, found ${describe(after)}`,
    };
  };

  for (;;) {
    const requirement = parseRequirement();
    if (!requirement.ok) return { ok: false, reason: `invalid label selector: ${requirement.reason}` };
    requirements.push(requirement.value);
    const separator = next();
    if (separator.kind === 'end') return { ok: true, value: { requirements } };
    if (!isOp(separator, ',')) {
      return { ok: false, reason: `invalid label selector: expected ',' found ${describe(separator)}` };
    }
  }
}

function matches(requirement: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, requirement.key) && typeof labels[requirement.key] === 'string';
  const value = has ? labels[requirement.key] : undefined;
  switch (requirement.op) {
    case 'exists':
      return has;
    case 'doesNotExist':
      return !has;
    case 'equals':
      return value === requirement.value;
    case 'notEquals':
      return value !== requirement.value;
    case 'in':
      return value !== undefined && requirement.values.includes(value);
    case 'notIn':
      return value === undefined || !requirement.values.includes(value);
  }
}

/** True when every requirement holds for `labels` (absent labels count as no labels). */
export function matchesSelector(sel: Selector, labels: Record<string, string> | undefined): boolean {
  const safe = labels !== null && typeof labels === 'object' ? labels : {};
  return sel.requirements.every((r) => matches(r, safe));
}

function requirementToString(r: Requirement): string {
  switch (r.op) {
    case 'exists':
      return r.key;
    case 'doesNotExist':
      return `!${r.key}`;
    case 'equals':
      return `${r.key}=${r.value}`;
    case 'notEquals':
      return `${r.key}!=${r.value}`;
    case 'in':
      return `${r.key} in (${r.values.join(',')})`;
    case 'notIn':
      return `${r.key} notin (${r.values.join(',')})`;
  }
}

/** Canonical text (requirements sorted), suitable as the API server's `labelSelector`. */
export function selectorToString(sel: Selector): string {
  return sel.requirements
    .map(requirementToString)
    .sort()
    .filter((text, i, all) => i === 0 || all[i - 1] !== text)
    .join(',');
}
