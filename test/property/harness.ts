// What the hostile-input tests share: the configuration they render under, the pipeline from
// objects to nginx.conf (the one the controller runs), TLS fixture files, run sizes and seeds from
// the environment, and checks every diagnostic must pass.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { renderOptionsFrom, routeObjects } from '../../src/pipeline.js';
import { bundledTemplatesDir, loadTemplates, type Templates } from '../../src/render/templates.js';
import { render } from '../../src/render.js';
import type {
  Config,
  Diagnostic,
  HealthCheckMode,
  KubeObject,
  RenderOptions,
  RoutingTable,
} from '../../src/types.js';
import { checkConfig } from '../support/nginx.js';
import { type Pem, selfSigned } from '../support/tls.js';

export const HOSTS = 'github.com/30x.dispatcher.hosts';
export const PATHS = 'github.com/30x.dispatcher.paths';
export const ROUTABLE_LABEL = 'github.com/30x.dispatcher.routable';
export const ORG_LABEL = 'github.com/30x.dispatcher.org';
export const ENV_LABEL = 'github.com/30x.dispatcher.env';
export const APP_NAME_LABEL = 'github.com/30x.dispatcher.app.name';
export const APP_REV_LABEL = 'github.com/30x.dispatcher.app.rev';
export const HOSTS_FIELD = `metadata.annotations[${JSON.stringify(HOSTS)}]`;
export const PATHS_FIELD = `metadata.annotations[${JSON.stringify(PATHS)}]`;
export const PORT = 18080;
export const SSL_PORT = 18443;
export const API_KEY_VARIABLE = '$http_x_routing_api_key';

// ------------------------------------------------------------------ run sizes and seeds

const DEFAULT_SEED = 20_250_917;
let seed: number | undefined;

/**
 * FUZZ_SEED: an integer, or `random` (a fresh seed, printed). Default: a fixed seed, so that the
 * test command is reproducible. Read once per process.
 */
export function fuzzSeed(): number {
  if (seed !== undefined) return seed;
  const text = process.env.FUZZ_SEED;
  if (text === undefined || text === '') seed = DEFAULT_SEED;
  else if (text === 'random') seed = Math.floor(Math.random() * 2 ** 31);
  else if (/^-?[0-9]+$/.test(text)) seed = Number(text);
  else throw new Error(`FUZZ_SEED must be an integer or "random", got ${JSON.stringify(text)}`);
  return seed;
}

/**
 * Cases for one property: `share` of FUZZ_RUNS (the total over every property) when it is set,
 * else `byDefault`.
 */
export function runsFor(share: number, byDefault: number): number {
  const text = process.env.FUZZ_RUNS;
  if (text === undefined || text === '') return byDefault;
  if (!/^[0-9]+$/.test(text))
    throw new Error(`FUZZ_RUNS must be a positive integer, got ${JSON.stringify(text)}`);
  return Math.max(1, Math.round(Number(text) * share));
}

// ------------------------------------------------------------------ configuration and TLS fixtures

export interface TlsFixture {
  /** The pair routing secrets carry for SSL hosts (also the client CA: it is self-signed). */
  pair: Pem;
  /** The default SSL server's pair (SSL_CERT, SSL_KEY). */
  defaultPair: Pem;
  certDir: string;
  certB64: string;
  keyB64: string;
}

let tls: TlsFixture | undefined;

/** One certificate pair for every SSL host and one for the default SSL server, made once per process. */
export function tlsFixture(): TlsFixture {
  if (tls) return tls;
  const pair = selfSigned('tenant.test');
  const defaultPair = selfSigned('default.test');
  const certDir = mkdtempSync(join(tmpdir(), 'dispatcher-hostile-ssl-'));
  tls = {
    pair,
    defaultPair,
    certDir,
    certB64: Buffer.from(pair.cert).toString('base64'),
    keyB64: Buffer.from(pair.key).toString('base64'),
  };
  return tls;
}

export interface ClusterEnv {
  sslEnabled: boolean;
  hostSharing: 'shared' | 'exclusive';
  healthChecks: boolean;
}

/** The configuration a cluster renders under; `extra` variables override (e.g. a free PORT). */
export function configFor(env: ClusterEnv, extra: Record<string, string> = {}): Config {
  const vars: Record<string, string> = {
    PORT: String(PORT),
    SSL_PORT: String(SSL_PORT),
    HOST_SHARING: env.hostSharing,
    NGINX_ENABLE_HEALTH_CHECKS: String(env.healthChecks),
  };
  if (env.sslEnabled) {
    const fixture = tlsFixture();
    vars.SSL_CERT = fixture.defaultPair.certPath;
    vars.SSL_KEY = fixture.defaultPair.keyPath;
    vars.SSL_CERT_DIR = fixture.certDir;
  }
  const loaded = loadConfig({ ...vars, ...extra });
  if (!loaded.ok) throw new Error(`invalid test configuration: ${loaded.errors.join('; ')}`);
  return loaded.config;
}

// ------------------------------------------------------------------ the pipeline

let templates: Templates | undefined;

function bundled(): Templates {
  templates ??= loadTemplates(bundledTemplatesDir);
  return templates;
}

export interface Rendered {
  table: RoutingTable;
  text: string;
}

/** Objects → routing table → nginx.conf, as the controller does it (passive checks: Debian's nginx). */
export function renderCluster(
  objects: readonly KubeObject[],
  config: Config,
  healthChecks: Exclude<HealthCheckMode, 'off'> = 'passive',
): Rendered {
  return renderTable(routeObjects(objects, config), config, healthChecks);
}

/** A routing table → nginx.conf under `config`, with the bundled templates. */
export function renderTable(
  table: RoutingTable,
  config: Config,
  healthChecks: Exclude<HealthCheckMode, 'off'> = 'passive',
  overrides: Partial<RenderOptions> = {},
): Rendered {
  const options = { ...renderOptionsFrom(config, { healthChecks, prefixRelativePaths: true }), ...overrides };
  return { table, text: render(bundled(), table, options) };
}

/** Writes the TLS files the table asks for (what apply does), so that `nginx -t` can load them. */
export function writeTlsFiles(table: RoutingTable): void {
  for (const file of table.tlsFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, Buffer.from(file.contentBase64, 'base64'), { mode: file.mode });
  }
}

/** Throws with nginx's own message when `nginx -t` refuses the text. */
export async function assertNginxAccepts(rendered: Rendered): Promise<void> {
  writeTlsFiles(rendered.table);
  const result = await checkConfig(rendered.text);
  if (!result.ok) throw new Error(`nginx -t refused the rendered configuration:\n${result.output}`);
}

// ------------------------------------------------------------------ diagnostics

/** Printable ASCII plus the ellipsis quoteUntrusted appends: no CR, LF, ESC, NUL, bidi control or look-alike. */
const PRINTABLE = /^[\x20-\x7e\u2026]*$/;
const MAX_DIAGNOSTIC_TEXT = 1000;

/** Every string of every diagnostic is short and printable; returns the first offender, if any. */
export function unprintableDiagnostic(diagnostics: readonly Diagnostic[]): string | undefined {
  for (const d of diagnostics) {
    for (const [key, text] of Object.entries({ object: d.object, field: d.field, reason: d.reason })) {
      if (typeof text !== 'string' || !PRINTABLE.test(text) || text.length > MAX_DIAGNOSTIC_TEXT) {
        return `${key} of ${JSON.stringify(d)}`;
      }
    }
  }
  return undefined;
}

/** A Fisher-Yates shuffle driven by `seedValue`, for order-independence checks. */
export function shuffled<T>(items: readonly T[], seedValue: number): T[] {
  const out = [...items];
  let state = seedValue >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const j = (state >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
