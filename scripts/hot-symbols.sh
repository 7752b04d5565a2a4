#!/usr/bin/env bash
# Records the functions a settled node runs and writes nodes/hot-symbols.txt, the order in
# which the release build lays out its code (nodes/build.rs says why).
#
# Each round links the release binary with the order found so far, starts three nodes on
# loopback, lets them settle and give back their start-up pages (30 s), then records every
# page fault they take for RECORD_S seconds. A fault in the binary names a function the node
# runs that is not yet with the hot code; it joins the order. The kernel maps 64 KiB around a
# fault, so one round sees only the first function touched in each window: rounds repeat
# until a round finds few new ones. Needs perf (Debian: linux-perf) and the right to trace
# one's own processes.
#
#   scripts/hot-symbols.sh            # ROUNDS=6 RECORD_S=100 PORT=27900
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-6}
RECORD_S=${RECORD_S:-100}
PORT=${PORT:-27900}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/swarm-mesh/target}
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
stop_nodes() {
  [ ${#pids[@]} -gt 0 ] && kill -INT "${pids[@]}" 2>/dev/null && wait "${pids[@]}" 2>/dev/null
  pids=()
}
trap 'stop_nodes; rm -rf "$work"' EXIT

# Start from the committed order unless FRESH=1; names it has that this build lacks are
# mapped to the build's own (below) or dropped.
order=$work/order-0.txt
if [ "${FRESH:-0}" = 1 ] || [ ! -f nodes/hot-symbols.txt ]; then
  : >"$order"
else
  grep -v '^#' nodes/hot-symbols.txt >"$order" || true
fi
for round in $(seq 1 "$ROUNDS"); do
  # `cargo rustc` keeps the symbol table (strip=none) without changing the names: the
  # crates' metadata, and so every mangled name, stay those of `cargo build --release`.
  SWARM_HOT_SYMBOLS=$order cargo rustc -q --release -p swarm-node --bin swarm-node -- -C strip=none
  bin=$work/node-$round
  cp "$CARGO_TARGET_DIR/release/swarm-node" "$bin"
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
  for i in 0 1 2; do
    connect=()
    for j in $(seq 0 $((i - 1))); do connect+=(--connect "tcp/127.0.0.1:$((PORT + j))"); done
    SWARM_STATE_DIR=$work/state-$round-$i SWARM_LOG=warn "$bin" run --id "hot-$i" --swarm "hot-$$" \
      --no-multicast --listen "tcp/127.0.0.1:$((PORT + i))" "${connect[@]}" >"$work/log-$round-$i" 2>&1 &
    pids+=($!)
  done
  sleep 25
  perf record -q -c 1 -e page-faults -d -o "$work/faults-$round" \
    -p "$(IFS=,; echo "${pids[*]}")" -- sleep "$RECORD_S" 2>/dev/null
  rss=$(for p in "${pids[@]}"; do awk '/^VmRSS/ {printf "%.1f ", $2 / 1024}' "/proc/$p/status"; done)
  stop_nodes
  # addr, the symbol at addr, its file: faults on the binary's own code and data.
  perf script -i "$work/faults-$round" -F ip,sym,addr,dso --no-demangle 2>/dev/null |
    awk -v dso="($bin)" '$3 == dso && $2 != "[unknown]" {print $2}' |
    sort | uniq -c | sort -rn | awk '{print $2}' >"$work/found-$round"
  next=$work/order-$round.txt
  cat "$order" "$work/found-$round" | awk '!seen[$0]++' >"$next"
  new=$(($(wc -l <"$next") - $(wc -l <"$order")))
  echo "round $round: RSS MiB per node $rss; $new functions joined the hot code ($(wc -l <"$next") in all)"
  order=$next
done

{
  echo "# The functions a settled node runs, hot first: the release build's code layout."
  echo "# Written by scripts/hot-symbols.sh ($ROUNDS rounds, $RECORD_S s each) with $(rustc --version)."
  echo "# Regenerate after large changes; names a build lacks are skipped (nodes/build.rs)."
  # Only names the last binary has: a renamed function's old name is dropped.
  grep -Fxf "$work/defined" "$order"
} >nodes/hot-symbols.txt
echo "wrote nodes/hot-symbols.txt ($(grep -vc '^#' nodes/hot-symbols.txt) functions)"
echo "rebuild: cargo build --release -p swarm-node"
