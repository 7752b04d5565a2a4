#!/usr/bin/env bash
# Side by side on this machine: swarm-bridge and eclipse's MQTT plugin (what zenoh-bridge-mqtt
# runs, hosted by bench/eclipse-mqtt-bridge), each measured by the same `swarm-bridge bench`,
# one after the other. Prints each bench's figures and each bridge's peak RSS.
#
#   scripts/bench-bridges.sh [bench flags...]     e.g. --clients 4 --flood-s 5 --rate-s 5
#   ROUNDS=5 scripts/bench-bridges.sh ...         alternate the two bridges 5 times, then print
#                                                 each figure's median (the host's noise moves
#                                                 single runs by a third)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/swarm-mesh/target}"
eclipse_target="$HOME/.cache/swarm-mesh/eclipse-target"
CARGO_TARGET_DIR="$target" cargo build --release -q -p swarm-bridge
(cd bench/eclipse-mqtt-bridge && CARGO_TARGET_DIR="$eclipse_target" cargo build --release -q)
ours="$target/release/swarm-bridge"
theirs="$eclipse_target/release/eclipse-mqtt-bridge"

peak_rss() { awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }
# User and system CPU of a process so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

. scripts/wait-port.sh

measure() { # name mqtt-port zenoh-endpoint command...
  local name=$1 port=$2 endpoint=$3
  shift 3
  "$@" >"/tmp/bench-bridges-$name.log" 2>&1 &
  local pid=$!
  wait_port "$port"
  sleep 1
  echo "== $name"
  local before out
  before=$(cpu_ticks "$pid")
  out=$("$ours" bench --mqtt "127.0.0.1:$port" --zenoh "$endpoint" "${BENCH_FLAGS[@]}") || true
  echo "$out" | tee -a "$results/$name"
  # The bridge's own CPU per message sent, over the whole bench: on a 2-core machine the
  # clients and the zenoh subscriber share the cores with it, so a rate alone is partly theirs.
  echo "$out" | awk -v ticks=$(( $(cpu_ticks "$pid") - before )) -v hz="$(getconf CLK_TCK)" '
    $3 == "sent" { sent += $4 }
    END { if (sent > 0) printf "bridge cpu     %.2f s for %d messages: %.2f us a message\n", ticks / hz, sent, ticks / hz / sent * 1e6 }' \
    | tee -a "$results/$name"
  echo "peak RSS of $name: $(peak_rss $pid)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

# Median of each figure over the rounds: msg/s, and p50/p99 where a phase has them.
medians() { # results-file
  awk '
    /^bridge cpu/ { cpu = cpu " " $(NF - 3) }
    / msg\/s/ {
      phase = $1 " " $2
      for (i = 1; i <= NF; i++) {
        if ($(i + 1) == "msg/s") rate[phase] = rate[phase] " " $i
        if ($i == "p50") p50[phase] = p50[phase] " " $(i + 1)
        if ($i == "p99") p99[phase] = p99[phase] " " $(i + 1)
        if ($i == "lost") lost[phase] = lost[phase] " " $(i + 1)
      }
      if (!(phase in seen)) { seen[phase] = 1; order[++n] = phase }
    }
    function median(list,   v, k, m, i, j, t) {
      k = split(list, v, " ")
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      return v[int((k + 1) / 2)]
    }
    END {
      if (cpu != "") printf "%-14s median %9s us a message\n", "bridge cpu", median(cpu)
      for (i = 1; i <= n; i++) {
        p = order[i]
        printf "%-14s median %9s msg/s  lost per round:%s", p, median(rate[p]), lost[p]
        if (p in p50) printf "  p50 %s ms  p99 %s ms", median(p50[p]), median(p99[p])
        printf "\n"
      }
    }' "$1"
}

BENCH_FLAGS=("$@")
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
for round in $(seq "${ROUNDS:-1}"); do
  [ "${ROUNDS:-1}" -gt 1 ] && echo "==== round $round"
  measure swarm-bridge 18850 tcp/127.0.0.1:7505 \
    "$ours" run --no-multicast --listen tcp/127.0.0.1:7505 --mqtt-listen 127.0.0.1:18850 --swarm bench
  measure eclipse-mqtt 18851 tcp/127.0.0.1:7506 \
    "$theirs" --mqtt 127.0.0.1:18851 --listen tcp/127.0.0.1:7506
done
if [ "${ROUNDS:-1}" -gt 1 ]; then
  for name in swarm-bridge eclipse-mqtt; do
    echo "==== $name, medians of ${ROUNDS} rounds"
    medians "$results/$name"
  done
fi
