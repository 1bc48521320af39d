#!/usr/bin/env bash
# Runs a Joule fleet on this machine: N joule_server replicas on free
# loopback ports and nginx in front of them (deploy/nginx), in the
# foreground. A replica that exits is started again on the same ports, so
# a rolling restart is: SIGTERM each replica's pid (status file) in turn.
# SIGTERM or SIGINT to this script stops everything: the replicas drain
# first, then nginx.
#
# nginx open source checks health only passively, so this script does the
# active part, as an ingress controller would: it polls every replica's
# /health and reloads nginx with the replicas that are not ready marked
# `down`. A SIGTERMed replica reports NOT_SERVING for
# --shutdown_delay_seconds (2 here unless given) while still serving, so
# nginx stops sending it calls before it starts refusing them.
#
#   tools/cluster.sh --replicas=3 --grpc_port=50051 --http_port=8000 [server flags...]
#
# Options (before the server flags):
#   --replicas=N        replicas (default 3)
#   --grpc_port=P       nginx's gRPC port (default 50051)
#   --http_port=H       nginx's HTTP port (default 8000)
#   --state_dir=D       logs, nginx config, status.json and the Prometheus
#                       file_sd targets (default /tmp/joule-cluster)
# Environment: JOULE_SERVER (a joule_server binary; default: build one with
# bazel), NGINX (default: nginx).
set -euo pipefail
cd "$(dirname "$0")/.."

replicas=3 grpc_port=50051 http_port=8000 state=/tmp/joule-cluster
while [ $# -gt 0 ]; do
  case "$1" in
    --replicas=*) replicas=${1#*=} ;;
    --grpc_port=*) grpc_port=${1#*=} ;;
    --http_port=*) http_port=${1#*=} ;;
    --state_dir=*) state=${1#*=} ;;
    --) shift; break ;;
    *) break ;;
  esac
  shift
done
# Ours first: a flag the caller repeats wins.
server_flags=(--shutdown_delay_seconds=2 "$@")
[[ "$replicas" =~ ^[1-9][0-9]*$ ]] || { echo "cluster: --replicas must be >= 1" >&2; exit 2; }

server=${JOULE_SERVER:-}
if [ -z "$server" ]; then
  tools/setup.sh
  command -v nginx >/dev/null || { echo "cluster: nginx is not installed (apt-get install nginx)" >&2; exit 1; }
  bazel build -c opt //server:joule_server >&2
  server=bazel-bin/server/joule_server
fi
nginx_bin=${NGINX:-nginx}
command -v curl >/dev/null || { echo "cluster: curl is not installed (apt-get install curl)" >&2; exit 1; }
mkdir -p "$state"/{client_body,proxy,fastcgi,uwsgi,scgi}
# nginx's workers drop root privileges and still write request bodies there.
chmod 777 "$state"/{client_body,proxy,fastcgi,uwsgi,scgi}

# A free loopback port (bound and released: another process could take it
# in between, which start-up then reports).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

declare -a names grpc_ports http_ports metrics_ports pids
for ((i = 0; i < replicas; i++)); do
  names[i]="replica-$i"
  grpc_ports[i]=$(free_port)
  http_ports[i]=$(free_port)
  metrics_ports[i]=$(free_port)
done

start_replica() {
  local i=$1
  "$server" --host=127.0.0.1 --port="${grpc_ports[i]}" --http_port="${http_ports[i]}" \
    --metrics_port="${metrics_ports[i]}" --instance_name="${names[i]}" "${server_flags[@]}" \
    >> "$state/${names[i]}.log" 2>&1 &
  pids[i]=$!
}

write_status() {
  local tmp="$state/status.json.tmp" i
  {
    printf '{"nginx": {"pid": %s, "grpc_port": %s, "http_port": %s},\n "replicas": [' \
      "${nginx_pid:-0}" "$grpc_port" "$http_port"
    for ((i = 0; i < replicas; i++)); do
      [ "$i" -gt 0 ] && printf ','
      printf '\n  {"name": "%s", "pid": %s, "grpc_port": %s, "http_port": %s, "metrics_port": %s}' \
        "${names[i]}" "${pids[i]}" "${grpc_ports[i]}" "${http_ports[i]}" "${metrics_ports[i]}"
    done
    printf ']}\n'
  } > "$tmp"
  mv "$tmp" "$state/status.json"
  # Prometheus file-based service discovery (deploy/prometheus/fleet.yml).
  {
    printf '[{"labels": {"job": "joule"}, "targets": ['
    for ((i = 0; i < replicas; i++)); do
      [ "$i" -gt 0 ] && printf ', '
      printf '"127.0.0.1:%s"' "${metrics_ports[i]}"
    done
    printf ']}]\n'
  } > "$state/prometheus_targets.json.tmp"
  mv "$state/prometheus_targets.json.tmp" "$state/prometheus_targets.json"
}

# ready[i] is 1 when replica i answered /health with 200 at the last poll.
declare -a ready
write_nginx_conf() {
  local grpc_servers="" http_servers="" i down any=0
  for ((i = 0; i < replicas; i++)); do [ "${ready[i]:-1}" = 1 ] && any=1; done
  for ((i = 0; i < replicas; i++)); do
    # With no replica ready, nginx may as well try them all.
    down=""
    [ "$any" = 1 ] && [ "${ready[i]:-1}" != 1 ] && down=" down"
    grpc_servers+="server 127.0.0.1:${grpc_ports[i]} max_fails=1 fail_timeout=5s$down; "
    http_servers+="server 127.0.0.1:${http_ports[i]} max_fails=1 fail_timeout=5s$down; "
  done
  sed -e "s#@PREFIX@#$state#g" -e "s#@GRPC_LISTEN@#127.0.0.1:$grpc_port#" \
    -e "s#@HTTP_LISTEN@#127.0.0.1:$http_port#" \
    -e "s#@GRPC_SERVERS@#$grpc_servers#" -e "s#@HTTP_SERVERS@#$http_servers#" \
    deploy/nginx/joule.conf.template > "$state/nginx.conf"
}

# Running, not a zombie waiting to be reaped (kill -0 succeeds on those).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

stopping=0
stop_all() {
  stopping=1
  local i
  for ((i = 0; i < replicas; i++)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for ((i = 0; i < replicas; i++)); do wait "${pids[i]}" 2>/dev/null || true; done
  [ -n "${nginx_pid:-}" ] && kill -QUIT "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  echo "cluster: stopped" >&2
  exit 0
}
trap stop_all TERM INT

for ((i = 0; i < replicas; i++)); do start_replica "$i"; done
write_nginx_conf
"$nginx_bin" -p "$state" -c "$state/nginx.conf" -e "$state/nginx_error.log" \
  -g 'daemon off;' &
nginx_pid=$!
write_status
echo "cluster: $replicas replicas behind nginx: gRPC 127.0.0.1:$grpc_port, HTTP 127.0.0.1:$http_port; status in $state/status.json" >&2

# Polls every replica's /health; when the set of ready replicas changes,
# nginx reloads with the others marked down (its old worker finishes the
# calls it has).
poll_health() {
  local i now changed=0
  for ((i = 0; i < replicas; i++)); do
    now=0
    curl -sf -m 1 -o /dev/null "http://127.0.0.1:${http_ports[i]}/health" 2>/dev/null && now=1
    if [ "${ready[i]:-1}" != "$now" ]; then
      ready[i]=$now
      changed=1
      echo "cluster: ${names[i]} is $([ "$now" = 1 ] && echo ready || echo "not ready: nginx stops sending it calls")" >&2
    fi
  done
  if [ "$changed" = 1 ]; then
    write_nginx_conf
    kill -HUP "$nginx_pid" 2>/dev/null || true
  fi
}

# Supervise: restart a replica that exited (crashed, killed, or stopped for
# a rolling restart) on its ports, and follow health.
while [ "$stopping" -eq 0 ]; do
  sleep 0.2 &
  wait $! || true
  alive "$nginx_pid" || { echo "cluster: nginx exited; see $state/nginx_error.log" >&2; stop_all; }
  poll_health
  for ((i = 0; i < replicas; i++)); do
    if ! alive "${pids[i]}"; then
      wait "${pids[i]}" 2>/dev/null || true
      echo "cluster: ${names[i]} (pid ${pids[i]}) exited; starting it again" >&2
      start_replica "$i"
      write_status
    fi
  done
done
