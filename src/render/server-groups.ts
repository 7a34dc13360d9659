// With templates that write `server_name {{serverNames}};`, hosts that route identically share one
// nginx server block (`server_name a b;`). nginx allocates a full set of module configurations for
// every server, location and `if` block, and a reload costs about in proportion to what it
// allocates: a namespace with two hosts (public and internal) otherwise doubles the server side of
// the configuration. The bundled templates keep one block per host, as SPEC.md describes.
import type { ServerView } from './view.js';

/** Per render options: keys and merged views, remembered by view identity across renders. */
export interface ServerGroupCache {
  keys: WeakMap<ServerView, string>;
  /** By the group's first member: the merged view and the members it was made of. */
  merged: WeakMap<ServerView, { members: readonly ServerView[]; view: ServerView }>;
}

export function createServerGroupCache(): ServerGroupCache {
  return { keys: new WeakMap(), merged: new WeakMap() };
}

/**
 * `servers` (one view per host, sorted by host) with every set of plain servers whose blocks are
 * the same but for the name folded into the first of them; the others drop out. TLS servers stay
 * alone: their certificate is the host's own. Unchanged groups come back as the same objects, so
 * the text remembered for them is reused.
 */
export function groupServers(servers: readonly ServerView[], cache: ServerGroupCache): ServerView[] {
  const groups = new Map<string | ServerView, ServerView[]>();
  for (const server of servers) {
    const key = server.tls ? server : routingKey(server, cache);
    const group = groups.get(key);
    if (group) group.push(server);
    else groups.set(key, [server]);
  }
  if (groups.size === servers.length) return [...servers];
  const out: ServerView[] = [];
  for (const members of groups.values())
    out.push(members.length === 1 ? (members[0] as ServerView) : merged(members, cache));
  return out;
}

/** Everything a plain server block renders from, except its name. */
function routingKey(server: ServerView, cache: ServerGroupCache): string {
  let key = cache.keys.get(server);
  if (key === undefined) {
    key = JSON.stringify([server.listen, server.locations, server.defaultLocation]);
    cache.keys.set(server, key);
  }
  return key;
}

function merged(members: ServerView[], cache: ServerGroupCache): ServerView {
  const first = members[0] as ServerView;
  const known = cache.merged.get(first);
  if (known && sameMembers(known.members, members)) return known.view;
  const view: ServerView = { ...first, serverNames: members.map((member) => member.host).join(' ') };
  cache.merged.set(first, { members, view });
  return view;
}

function sameMembers(a: readonly ServerView[], b: readonly ServerView[]): boolean {
  return a.length === b.length && a.every((member, index) => member === b[index]);
}
