#!/usr/bin/env bash
# Installs the zenohd router 1.10.2 from crates.io and the shared libraries it loads at start
# (the crates.io zenohd builds none in) under ~/.cache/swarm-mesh/tools:
#   bin/zenohd
#   lib/libzenoh_plugin_rest.so              the REST API
#   lib/libzenoh_plugin_storage_manager.so   storages (docs/history.md)
#   lib/libzenoh_backend_influxdb.so         the InfluxDB 1.x volume for them
# Run zenohd with `--plugin-search-dir ~/.cache/swarm-mesh/tools/lib --rest-http-port 8000`.
# All are built by this machine's rustc, which the plugin loaders require to match. Skips what
# is already there; the first run takes about 25 minutes on 2 cores.
set -euo pipefail
version=1.10.2
tools="$HOME/.cache/swarm-mesh/tools"
target="$HOME/.cache/swarm-mesh/zenohd-target"
mkdir -p "$tools/lib"

if ! "$tools/bin/zenohd" --version 2>/dev/null | grep -q "v$version"; then
  CARGO_TARGET_DIR="$target" cargo install zenohd --version "$version" --locked --root "$tools" --force
fi

# The REST plugin: the crate's own source from the registry, built as published (its
# Cargo.lock included).
if [ ! -f "$tools/lib/libzenoh_plugin_rest.so" ]; then
  fetch=$(mktemp -d)
  trap 'rm -rf "$fetch"' EXIT
  mkdir -p "$fetch/src"
  printf '[package]\nname = "fetch-rest"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nzenoh-plugin-rest = "=%s"\n' \
    "$version" > "$fetch/Cargo.toml"
  echo 'fn main() {}' > "$fetch/src/main.rs"
  manifest=$(cd "$fetch" && cargo metadata --format-version 1 |
    python3 -c 'import json, sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "zenoh-plugin-rest"))')
  CARGO_TARGET_DIR="$target" cargo build --release --locked --manifest-path "$manifest"
  cp "$target/release/libzenoh_plugin_rest.so" "$tools/lib/"
fi

# The storage manager and its InfluxDB volume, built in one invocation: the manager refuses a
# volume whose zenoh-backend-traits features differ from its own, and separate builds of the
# two crates enable different ones.
if [ ! -f "$tools/lib/libzenoh_plugin_storage_manager.so" ] ||
  [ ! -f "$tools/lib/libzenoh_backend_influxdb.so" ]; then
  storage=$HOME/.cache/swarm-mesh/zenoh-storage-build
  mkdir -p "$storage/src"
  printf '[package]\nname = "fetch-storage"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nzenoh-plugin-storage-manager = "=%s"\nzenoh-backend-influxdb-v1 = "=%s"\n' \
    "$version" "$version" > "$storage/Cargo.toml"
  echo 'fn main() {}' > "$storage/src/main.rs"
  (cd "$storage" && CARGO_TARGET_DIR="$target" cargo build --release \
    -p zenoh-plugin-storage-manager -p zenoh-backend-influxdb-v1)
  cp "$target/release/libzenoh_plugin_storage_manager.so" "$target/release/libzenoh_backend_influxdb.so" \
    "$tools/lib/"
fi
"$tools/bin/zenohd" --version
ls -l "$tools/lib/"
