#!/usr/bin/env node
// The command: reads flags and environment, then runs once or as a live controller.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { helpText, parseArgs } from './cli-args.js';
import { loadConfig } from './config.js';
import { createLogger } from './log.js';
import { loadTemplates, type Templates } from './render/templates.js';
import { EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, type Running, startRun } from './run.js';

/**
 * How much the old generation may grow past what the last full GC kept before V8 collects again.
 * On a host with much memory V8 allows up to 300%, which after the initial list of ten thousand
 * pods (mostly short-lived page data) left the controller at 3-4 times its live heap. Its heap is
 * a long-lived model of the cluster plus short-lived garbage: 20% keeps the RSS near what it holds,
 * for more frequent (incremental, mostly concurrent) marking. V8 reads this at every full GC, so
 * setting it at run time works; the young generation's size cannot be (see the Dockerfile).
 */
export const HEAP_GROWING_PERCENT = 20;

/** Process-wide V8 settings of a controller: the entry point applies them first thing. */
export function tuneHeap(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`dispatcher: ${parsed.error}\nRun dispatcher --help for usage.\n`);
    return EXIT_CONFIG;
  }
  if (parsed.args.help) {
    process.stdout.write(helpText());
    return EXIT_OK;
  }
  const loaded = loadConfig(env);
  if (!loaded.ok) {
    for (const error of loaded.errors) process.stderr.write(`dispatcher: ${error}\n`);
    return EXIT_CONFIG;
  }
  const config = loaded.config;
  let templates: Templates;
  try {
    templates = loadTemplates(config.templatesDir);
  } catch (error) {
    process.stderr.write(
      `dispatcher: invalid TEMPLATES_DIR=${JSON.stringify(config.templatesDir)}: ${(error as Error).message}\n`,
    );
    return EXIT_CONFIG;
  }
  const logger = createLogger(config.logLevel);
  // Signals are handled from the start: a SIGTERM while the first list is pending still ends the run.
  let running: Running | undefined;
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'shutting down');
    signalled = true;
    void running?.shutdown();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const started = await startRun({
      args: parsed.args,
      config,
      env,
      logger,
      templates: () => templates,
      print: (text) => process.stdout.write(text),
      onRunning: (handle) => {
        running = handle;
        if (signalled) void handle.shutdown();
      },
    });
    return await started.done;
  } catch (error) {
    // nginx could not start (bad binary, port taken, configuration refused): nothing to run.
    logger.fatal({ reason: error instanceof Error ? error.message : String(error) }, 'cannot start');
    return EXIT_RUNTIME;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  tuneHeap();
  main(process.argv.slice(2), process.env).then(
    (code) => {
      // Let stdout drain (a configuration piped elsewhere); force the exit if a handle lingers.
      process.exitCode = code;
      setTimeout(() => process.exit(code), 5000).unref();
    },
    (error: unknown) => {
      process.stderr.write(`dispatcher: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(EXIT_RUNTIME);
    },
  );
}
