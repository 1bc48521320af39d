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
  libcpp-httplib-dev nlohmann-json3-dev
  nginx python3-yaml
  gcc-riscv64-unknown-elf qemu-user
)

# Node.js runs the openai SDK test (tests/node). A machine that already has
# a node (say, NodeSource's) keeps it: Debian's nodejs package would
# conflict with it.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi

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
if [ ${#missing[@]} -ne 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi

# The test's npm packages, exactly as locked; skipped while the installed
# tree matches the lock file.
node_dir="$(dirname "$0")/../tests/node"
if ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.joule-lock"; then
  echo "setup: npm ci in tests/node" >&2
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$node_dir/package-lock.json" "$node_dir/node_modules/.joule-lock"
fi
