#!/usr/bin/env bash
# Installs what building and testing the module needs, only when missing:
#   redis-server, redis-cli and redis-benchmark (redis-server, redis-tools);
#   the libclang that bindgen loads in the redis-module crate's build script,
#     with clang's own headers (libclang-dev);
#   python3 with venv (the Valkey test server, the Python examples);
#   node and npm (the Node example);
#   cargo (by hand: rustup).
# Each check looks for the file or command that the build or the tests use,
# not for something with a similar name.
#
#   --dry-run   print the packages that would be installed, one line, and
#               install nothing
# RL_DEPS_ROOT (default empty) prefixes every system path searched, so that
# tests can run the checks against a fake root.
set -euo pipefail
shopt -s nullglob

root=${RL_DEPS_ROOT:-}
dry_run=false
if [ "${1:-}" = "--dry-run" ]; then dry_run=true; fi

have() { command -v "$1" >/dev/null 2>&1; }

# The file names and folders clang-sys (bindgen's loader) searches on Linux,
# minus libclang-cpp, which matches its patterns but is not libclang.
libclang_in() {
  local dir file name
  for dir in "$@"; do
    for file in "$dir"/libclang.so "$dir"/libclang-*.so "$dir"/libclang.so.* "$dir"/libclang-*.so.*; do
      name=${file##*/}
      if [[ $name != *-cpp.* && -e $file ]]; then
        echo "$file"
        return 0
      fi
    done
  done
  return 1
}

libclang_library() {
  if [ -n "${LIBCLANG_PATH:-}" ]; then
    if [ -f "$LIBCLANG_PATH" ]; then echo "$LIBCLANG_PATH"; return 0; fi
    libclang_in "$LIBCLANG_PATH"
    return
  fi
  local dirs=() prefix
  if have llvm-config && prefix=$(llvm-config --prefix 2>/dev/null); then
    dirs+=("$prefix/bin" "$prefix/lib" "$prefix/lib64")
  fi
  if [ -n "${LD_LIBRARY_PATH:-}" ]; then
    IFS=: read -r -a ld_dirs <<<"$LD_LIBRARY_PATH"
    dirs+=("${ld_dirs[@]}")
  fi
  dirs+=("$root"/usr/local/llvm*/lib* "$root"/usr/local/lib*/*/* "$root"/usr/local/lib*/*
    "$root"/usr/local/lib* "$root"/usr/lib*/*/* "$root"/usr/lib*/* "$root"/usr/lib*)
  libclang_in "${dirs[@]}"
}

# The library, and clang's builtin headers (stddef.h and kin) that bindgen
# needs to parse redismodule.h: the library alone (libclang1-N) lacks them.
# libclang looks for them beside itself; Debian keeps them under llvm-N.
libclang_ready() {
  local library libdir headers
  library=$(libclang_library) || return 1
  headers=("${library%/*}"/clang/*/include/stddef.h "$root"/usr/lib/llvm-*/lib/clang/*/include/stddef.h
    "$root"/usr/lib/clang/*/include/stddef.h "$root"/usr/local/lib/clang/*/include/stddef.h)
  if have llvm-config && libdir=$(llvm-config --libdir 2>/dev/null); then
    headers+=("$libdir"/clang/*/include/stddef.h)
  fi
  [ ${#headers[@]} -gt 0 ]
}

missing=()
need() {
  local package
  for package in ${missing[@]+"${missing[@]}"}; do [ "$package" = "$1" ] && return 0; done
  missing+=("$1")
}

have redis-server || need redis-server
have redis-cli || need redis-tools
have redis-benchmark || need redis-tools
libclang_ready || need libclang-dev
# ensurepip is what `python3 -m venv` needs; Debian splits it into python3-venv.
if ! have python3 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then need python3-venv; fi
have node || need nodejs
have npm || need npm

if $dry_run; then
  echo "${missing[*]-}"
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  packages="${missing[*]}"
  sudo=""
  if [ "$EUID" -ne 0 ]; then
    if ! have sudo; then
      echo "Missing: $packages. Not root and no sudo: install them by hand (apt-get install $packages), then run this again." >&2
      exit 1
    fi
    sudo="sudo"
  fi
  if ! have apt-get; then
    echo "Missing: $packages, and there is no apt-get: install the equivalents with your package manager (redis 7.0 or newer, libclang with clang's headers, python3 with venv, node and npm), then run this again." >&2
    exit 1
  fi
  echo "Installing: $packages"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq $packages >/dev/null
  if ! libclang_ready; then
    echo "libclang-dev is installed but no libclang.so with clang's headers was found: set LIBCLANG_PATH to the folder holding libclang.so." >&2
    exit 1
  fi
fi

if ! have cargo; then
  rust_version=unknown
  while IFS= read -r line; do
    if [[ $line =~ ^rust-version\ *=\ *\"([0-9.]+)\" ]]; then rust_version=${BASH_REMATCH[1]}; fi
  done <"${BASH_SOURCE[0]%/*}/../Cargo.toml"
  echo "cargo is missing: install Rust $rust_version or newer (https://rustup.rs), then run this again." >&2
  exit 1
fi
