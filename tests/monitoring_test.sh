#!/usr/bin/env bash
# Joule under a real Prometheus: the deploy config and dashboards are valid
# and name only exported metrics, the exposition is lint-clean, and
# Prometheus scraping a loaded server returns J/token > 0 per device.
set -euo pipefail

R="${TEST_SRCDIR}/joule"
T="${TEST_TMPDIR}"
SERVER="$R/server/joule_server"
LOADGEN="$R/clients/joule_loadgen"
DASH="$R/deploy/grafana/dashboards/joule.json"
PROMCFG="$R/deploy/prometheus/prometheus.yml"

fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in prometheus promtool curl jq; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (run tools/setup.sh)"
done

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== promtool check config"
promtool check config "$PROMCFG"

echo "== dashboard expressions are PromQL"
jq -r '.panels[].targets[].expr' "$DASH" > "$T/exprs.txt"
n=$(wc -l < "$T/exprs.txt")
[ "$n" -ge 10 ] || fail "only $n dashboard expressions"
{
  echo "groups:"
  echo "  - name: dashboard"
  echo "    rules:"
  i=0
  while IFS= read -r e; do
    i=$((i + 1))
    e="${e//\$__rate_interval/1m}"
    e="${e//\$instance/.*}"
    echo "      - record: joule:dashboard_expr_$i"
    echo "        expr: $(jq -Rn --arg e "$e" '$e')"
  done < "$T/exprs.txt"
} > "$T/rules.yml"
promtool check rules "$T/rules.yml"

echo "== a server under load"
RUNFILES_DIR="$TEST_SRCDIR" "$SERVER" --host=127.0.0.1 --port=0 --metrics_port=0 --http_port=-1 \
  --cpu_energy=model 2> "$T/server.log" &
pids+=($!)
grpc_port=""; metrics_port=""
for _ in $(seq 200); do
  grpc_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/server.log" | head -1)
  metrics_port=$(sed -n 's#.*metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*#\1#p' "$T/server.log" | head -1)
  [ -n "$grpc_port" ] && [ -n "$metrics_port" ] && break
  sleep 0.05
done
[ -n "$grpc_port" ] && [ -n "$metrics_port" ] || { cat "$T/server.log"; fail "server did not start"; }

"$LOADGEN" --target="127.0.0.1:$grpc_port" --concurrency=2 --requests=6 --max_tokens=16 > "$T/warmup.txt"
grep -q "(0 failed)" "$T/warmup.txt" || { cat "$T/warmup.txt"; fail "warm-up requests failed"; }

echo "== exposition"
curl -sf "http://127.0.0.1:$metrics_port/metrics" > "$T/metrics.txt"
promtool check metrics < "$T/metrics.txt" || fail "promtool check metrics found problems"
grep -E '^# TYPE joule_' "$T/metrics.txt" | awk '{print $3}' | sort -u > "$T/exported.txt"
grep -o 'joule_[a-z_]*' "$T/exprs.txt" | sed -E 's/_(bucket|sum|count)$//' | sort -u > "$T/used.txt"
missing=$(comm -23 "$T/used.txt" "$T/exported.txt")
[ -z "$missing" ] || fail "dashboards use metrics the server does not export: $missing"
for m in joule_energy_joules_total joule_token_energy_joules joule_generated_tokens_total \
         joule_prompt_tokens_total joule_time_to_first_token_seconds \
         joule_inter_token_latency_seconds joule_request_duration_seconds \
         joule_queue_time_seconds joule_step_duration_seconds joule_requests_total \
         joule_queue_depth joule_running_sequences joule_kv_usage_ratio \
         joule_device_power_watts joule_device_healthy joule_routed_requests_total; do
  grep -qx "$m" "$T/exported.txt" || fail "$m is not exported"
done

echo "== a real Prometheus scrapes it"
prom_port=""
for attempt in 1 2 3 4 5; do
  port=$((20000 + (RANDOM % 30000)))
  cat > "$T/prom.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: joule
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
YML
  prometheus --config.file="$T/prom.yml" --storage.tsdb.path="$T/tsdb$attempt" \
    --web.listen-address="127.0.0.1:$port" 2> "$T/prom.log" &
  prom_pid=$!
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then prom_port=$port; break; fi
    kill -0 "$prom_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$prom_port" ]; then pids+=("$prom_pid"); break; fi
  kill "$prom_pid" 2>/dev/null || true
done
[ -n "$prom_port" ] || { tail -5 "$T/prom.log"; fail "prometheus did not start"; }
# Service discovery hands targets to the scrapers a few seconds after start:
# load the server only once Prometheus is watching it.
up=""
for _ in $(seq 100); do
  up=$(curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode 'query=up{job="joule"}' \
    | jq -r '.data.result[0].value[1] // empty' 2>/dev/null || true)
  [ "$up" = "1" ] && break
  sleep 0.2
done
[ "$up" = "1" ] || fail "Prometheus never scraped the server"

"$LOADGEN" --target="127.0.0.1:$grpc_port" --concurrency=4 --duration=3 --max_tokens=32 \
  --format=json --output="$T/load.json" > /dev/null
jq -e '.statusCodeDistribution.OK > 0 and .joule.energy[0].joulesPerToken > 0' "$T/load.json" >/dev/null \
  || fail "the load run reported no energy"

query='sum by (device, source) (joule_token_energy_joules_sum) / sum by (device, source) (joule_token_energy_joules_count)'
value=""
for _ in $(seq 60); do
  value=$(curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$query" \
    | jq -r '.data.result[] | select(.metric.device == "cpu" and .metric.source == "modeled") | .value[1]' 2>/dev/null || true)
  if [ -n "$value" ] && awk "BEGIN{exit !($value > 0)}"; then break; fi
  value=""
  sleep 0.5
done
[ -n "$value" ] || fail "Prometheus returned no J/token for device cpu"
echo "Prometheus: J/token on cpu (modeled) = $value"

# The dashboard's own J/token panel answers too.
panel=$(jq -r '.panels[0].targets[0].expr' "$DASH")
panel="${panel//\$__rate_interval/1m}"
got=0
for _ in $(seq 40); do  # rate() needs two scrapes inside its window.
  got=$(curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$panel" \
    | jq -r '[.data.result[] | select(.value[1] != "NaN")] | length')
  [ "$got" -ge 1 ] && break
  sleep 0.5
done
[ "$got" -ge 1 ] || fail "the J/token panel's query returned nothing"

echo "PASS"
