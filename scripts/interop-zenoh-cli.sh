#!/usr/bin/env bash
# Interop with the real zenoh command line (PyPI zenoh-cli 0.7): three swarm-node processes on
# loopback, one `zenoh get -s 'swarm/**/energy' --decoder json`, every reply checked (each node's
# sample, and the leader's swarm total once there is a leader).
# Usage: scripts/interop-zenoh-cli.sh SWARM_NODE_BINARY ZENOH_CLI
set -euo pipefail
bin=${1:?swarm-node binary}
zenoh_cli=${2:?zenoh command}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

base=$((21000 + RANDOM % 5000))
ports=("$base" $((base + 1)) $((base + 2)))
: > "$work/empty.toml"
for i in 0 1 2; do
  connect=()
  for ((j = 0; j < i; j++)); do connect+=(--connect "tcp/127.0.0.1:${ports[$j]}"); done
  SWARM_CONFIG="$work/empty.toml" "$bin" run --id "cli$i" --swarm interop --no-multicast \
    --listen "tcp/127.0.0.1:${ports[$i]}" "${connect[@]}" --state-dir "$work/cli$i" \
    2> "$work/cli$i.log" &
  pids+=($!)
done

query() {
  # zenoh-cli is a peer: keep its scouting and listener on loopback too.
  "$zenoh_cli" --connect "tcp/127.0.0.1:${ports[0]}" --listen "tcp/127.0.0.1:$((base + 3))" \
    --cfg 'scouting/multicast/enabled:false' \
    get -s "${1:-swarm/**/energy}" --decoder json 2> "$work/cli.err"
}

for attempt in $(seq 1 20); do
  out=$(query || true)
  [ "$(printf '%s\n' "$out" | grep -c '"id"')" -ge 3 ] && break
  sleep 1
done
printf '%s\n' "$out"
printf '%s\n' "$out" | python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
ids, totals = set(), []
for line in lines:
    reply = json.loads(line)
    assert isinstance(reply["watts"], (int, float)) and reply["watts"] > 0, reply
    if "leader" in reply:
        # swarm/<s>/energy: the leader'"'"'s total, once there is a leader.
        assert reply["nodes"] <= 3 and "by_source" in reply, reply
        totals.append(reply)
        continue
    for field in ("id", "source", "wh_total", "co2_g"):
        assert field in reply, (field, reply)
    ids.add(reply["id"])
assert ids == {"cli0", "cli1", "cli2"}, (ids, lines)
assert len(totals) <= 1, totals
assert all(t["leader"] in ids for t in totals), totals
print("zenoh-cli interop: %d JSON replies with numeric watts from %s and %d swarm total(s)"
      % (len(lines), sorted(ids), len(totals)))
' || { cat "$work"/*.log "$work/cli.err" >&2; exit 1; }

# Who leads: zenoh-cli merges replies on one key into one, so one answer is enough here.
for attempt in $(seq 1 20); do
  leader=$(query 'swarm/interop/leader' || true)
  printf '%s\n' "$leader" | grep -q '"role": "leader"\|"role": "follower"' &&
    ! printf '%s\n' "$leader" | grep -q '"leader": null' && break
  sleep 1
done
printf '%s\n' "$leader" | python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
assert lines, "no answer on swarm/interop/leader"
reply = json.loads(lines[0])
assert reply["leader"] in ("cli0", "cli1", "cli2"), reply
assert reply["role"] in ("leader", "follower") and reply["term"] >= 1, reply
print("zenoh-cli interop: %s says %s leads in term %d" % (reply["node"], reply["leader"], reply["term"]))
' || { cat "$work"/*.log "$work/cli.err" >&2; exit 1; }
