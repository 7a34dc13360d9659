#!/usr/bin/env bash
# Installs what the test command needs from Debian when it is missing: nginx (the real one the
# end-to-end tests drive), openssl (test certificates), setcap (libcap2-bin: a copy of nginx allowed a
# low port) and chromium (the admin page). Never starts the distribution's nginx service.
set -euo pipefail
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# setcap: a test gives a copy of nginx the capability to bind a low port that dispatcher may not.
command -v setcap >/dev/null 2>&1 || [ -x /usr/sbin/setcap ] || missing+=(libcap2-bin)
# The admin page is checked in a real headless browser.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "test-deps: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
  exit 1
fi
echo "test-deps: installing ${missing[*]}" >&2
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
