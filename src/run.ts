// Wires a run together from flags and configuration: which source, which output, which nginx
// facts; then starts the controller and keeps it until a signal or nginx's death.
import { createMetrics } from './admin/metrics.js';
import { type AdminServer, startAdminServer } from './admin/server.js';
import type { CliArgs } from './cli-args.js';
import { type Controller, createController, type Output, type OutputResult } from './controller.js';
import type { Logger } from './log.js';
import { createNginxApplier, type ServingNginx } from './nginx/apply.js';
import { getFromDefaultServer } from './nginx/confirm.js';
import { type HeldSockets, holdListeningSockets } from './nginx/listeners.js';
import { hasUpstreamCheckModule } from './nginx/process.js';
import { annotationsRead, emptyTable, type NginxFacts, renderOptionsFrom } from './pipeline.js';
import type { Templates } from './render/templates.js';
import { render } from './render.js';
import { createKubernetesSource, loadKubeConfig } from './sources/kubernetes.js';
import { createManifestSource } from './sources/manifests.js';
import type { Source } from './sources/source.js';
import { type TemplateHolder, watchTemplates } from './templates-watch.js';
import type { Config } from './types.js';

export const EXIT_OK = 0;
export const EXIT_CONFIG = 1;
export const EXIT_RUNTIME = 2;

export interface RunOptions {
  args: CliArgs;
  config: Config;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  templates: () => Templates;
  /** Where mock mode prints configurations (stdout). */
  print: (text: string) => void;
  /** Receives the run as soon as it can be shut down, before the first list completes (signals). */
  onRunning?: (running: Running) => void;
}

export interface Running {
  controller: Controller;
  /** The admin server's port (undefined with --once). */
  adminPort: number | undefined;
  /** Resolves with the exit code when the run ends (signal, --once done, nginx died). */
  done: Promise<number>;
  /** Ends the run as SIGTERM would. */
  shutdown(): Promise<void>;
  /** The pid of the nginx master serving now (nginx mode; a new one after every handover). */
  nginxPid(): number | undefined;
}

export function sourceFor(args: CliArgs, config: Config, env: NodeJS.ProcessEnv): Source {
  if (args.manifests !== undefined) return createManifestSource({ dir: args.manifests, watch: !args.once });
  return createKubernetesSource({
    kubeconfig: loadKubeConfig(env, args.kubeconfig),
    labelSelector: config.routableLabelSelector,
    secretName: config.apiKeySecretName,
    annotations: annotationsRead(config),
    failFast: args.once,
  });
}

/** Mock mode: nothing touched, each new configuration printed. */
export function printingOutput(print: (text: string) => void): Output {
  let last: string | undefined;
  return {
    async apply(text) {
      if (text === last) return { kind: 'unchanged' };
      last = text;
      print(text);
      return { kind: 'applied' };
    },
  };
}

async function nginxFacts(config: Config, mode: 'mock' | 'nginx', logger: Logger): Promise<NginxFacts> {
  const prefixRelativePaths = config.nginxPrefix !== undefined;
  if (mode === 'mock' || !config.enableHealthChecks) return { healthChecks: 'active', prefixRelativePaths };
  if (await hasUpstreamCheckModule(config.nginxBin)) return { healthChecks: 'active', prefixRelativePaths };
  logger.warn(
    { nginx: config.nginxBin },
    'NGINX_ENABLE_HEALTH_CHECKS=true but this nginx lacks nginx_upstream_check_module: using passive checks (max_fails/fail_timeout)',
  );
  return { healthChecks: 'passive', prefixRelativePaths };
}

/**
 * NGINX_RELOAD=handover: the listening sockets of PORT (and SSL_PORT when SSL is on), held by
 * dispatcher for every nginx master it starts. When they cannot be opened here (a port below 1024
 * without the right to bind it), nginx opens its own and loads configurations by signal.
 */
async function socketsForHandover(config: Config, logger: Logger): Promise<HeldSockets | undefined> {
  if (config.nginxReload !== 'handover') return undefined;
  const ports = [config.port, ...(config.sslCert !== undefined ? [config.sslPort] : [])];
  const held = await holdListeningSockets(ports);
  if (held.ok) return held.sockets;
  const hint =
    held.reason === 'EACCES'
      ? ': allow it with the sysctl net.ipv4.ip_unprivileged_port_start, or use ports of 1024 and above'
      : '';
  logger.warn(
    { port: held.port, reason: held.reason },
    `dispatcher cannot open port ${held.port} itself, so nginx opens its own sockets and loads each configuration by signal, as with NGINX_RELOAD=signal (slower at scale)${hint}`,
  );
  return undefined;
}

export async function startRun(options: RunOptions): Promise<Running> {
  const { args, config, env, logger } = options;
  const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST);
  const mode = args.mode ?? (inCluster ? 'nginx' : 'mock');
  const facts = await nginxFacts(config, mode, logger);
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });

  let nginx: ServingNginx | undefined;
  let output: Output;
  if (mode === 'nginx') {
    const sockets = await socketsForHandover(config, logger);
    const applier = createNginxApplier({
      paths: {
        bin: config.nginxBin,
        conf: config.nginxConf,
        ...(config.nginxPrefix && { prefix: config.nginxPrefix }),
      },
      port: config.port,
      sslCertDir: config.sslCertDir,
      confirmTimeoutMs: config.reloadTimeoutMs,
      onOutput: (line) => logger.info({ nginx: line }, 'nginx'),
      ...(sockets && { sockets }),
    });
    // nginx serves at once: the status path answers and everything else is closed until routes come.
    const empty = render(options.templates(), emptyTable(), renderOptionsFrom(config, facts));
    nginx = await applier.start(empty);
    logger.info(
      { pid: nginx.pid, port: config.port, reload: sockets ? 'handover' : 'signal' },
      'nginx started',
    );
    output = {
      async apply(text, table): Promise<OutputResult> {
        const outcome = await applier.apply(text, table.tlsFiles);
        if (outcome.kind === 'unchanged') return outcome;
        if (outcome.kind === 'reloaded') {
          return {
            kind: 'applied',
            detail: {
              testMs: Math.round(outcome.testMs),
              reloadMs: Math.round(outcome.reloadMs),
              prechecked: outcome.prechecked ? 1 : 0,
              handover: outcome.method === 'handover' ? 1 : 0,
              pid: outcome.pid,
            },
          };
        }
        return { kind: 'rejected', message: outcome.message };
      },
      async precheck(text, table) {
        return (await applier.check(text, table.tlsFiles)).testMs;
      },
    };
  } else {
    output = printingOutput(options.print);
  }

  const metrics = createMetrics();
  const source = sourceFor(args, config, env);
  let holder: TemplateHolder | undefined;
  const controller = createController({
    config,
    logger,
    source,
    output,
    nginx: facts,
    templates: () => holder?.current() ?? options.templates(),
    observer: metrics.observer,
  });
  if (!args.once)
    holder = watchTemplates(config.templatesDir, options.templates(), logger, () => controller.rerender());

  let admin: AdminServer | undefined;
  if (!args.once) {
    let nginxGone = false;
    void nginx?.exited.then(() => {
      nginxGone = true;
    });
    admin = await startAdminServer(
      {
        state: controller.state,
        registry: metrics.registry,
        checks: {
          source: () => source.health(),
          nginx: async () => {
            if (mode !== 'nginx') return { ok: true };
            if (nginxGone) return { ok: false, reason: 'nginx exited' };
            const answer = await getFromDefaultServer(config.port, config.statusPath, 2000);
            return answer === undefined
              ? { ok: false, reason: `nginx does not answer on port ${config.port}` }
              : { ok: true };
          },
        },
      },
      config.adminPort,
      config.adminBind,
    );
    logger.info({ port: admin.port, bind: config.adminBind }, 'admin server listening');
  }

  let ending = false;
  /** The one way a run ends: stop watching, close the admin server, quit nginx (if alive), report. */
  async function shutdown(code: number): Promise<void> {
    if (ending) return;
    ending = true;
    await controller
      .stop()
      .catch((error: unknown) => logger.error({ err: error }, 'stopping the source failed'));
    await Promise.all([holder?.close(), admin?.close()]);
    await nginx?.stop();
    finish(code);
  }

  void nginx?.exited.then(({ code, signal }) => {
    if (ending) return;
    logger.fatal({ code, signal }, 'nginx exited; stopping so that the orchestrator restarts dispatcher');
    void shutdown(EXIT_RUNTIME);
  });

  const running: Running = {
    controller,
    adminPort: admin?.port,
    done,
    shutdown: () => shutdown(EXIT_OK),
    nginxPid: () => nginx?.pid,
  };
  options.onRunning?.(running);
  try {
    // A shutdown while the first list is still pending (API unreachable) must not wait for it.
    const first = await Promise.race([controller.start(), done.then(() => undefined)]);
    if (args.once && first) await shutdown(first.kind === 'rejected' ? EXIT_RUNTIME : EXIT_OK);
  } catch (error) {
    logger.error({ err: error instanceof Error ? error.message : String(error) }, 'cannot start');
    await shutdown(EXIT_RUNTIME);
  }
  return running;
}
