// The routing table as the admin endpoints show it: who serves what, and what was left out.
// API keys and certificate contents are secrets: the view says whether a key is required and
// where TLS files live, never their values.
import type { Diagnostic, RoutingTable } from '../types.js';

export interface RoutesView {
  generatedAt: string;
  ready: boolean;
  stats: { namespaces: number; pods: number; hosts: number; locations: number; upstreams: number };
  hosts: {
    host: string;
    namespaces: string[];
    tls: boolean;
    clientCertificate: boolean;
    defaultLocation: boolean;
    locations: {
      path: string;
      namespace: string;
      upstream: string;
      targetPath?: string;
      apiKeyRequired: boolean;
      pods: { name: string; address: string; weight?: number }[];
    }[];
  }[];
  diagnostics: Diagnostic[];
}

export function routesView(table: RoutingTable | undefined, ready: boolean, now = new Date()): RoutesView {
  const upstreams = new Map((table?.upstreams ?? []).map((u) => [u.name, u]));
  const hosts = (table?.servers ?? []).map((server) => ({
    host: server.host,
    namespaces: server.namespaces,
    tls: server.tls !== undefined,
    clientCertificate: server.tls?.clientCertificate !== undefined,
    defaultLocation: server.defaultLocation,
    locations: server.locations.map((location) => ({
      path: location.path,
      namespace: location.namespace,
      upstream: location.upstream,
      ...(location.targetPath !== undefined && { targetPath: location.targetPath }),
      apiKeyRequired: location.apiKey !== undefined,
      pods: (upstreams.get(location.upstream)?.servers ?? []).map((s) => ({
        name: s.pod,
        address: s.address,
        ...(s.weight !== undefined && { weight: s.weight }),
      })),
    })),
  }));
  return {
    generatedAt: now.toISOString(),
    ready,
    stats: {
      namespaces: table?.stats.namespaces ?? 0,
      pods: table?.stats.pods ?? 0,
      hosts: hosts.length,
      locations: hosts.reduce((n, h) => n + h.locations.length, 0),
      upstreams: table?.upstreams.length ?? 0,
    },
    hosts,
    diagnostics: table?.diagnostics ?? [],
  };
}
