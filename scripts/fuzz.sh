#!/usr/bin/env bash
# Run every libFuzzer driver in build/fuzz/ for SECONDS seconds, one after
# the other (one core), starting from the committed seeds in
# tests/fuzz/corpus/<driver>/ and growing build/fuzz/corpus/<driver>/.
# Crashes and property violations land in build/fuzz/findings/<driver>/.
# Prints one line per driver: runs, CPU seconds, new corpus size, findings.
#   scripts/fuzz.sh SECONDS [driver...]
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
secs=${1:-60}
shift || true
drivers=("$@")
if [ ${#drivers[@]} -eq 0 ]; then
  for b in build/fuzz/fuzz_*; do [ -x "$b" ] && drivers+=("$(basename "$b")"); done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
bad=0
for d in "${drivers[@]}"; do
  corpus=build/fuzz/corpus/$d
  found=build/fuzz/findings/$d
  mkdir -p "$corpus" "$found"
  log=build/fuzz/$d.log
  start=$(date +%s)
  build/fuzz/"$d" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -max_len=8192 -artifact_prefix="$found/" -print_final_stats=1 \
      "$corpus" "tests/fuzz/corpus/$d" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  n=$(find "$found" -type f | wc -l)
  took=$(( $(date +%s) - start ))
  echo "$d: ${runs:-?} runs in $took s, corpus $(ls "$corpus" | wc -l), findings $n (exit $rc)"
  # one line per run, summed by scripts/security-report.sh
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$d" "$took" "${runs:-0}" "$n" \
      >>build/fuzz/history.tsv
  [ "$rc" -ne 0 ] || [ "$n" -ne 0 ] && bad=1
done
exit $bad
