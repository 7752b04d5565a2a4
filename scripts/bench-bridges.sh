#!/usr/bin/env bash
# Side by side on this machine: swarm-bridge and eclipse's MQTT plugin (what zenoh-bridge-mqtt
# runs, hosted by bench/eclipse-mqtt-bridge), each measured by the same `swarm-bridge bench`,
# one after the other. Prints each bench's figures and each bridge's peak RSS.
#
#   scripts/bench-bridges.sh [bench flags...]     e.g. --clients 4 --flood-s 5 --rate-s 5
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/swarm-mesh/target}"
eclipse_target="$HOME/.cache/swarm-mesh/eclipse-target"
CARGO_TARGET_DIR="$target" cargo build --release -q -p swarm-bridge
(cd bench/eclipse-mqtt-bridge && CARGO_TARGET_DIR="$eclipse_target" cargo build --release -q)
ours="$target/release/swarm-bridge"
theirs="$eclipse_target/release/eclipse-mqtt-bridge"

peak_rss() { awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$1/status"; }

# Waits until something accepts connections on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on port $1" >&2
  return 1
}

measure() { # name mqtt-port zenoh-endpoint command...
  local name=$1 port=$2 endpoint=$3
  shift 3
  "$@" >"/tmp/bench-bridges-$name.log" 2>&1 &
  local pid=$!
  wait_port "$port"
  sleep 1
  echo "== $name"
  "$ours" bench --mqtt "127.0.0.1:$port" --zenoh "$endpoint" "${BENCH_FLAGS[@]}" || true
  echo "peak RSS of $name: $(peak_rss $pid)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

BENCH_FLAGS=("$@")
measure swarm-bridge 18850 tcp/127.0.0.1:7505 \
  "$ours" run --no-multicast --listen tcp/127.0.0.1:7505 --mqtt-listen 127.0.0.1:18850 --swarm bench
measure eclipse-mqtt 18851 tcp/127.0.0.1:7506 \
  "$theirs" --mqtt 127.0.0.1:18851 --listen tcp/127.0.0.1:7506
