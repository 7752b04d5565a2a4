#!/usr/bin/env bash
# Whole-swarm control traffic of N idle nodes on loopback, from the loopback interface's byte
# and packet counters (TCP/IP headers included, so run it on an otherwise quiet machine).
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
read -r b0 p0 < <(lo)
sleep "$seconds"
read -r b1 p1 < <(lo)
echo "$nodes idle nodes, $seconds s: $(((b1 - b0) / seconds)) B/s, $(((p1 - p0) / seconds)) packets/s on lo (TCP/IP headers included)"
