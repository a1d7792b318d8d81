#!/usr/bin/env bash
# Run the test tiers against the sanitizer build (build/san) and print one
# closing line "N passed, N failed".
#   scripts/test.sh unit|integration|fuzz|browser|all
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mode=${1:-all}
passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_unit() {
  local t n_pass n_fail
  for t in build/san/tests/test_*; do
    [ -x "$t" ] || continue
    echo "== unit: $(basename "$t")"
    "$t" >"$log" 2>&1
    local rc=$?
    cat "$log"
    n_pass=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" | tail -1)
    n_fail=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$log" | tail -1)
    passed=$((passed + ${n_pass:-0}))
    failed=$((failed + ${n_fail:-0}))
    # a crash or sanitizer abort counts even when cmocka printed nothing
    if [ $rc -ne 0 ] && [ "${n_fail:-0}" -eq 0 ]; then
      echo "!! $(basename "$t") exited $rc"
      failed=$((failed + 1))
    fi
  done
}

# One pytest tier: run it into $log, show it, add its summary line's
# counts (an exit status without failures counts as one failure).
run_pytest() {
  local what=$1 dir=$2 rc summary n_pass n_fail n_err
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 GATEHOUSE_BUILD="$top/build/san" \
      /usr/bin/python3 -m pytest -p no:cacheprovider -q -rfE "$dir" \
      >"$log" 2>&1
  rc=$?
  cat "$log"
  summary=$(grep -E '^=*.*[0-9]+ (passed|failed|error)' "$log" | tail -1)
  n_pass=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
  n_fail=$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
  n_err=$(echo "$summary" | grep -oE '[0-9]+ errors?' | grep -oE '[0-9]+')
  passed=$((passed + ${n_pass:-0}))
  failed=$((failed + ${n_fail:-0} + ${n_err:-0}))
  if [ $rc -ne 0 ] && [ $((${n_fail:-0} + ${n_err:-0})) -eq 0 ]; then
    echo "!! $what exited $rc"
    failed=$((failed + 1))
  fi
}

run_integration() {
  echo "== integration (pytest, sanitizer build)"
  run_pytest pytest "$top/tests/integration"
}

# Fuzz corpus replay: every committed seed of tests/fuzz/corpus/<driver>/
# through its driver once (no fuzzing); one test per driver. `make fuzz`
# does the fuzzing.
run_fuzz() {
  local d name
  echo "== fuzz corpus replay"
  if ! make -s --no-print-directory fuzz-build >"$log" 2>&1; then
    cat "$log"
    echo "!! fuzz drivers did not build"
    failed=$((failed + 1))
    return
  fi
  for d in tests/fuzz/corpus/*/; do
    name=$(basename "$d")
    if [ ! -x "build/fuzz/$name" ]; then
      echo "!! no driver for corpus $name"
      failed=$((failed + 1))
      continue
    fi
    if "build/fuzz/$name" -runs=0 "$d" >"$log" 2>&1 \
       && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|property violated' "$log"
    then
      echo "ok   $name ($(ls "$d" | wc -l) inputs)"
      passed=$((passed + 1))
    else
      tail -40 "$log"
      echo "FAIL $name"
      failed=$((failed + 1))
    fi
  done
}

# The admin console in Debian's chromium (playwright-core from npm, pinned
# in tests/browser/package-lock.json; no browser download).
run_browser() {
  echo "== browser (pytest + node + chromium, sanitizer build)"
  run_pytest "browser tests" "$top/tests/browser"
}

case "$mode" in
  unit) run_unit ;;
  integration) run_integration ;;
  fuzz) run_fuzz ;;
  browser) run_browser ;;
  all) run_unit; run_fuzz; run_integration; run_browser ;;
  *) echo "usage: $0 unit|integration|fuzz|browser|all" >&2; exit 2 ;;
esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
