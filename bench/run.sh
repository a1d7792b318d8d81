#!/usr/bin/env bash
# `make bench`: gatehouse against a plain nginx TLS proxy and nginx +
# auth_request, side by side; a login storm; the decision at 1k..1M users.
# Writes bench/RESULTS.md and bench/results.png. See bench/README.md.
#
# Environment (defaults in brackets):
#   BENCH_DURATION  seconds per wrk run [10]
#   BENCH_ROUNDS    interleaved rounds of every front [5]
#   BENCH_WORKERS   nginx worker processes of each front [1]
#   BENCH_CONNS     connections of the throughput runs [64]
#   BENCH_STORM_RATE     logins per second during the storm [5]
#   BENCH_STORM_ROUNDS   quiet/storm pairs of c64 runs [3]
#   BENCH_SCALE_USERS    user counts of the scale benchmark ["1000 10000 100000 1000000"]
#   BENCH_BUDGET    seconds run.sh may take: a disturbed round is replaced only
#                   when the extra round still fits [570]
#   BENCH_SCALE_BUDGET  seconds for the scale benchmark (sizes that would not
#                   load in time are skipped) [100]
#   BENCH_OUT       where RESULTS.md and results.png go [bench/]
#   BENCH_KEEP      1 keeps the work directory (configs, logs, raw wrk output) [0]
#   BENCH_NOTE      a line of text for RESULTS.md (e.g. what tree was measured) []
#   BENCH_QUIET_WAIT  seconds to wait for other load on the machine to stop [60]
#   BENCH_DISTURBED_PCT  other load (% of the CPUs) that marks a round disturbed [15]
#   BENCH_EXTRA_ROUNDS   disturbed rounds that may be replaced by another [1]
#
# Everything listens on 127.0.0.1, on ports free at start. Every process this
# script starts is stopped by its pid on exit.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-5}
WORKERS=${BENCH_WORKERS:-1}
CONNS=${BENCH_CONNS:-64}
STORM_RATE=${BENCH_STORM_RATE:-5}
STORM_ROUNDS=${BENCH_STORM_ROUNDS:-3}
SCALE_USERS=${BENCH_SCALE_USERS:-"1000 10000 100000 1000000"}
BUDGET=${BENCH_BUDGET:-570}
SCALE_BUDGET=${BENCH_SCALE_BUDGET:-100}
OUT=${BENCH_OUT:-$top/bench}
KEEP=${BENCH_KEEP:-0}
PY=/usr/bin/python3
NGINX=${GATEHOUSE_NGINX:-/usr/sbin/nginx}
GH=$top/build/gatehouse
MODULE=$top/build/ngx_http_gatehouse_module.so
START=$(date +%s)
# what is measured: the tree as it is now (the build is done before run.sh)
COMMIT=$(git -C "$top" describe --always --dirty 2>/dev/null || cat "$top/.bench-commit" 2>/dev/null ||
  echo unknown)

say() { printf '[bench %4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }
die() { say "error: $*"; exit 1; }

HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
busy_ticks() {   # user + nice + system ticks of the whole machine (not
  local f         # irq/softirq: loopback TCP is charged there, to no process)
  read -r -a f </proc/stat
  echo $(( f[1] + f[2] + f[3] ))
}
all_ticks() {   # every nginx of this run
  local n t=0
  for n in "${!GROUP[@]}"; do t=$(( t + $(cpu_ticks "$n") )); done
  echo "$t"
}
child_ticks() {   # CPU of this shell's waited-for children (wrk, via timeout)
  times | awk -v hz="$HZ" 'NR == 2 { split($1, a, /[ms]/); split($2, b, /[ms]/);
    printf "%d\n", (a[1] * 60 + a[2] + b[1] * 60 + b[2]) * hz }'
}
# Wait (at most $1 seconds) until the machine is quiet: other work on these
# CPUs shows up directly in the results (RESULTS.md reports it per run).
wait_quiet() {
  local i b0 b1 pct
  for i in $(seq 1 "$1"); do
    b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
    pct=$(( (b1 - b0) * 100 / (HZ * NCPU) ))
    [ "$pct" -lt 10 ] && return 0
    [ "$i" = 1 ] && say "the machine is busy (${pct}% of the CPUs) with something else; waiting up to $1 s"
  done
  say "still busy (${pct}%): measuring anyway, see the 'other load' column"
}

# ---- tools -------------------------------------------------------------------
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v gnuplot >/dev/null 2>&1 || need+=(gnuplot-nox)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ -x "$PY" ] && "$PY" -c 'import requests' 2>/dev/null || need+=(python3 python3-requests)
[ -x "$NGINX" ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
    { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
fi
for f in "$GH" "$MODULE" "$top/build/libgatehouse.a"; do
  [ -e "$f" ] || die "$f is missing: run make bench (it builds first)"
done

# ---- work directory, ports, cleanup -----------------------------------------
WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
PIDS=()
cleanup() {
  local pid i
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ]; then
    say "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# n distinct loopback ports, free right now (all bound at once, then closed).
free_ports() {
  "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r P_BACKEND P_AUTHSVC P_BASE P_GH P_GHLOG P_AUTHREQ <<<"$(free_ports 6)"

# ---- data directory: init, policy, users -------------------------------------
DATA=$WORK/data
ADMIN_EMAIL=admin@example.com
ADMIN_PW="bench-admin-password-42"
STORM_EMAIL=storm@example.com
STORM_PW="bench-storm-password-42"
say "data directory $DATA (cheap Argon2id for setup)"
printf '%s\n' "$ADMIN_PW" | "$GH" --data "$DATA" init --admin-email "$ADMIN_EMAIL" \
  --password-stdin --argon2-passes 1 --argon2-memory-mib 8 --cert-cn 127.0.0.1 >/dev/null
"$GH" --data "$DATA" policy apply "$top/conf/policy.example.yaml" >/dev/null
# The default cost for everything from here on; nginx reads it at start.
"$GH" --data "$DATA" argon2 set --passes 3 --memory-mib 64 >/dev/null
# Hashed at the default cost, so every storm login verifies a 3-pass 64 MiB hash.
printf '%s\n' "$STORM_PW" | "$GH" --data "$DATA" user add --tenant demo \
  --email "$STORM_EMAIL" --roles member --password-stdin >/dev/null
CERT=$DATA/tls/gateway.crt
KEY=$DATA/tls/gateway.key

# ---- scale ---------------------------------------------------------------------
# The Makefile's build/decide_bench compile line, for bench/scale_bench.c.
cc_line=$(make -s -n -B -C "$top" build/decide_bench 2>/dev/null | grep -m1 ' bench/decide_bench.c ' || true)
[ -n "$cc_line" ] || die "cannot read the build/decide_bench rule from the Makefile"
cc_line=${cc_line/bench\/decide_bench.c/bench\/scale_bench.c}
cc_line=${cc_line/-o build\/decide_bench/-o build\/scale_bench}
(cd "$top" && eval "$cc_line") || die "scale_bench does not build"
left=$SCALE_BUDGET
wait_quiet 30
say "scale: users $SCALE_USERS (budget ${left}s)"
# shellcheck disable=SC2086
timeout $((left + 60)) build/scale_bench "$WORK" "$left" $SCALE_USERS >"$WORK/scale.tsv" ||
  say "scale benchmark failed"

# ---- nginx configurations ----------------------------------------------------
USER_LINE=""
[ "$(id -u)" -eq 0 ] && USER_LINE="user root root;"
BODY=$(printf 'gatehouse-bench-backend:%075d' 0)   # 99 characters + "\n" = 100 bytes

# conf_head NAME WORKERS [MAIN-CONTEXT LINES]: the part every instance shares.
conf_head() {
  local dir=$WORK/$1
  mkdir -p "$dir/tmp"
  cat <<EOF
$USER_LINE
daemon            off;
worker_processes  $2;
pid               $dir/nginx.pid;
error_log         $dir/error.log warn;
${3:-}
events { worker_connections 4096; }
EOF
}
http_head() {
  local dir=$WORK/$1
  cat <<EOF
    access_log             off;
    client_body_temp_path  $dir/tmp/body;
    proxy_temp_path        $dir/tmp/proxy;
    fastcgi_temp_path      $dir/tmp/fastcgi;
    uwsgi_temp_path        $dir/tmp/uwsgi;
    scgi_temp_path         $dir/tmp/scgi;
    default_type           text/plain;
    server_tokens          off;
    keepalive_requests     1000000;
EOF
}
# Identical on every front: TLS 1.3 only, the ECDSA P-256 certificate from
# gatehouse init, a session cache, upstream keepalive, forwarded headers at
# server level (a location-level proxy_set_header would drop Connection "").
front_server() {
  cat <<EOF
    upstream backend {
        server              127.0.0.1:$P_BACKEND;
        keepalive           128;
        keepalive_requests  1000000;
    }
    server {
        listen  127.0.0.1:$1 ssl;
        ssl_certificate      $CERT;
        ssl_certificate_key  $KEY;
        ssl_protocols        TLSv1.3;
        ssl_session_cache    shared:tls_$2:10m;
        ssl_session_tickets  off;
        proxy_http_version   1.1;
        proxy_set_header     Connection         "";
        proxy_set_header     Host               \$host;
        proxy_set_header     X-Forwarded-Proto  https;
EOF
}

conf_backend() {
  conf_head backend 1
  cat <<EOF
http {
$(http_head backend)
    server {
        listen  127.0.0.1:$P_BACKEND backlog=4096;
        location / { return 200 "$BODY\n"; }
    }
}
EOF
}
conf_authsvc() {
  conf_head authsvc 1
  cat <<EOF
http {
$(http_head authsvc)
    server {
        listen  127.0.0.1:$P_AUTHSVC backlog=4096;
        location / { return 204; }
    }
}
EOF
}
conf_base() {
  conf_head base "$WORKERS"
  cat <<EOF
http {
$(http_head base)
$(front_server "$P_BASE" base)
        proxy_set_header     X-Forwarded-For    \$remote_addr;
        location / {
            proxy_pass  http://backend;
        }
    }
}
EOF
}
# gatehouse: the directives of conf/nginx.conf.in (same thread pool, the
# $gatehouse_* headers at server level); decision log only when $2 is set.
conf_gh() {
  conf_head "$1" "$WORKERS" "load_module  $MODULE;
thread_pool  gatehouse threads=4 max_queue=4096;"
  cat <<EOF
http {
$(http_head "$1")
    gatehouse_data              $DATA;
    gatehouse_thread_pool       gatehouse;
    gatehouse_session_idle      30m;
    gatehouse_session_lifetime  12h;
    gatehouse_public_url        https://127.0.0.1:$3;
    gatehouse_jwt_lifetime      5m;
${2:+    gatehouse_decision_log      $2;}
$(front_server "$3" "$1")
        gatehouse       on;
        gatehouse_hsts  on;
        proxy_set_header  X-Forwarded-For         \$gatehouse_client_addr;
        proxy_set_header  X-Gatehouse-User        \$gatehouse_user;
        proxy_set_header  X-Gatehouse-Email       \$gatehouse_email;
        proxy_set_header  X-Gatehouse-Name        \$gatehouse_name;
        proxy_set_header  X-Gatehouse-Tenant      \$gatehouse_tenant;
        proxy_set_header  X-Gatehouse-Roles       \$gatehouse_roles;
        proxy_set_header  X-Gatehouse-Auth        \$gatehouse_auth;
        proxy_set_header  X-Gatehouse-Request-Id  \$gatehouse_request_id;
        proxy_set_header  X-Gatehouse-Assertion   \$gatehouse_assertion;
        location / {
            gatehouse_app  demo;
            proxy_pass     http://backend;
        }
    }
}
EOF
}
# auth_request to a trivial external responder (204), with keepalive to it.
conf_authreq() {
  conf_head authreq "$WORKERS"
  cat <<EOF
http {
$(http_head authreq)
    upstream authsvc {
        server              127.0.0.1:$P_AUTHSVC;
        keepalive           128;
        keepalive_requests  1000000;
    }
$(front_server "$P_AUTHREQ" authreq)
        proxy_set_header     X-Forwarded-For    \$remote_addr;
        location / {
            auth_request  /.auth;
            proxy_pass    http://backend;
        }
        location = /.auth {
            internal;
            proxy_pass               http://authsvc;
            proxy_pass_request_body  off;
            # a location-level proxy_set_header: repeat what it would drop
            proxy_set_header  Connection      "";
            proxy_set_header  Host            \$host;
            proxy_set_header  Content-Length  "";
            proxy_set_header  X-Original-URI  \$request_uri;
            proxy_set_header  X-Original-Method  \$request_method;
        }
    }
}
EOF
}

start_nginx() {   # NAME: render, test, start in the foreground (tracked pid)
  local name=$1 conf=$WORK/$1/nginx.conf
  "conf_$2" "${@:3}" >"$conf"
  "$NGINX" -t -q -p "$WORK/$name" -c "$conf" -e "$WORK/$name/error.log" ||
    { cat "$WORK/$name/error.log" >&2; die "nginx -t failed for $name"; }
  "$NGINX" -p "$WORK/$name" -c "$conf" -e "$WORK/$name/error.log" &
  PIDS+=($!)
  MASTER[$name]=$!
}
declare -A MASTER
mkdir -p "$WORK"/{backend,authsvc,base,gh,ghlog,authreq}
DECISIONS=$WORK/ghlog/decisions.log
start_nginx backend backend
start_nginx authsvc authsvc
start_nginx base base
start_nginx gh gh gh "" "$P_GH"
start_nginx ghlog gh ghlog "$DECISIONS" "$P_GHLOG"
start_nginx authreq authreq

wait_port() {
  local i
  for i in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 -k "$1" && return 0
    sleep 0.1
  done
  die "nothing answers on $1"
}
for u in http://127.0.0.1:$P_BACKEND/ http://127.0.0.1:$P_AUTHSVC/ https://127.0.0.1:$P_BASE/ \
         https://127.0.0.1:$P_GH/ https://127.0.0.1:$P_GHLOG/ https://127.0.0.1:$P_AUTHREQ/; do
  wait_port "$u"
done
# CPU accounting: each instance's master and workers (threads included).
declare -A GROUP
for n in "${!MASTER[@]}"; do
  # (awk fails on a process that exits between the glob and the read: ignore)
  GROUP[$n]="${MASTER[$n]} $(awk -v p="${MASTER[$n]}" '$4 == p { printf "%s ", $1 }' /proc/[0-9]*/stat 2>/dev/null || true)"
  [ "${GROUP[$n]}" != "${MASTER[$n]} " ] || die "no worker processes found for $n"
done
cpu_ticks() {   # NAME: utime + stime of the group, in clock ticks
  local p t=0 f
  for p in ${GROUP[$1]}; do
    read -r -a f <"/proc/$p/stat" || continue
    t=$(( t + f[13] + f[14] ))
  done
  echo "$t"
}
say "backend :$P_BACKEND, auth responder :$P_AUTHSVC, fronts: base :$P_BASE, gatehouse :$P_GH, gatehouse+log :$P_GHLOG, auth_request :$P_AUTHREQ"

# ---- a real login, then check every front answers what we think ------------
COOKIE=$(printf '%s\n' "$ADMIN_PW" | "$PY" "$top/bench/login.py" cookie "https://127.0.0.1:$P_GH" "$CERT" "$ADMIN_EMAIL") ||
  die "login failed"
HDR="Cookie: __Host-gatehouse=$COOKIE"
check() {   # URL EXPECTED_STATUS [curl args]
  local code
  code=$(curl -s -o "$WORK/check.body" -w '%{http_code}' --max-time 5 --cacert "$CERT" "${@:3}" "$1")
  [ "$code" = "$2" ] || die "$1 answered $code, expected $2"
}
for p in $P_BASE $P_GH $P_GHLOG $P_AUTHREQ; do
  check "https://127.0.0.1:$p/" 200 -H "$HDR"
  cmp -s "$WORK/check.body" <(printf '%s\n' "$BODY") || die "front :$p did not return the backend body"
done
check "https://127.0.0.1:$P_GH/" 401 -H "Accept: application/json"   # the module is on
check "https://127.0.0.1:$P_GHLOG/" 401 -H "Accept: application/json"
: >"$DECISIONS"

# ---- load ----------------------------------------------------------------------
RAW=$WORK/raw
mkdir -p "$RAW"
RES=$WORK/results.tsv
printf 'phase\tround\tfront\tconns\trps\tp50_us\tp99_us\tnon2xx\terrors\trequests\tfront_cpu_us\tbackend_cpu_us\tauthsvc_cpu_us\tother_load_pct\n' >"$RES"
declare -A PORT=([base]=$P_BASE [gh]=$P_GH [ghlog]=$P_GHLOG [authreq]=$P_AUTHREQ)

# wrk_run PHASE ROUND FRONT CONNS [SECONDS]: one wrk run, one line of results.
wrk_run() {
  local phase=$1 round=$2 front=$3 c=$4 d=${5:-$DURATION} t=2 out
  [ "$c" -lt 2 ] && t=1
  out=$RAW/$phase-$round-$front-c$c.txt
  local f0 b0 a0 n0 m0 w0 t0 f1 b1 a1 n1 m1 w1 t1 other
  f0=$(cpu_ticks "$front") b0=$(cpu_ticks backend) a0=$(cpu_ticks authsvc)
  n0=$(all_ticks) w0=$(child_ticks) m0=$(busy_ticks) t0=$(date +%s%N)
  timeout $((d + 30)) wrk -t"$t" -c"$c" -d"${d}s" --latency -H "$HDR" \
    "https://127.0.0.1:${PORT[$front]}/" >"$out" 2>&1 || die "wrk failed: $(tail -3 "$out")"
  m1=$(busy_ticks) t1=$(date +%s%N) w1=$(child_ticks) n1=$(all_ticks)
  f1=$(cpu_ticks "$front") b1=$(cpu_ticks backend) a1=$(cpu_ticks authsvc)
  # CPU used by anything but these nginx and wrk, as % of the machine
  other=$(( ((m1 - m0) - (n1 - n0) - (w1 - w0)) * 100 * 1000000000 / (HZ * NCPU * (t1 - t0 + 1)) ))
  [ "$other" -lt 0 ] && other=0
  "$PY" "$top/bench/report.py" parse-wrk "$out" "$phase" "$round" "$front" "$c" "$HZ" \
    $(( f1 - f0 )) $(( b1 - b0 )) $(( a1 - a0 )) "$other" >>"$RES"
  [ "$front" = ghlog ] && : >"$DECISIONS"   # keep the decision log from filling the disk
  return 0
}

say "warm-up (2 s per front)"
for f in base gh ghlog authreq; do wrk_run warmup 0 "$f" "$CONNS" 2; done
: >"$DECISIONS"

wait_quiet "${BENCH_QUIET_WAIT:-60}"
FRONTS=(base gh authreq ghlog)
say "main: $ROUNDS rounds x (c$CONNS: ${FRONTS[*]}; c1: base gh authreq) x ${DURATION}s"
# A round during which other processes took >= DISTURBED % of the CPUs in
# some run is kept in the report but marked "disturbed" and left out of the
# medians; up to EXTRA such rounds are replaced by a further round.
DISTURBED=${BENCH_DISTURBED_PCT:-15}
EXTRA=${BENCH_EXTRA_ROUNDS:-1}
r=0 good=0
while [ "$good" -lt "$ROUNDS" ]; do
  r=$((r + 1))
  [ "$r" -gt 1 ] && wait_quiet 20
  for f in "${FRONTS[@]}"; do wrk_run main "$r" "$f" "$CONNS"; done
  for f in base gh authreq; do wrk_run main "$r" "$f" 1; done
  worst=$(awk -F'\t' -v r="$r" '$1 == "main" && $2 == r && $14 > m { m = $14 } END { print m + 0 }' "$RES")
  # does one more round fit, with the rounds still to come, the storm and the report?
  fits=$(( $(date +%s) - START + (ROUNDS - good) * 7 * DURATION + 2 * STORM_ROUNDS * (DURATION + 2) + 20 <= BUDGET ))
  if [ "$worst" -ge "$DISTURBED" ] && [ "$EXTRA" -gt 0 ] && [ "$fits" = 1 ]; then
    EXTRA=$((EXTRA - 1))
    awk -F'\t' -v OFS='\t' -v r="$r" '$1 == "main" && $2 == r { $1 = "disturbed" } { print }' \
      "$RES" >"$RES.tmp" && mv "$RES.tmp" "$RES"
    say "round $r: other processes took up to ${worst}% of the CPUs: marked disturbed, running another"
    continue
  fi
  good=$((good + 1))
  say "round $r done ($good/$ROUNDS; other load up to ${worst}%)"
done

say "login storm: $STORM_ROUNDS x (quiet, ${STORM_RATE}/s logins) on the gatehouse front, c$CONNS"
for r in $(seq 1 "$STORM_ROUNDS"); do
  wrk_run quiet "$r" gh "$CONNS"
  printf '%s\n' "$STORM_PW" | timeout $((DURATION + 60)) "$PY" "$top/bench/login.py" storm \
    "https://127.0.0.1:$P_GH" "$CERT" "$STORM_EMAIL" "$STORM_RATE" "$((DURATION + 1))" \
    "$RAW/storm-$r.json" &
  spid=$!
  PIDS+=("$spid")
  sleep 1
  wrk_run storm "$r" gh "$CONNS"
  wait "$spid" || say "storm round $r: some logins failed (see the report)"
done

# ---- report --------------------------------------------------------------------
machine() {
  printf 'nproc=%s\n' "$(nproc)"
  printf 'cpu=%s\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  printf 'kernel=%s\n' "$(uname -srm)"
  printf 'os=%s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
  printf 'nginx=%s\n' "$("$NGINX" -v 2>&1 | sed 's/.*: //')"
  printf 'openssl=%s\n' "$(openssl version)"
  printf 'wrk=%s\n' "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
  printf 'commit=%s\n' "$COMMIT"
  printf 'date=%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'duration=%s\nrounds=%s\nworkers=%s\nconns=%s\nstorm_rate=%s\nstorm_rounds=%s\n' \
    "$DURATION" "$ROUNDS" "$WORKERS" "$CONNS" "$STORM_RATE" "$STORM_ROUNDS"
  printf 'elapsed=%s\n' "$(( $(date +%s) - START ))"
  printf 'note=%s\n' "${BENCH_NOTE:-}"
  printf 'disturbed_pct=%s\n' "$DISTURBED"
}
machine >"$WORK/machine.txt"
mkdir -p "$OUT"
"$PY" "$top/bench/report.py" report "$WORK" "$OUT"
gnuplot -e "dir='$WORK'; out='$OUT/results.png'" "$top/bench/chart.gp"
cp "$WORK/results.tsv" "$OUT/results.tsv"
cp "$WORK/scale.tsv" "$OUT/scale.tsv"
for f in "$WORK"/*/error.log; do
  if grep -q '\[alert\]\|\[emerg\]\|\[crit\]' "$f"; then say "note: $(basename "$(dirname "$f")") logged: $(grep -m1 '\[alert\]\|\[emerg\]\|\[crit\]' "$f")"; fi
done
say "done in $(( $(date +%s) - START ))s: $OUT/RESULTS.md, $OUT/results.png"
