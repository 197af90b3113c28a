#!/usr/bin/env bash
# Instructions per call, under valgrind's callgrind: repeatable, whatever
# the machine's noise. Starts a master under callgrind with the module and a
# plain replica, then for each redis-benchmark argument list: a warm-up run,
# a measured run of $N requests (50 clients, 100,000 random keys, pipeline
# 16), and a dump. Prints instructions per request for each, and leaves the
# profiles in $OUT (callgrind_annotate --inclusive=yes $OUT/cg.out.N).
#
#   scripts/profile.sh "INCR c:__rand_int__" "RL.TOKENBUCKET b:__rand_int__ 1000000000 1 3600000"
set -euo pipefail
cd "$(dirname "$0")/.."
MODULE=${RL_MODULE:-$PWD/target/release/libredis_ratelimit.so}
N=${N:-100000}
OUT=${OUT:-$(mktemp -d /tmp/rl-profile.XXXXXX)}
PORT=${PORT:-7301}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

mkdir -p "$OUT/master" "$OUT/replica"
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
  redis-server --port "$PORT" --bind 127.0.0.1 --dir "$OUT/master" --save '' \
  --appendonly no --loadmodule "$MODULE" >"$OUT/master/log" 2>&1 &
master=$!
trap 'redis-cli -p $((PORT + 1)) shutdown nosave >/dev/null 2>&1 || true;
      redis-cli -p $PORT shutdown nosave >/dev/null 2>&1 || true; wait $master 2>/dev/null || true' EXIT
for _ in $(seq 300); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.2; done
redis-server --port $((PORT + 1)) --bind 127.0.0.1 --dir "$OUT/replica" --save '' \
  --loadmodule "$MODULE" --replicaof 127.0.0.1 "$PORT" --daemonize yes --logfile "$OUT/replica/log"
until redis-cli -p $((PORT + 1)) info replication | grep -q master_link_status:up; do sleep 0.2; done

bench() { redis-benchmark -p "$PORT" -c 50 -r 100000 -P 16 -n "$N" "$@" >/dev/null 2>&1; }
run=1
for command in "$@"; do
  # shellcheck disable=SC2086
  bench $command
  callgrind_control -z "$master" >/dev/null 2>&1
  # shellcheck disable=SC2086
  bench $command
  callgrind_control -d "run$run" "$master" >/dev/null 2>&1
  total=$(grep -m1 '^summary:' "$OUT/cg.out.$run" | awk '{print $2}')
  printf '%8d instructions/request  %s  (%s)\n' $((total / N)) "$command" "$OUT/cg.out.$run"
  run=$((run + 1))
done
