// The command line: its flags, their strict parsing, and `--help`, which lists the flags and every
// environment variable of config.ts with its default and what it accepts.
import { parseArgs as parseNodeArgs } from 'node:util';
import { VARIABLES } from './config.js';

export interface CliArgs {
  manifests?: string;
  kubeconfig?: string;
  mode?: 'mock' | 'nginx';
  once: boolean;
  help: boolean;
}

const FLAGS = [
  [
    '--manifests DIR',
    'Read Namespaces, Pods and Secrets from the YAML/JSON files under DIR (watched), not a cluster.',
  ],
  [
    '--kubeconfig FILE',
    'Kubeconfig for a cluster reached from outside (else KUBECONFIG, then ~/.kube/config).',
  ],
  [
    '--mock',
    'Print each rendered nginx.conf to stdout; leave nginx and files alone (default outside a cluster).',
  ],
  ['--nginx', 'Manage a real nginx even outside a cluster (default inside one).'],
  ['--once', 'Render once and exit.'],
  ['-h, --help', 'Print this help and exit.'],
] as const;

/** Parses the command line strictly: unknown flags, stray arguments and --mock with --nginx are errors. */
export function parseArgs(argv: string[]): { ok: true; args: CliArgs } | { ok: false; error: string } {
  let values: {
    manifests?: string;
    kubeconfig?: string;
    mock?: boolean;
    nginx?: boolean;
    once?: boolean;
    help?: boolean;
  };
  try {
    values = parseNodeArgs({
      args: argv,
      options: {
        manifests: { type: 'string' },
        kubeconfig: { type: 'string' },
        mock: { type: 'boolean' },
        nginx: { type: 'boolean' },
        once: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    // node's messages go on with advice about its own API; the first sentence is the one for users.
    const message = (error as Error).message.split('\n')[0] ?? '';
    return { ok: false, error: message.replace(/\. .*$/, '').replace(/\.$/, '') };
  }
  if (values.mock && values.nginx) return { ok: false, error: '--mock and --nginx cannot be used together' };
  for (const flag of ['manifests', 'kubeconfig'] as const) {
    if (values[flag] === '') return { ok: false, error: `--${flag} needs a non-empty value` };
  }
  const args: CliArgs = { once: values.once ?? false, help: values.help ?? false };
  if (values.manifests !== undefined) args.manifests = values.manifests;
  if (values.kubeconfig !== undefined) args.kubeconfig = values.kubeconfig;
  if (values.mock) args.mode = 'mock';
  if (values.nginx) args.mode = 'nginx';
  return { ok: true, args };
}

/** `dispatcher --help`: usage, flags, every variable with its default and expected values, exit codes. */
export function helpText(): string {
  const flagWidth = Math.max(...FLAGS.map(([flag]) => flag.length)) + 2;
  const lines = [
    'Usage: dispatcher [--manifests DIR] [--kubeconfig FILE] [--mock | --nginx] [--once]',
    '',
    'Routes the hosts of routable Kubernetes namespaces and the paths of their pods through nginx.',
    '',
    'Options:',
    ...FLAGS.map(([flag, text]) => `  ${flag.padEnd(flagWidth)}${text}`),
    '',
    'Environment variables (an empty value counts as unset; relative paths are resolved against the',
    'working directory):',
  ];
  for (const v of VARIABLES) {
    lines.push(`  ${v.name}${v.default === undefined ? ' (unset by default)' : ` (default: ${v.default})`}`);
    lines.push(`      ${v.description}`);
    lines.push(`      Valid: ${v.expected}.`);
  }
  lines.push(
    '',
    'The cluster is reached with the in-cluster service account when KUBERNETES_SERVICE_HOST is set, else',
    'with --kubeconfig, KUBECONFIG or ~/.kube/config.',
    '',
    'Exit codes:',
    '  0  done (or --help)',
    '  1  invalid configuration or command line',
    '  2  runtime failure (nginx could not start; with --once, the cluster could not be reached)',
    '',
  );
  return lines.join('\n');
}
