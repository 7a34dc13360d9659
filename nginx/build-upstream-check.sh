#!/usr/bin/env bash
# Builds Debian bookworm's nginx again, from Debian's own source package (so with Debian's patches),
# with nginx_upstream_check_module added, and leaves under OUT_DIR what the image lays over its root:
#   OUT_DIR/usr/local/sbin/nginx                         the binary
#   OUT_DIR/usr/local/share/dispatcher/nginx-flavour     "upstream-check"
# Runs in the Dockerfile's nginx-upstream-check stage (Debian bookworm, deb-src enabled, build tools,
# libpcre2-dev, libssl-dev, zlib1g-dev, dpkg-dev, curl). Any mismatch stops the build with a message.
set -euo pipefail

# ------------------------------------------------------------------ pinned versions
# The nginx that Debian bookworm ships as nginx-light: the other flavour of the image.
NGINX_VERSION=1.22.1
# sha256 of nginx-1.22.1.tar.gz from nginx.org, which is Debian's nginx_1.22.1.orig.tar.gz.
NGINX_ORIG_SHA256=9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31
CHECK_MODULE_VERSION=0.4.0
CHECK_MODULE_SHA256=41059b5a703ccc45cd404b345e5a77c6d6bc92f6b5d41865a9a6ce92291cd57b
CHECK_MODULE_URL="https://github.com/yaoweibin/nginx_upstream_check_module/archive/refs/tags/v${CHECK_MODULE_VERSION}.tar.gz"
# The module patches nginx's upstream code; this patch is the one for nginx 1.20.1 and later.
CHECK_PATCH="check_1.20.1+.patch"

fail() {
  echo "build-upstream-check: $*" >&2
  exit 1
}

[ $# -eq 1 ] || fail "usage: build-upstream-check.sh OUT_DIR"
out=$1
work=$(mktemp -d)
cd "$work"

# ------------------------------------------------------------------ nginx source (Debian's)
echo "build-upstream-check: fetching Debian's nginx source" >&2
apt-get source --only-source nginx || fail "apt-get source nginx failed (is deb-src enabled?)"
orig="nginx_${NGINX_VERSION}.orig.tar.gz"
[ -f "$orig" ] || fail "Debian's nginx source is not ${NGINX_VERSION} any more ($(ls ./*.orig.tar.* 2>/dev/null)); update NGINX_VERSION, NGINX_ORIG_SHA256 and CHECK_PATCH"
echo "${NGINX_ORIG_SHA256}  ${orig}" | sha256sum -c - >&2 || fail "${orig}: sha256 mismatch"
src="$work/nginx-${NGINX_VERSION}"
[ -f "$src/src/http/ngx_http_upstream_round_robin.c" ] || fail "no unpacked nginx source at $src"

# ------------------------------------------------------------------ the module
# Its directory name must contain "nginx_upstream_check_module": `nginx -V` shows the --add-module
# path, and dispatcher looks for that name there to know the module is present.
module="$work/nginx_upstream_check_module"
echo "build-upstream-check: fetching nginx_upstream_check_module ${CHECK_MODULE_VERSION}" >&2
curl -fsSL --retry 3 -o module.tar.gz "$CHECK_MODULE_URL" || fail "cannot download $CHECK_MODULE_URL"
echo "${CHECK_MODULE_SHA256}  module.tar.gz" | sha256sum -c - >&2 || fail "module.tar.gz: sha256 mismatch"
mkdir "$module"
tar -xzf module.tar.gz -C "$module" --strip-components=1
[ -f "$module/$CHECK_PATCH" ] || fail "the module has no $CHECK_PATCH"
patch -d "$src" -p1 --forward --batch < "$module/$CHECK_PATCH" || fail "$CHECK_PATCH does not apply to nginx ${NGINX_VERSION}"

# ------------------------------------------------------------------ configure and build
# Debian's hardening flags and configure arguments (see `nginx -V` of Debian's nginx), with the http
# modules its nginx-light has built in; the dynamic modules (geoip, image_filter, perl, xslt, mail,
# stream) are left out: dispatcher's nginx.conf loads none.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cc_opt="$(dpkg-buildflags --get CFLAGS) -fPIC $(dpkg-buildflags --get CPPFLAGS)"
ld_opt="$(dpkg-buildflags --get LDFLAGS) -fPIC"
cd "$src"
./configure \
  --with-cc-opt="$cc_opt" \
  --with-ld-opt="$ld_opt" \
  --prefix=/usr/share/nginx \
  --conf-path=/etc/nginx/nginx.conf \
  --http-log-path=/var/log/nginx/access.log \
  --error-log-path=stderr \
  --lock-path=/var/lock/nginx.lock \
  --pid-path=/run/nginx.pid \
  --modules-path=/usr/lib/nginx/modules \
  --http-client-body-temp-path=/var/lib/nginx/body \
  --http-fastcgi-temp-path=/var/lib/nginx/fastcgi \
  --http-proxy-temp-path=/var/lib/nginx/proxy \
  --http-scgi-temp-path=/var/lib/nginx/scgi \
  --http-uwsgi-temp-path=/var/lib/nginx/uwsgi \
  --with-compat \
  --with-debug \
  --with-pcre-jit \
  --with-http_ssl_module \
  --with-http_stub_status_module \
  --with-http_realip_module \
  --with-http_auth_request_module \
  --with-http_v2_module \
  --with-http_dav_module \
  --with-http_slice_module \
  --with-threads \
  --with-http_addition_module \
  --with-http_flv_module \
  --with-http_gunzip_module \
  --with-http_gzip_static_module \
  --with-http_mp4_module \
  --with-http_random_index_module \
  --with-http_secure_link_module \
  --with-http_sub_module \
  --add-module="$module" ||
  fail "configure failed"
make -j"$(nproc)" || fail "make failed"

# ------------------------------------------------------------------ prove it before installing
built="$src/objs/nginx"
"$built" -V 2>&1 | grep -q nginx_upstream_check_module || fail "nginx -V does not show nginx_upstream_check_module"
# The directives dispatcher renders with NGINX_ENABLE_HEALTH_CHECKS=true must pass `nginx -t`.
probe="$work/probe"
mkdir -p "$probe/temp"
cat > "$probe/nginx.conf" <<'EOF'
pid nginx.pid;
error_log stderr;
events {}
http {
  client_body_temp_path temp/client_body;
  proxy_temp_path temp/proxy;
  fastcgi_temp_path temp/fastcgi;
  uwsgi_temp_path temp/uwsgi;
  scgi_temp_path temp/scgi;
  upstream probe {
    server 127.0.0.1:9;
    check interval=10000 rise=1 fall=3 timeout=1000 port=9 type=http;
    check_http_send "GET /healthz HTTP/1.0\r\n\r\n";
    check_http_expect_alive http_2xx;
  }
  server {
    listen 127.0.0.1:18080;
    location / { proxy_pass http://probe; }
  }
}
EOF
"$built" -t -p "$probe" -c "$probe/nginx.conf" || fail "the built nginx rejects the check directives"

install -D -m 0755 "$built" "$out/usr/local/sbin/nginx"
mkdir -p "$out/usr/local/share/dispatcher"
echo upstream-check > "$out/usr/local/share/dispatcher/nginx-flavour"
cd /
rm -rf "$work"
echo "build-upstream-check: nginx ${NGINX_VERSION} with nginx_upstream_check_module ${CHECK_MODULE_VERSION} in $out" >&2
