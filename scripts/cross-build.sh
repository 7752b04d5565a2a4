#!/usr/bin/env bash
# Cross-builds swarm-node for a Raspberry Pi and packages it as a .deb.
#
#   scripts/cross-build.sh aarch64   # Pi 3/4/5, Zero 2 W (64-bit Raspberry Pi OS): arm64 .deb
#   scripts/cross-build.sh armv6     # Pi Zero W, Pi 1 (32-bit Raspberry Pi OS): armhf .deb
#
# Leaves target/<triple>/pi/swarm-node and target/debian/swarm-node_<version>_<arch>.deb in the
# repository, whatever CARGO_TARGET_DIR is. Needs Debian's cross gcc:
#   apt-get install gcc-aarch64-linux-gnu                          (aarch64)
#   apt-get install gcc-arm-linux-gnueabi libc6-dev-armel-cross    (armv6)
# and cargo-deb (`cargo install cargo-deb`); with NO_DEB=1 only the binary is built.
#
# armv6 is a static binary for arm-unknown-linux-gnueabi (ARMv6, soft-float calls) linked with
# Debian's armel glibc, whose baseline is ARMv5TE. Debian's armhf libc and start files are
# ARMv7 Thumb-2, which a Pi Zero's ARM1176 cannot execute, and Debian has no ARMv6 armhf
# sysroot; a static binary carries nothing from the build machine's armhf world and runs on
# the Pi's armhf Raspberry Pi OS as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  aarch64) triple=aarch64-unknown-linux-gnu; gcc=aarch64-linux-gnu-gcc; deb_triple=$triple ;;
  # Packaged as armhf, the architecture of the Pi's own system.
  armv6) triple=arm-unknown-linux-gnueabi; gcc=arm-linux-gnueabi-gcc; deb_triple=arm-unknown-linux-gnueabihf ;;
  *) echo "usage: $0 aarch64|armv6" >&2; exit 2 ;;
esac
if ! command -v "$gcc" >/dev/null; then
  echo "$gcc not found: apt-get install gcc-${gcc%-gcc}" >&2
  exit 1
fi

# The linker, and the C compiler for crates with C inside (ring).
upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${upper}_LINKER=$gcc"
export "CC_${triple//-/_}=$gcc"
build=(cargo build --locked --profile pi --target "$triple" -p swarm-node --features rpi)
if [ "$1" = armv6 ]; then
  export "CFLAGS_${triple//-/_}=-march=armv6 -marm"
  export "CARGO_TARGET_${upper}_RUSTFLAGS=-C target-feature=+crt-static"
fi

if ! rustup target add "$triple" >/dev/null 2>&1; then
  # Some rustup mirrors lack the prebuilt standard library for a tier-2 target (this project's
  # build machine does for arm-unknown-linux-gnueabi). Then std is compiled from rust-src by the
  # same stable compiler; RUSTC_BOOTSTRAP only unlocks cargo's -Zbuild-std for that.
  echo "no prebuilt std for $triple from rustup: building it from rust-src" >&2
  rustup component add rust-src >/dev/null
  export RUSTC_BOOTSTRAP=1
  build+=(-Zbuild-std=std,panic_abort)
fi
"${build[@]}"

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out="target/$triple/pi"
mkdir -p "$out"
if [ "$target_dir/$triple/pi" != "$(pwd)/$out" ]; then
  cp "$target_dir/$triple/pi/swarm-node" "$out/swarm-node"
fi
echo "binary: $out/swarm-node ($(stat -c %s "$out/swarm-node") bytes)"

if [ "${NO_DEB:-0}" != 1 ]; then
  # cargo-deb names the package's architecture after the triple it is given.
  if [ "$deb_triple" != "$triple" ]; then
    mkdir -p "$target_dir/$deb_triple/pi"
    cp "$target_dir/$triple/pi/swarm-node" "$target_dir/$deb_triple/pi/swarm-node"
  fi
  mkdir -p target/debian
  cargo deb --no-build --no-strip --features rpi --profile pi --target "$deb_triple" -p swarm-node --output target/debian/
  ls -l target/debian/*.deb
fi
