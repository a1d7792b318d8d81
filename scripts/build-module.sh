#!/usr/bin/env bash
# Build ngx_http_gatehouse_module.so against the installed nginx, from
# Debian's nginx-dev tree: copy /usr/share/nginx/src, configure it with the
# flags Debian's nginx was built with (conf_flags) plus our module, then
# build only the modules.
#   scripts/build-module.sh OUTDIR "EXTRA CFLAGS"
set -euo pipefail
out=$1
extra=$2
top=$(cd "$(dirname "$0")/.." && pwd)
src=/usr/share/nginx/src
work=$top/$out/nginx
stamp="$extra $(sha1sum "$top/gateway/config" | cut -c1-40)"

if [ ! -f "$work/objs/Makefile" ] || [ "$(cat "$work/.gh-flags" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$work"
  mkdir -p "$(dirname "$work")"
  cp -a "$src" "$work"
  # shellcheck disable=SC1091
  . "$work/conf_flags"
  (cd "$work" && GH_LIBDIR="$top/$out" ./configure "${NGX_CONF_FLAGS[@]}" \
      --add-dynamic-module="$top/gateway" \
      --with-cc-opt="-fPIC -Wextra -Wno-unused-parameter -Wno-missing-field-initializers $extra -I$top/include" \
      --with-ld-opt="$extra" >"$work/configure.log" 2>&1) \
    || { tail -30 "$work/configure.log" >&2; exit 1; }
  echo "$stamp" >"$work/.gh-flags"
fi
# The module links our static library, which objs/Makefile does not track: relink every time.
rm -f "$work/objs/ngx_http_gatehouse_module.so"
make -s -C "$work" -f objs/Makefile modules GH_LIBDIR="$top/$out"
# Replace atomically: a running nginx has the old file mapped, and writing
# over it in place crashes that nginx.
cp "$work/objs/ngx_http_gatehouse_module.so" "$top/$out/.ngx_http_gatehouse_module.so.new"
mv -f "$top/$out/.ngx_http_gatehouse_module.so.new" "$top/$out/ngx_http_gatehouse_module.so"
