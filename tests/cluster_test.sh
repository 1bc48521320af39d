#!/usr/bin/env bash
# Three replicas behind nginx on loopback (tools/cluster.sh with
# deploy/nginx): calls spread over every replica through both APIs, a
# SIGKILLed replica costs only its in-flight calls (failing cleanly), a
# rolling restart under load loses nothing, and a real Prometheus scraping
# the fleet answers the dashboard's fleet J/token per device.
set -euo pipefail

R="${TEST_SRCDIR}/joule"
T="${TEST_TMPDIR}"
CLI="$R/clients/joule_cli"
LOADGEN="$R/clients/joule_loadgen"
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in nginx curl jq prometheus; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (run tools/setup.sh)"
done

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
GRPC=$(free_port)
HTTP=$(free_port)
STATE="$T/cluster"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# tools/cluster.sh runs from its own tree: the runfiles hold it and
# deploy/nginx.
RUNFILES_DIR="$TEST_SRCDIR" JOULE_SERVER="$R/server/joule_server" \
  "$R/tools/cluster.sh" --replicas=3 --grpc_port="$GRPC" --http_port="$HTTP" \
  --state_dir="$STATE" -- --cpu_energy=model --shutdown_grace_seconds=20 \
  2> "$T/cluster.log" &
cluster_pid=$!
pids+=("$cluster_pid")

replica_field() { jq -r ".replicas[$1].$2" "$STATE/status.json"; }
healthy() {  # replica index
  curl -sf "http://127.0.0.1:$(replica_field "$1" http_port)/health" >/dev/null 2>&1
}
for _ in $(seq 300); do
  [ -f "$STATE/status.json" ] && healthy 0 && healthy 1 && healthy 2 && break
  sleep 0.1
done
healthy 0 && healthy 1 && healthy 2 || { cat "$T/cluster.log" "$STATE"/*.log; fail "the cluster did not start"; }
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$HTTP/health" >/dev/null 2>&1 && break
  sleep 0.1
done

# nginx benches a replica for fail_timeout (5 s) after one failed
# connection, and a replica that answered /health late (a sanitizer build
# starting up) was briefly marked down: until every replica has served a
# call through nginx, the balance below would measure nginx's start-up,
# not its steady state. Bounded: 20 rounds of 6 calls.
for _ in $(seq 20); do
  "$LOADGEN" --target="127.0.0.1:$GRPC" --concurrency=3 --requests=6 --max_tokens=2 \
    --format=json --output="$T/warm.json" > /dev/null 2>&1 || true
  jq -e '.joule.instances | length == 3' "$T/warm.json" > /dev/null 2>&1 && break
  sleep 0.5
done

echo "== 60 gRPC streams and 30 HTTP requests through nginx"
"$LOADGEN" --target="127.0.0.1:$GRPC" --concurrency=4 --requests=60 --max_tokens=16 \
  --format=json --output="$T/grpc.json" > /dev/null
jq -e '.statusCodeDistribution.OK == 60' "$T/grpc.json" > /dev/null ||
  { jq . "$T/grpc.json"; fail "not every gRPC stream succeeded"; }
jq -e '.joule.instances | length == 3' "$T/grpc.json" > /dev/null ||
  { jq .joule.instances "$T/grpc.json"; fail "gRPC calls did not reach all three replicas"; }
: > "$T/http_instances.txt"
for i in $(seq 30); do
  curl -sfN "http://127.0.0.1:$HTTP/v1/completions" -H 'Content-Type: application/json' \
    -d '{"model": "stories260K.bin", "prompt": "Once", "max_tokens": 8, "stream": true,
         "stream_options": {"include_usage": true}}' > "$T/sse.txt" || fail "HTTP request $i failed"
  # The stream's last event is [DONE] (followed by its blank line).
  tail -c 14 "$T/sse.txt" | cmp -s - <(printf 'data: [DONE]\n\n') ||
    fail "HTTP stream $i did not end with [DONE]"
  grep '"usage":{' "$T/sse.txt" | sed 's/^data: //' | jq -r .joule.server_instance >> "$T/http_instances.txt"
done
[ "$(wc -l < "$T/http_instances.txt")" -eq 30 ] || fail "not every HTTP stream ended with its usage"
[ "$(sort -u "$T/http_instances.txt" | wc -l)" -eq 3 ] ||
  { sort "$T/http_instances.txt" | uniq -c; fail "HTTP calls did not reach all three replicas"; }
echo "gRPC by replica: $(jq -c .joule.instances "$T/grpc.json"); HTTP: $(sort "$T/http_instances.txt" | uniq -c | tr -s ' ' | tr '\n' ';')"

echo "== SIGKILL one replica under load"
"$LOADGEN" --target="127.0.0.1:$GRPC" --concurrency=6 --requests=0 --duration=6 --max_tokens=64 \
  --deadline_seconds=30 --format=json --output="$T/kill.json" > /dev/null &
load_pid=$!
sleep 2
victim=$(replica_field 1 pid)
kill -KILL "$victim"
start=$(date +%s)
wait "$load_pid" || true
[ $(( $(date +%s) - start )) -lt 40 ] || fail "the load run hung after the kill"
# A call the killed replica was running fails: UNAVAILABLE if nginx had
# not yet passed on its response headers, else INTERNAL (nginx can only
# reset a stream whose upstream died mid-response, with HTTP/2's
# INTERNAL_ERROR). Nothing else, and nothing hangs.
jq -e '[.errorDistribution | keys[] | select(startswith("UNAVAILABLE") or
        test("^INTERNAL: .*RST_STREAM with error code 2") | not)] | length == 0' \
  "$T/kill.json" > /dev/null ||
  { jq .errorDistribution "$T/kill.json"; fail "in-flight calls failed other than UNAVAILABLE or a reset stream"; }
echo "in-flight at the kill: $(jq -c .statusCodeDistribution "$T/kill.json"); $(jq -c .errorDistribution "$T/kill.json")"
# Calls started now all succeed, whether or not the replica is back yet.
"$LOADGEN" --target="127.0.0.1:$GRPC" --concurrency=4 --requests=30 --max_tokens=16 \
  --format=json --output="$T/after_kill.json" > /dev/null
jq -e '.statusCodeDistribution.OK == 30' "$T/after_kill.json" > /dev/null ||
  { jq .statusCodeDistribution "$T/after_kill.json"; fail "calls after the kill failed"; }
for _ in $(seq 300); do
  [ "$(replica_field 1 pid)" != "$victim" ] && healthy 1 && break
  sleep 0.1
done
healthy 1 || fail "the killed replica was not started again"

echo "== rolling restart under load"
log_before=$(wc -l < "$T/cluster.log")
"$LOADGEN" --target="127.0.0.1:$GRPC" --concurrency=4 --requests=0 --duration=30 --max_tokens=48 \
  --deadline_seconds=60 --format=json --output="$T/rolling.json" > /dev/null &
load_pid=$!
# Each restart waits 5 s after the previous replica came back (the load
# runs 30 s), so at most one replica is out at a time.
for i in 0 1 2; do
  sleep 5
  old=$(replica_field "$i" pid)
  kill -TERM "$old"
  for _ in $(seq 600); do
    [ "$(replica_field "$i" pid)" != "$old" ] && healthy "$i" && break
    sleep 0.1
  done
  healthy "$i" || fail "replica $i did not come back"
done
wait "$load_pid" || true
jq -e '(.statusCodeDistribution | keys) == ["OK"] and .count > 0' "$T/rolling.json" > /dev/null ||
  { jq '.statusCodeDistribution, .errorDistribution' "$T/rolling.json"; fail "requests failed during the rolling restart"; }
echo "rolling restart: $(jq -c .statusCodeDistribution "$T/rolling.json") by $(jq -c .joule.instances "$T/rolling.json")"
# Each replica was taken out of nginx while it said NOT_SERVING, before it
# refused calls (--shutdown_delay_seconds): that is what makes it lossless.
for i in 0 1 2; do
  tail -n "+$((log_before + 1))" "$T/cluster.log" |
    grep -q "replica-$i is not ready: nginx stops sending it calls" ||
    { cat "$T/cluster.log"; fail "replica-$i was not taken out of nginx before it drained"; }
done

echo "== Prometheus scraping the fleet"
prom_port=$(free_port)
sed "s#/tmp/joule-cluster/prometheus_targets.json#$STATE/prometheus_targets.json#" \
  "$R/deploy/prometheus/fleet.yml" | sed 's/scrape_interval: 5s/scrape_interval: 1s/' > "$T/prom.yml"
prometheus --config.file="$T/prom.yml" --storage.tsdb.path="$T/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" 2> "$T/prom.log" &
pids+=($!)
query() {
  curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" 2>/dev/null
}
for _ in $(seq 150); do
  [ "$(query 'count(up{job="joule"} == 1)' | jq -r '.data.result[0].value[1] // 0')" = 3 ] && break
  sleep 0.2
done
"$LOADGEN" --target="127.0.0.1:$GRPC" --concurrency=3 --requests=0 --duration=3 --max_tokens=32 > /dev/null
# The dashboard's fleet J/token panel, over the whole run.
fleet=$(jq -r '.panels[] | select(.title | startswith("Fleet energy per token")) | .targets[0].expr' \
  "$R/deploy/grafana/dashboards/joule.json" | sed 's/\$__rate_interval/5m/g')
[ -n "$fleet" ] || fail "the dashboard has no fleet J/token panel"
value=""
for _ in $(seq 60); do
  value=$(query "$fleet" | jq -r '.data.result[] | select(.metric.device == "cpu") | .value[1]' || true)
  [ -n "$value" ] && [ "$value" != NaN ] && awk "BEGIN{exit !($value > 0)}" && break
  value=""
  sleep 0.5
done
[ -n "$value" ] || fail "Prometheus returned no fleet J/token for device cpu"
replicas=$(query 'count by (device) (count by (instance, device) (joule_generated_tokens_total))' |
  jq -r '.data.result[] | select(.metric.device == "cpu") | .value[1]')
[ "$replicas" = 3 ] || fail "tokens were counted on $replicas replicas, not 3"
echo "fleet J/token on cpu = $value over $replicas replicas"

echo "== SIGTERM stops the fleet"
kill -TERM "$cluster_pid"
for _ in $(seq 300); do kill -0 "$cluster_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$cluster_pid" 2>/dev/null && fail "tools/cluster.sh did not stop"
for i in 0 1 2; do
  kill -0 "$(replica_field "$i" pid)" 2>/dev/null && fail "replica $i still runs"
done
echo PASS
