#!/usr/bin/env bash
# Builds and starts joule_server with the default model (stories260K) and
# devices. Extra arguments go to the server, e.g. --port=50052.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bazel build //server:joule_server //clients:joule_cli
# Bazel's own server is not needed while Joule runs.
bazel shutdown
exec bazel-bin/server/joule_server "$@"
