#!/usr/bin/env bash
# The tests, on a fresh Debian or Ubuntu machine: installs what they need, then runs them all.
# Works as root (containers, CI images) and as a user with sudo. `.ci/run` calls this script,
# so what the README promises and what CI runs cannot drift apart.
#   mosquitto, mosquitto-clients  the external MQTT broker and real MQTT clients
#   socat                         serial pty pairs for the board and serial tests
#   nftables                      drops packets in the lossy-network and partition tests
#   tmux                          runs the dashboards as a user would
#   curl                          asks zenohd's REST API and the metrics endpoint
#   prometheus                    promtool checks a real /metrics scrape in both formats
#   influxdb                      InfluxDB 1.x behind zenohd's storage manager (history test)
#   zenohd and its plugins        the routers of the two-site test, the REST API, storages with
#                                 InfluxDB (scripts/install-zenohd.sh)
# Extra arguments go to `cargo test`, e.g. `scripts/test.sh -p swarm-node`.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(mosquitto mosquitto-clients socat nftables tmux curl prometheus influxdb)
commands=(mosquitto mosquitto_pub socat nft tmux curl promtool influxd)
missing=()
for i in "${!commands[@]}"; do
  command -v "${commands[$i]}" >/dev/null || missing+=("${packages[$i]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null; then
    as_root=(sudo)
  else
    echo "test.sh: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  echo "test.sh: installing ${missing[*]}"
  "${as_root[@]}" apt-get update -q
  # The prometheus package brings promtool and influxdb its server; neither is started here
  # (the tests start their own on loopback).
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
fi

scripts/install-zenohd.sh
exec cargo test --workspace "$@"
