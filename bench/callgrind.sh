#!/bin/bash
# Instructions per request of a front, counted exactly under callgrind: a
# figure that does not move with the machine's other load (make bench's
# wall-clock numbers do). docs/performance.md lists the results.
#
#   bench/callgrind.sh [FRONT...]      FRONT: base | gh | ghlog (default: all)
#
# Each front is the bench/run.sh configuration of that name, with one
# process (master_process off) run under valgrind --tool=callgrind, behind
# a plain nginx backend. bench/cgclient.py opens CG_CONNS keep-alive TLS
# connections, warms them up, then the counters are zeroed and CG_REQUESTS
# requests per connection are sent with the session cookie of a real login;
# the dump then holds exactly those requests (no TLS handshake, no startup).
# Prints "FRONT Ir/request" and keeps the dumps and callgrind_annotate
# reports in CG_OUT (default /tmp/gatehouse-callgrind).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
NGINX=${GATEHOUSE_NGINX:-/usr/sbin/nginx}
GH=$top/build/gatehouse
MODULE=$top/build/ngx_http_gatehouse_module.so
CONNS=${CG_CONNS:-8}
REQS=${CG_REQUESTS:-400}
OUT=${CG_OUT:-/tmp/gatehouse-callgrind}
FRONTS=("$@")
[ ${#FRONTS[@]} -gt 0 ] || FRONTS=(base gh ghlog)

for f in "$GH" "$MODULE"; do
  [ -e "$f" ] || { echo "$f is missing: run make" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "valgrind is missing" >&2; exit 1; }

WORK=$(mktemp -d /tmp/gatehouse-cg.XXXXXX)
mkdir -p "$OUT"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

read -r P_BACKEND P_FRONT <<<"$("$PY" - <<'EOF'
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))
EOF
)"

DATA=$WORK/data
PW="callgrind-admin-password-42"
printf '%s\n' "$PW" | "$GH" --data "$DATA" init --admin-email admin@example.com \
  --password-stdin --argon2-passes 1 --argon2-memory-mib 8 --cert-cn 127.0.0.1 >/dev/null
"$GH" --data "$DATA" policy apply "$top/conf/policy.example.yaml" >/dev/null
CERT=$DATA/tls/gateway.crt
KEY=$DATA/tls/gateway.key
USER_LINE=""
[ "$(id -u)" -eq 0 ] && USER_LINE="user root root;"

head_conf() {   # DIR [MAIN LINES]
  mkdir -p "$1/tmp"
  cat <<EOF
$USER_LINE
daemon off;
master_process off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
${2:-}
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
    default_type text/plain;
    server_tokens off;
    keepalive_requests 1000000;
EOF
}
front_conf() {   # FRONT DIR
  local d=$2
  case $1 in
    base) head_conf "$d" ;;
    gh|ghlog) head_conf "$d" "load_module $MODULE;
thread_pool gatehouse threads=4 max_queue=4096;"
      cat <<EOF
    gatehouse_data $DATA;
    gatehouse_thread_pool gatehouse;
    gatehouse_session_idle 30m;
    gatehouse_session_lifetime 12h;
    gatehouse_public_url https://127.0.0.1:$P_FRONT;
    gatehouse_jwt_lifetime 5m;
EOF
      [ "$1" = ghlog ] && echo "    gatehouse_decision_log $d/decisions.log;"
      ;;
  esac
  cat <<EOF
    upstream backend {
        server 127.0.0.1:$P_BACKEND;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$P_FRONT ssl;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.3;
        ssl_session_cache shared:tls_cg:10m;
        ssl_session_tickets off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-Proto https;
EOF
  if [ "$1" = base ]; then
    cat <<EOF
        proxy_set_header X-Forwarded-For \$remote_addr;
        location / { proxy_pass http://backend; }
EOF
  else
    cat <<EOF
        gatehouse on;
        gatehouse_hsts on;
        proxy_set_header X-Forwarded-For \$gatehouse_client_addr;
        proxy_set_header X-Gatehouse-User \$gatehouse_user;
        proxy_set_header X-Gatehouse-Email \$gatehouse_email;
        proxy_set_header X-Gatehouse-Name \$gatehouse_name;
        proxy_set_header X-Gatehouse-Tenant \$gatehouse_tenant;
        proxy_set_header X-Gatehouse-Roles \$gatehouse_roles;
        proxy_set_header X-Gatehouse-Auth \$gatehouse_auth;
        proxy_set_header X-Gatehouse-Request-Id \$gatehouse_request_id;
        proxy_set_header X-Gatehouse-Assertion \$gatehouse_assertion;
        location / {
            gatehouse_app demo;
            proxy_pass http://backend;
        }
EOF
  fi
  echo "    }"
  echo "}"
}

wait_port() {
  local i
  for i in $(seq 1 600); do
    curl -s -o /dev/null --max-time 2 -k "$1" && return 0
    sleep 0.2
  done
  echo "nothing answers on $1" >&2
  exit 1
}

# the backend: plain nginx, not measured
B=$WORK/backend
mkdir -p "$B"
{ head_conf "$B"; cat <<EOF
    server {
        listen 127.0.0.1:$P_BACKEND backlog=4096;
        location / { return 200 "$(printf 'gatehouse-bench-backend:%075d' 0)\n"; }
    }
}
EOF
} >"$B/nginx.conf"
"$NGINX" -p "$B" -c "$B/nginx.conf" -e "$B/error.log" &
PIDS+=($!)
wait_port "http://127.0.0.1:$P_BACKEND/"

COOKIE=none
for front in "${FRONTS[@]}"; do
  d=$WORK/$front
  mkdir -p "$d"
  front_conf "$front" "$d" >"$d/nginx.conf"
  "$NGINX" -t -q -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
  valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$d/cg.%p" \
    "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" 2>"$d/valgrind.log" &
  vpid=$!
  PIDS+=($vpid)
  wait_port "https://127.0.0.1:$P_FRONT/"
  if [ "$front" != base ] && [ "$COOKIE" = none ]; then
    COOKIE=$(printf '%s\n' "$PW" | "$PY" "$top/bench/login.py" cookie \
      "https://127.0.0.1:$P_FRONT" "$CERT" admin@example.com)
  fi
  coproc CL { "$PY" "$top/bench/cgclient.py" "$P_FRONT" "$CERT" "$COOKIE" "$CONNS" 20 "$REQS"; }
  read -r line <&"${CL[0]}"
  [ "$line" = ready ] || { echo "client: $line" >&2; exit 1; }
  callgrind_control -z "$vpid" >/dev/null 2>&1
  echo go >&"${CL[1]}"
  read -r line n <&"${CL[0]}"
  [ "$line" = done ] || { echo "client: $line" >&2; exit 1; }
  callgrind_control -d "$vpid" >/dev/null 2>&1
  echo bye >&"${CL[1]}"
  wait "$CL_PID" 2>/dev/null || true
  kill -TERM "$vpid"
  wait "$vpid" 2>/dev/null || true
  dump=$(ls "$d"/cg.*.1 | head -1)
  ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
  cp "$dump" "$OUT/$front.callgrind"
  [ -e "$d/decisions.log" ] && cp "$d/decisions.log" "$OUT/"
  callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | head -80 >"$OUT/$front.inclusive.txt" || true
  callgrind_annotate "$dump" 2>/dev/null | head -80 >"$OUT/$front.self.txt" || true
  printf '%s\t%d Ir/request\t(%d requests, %s Ir)\n' "$front" $(( ir / n )) "$n" "$ir"
done
