#!/usr/bin/env bash
# Instructions per call, under valgrind's callgrind: repeatable, whatever
# the machine's noise. Starts a master and a replica, both with the module,
# the one named by $PROFILED (master, the default, or replica) under
# callgrind, then for each redis-benchmark argument list: a warm-up run,
# a measured run of $N requests (50 clients, $KEYS_SPACE random keys, 100,000
# by default, pipeline 16), and a dump once the replica has caught up. Prints instructions per
# request for each, and leaves the profiles in $OUT
# (callgrind_annotate --inclusive=yes $OUT/cg.out.N).
#
#   scripts/profile.sh "INCR c:__rand_int__" "RL.TOKENBUCKET b:__rand_int__ 1000000000 1 3600000"
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/replica-sync.sh
MODULE=${RL_MODULE:-$PWD/target/release/libredis_ratelimit.so}
N=${N:-100000}
KEYS_SPACE=${KEYS_SPACE:-100000}
OUT=${OUT:-$(mktemp -d /tmp/rl-profile.XXXXXX)}
PORT=${PORT:-7301}
PROFILED=${PROFILED:-master}
case $PROFILED in master | replica) ;; *) echo "PROFILED must be master or replica" >&2; exit 1 ;; esac
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

mkdir -p "$OUT/master" "$OUT/replica"
profiled=
# server <port> <dir> <extra arguments...>: under callgrind if it is the one
# profiled (it stays in the foreground, as valgrind's child), else daemonized.
server() {
  local port=$1 dir=$2 role=$3; shift 3
  local args=(--port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no
    --loadmodule "$MODULE" "$@")
  if [ "$role" = "$PROFILED" ]; then
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" redis-server "${args[@]}" \
      >"$dir/log" 2>&1 &
    profiled=$!
  else
    redis-server "${args[@]}" --daemonize yes --logfile "$dir/log"
  fi
}
trap 'redis-cli -p $((PORT + 1)) shutdown nosave >/dev/null 2>&1 || true;
      redis-cli -p $PORT shutdown nosave >/dev/null 2>&1 || true; wait $profiled 2>/dev/null || true' EXIT
server "$PORT" "$OUT/master" master
for _ in $(seq 300); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.2; done
server $((PORT + 1)) "$OUT/replica" replica --replicaof 127.0.0.1 "$PORT"
wait_for_link $((PORT + 1)) "$OUT/replica/log"

bench() { redis-benchmark -p "$PORT" -c 50 -r "$KEYS_SPACE" -P 16 -n "$N" "$@" >/dev/null 2>&1; }
run=1
for command in "$@"; do
  # shellcheck disable=SC2086
  bench $command
  caught_up "$PORT" $((PORT + 1))
  callgrind_control -z "$profiled" >/dev/null 2>&1
  # shellcheck disable=SC2086
  bench $command
  caught_up "$PORT" $((PORT + 1))
  callgrind_control -d "run$run" "$profiled" >/dev/null 2>&1
  total=$(grep -m1 '^summary:' "$OUT/cg.out.$run" | awk '{print $2}')
  printf '%8d instructions/request  %s  (%s)\n' $((total / N)) "$command" "$OUT/cg.out.$run"
  run=$((run + 1))
done
