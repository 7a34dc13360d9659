// nginx text from any value: the second line of defence behind the allow-lists. Values reach the
// templates already quoted (quoteNginx), bare words sanitised (nginxToken) and numbers as digits
// (integer); the same functions are the helpers `quote`, `escape` and `token` of user templates.

// Control characters (CR/LF above all) would end a directive, and nginx has no escape for `$` in a
// string: it would interpolate a variable. Neither is ever part of an allow-listed value.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
const DROPPED = /[\u0000-\u001f\u007f$]/g;
const ESCAPED = /[\\"]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: see DROPPED
const NEEDS_ESCAPING = /[\u0000-\u001f\u007f$\\"]/;
const NOT_TOKEN = /[^A-Za-z0-9._:[\]-]/g;

/** The inside of an nginx double-quoted string: `\` and `"` escaped, control characters and `$` dropped. */
export function escapeNginxString(value: unknown): string {
  const text = String(value);
  return NEEDS_ESCAPING.test(text) ? text.replace(DROPPED, '').replace(ESCAPED, '\\$&') : text;
}

/** A complete nginx double-quoted string. */
export function quoteNginx(value: unknown): string {
  return `"${escapeNginxString(value)}"`;
}

/** A bare nginx word (names, addresses, sizes): anything outside [A-Za-z0-9._:[]-] is dropped. */
export function nginxToken(value: unknown): string {
  return String(value).replace(NOT_TOKEN, '');
}

/** Integers only ever render as digits (NaN renders as such and fails `nginx -t`, never injects). */
export function integer(value: number): string {
  return String(Math.trunc(value));
}
