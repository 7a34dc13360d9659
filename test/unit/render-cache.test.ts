// What the plan and render caches reuse, and what they must not: a batch that changes one namespace
// hands back the other namespaces' objects, and a user's template that reads an item's position is
// rendered afresh, not from a remembered text.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderOptionsFrom, storeFor } from '../../src/pipeline.js';
import { createPlanCache, plan, planOptionsFrom } from '../../src/plan.js';
import { loadTemplates } from '../../src/render/templates.js';
import { render } from '../../src/render.js';
import type { KubeObject, ObjectKind, RoutingTable } from '../../src/types.js';
import { app, ns, testConfig } from '../support/cluster.js';

const config = testConfig();
const planOptions = planOptionsFrom(config);
const renderOptions = renderOptionsFrom(config, { healthChecks: 'passive', prefixRelativePaths: true });

/** A store, its plan cache, and a way to change objects and plan again. */
function cluster(objects: KubeObject[]) {
  const store = storeFor(config);
  const cache = createPlanCache();
  const apply = (type: 'added' | 'deleted', object: KubeObject): void => {
    store.apply({ type, kind: object.kind as ObjectKind, object });
  };
  for (const object of objects) apply('added', object);
  return {
    apply,
    plan: (): RoutingTable => plan(store.snapshot(), planOptions, cache),
  };
}

const namespaces = ['alpha', 'beta', 'gamma'].map((name) => ns(name, { [`${name}.example.com`]: {} }));
const pods = [
  app('alpha', 'a-1', '10.0.0.1', [{ basePath: '/', containerPort: '3000' }]),
  app('beta', 'b-1', '10.0.1.1', [{ basePath: '/', containerPort: '3000' }]),
  app('gamma', 'g-1', '10.0.2.1', [{ basePath: '/', containerPort: '3000' }]),
];

describe('plan cache', () => {
  it('gives back the objects of namespaces a batch did not change', () => {
    const c = cluster([...namespaces, ...pods]);
    const before = c.plan();
    c.apply('added', app('beta', 'b-2', '10.0.1.2', [{ basePath: '/', containerPort: '3000' }]));
    const after = c.plan();

    const server = (table: RoutingTable, host: string) => table.servers.find((s) => s.host === host);
    const upstream = (table: RoutingTable, namespace: string) =>
      table.upstreams.find((u) => u.namespace === namespace);
    expect(server(after, 'alpha.example.com')).toBe(server(before, 'alpha.example.com'));
    expect(upstream(after, 'gamma')).toBe(upstream(before, 'gamma'));
    expect(server(after, 'beta.example.com')).not.toBe(server(before, 'beta.example.com'));
    expect(upstream(after, 'beta')?.servers.map((s) => s.address)).toEqual([
      '10.0.1.1:3000',
      '10.0.1.2:3000',
    ]);
  });

  it('re-plans a namespace whose API key changed though its pods did not', () => {
    const key = (value: string): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'alpha', name: 'routing' },
      data: { 'api-key': Buffer.from(value).toString('base64') },
    });
    const c = cluster([...namespaces, ...pods, key('one')]);
    expect(c.plan().servers[0]?.locations[0]?.apiKey).toBe(Buffer.from('one').toString('base64'));
    c.apply('added', key('two'));
    expect(c.plan().servers[0]?.locations[0]?.apiKey).toBe(Buffer.from('two').toString('base64'));
  });
});

describe('render cache and templates that read an item position', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  function templatesWith(main: string) {
    const dir = mkdtempSync(join(tmpdir(), 'dispatcher-cache-templates-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'partials'));
    writeFileSync(join(dir, 'nginx.conf.hbs'), `# dispatcher config-version: {{version}}\n${main}`);
    return loadTemplates(dir);
  }

  it('renders @index and @last from the current list, not from a remembered text', () => {
    const templates = templatesWith(
      '{{#each upstreams}}{{@index}}={{name}}{{#unless @last}},{{/unless}}{{/each}}\n',
    );
    const c = cluster([...namespaces.slice(1), ...pods.slice(1)]);
    // Upstream names are `<namespace>__root__<hash>`: keep the namespace.
    const body = (table: RoutingTable) =>
      render(templates, table, renderOptions)
        .split('\n')[1]
        ?.replace(/__root__[0-9a-f]+/g, '');
    expect(body(c.plan())).toBe('0=beta,1=gamma');
    c.apply('added', namespaces[0] as KubeObject);
    c.apply('added', pods[0] as KubeObject);
    expect(body(c.plan())).toBe('0=alpha,1=beta,2=gamma');
    c.apply('deleted', pods[2] as KubeObject);
    expect(body(c.plan())).toBe('0=alpha,1=beta');
  });

  it('renders an item from its own fields after its namespace changed', () => {
    const templates = templatesWith(
      '{{#each upstreams}}{{name}}:{{#each servers}}{{address}};{{/each}}\n{{/each}}',
    );
    const c = cluster([...namespaces, ...pods]);
    render(templates, c.plan(), renderOptions);
    c.apply('added', app('gamma', 'g-1', '10.0.2.9', [{ basePath: '/', containerPort: '3000' }]));
    expect(render(templates, c.plan(), renderOptions)).toContain(':10.0.2.9:3000;\n');
  });
});

describe('render cache and hosts that share a block (server_name {{serverNames}})', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dispatcher-grouping-templates-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'partials'));
  writeFileSync(
    join(dir, 'nginx.conf.hbs'),
    '# dispatcher config-version: {{version}}\n{{#each servers}}server_name {{serverNames}};{{#each locations}} {{path}}{{/each}}\n{{/each}}',
  );
  const twoHosts = (name: string) => ns(name, { [`${name}.example.com`]: {}, [`${name}.internal`]: {} });
  const lines = (text: string) => text.split('\n').slice(1, -1);

  it('re-groups hosts after a change, as a render without cache does', () => {
    const templates = loadTemplates(dir);
    const c = cluster([twoHosts('alpha'), twoHosts('beta'), pods[0] as KubeObject, pods[1] as KubeObject]);
    /** The lines of a render with the long-lived caches, once it is shown to equal a fresh render. */
    const rendered = (): string[] => {
      const table = c.plan();
      const text = render(templates, table, renderOptions);
      expect(text).toBe(render(loadTemplates(dir), table, renderOptions));
      return lines(text);
    };
    // Each namespace's hosts share a block; the two namespaces' `/` go to their own upstreams.
    expect(rendered()).toEqual([
      'server_name "alpha.example.com" "alpha.internal"; "/"',
      'server_name "beta.example.com" "beta.internal"; "/"',
    ]);
    // beta's pod moves to /api: beta's block changes, alpha's is the remembered one.
    c.apply('added', app('beta', 'b-1', '10.0.1.1', [{ basePath: '/api', containerPort: '3000' }]));
    expect(rendered()).toEqual([
      'server_name "alpha.example.com" "alpha.internal"; "/"',
      'server_name "beta.example.com" "beta.internal"; "/api"',
    ]);
    // beta loses its pods: its hosts only answer the default location.
    c.apply('deleted', app('beta', 'b-1', '10.0.1.1', [{ basePath: '/api', containerPort: '3000' }]));
    expect(rendered()).toEqual([
      'server_name "alpha.example.com" "alpha.internal"; "/"',
      'server_name "beta.example.com" "beta.internal";',
    ]);
  });

  it('remembers a shared block by its members, not by its first host alone', () => {
    const templates = loadTemplates(dir);
    // Namespaces without pods: their hosts only answer the default location, alike.
    const empty = ['a', 'b', 'c'].map((name) => ns(`empty-${name}`, { [`${name}.test`]: {} }));
    const c = cluster(empty);
    expect(lines(render(templates, c.plan(), renderOptions))).toEqual([
      'server_name "a.test" "b.test" "c.test";',
    ]);
    c.apply('added', app('empty-c', 'c-1', '10.0.3.1', [{ basePath: '/', containerPort: '3000' }]));
    const table = c.plan();
    const text = render(templates, table, renderOptions);
    expect(text).toBe(render(loadTemplates(dir), table, renderOptions));
    expect(lines(text)).toEqual(['server_name "a.test" "b.test";', 'server_name "c.test"; "/"']);
  });
});
