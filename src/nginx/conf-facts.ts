// What the applier needs to know of a rendered nginx.conf before it starts an nginx on it: the
// addresses it listens on (can a new master take over dispatcher's listening sockets?) and its pid
// file. Read from the text itself because TEMPLATES_DIR may change both. Pure: no I/O.

export interface ListenDirective {
  /** The address argument as written: `80`, `*:80`, `127.0.0.1:8080`, `[::]:443`, `unix:/x`. */
  address: string;
  /** The parameters after it: `default_server`, `ssl`, `backlog=1024`, ... */
  parameters: string[];
}

interface Statement {
  depth: number;
  words: string[];
}

// One token of nginx's syntax at a time: whitespace, a comment, ; { }, a quoted word (closing quote
// optional, as at the end of a truncated text), or a bare word.
const TOKEN = /\s+|#[^\n]*|[;{}]|"((?:[^"\\]|\\[\s\S])*)"?|'((?:[^'\\]|\\[\s\S])*)'?|[^\s;{}"']+/y;

/**
 * The statements of an nginx configuration named `names`, with their block depth: words split on
 * whitespace, quotes removed, comments skipped, `;`, `{` and `}` as nginx reads them. Only the
 * statements asked for are collected: the text of 2,000 upstreams is over a megabyte.
 */
function statements(text: string, names: ReadonlySet<string>): Statement[] {
  const found: Statement[] = [];
  let words: string[] | undefined;
  let first = true;
  let depth = 0;
  const end = (): void => {
    if (words !== undefined && words.length > 0) found.push({ depth, words });
    words = undefined;
    first = true;
  };
  TOKEN.lastIndex = 0;
  for (let match = TOKEN.exec(text); match !== null; match = TOKEN.exec(text)) {
    const token = match[0];
    const c = token.charAt(0);
    if (c === '#' || /^\s/.test(c)) continue;
    if (c === ';' || c === '{' || c === '}') {
      end();
      if (c === '{') depth += 1;
      if (c === '}') depth = Math.max(0, depth - 1);
      continue;
    }
    const quoted = match[1] ?? match[2];
    const word = quoted === undefined ? token : quoted.replace(/\\([\s\S])/g, '$1');
    if (first) {
      first = false;
      if (names.has(word)) words = [word];
    } else {
      words?.push(word);
    }
  }
  return found;
}

const LISTEN = new Set(['listen']);
const PID = new Set(['pid']);

/** Every `listen` directive of the configuration, whatever block it is in. */
export function listenDirectives(text: string): ListenDirective[] {
  return statements(text, LISTEN)
    .filter((s) => s.words.length >= 2)
    .map((s) => ({ address: s.words[1] as string, parameters: s.words.slice(2) }));
}

/** The main-level `pid` path as written (relative paths resolve against nginx's prefix). */
export function pidFile(text: string): string | undefined {
  return statements(text, PID).find((s) => s.depth === 0)?.words[1];
}

/**
 * Parameters that say how a server uses an address, not how its socket is made: a socket nginx
 * inherits keeps the options it was made with, so a listen asking for others (reuseport, ipv6only,
 * so_keepalive, ...) must get a socket nginx opens itself.
 */
const PER_SERVER_PARAMETERS = /^(default_server|default|ssl|http2|proxy_protocol|backlog=[0-9]+)$/;

/** The port of a listen on every IPv4 address (`80`, `*:80`, `0.0.0.0:80`), else undefined. */
function wildcardPort(address: string): number | undefined {
  const match = /^(?:(?:\*|0\.0\.0\.0):)?([0-9]{1,5})$/.exec(address);
  const port = match ? Number(match[1]) : Number.NaN;
  return port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * Whether an nginx started on `text` can run on the listening sockets dispatcher holds for `held`
 * ports alone: every listen is on all IPv4 addresses of a held port, with per-server parameters
 * only. Any other listen would make a new master bind a socket the running one already has.
 */
export function listensOnlyOn(text: string, held: ReadonlySet<number>): boolean {
  return listenDirectives(text).every((listen) => {
    const port = wildcardPort(listen.address);
    return (
      port !== undefined && held.has(port) && listen.parameters.every((p) => PER_SERVER_PARAMETERS.test(p))
    );
  });
}
