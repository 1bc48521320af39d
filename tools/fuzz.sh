#!/usr/bin/env bash
# Builds every libFuzzer target (clang-14, ASan + UBSan) and runs each for
# [seconds] (default 60) from its committed seed corpus. Exits non-zero on a
# finding and prints the reproducer's path; replay one with
#   bazel-bin/tests/fuzz/<target> <reproducer>
# or add it to tests/fuzz/corpus/<name>/ so the normal suite replays it.
# Prints "N passed, N failed" (one per target) last.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
tools/setup.sh --fuzz || { echo "0 passed, 1 failed"; exit 1; }

# Its own output base: the compiler differs from the normal build's, and
# sharing one would rebuild everything each time either is used.
out_base="${JOULE_FUZZ_OUTPUT_BASE:-$HOME/.cache/joule-fuzz}"
bz() { bazel --output_base="$out_base" "$@"; }
targets=$(bz query 'attr(tags, "\bfuzz\b", //tests/fuzz:all)' 2>/dev/null | sort)
# --symlink_prefix=/: no bazel-* links in the tree; links into this output
# base would make the normal build's //... load them as packages.
if [ -z "$targets" ] || ! bz build --config=fuzz --symlink_prefix=/ $targets; then
  bz shutdown >/dev/null 2>&1 || true
  echo "0 passed, 1 failed"
  exit 1
fi
bin_dir=$(bz info --config=fuzz bazel-bin 2>/dev/null)
bz shutdown >/dev/null 2>&1 || true

work=$(mktemp -d /tmp/joule-fuzz.XXXXXX)
passed=0
failed=0
for t in $targets; do
  name=${t##*:}
  seeds="tests/fuzz/corpus/${name%_fuzzer}"
  corpus="$work/$name/corpus"
  artifacts="$work/$name/findings/"
  mkdir -p "$corpus" "$artifacts"
  # New inputs go to a scratch copy; the committed seeds stay as they are.
  cp -r "$seeds/." "$corpus/" 2>/dev/null || true
  echo "fuzz: $name for ${seconds}s" >&2
  "$bin_dir/tests/fuzz/$name" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$artifacts" "$corpus" >"$work/$name/log" 2>&1
  rc=$?
  finding=$(ls "$artifacts" 2>/dev/null | head -1)
  if [ "$rc" -eq 0 ] && [ -z "$finding" ]; then
    passed=$((passed + 1))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name/log")
    echo "fuzz: $name ok, ${runs:-?} inputs" >&2
  else
    failed=$((failed + 1))
    tail -40 "$work/$name/log" >&2
    echo "fuzz: $name FOUND A BUG (exit $rc); reproducer: $artifacts$finding" >&2
  fi
done
echo "fuzz: corpora and logs in $work" >&2
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
