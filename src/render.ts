// Routing table + render options → nginx.conf, through the Handlebars templates in templates/.
// Pure: the templates are loaded by render/templates.ts, the view they see is built by
// render/view.ts with every value already quoted or sanitised (render/quoting.ts).
import { createHash } from 'node:crypto';
import type { Templates } from './render/templates.js';
import { createViewCache, VERSION_PLACEHOLDER, type ViewCache, viewOf } from './render/view.js';
import type { RenderOptions, RoutingTable } from './types.js';

const VERSION_LINE = /^# dispatcher config-version: ([0-9a-f]+)\r?$/;

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
  const views = viewCacheFor(templates, options);
  const text = templates.main(viewOf(table, options, views, templates.groupsHosts));
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

/** Views depend on the render options too: they are remembered per options object. */
function viewCacheFor(templates: Templates, options: RenderOptions): ViewCache {
  let views = templates.cache.views.get(options);
  if (!views) {
    views = createViewCache();
    templates.cache.views.set(options, views);
  }
  return views;
}
