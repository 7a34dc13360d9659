// The deployment artifacts read as Kubernetes and Docker would read them: examples/*.yaml as
// Kubernetes objects whose environment dispatcher accepts, and the Dockerfile as stages whose inputs
// exist and whose entry point is what `npm run build` produces.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseArgs } from '../../src/cli-args.js';
import { loadConfig, VARIABLES } from '../../src/config.js';
import type { Config } from '../../src/types.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const VARIABLE_NAMES = new Set(VARIABLES.map((v) => v.name));
const defaultOf = (name: string): string | undefined => VARIABLES.find((v) => v.name === name)?.default;

// ---------------------------------------------------------------- Kubernetes objects

interface EnvVar {
  name?: string;
  value?: unknown;
  valueFrom?: unknown;
}
interface ContainerPort {
  name?: string;
  containerPort?: number;
  hostPort?: number;
  protocol?: string;
}
interface Probe {
  httpGet?: { path?: string; port?: number | string };
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
}
interface Container {
  name?: string;
  image?: string;
  ports?: ContainerPort[];
  env?: EnvVar[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: { name?: string; mountPath?: string; readOnly?: boolean }[];
}
interface Volume {
  name?: string;
  emptyDir?: object;
  secret?: { secretName?: string };
}
interface PodSpec {
  serviceAccountName?: string;
  securityContext?: SecurityContext & { sysctls?: { name?: string; value?: string }[] };
  containers?: Container[];
  volumes?: Volume[];
}
interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs?: string[];
  nonResourceURLs?: string[];
}
interface KubeManifest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: {
    selector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
    template?: { metadata?: { labels?: Record<string, string> }; spec?: PodSpec };
  };
  rules?: PolicyRule[];
  roleRef?: { apiGroup?: string; kind?: string; name?: string };
  subjects?: { kind?: string; name?: string; namespace?: string }[];
}

/** The kinds the examples may use, and whether objects of that kind live in a namespace. */
const KNOWN_KINDS: Record<string, 'namespaced' | 'cluster'> = {
  'v1 Namespace': 'cluster',
  'v1 ServiceAccount': 'namespaced',
  'apps/v1 DaemonSet': 'namespaced',
  'rbac.authorization.k8s.io/v1 ClusterRole': 'cluster',
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding': 'cluster',
};

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PORT_NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const exampleFiles = readdirSync(join(ROOT, 'examples'))
  .filter((name) => name.endsWith('.yaml') || name.endsWith('.yml'))
  .sort();

/** YAML 1.1, as kubectl reads it (0440 is octal, `yes` is a boolean). */
function parseManifests(file: string): { objects: KubeManifest[]; errors: string[] } {
  const docs = parseAllDocuments(read(join('examples', file)), { version: '1.1' });
  const list = Array.isArray(docs) ? docs : [docs];
  const errors = list.flatMap((doc) => doc.errors.map((e) => e.message));
  const objects = list.map((doc) => doc.toJS() as unknown).filter((o) => o !== null && o !== undefined);
  return { objects: objects as KubeManifest[], errors };
}

const manifests = exampleFiles.map((file) => ({ file, ...parseManifests(file) }));
const allObjects = manifests.flatMap(({ file, objects }) => objects.map((object) => ({ file, object })));
const ofKind = (kind: string): KubeManifest[] =>
  allObjects.filter(({ object }) => object.kind === kind).map(({ object }) => object);
const daemonSets = allObjects.filter(({ object }) => object.kind === 'DaemonSet');
const daemonSetIn = (file: string): KubeManifest => {
  const found = daemonSets.find((d) => d.file === file);
  if (!found) throw new Error(`no DaemonSet in examples/${file}`);
  return found.object;
};
const podSpec = (ds: KubeManifest): PodSpec => ds.spec?.template?.spec ?? {};
const containersOf = (ds: KubeManifest): Container[] => podSpec(ds).containers ?? [];

/** The container's literal environment (valueFrom entries cannot be known here and are left out). */
function literalEnv(container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of container.env ?? []) {
    if (entry.name !== undefined && typeof entry.value === 'string') env[entry.name] = entry.value;
  }
  return env;
}

/** What dispatcher makes of the container's environment; SSL_CERT/SSL_KEY are taken to exist. */
function configOf(container: Container): Config {
  const loaded = loadConfig(literalEnv(container), () => true);
  if (!loaded.ok) throw new Error(`${container.name}: ${loaded.errors.join('; ')}`);
  return loaded.config;
}

function resolveProbePort(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number')
    return container.ports?.some((p) => p.containerPort === port) ? port : undefined;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** The volume mounted at `path` or at its closest mounted ancestor. */
function mountHolding(container: Container, path: string) {
  const holding = (container.volumeMounts ?? []).filter(
    (m) => m.mountPath !== undefined && (path === m.mountPath || path.startsWith(`${m.mountPath}/`)),
  );
  return holding.sort((a, b) => (b.mountPath?.length ?? 0) - (a.mountPath?.length ?? 0))[0];
}

function effectiveSecurity(ds: KubeManifest, container: Container): SecurityContext {
  return { ...podSpec(ds).securityContext, ...container.securityContext };
}

describe('examples/*.yaml', () => {
  it('has the deployment examples SPEC section 8 lists', () => {
    expect(exampleFiles).toEqual(
      expect.arrayContaining([
        'ingress-daemonset.yaml',
        'multipurpose-router-daemonset.yaml',
        'namespace.yaml',
        'rbac.yaml',
      ]),
    );
  });

  it.each(manifests)('$file parses as YAML into objects of known kinds', ({ objects, errors }) => {
    expect(errors).toEqual([]);
    expect(objects.length).toBeGreaterThan(0);
    const namespaces = new Set(ofKind('Namespace').map((n) => n.metadata?.name));
    for (const object of objects) {
      const key = `${object.apiVersion} ${object.kind}`;
      expect(Object.keys(KNOWN_KINDS), key).toContain(key);
      const name = object.metadata?.name ?? '';
      expect(name, key).toMatch(DNS_SUBDOMAIN);
      if (KNOWN_KINDS[key] === 'namespaced') {
        expect(namespaces, `${key} ${name} is in a namespace the examples create`).toContain(
          object.metadata?.namespace,
        );
      } else {
        expect(object.metadata?.namespace, `${key} ${name} is cluster-scoped`).toBeUndefined();
      }
    }
  });

  it('names each object once per kind and namespace', () => {
    const keys = allObjects.map(
      ({ object }) => `${object.kind}/${object.metadata?.namespace ?? ''}/${object.metadata?.name}`,
    );
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe.each(daemonSets.map(({ file, object }) => ({ file, ds: object })))(
  'DaemonSet in $file',
  ({ ds }) => {
    const containers = containersOf(ds);

    it('selects the pods its template makes', () => {
      const matchLabels = ds.spec?.selector?.matchLabels ?? {};
      expect(Object.keys(matchLabels).length).toBeGreaterThan(0);
      expect(ds.spec?.selector?.matchExpressions).toBeUndefined();
      expect(ds.spec?.template?.metadata?.labels).toMatchObject(matchLabels);
    });

    it('runs under a ServiceAccount of its namespace that the ClusterRoleBinding binds', () => {
      const account = podSpec(ds).serviceAccountName;
      const namespace = ds.metadata?.namespace;
      expect(account).toBeDefined();
      expect(
        ofKind('ServiceAccount').some(
          (sa) => sa.metadata?.name === account && sa.metadata?.namespace === namespace,
        ),
      ).toBe(true);
      const bound = ofKind('ClusterRoleBinding').flatMap((b) => b.subjects ?? []);
      expect(bound).toContainEqual({ kind: 'ServiceAccount', name: account, namespace });
    });

    it('gives every container a name and a pinned image', () => {
      expect(containers.length).toBeGreaterThan(0);
      const names = containers.map((c) => c.name);
      expect(new Set(names).size).toBe(names.length);
      for (const container of containers) {
        expect(container.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
        expect(container.image, container.name).toMatch(/^[^\s:]+:[\w][\w.-]*$/);
        expect(container.image, container.name).not.toMatch(/:latest$/);
      }
    });

    it('declares each port once in the pod, with valid names', () => {
      const ports = containers.flatMap((c) => c.ports ?? []);
      const numbers = ports.map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`);
      expect(new Set(numbers).size, numbers.join(' ')).toBe(numbers.length);
      const hostPorts = ports.filter((p) => p.hostPort !== undefined).map((p) => p.hostPort);
      expect(new Set(hostPorts).size).toBe(hostPorts.length);
      const names = ports.map((p) => p.name).filter((n) => n !== undefined);
      expect(new Set(names).size).toBe(names.length);
      for (const name of names) {
        expect(name.length, name).toBeLessThanOrEqual(15);
        expect(name).toMatch(PORT_NAME);
      }
    });

    it.each(containers.map((c) => ({ name: c.name, container: c })))(
      'sets only variables dispatcher reads, to values it accepts ($name)',
      ({ container }) => {
        const names = (container.env ?? []).map((e) => e.name ?? '');
        expect(new Set(names).size).toBe(names.length);
        for (const entry of container.env ?? []) {
          expect(VARIABLE_NAMES, `${entry.name} is one of VARIABLES`).toContain(entry.name);
          if (entry.valueFrom === undefined)
            expect(typeof entry.value, `${entry.name} is a string`).toBe('string');
        }
        const loaded = loadConfig(literalEnv(container), () => true);
        expect(loaded.ok ? [] : loaded.errors).toEqual([]);
      },
    );

    it.each(containers.map((c) => ({ name: c.name, container: c })))(
      'declares the ports its dispatcher listens on, probes included ($name)',
      ({ container }) => {
        const config = configOf(container);
        const declared = (container.ports ?? []).map((p) => p.containerPort);
        expect(declared).toContain(config.port);
        if (config.sslCert !== undefined) expect(declared).toContain(config.sslPort);
        expect(declared).toContain(config.adminPort);
        const probes = [
          ['livenessProbe', container.livenessProbe, '/healthz'],
          ['readinessProbe', container.readinessProbe, '/readyz'],
        ] as const;
        for (const [field, probe, path] of probes) {
          expect(probe?.httpGet?.path, field).toBe(path);
          expect(resolveProbePort(container, probe?.httpGet?.port), field).toBe(config.adminPort);
        }
      },
    );

    it.each(containers.map((c) => ({ name: c.name, container: c })))(
      'runs unprivileged without any capability, low ports allowed by the pod sysctl ($name)',
      ({ container }) => {
        const security = effectiveSecurity(ds, container);
        expect(security.runAsNonRoot).toBe(true);
        expect(security.runAsUser).toBe(imageUser().uid);
        expect(security.capabilities?.drop).toEqual(['ALL']);
        expect(security.capabilities?.add ?? []).toEqual([]);
        expect(security.allowPrivilegeEscalation).toBe(false);
        const config = configOf(container);
        const lowest = Math.min(config.port, ...(config.sslCert ? [config.sslPort] : []));
        // dispatcher itself opens PORT and SSL_PORT to hand them to each nginx master (handover):
        // node has no file capability, so the pod must let unprivileged processes bind them.
        const start = podSpec(ds).securityContext?.sysctls?.find(
          (s) => s.name === 'net.ipv4.ip_unprivileged_port_start',
        )?.value;
        expect(config.nginxReload).toBe('handover');
        expect(Number(start ?? 1024)).toBeLessThanOrEqual(lowest);
        expect(container.resources?.requests?.memory).toBeDefined();
        expect(container.resources?.limits?.memory).toBeDefined();
      },
    );

    it.each(containers.map((c) => ({ name: c.name, container: c })))(
      'writes only to its emptyDir volumes and reads the SSL pair from a secret ($name)',
      ({ container }) => {
        const config = configOf(container);
        const volumes = new Map((podSpec(ds).volumes ?? []).map((v) => [v.name, v]));
        for (const mount of container.volumeMounts ?? []) expect(volumes.has(mount.name)).toBe(true);
        if (effectiveSecurity(ds, container).readOnlyRootFilesystem === true) {
          // Without NGINX_PREFIX, nginx's pid and temp files would go to the read-only /run and /var/lib.
          expect(config.nginxPrefix).toBeDefined();
          for (const path of [dirname(config.nginxConf), config.nginxPrefix ?? '', config.sslCertDir]) {
            const mount = mountHolding(container, path);
            expect(mount, path).toBeDefined();
            expect(mount?.readOnly ?? false, path).toBe(false);
            expect(volumes.get(mount?.name)?.emptyDir, path).toBeDefined();
          }
        }
        for (const path of [config.sslCert, config.sslKey]) {
          if (path === undefined) continue;
          expect(volumes.get(mountHolding(container, path)?.name)?.secret?.secretName, path).toBeDefined();
        }
      },
    );
  },
);

describe('the multipurpose router (examples/multipurpose-router-daemonset.yaml)', () => {
  const ds = daemonSetIn('multipurpose-router-daemonset.yaml');
  const byName = (name: string): Container => {
    const found = containersOf(ds).find((c) => c.name === name);
    if (!found) throw new Error(`no container ${name}`);
    return found;
  };

  it('runs a public and a private dispatcher, as enrober provisions them', () => {
    expect(containersOf(ds).map((c) => c.name)).toEqual(['public', 'private']);
    const pub = configOf(byName('public'));
    const priv = configOf(byName('private'));
    expect(pub).toMatchObject({
      hostsAnnotation: 'github.com/30x.dispatcher.hosts.public',
      pathsAnnotation: 'github.com/30x.dispatcher.paths.public',
      apiKeySecretName: 'routing',
      apiKeySecretField: 'public-api-key',
      port: 80,
    });
    expect(priv).toMatchObject({
      hostsAnnotation: 'github.com/30x.dispatcher.hosts.private',
      pathsAnnotation: 'github.com/30x.dispatcher.paths.private',
      apiKeySecretName: 'routing',
      apiKeySecretField: 'private-api-key',
      port: 81,
    });
  });

  it('keeps the two from colliding: distinct ports, files and volumes', () => {
    const [pub, priv] = [byName('public'), byName('private')];
    const [a, b] = [configOf(pub), configOf(priv)];
    for (const field of ['port', 'sslPort', 'adminPort', 'nginxConf', 'nginxPrefix', 'sslCertDir'] as const) {
      expect(a[field], field).toBeDefined();
      expect(a[field], field).not.toEqual(b[field]);
    }
    // Both listen in the pod's one network namespace: no port of one may be a port of the other.
    const portsOf = (c: Config) => [c.port, c.sslPort, c.adminPort];
    expect(portsOf(a).filter((p) => portsOf(b).includes(p))).toEqual([]);
    const written = (container: Container, config: Config) =>
      [dirname(config.nginxConf), config.nginxPrefix ?? '', config.sslCertDir].map(
        (path) => mountHolding(container, path)?.name,
      );
    const publicVolumes = written(pub, a);
    expect(written(priv, b).filter((name) => publicVolumes.includes(name))).toEqual([]);
  });
});

describe('RBAC (examples/rbac.yaml)', () => {
  const roles = ofKind('ClusterRole');
  const bindings = ofKind('ClusterRoleBinding');

  it('grants exactly get, list and watch on namespaces, pods and secrets', () => {
    expect(roles).toHaveLength(1);
    const rules = roles[0]?.rules ?? [];
    expect(rules.length).toBeGreaterThan(0);
    const resources = new Set<string>();
    for (const rule of rules) {
      expect(rule.nonResourceURLs).toBeUndefined();
      expect(rule.apiGroups).toEqual(['']);
      expect([...(rule.verbs ?? [])].sort()).toEqual(['get', 'list', 'watch']);
      for (const resource of rule.resources ?? []) resources.add(resource);
      expect(JSON.stringify(rule)).not.toContain('*');
    }
    expect([...resources].sort()).toEqual(['namespaces', 'pods', 'secrets']);
  });

  it('lets every dispatcher read its routing secrets, and no other secret', () => {
    const rules = roles[0]?.rules ?? [];
    const secretRules = rules.filter((r) => r.resources?.includes('secrets'));
    expect(secretRules).toHaveLength(1);
    expect(secretRules[0]?.resources).toEqual(['secrets']);
    const secretNames = new Set(
      daemonSets.flatMap(({ object }) => containersOf(object).map((c) => configOf(c).apiKeySecretName)),
    );
    expect([...(secretRules[0]?.resourceNames ?? [])].sort()).toEqual([...secretNames].sort());
    // Namespaces and pods are found by label selector: they cannot be named in advance.
    for (const rule of rules.filter((r) => r !== secretRules[0])) expect(rule.resourceNames).toBeUndefined();
  });

  it('binds that role to the ServiceAccount the DaemonSets run as', () => {
    expect(bindings).toHaveLength(1);
    const binding = bindings[0];
    expect(binding?.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: roles[0]?.metadata?.name,
    });
    const accounts = new Set(
      daemonSets.map(({ object }) => `${object.metadata?.namespace}/${podSpec(object).serviceAccountName}`),
    );
    const subjects = new Set((binding?.subjects ?? []).map((s) => `${s.namespace}/${s.name}`));
    expect(subjects).toEqual(accounts);
  });
});

// ---------------------------------------------------------------- Dockerfile

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  index: number;
  image: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions with continuation lines joined; comment and blank lines dropped, as Docker does. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let current = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    if (/^\s*#/.test(raw) || raw.trim() === '') return;
    if (current === '') start = i + 1;
    if (/\\\s*$/.test(raw)) {
      current += `${raw.replace(/\\\s*$/, '')} `;
      return;
    }
    current += raw;
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(current);
    if (!match) throw new Error(`Dockerfile line ${start}: cannot parse ${JSON.stringify(current)}`);
    instructions.push({
      keyword: (match[1] ?? '').toUpperCase(),
      args: (match[2] ?? '').trim(),
      line: start,
    });
    current = '';
  });
  if (current !== '') throw new Error('Dockerfile ends inside a continued line');
  return instructions;
}

const dockerfile = parseDockerfile(read('Dockerfile'));

/** ARGs declared before the first FROM, with their defaults: the only ones FROM lines may use. */
const globalArgs = new Map<string, string>();
for (const instruction of dockerfile) {
  if (instruction.keyword === 'FROM') break;
  if (instruction.keyword === 'ARG') {
    const [name = '', value = ''] = instruction.args.split('=');
    globalArgs.set(name, value);
  }
}
const substitute = (text: string, values: Map<string, string>): string =>
  text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => {
    const value = values.get(a ?? b ?? '');
    if (value === undefined) throw new Error(`undeclared build argument ${a ?? b}`);
    return value;
  });

const stages: Stage[] = [];
for (const instruction of dockerfile) {
  if (instruction.keyword === 'FROM') {
    const words = instruction.args.split(/\s+/).filter((w) => !w.startsWith('--'));
    const [image = '', as, name] = words;
    stages.push({
      index: stages.length,
      image,
      ...(as?.toUpperCase() === 'AS' && name !== undefined && { name }),
      instructions: [],
    });
  } else {
    stages.at(-1)?.instructions.push(instruction);
  }
}
const finalStage = stages.at(-1) as Stage;
const stageNamed = (name: string): Stage | undefined => stages.find((s) => s.name === name);
const inStage = (stage: Stage, keyword: string): Instruction[] =>
  stage.instructions.filter((i) => i.keyword === keyword);
const execForm = (args: string): string[] => {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string'))
    throw new Error(`not exec form: ${args}`);
  return parsed;
};

interface Copy {
  from?: string;
  sources: string[];
  destination: string;
  workdir: string;
}
/** COPY instructions of a stage, each with the WORKDIR in force where it stands. */
function copiesOf(stage: Stage): Copy[] {
  const copies: Copy[] = [];
  let workdir = '/';
  for (const instruction of stage.instructions) {
    if (instruction.keyword === 'WORKDIR') workdir = posix.resolve(workdir, instruction.args);
    if (instruction.keyword !== 'COPY' && instruction.keyword !== 'ADD') continue;
    const words = instruction.args.startsWith('[')
      ? execForm(instruction.args)
      : instruction.args.split(/\s+/);
    const flags = words.filter((w) => w.startsWith('--'));
    const paths = words.filter((w) => !w.startsWith('--'));
    const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
    copies.push({
      ...(from !== undefined && { from }),
      sources: paths.slice(0, -1),
      destination: posix.resolve(workdir, paths.at(-1) ?? ''),
      workdir,
    });
  }
  return copies;
}

function workdirOf(stage: Stage): string {
  return inStage(stage, 'WORKDIR').reduce((dir, i) => posix.resolve(dir, i.args), '/');
}

function imageUser(): { uid: number; gid: number | undefined } {
  const user = inStage(finalStage, 'USER').at(-1)?.args ?? '';
  const match = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!match) throw new Error(`the final USER must be numeric (uid[:gid]) for runAsNonRoot, got ${user}`);
  return { uid: Number(match[1]), gid: match[2] === undefined ? undefined : Number(match[2]) };
}

/** .dockerignore semantics for the patterns it uses: globs per path segment, `**`, `!` exceptions. */
function dockerIgnored(patterns: string[], path: string): boolean {
  const toRegExp = (pattern: string): RegExp => {
    let source = '';
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i] ?? '';
      if (pattern.startsWith('**/', i)) {
        source += '(?:.*/)?';
        i += 2;
      } else if (pattern.startsWith('**', i)) {
        source += '.*';
        i += 1;
      } else if (c === '*') source += '[^/]*';
      else if (c === '?') source += '[^/]';
      else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return new RegExp(`^${source}$`);
  };
  const segments = path.split('/');
  let ignored = false;
  for (const raw of patterns) {
    const exception = raw.startsWith('!');
    const pattern = posix.normalize((exception ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, ''));
    const re = toRegExp(pattern);
    // A pattern that matches a directory excludes everything below it.
    if (segments.some((_, i) => re.test(segments.slice(0, i + 1).join('/')))) ignored = !exception;
  }
  return ignored;
}
const dockerignore = read('.dockerignore')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

const packageJson = JSON.parse(read('package.json')) as {
  bin: Record<string, string>;
  engines: { node: string };
  scripts: Record<string, string>;
};

/** Where `npm run build` (tsc -p tsconfig.build.json) writes src/cli.ts, relative to the package root. */
function builtCliPath(): string {
  const buildConfigFile = /-p\s+(\S+)/.exec(packageJson.scripts.build ?? '')?.[1] ?? 'tsconfig.json';
  const buildConfig = JSON.parse(read(buildConfigFile)) as {
    extends?: string;
    include?: string[];
    compilerOptions?: { outDir?: string; rootDir?: string };
  };
  const base =
    buildConfig.extends === undefined
      ? {}
      : (JSON.parse(read(buildConfig.extends)) as {
          compilerOptions?: { outDir?: string; rootDir?: string };
        });
  const options = { ...base.compilerOptions, ...buildConfig.compilerOptions };
  if (!buildConfig.include?.includes('src')) throw new Error(`${buildConfigFile} does not compile src`);
  if (options.outDir === undefined || options.rootDir === undefined) throw new Error('outDir/rootDir unset');
  return posix.join(options.outDir, posix.relative(options.rootDir, 'src/cli.ts')).replace(/\.ts$/, '.js');
}

/** Runs the image's HEALTHCHECK command (node -e ...) with the given ADMIN_PORT; resolves its exit code. */
function runHealthcheck(command: string[], adminPort: number): Promise<number> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      command.slice(1),
      { env: { ...process.env, ADMIN_PORT: String(adminPort) }, timeout: 30_000 },
      (error) => done(error === null ? 0 : typeof error.code === 'number' ? error.code : -1),
    );
  });
}

describe('Dockerfile', () => {
  it('builds from pinned base images or from its own earlier stages', () => {
    for (const stage of stages) {
      const image = substitute(stage.image, globalArgs);
      const earlier = stages.slice(0, stage.index).some((s) => s.name === image);
      if (!earlier) {
        expect(image, `stage ${stage.index}`).toMatch(/^[a-z0-9./_-]+:[\w][\w.-]*$/);
        expect(image).not.toMatch(/:latest$/);
      }
    }
  });

  it('runs a Node that package.json engines allow, on Debian bookworm like nginx-light', () => {
    const nodeMajor = Number(/>=\s*(\d+)/.exec(packageJson.engines.node)?.[1]);
    for (const stage of [stageNamed('build'), finalStage]) {
      const match = /^node:(\d+)-bookworm-slim$/.exec(stage?.image ?? '');
      expect(match, stage?.image).not.toBeNull();
      expect(Number(match?.[1])).toBeGreaterThanOrEqual(nodeMajor);
    }
  });

  it('compiles in a build stage and keeps only runtime dependencies', () => {
    const build = stageNamed('build');
    expect(build).toBeDefined();
    const runs = inStage(build as Stage, 'RUN').map((i) => i.args);
    const order = ['npm ci', 'npm run build', 'npm prune --omit=dev'].map((cmd) =>
      runs.findIndex((r) => r.includes(cmd)),
    );
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    // tsc's inputs are in the stage before `npm run build` runs.
    const copied = copiesOf(build as Stage).flatMap((c) => c.sources);
    expect(copied).toEqual(
      expect.arrayContaining([
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'tsconfig.build.json',
        'src',
      ]),
    );
  });

  it('selects an nginx stage for every NGINX_FLAVOUR', () => {
    const flavour = globalArgs.get('NGINX_FLAVOUR');
    expect(flavour).toBe('debian');
    expect(stageNamed('nginx')?.image).toMatch(/\$\{NGINX_FLAVOUR\}/);
    for (const value of ['debian', 'upstream-check']) {
      const selected = substitute(stageNamed('nginx')?.image ?? '', new Map([['NGINX_FLAVOUR', value]]));
      expect(stageNamed(selected), selected).toBeDefined();
    }
    const upstreamCheck = stageNamed('nginx-upstream-check') as Stage;
    const runs = inStage(upstreamCheck, 'RUN').map((i) => i.args);
    expect(runs.some((r) => r.includes('build-upstream-check.sh'))).toBe(true);
  });

  it('copies only files that exist, are in the build context, or come from an earlier stage', () => {
    for (const stage of stages) {
      for (const copy of copiesOf(stage)) {
        if (copy.from !== undefined) {
          const source = stages.slice(0, stage.index).find((s) => s.name === copy.from);
          expect(source, `--from=${copy.from}`).toBeDefined();
          continue;
        }
        for (const source of copy.sources) {
          expect(existsSync(join(ROOT, source)), source).toBe(true);
          expect(dockerIgnored(dockerignore, posix.normalize(source)), `${source} is in .dockerignore`).toBe(
            false,
          );
        }
      }
    }
  });

  it('keeps node_modules and build output out of the build context', () => {
    expect(dockerIgnored(dockerignore, 'node_modules')).toBe(true);
    expect(dockerIgnored(dockerignore, 'node_modules/yaml/package.json')).toBe(true);
    expect(dockerIgnored(dockerignore, 'dist/src/cli.js')).toBe(true);
  });

  it('starts dist/src/cli.js, the file `npm run build` produces and package.json names as the bin', () => {
    const built = builtCliPath();
    expect(built).toBe('dist/src/cli.js');
    expect(packageJson.bin.dispatcher).toBe(built);
    const entrypoint = execForm(inStage(finalStage, 'ENTRYPOINT').at(-1)?.args ?? '[]');
    const appDir = workdirOf(finalStage);
    expect(entrypoint).toEqual(['node', posix.join(appDir, built)]);
    // The package root holds what the compiled code loads at run time: dist/, templates/, node_modules
    // and package.json (its "type": "module" makes node read dist/ as ES modules).
    const finalCopies = copiesOf(finalStage);
    const build = stageNamed('build') as Stage;
    const buildDir = workdirOf(build);
    const distCopy = finalCopies.find((c) => c.destination === posix.join(appDir, 'dist'));
    expect(distCopy?.from).toBe('build');
    expect(distCopy?.sources).toEqual([posix.join(buildDir, built.split('/')[0] ?? '')]);
    expect(finalCopies.find((c) => c.destination === posix.join(appDir, 'node_modules'))?.from).toBe('build');
    expect(finalCopies.find((c) => c.destination === posix.join(appDir, 'templates'))?.sources).toEqual([
      'templates',
    ]);
    const packageCopy = finalCopies.find((c) => c.sources.includes('package.json'));
    expect(packageCopy?.destination === appDir || packageCopy?.destination === `${appDir}/`).toBe(true);
  });

  it('passes --nginx by default, a command line dispatcher accepts', () => {
    const cmd = execForm(inStage(finalStage, 'CMD').at(-1)?.args ?? '[]');
    const parsed = parseArgs(cmd);
    expect(parsed).toEqual({ ok: true, args: expect.objectContaining({ mode: 'nginx', once: false }) });
  });

  it('runs as a numeric non-root user, the one the DaemonSets declare', () => {
    const { uid, gid } = imageUser();
    expect(uid).not.toBe(0);
    expect(gid).not.toBe(0);
    for (const { object } of daemonSets) {
      expect(podSpec(object).securityContext?.runAsUser).toBe(uid);
    }
  });

  it('sets only variables dispatcher reads, to values it accepts', () => {
    const env: Record<string, string> = {};
    for (const instruction of inStage(finalStage, 'ENV')) {
      for (const pair of instruction.args.split(/\s+/)) {
        const [name = '', value = ''] = pair.split('=');
        env[name] = value;
      }
    }
    // node's and glibc's own: NODE_OPTIONS carries the young-generation size, MALLOC_ARENA_MAX
    // caps malloc's arenas (README, "Memory").
    const runtime = new Set(['NODE_ENV', 'NODE_OPTIONS', 'MALLOC_ARENA_MAX']);
    const own = Object.keys(env).filter((name) => !runtime.has(name));
    for (const name of own) expect(VARIABLE_NAMES, name).toContain(name);
    const loaded = loadConfig(env, () => true);
    expect(loaded.ok ? [] : loaded.errors).toEqual([]);
    // The binary the capability is set on is the one dispatcher runs.
    const runs = inStage(finalStage, 'RUN').map((i) => i.args);
    expect(runs.some((r) => r.includes('setcap cap_net_bind_service=+ep'))).toBe(true);
    expect(runs.some((r) => r.includes(`readlink -f ${env.NGINX_BIN}`))).toBe(true);
  });

  it('exposes the default PORT, SSL_PORT and ADMIN_PORT', () => {
    const exposed = inStage(finalStage, 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    for (const name of ['PORT', 'SSL_PORT', 'ADMIN_PORT']) expect(exposed).toContain(defaultOf(name));
  });

  it('health-checks /healthz on ADMIN_PORT: 0 when it answers 200, 1 when it fails or is down', async () => {
    const healthcheck = inStage(finalStage, 'HEALTHCHECK').at(-1)?.args ?? '';
    const command = execForm(/\bCMD\s+(\[[\s\S]*\])$/.exec(healthcheck)?.[1] ?? '[]');
    expect(command[0]).toBe('node');
    expect(command.join(' ')).toContain(`'${defaultOf('ADMIN_PORT')}'`);
    let status = 200;
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(status).end();
    });
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
    const port = (server.address() as AddressInfo).port;
    try {
      expect(await runHealthcheck(command, port)).toBe(0);
      status = 503;
      expect(await runHealthcheck(command, port)).toBe(1);
      expect(paths).toEqual(['/healthz', '/healthz']);
    } finally {
      await new Promise((closed) => server.close(closed));
    }
    expect(await runHealthcheck(command, port)).toBe(1);
  });
});

describe('nginx/build-upstream-check.sh', () => {
  const script = read('nginx/build-upstream-check.sh');
  const pinned = (name: string): string =>
    new RegExp(`^${name}="?([^"\\n]+)"?$`, 'm').exec(script)?.[1] ?? '';

  it('is valid bash that stops at the first failure', () => {
    expect(() => execFileSync('bash', ['-n', join(ROOT, 'nginx/build-upstream-check.sh')])).not.toThrow();
    expect(script).toMatch(/^set -euo pipefail$/m);
  });

  it('pins nginx and the module by version and sha256, and the patch for that nginx version', () => {
    expect(pinned('NGINX_VERSION')).toMatch(/^\d+\.\d+\.\d+$/);
    expect(pinned('CHECK_MODULE_VERSION')).toMatch(/^\d+\.\d+\.\d+$/);
    expect(pinned('NGINX_ORIG_SHA256')).toMatch(/^[0-9a-f]{64}$/);
    expect(pinned('CHECK_MODULE_SHA256')).toMatch(/^[0-9a-f]{64}$/);
    // check_X.Y.Z+.patch covers nginx X.Y.Z and later: it must not be newer than the nginx it patches.
    const patchFor = /^check_(\d+)\.(\d+)\.(\d+)\+\.patch$/.exec(pinned('CHECK_PATCH'));
    expect(patchFor).not.toBeNull();
    const [major, minor, micro] = pinned('NGINX_VERSION').split('.').map(Number);
    const version = ((major ?? 0) * 1000 + (minor ?? 0)) * 1000 + (micro ?? 0);
    const patchVersion =
      (Number(patchFor?.[1]) * 1000 + Number(patchFor?.[2])) * 1000 + Number(patchFor?.[3]);
    expect(patchVersion).toBeLessThanOrEqual(version);
    // dispatcher recognises the module in `nginx -V` by the --add-module directory's name.
    expect(script).toMatch(/--add-module="\$module"/);
    expect(script).toMatch(/^module="\$work\/nginx_upstream_check_module"$/m);
  });
});
