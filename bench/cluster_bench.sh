#!/usr/bin/env bash
# Aggregate streaming tok/s through nginx with 1, 2 and 3 replicas
# (tools/cluster.sh), and what nginx adds per token: the same load straight
# to one replica beside it through nginx. Prints one table.
#   bazel run -c opt //bench:cluster_bench -- [--streams=16] [--seconds=10] [--model=...]
set -euo pipefail
streams=16 seconds=10 max_tokens=64 model_flags=()
for a in "$@"; do
  case "$a" in
    --streams=*) streams=${a#*=} ;;
    --seconds=*) seconds=${a#*=} ;;
    --max_tokens=*) max_tokens=${a#*=} ;;
    *) model_flags+=("$a") ;;
  esac
done
R="${RUNFILES_DIR:-$0.runfiles}/joule"
export RUNFILES_DIR="${RUNFILES_DIR:-$0.runfiles}"
LOADGEN="$R/clients/joule_loadgen"
work=$(mktemp -d /tmp/joule-cluster-bench.XXXXXX)
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# tok/s, ITL p50 (ms), TTFT p50 (ms) of one load run against $1.
load() {
  "$LOADGEN" --target="$1" --concurrency="$streams" --duration="$seconds" \
    --requests=0 --max_tokens="$max_tokens" --format=json --output="$work/load.json" > /dev/null
  jq -r '"\(.joule.tokensPerSecond) \(.joule.interTokenLatency.p50 / 1e6) \(.joule.timeToFirstToken.p50 / 1e6) \(.statusCodeDistribution | to_entries | map("\(.key)=\(.value)") | join(","))"' "$work/load.json"
}
echo "cluster_bench: $streams streams x ${seconds}s, $max_tokens tokens per request, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
printf '%-9s %-14s %10s %10s %10s  %s\n' replicas target tok/s "ITL p50" "TTFT p50" codes
for n in 1 2 3; do
  grpc=$(free_port) http=$(free_port)
  JOULE_SERVER="$R/server/joule_server" "$R/tools/cluster.sh" --replicas="$n" \
    --grpc_port="$grpc" --http_port="$http" --state_dir="$work/c$n" -- \
    --cpu_energy=model "${model_flags[@]}" 2> "$work/cluster$n.log" &
  cpid=$!
  for _ in $(seq 600); do
    [ -f "$work/c$n/status.json" ] && curl -sf "http://127.0.0.1:$http/health" > /dev/null 2>&1 && break
    sleep 0.1
  done
  if ! curl -sf "http://127.0.0.1:$http/health" > /dev/null 2>&1; then
    echo "cluster_bench: the fleet did not start; see $work/cluster$n.log and $work/c$n/*.log" >&2
    kill -TERM "$cpid"; exit 1
  fi
  sleep 1
  read -r tps itl ttft codes < <(load "127.0.0.1:$grpc")
  printf '%-9s %-14s %10.1f %8.2fms %8.1fms  %s\n' "$n" nginx "$tps" "$itl" "$ttft" "$codes"
  if [ "$n" = 1 ]; then
    direct=$(jq -r '.replicas[0].grpc_port' "$work/c$n/status.json")
    read -r tps itl ttft codes < <(load "127.0.0.1:$direct")
    printf '%-9s %-14s %10.1f %8.2fms %8.1fms  %s\n' 1 "direct" "$tps" "$itl" "$ttft" "$codes"
  fi
  kill -TERM "$cpid"; wait "$cpid" 2>/dev/null || true
done
echo "On 2 cores every replica shares the same two cores with nginx and the load generator: replicas add no compute, so aggregate tok/s cannot scale here; the table shows what nginx costs and that the fleet holds its throughput."
rm -rf "$work"
