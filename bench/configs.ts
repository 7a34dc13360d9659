// dispatcher's own pipeline (store → plan → render) in the bench process, for the figures that need a
// rendered configuration without a live controller, and the hand-written configurations compared
// against it.
import { loadConfig } from '../src/config.js';
import { renderOptionsFrom, storeFor } from '../src/pipeline.js';
import { createPlanCache, type PlanCache, plan, planOptionsFrom } from '../src/plan.js';
import { loadTemplates, type Templates } from '../src/render/templates.js';
import { render } from '../src/render.js';
import type { Store } from '../src/store.js';
import type { Config, RenderOptions, RoutingTable } from '../src/types.js';
import { allObjects, type Cluster } from './workload.js';

/** The configuration loadConfig makes of `env` (defaults otherwise); throws on an invalid value. */
export function benchConfig(env: Record<string, string> = {}): Config {
  const loaded = loadConfig(env);
  if (!loaded.ok) throw new Error(`invalid bench configuration: ${loaded.errors.join('; ')}`);
  return loaded.config;
}

export interface Pipeline {
  config: Config;
  templates: Templates;
  renderOptions: RenderOptions;
  store: Store;
  /** The plan cache the pipeline keeps between renders, as the controller does. */
  planCache: PlanCache;
  /** What the controller does at the end of a batch window: snapshot, plan, render. */
  renderNow(): { table: RoutingTable; text: string };
}

/**
 * A store holding every object of `cluster`, rendering for an nginx under a private prefix on `port`,
 * with the bundled templates or those of `templatesDir`.
 */
export function pipelineFor(cluster: Cluster, port: number, templatesDir?: string): Pipeline {
  const config = benchConfig({ PORT: String(port), ...(templatesDir && { TEMPLATES_DIR: templatesDir }) });
  const templates = loadTemplates(config.templatesDir);
  const renderOptions = renderOptionsFrom(config, { healthChecks: 'passive', prefixRelativePaths: true });
  const store = storeFor(config);
  for (const object of allObjects(cluster)) store.apply({ type: 'added', kind: object.kind, object });
  const planOptions = planOptionsFrom(config);
  const planCache = createPlanCache();
  return {
    config,
    templates,
    renderOptions,
    store,
    planCache,
    renderNow() {
      const table = plan(store.snapshot(), planOptions, planCache);
      return { table, text: render(templates, table, renderOptions) };
    },
  };
}

/** The configuration with another version: the same text to parse, a new version to wait for. */
export function withVersion(text: string, version: string): string {
  const current = /^# dispatcher config-version: ([0-9a-f]+)/.exec(text)?.[1];
  if (current === undefined) throw new Error('the configuration carries no version');
  return text.split(current).join(version);
}

/** 16 hex digits, different at every call. */
export function freshVersion(): string {
  freshVersion.counter += 1;
  return (Date.now() * 1000 + freshVersion.counter).toString(16).padStart(16, '0').slice(-16);
}
freshVersion.counter = 0;
