#!/usr/bin/env bash
# A short soak: streaming load on cpu + riscv while the simulator daemon is
# killed every 4 s. Fails if a stream is lost, if the server's RSS, threads
# or file descriptors climb past their margins, or if it does not exit
# cleanly on SIGTERM. The long run is `bazel run -c opt //bench:soak`.
set -euo pipefail
soak="$TEST_SRCDIR/joule/bench/soak"
export RUNFILES_DIR="$TEST_SRCDIR"
out="$TEST_TMPDIR/soak.txt"
margins=()
if [ -n "${ASAN_OPTIONS:-}" ]; then
  # ASan's quarantine holds freed memory back (up to 256 MiB), so RSS says
  # nothing about leaks there; LeakSanitizer checks them at exit instead.
  # Losses, threads and fds are still checked.
  margins=(--rss_tolerance_mib=1024)
elif [ -n "${TSAN_OPTIONS:-}" ]; then
  # TSan's shadow memory and its per-thread and sync-object state count in
  # RSS and grow in jumps (36 MiB at once when an allocator arena's shadow
  # was first touched), so RSS is judged by the normal and ASan passes only.
  margins=(--rss_tolerance_mib=1024)
fi
if ! "$soak" --server="$TEST_SRCDIR/joule/server/joule_server" \
    --duration=60 --warmup_seconds=15 --sample_seconds=2 --clients=4 \
    --kill_every_seconds=4 "${margins[@]}" --check >"$out" 2>&1; then
  cat "$out"
  exit 1
fi
cat "$out"
# The run must have exercised what it claims to.
grep -Eq ' [1-9][0-9]* daemon kills, [1-9][0-9]* failovers, 0 lost' "$out" ||
  { echo "soak_test: no kill/failover happened"; exit 1; }
grep -Eq '[1-9][0-9]* cancelled by the client, [1-9][0-9]* past their deadline, [1-9][0-9]* refused' "$out" ||
  { echo "soak_test: the cancel/deadline/refuse traffic did not run"; exit 1; }
