#!/usr/bin/env bash
# User-space instructions per UDP query, counted exactly by callgrind (valgrind).
#
# Tick-sampled utime moves by tens of percent between runs on a VM; an instruction count does
# not. This runs a server under `valgrind --tool=callgrind --separate-threads=yes`, warms it up
# with WARMUP queries from dnsperf, zeroes the counters (callgrind_control -z), has dnsperf send
# QUERIES more, dumps the counters (callgrind_control --dump) and reports the busiest thread's
# instructions divided by the queries answered. The busiest thread is the one UDP worker (the
# servers run with one); its count covers the whole loop: system-call wrappers, parsing,
# answering and the metrics tally, in the steady state.
#
# Usage: benches/callgrind.sh [meridian|meridian-steered|null-mmsg|both|all]   (default: both:
#        null-mmsg and meridian; all adds meridian-steered: benches/meridian-steered.toml, replaying
#        benches/queries-steered.txt, as in dnsperf.sh). dnsperf sends no EDNS (no -e/-E/-D).
# Environment: QUERIES [20000], WARMUP [2000], PORT [5497], RATE [3000] (dnsperf -Q; valgrind is
#              slow), KEEP_WORK [0], RRL [default]: `default` leaves [rrl] as it ships (dnsperf
#              asks from loopback, exempt: each response costs the exemption check), `active`
#              makes every response take a token (exempt = [], a rate no run reaches), `off`
#              turns rate limiting off; MERIDIAN [target/release/meridian] (the binary to
#              measure, e.g. an older build to compare).
# Needs: valgrind, dnsperf, dig (benches/dnsperf.sh installs the last two).
set -euo pipefail

QUERIES=${QUERIES:-20000}
WARMUP=${WARMUP:-2000}
PORT=${PORT:-5497}
RATE=${RATE:-3000}
KEEP_WORK=${KEEP_WORK:-0}
MERIDIAN=${MERIDIAN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/meridian}
RRL=${RRL:-default}
WHICH=${1:-both}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUERY_FILE=$REPO/benches/queries.txt
STEERED_QUERY_FILE=$REPO/benches/queries-steered.txt
ADDR=127.0.0.1

for var in QUERIES WARMUP PORT RATE; do
    [[ ${!var} =~ ^[0-9]+$ ]] || { echo "callgrind.sh: $var must be a number" >&2; exit 64; }
done
((QUERIES >= 100 && QUERIES <= 200000)) || { echo "callgrind.sh: QUERIES must be 100..200000" >&2; exit 64; }
case $RRL in
default) RRL_TOML= ;;
active) RRL_TOML=$'[rrl]\nexempt = []\nrate = 100000\nburst = 100000\n' ;;
off) RRL_TOML=$'[rrl]\nenabled = false\n' ;;
*) echo "callgrind.sh: RRL must be default, active or off" >&2; exit 64 ;;
esac
for tool in valgrind callgrind_control dnsperf dig; do
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
$RRL_TOML
EOF
sed -e "s|^listen = .*|listen = [\"$ADDR:$PORT\"]|" -e "s|^file = \"zones/|file = \"$REPO/benches/zones/|" \
    -e "s|^database = \"\.\./|database = \"$REPO/|" "$REPO/benches/meridian-steered.toml" >"$WORK/steered-config.toml"
printf '\n%s' "$RRL_TOML" >>"$WORK/steered-config.toml"

(cd "$REPO" && cargo build --release --bin meridian --example null_responder) >"$WORK/build.log" 2>&1 ||
    { tail -20 "$WORK/build.log" >&2; exit 1; }

server_cmd() {
    case $1 in
    meridian) echo "$MERIDIAN serve --config $WORK/meridian.toml" ;;
    meridian-steered) echo "$MERIDIAN serve --config $WORK/steered-config.toml" ;;
    null-mmsg) echo "$REPO/target/release/examples/null_responder $ADDR:$PORT --mmsg" ;;
    esac
}

# dnsperf replays query file $3 $2 times (rounded up) against the server; output to $1. Every
# response of the steered mix must be NOERROR.
replay() {
    local out=$1 count=$2 queries=$3 lines sent completed
    lines=$(grep -cv '^\s*$' "$queries")
    dnsperf -s "$ADDR" -p "$PORT" -d "$queries" -n $(((count + lines - 1) / lines)) -Q "$RATE" -l 600 >"$out" 2>&1
    sent=$(awk '/Queries sent:/ {print $3}' "$out")
    completed=$(awk '/Queries completed:/ {print $3}' "$out")
    [[ -n $completed && $completed == "$sent" ]] ||
        { echo "callgrind.sh: ${completed:-no} of ${sent:-no} queries answered" >&2; return 1; }
    if [[ $queries == "$STEERED_QUERY_FILE" ]] && ! grep -Eq 'Response codes: +NOERROR [0-9]+ \(100\.00%\)$' "$out"; then
        echo "callgrind.sh: steered responses other than NOERROR: $(grep 'Response codes' "$out")" >&2; return 1
    fi
    echo "$completed"
}

measure() {
    local server=$1 out=$WORK/$1 up=0 n total queries=$QUERY_FILE
    [[ $server == meridian-steered ]] && queries=$STEERED_QUERY_FILE
    # shellcheck disable=SC2046 # the command is a word list we built
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out.%p" \
        $(server_cmd "$server") >"$out.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if dig +short +time=1 +tries=1 -p "$PORT" @"$ADDR" www.bench.example A >/dev/null 2>&1; then up=1; break; fi
        sleep 0.2
    done
    ((up)) || { echo "callgrind.sh: $server did not answer" >&2; cat "$out.log" >&2; exit 1; }
    replay "$out.warmup" "$WARMUP" "$queries" >/dev/null
    callgrind_control -z "$SERVER_PID" >/dev/null
    n=$(replay "$out.measured" "$QUERIES" "$queries")
    callgrind_control --dump=measured "$SERVER_PID" >/dev/null
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
    # The dump holds one file per thread, each with a "desc: Trigger: ... measured" line.
    total=$(grep -l 'measured' "$out".* 2>/dev/null | xargs awk '/^totals:/ { if ($2 > max) max = $2 } END { print max + 0 }')
    awk -v s="$server" -v t="$total" -v n="$n" 'BEGIN {
        printf "%-16s %6.0f user instructions per query  (worker thread: %d instructions for %d queries)\n", s, t / n, t, n }'
}

case $WHICH in
both) measure null-mmsg; measure meridian ;;
all) measure null-mmsg; measure meridian; measure meridian-steered ;;
meridian | meridian-steered | null-mmsg) measure "$WHICH" ;;
*) echo "usage: callgrind.sh [meridian|meridian-steered|null-mmsg|both|all]" >&2; exit 64 ;;
esac
