// Template directories for tests and benchmarks that render with something other than the bundled
// templates.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A copy of the templates of `bundled` whose servers are named by `serverNames`: hosts that route
 * alike share one server block (README, "nginx's own time at scale"). The caller removes it.
 */
export function groupingTemplatesDir(bundled: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dispatcher-grouping-templates-'));
  cpSync(bundled, dir, { recursive: true });
  const server = join(dir, 'partials', 'server.hbs');
  const text = readFileSync(server, 'utf8');
  if (!text.includes('server_name {{host}};')) throw new Error(`${server} has no server_name {{host}};`);
  writeFileSync(server, text.replace('server_name {{host}};', 'server_name {{serverNames}};'));
  return dir;
}
