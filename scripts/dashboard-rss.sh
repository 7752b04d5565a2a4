#!/usr/bin/env bash
# Memory of a dashboard watching a swarm: starts NODES real nodes on loopback (release build),
# runs `swarm-node dashboard` against them in a detached 120x40 tmux session, and after SETTLE
# seconds prints its VmRSS and peak (VmHWM) from /proc, with how many members it listed.
# Everything it started is stopped on exit.
#
#   scripts/dashboard-rss.sh [NODES]              default 50
#   BOARD=green scripts/dashboard-rss.sh 50       the other dashboard
#   HEARTBEAT_MS=2000 scripts/dashboard-rss.sh    lighter nodes, for a small machine
#   MODE=peer scripts/dashboard-rss.sh            the dashboard as a peer linked to every node
#                                                 (the default, as for the command, is client:
#                                                 one link, to the first node)
#   PROFILE=profiling scripts/dashboard-rss.sh    another cargo profile than release
#   SETTLE=20 BASE_PORT=27600                     the other knobs and their defaults
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=${1:-50}
board=${BOARD:-dashboard}
mode=${MODE:-client}
profile=${PROFILE:-release}
settle=${SETTLE:-20}
base_port=${BASE_PORT:-27600}
target="${CARGO_TARGET_DIR:-$HOME/.cache/swarm-mesh/target}"

tmp=$(mktemp -d /tmp/dashboard-rss.XXXXXX)
socket="dashboard-rss-$$"
pids=()
socket_path=
cleanup() {
  tmux -L "$socket" kill-server 2>/dev/null || true
  if [ -n "$socket_path" ]; then rm -f "$socket_path"; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# One cargo at a time on this machine, and the target dir is shared: the binary is copied out
# under the same lock, so another checkout's build cannot swap it mid-measurement.
flock /tmp/cargo-build.lock sh -c \
  "CARGO_TARGET_DIR='$target' cargo build --profile '$profile' -q -p swarm-node && cp '$target/$profile/swarm-node' '$tmp/'"
bin="$tmp/swarm-node"

# Nobody's own config, state or SWARM_* settings; no multicast (the flag: this clap bool reads
# only true/false from SWARM_NO_MULTICAST), loopback only.
for var in $(env | sed -n 's/^\(SWARM_[A-Z_]*\)=.*/\1/p'); do unset "$var"; done
export XDG_CONFIG_HOME="$tmp/xdg-config" XDG_STATE_HOME="$tmp/xdg-state"
export SWARM_SWARM=rss SWARM_LOG=warn
[ -n "${HEARTBEAT_MS:-}" ] && export SWARM_HEARTBEAT_MS="$HEARTBEAT_MS"

first="tcp/127.0.0.1:$base_port"
for i in $(seq 0 $((nodes - 1))); do
  args=(run --id "n$i" --no-multicast --listen "tcp/127.0.0.1:$((base_port + i))")
  args+=(--state-dir "$tmp/n$i")
  [ "$i" -gt 0 ] && args+=(--connect "$first")
  "$bin" "${args[@]}" >/dev/null 2>"$tmp/n$i.log" </dev/null &
  pids+=($!)
  sleep 0.1
done

tmux -L "$socket" -f /dev/null new-session -d -s rss -x 120 -y 40 \
  -e XDG_CONFIG_HOME="$XDG_CONFIG_HOME" -e XDG_STATE_HOME="$XDG_STATE_HOME" \
  "exec '$bin' $board --swarm rss --no-multicast --mode $mode --connect $first"
pid=$(tmux -L "$socket" display-message -p -t rss '#{pane_pid}')
socket_path=$(tmux -L "$socket" display-message -p '#{socket_path}')
sleep "$settle"

if ! kill -0 "$pid" 2>/dev/null; then
  echo "the dashboard is not running" >&2
  tmux -L "$socket" capture-pane -p -t rss >&2 || true
  exit 1
fi
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
rss=$(kib VmRSS)
hwm=$(kib VmHWM)
# "· 50 members" in the dashboard's header, "of 50 node(s) reporting" in green's.
listed=$(tmux -L "$socket" capture-pane -p -t rss | grep -oE '[0-9]+ members?|of [0-9]+ node' | head -1 | tr -dc '0-9')
alive=0
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
awk -v b="$board ($mode mode)" -v n="$alive" -v hb="${HEARTBEAT_MS:-500}" -v s="$settle" -v rss="$rss" \
  -v hwm="$hwm" -v anon="$(kib RssAnon)" -v file="$(kib RssFile)" -v listed="${listed:-?}" 'BEGIN {
    printf "%s with %d nodes running (heartbeat %s ms), after %d s: VmRSS %.1f MiB (anonymous %.1f, binary and libraries %.1f), peak VmHWM %.1f MiB; it lists %s members\n",
      b, n, hb, s, rss / 1024, anon / 1024, file / 1024, hwm / 1024, listed }'
