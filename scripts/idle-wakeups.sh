#!/usr/bin/env bash
# CPU time and wakeups of five idle nodes of any swarm-node binary, from the scheduler's
# per-thread counters (/proc/PID/task/*/schedstat), so two builds compare with one script
# (`bench footprint` prints the same columns, for the binary that runs it).
# Usage: scripts/idle-wakeups.sh BIN [BASE_PORT] [SETTLE_S] [SECONDS]
set -euo pipefail
bin=${1:?usage: $0 BIN [BASE_PORT] [SETTLE_S] [SECONDS]}
base=${2:-17900}; settle=${3:-45}; secs=${4:-60}
dir=$(mktemp -d); pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
for i in 0 1 2 3 4; do
  flags=(--id "w$i" --swarm "wake$base" --no-multicast --listen "tcp/127.0.0.1:$((base + i))"
    --state-dir "$dir/w$i")
  for ((j = 0; j < i; j++)); do flags+=(--connect "tcp/127.0.0.1:$((base + j))"); done
  "$bin" run "${flags[@]}" >"$dir/w$i.log" 2>&1 &
  pids+=($!)
  sleep 0.3
done
sleep "$settle"
sched() { # pid -> "cpu_ns runs"
  local ns=0 runs=0 a b c
  for t in /proc/"$1"/task/*/schedstat; do read -r a b c <"$t"; ns=$((ns + a)); runs=$((runs + c)); done
  echo "$ns $runs"
}
before=(); for p in "${pids[@]}"; do before+=("$(sched "$p")"); done
sleep "$secs"
for i in 0 1 2 3 4; do
  read -r a0 r0 <<<"${before[$i]}"
  read -r a1 r1 <<<"$(sched "${pids[$i]}")"
  role=$(grep -a "election role=" "$dir/w$i.log" | tail -1 | grep -o "role=[a-z]*" || echo "role=?")
  awk -v n="w$i" -v r="$role" -v ns=$((a1 - a0)) -v runs=$((r1 - r0)) -v s="$secs" \
    'BEGIN { printf "%s %-14s CPU %.3f %%  wakeups %.1f/s\n", n, r, ns / 1e9 / s * 100, runs / s }'
done
