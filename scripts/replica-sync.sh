# Sourced by the measuring scripts (profile.sh, cpu-per-request.sh): waiting
# on a replica of the master they start.

# wait_for_link <replica port> <replica log>: until the replica's link to its
# master is up; fails after 60 s.
wait_for_link() {
  local _
  for _ in $(seq 300); do
    redis-cli -p "$1" info replication 2>/dev/null | grep -q master_link_status:up && return 0
    sleep 0.2
  done
  echo "the replica did not link to the master (see $2)" >&2
  return 1
}

# repl_offset <port> <field>: a replication offset from INFO.
repl_offset() { redis-cli -p "$1" info replication | tr -d '\r' | awk -F: "/^$2:/ {print \$2}"; }

# caught_up <master port> <replica port>: until the replica has applied
# everything the master sent.
caught_up() {
  local target
  target=$(repl_offset "$1" master_repl_offset)
  until [ "$(repl_offset "$2" slave_repl_offset)" -ge "$target" ]; do sleep 0.05; done
}
