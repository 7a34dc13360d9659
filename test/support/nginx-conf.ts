// A parser of nginx configuration text that reads it the way nginx does (ngx_conf_read_token in
// src/core/ngx_conf_file.c), so that tests can look at the directives nginx would see rather than
// grep the text: words end at whitespace, `;` or `{`; `"…"` and `'…'` are words whose `\"`, `\'`,
// `\\`, `\t`, `\r`, `\n` are unescaped; `#` starts a comment only where a word could start; `}` closes
// a block only where a word could start (inside a word it is part of the word); `${` does not open
// a block. Anything nginx would refuse as syntax throws.

export interface Directive {
  name: string;
  /** Arguments after the name, quotes removed and escapes resolved, as nginx hands them on. */
  args: string[];
  /** The directives of `{ … }`, for block directives. */
  block?: Directive[];
  /** 1-based line of the directive's name. */
  line: number;
}

export class NginxSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'NginxSyntaxError';
  }
}

/** nginx's NGX_CONF_BUFFER: a word longer than this makes nginx refuse the file. */
const MAX_WORD = 4096;

type Token =
  | { kind: 'word'; text: string; line: number }
  | { kind: ';' | '{' | '}'; line: number }
  | { kind: 'end'; line: number };

function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';
}

/** The value of a raw word (quotes already stripped): nginx's escape handling. */
function resolveEscapes(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch === '\\' && i + 1 < raw.length) {
      const next = raw[i + 1] as string;
      if (next === '"' || next === "'" || next === '\\') {
        out += next;
        i++;
        continue;
      }
      if (next === 't' || next === 'r' || next === 'n') {
        out += next === 't' ? '\t' : next === 'r' ? '\r' : '\n';
        i++;
        continue;
      }
    }
    out += ch;
  }
  return out;
}

function* tokenize(text: string): Generator<Token> {
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text[i] as string;
    if (isSpace(ch)) {
      if (ch === '\n') line++;
      i++;
      continue;
    }
    if (ch === '#') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (ch === ';' || ch === '{' || ch === '}') {
      yield { kind: ch, line };
      i++;
      continue;
    }
    const startLine = line;
    if (ch === '"' || ch === "'") {
      const quote = ch;
      let j = i + 1;
      while (j < n && text[j] !== quote) {
        if (text[j] === '\\') j++;
        if (text[j] === '\n') line++;
        j++;
      }
      if (j >= n) throw new NginxSyntaxError(`unterminated ${quote} string`, startLine);
      const raw = text.slice(i + 1, j);
      if (raw.length > MAX_WORD) throw new NginxSyntaxError('too long parameter', startLine);
      yield { kind: 'word', text: resolveEscapes(raw), line: startLine };
      i = j + 1;
      // After a quoted word nginx needs a space, `;`, `{` or `)`.
      const after = text[i];
      if (after !== undefined && !isSpace(after) && after !== ';' && after !== '{' && after !== ')') {
        throw new NginxSyntaxError(`unexpected ${JSON.stringify(after)} after a quoted string`, line);
      }
      continue;
    }
    // A bare word: up to whitespace, `;` or `{` (not `}`: nginx keeps it in the word), where `\x`
    // skips x and `${` stays in the word.
    let j = i;
    let variable = false;
    while (j < n) {
      const c = text[j] as string;
      if (c === '\\') {
        j += 2;
        variable = false;
        continue;
      }
      if (c === '{' && variable) {
        j++;
        continue;
      }
      if (isSpace(c) || c === ';' || c === '{') break;
      variable = c === '$';
      j++;
    }
    if (j > n) throw new NginxSyntaxError('unexpected end of file after "\\"', startLine);
    const raw = text.slice(i, j);
    if (raw.length > MAX_WORD) throw new NginxSyntaxError('too long parameter', startLine);
    yield { kind: 'word', text: resolveEscapes(raw), line: startLine };
    i = j;
  }
  yield { kind: 'end', line };
}

/** The directive tree of `text`. Throws NginxSyntaxError on anything nginx's parser would refuse. */
export function parseNginxConf(text: string): Directive[] {
  const tokens = tokenize(text);
  const next = (): Token => tokens.next().value as Token;

  function parseBlock(depth: number, openedAt: number): Directive[] {
    const directives: Directive[] = [];
    let words: { text: string; line: number }[] = [];
    for (;;) {
      const token = next();
      if (token.kind === 'word') {
        words.push(token);
        continue;
      }
      if (token.kind === 'end') {
        if (words.length > 0)
          throw new NginxSyntaxError('unexpected end of file, expecting ";" or "}"', token.line);
        if (depth > 0) {
          throw new NginxSyntaxError(
            `unexpected end of file, expecting "}" (block opened on line ${openedAt})`,
            token.line,
          );
        }
        return directives;
      }
      if (token.kind === '}') {
        if (words.length > 0) throw new NginxSyntaxError('unexpected "}"', token.line);
        if (depth === 0) throw new NginxSyntaxError('unexpected "}"', token.line);
        return directives;
      }
      const [first, ...rest] = words;
      if (!first) throw new NginxSyntaxError(`unexpected "${token.kind}"`, token.line);
      const directive: Directive = { name: first.text, args: rest.map((w) => w.text), line: first.line };
      if (token.kind === '{') directive.block = parseBlock(depth + 1, token.line);
      directives.push(directive);
      words = [];
    }
  }

  return parseBlock(0, 0);
}

/** Every directive with the names of the blocks around it: `http/server/location/proxy_pass`. */
export function flatten(
  tree: Directive[],
  parents: string[] = [],
): { context: string; directive: Directive }[] {
  const out: { context: string; directive: Directive }[] = [];
  for (const directive of tree) {
    const path = [...parents, directive.name];
    out.push({ context: path.join('/'), directive });
    if (directive.block) out.push(...flatten(directive.block, path));
  }
  return out;
}

/** How often each context path occurs: `{ 'http/server': 3, 'http/server/listen': 3, … }`. */
export function directiveCounts(tree: Directive[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { context } of flatten(tree)) counts[context] = (counts[context] ?? 0) + 1;
  return counts;
}

// ------------------------------------------------------------------ the routing shape

export interface LocationShape {
  /** The location's arguments: `["/api"]`, `["=", "/dispatcher/status"]`. */
  match: string[];
  /** Arguments of every `if` in the location, with the directives inside. */
  guards: { condition: string[]; body: Directive[] }[];
  /** Argument of `proxy_pass`, or null. */
  proxyPass: string | null;
  /** Arguments of `return`, or null. */
  returns: string[] | null;
}

export interface ServerShape {
  /** Arguments of each `listen`. */
  listen: string[][];
  /** Arguments of each `server_name`, flattened. */
  serverNames: string[];
  locations: LocationShape[];
}

export interface RoutingShape {
  /** Every `server` of the `http` block, in order. */
  servers: ServerShape[];
  /** Upstream name → arguments of each of its `server` lines. */
  upstreams: Map<string, string[][]>;
  /** Every `proxy_pass` argument anywhere, in order. */
  proxyPasses: string[];
}

function argsOf(block: Directive[], name: string): string[][] {
  return block.filter((d) => d.name === name).map((d) => d.args);
}

function locationShape(location: Directive): LocationShape {
  const block = location.block ?? [];
  const proxyPass = argsOf(block, 'proxy_pass');
  const returns = argsOf(block, 'return');
  if (proxyPass.length > 1)
    throw new Error(`location ${location.args.join(' ')} has ${proxyPass.length} proxy_pass`);
  return {
    match: location.args,
    guards: block.filter((d) => d.name === 'if').map((d) => ({ condition: d.args, body: d.block ?? [] })),
    proxyPass: proxyPass[0]?.join(' ') ?? null,
    returns: returns[0] ?? null,
  };
}

/** Servers (listen, server_name, locations), upstreams and proxy_pass targets of a parsed configuration. */
export function routingShape(tree: Directive[]): RoutingShape {
  const http = tree.filter((d) => d.name === 'http');
  if (http.length !== 1) throw new Error(`expected one http block, found ${http.length}`);
  const block = http[0]?.block ?? [];
  const servers = block
    .filter((d) => d.name === 'server')
    .map((server) => {
      const body = server.block ?? [];
      return {
        listen: argsOf(body, 'listen'),
        serverNames: argsOf(body, 'server_name').flat(),
        locations: body.filter((d) => d.name === 'location').map(locationShape),
      };
    });
  const upstreams = new Map<string, string[][]>();
  for (const upstream of block.filter((d) => d.name === 'upstream')) {
    const name = upstream.args.join(' ');
    if (upstreams.has(name)) throw new Error(`upstream ${name} is defined twice`);
    upstreams.set(name, argsOf(upstream.block ?? [], 'server'));
  }
  const proxyPasses = flatten(tree)
    .filter(({ directive }) => directive.name === 'proxy_pass')
    .map(({ directive }) => directive.args.join(' '));
  return { servers, upstreams, proxyPasses };
}
