#!/usr/bin/env bash
# Installs what building and testing the module needs, only when missing:
# redis-server and redis-cli/redis-benchmark (redis-server, redis-tools),
# libclang (libclang-dev, for the redis-module crate's bindgen), and what the
# example tests run: python3 with venv, node and npm.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
if ! ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so' &&
   ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
  missing+=(libclang-dev)
fi

# Python with venv, for the Valkey test server (make test-valkey) and the
# Python examples' venv (tests/examples.rs).
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi

# Node.js and npm, for the Node example (tests/examples.rs runs npm ci).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "Installing: $packages"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq $packages >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust 1.77 or newer (https://rustup.rs)" >&2
  exit 1
fi
