// Prometheus metrics (prom-client) fed by the controller's observer hooks.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ControllerObserver } from '../controller.js';
import type { Diagnostic } from '../types.js';

export interface Metrics {
  registry: Registry;
  observer: ControllerObserver;
}

/**
 * A low-cardinality name for why something was left out: `conflict`, or the last word of the
 * field (`containerPort`, `basePath`, `ssl`, `hosts`...). Fields are written by our own code, so
 * the set is small; host names and paths never become label values.
 */
export function diagnosticCategory(d: Diagnostic): string {
  if (d.reason.startsWith('conflict')) return 'conflict';
  // Quoted parts are untrusted text (annotation keys, field names) and may hold escaped quotes.
  const word = /([A-Za-z]+)[^A-Za-z]*$/.exec(d.field.replace(/"(?:[^"\\]|\\.)*"/g, ''));
  return word?.[1] ?? 'other';
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const reloads = new Counter({
    name: 'dispatcher_reloads_total',
    help: 'nginx configuration changes, by result (success: checked, reloaded and confirmed served)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const lastSuccess = new Gauge({
    name: 'dispatcher_last_reload_success',
    help: '1 when the last configuration change was served, 0 when nginx refused it',
    registers: [registry],
  });
  const lastTimestamp = new Gauge({
    name: 'dispatcher_last_reload_timestamp_seconds',
    help: 'Unix time of the last configuration change attempt',
    registers: [registry],
  });
  const renderDuration = new Histogram({
    name: 'dispatcher_render_duration_seconds',
    help: 'Time to plan and render the whole configuration',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'dispatcher_batch_size',
    help: 'Routing changes gathered into one render',
    buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 5000],
    registers: [registry],
  });
  const events = new Counter({
    name: 'dispatcher_events_total',
    help: 'Events received from the source, by object kind and type',
    labelNames: ['kind', 'type'] as const,
    registers: [registry],
  });
  const gauge = (name: string, help: string) => new Gauge({ name, help, registers: [registry] });
  const namespaces = gauge('dispatcher_routable_namespaces', 'Routable namespaces');
  const pods = gauge('dispatcher_routable_pods', 'Routable pods in routable namespaces');
  const hosts = gauge('dispatcher_hosts', 'nginx servers (hosts) rendered');
  const locations = gauge('dispatcher_locations', 'nginx locations rendered');
  const upstreams = gauge('dispatcher_upstreams', 'nginx upstreams rendered');
  const skipped = new Gauge({
    name: 'dispatcher_skipped_entries',
    help: 'Objects or entries left out of the configuration, by reason category and severity',
    labelNames: ['reason', 'severity'] as const,
    registers: [registry],
  });
  const sourceProblems = new Counter({
    name: 'dispatcher_watch_restarts_total',
    help: 'Failed lists/watches the source recovered from by restarting, by object kind',
    labelNames: ['kind'] as const,
    registers: [registry],
  });

  const observer: ControllerObserver = {
    event(event) {
      events.inc({ kind: event.kind, type: event.type });
    },
    rendered(seconds, table, size) {
      renderDuration.observe(seconds);
      if (size > 0) batchSize.observe(size);
      namespaces.set(table.stats.namespaces);
      pods.set(table.stats.pods);
      hosts.set(table.servers.length);
      locations.set(table.servers.reduce((n, s) => n + s.locations.length, 0));
      upstreams.set(table.upstreams.length);
      skipped.reset();
      for (const d of table.diagnostics) skipped.inc({ reason: diagnosticCategory(d), severity: d.severity });
    },
    applied(result) {
      if (result.kind === 'unchanged') {
        // nginx already serves exactly the desired configuration: nothing is failing any more.
        lastSuccess.set(1);
        return;
      }
      const ok = result.kind === 'applied';
      reloads.inc({ result: ok ? 'success' : 'failure' });
      lastSuccess.set(ok ? 1 : 0);
      lastTimestamp.set(Date.now() / 1000);
    },
    sourceProblem(_what, detail) {
      sourceProblems.inc({ kind: typeof detail.kind === 'string' ? detail.kind : 'manifests' });
    },
  };
  lastSuccess.set(1);
  return { registry, observer };
}
