// Loads and compiles a templates directory (nginx.conf.hbs and partials/*.hbs) into a Handlebars
// instance of its own. The only I/O of rendering; errors name the file and line.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import type { RenderOptions } from '../types.js';
import { type BlockMemos, joiningEach, markMemoizedBlocks } from './memoized-each.js';
import { escapeNginxString, nginxToken, quoteNginx } from './quoting.js';
import type { RenderView, ViewCache } from './view.js';

const MAIN_TEMPLATE = 'nginx.conf.hbs';
const PARTIALS_DIR = 'partials';

/** The templates shipped with dispatcher: `templates/` at the package root, from src/render/ or dist/src/render/. */
export const bundledTemplatesDir: string = (() => {
  const sourceDir = dirname(dirname(fileURLToPath(import.meta.url)));
  const packageRoot =
    basename(dirname(sourceDir)) === 'dist' ? resolve(sourceDir, '..', '..') : resolve(sourceDir, '..');
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
  blocks: BlockMemos;
}

function createRenderCache(): RenderCache {
  return { views: new WeakMap(), blocks: new Map() };
}

function createInstance(cache: RenderCache): typeof Handlebars {
  const instance = Handlebars.create();
  instance.registerHelper('quote', (value: unknown) => quoteNginx(value));
  instance.registerHelper('escape', (value: unknown) => escapeNginxString(value));
  instance.registerHelper('token', (value: unknown) => nginxToken(value));
  instance.registerHelper('each', joiningEach(instance, cache.blocks));
  return instance;
}

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
