#!/usr/bin/env bash
# Whole-swarm control traffic of N idle nodes on loopback: the TCP payload the nodes' sockets
# sent (zenoh frames: our messages plus zenoh's own keep-alives and framing, from `ss`), and the
# loopback interface's byte and packet counters (TCP/IP headers included, so run it on an
# otherwise quiet machine).
#
#   scripts/idle-traffic.sh [SWARM_NODE_BINARY] [NODES=5] [SECONDS=30]
set -euo pipefail
bin=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/swarm-mesh/target}/debug/swarm-node}
nodes=${2:-5}
seconds=${3:-30}
base_port=17600
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for i in $(seq 0 $((nodes - 1))); do
  args=(run --id "idle$i" --swarm idle --no-multicast --listen "tcp/127.0.0.1:$((base_port + i))"
        --state-dir "$dir/$i")
  for j in $(seq 0 $((i - 1))); do args+=(--connect "tcp/127.0.0.1:$((base_port + j))"); done
  SWARM_LOG=error XDG_CONFIG_HOME="$dir" "$bin" "${args[@]}" &
  pids+=($!)
done
sleep 15 # joined, elected, settled
lo() { awk '/ lo:/ {print $2, $3}' /proc/net/dev; }
last_port=$((base_port + nodes - 1))
# Sum of bytes_sent over every TCP socket with one end on a node's listening port.
payload() {
  ss -tinH "( sport >= :$base_port and sport <= :$last_port ) or ( dport >= :$base_port and dport <= :$last_port )" |
    grep -o 'bytes_sent:[0-9]*' | awk -F: '{s += $2} END {print s + 0}'
}
read -r b0 p0 < <(lo)
s0=$(payload)
sleep "$seconds"
read -r b1 p1 < <(lo)
s1=$(payload)
echo "$nodes idle nodes, $seconds s: $(((s1 - s0) / seconds)) B/s of TCP payload (zenoh frames); $(((b1 - b0) / seconds)) B/s, $(((p1 - p0) / seconds)) packets/s on lo (TCP/IP headers included)"
