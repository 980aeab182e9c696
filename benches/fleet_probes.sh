#!/usr/bin/env bash
# Probe load of a fleet with and without probe sharding: three Meridian instances on loopback
# pulling each other, 1,000 endpoints each probed by a `tcp` check every second, run once with
# `[fleet] probes_per_endpoint` unset (every instance probes every endpoint) and once with it set
# to K (default 1). Prints probes per second per instance and across the fleet, from the sum of
# `meridian_health_probes_total` on each instance's /metrics over the measured window, and the
# ratio.
#
#   bash benches/fleet_probes.sh                      # builds target/release/meridian first
#   MERIDIAN=target/debug/meridian bash benches/fleet_probes.sh
#   ENDPOINTS=1000 SETTLE=4 WINDOW=10 K=1 bash benches/fleet_probes.sh
#
# Everything is on 127.0.0.1: the probe targets are a few TCP ports a small Python listener
# accepts and closes (every endpoint probes one of them; the endpoints differ by name), the
# instances' DNS ports are picked by the kernel, their admin ports are BASE_PORT, +1, +2.
# Every wait is bounded; the instances and the listener are stopped by their PIDs on exit.

set -euo pipefail

ENDPOINTS=${ENDPOINTS:-1000}
K=${K:-1}
SETTLE=${SETTLE:-4}      # seconds from start (peers fresh, assignment settled) to the window
WINDOW=${WINDOW:-10}     # seconds measured
BASE_PORT=${BASE_PORT:-19353}
TARGET_PORTS=${TARGET_PORTS:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MERIDIAN=${MERIDIAN:-}

if [[ -z $MERIDIAN ]]; then
    (cd "$ROOT" && cargo build --release --quiet --bin meridian)
    MERIDIAN=$ROOT/target/release/meridian
fi

WORK=$(mktemp -d)
PIDS=()      # the probe targets' listener
RUN_PIDS=()  # the instances of the run under way
cleanup() {
    for pid in "${RUN_PIDS[@]}" "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${RUN_PIDS[@]}" "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- probe targets: TARGET_PORTS TCP ports that accept and close --------------------------------
cat >"$WORK/targets.py" <<'EOF'
import selectors, socket, sys
sel = selectors.DefaultSelector()
ports = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(4096)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    ports.append(s.getsockname()[1])
print(" ".join(map(str, ports)), flush=True)
while True:
    for key, _ in sel.select(timeout=1):
        for _ in range(64):
            try:
                c, _ = key.fileobj.accept()
            except BlockingIOError:
                break
            c.close()
EOF
python3 "$WORK/targets.py" "$TARGET_PORTS" >"$WORK/ports" &
PIDS+=($!)
for _ in $(seq 50); do
    [[ -s $WORK/ports ]] && break
    sleep 0.1
done
read -r -a PORTS <"$WORK/ports"
[[ ${#PORTS[@]} -eq $TARGET_PORTS ]] || { echo "probe targets did not start" >&2; exit 1; }

NODES=(eu-1 us-1 ap-1)
REGIONS=(eu us ap)

# --- one instance's configuration --------------------------------------------------------------
config() { # node-index k-or-empty
    local n=$1 k=$2 peers="" i
    for i in 0 1 2; do
        [[ $i -eq $n ]] && continue
        peers+="${peers:+, }\"http://127.0.0.1:$((BASE_PORT + i))\""
    done
    cat <<EOF
[dns]
listen = ["127.0.0.1:0"]
workers = 1

[[zone]]
origin = "bench.example."
file = "$ROOT/benches/zones/bench.example.zone"

[node]
name = "${NODES[$n]}"
region = "${REGIONS[$n]}"

[admin]
listen = "127.0.0.1:$((BASE_PORT + n))"

[fleet]
peers = [$peers]
interval = "500ms"
max_age = "2s"
${k:+probes_per_endpoint = $k}

[[region]]
name = "eu"
location = [50.1, 8.7]

[[region]]
name = "us"
location = [39.0, -77.5]

[[region]]
name = "ap"
location = [35.7, 139.7]

EOF
    for i in "${!PORTS[@]}"; do
        printf '[checks.t%d]\nkind = "tcp"\nport = %d\ninterval = "1s"\ntimeout = "500ms"\njitter = "1s"\n\n' \
            "$i" "${PORTS[$i]}"
    done
    for ((e = 0; e < ENDPOINTS; e++)); do
        printf '[[pool]]\nname = "p%d"\nregion = "eu"\nchecks = ["t%d"]\n[[pool.endpoint]]\nname = "e%d"\naddress = "198.18.%d.%d"\ncheck_address = "127.0.0.1"\n\n' \
            "$e" "$((e % TARGET_PORTS))" "$e" "$((e / 250))" "$((e % 250 + 1))"
    done
}

# Sum of meridian_health_probes_total on the instance with admin port $1.
probes() {
    curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" |
        awk '/^meridian_health_probes_total[{ ]/ { s += $NF } END { printf "%.0f\n", s }'
}

# Wait (at most 20 s) for the instance with admin port $1 to have 2 fresh peers.
wait_fresh() {
    local i
    for i in $(seq 200); do
        if curl -sf --max-time 2 "http://127.0.0.1:$1/status" |
            python3 -c 'import json,sys; f=json.load(sys.stdin)["fleet"]; sys.exit(0 if sum(p["fresh"] for p in f["peers"]) == 2 else 1)' 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "instance on $1: peers not fresh within 20 s" >&2
    return 1
}

# Probed endpoints per instance, from /status.
probed() {
    curl -sf --max-time 5 "http://127.0.0.1:$1/status" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["fleet"]["probed_endpoints"])'
}

run() { # label k-or-empty; prints "label per-instance... total"
    local label=$1 k=$2 n before=() after=() total=0 line
    for n in 0 1 2; do
        config "$n" "$k" >"$WORK/${NODES[$n]}.toml"
        "$MERIDIAN" check --config "$WORK/${NODES[$n]}.toml" >/dev/null
        "$MERIDIAN" serve --config "$WORK/${NODES[$n]}.toml" 2>"$WORK/${NODES[$n]}-$label.log" &
        RUN_PIDS+=($!)
    done
    for n in 0 1 2; do wait_fresh $((BASE_PORT + n)); done
    sleep "$SETTLE"
    for n in 0 1 2; do before[n]=$(probes $((BASE_PORT + n))); done
    sleep "$WINDOW"
    for n in 0 1 2; do after[n]=$(probes $((BASE_PORT + n))); done
    line=$(printf '%-26s' "$label")
    for n in 0 1 2; do
        local d=$((after[n] - before[n]))
        total=$((total + d))
        line+=$(printf '  %s %7.1f/s (%4s probed)' "${NODES[$n]}" "$(echo "$d / $WINDOW" | bc -l)" "$(probed $((BASE_PORT + n)))")
    done
    line+=$(printf '  fleet %8.1f/s' "$(echo "$total / $WINDOW" | bc -l)")
    echo "$line"
    echo "$total" >"$WORK/total-$label"
    for pid in "${RUN_PIDS[@]}"; do kill "$pid"; done
    for pid in "${RUN_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    RUN_PIDS=()
}

echo "$ENDPOINTS endpoints, 3 instances, tcp checks every 1 s, window ${WINDOW} s after ${SETTLE} s"
run "unsharded" ""
run "probes_per_endpoint=$K" "$K"
a=$(cat "$WORK/total-unsharded")
b=$(cat "$WORK/total-probes_per_endpoint=$K")
printf 'probes with sharding / without: %.3f (%.2fx fewer)\n' "$(echo "$b / $a" | bc -l)" "$(echo "$a / $b" | bc -l)"
