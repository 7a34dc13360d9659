// The routes view as one self-contained HTML page (no external assets, no script): host → path →
// pods, with what was left out highlighted. Every value is HTML-escaped.
import type { RoutesView } from './routes-view.js';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1b1f24;background:#fff}
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.meta{color:#57606a;margin-bottom:1rem}
table{border-collapse:collapse;width:100%;margin-bottom:1rem}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.host{font-weight:600;font-size:1.05rem;margin-top:1rem}
.tag{display:inline-block;border-radius:3px;padding:0 .35rem;margin-left:.4rem;font-size:.8rem;background:#ddf4ff}
.diag-warning td{background:#fff8c5}.diag-error td{background:#ffebe9}.diag-info td{color:#57606a}
code{font-family:ui-monospace,monospace}
`;

function hostSection(host: RoutesView['hosts'][number]): string {
  const tags = [
    host.tls ? '<span class="tag">TLS</span>' : '',
    host.clientCertificate ? '<span class="tag">client certificate</span>' : '',
  ].join('');
  const rows = host.locations
    .map(
      (l) =>
        `<tr><td><code>${escapeHtml(l.path)}</code>${l.targetPath ? ` → <code>${escapeHtml(l.targetPath)}</code>` : ''}</td>` +
        `<td>${escapeHtml(l.namespace)}</td><td>${l.apiKeyRequired ? 'required' : '—'}</td>` +
        `<td>${l.pods.map((p) => `${escapeHtml(p.name)} <code>${escapeHtml(p.address)}</code>${p.weight ? ` weight ${p.weight}` : ''}`).join('<br>')}</td></tr>`,
    )
    .join('');
  const fallback = host.defaultLocation
    ? '<tr><td><code>/</code></td><td colspan="3">default location (DEFAULT_LOCATION_RETURN)</td></tr>'
    : '';
  return (
    `<div class="host" data-host="${escapeHtml(host.host)}">${escapeHtml(host.host)}${tags}</div>` +
    `<div class="meta">namespaces: ${host.namespaces.map(escapeHtml).join(', ')}</div>` +
    `<table><thead><tr><th>path</th><th>namespace</th><th>API key</th><th>pods</th></tr></thead><tbody>${rows}${fallback}</tbody></table>`
  );
}

export function routesPage(view: RoutesView): string {
  const diagnostics = view.diagnostics
    .map(
      (d) =>
        `<tr class="diag-${escapeHtml(d.severity)}"><td>${escapeHtml(d.severity)}</td><td>${escapeHtml(d.object)}</td>` +
        `<td><code>${escapeHtml(d.field)}</code></td><td>${escapeHtml(d.reason)}</td></tr>`,
    )
    .join('');
  const s = view.stats;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dispatcher routes</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>
<body>
<h1>dispatcher routes</h1>
<div class="meta">${view.ready ? 'ready' : 'not ready yet'} · ${s.hosts} hosts · ${s.locations} locations · ${s.upstreams} upstreams · ${s.pods} pods in ${s.namespaces} namespaces · ${escapeHtml(view.generatedAt)}</div>
<h2>Hosts</h2>
${view.hosts.length > 0 ? view.hosts.map(hostSection).join('\n') : '<p>No routable host.</p>'}
<h2>Left out (${view.diagnostics.length})</h2>
${view.diagnostics.length > 0 ? `<table id="diagnostics"><thead><tr><th>severity</th><th>object</th><th>field</th><th>reason</th></tr></thead><tbody>${diagnostics}</tbody></table>` : '<p>Nothing was left out.</p>'}
</body></html>
`;
}
