#!/usr/bin/env bash
# The HTTP API through a real third-party client: the npm openai SDK
# (pinned in tests/node/package-lock.json, installed by tools/setup.sh)
# against a joule_server, compared with what the gRPC API returns for the
# same requests.
set -euo pipefail

R="${TEST_SRCDIR}/joule"
T="${TEST_TMPDIR}"
SERVER="$R/server/joule_server"
CLI="$R/clients/joule_cli"
NODE_DIR="$R/tests/node"
KEY="joule-sdk-test-key"

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is not installed (run tools/setup.sh)"
[ -f "$NODE_DIR/node_modules/openai/package.json" ] ||
  fail "the openai package is not installed (run tools/setup.sh: npm ci in tests/node)"

pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

RUNFILES_DIR="$TEST_SRCDIR" "$SERVER" --host=127.0.0.1 --port=0 --http_port=0 \
  --metrics_port=-1 --api_key="$KEY" --cpu_energy=model 2> "$T/server.log" &
pid=$!
grpc_port=""; http_port=""
for _ in $(seq 400); do
  grpc_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/server.log" | head -1)
  http_port=$(sed -n 's#.*HTTP API on http://127\.0\.0\.1:\([0-9]*\)/v1.*#\1#p' "$T/server.log" | head -1)
  [ -n "$grpc_port" ] && [ -n "$http_port" ] && break
  sleep 0.05
done
[ -n "$grpc_port" ] && [ -n "$http_port" ] || { cat "$T/server.log"; fail "server did not start"; }

# The reference texts, from the gRPC API.
PROMPT="Once upon a time"
CHAT_USER="Tell me a story about a cat."
CHAT_PROMPT=$'User: Tell me a story about a cat.\nAssistant:'
MAX_TOKENS=24
SEED=1234
grpc_text() {
  "$CLI" --target="127.0.0.1:$grpc_port" --api_key="$KEY" --max_tokens=$MAX_TOKENS \
    --ignore_eos "$@" 2>> "$T/cli.log" | head -c -1
}
grpc_text --prompt="$PROMPT" --temperature=0 > "$T/text.txt"
grpc_text --prompt="$CHAT_PROMPT" --temperature=0 > "$T/chat.txt"
grpc_text --prompt="$PROMPT" --temperature=1 --seed=$SEED > "$T/sampled.txt"
[ -s "$T/text.txt" ] && [ -s "$T/chat.txt" ] || { cat "$T/cli.log"; fail "joule_cli returned nothing"; }
model=$(curl -sf "http://127.0.0.1:$http_port/v1/models" | jq -r '.data[0].id')
jq -n --arg model "$model" --arg prompt "$PROMPT" --arg chat_user "$CHAT_USER" \
  --argjson max_tokens $MAX_TOKENS --argjson seed $SEED \
  --rawfile text "$T/text.txt" --rawfile chat_text "$T/chat.txt" \
  --rawfile sampled_text "$T/sampled.txt" \
  '{model: $model, prompt: $prompt, chat_user: $chat_user, max_tokens: $max_tokens,
    seed: $seed, text: $text, chat_text: $chat_text, sampled_text: $sampled_text}' \
  > "$T/expected.json"

JOULE_HTTP_URL="http://127.0.0.1:$http_port/v1" JOULE_API_KEY="$KEY" \
JOULE_EXPECTED="$T/expected.json" \
  node --test "$NODE_DIR/openai_sdk.test.mjs" || { tail -20 "$T/server.log"; exit 1; }
