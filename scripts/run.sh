#!/usr/bin/env bash
# `make run`: initialise $DATA on first start, render the nginx
# configuration and run Debian's nginx in the foreground with the module.
# Environment: PORT (8443), HTTP_PORT (unset: no plain-HTTP redirect port),
# DATA (./var), GATEHOUSE_ADMIN_EMAIL (admin@example.com),
# GATEHOUSE_ADMIN_PASSWORD (unset: a random one, printed once).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PORT=${PORT:-8443}
HTTP_PORT=${HTTP_PORT:-}
DATA=${DATA:-./var}
ECHO_PORT=${ECHO_PORT:-$((PORT + 1))}
ADMIN_EMAIL=${GATEHOUSE_ADMIN_EMAIL:-admin@example.com}
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd)
GH=$top/build/gatehouse

if [ ! -e "$DATA/gatehouse.mdb" ]; then
  echo "gatehouse: first start, initialising $DATA"
  if [ -n "${GATEHOUSE_ADMIN_PASSWORD:-}" ]; then
    printf '%s\n' "$GATEHOUSE_ADMIN_PASSWORD" |
      "$GH" --data "$DATA" init --admin-email "$ADMIN_EMAIL" --password-stdin --cert-cn 127.0.0.1
    echo "admin: $ADMIN_EMAIL (password from GATEHOUSE_ADMIN_PASSWORD)"
  else
    "$GH" --data "$DATA" init --admin-email "$ADMIN_EMAIL" --cert-cn 127.0.0.1
    echo "admin: $ADMIN_EMAIL (the password above is shown only once)"
  fi
  "$GH" --data "$DATA" policy apply "$top/conf/policy.example.yaml"
fi

mkdir -p "$DATA/nginx"
"$top/scripts/render-conf.sh" "$DATA" "$top/build/ngx_http_gatehouse_module.so" \
  "127.0.0.1:$PORT" "127.0.0.1:$ECHO_PORT" "127.0.0.1:$ECHO_PORT" "${HTTP_PORT:+127.0.0.1:$HTTP_PORT}" \
  30m 12h stderr >"$DATA/nginx/nginx.conf"

echo "gatehouse: https://127.0.0.1:$PORT/  (Ctrl-C stops it)"
exec nginx -p "$DATA/nginx" -c "$DATA/nginx/nginx.conf" -e stderr -g 'daemon off;'
