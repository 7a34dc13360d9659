// Template directories for tests and benchmarks that render with something other than the bundled
// templates.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A copy of the templates of `bundled` with `from` replaced by `to` in `file`. The caller removes it. */
function editedTemplatesDir(bundled: string, file: string, from: string, to: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dispatcher-templates-'));
  cpSync(bundled, dir, { recursive: true });
  const path = join(dir, file);
  const text = readFileSync(path, 'utf8');
  if (!text.includes(from)) throw new Error(`${path} has no ${from}`);
  writeFileSync(path, text.replace(from, to));
  return dir;
}

/**
 * A copy of the templates of `bundled` whose servers are named by `serverNames`: hosts that route
 * alike share one server block (README, "nginx's own time at scale"). The caller removes it.
 */
export function groupingTemplatesDir(bundled: string): string {
  return editedTemplatesDir(
    bundled,
    join('partials', 'server.hbs'),
    'server_name {{host}};',
    'server_name {{serverNames}};',
  );
}

/**
 * A copy of the templates of `bundled` whose nginx logs notices too (signals received, workers
 * started and exiting), which dispatcher passes on as log lines. The caller removes it.
 */
export function noticeLogTemplatesDir(bundled: string): string {
  return editedTemplatesDir(bundled, 'nginx.conf.hbs', 'error_log stderr;', 'error_log stderr notice;');
}
