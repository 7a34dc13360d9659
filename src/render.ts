// Routing table + render options → nginx.conf, through the Handlebars templates in templates/.
// loadTemplates is the only I/O; render is pure. Quoting happens here, as a second line of defence
// behind the allow-lists: the view handed to the templates holds every string already quoted
// (quoteNginx), every bare word sanitised (nginxToken) and every number as digits (integer). The
// same functions are registered as the helpers `quote`, `escape` and `token` for templates of users.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { createServerGroupCache, groupServers, type ServerGroupCache } from './server-groups.js';
import type {
  HealthCheck,
  HealthCheckMode,
  RenderOptions,
  RoutingTable,
  Server,
  ServerTls,
  Upstream,
} from './types.js';

const MAIN_TEMPLATE = 'nginx.conf.hbs';
const PARTIALS_DIR = 'partials';
const VERSION_LINE = /^# dispatcher config-version: ([0-9a-f]+)\r?$/;

/** The templates shipped with dispatcher: `templates/` at the package root, from src/ or dist/src/. */
export const bundledTemplatesDir: string = (() => {
  const moduleDir = dirname(fileURLToPath(import.meta.url));
  const packageRoot =
    basename(dirname(moduleDir)) === 'dist' ? resolve(moduleDir, '..', '..') : resolve(moduleDir, '..');
  return join(packageRoot, 'templates');
})();

/** Compiled templates of one directory, in their own Handlebars instance. */
export interface Templates {
  /** Directory the templates were read from. */
  dir: string;
  main: Handlebars.TemplateDelegate<RenderView>;
  /**
   * The templates name servers by `serverNames`: hosts that route the same way then share one
   * server block. Templates that name them by `host`, the bundled ones, get one block per host.
   */
  groupsHosts: boolean;
  /** What earlier renders with these templates made; only speed depends on it. */
  cache: RenderCache;
}

/**
 * Renders reuse, by object identity, the views of unchanged table objects (the plan cache hands
 * back the same Server and Upstream objects) and the text an `each` block made of each view. Weak
 * maps: an entry lives as long as its object.
 */
export interface RenderCache {
  views: WeakMap<RenderOptions, ViewCache>;
  /** Per memoized `each` block (see markMemoizedBlocks): the text each item made. */
  blocks: Map<string, WeakMap<object, string>>;
}

interface ViewCache {
  upstreams: WeakMap<Upstream, UpstreamView>;
  servers: WeakMap<Server, ServerView>;
  groups: ServerGroupCache;
}

function createRenderCache(): RenderCache {
  return { views: new WeakMap(), blocks: new Map() };
}

// ------------------------------------------------------------------ the view templates see

/**
 * An nginx string literal, quotes included, made by `quoteNginx`: write `location {{path}} {`,
 * never `"{{path}}"`. Quoting happens here rather than through the `quote` helper in the
 * templates because a Handlebars helper call costs more than the rest of a location.
 */
export type Quoted = string;

/**
 * What the templates are rendered with. Every field is present (null when absent) because the
 * templates compile in strict mode; numbers are already digits, bare words already sanitised
 * (`nginxToken`) and strings already quoted (`Quoted`). Values shared by many items are repeated on
 * each item rather than reached through `../` or `@root`, which would slow large tables down.
 */
export interface RenderView {
  /** Hex digits. */
  version: string;
  paths: {
    pid: Quoted;
    clientBodyTemp: Quoted;
    proxyTemp: Quoted;
    fastcgiTemp: Quoted;
    uwsgiTemp: Quoted;
    scgiTemp: Quoted;
  };
  serverNamesHash: { maxSize: string; bucketSize: string };
  maxClientBodySize: string;
  /** nginx time (e.g. 30s): how long old workers may hold connections after a reload. */
  workerShutdownTimeout: string;
  port: string;
  sslPort: string;
  statusPath: Quoted;
  /** The default SSL server's pair; null without SSL. */
  defaultSsl: TlsView | null;
  upstreams: UpstreamView[];
  servers: ServerView[];
}

export interface TlsView {
  certificate: Quoted;
  certificateKey: Quoted;
  clientCertificate: Quoted | null;
}

export interface UpstreamView {
  name: string;
  /** `parameters`: what follows the address on the `server` line (` weight=2 max_fails=3 ...`). */
  servers: { address: string; parameters: string }[];
  /** Active check (nginx_upstream_check_module), once per upstream; null unless healthChecks is 'active'. */
  check: {
    type: string;
    intervalMs: string;
    timeoutMs: string;
    rise: string;
    fall: string;
    port: string;
    /** `check_http_send`'s argument: `"GET /path HTTP/1.0\r\n\r\n"`; null for tcp checks. */
    httpSend: Quoted | null;
  } | null;
}

export interface ServerView {
  /** The block's first host. */
  host: Quoted;
  /** Every host of the block, each quoted, separated by spaces: what `server_name` takes. */
  serverNames: string;
  /** `80` or `443 ssl`. */
  listen: string;
  tls: TlsView | null;
  locations: LocationView[];
  /** What `location /` answers when no location serves `/`; null when one does. */
  defaultLocation: DefaultLocationView | null;
}

export interface LocationView {
  path: Quoted;
  /** `"http://<upstream>"` or `"http://<upstream><targetPath>"`. */
  proxyPass: Quoted;
  apiKey: Quoted | null;
  /** nginx variable holding the API-key header, without `$`: `http_x_routing_api_key`. */
  apiKeyVariable: string;
  /** The owning namespace's API key is unusable: every request gets 403 (fail closed). */
  deny: boolean;
}

export interface DefaultLocationView {
  status: string | null;
  url: Quoted | null;
}

// ------------------------------------------------------------------ helpers (second line of defence)

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
function integer(value: number): string {
  return String(Math.trunc(value));
}

function createInstance(cache: RenderCache): typeof Handlebars {
  const instance = Handlebars.create();
  instance.registerHelper('quote', (value: unknown) => quoteNginx(value));
  instance.registerHelper('escape', (value: unknown) => escapeNginxString(value));
  instance.registerHelper('token', (value: unknown) => nginxToken(value));
  instance.registerHelper('each', joiningEach(instance, cache));
  return instance;
}

/**
 * The built-in `each`, except that over a non-empty array it joins the items' output instead of
 * concatenating it one by one: the text of a large table is then a few flat strings rather than a
 * rope of hundreds of thousands of pieces, which halves the time spent in garbage collection and in
 * hashing. Same data (@index, @key, @first, @last) and block parameters; anything else goes to the
 * built-in.
 */
function joiningEach(instance: typeof Handlebars, cache: RenderCache): Handlebars.HelperDelegate {
  const builtin = instance.helpers.each as Handlebars.HelperDelegate;
  return function each(this: unknown, items: unknown, options: Handlebars.HelperOptions): string {
    if (!Array.isArray(items) || items.length === 0) return builtin.call(this, items, options);
    const memoKey = (options.hash as Record<string, unknown> | undefined)?.[MEMO_HASH_KEY];
    const memo = typeof memoKey === 'string' ? blockMemo(cache, memoKey) : undefined;
    const data = options.data ? instance.createFrame(options.data) : undefined;
    const last = items.length - 1;
    const parts: string[] = new Array(items.length);
    for (let index = 0; index <= last; index++) {
      const item: unknown = items[index];
      const remembered = memo && typeof item === 'object' && item !== null ? memo.get(item) : undefined;
      if (remembered !== undefined) {
        parts[index] = remembered;
        continue;
      }
      if (data) {
        data.key = index;
        data.index = index;
        data.first = index === 0;
        data.last = index === last;
      }
      const text = options.fn(item, { data, blockParams: [item, index] });
      if (memo && typeof item === 'object' && item !== null) {
        // Reading a character makes V8 flatten the rope the template built: joining flat texts
        // at every later render costs half as much.
        text.charCodeAt(0);
        memo.set(item, text);
      }
      parts[index] = text;
    }
    if (!memo) return parts.join('');
    // The remembered texts are flat: a rope of them is flattened once, when the whole text is
    // hashed, instead of once here and again there.
    let out = '';
    for (const part of parts) out += part;
    return out;
  };
}

function blockMemo(cache: RenderCache, key: string): WeakMap<object, string> {
  let memo = cache.blocks.get(key);
  if (!memo) {
    memo = new WeakMap();
    cache.blocks.set(key, memo);
  }
  return memo;
}

/** The hash argument that marks an `each` block whose items' text may be remembered. */
const MEMO_HASH_KEY = 'dispatcherMemo';

/**
 * Marks every outermost `{{#each list}}` whose body depends on the item alone: no `@` data
 * (`@index`, `@root`...), no `../`, no block parameters, no dynamic partial or decorator, and the
 * same of every partial it calls. Such a block renders an item the same way wherever it stands, so
 * its text can be remembered by the item's identity. Blocks of user templates that read more are
 * left as they are and rendered every time.
 */
function markMemoizedBlocks(
  program: hbs.AST.Program,
  partials: ReadonlyMap<string, hbs.AST.Program>,
  nextKey: () => string,
): hbs.AST.Program {
  const body = program.body.map((statement): hbs.AST.Statement => {
    if (statement.type !== 'BlockStatement') return statement;
    const block = statement as hbs.AST.BlockStatement;
    const path = block.path as hbs.AST.PathExpression;
    if (
      path.type === 'PathExpression' &&
      path.original === 'each' &&
      block.params.length === 1 &&
      !block.hash &&
      (block.program.blockParams?.length ?? 0) === 0 &&
      dependsOnItemOnly(block.program, partials, new Set())
    ) {
      const value: hbs.AST.StringLiteral = {
        type: 'StringLiteral',
        value: nextKey(),
        original: '',
        loc: block.loc,
      };
      value.original = value.value;
      const pair: hbs.AST.HashPair = { type: 'HashPair', key: MEMO_HASH_KEY, value, loc: block.loc };
      return { ...block, hash: { type: 'Hash', pairs: [pair], loc: block.loc } } as hbs.AST.BlockStatement;
    }
    return {
      ...block,
      program: markMemoizedBlocks(block.program, partials, nextKey),
      inverse: block.inverse ? markMemoizedBlocks(block.inverse, partials, nextKey) : block.inverse,
    } as hbs.AST.BlockStatement;
  });
  return { ...program, body };
}

function dependsOnItemOnly(
  node: unknown,
  partials: ReadonlyMap<string, hbs.AST.Program>,
  visiting: Set<string>,
): boolean {
  if (Array.isArray(node)) return node.every((child) => dependsOnItemOnly(child, partials, visiting));
  if (typeof node !== 'object' || node === null) return true;
  const typed = node as { type?: string };
  switch (typed.type) {
    case 'PathExpression': {
      const path = node as hbs.AST.PathExpression;
      return !path.data && path.depth === 0;
    }
    case 'PartialBlockStatement':
    case 'DecoratorBlock':
    case 'Decorator':
      return false;
    case 'PartialStatement': {
      const partial = node as hbs.AST.PartialStatement;
      if (partial.name.type !== 'PathExpression') return false;
      const name = (partial.name as hbs.AST.PathExpression).original;
      const called = partials.get(name);
      if (!called) return false;
      if (!visiting.has(name)) {
        visiting.add(name);
        if (!dependsOnItemOnly(called, partials, visiting)) return false;
      }
      return dependsOnItemOnly([partial.params, partial.hash], partials, visiting);
    }
  }
  for (const [key, child] of Object.entries(node)) {
    if (key !== 'loc' && !dependsOnItemOnly(child, partials, visiting)) return false;
  }
  return true;
}

// ------------------------------------------------------------------ loading

const COMPILE_OPTIONS: CompileOptions = {
  noEscape: true,
  strict: true,
  preventIndent: true,
  // Mustaches are plain lookups unless named here: faster, and a typo is an error, not a silent blank.
  knownHelpers: { quote: true, escape: true, token: true },
  knownHelpersOnly: true,
};

/** Reads `nginx.conf.hbs` and every `partials/*.hbs` of `dir` and compiles them. Throws naming the file. */
export function loadTemplates(dir: string): Templates {
  const cache = createRenderCache();
  const instance = createInstance(cache);
  const mainPath = join(dir, MAIN_TEMPLATE);
  const partialsDir = join(dir, PARTIALS_DIR);
  const partials = new Map<string, { path: string; ast: hbs.AST.Program }>();
  for (const file of listPartials(partialsDir)) {
    const path = join(partialsDir, file);
    partials.set(basename(file, '.hbs'), { path, ast: parseTemplate(instance, path, readTemplate(path)) });
  }
  const mainAst = parseTemplate(instance, mainPath, readTemplate(mainPath));

  const names = new Set(partials.keys());
  checkPartialsExist(mainAst, mainPath, names);
  for (const { path, ast } of partials.values()) checkPartialsExist(ast, path, names);

  const asts = new Map([...partials].map(([name, { ast }]) => [name, ast]));
  let blocks = 0;
  const nextKey = (): string => {
    blocks += 1;
    return String(blocks);
  };
  const prepare = (ast: hbs.AST.Program, including: string[]): hbs.AST.Program =>
    markMemoizedBlocks(inlinePartials(ast, asts, including), asts, nextKey);
  for (const [name, { path, ast }] of partials) {
    instance.registerPartial(name, compileTemplate(instance, path, prepare(ast, [name])));
  }
  return {
    dir,
    main: compileTemplate(instance, mainPath, prepare(mainAst, [])),
    groupsHosts: [mainAst, ...asts.values()].some(readsServerNames),
    cache,
  };
}

/**
 * Replaces every `{{> name}}` without arguments by the partial's own statements. The output is the
 * same (such a partial renders in the caller's context, and indentation is off) without a
 * Handlebars partial invocation per location: about 6% of the render time of 1,000 namespaces.
 * A partial given a context (`{{> ssl tls}}`) stays a call; so does one that includes itself.
 */
function inlinePartials(
  program: hbs.AST.Program,
  partials: Map<string, hbs.AST.Program>,
  including: string[],
): hbs.AST.Program {
  const body: hbs.AST.Statement[] = [];
  for (const statement of program.body) {
    const name = inlinablePartial(statement);
    const partial = name === undefined || including.includes(name) ? undefined : partials.get(name);
    if (name !== undefined && partial) {
      body.push(...inlinePartials(partial, partials, [...including, name]).body);
    } else if (statement.type === 'BlockStatement') {
      const block = statement as hbs.AST.BlockStatement;
      body.push({
        ...block,
        program: inlinePartials(block.program, partials, including),
        inverse: block.inverse ? inlinePartials(block.inverse, partials, including) : block.inverse,
      } as hbs.AST.BlockStatement);
    } else {
      body.push(statement);
    }
  }
  return { ...program, body };
}

function inlinablePartial(statement: hbs.AST.Statement): string | undefined {
  if (statement.type !== 'PartialStatement') return undefined;
  const partial = statement as hbs.AST.PartialStatement;
  if (partial.name.type !== 'PathExpression' || partial.params.length > 0 || partial.hash) return undefined;
  return (partial.name as hbs.AST.PathExpression).original;
}

function listPartials(partialsDir: string): string[] {
  try {
    return readdirSync(partialsDir)
      .filter((file) => file.endsWith('.hbs'))
      .sort();
  } catch (error) {
    throw new Error(`templates: cannot read ${partialsDir}: ${messageOf(error)}`);
  }
}

function readTemplate(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`template ${path}: cannot read: ${messageOf(error)}`);
  }
}

function parseTemplate(instance: typeof Handlebars, path: string, source: string): hbs.AST.Program {
  try {
    return instance.parse(source, { srcName: path });
  } catch (error) {
    throw templateError(path, error);
  }
}

function compileTemplate(
  instance: typeof Handlebars,
  path: string,
  ast: hbs.AST.Program,
): Handlebars.TemplateDelegate<RenderView> {
  try {
    const compiled = instance.compile<RenderView>(ast, COMPILE_OPTIONS);
    // compile is lazy: precompile now so that compiler errors surface at load, naming the file.
    instance.precompile(ast, COMPILE_OPTIONS);
    return compiled;
  } catch (error) {
    throw templateError(path, error);
  }
}

function readsServerNames(ast: hbs.AST.Program): boolean {
  const visitor = new Handlebars.Visitor();
  let found = false;
  visitor.PathExpression = (node: hbs.AST.PathExpression): void => {
    if (node.parts[node.parts.length - 1] === 'serverNames') found = true;
  };
  visitor.accept(ast);
  return found;
}

function checkPartialsExist(ast: hbs.AST.Program, path: string, known: Set<string>): void {
  const visitor = new Handlebars.Visitor();
  const missing: { name: string; line: number }[] = [];
  // A partial block ({{#> name}}) has a fallback, and a dynamic name is only known at render time.
  visitor.PartialStatement = (node: hbs.AST.PartialStatement): void => {
    const name = node.name.type === 'PathExpression' ? (node.name as hbs.AST.PathExpression).original : '';
    if (name && !known.has(name)) missing.push({ name, line: node.loc.start.line });
  };
  visitor.accept(ast);
  const first = missing[0];
  if (first) {
    throw new Error(`template ${path} line ${first.line}: partial "${first.name}" not found in partials/`);
  }
}

function templateError(path: string, error: unknown): Error {
  const message = messageOf(error);
  const line = (error as { lineNumber?: number } | null)?.lineNumber;
  const where = line !== undefined && !/line \d+/.test(message) ? ` line ${line}` : '';
  return new Error(`template ${path}${where}: ${message}`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ------------------------------------------------------------------ rendering

/**
 * Stands in for the version while rendering; the version is the hash of what is rendered around it.
 * NUL characters make it one no value can contain: quoting and sanitising drop them.
 */
const VERSION_PLACEHOLDER = '\u0000config-version\u0000';

/**
 * The nginx configuration for `table`. Pure: same table, options and templates, same text.
 *
 * The version is the first 16 hex digits of sha256 over the configuration rendered with a
 * placeholder for the version, plus the TLS files the table asks apply to write (a rotated
 * certificate changes nothing else). So any change of what nginx does is a new version, and the
 * diagnostics and stats of the table, which do not reach nginx, are not. Hashing the text instead
 * of a canonical JSON of the table costs a few milliseconds instead of tens on large tables.
 */
export function render(templates: Templates, table: RoutingTable, options: RenderOptions): string {
  const text = templates.main(viewOf(table, options, templates));
  const hash = createHash('sha256').update(text);
  for (const file of table.tlsFiles) hash.update(`\0${file.path}\0${file.mode}\0${file.contentBase64}`);
  const version = hash.digest('hex').slice(0, 16);
  return replaceAll(text, VERSION_PLACEHOLDER, version);
}

/** The version written on the first line of a rendered configuration, or undefined. */
export function configVersion(text: string): string | undefined {
  const end = text.indexOf('\n');
  const firstLine = end === -1 ? text : text.slice(0, end);
  return VERSION_LINE.exec(firstLine)?.[1];
}

// Slices and concatenation leave the large text uncopied (split/join would copy all of it).
function replaceAll(text: string, search: string, replacement: string): string {
  let out = '';
  let from = 0;
  for (let at = text.indexOf(search); at !== -1; at = text.indexOf(search, from)) {
    out += text.slice(from, at) + replacement;
    from = at + search.length;
  }
  return from === 0 ? text : out + text.slice(from);
}

function viewOf(table: RoutingTable, options: RenderOptions, templates: Templates): RenderView {
  const views = viewCacheFor(templates.cache, options);
  const hash = serverNamesHash(table.servers);
  const context: ServerContext = {
    plainListen: integer(options.port),
    sslListen: `${integer(options.sslPort)} ssl`,
    // nginx's name for a request header: lower case, `-` as `_` (the allow-list leaves nothing else).
    apiKeyVariable: `http_${options.apiKeyHeader.toLowerCase().replace(/[^a-z0-9]/g, '_')}`,
    defaultLocation:
      options.defaultLocationReturn.kind === 'status'
        ? { status: integer(options.defaultLocationReturn.code), url: null }
        : { status: null, url: quoteNginx(options.defaultLocationReturn.url) },
  };
  const servers = table.servers.map((each) => {
    let view = views.servers.get(each);
    if (!view) {
      view = serverView(each, context);
      views.servers.set(each, view);
    }
    return view;
  });
  return {
    version: VERSION_PLACEHOLDER,
    paths: options.prefixRelativePaths ? PREFIX_PATHS : SYSTEM_PATHS,
    serverNamesHash: { maxSize: integer(hash.maxSize), bucketSize: integer(hash.bucketSize) },
    maxClientBodySize: nginxToken(options.maxClientBodySize),
    workerShutdownTimeout: nginxToken(options.workerShutdownTimeout),
    port: integer(options.port),
    sslPort: integer(options.sslPort),
    statusPath: quoteNginx(options.statusPath),
    defaultSsl: options.ssl ? tlsView({ ...options.ssl }) : null,
    upstreams: table.upstreams.map((upstream) => {
      let view = views.upstreams.get(upstream);
      if (!view) {
        view = upstreamView(upstream, options.healthChecks);
        views.upstreams.set(upstream, view);
      }
      return view;
    }),
    servers: templates.groupsHosts ? groupServers(servers, views.groups) : servers,
  };
}

/** Views depend on the render options too: they are remembered per options object. */
function viewCacheFor(cache: RenderCache, options: RenderOptions): ViewCache {
  let views = cache.views.get(options);
  if (!views) {
    views = { upstreams: new WeakMap(), servers: new WeakMap(), groups: createServerGroupCache() };
    cache.views.set(options, views);
  }
  return views;
}

/** Relative to nginx's -p prefix, so that an unprivileged nginx owns them. */
const PREFIX_PATHS: RenderView['paths'] = {
  pid: '"nginx.pid"',
  clientBodyTemp: '"temp/client_body"',
  proxyTemp: '"temp/proxy"',
  fastcgiTemp: '"temp/fastcgi"',
  uwsgiTemp: '"temp/uwsgi"',
  scgiTemp: '"temp/scgi"',
};

/** Debian's defaults. */
const SYSTEM_PATHS: RenderView['paths'] = {
  pid: '"/run/nginx.pid"',
  clientBodyTemp: '"/var/lib/nginx/body"',
  proxyTemp: '"/var/lib/nginx/proxy"',
  fastcgiTemp: '"/var/lib/nginx/fastcgi"',
  uwsgiTemp: '"/var/lib/nginx/uwsgi"',
  scgiTemp: '"/var/lib/nginx/scgi"',
};

function upstreamView(upstream: Upstream, mode: HealthCheckMode): UpstreamView {
  const check = upstream.healthCheck;
  const passive = check && mode === 'passive' ? passiveParameters(check) : '';
  return {
    name: nginxToken(upstream.name),
    servers: upstream.servers.map((server) => ({
      address: nginxToken(server.address),
      parameters: server.weight === undefined ? passive : ` weight=${integer(server.weight)}${passive}`,
    })),
    check: check && mode === 'active' ? activeCheck(check) : null,
  };
}

/** Passive checks: a server is out for the probe's failure window after `fall` failures. */
function passiveParameters(check: HealthCheck): string {
  const failTimeoutSeconds = Math.ceil((check.intervalMs * check.fall) / 1000);
  return ` max_fails=${integer(check.fall)} fail_timeout=${integer(failTimeoutSeconds)}s`;
}

function activeCheck(check: HealthCheck): UpstreamView['check'] {
  return {
    type: check.type === 'tcp' ? 'tcp' : 'http',
    intervalMs: integer(check.intervalMs),
    timeoutMs: integer(check.timeoutMs),
    rise: integer(check.rise),
    fall: integer(check.fall),
    port: integer(check.port),
    httpSend:
      check.type === 'tcp' ? null : `"${escapeNginxString(`GET ${check.path ?? '/'} HTTP/1.0`)}\\r\\n\\r\\n"`,
  };
}

/** What every server view shares, computed once per render. */
interface ServerContext {
  plainListen: string;
  sslListen: string;
  apiKeyVariable: string;
  defaultLocation: DefaultLocationView;
}

function serverView(server: Server, context: ServerContext): ServerView {
  const host = quoteNginx(server.host);
  return {
    host,
    serverNames: host,
    listen: server.tls ? context.sslListen : context.plainListen,
    tls: server.tls ? tlsView(server.tls) : null,
    locations: server.locations.map((location) => ({
      path: quoteNginx(location.path),
      proxyPass: quoteNginx(`http://${nginxToken(location.upstream)}${location.targetPath ?? ''}`),
      apiKey: location.apiKey === undefined ? null : quoteNginx(location.apiKey),
      apiKeyVariable: context.apiKeyVariable,
      deny: location.deny === true,
    })),
    defaultLocation: server.defaultLocation ? context.defaultLocation : null,
  };
}

function tlsView(tls: ServerTls): TlsView {
  return {
    certificate: quoteNginx(tls.certificate),
    certificateKey: quoteNginx(tls.certificateKey),
    clientCertificate: tls.clientCertificate === undefined ? null : quoteNginx(tls.clientCertificate),
  };
}

// ------------------------------------------------------------------ server_names hash sizing

const POINTER_SIZE = 8;
const MIN_BUCKET_SIZE = 64;
const MIN_MAX_SIZE = 512;
/** Elements of the longest name one bucket must hold: keeps nginx's search short and warning-free. */
const NAMES_PER_BUCKET = 8;

/**
 * nginx stores each name in a bucket as a pointer plus the name and 2 bytes, aligned to a pointer;
 * each bucket ends with a null pointer. A bucket that holds NAMES_PER_BUCKET of the longest name and
 * a table size of twice the name count let nginx find a fitting size without the "could not build
 * optimal server_names_hash" warning (checked with `nginx -t` on 5,000 hosts in the render tests).
 */
function serverNamesHash(servers: Server[]): { maxSize: number; bucketSize: number } {
  let longest = 0;
  for (const server of servers) if (server.host.length > longest) longest = server.host.length;
  const element = POINTER_SIZE + Math.ceil((longest + 2) / POINTER_SIZE) * POINTER_SIZE;
  const bucketSize = Math.max(MIN_BUCKET_SIZE, nextPowerOfTwo(POINTER_SIZE + NAMES_PER_BUCKET * element));
  const maxSize = Math.max(MIN_MAX_SIZE, 2 * servers.length);
  return { maxSize, bucketSize };
}

function nextPowerOfTwo(n: number): number {
  let power = 1;
  while (power < n) power *= 2;
  return power;
}
