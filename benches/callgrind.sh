#!/usr/bin/env bash
# User-space instructions per UDP query, counted exactly by callgrind (valgrind).
#
# Tick-sampled utime moves by tens of percent between runs on a VM; an instruction count does
# not. This runs a server under `valgrind --tool=callgrind --separate-threads=yes`, has dnsperf
# send it N and then 2N queries (two separate server runs), and reports
#   (instructions of the busiest thread in the 2N run - those in the N run) / N
# so that start-up, metric registration and shutdown cancel out. The busiest thread is the one
# UDP worker (the servers run with one).
#
# Usage: benches/callgrind.sh [meridian|null-mmsg|both]   (default: both)
# Environment: QUERIES [10000] (N), PORT [5497], RATE [3000] (dnsperf -Q; valgrind is slow),
#              KEEP_WORK [0].
# Needs: valgrind, dnsperf, dig (benches/dnsperf.sh installs the last two).
set -euo pipefail

QUERIES=${QUERIES:-10000}
PORT=${PORT:-5497}
RATE=${RATE:-3000}
KEEP_WORK=${KEEP_WORK:-0}
WHICH=${1:-both}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUERY_FILE=$REPO/benches/queries.txt
ADDR=127.0.0.1

for var in QUERIES PORT RATE; do
    [[ ${!var} =~ ^[0-9]+$ ]] || { echo "callgrind.sh: $var must be a number" >&2; exit 64; }
done
((QUERIES >= 100 && QUERIES <= 200000)) || { echo "callgrind.sh: QUERIES must be 100..200000" >&2; exit 64; }
for tool in valgrind dnsperf dig; do
    command -v $tool >/dev/null || { echo "callgrind.sh: $tool is missing" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/meridian-callgrind.XXXXXX)
SERVER_PID=
cleanup() {
    local rc=$?
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
    if ((KEEP_WORK)); then echo "callgrind.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT

cp "$REPO/benches/zones/bench.example.zone" "$WORK/"
cat >"$WORK/meridian.toml" <<EOF
[dns]
listen = ["$ADDR:$PORT"]
workers = 1
[[zone]]
origin = "bench.example."
file = "bench.example.zone"
EOF

(cd "$REPO" && cargo build --release --bin meridian --example null_responder) >"$WORK/build.log" 2>&1 ||
    { tail -20 "$WORK/build.log" >&2; exit 1; }

server_cmd() {
    case $1 in
    meridian) echo "$REPO/target/release/meridian serve --config $WORK/meridian.toml" ;;
    null-mmsg) echo "$REPO/target/release/examples/null_responder $ADDR:$PORT --mmsg" ;;
    esac
}

# One server run under callgrind answering about $2 queries; prints the busiest thread's total
# instruction count and the number of queries dnsperf got answered.
count_run() {
    local server=$1 n=$2 out=$WORK/$1.$2
    # shellcheck disable=SC2046
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out.%p" \
        $(server_cmd "$server") >"$out.log" 2>&1 &
    SERVER_PID=$!
    local up=0
    for _ in $(seq 1 100); do
        if dig +short +time=1 +tries=1 -p "$PORT" @"$ADDR" www.bench.example A >/dev/null 2>&1; then up=1; break; fi
        sleep 0.2
    done
    ((up)) || { echo "callgrind.sh: $server did not answer" >&2; cat "$out.log" >&2; exit 1; }
    local lines
    lines=$(grep -cv '^\s*$' "$QUERY_FILE")
    dnsperf -s "$ADDR" -p "$PORT" -d "$QUERY_FILE" -n $(((n + lines - 1) / lines)) -Q "$RATE" -l 600 \
        >"$out.dnsperf" 2>&1
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
    local sent completed total
    sent=$(awk '/Queries sent:/ {print $3}' "$out.dnsperf")
    completed=$(awk '/Queries completed:/ {print $3}' "$out.dnsperf")
    [[ -n $completed && $completed == "$sent" ]] ||
        { echo "callgrind.sh: $server answered ${completed:-no} of ${sent:-no} queries" >&2; exit 1; }
    total=$(cat "$out".* | awk '/^totals:/ { if ($2 > max) max = $2 } END { print max + 0 }')
    # The dig probe above adds one query to every run: it cancels out in the difference.
    echo "$total $completed"
}

measure() {
    local server=$1 a b
    a=$(count_run "$server" "$QUERIES")
    b=$(count_run "$server" $((QUERIES * 2)))
    awk -v s="$server" -v a="$a" -v b="$b" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        printf "%-10s %6.0f user instructions per query  (worker thread: %d instructions for %d queries, %d for %d)\n",
            s, (y[1] - x[1]) / (y[2] - x[2]), x[1], x[2], y[1], y[2] }'
}

case $WHICH in
both) measure null-mmsg; measure meridian ;;
meridian | null-mmsg) measure "$WHICH" ;;
*) echo "usage: callgrind.sh [meridian|null-mmsg|both]" >&2; exit 64 ;;
esac
