#!/usr/bin/env bash
# Builds and runs the whole test suite, then prints "N passed, N failed"
# (test cases, from each test target's XML report, plus one per fuzz target)
# and exits non-zero on any failure. Four passes, as CI runs them:
#   normal      bazel test //... (optimized, as served)
#   asan_ubsan  the same suite under AddressSanitizer + UBSan
#   tsan        the same suite under ThreadSanitizer (tools/tsan)
#   fuzz        every libFuzzer target for JOULE_FUZZ_SECONDS (default 20)
# JOULE_TEST_PASSES="normal" (or any subset) runs fewer; other arguments go
# to bazel test.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

passes="${JOULE_TEST_PASSES:-normal asan_ubsan tsan fuzz}"
passed=0
failed=0

# Adds one bazel test run's case counts to passed/failed.
count_cases() {
  local log=$1 testlogs=$2 target status xml cases total bad errs n
  while read -r target status; do
    xml="$testlogs/${target#//}"
    xml="${xml/://}/test.xml"
    cases=$(grep -o -m1 '<testsuites [^>]*' "$xml" 2>/dev/null)
    total=$(sed -n 's/.* tests="\([0-9]*\)".*/\1/p' <<<"$cases")
    bad=$(sed -n 's/.* failures="\([0-9]*\)".*/\1/p' <<<"$cases")
    errs=$(sed -n 's/.* errors="\([0-9]*\)".*/\1/p' <<<"$cases")
    if [ "$status" = PASSED ] && [ -n "$total" ]; then
      passed=$((passed + total - ${bad:-0} - ${errs:-0}))
    elif [ "$status" = PASSED ]; then
      passed=$((passed + 1))
    else
      # A failed target counts its failed cases, and at least one (a crash
      # or timeout may leave no usable report).
      n=$(( ${bad:-0} + ${errs:-0} ))
      [ "$n" -gt 0 ] || n=1
      failed=$((failed + n))
      [ -n "$total" ] && passed=$((passed + total - n))
    fi
  done < <(sed -nE 's#^(//[^ ]+) +(\(cached\) )?(PASSED|FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE|FAILED TO BUILD).*#\1 \3#p' "$log" | sed 's/ NO STATUS/ NO_STATUS/; s/ FAILED TO BUILD/ FAILED_TO_BUILD/')
}

# One bazel test pass; $1 names it, the rest are bazel arguments.
bazel_pass() {
  local name=$1 log rc before
  shift
  log=$(mktemp)
  echo "=== test pass: $name ===" >&2
  bazel test //... --test_summary=short "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  before=$failed
  count_cases "$log" "$(bazel info "$@" bazel-testlogs 2>/dev/null)"
  rm -f "$log"
  if [ "$rc" -ne 0 ] && [ "$failed" -eq "$before" ]; then
    failed=$((failed + 1))  # The build itself failed before any test ran.
  fi
}

for pass in $passes; do
  case "$pass" in
    normal) bazel_pass normal "$@" ;;
    asan_ubsan) bazel_pass asan_ubsan --config=asan_ubsan "$@" ;;
    tsan) bazel_pass tsan --config=tsan "$@" ;;
    fuzz)
      echo "=== test pass: fuzz ===" >&2
      out=$(tools/fuzz.sh "${JOULE_FUZZ_SECONDS:-20}" | tail -1)
      p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$out")
      f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$out")
      passed=$((passed + ${p:-0}))
      failed=$((failed + ${f:-1}))
      ;;
    *) echo "unknown test pass '$pass'" >&2; failed=$((failed + 1)) ;;
  esac
done
bazel shutdown >/dev/null 2>&1 || true
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
