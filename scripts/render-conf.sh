#!/usr/bin/env bash
# Render conf/nginx.conf.in to stdout.
#   render-conf.sh DATA MODULE LISTEN BACKEND ECHO_LISTEN HTTP_LISTEN IDLE LIFETIME ERROR_LOG [WORKERS]
# HTTP_LISTEN may be empty (no plain-HTTP redirect server). Creates the
# nginx working directories under DATA/nginx.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
data=$1 module=$2 listen=$3 backend=$4 echo_listen=$5 http_listen=$6
idle=$7 lifetime=$8 errlog=$9 workers=${10:-2}
mkdir -p "$data/nginx/tmp"
user=""
# Workers read the data directory, which belongs to whoever ran init. When
# started as root, keep them as root for this demo (docs/getting-started.md).
[ "$(id -u)" -eq 0 ] && user="user root root;"
public_host=${listen%:*}:${listen##*:}
sed -e "s|@USER@|$user|" -e "s|@WORKERS@|$workers|" -e "s|@DATA@|$data|g" \
    -e "s|@MODULE@|$module|" -e "s|@LISTEN@|$listen|" -e "s|@BACKEND@|$backend|" \
    -e "s|@ECHO_LISTEN@|$echo_listen|" -e "s|@SESSION_IDLE@|$idle|" \
    -e "s|@SESSION_LIFETIME@|$lifetime|" -e "s|@ERROR_LOG@|$errlog|" \
    -e "s|@HTTP_LISTEN@|$http_listen|" -e "s|@PUBLIC_HOST@|$public_host|" \
    "$top/conf/nginx.conf.in" |
  if [ -n "$http_listen" ]; then sed -e 's|#http# ||'; else cat; fi
