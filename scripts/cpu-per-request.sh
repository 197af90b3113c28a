#!/usr/bin/env bash
# CPU time per request of the master and of its replica (from /proc, user +
# system), for each redis-benchmark argument list: steadier than requests/s
# on a machine where redis-benchmark, the master and the replica share the
# cores. The master also loads tests/fixtures/floor.c (FLOOR.BUCKET: the
# request, reply and replication of RL.TOKENBUCKET, no key). Every command
# first runs once unmeasured, so that its keys exist; then $ROUNDS rounds of
# $N requests each (50 clients, 100,000 random keys, pipeline 16), medians.
#
#   scripts/cpu-per-request.sh "INCR c:__rand_int__" "RL.TOKENBUCKET b:__rand_int__ 1000000000 1 3600000"
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/replica-sync.sh
MODULE=${RL_MODULE:-$PWD/target/release/libredis_ratelimit.so}
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-7311}
OUT=$(mktemp -d /tmp/rl-cpu.XXXXXX)

header=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path '*/redis-module-*/src/include/redismodule.h' | head -1)
[ -n "$header" ] || { echo "redismodule.h not found: run cargo build first" >&2; exit 1; }
cc -shared -fPIC -O2 -I "$(dirname "$header")" -o "$OUT/floor.so" tests/fixtures/floor.c

start() { # port, dir, extra...
  local port=$1 dir=$2; shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
    --loadmodule "$MODULE" --loadmodule "$OUT/floor.so" --daemonize yes --logfile "$dir/log" "$@"
}
trap 'redis-cli -p $((PORT + 1)) shutdown nosave >/dev/null 2>&1 || true;
      redis-cli -p $PORT shutdown nosave >/dev/null 2>&1 || true' EXIT
start "$PORT" "$OUT/master"
start $((PORT + 1)) "$OUT/replica" --replicaof 127.0.0.1 "$PORT"
wait_for_link $((PORT + 1)) "$OUT/replica/log"
master=$(redis-cli -p "$PORT" info server | tr -d '\r' | awk -F: '/^process_id/ {print $2}')
replica=$(redis-cli -p $((PORT + 1)) info server | tr -d '\r' | awk -F: '/^process_id/ {print $2}')
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

bench() { redis-benchmark -p "$PORT" -c 50 -r 100000 -P 16 -n "$1" --csv "${@:2}" 2>/dev/null; }
for command in "$@"; do
  # shellcheck disable=SC2086
  bench 200000 $command >/dev/null
done
for _ in $(seq "$ROUNDS"); do
  for command in "$@"; do
    m0=$(ticks "$master"); r0=$(ticks "$replica")
    # shellcheck disable=SC2086
    rps=$(bench "$N" $command | tail -1 | cut -d, -f2 | tr -d '"')
    caught_up "$PORT" $((PORT + 1))
    m1=$(ticks "$master"); r1=$(ticks "$replica")
    echo "$command|$rps|$(( (m1 - m0) * 1000000000 / hz / N ))|$(( (r1 - r0) * 1000000000 / hz / N ))"
  done
done >"$OUT/runs"
python3 - "$OUT/runs" <<'EOF'
import collections, statistics, sys
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    command, rps, master, replica = line.rstrip("\n").split("|")
    runs.setdefault(command, []).append((float(rps), int(master), int(replica)))
print(f"{'requests/s':>10} {'master ns':>9} {'replica ns':>10}  (per request, medians)")
for command, values in runs.items():
    rps, master, replica = (statistics.median(v[i] for v in values) for i in range(3))
    print(f"{rps:10.0f} {master:9.0f} {replica:10.0f}  {command}")
EOF
