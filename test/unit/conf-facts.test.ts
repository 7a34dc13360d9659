import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { listenDirectives, listensOnlyOn, pidFile } from '../../src/nginx/conf-facts.js';
import { emptyTable, renderOptionsFrom } from '../../src/pipeline.js';
import { loadTemplates } from '../../src/render/templates.js';
import { render } from '../../src/render.js';

const held = new Set([8080, 8443]);

describe('the listen directives of a configuration', () => {
  it('are read from every block, with quotes removed and comments skipped', () => {
    const text = [
      '# listen 1;',
      'http {',
      '  server { listen 8080 default_server; return 200 "listen 2;"; }',
      "  server { listen '8443' ssl; # listen 3;",
      '    location / { return 200 \'a "quoted; listen 4" }\'; }',
      '  }',
      '}',
      'stream { server { listen 127.0.0.1:9000; } }',
    ].join('\n');
    expect(listenDirectives(text)).toEqual([
      { address: '8080', parameters: ['default_server'] },
      { address: '8443', parameters: ['ssl'] },
      { address: '127.0.0.1:9000', parameters: [] },
    ]);
  });

  const emptyConfig = (env: Record<string, string>): string => {
    const loaded = loadConfig({ PORT: '8080', SSL_PORT: '8443', ...env });
    if (!loaded.ok) throw new Error(loaded.errors.join('; '));
    const options = renderOptionsFrom(loaded.config, { healthChecks: 'passive', prefixRelativePaths: true });
    return render(loadTemplates(loaded.config.templatesDir), emptyTable(), options);
  };

  it('of the bundled templates are on PORT, and SSL_PORT with SSL: what dispatcher holds', () => {
    const plain = emptyConfig({});
    expect(listenDirectives(plain).map((l) => l.address)).toEqual(['8080']);
    expect(listensOnlyOn(plain, new Set([8080]))).toBe(true);
    expect(listensOnlyOn(plain, new Set([8443]))).toBe(false);
    const ssl = emptyConfig({
      SSL_CERT: 'examples/cluster/ssl/default-server.crt',
      SSL_KEY: 'examples/cluster/ssl/default-server.key',
    });
    expect(listenDirectives(ssl).map((l) => l.address)).toEqual(['8080', '8443']);
    expect(listensOnlyOn(ssl, held)).toBe(true);
    expect(listensOnlyOn(ssl, new Set([8080]))).toBe(false);
  });
});

describe('whether a configuration listens only on the sockets dispatcher holds', () => {
  const only = (listen: string): boolean => listensOnlyOn(`server { listen ${listen}; }`, held);

  it('yes for every IPv4 address of a held port, with per-server parameters', () => {
    expect(only('8080')).toBe(true);
    expect(only('*:8080 default_server')).toBe(true);
    expect(only('0.0.0.0:8443 ssl http2')).toBe(true);
    expect(only('8080 backlog=4096')).toBe(true);
    expect(listensOnlyOn('events {}', held)).toBe(true);
  });

  it('no for another port, a single address, IPv6, a unix socket or a hostname', () => {
    expect(only('9090')).toBe(false);
    expect(only('127.0.0.1:8080')).toBe(false);
    expect(only('[::]:8080')).toBe(false);
    expect(only('unix:/run/x.sock')).toBe(false);
    expect(only('localhost:8080')).toBe(false);
    expect(only('0')).toBe(false);
    expect(only('99999')).toBe(false);
  });

  it('no when a parameter asks for a socket made otherwise than the held one', () => {
    expect(only('8080 reuseport')).toBe(false);
    expect(only('8080 so_keepalive=on')).toBe(false);
    expect(only('8080 ipv6only=on')).toBe(false);
    expect(only('8080 rcvbuf=64k')).toBe(false);
  });

  it('no as soon as one listen of many is not held', () => {
    expect(listensOnlyOn('server { listen 8080; } server { listen 8081; }', held)).toBe(false);
  });
});

describe('the pid file of a configuration', () => {
  it('is the main-level pid directive, quoted or not', () => {
    expect(pidFile('worker_processes 1;\npid "nginx.pid";\nevents {}')).toBe('nginx.pid');
    expect(pidFile('pid /run/nginx.pid;')).toBe('/run/nginx.pid');
  });

  it('is undefined without one, and never a pid word inside a block', () => {
    expect(pidFile('events {}')).toBeUndefined();
    expect(pidFile('http { server { pid x; } }')).toBeUndefined();
  });
});
