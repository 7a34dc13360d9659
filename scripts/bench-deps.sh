#!/usr/bin/env bash
# Installs what `npm run bench` needs from Debian when it is missing: wrk (the load generator of
# figures 5 and 6), nginx (the real one every figure drives) and taskset (util-linux: figure 5 pins
# the nginx under test and the client to their own CPUs). Never starts the distribution's nginx service.
set -euo pipefail
missing=()
if [ -n "${WRK_BIN:-}" ]; then
  [ -x "$WRK_BIN" ] || command -v "$WRK_BIN" >/dev/null 2>&1 || { echo "bench-deps: WRK_BIN=$WRK_BIN is not an executable" >&2; exit 1; }
else
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
fi
if [ -n "${NGINX_BIN:-}" ]; then
  [ -x "$NGINX_BIN" ] || { echo "bench-deps: NGINX_BIN=$NGINX_BIN is not an executable" >&2; exit 1; }
else
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
fi
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "bench-deps: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
  exit 1
fi
echo "bench-deps: installing ${missing[*]}" >&2
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
