#!/usr/bin/env bash
# Installs the Debian packages Joule builds and tests with. Idempotent, and
# fast when everything is already there. Needs root (or sudo) for apt.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap g++ pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  prometheus-cpp-dev libxrt-dev libbenchmark-dev
  prometheus curl jq uuid-dev
  libssl-dev openssl
)

# --fuzz: also the libFuzzer toolchain (tools/fuzz.sh).
if [ "${1:-}" = "--fuzz" ]; then
  PACKAGES+=(clang-14 libclang-rt-14-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >&2
