#!/usr/bin/env bash
# Fails when a locked dependency needs a newer Rust than Cargo.toml's
# rust-version (clippy's incompatible_msrv checks only our own code).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --locked --filter-platform x86_64-unknown-linux-gnu |
  python3 -c '
import json, sys
meta = json.load(sys.stdin)
def version(text):
    return (tuple(int(part) for part in text.split(".")) + (0, 0))[:3]
ours = next(p for p in meta["packages"] if p["id"] == meta["resolve"]["root"])
msrv = version(ours["rust_version"])
used = {node["id"] for node in meta["resolve"]["nodes"]}
newer = sorted("%s %s needs Rust %s" % (p["name"], p["version"], p["rust_version"])
               for p in meta["packages"]
               if p["id"] in used and p.get("rust_version") and version(p["rust_version"]) > msrv)
if newer:
    sys.exit("rust-version is " + ours["rust_version"] + ", but:\n  " + "\n  ".join(newer))
'
