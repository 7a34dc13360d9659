// The README documents the code that is there: every variable with its default, and the two commands.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VARIABLES } from '../../src/config.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  scripts: Record<string, string>;
};

describe('README', () => {
  it.each(VARIABLES.map((v) => [v.name, v] as const))('documents %s with its default', (_name, variable) => {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${variable.name}\` |`));
    expect(row, `no row for ${variable.name}`).toBeDefined();
    const shown = variable.default === undefined ? '—' : `\`${variable.default}\``;
    expect(row).toContain(`| ${shown} |`);
  });

  it('documents no variable that the code does not read', () => {
    const rows = readme.match(/^\| `([A-Z_]+)` \|/gm) ?? [];
    const names = new Set(VARIABLES.map((v) => v.name));
    for (const row of rows) expect(names).toContain(row.slice(3, -3));
  });

  it('shows the install-and-run command and the test command, and both exist', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
    expect(pkg.scripts.start).toContain('--manifests examples/cluster --mock');
    expect(pkg.scripts.test).toContain('vitest run');
  });
});
