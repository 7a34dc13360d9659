// The `each` of dispatcher's Handlebars instances: it joins the items' text, and it remembers the
// text of an item whose block depends on the item alone, so that a render costs what changed. The
// blocks it may remember are marked in the templates' syntax trees when they are loaded.
import type Handlebars from 'handlebars';

/** Per memoized `each` block (see markMemoizedBlocks): the text each item made, by item identity. */
export type BlockMemos = Map<string, WeakMap<object, string>>;

/**
 * The built-in `each`, except that over a non-empty array it joins the items' output instead of
 * concatenating it one by one: the text of a large table is then a few flat strings rather than a
 * rope of hundreds of thousands of pieces, which halves the time spent in garbage collection and in
 * hashing. Same data (@index, @key, @first, @last) and block parameters; anything else goes to the
 * built-in.
 */
export function joiningEach(instance: typeof Handlebars, blocks: BlockMemos): Handlebars.HelperDelegate {
  const builtin = instance.helpers.each as Handlebars.HelperDelegate;
  return function each(this: unknown, items: unknown, options: Handlebars.HelperOptions): string {
    if (!Array.isArray(items) || items.length === 0) return builtin.call(this, items, options);
    const memoKey = (options.hash as Record<string, unknown> | undefined)?.[MEMO_HASH_KEY];
    const memo = typeof memoKey === 'string' ? blockMemo(blocks, memoKey) : undefined;
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

function blockMemo(blocks: BlockMemos, key: string): WeakMap<object, string> {
  let memo = blocks.get(key);
  if (!memo) {
    memo = new WeakMap();
    blocks.set(key, memo);
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
export function markMemoizedBlocks(
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
