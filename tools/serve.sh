#!/usr/bin/env bash
# Builds and starts joule_server with the default model (stories260K) and
# devices. Extra arguments go to the server, e.g. --port=50052.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
exec bazel run //server:joule_server -- "$@"
