#!/usr/bin/env bash
# Installs the zenohd router 1.10.2 from crates.io and its REST plugin (a shared library zenohd
# loads at start; the crates.io zenohd does not build it in) under ~/.cache/swarm-mesh/tools:
#   bin/zenohd    lib/libzenoh_plugin_rest.so
# Run zenohd with `--plugin-search-dir ~/.cache/swarm-mesh/tools/lib --rest-http-port 8000`.
# Both are built by this machine's rustc, which the plugin's loader requires to match. Skips
# what is already there; the first run takes about 15 minutes on 2 cores.
set -euo pipefail
version=1.10.2
tools="$HOME/.cache/swarm-mesh/tools"
target="$HOME/.cache/swarm-mesh/zenohd-target"
mkdir -p "$tools/lib"

if ! "$tools/bin/zenohd" --version 2>/dev/null | grep -q "v$version"; then
  CARGO_TARGET_DIR="$target" cargo install zenohd --version "$version" --locked --root "$tools" --force
fi

if [ ! -f "$tools/lib/libzenoh_plugin_rest.so" ]; then
  # The crate's own source from the registry, built as published (its Cargo.lock included).
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
"$tools/bin/zenohd" --version
ls -l "$tools/lib/libzenoh_plugin_rest.so"
