#!/usr/bin/env bash
# Interop with the real zenoh command line (PyPI zenoh-cli 0.7) as a new user meets it: five
# swarm-node processes on loopback, two simulated MQTT boards on the first node's embedded
# broker, and in each topology the README shows (star, chain, full mesh, behind a zenohd router)
# RUNS fresh zenoh-cli processes, each linked to one node (or to the router), each asking once:
#   get -s 'swarm/**/energy'     every member's sample (nodes and boards) and the swarm total
#   get -s 'swarm/**/state'      every member's state
#   get -s 'swarm/<s>/leader'    who leads
# and once per topology, the history the gateway (n0, which runs the bridge) keeps:
#   get -s 'swarm/**/energy?_time=[now(-5m)..]'           every member's samples, in order
# Every first answer must be complete: no retries (docs/protocol.md#first-answer). Behind the
# router, zenohd's REST API is asked the same way with curl.
# Usage: scripts/interop-zenoh-cli.sh SWARM_NODE SWARM_BRIDGE ZENOH_CLI [TOPOLOGY...]
#   RUNS=20 by default; TOPOLOGY is any of star chain mesh router (default: all four).
#   The router topology needs zenohd and its REST plugin (scripts/install-zenohd.sh).
set -euo pipefail
bin=${1:?swarm-node binary}
bridge=${2:?swarm-bridge binary}
zenoh_cli=${3:?zenoh command}
shift 3
topologies=("$@")
[ ${#topologies[@]} -gt 0 ] || topologies=(star chain mesh router)
runs=${RUNS:-20}
swarm=interop
nodes=(n0 n1 n2 n3 n4)
boards=(esp-0 esp-1)
tools="$HOME/.cache/swarm-mesh/tools"
work=$(mktemp -d)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
: > "$work/empty.toml"
export SWARM_CONFIG="$work/empty.toml"
# The checks below: every reply is JSON, and the set of members is exactly the swarm.
check=$(cat <<'EOF'
import json, sys
kind, leader_key = sys.argv[1], sys.argv[2]
nodes, boards = set(sys.argv[3].split(",")), set(sys.argv[4].split(","))
# zenoh-cli prints the zenoh library's own log lines on stdout among the replies.
lines = [l for l in sys.stdin.read().splitlines() if l.startswith("{")]
def fail(why):
    sys.exit("%s: %s in %d replies:\n%s" % (kind, why, len(lines), "\n".join(lines)))
try:
    replies = [json.loads(l) for l in lines]
except ValueError:
    fail("a reply that is not JSON")
if kind == "energy":
    totals = [r for r in replies if "by_source" in r]
    members = [r for r in replies if "by_source" not in r]
    ids = [r.get("id") for r in members]
    if sorted(ids) != sorted(nodes | boards):
        fail("members %s" % sorted(ids))
    if any(not isinstance(r.get("watts"), (int, float)) for r in replies):
        fail("a reply without numeric watts")
    if len(totals) != 1 or totals[0].get("leader") not in nodes:
        fail("not one swarm total from a leader")
elif kind == "state":
    ids = [r.get("id") for r in replies]
    if sorted(ids) != sorted(nodes | boards):
        fail("members %s" % sorted(ids))
else:
    if len(replies) != 1 or replies[0].get("leader") not in nodes or replies[0].get("term", 0) < 1:
        fail("no leader")
EOF
)
# History: every member has samples, each member's in time order and each once.
history_check=$(cat <<'EOF'
import json, sys
nodes, boards = set(sys.argv[1].split(",")), set(sys.argv[2].split(","))
lines = [l for l in sys.stdin.read().splitlines() if l.startswith("{")]
def fail(why):
    sys.exit("history: %s in %d replies:\n%s" % (why, len(lines), "\n".join(lines[-40:])))
try:
    replies = [json.loads(l) for l in lines]
except ValueError:
    fail("a reply that is not JSON")
times = {}
for r in replies:
    if not isinstance(r.get("ts_ms"), int) or not isinstance(r.get("watts"), (int, float)):
        fail("a reply without ts_ms and watts")
    times.setdefault(r.get("id"), []).append(r["ts_ms"])
if set(times) != nodes | boards:
    fail("members %s" % sorted(times))
for member, ts in times.items():
    # Boards report every 500 ms; a node every 5 s, so a young swarm's nodes may have one.
    if len(ts) < (2 if member in boards else 1):
        fail("%s has %d samples" % (member, len(ts)))
    if any(b <= a for a, b in zip(ts, ts[1:])):
        fail("%s out of order or twice: %s" % (member, ts))
print(sum(len(ts) for ts in times.values()))
EOF
)
nodes_csv=$(IFS=,; echo "${nodes[*]}")
boards_csv=$(IFS=,; echo "${boards[*]}")

base=$((21000 + RANDOM % 4000))
wait_listening() {
  local _
  for _ in $(seq 1 150); do
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$1" \
      2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 never listened on 127.0.0.1:$1" >&2
  cat "$work/zenohd.log" >&2
  return 1
}
start_swarm() {
  local topology=$1 mqtt=$((base + 20)) router=$((base + 30)) rest=$((base + 31)) i j
  local first="tcp/127.0.0.1:$base"
  if [ "$topology" = router ]; then
    RUST_LOG=warn "$tools/bin/zenohd" --listen "tcp/127.0.0.1:$router" --no-multicast-scouting \
      --rest-http-port "127.0.0.1:$rest" --plugin-search-dir "$tools/lib" \
      > "$work/zenohd.log" 2>&1 &
    pids+=($!)
    first="tcp/127.0.0.1:$router"
    # A client gives up at start when its router is not there yet (zenoh's client default).
    wait_listening "$router" zenohd
    wait_listening "$rest" "zenohd's REST API"
  fi
  for i in "${!nodes[@]}"; do
    local args=(run --id "${nodes[$i]}" --swarm "$swarm" --no-multicast
      --state-dir "$work/$topology/${nodes[$i]}")
    case $topology in
      router) args+=(--mode client --connect "$first") ;;
      star) args+=(--listen "tcp/127.0.0.1:$((base + i))")
        [ "$i" -eq 0 ] || args+=(--connect "$first") ;;
      chain) args+=(--listen "tcp/127.0.0.1:$((base + i))")
        [ "$i" -eq 0 ] || args+=(--connect "tcp/127.0.0.1:$((base + i - 1))") ;;
      mesh) args+=(--listen "tcp/127.0.0.1:$((base + i))")
        for ((j = 0; j < i; j++)); do args+=(--connect "tcp/127.0.0.1:$((base + j))"); done ;;
    esac
    [ "$i" -eq 0 ] && args+=(--mqtt-listen "127.0.0.1:$mqtt")
    "$bin" "${args[@]}" 2> "$work/$topology-${nodes[$i]}.log" &
    pids+=($!)
  done
  "$bridge" devices --count ${#boards[@]} --prefix esp --swarm "$swarm" \
    --mqtt "127.0.0.1:$mqtt" --interval-ms 500 > "$work/$topology-boards.log" 2>&1 &
  pids+=($!)
  entry=$first
}

# Ready once our own tool sees every member and one leader, and the leader sums the boards too.
wait_ready() {
  local topology=$1 mode=() _
  [ "$topology" = router ] && mode=(--mode client)
  for _ in $(seq 1 60); do
    if "$bin" status --json --swarm "$swarm" --no-multicast --timeout-ms 1500 "${mode[@]}" \
      --connect "$entry" 2>/dev/null | python3 -c '
import json, sys
members = json.load(sys.stdin)
want = set(sys.argv[1].split(",")) | set(sys.argv[2].split(","))
leaders = {m.get("leader") for m in members if m.get("class") != "minimal"}
sys.exit(0 if {m["id"] for m in members} == want and len(leaders) == 1 and None not in leaders else 1)
' "$nodes_csv" "$boards_csv"; then
      return 0
    fi
    sleep 1
  done
  echo "$topology: the swarm never formed" >&2
  tail -n 20 "$work/$topology"-*.log >&2
  return 1
}

ask() {
  # A fresh process each time, as a user runs it: linked to one node (or the router), with
  # its own listener and scouting kept on loopback.
  "$zenoh_cli" --connect "$entry" --listen tcp/127.0.0.1:0 \
    --cfg 'scouting/multicast/enabled:false' get -s "$1" --decoder json 2>> "$work/cli.err"
}

for topology in "${topologies[@]}"; do
  start=$SECONDS
  start_swarm "$topology"
  wait_ready "$topology"
  complete=0
  for run in $(seq 1 "$runs"); do
    for kind in energy state leader; do
      case $kind in
        leader) selector="swarm/$swarm/leader" ;;
        *) selector="swarm/**/$kind" ;;
      esac
      if ! ask "$selector" | python3 -c "$check" "$kind" "$swarm" "$nodes_csv" "$boards_csv"; then
        echo "$topology: run $run of $runs: the first answer to $selector was incomplete" >&2
        exit 1
      fi
    done
    complete=$((complete + 1))
  done
  # The history holds what reached the gateway: a node's samples from before its links to n0
  # formed never did. One node sample interval (5 s) later, every node has one that did.
  sleep 6
  # The README's own selector: every swarm key ending in energy, over the past 5 minutes.
  history=$(ask "swarm/**/energy?_time=[now(-5m)..]" |
    python3 -c "$history_check" "$nodes_csv" "$boards_csv") ||
    { echo "$topology: the first answer from history was incomplete" >&2; exit 1; }
  rest_note=""
  if [ "$topology" = router ]; then
    for run in $(seq 1 "$runs"); do
      curl -sf "http://127.0.0.1:$((base + 31))/swarm/**/energy" | python3 -c '
import json, sys
replies = json.load(sys.stdin)
ids = sorted(r["value"]["id"] for r in replies if "id" in r["value"])
want = sorted(sys.argv[1].split(",") + sys.argv[2].split(","))
sys.exit(0 if ids == want else "REST: members %s" % ids)
' "$nodes_csv" "$boards_csv" || { echo "router: REST run $run of $runs was incomplete" >&2; exit 1; }
    done
    rest_note=", and $runs of $runs REST answers"
  fi
  echo "zenoh-cli interop, $topology: $complete of $runs fresh processes got every member's energy, state and the leader on their first query$rest_note; one query of the past 5 minutes gave every member's samples in order ($history samples) ($((SECONDS - start)) s)"
  stop_all
  base=$((base + 50))
done
