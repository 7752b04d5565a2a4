#!/usr/bin/env bash
# Cross-builds swarm-node for a Raspberry Pi and packages it as a .deb.
#
#   scripts/cross-build.sh aarch64   # Pi 3/4/5, Zero 2 W (64-bit Raspberry Pi OS)
#   scripts/cross-build.sh armv6     # Pi Zero W, Pi 1 (32-bit, armhf)
#
# Leaves target/<triple>/pi/swarm-node and target/debian/swarm-node_<version>_<arch>.deb in the
# repository, whatever CARGO_TARGET_DIR is. Needs Debian's cross gcc:
#   apt-get install gcc-aarch64-linux-gnu        (aarch64)
#   apt-get install gcc-arm-linux-gnueabihf      (armv6)
# and cargo-deb (`cargo install cargo-deb`); with NO_DEB=1 only the binary is built.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  aarch64) triple=aarch64-unknown-linux-gnu; gcc=aarch64-linux-gnu-gcc ;;
  armv6) triple=arm-unknown-linux-gnueabihf; gcc=arm-linux-gnueabihf-gcc ;;
  *) echo "usage: $0 aarch64|armv6" >&2; exit 2 ;;
esac
if ! command -v "$gcc" >/dev/null; then
  echo "$gcc not found: apt-get install gcc-${gcc%-gcc}" >&2
  exit 1
fi
rustup target add "$triple" >/dev/null

# The linker, and the C compiler for crates with C inside (ring).
upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${upper}_LINKER=$gcc"
export "CC_${triple//-/_}=$gcc"
if [ "$1" = armv6 ]; then
  # Debian's armhf gcc defaults to ARMv7 with Thumb-2, which a Pi Zero's ARM1176 cannot run.
  export "CFLAGS_${triple//-/_}=-march=armv6zk -mfpu=vfp -mfloat-abi=hard -marm"
fi

cargo build --locked --profile pi --target "$triple" -p swarm-node --features rpi

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out="target/$triple/pi"
mkdir -p "$out"
if [ "$target_dir/$triple/pi" != "$(pwd)/$out" ]; then
  cp "$target_dir/$triple/pi/swarm-node" "$out/swarm-node"
fi
echo "binary: $out/swarm-node ($(stat -c %s "$out/swarm-node") bytes)"

if [ "${NO_DEB:-0}" != 1 ]; then
  mkdir -p target/debian
  cargo deb --no-build --no-strip --features rpi --profile pi --target "$triple" -p swarm-node --output target/debian/
  ls -l target/debian/*.deb
fi
