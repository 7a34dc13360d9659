// TEMPLATES_DIR watched: an edit is loaded and, when it compiles, triggers a re-render that goes
// through the same `nginx -t` safety net as any other change. A broken edit keeps the last good
// templates and says which file and line.
import { watch } from 'chokidar';
import type { Logger } from './log.js';
import { loadTemplates, type Templates } from './render/templates.js';

export interface TemplateHolder {
  current(): Templates;
  close(): Promise<void>;
}

export function watchTemplates(
  dir: string,
  initial: Templates,
  logger: Logger,
  onChange: () => void,
): TemplateHolder {
  let templates = initial;
  const watcher = watch(dir, {
    ignoreInitial: true,
    awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 10 },
  });
  const reload = (): void => {
    try {
      templates = loadTemplates(dir);
      logger.info({ dir }, 'templates reloaded');
      onChange();
    } catch (error) {
      logger.error(
        { dir, reason: (error as Error).message },
        'templates not reloaded; the previous ones stay in use',
      );
    }
  };
  watcher.on('add', reload).on('change', reload).on('unlink', reload);
  return { current: () => templates, close: () => watcher.close() };
}
