#!/usr/bin/env bash
# Partitions, measured: five release-built nodes, each in its own network namespace, and
# faults between some of them and the rest (cut both ways, one way, 80 % loss), with and
# without the leader among them. Prints per kind of fault the majority's leaderless time and
# the time from the heal to one leader followed by all (median and max over the cuts).
# Needs root (ip netns) and nftables. Flags go to the bench: --cuts N, --observe-s S, --only K.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/swarm-mesh/target}"
cargo build --release -q -p swarm-node -p swarm-tests --bin swarm-node --bin bench-partition
exec "$CARGO_TARGET_DIR/release/bench-partition" "$@"
