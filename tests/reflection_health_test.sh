#!/usr/bin/env bash
# The health service and the API through gRPC reflection alone (no .proto
# on the client), with node's @grpc/grpc-js and grpc-js-reflection-client,
# the way grpcurl and ghz find services.
set -euo pipefail

R="${TEST_SRCDIR}/joule"
T="${TEST_TMPDIR}"
NODE_DIR="$R/tests/node"

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is not installed (run tools/setup.sh)"
[ -f "$NODE_DIR/node_modules/grpc-js-reflection-client/package.json" ] ||
  fail "grpc-js-reflection-client is not installed (run tools/setup.sh)"

pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

RUNFILES_DIR="$TEST_SRCDIR" "$R/server/joule_server" --host=127.0.0.1 --port=0 \
  --http_port=-1 --metrics_port=-1 --instance_name=reflection-test 2> "$T/server.log" &
pid=$!
port=""
for _ in $(seq 400); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/server.log" | head -1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$T/server.log"; fail "server did not start"; }

JOULE_GRPC_TARGET="127.0.0.1:$port" node --test "$NODE_DIR/health_reflection.test.mjs" ||
  { tail -20 "$T/server.log"; exit 1; }
