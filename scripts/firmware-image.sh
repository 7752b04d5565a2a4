#!/usr/bin/env bash
# Builds the ESP32-C3 firmware (release) and packs it into an app image at
# target/swarm-fw.bin (what `swarm-node firmware push` sends to a board's OTA
# slot) and a whole-flash image at target/swarm-fw-merged.bin (bootloader,
# the two-slot partition table firmware/partitions.csv, the app: for the first
# flash over USB), checks the app image with esptool, and fails if it is over
# the 700 KB budget of a slot.
#
# Usage:
#   WIFI_SSID=... WIFI_PASS=... MQTT_HOST=... NODE_ID=... scripts/firmware-image.sh
#   scripts/firmware-image.sh --dummy    # placeholder values for unset settings
#
# Optional settings: MQTT_PORT, MQTT_USER, MQTT_PASS, SWARM, WIFI_COUNTRY
# (see firmware/esp32c3/build.rs). Installs espflash and esptool on first use.
set -euo pipefail

ESPFLASH_VERSION=4.7.0
ESPTOOL_VERSION=5.6.0

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FIRMWARE="$REPO/firmware"
IMAGE="$REPO/target/swarm-fw.bin"
VENV="$REPO/.venv-fw"
# Shared with other builds on this machine: one cargo at a time.
CARGO_LOCK=/tmp/cargo-build.lock
# Outside the repository, and apart from the host workspace's target dir,
# because the firmware is built for another target with its own profiles.
export CARGO_TARGET_DIR="${SWARM_FW_TARGET_DIR:-$HOME/.cache/swarm-mesh/fw-target}"
ELF="$CARGO_TARGET_DIR/riscv32imc-unknown-none-elf/release/swarm-fw-esp32c3"

die() {
    echo "firmware-image: $*" >&2
    exit 1
}

case "${1:-}" in
    --dummy)
        # Enough to build and measure the image; it will not join a network.
        : "${WIFI_SSID:=swarm-dummy}" "${WIFI_PASS:=dummy-password}"
        : "${MQTT_HOST:=127.0.0.1}" "${NODE_ID:=dummy}"
        export WIFI_SSID WIFI_PASS MQTT_HOST NODE_ID
        ;;
    "") ;;
    -h | --help)
        sed -n '2,11s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
esac

# build.rs checks these too, but its message drowns in cargo's output.
for name in WIFI_SSID WIFI_PASS MQTT_HOST NODE_ID; do
    [[ -v $name ]] || die "set $name (see firmware/esp32c3/build.rs) or pass --dummy"
done

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

ensure_espflash() {
    command -v espflash >/dev/null && return
    # espflash talks to serial ports through libudev.
    if ! dpkg -s libudev-dev pkg-config >/dev/null 2>&1; then
        as_root apt-get update
        as_root apt-get install -y --no-install-recommends libudev-dev pkg-config
    fi
    # From $HOME, so firmware/.cargo/config.toml does not make cargo build
    # espflash for the ESP32 target. No update-check: it phones home on each run.
    (cd "$HOME" && flock "$CARGO_LOCK" cargo install espflash --locked \
        --version "$ESPFLASH_VERSION" --no-default-features --features cli)
}

ensure_esptool() {
    [[ -x "$VENV/bin/esptool" ]] && return
    python3 -m venv "$VENV"
    # Keep the venv out of git without touching the repository's .gitignore.
    echo '*' >"$VENV/.gitignore"
    "$VENV/bin/pip" install --quiet "esptool==$ESPTOOL_VERSION"
}

ensure_espflash
ensure_esptool

echo "firmware-image: building (node ${NODE_ID}, broker ${MQTT_HOST})"
start=$SECONDS
(cd "$FIRMWARE" && flock "$CARGO_LOCK" cargo build --release -p swarm-fw-esp32c3)
echo "firmware-image: build took $((SECONDS - start)) s"

mkdir -p "$(dirname "$IMAGE")"
PARTITIONS="$FIRMWARE/partitions.csv"
espflash save-image --chip esp32c3 --partition-table "$PARTITIONS" "$ELF" "$IMAGE"
espflash save-image --chip esp32c3 --partition-table "$PARTITIONS" --merge "$ELF" "${IMAGE%.bin}-merged.bin"
# Independent check of the header, segments and checksum/SHA-256.
"$VENV/bin/esptool" --chip esp32c3 image-info "$IMAGE"

size=$(stat -c %s "$IMAGE")
echo "firmware-image: $IMAGE: $size bytes"
echo "firmware-image: ${IMAGE%.bin}-merged.bin: $(stat -c %s "${IMAGE%.bin}-merged.bin") bytes"
BUDGET=716800
((size <= BUDGET)) || die "the image is $size bytes, over the ${BUDGET}-byte budget of an OTA slot"
