#!/usr/bin/env bash
# Smoke run of a cross-built swarm-node under Debian's qemu-user, next to a native node on
# loopback: `--version`, then the two elect one leader that both name. Prints both processes'
# RSS before and after the first code-page trim (30 s): the emulated one as the kernel sees it
# (qemu's own included) and as the node reports it on /metrics (its own mappings only:
# nodes/src/process_memory.rs), the figure a Pi would show.
#   aarch64 (Pi 3/4/5): qemu-aarch64 with Debian's arm64 libraries
#   32-bit ARM (Pi Zero W): qemu-arm emulating the Zero's own CPU, the ARM1176 (ARMv6), so an
#   instruction it lacks fails here as it would on the board
# Usage: scripts/qemu-smoke.sh CROSS_SWARM_NODE NATIVE_SWARM_NODE
set -euo pipefail
arm=${1:?cross-built swarm-node}
native=${2:?native swarm-node}
# e_machine, the ELF header's two bytes at offset 18.
case $(od -An -tu2 -j18 -N2 "$arm" | tr -d ' ') in
  183) emulate=(qemu-aarch64); name=arm64
    export QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu} ;;
  40) emulate=(qemu-arm -cpu arm1176); name=armv6 ;;
  *) echo "$arm: neither aarch64 nor 32-bit ARM" >&2; exit 2 ;;
esac
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== emulated --version (${emulate[*]})"
"${emulate[@]}" "$arm" --version

base=$((26000 + RANDOM % 4000))
: > "$work/empty.toml"
export SWARM_CONFIG="$work/empty.toml" SWARM_LOG=info,zenoh=warn
"${emulate[@]}" "$arm" run --id "$name" --swarm qemu --no-multicast \
  --listen "tcp/127.0.0.1:$base" --state-dir "$work/$name" \
  --metrics-listen "127.0.0.1:$((base + 2))" 2> "$work/$name.log" &
pids+=($!); arm_pid=$!; started=$SECONDS
"$native" run --id native --swarm qemu --no-multicast --listen "tcp/127.0.0.1:$((base + 1))" \
  --connect "tcp/127.0.0.1:$base" --state-dir "$work/native" 2> "$work/native.log" &
pids+=($!); native_pid=$!

# The leader both nodes name, once they agree and each sees the other; empty until then.
agreed_leader() {
  "$native" status --json --swarm qemu --no-multicast --timeout-ms 1500 \
    --connect "tcp/127.0.0.1:$base" --connect "tcp/127.0.0.1:$((base + 1))" 2>/dev/null |
    python3 -c '
import json, sys
want = set(sys.argv[1:])
try:
    members = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
ids = {m["id"] for m in members}
leaders = {m.get("leader") for m in members}
if ids == want and len(leaders) == 1 and None not in leaders:
    print(leaders.pop())
' "$@"
}

wait_for_leader() {
  for _ in $(seq 1 60); do
    # `status` exits 1 while nobody answers yet (an emulated node on a busy machine starts
    # slowly); under `set -e` that would end the script without a word.
    leader=$(agreed_leader "$@" || true)
    [ -n "$leader" ] && return 0
    sleep 1
  done
  echo "no agreed leader of $*" >&2
  tail -n 30 "$work"/*.log >&2
  return 1
}

echo "== election between the emulated and the native node"
wait_for_leader "$name" native
echo "leader: $leader"

rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }
# What the emulated node reports of itself on /metrics: its own mappings, not qemu's.
own() {
  python3 -c '
import re, sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
mib = {}
for kind in ("anonymous", "file"):
    m = re.search(r"swarm_process_resident_memory_bytes\{[^}]*kind=\"%s\"[^}]*\} ([0-9.e+]+)" % kind, text)
    if not m:
        sys.exit("no %s memory in /metrics" % kind)
    mib[kind] = float(m.group(1)) / 1048576
print("%.1f MiB (anonymous %.1f, file-backed %.1f)" % (mib["anonymous"] + mib["file"], mib["anonymous"], mib["file"]))
' "$((base + 2))"
}
# Before the first code-page trim (30 s after start), then past it. Under qemu the file-backed
# pages are those qemu read to translate; code already translated is not read again after the
# trim, where a Pi running it maps it back: the two figures bracket a Pi's.
for at in 25 40; do
  wait_s=$((at - (SECONDS - started)))
  if [ "$wait_s" -gt 0 ]; then sleep "$wait_s"; fi
  echo "RSS after $((SECONDS - started)) s: emulated node as it reports itself $(own); with ${emulate[0]} $(rss "$arm_pid"); native node $(rss "$native_pid")"
done

echo "qemu smoke: ok"
