#!/usr/bin/env bash
# Builds and runs the whole test suite, then prints "N passed, N failed"
# (test cases, from each test target's XML report) and exits non-zero on any
# failure.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
bazel test //... --test_summary=short "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

passed=0
failed=0
# One line per test target: "//pkg:name  [(cached)] STATUS in ...".
while read -r target status; do
  xml="bazel-testlogs/${target#//}"
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
    # A failed target counts its failed cases, and at least one (a crash or
    # timeout may leave no usable report).
    n=$(( ${bad:-0} + ${errs:-0} ))
    [ "$n" -gt 0 ] || n=1
    failed=$((failed + n))
    [ -n "$total" ] && passed=$((passed + total - n))
  fi
done < <(sed -nE 's#^(//[^ ]+) +(\(cached\) )?(PASSED|FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE|FAILED TO BUILD).*#\1 \3#p' "$log" | sed 's/ NO STATUS/ NO_STATUS/; s/ FAILED TO BUILD/ FAILED_TO_BUILD/')
rm -f "$log"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1  # The build itself failed before any test ran.
fi
bazel shutdown >/dev/null 2>&1 || true
echo "${passed} passed, ${failed} failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
