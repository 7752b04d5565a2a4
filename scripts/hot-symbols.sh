#!/usr/bin/env bash
# Records the functions a workload runs and writes the hot-first code layout of a release
# binary (build-support/hot_layout.rs says why):
#
#   scripts/hot-symbols.sh node     # nodes/hot-symbols.txt: three settled nodes
#   scripts/hot-symbols.sh bridge   # bridge/hot-symbols.txt: swarm-bridge from its start
#                                   # through `swarm-bridge bench` (a flood, 1,000 devices)
#   scripts/hot-symbols.sh gateway  # nodes/hot-symbols.txt again: a gateway node
#                                   # (`swarm-node run --mqtt-listen`) through the same bench;
#                                   # its functions go after the settled node's
#   ROUNDS=6 RECORD_S=100 PORT=27900 FRESH=0 are the defaults.
#
# Each round links the release binary with the order found so far and records every page
# fault the workload's processes take (perf record -e page-faults -d). A fault in the binary
# names a function the workload runs that is not yet with the hot code; it joins the order.
#
# node: three nodes on loopback settle and give back their start-up pages (30 s); their
# faults are recorded from 25 s for RECORD_S seconds, so start-up code stays out of the hot
# code, and go first in the file.
# The recorded processes map one page a fault (below): the kernel maps 64 KiB around a fault
# in a cached file, so otherwise a round would see only the first function touched in each
# 64 KiB; rounds still repeat for the functions that share a page with one already found.
# bridge, gateway: the faults are recorded from the process's exec, because its peak under the
# bench counts its start-up code too. Both start from the committed file, so a gateway's
# functions join after a settled node's, which stay first.
#
# Needs perf (Debian: linux-perf), root (read-ahead, below) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-node}
case $what in
  node) crate=swarm-node; out=nodes/hot-symbols.txt ;;
  bridge) crate=swarm-bridge; out=bridge/hot-symbols.txt ;;
  gateway) crate=swarm-node; out=nodes/hot-symbols.txt ;;
  *) echo "usage: $0 node|bridge|gateway" >&2; exit 2 ;;
esac
ROUNDS=${ROUNDS:-6}
RECORD_S=${RECORD_S:-100}
PORT=${PORT:-27900}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/swarm-mesh/target}
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }

work=$(mktemp -d)
# One page mapped per fault, so that every page a process touches shows as a fault: the
# binary starts out of the page cache (`evict`) and is opened with read-ahead off (the disk's
# `read_ahead_kb` is 0 while the processes start; a file keeps the value it was opened with),
# so a fault reads its one page, and the kernel's fault-around finds no cached neighbours to
# map with it.
bdi=/sys/class/bdi/$(findmnt -no MAJ:MIN -T "$work" | tr -d ' ')/read_ahead_kb
[ -w "$bdi" ] || { echo "needs root: writes $bdi while the recorded processes start" >&2; exit 1; }
readahead=$(cat "$bdi")
readahead_off() { echo 0 >"$bdi"; }
readahead_on() { echo "$readahead" >"$bdi"; }

pids=()
stop_all() {
  [ ${#pids[@]} -gt 0 ] && kill -INT "${pids[@]}" 2>/dev/null && wait "${pids[@]}" 2>/dev/null
  pids=()
}
trap 'readahead_on; stop_all; rm -rf "$work"' EXIT

. scripts/wait-port.sh

# Three nodes settle and give back their start-up pages; the binary leaves the page cache
# again, and RECORD_S seconds of their faults go to $faults; sets $memory.
record_node() { # bin round faults
  local bin=$1 round=$2 faults=$3 i j connect
  evict "$bin"
  readahead_off
  for i in 0 1 2; do
    connect=()
    for j in $(seq 0 $((i - 1))); do connect+=(--connect "tcp/127.0.0.1:$((PORT + j))"); done
    SWARM_STATE_DIR=$work/state-$round-$i SWARM_LOG=warn "$bin" run --id "hot-$i" --swarm "hot-$$" \
      --no-multicast --listen "tcp/127.0.0.1:$((PORT + i))" "${connect[@]}" >"$work/log-$round-$i" 2>&1 &
    pids+=($!)
  done
  sleep 3
  readahead_on
  sleep 22
  # From before the trim (30 s): what a node maps back within seconds of it is its hottest
  # code, and it would not fault again after the eviction. Those faults still map 64 KiB of
  # the pages start-up left in the cache; after the eviction, one page each.
  (sleep 8 && evict "$bin") &
  perf record -q -c 1 -e page-faults -d -o "$faults" \
    -p "$(IFS=,; echo "${pids[*]}")" -- sleep "$RECORD_S" 2>/dev/null
  memory="RSS MiB per node $(for p in "${pids[@]}"; do awk '/^VmRSS/ {printf "%.1f ", $2 / 1024}' "/proc/$p/status"; done)"
  stop_all
}

# Drops the pages of a file that no process maps from the page cache.
evict() { # file
  sync "$1"
  python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
}

# `bin args...` runs under perf from its exec, one page to a fault, while `swarm-bridge bench`
# floods it and holds 1,000 device connections; sets $memory (the peak of a process that maps
# a page at a time: below what the rebuilt binary reaches, which maps 64 KiB at once).
record_flooded() { # bench-bin round faults mqtt-port bin args...
  local bench=$1 round=$2 faults=$3 mqtt=$4 bin=$5 pid
  shift 4
  evict "$bin"
  readahead_off
  perf record -q -c 1 -e page-faults -d -o "$faults" -- env SWARM_LOG=warn "$@" \
    >"$work/log-$round" 2>&1 &
  local perf_pid=$!
  wait_port "$mqtt"
  readahead_on
  pid=$(pgrep -P "$perf_pid")
  sleep 1
  "$bench" bench --mqtt "127.0.0.1:$mqtt" --zenoh "tcp/127.0.0.1:$PORT" --swarm "hot-$$" \
    --clients 4 --flood-s 3 --rate-s 10 --connections 1000 >"$work/bench-$round" 2>&1 ||
    cat "$work/bench-$round" >&2
  memory="peak RSS $(awk '/^VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$pid/status")"
  kill -INT "$pid"
  wait "$perf_pid" 2>/dev/null || true
}

record_bridge() { # bin round faults
  # The bench's own copy: its reads would bring the recorded copy's pages into the cache.
  cp "$1" "$1.bench"
  record_flooded "$1.bench" "$2" "$3" $((PORT + 1)) "$1" run --no-multicast \
    --listen "tcp/127.0.0.1:$PORT" --mqtt-listen "127.0.0.1:$((PORT + 1))" --swarm "hot-$$"
}

record_gateway() { # bin round faults
  local bench=$CARGO_TARGET_DIR/release/swarm-bridge
  [ -x "$bench" ] || cargo build -q --release -p swarm-bridge
  SWARM_STATE_DIR=$work/state-$2 record_flooded "$bench" "$2" "$3" $((PORT + 1)) "$1" run \
    --id hot-gw --swarm "hot-$$" --no-multicast --listen "tcp/127.0.0.1:$PORT" \
    --mqtt-listen "127.0.0.1:$((PORT + 1))"
}

# Start from the committed order unless FRESH=1; names it has that this build lacks are
# mapped to the build's own (below) or dropped.
order=$work/order-0.txt
if [ "${FRESH:-0}" = 1 ] || [ ! -f "$out" ]; then
  : >"$order"
else
  grep -v '^#' "$out" >"$order" || true
fi
for round in $(seq 1 "$ROUNDS"); do
  # `cargo rustc` keeps the symbol table (strip=none) without changing the names: the
  # crates' metadata, and so every mangled name, stay those of `cargo build --release`.
  SWARM_HOT_SYMBOLS=$order cargo rustc -q --release -p "$crate" --bin "$crate" -- -C strip=none
  bin=$work/$crate-$round
  cp "$CARGO_TARGET_DIR/release/$crate" "$bin"
  # A generic function's name ends in a hash of where it was instantiated, which changes with
  # the crate's dependencies and the compiler: an old name whose hash-less stem matches exactly
  # one name in this build becomes that name.
  nm --defined-only "$bin" | awk '{print $3}' | sort -u >"$work/defined"
  awk 'function stem(s) { sub(/17h[0-9a-f]{16}E$/, "", s); return s }
       NR == FNR { n[stem($0)]++; name[stem($0)] = $0; has[$0] = 1; next }
       has[$0] { print; next }
       n[stem($0)] == 1 { print name[stem($0)] }' "$work/defined" "$order" |
    awk '!seen[$0]++' >"$order.mapped"
  mv "$order.mapped" "$order"
  "record_$what" "$bin" "$round" "$work/faults-$round"
  # addr, the symbol at addr, its file: faults on the binary's own code and data.
  perf script -i "$work/faults-$round" -F ip,sym,addr,dso --no-demangle 2>/dev/null |
    awk -v dso="($bin)" '$3 == dso && $2 != "[unknown]" {print $2}' |
    sort | uniq -c | sort -rn | awk '{print $2}' >"$work/found-$round"
  next=$work/order-$round.txt
  # A settled node's functions go first, before a gateway's; the others add theirs at the end.
  if [ "$what" = node ]; then
    cat "$work/found-$round" "$order"
  else
    cat "$order" "$work/found-$round"
  fi | awk '!seen[$0]++' >"$next"
  new=$(($(wc -l <"$next") - $(wc -l <"$order")))
  echo "round $round: $memory; $new functions joined the hot code ($(wc -l <"$next") in all)"
  order=$next
done

{
  echo "# The functions $crate runs in scripts/hot-symbols.sh $what, hot first: the release build's code layout."
  echo "# Written by scripts/hot-symbols.sh $what ($ROUNDS rounds) with $(rustc --version)."
  echo "# Regenerate after large changes; names a build lacks are skipped (build-support/hot_layout.rs)."
  # Only names the last binary has: a renamed function's old name is dropped.
  grep -Fxf "$work/defined" "$order"
} >"$out"
echo "wrote $out ($(grep -vc '^#' "$out") functions)"
echo "rebuild: cargo build --release -p $crate"
