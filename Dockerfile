# syntax=docker/dockerfile:1
#
# dispatcher and the nginx it drives, in one image, running as the unprivileged user 101.
#
#   docker build -t dispatcher .                                        # Debian's nginx (nginx-light)
#   docker build -t dispatcher --build-arg NGINX_FLAVOUR=upstream-check .  # + nginx_upstream_check_module
#
# NGINX_FLAVOUR picks the nginx: "debian" (default) runs Debian bookworm's nginx-light; "upstream-check"
# runs the same nginx version rebuilt with nginx_upstream_check_module, which the active health checks
# of NGINX_ENABLE_HEALTH_CHECKS=true need (see nginx/README.md). BuildKit builds only the stages the
# final one uses, so the default flavour compiles nothing.
ARG NGINX_FLAVOUR=debian

# ---------------------------------------------------------------- controller: compile, keep runtime deps
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------- nginx flavours: files laid over /
# Each flavour stage leaves under /out what the final image adds to its root: a marker naming the flavour
# and, for upstream-check, the rebuilt binary at /usr/local/sbin/nginx.
FROM debian:bookworm-slim AS nginx-debian
RUN mkdir -p /out/usr/local/share/dispatcher \
 && echo debian > /out/usr/local/share/dispatcher/nginx-flavour

FROM debian:bookworm-slim AS nginx-upstream-check
# deb-src: the script builds from Debian's own source package, so the binary has Debian's patches too.
RUN sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential ca-certificates curl dpkg-dev libpcre2-dev libssl-dev zlib1g-dev
COPY nginx/build-upstream-check.sh /build/build-upstream-check.sh
RUN bash /build/build-upstream-check.sh /out

FROM nginx-${NGINX_FLAVOUR} AS nginx

# ---------------------------------------------------------------- runtime
FROM node:20-bookworm-slim
# The user comes first, so that no package's postinst can take uid/gid 101.
RUN groupadd --system --gid 101 dispatcher \
 && useradd --system --uid 101 --gid 101 --home-dir /var/lib/dispatcher --no-create-home \
      --shell /usr/sbin/nologin dispatcher
# nginx-light also brings the libraries (libssl3, libpcre2, zlib) the upstream-check binary links to.
# policy-rc.d keeps the package's scripts from starting an nginx during the build.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
 && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends nginx-light libcap2-bin \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
COPY --from=nginx /out/ /
# - /usr/local/sbin/nginx is the nginx of either flavour (NGINX_BIN below).
# - Ports 80 and 443 are opened by dispatcher (node) itself, to hand them to every nginx master: that
#   takes the sysctl net.ipv4.ip_unprivileged_port_start (Docker's default since 20.10; the example
#   DaemonSets set it), not a capability. Without it dispatcher lets nginx open the ports and reloads
#   it by signal: cap_net_bind_service on the nginx binary is for that case. File capabilities
#   need the capability in the container's bounding set (Docker's default; Kubernetes: capabilities
#   add NET_BIND_SERVICE) and are ignored under no_new_privs (see nginx/README.md).
# - The user owns what dispatcher and nginx write: NGINX_CONF's directory (/etc/nginx), SSL_CERT_DIR
#   (/etc/nginx/ssl) and NGINX_PREFIX (pid, temp files). Code under /app stays root's, read-only.
RUN set -eu \
 && if [ ! -e /usr/local/sbin/nginx ]; then ln -s /usr/sbin/nginx /usr/local/sbin/nginx; fi \
 && flavour="$(cat /usr/local/share/dispatcher/nginx-flavour)" \
 && nginx_file="$(readlink -f /usr/local/sbin/nginx)" \
 && /usr/local/sbin/nginx -V > /tmp/nginx-V 2>&1 \
 && if [ "$flavour" = upstream-check ] && ! grep -q nginx_upstream_check_module /tmp/nginx-V; then \
      echo "the upstream-check flavour's nginx lacks nginx_upstream_check_module" >&2; exit 1; \
    fi \
 && rm /tmp/nginx-V \
 && setcap cap_net_bind_service=+ep "$nginx_file" \
 && getcap "$nginx_file" | grep -q cap_net_bind_service \
 && mkdir -p /etc/nginx/ssl /var/lib/dispatcher/nginx \
 && chown dispatcher:dispatcher /etc/nginx /etc/nginx/nginx.conf /etc/nginx/ssl \
      /var/lib/dispatcher /var/lib/dispatcher/nginx \
 && chmod 0750 /etc/nginx/ssl /var/lib/dispatcher
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY templates ./templates
# V8's young generation at 2 MB per semi-space instead of 16: V8 keeps both semi-spaces at the size
# they grew to, 32 MB resident even when empty (README, "Memory"). Only a node start-up flag sets
# it, hence here; how far the old generation grows is set by dispatcher itself (src/cli.ts).
# glibc's malloc gives each thread that allocates (libuv's pool, V8's helpers) an arena of its own
# and keeps what they freed: two arenas keep the controller some 8 MB smaller. nginx's processes
# are single-threaded and unaffected.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=2 \
    MALLOC_ARENA_MAX=2 \
    NGINX_BIN=/usr/local/sbin/nginx \
    NGINX_PREFIX=/var/lib/dispatcher/nginx
USER 101:101
EXPOSE 80 443 10254
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.ADMIN_PORT || '10254') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
# Manage the real nginx even outside a cluster (inside one it is the default anyway). Arguments given
# to `docker run` replace this: add --nginx to them when they should still drive nginx.
CMD ["--nginx"]
