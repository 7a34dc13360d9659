// nginx never outlives dispatcher: not after a graceful stop, and not when dispatcher itself exits
// abruptly without stopping it (a crash), even though nginx runs in its own process group.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { nginxEnvironment, runNginx } from '../../src/nginx/process.js';
import { freePort, makePrefix, nginxBin, nginxProcessesUnder } from '../support/nginx.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const processModule = join(root, 'dist/src/nginx/process.js');

beforeAll(() => {
  if (!existsSync(processModule)) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' });
});

function minimalConf(port: number): string {
  return `pid nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  client_body_temp_path temp/client_body;\n  proxy_temp_path temp/proxy;\n  fastcgi_temp_path temp/fastcgi;\n  uwsgi_temp_path temp/uwsgi;\n  scgi_temp_path temp/scgi;\n  access_log off;\n  server { listen 127.0.0.1:${port}; return 200; }\n}\n`;
}

describe('the nginx process', () => {
  it("runs with dispatcher's environment, GLIBC_TUNABLES as the operator set it, and no stray NGINX", async () => {
    const prefix = await makePrefix();
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(conf, minimalConf(await freePort()));
    const nginx = await runNginx({ bin: nginxBin(), conf, prefix }, () => {});
    try {
      const environ = readFileSync(`/proc/${nginx.pid}/environ`, 'utf8').split('\0');
      expect(environ.filter((v) => v.startsWith('NGINX='))).toEqual([]);
      expect(environ).toContain(`PATH=${process.env.PATH}`);
    } finally {
      await nginx.stop(2000);
      await rm(prefix, { recursive: true, force: true });
    }
    const own = { PATH: '/usr/bin', GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' };
    expect(nginxEnvironment(own)).toEqual(own);
    // An NGINX variable in dispatcher's own environment would make nginx take over descriptors.
    expect(nginxEnvironment({ PATH: '/usr/bin', NGINX: '3;4;' })).toEqual({ PATH: '/usr/bin' });
  });

  it('is ended when the dispatcher process exits without stopping it', async () => {
    const prefix = await makePrefix();
    const port = await freePort();
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(conf, minimalConf(port));
    // A process that starts nginx, sees it serve, then exits abruptly (as a crash would).
    const script = `
      import { runNginx } from ${JSON.stringify(processModule)};
      import { request } from 'node:http';
      const nginx = await runNginx({ bin: ${JSON.stringify(nginxBin())}, conf: ${JSON.stringify(conf)}, prefix: ${JSON.stringify(prefix)} }, () => {});
      for (let i = 0; i < 200; i++) {
        const ok = await new Promise((r) => request({ host: '127.0.0.1', port: ${port} }, (res) => { res.resume(); r(res.statusCode === 200); }).on('error', () => r(false)).end());
        if (ok) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      console.log('serving ' + nginx.pid);
      process.exit(3);
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(3);
    expect(run.stdout).toMatch(/^serving \d+/);
    const deadline = Date.now() + 5000;
    while (nginxProcessesUnder(prefix).length > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(nginxProcessesUnder(prefix)).toEqual([]);
    await rm(prefix, { recursive: true, force: true });
  });
});
