#!/usr/bin/env bash
# End-to-end UDP benchmark: Meridian against Knot DNS, gdnsd, NSD and a do-nothing responder.
#
# Every server loads the same zone (benches/zones/bench.example.zone), runs alone, pinned to one CPU,
# with one UDP worker, on its own loopback port; dnsperf, pinned to the other CPU, replays
# benches/queries.txt at it. "meridian-steered" is Meridian serving the same zone plus four
# [[service]] names in it (benches/meridian-steered.toml: failover, weighted, geo, a CNAME
# endpoint; no health checks), replaying benches/queries-steered.txt (those names, A and AAAA). Queries carry no EDNS (dnsperf adds an OPT
# record only with -e, -E or -D, which this script never passes). For each server we measure
#   (a) a fixed-load run (-Q RATE for DURATION s): the server's own CPU accounting before and after
#       (/proc/PID/stat utime+stime, /proc/PID/task/*/schedstat), giving queries per server CPU-second
#       and user/system microseconds per query;
#   (b) a raw maximum run (no -Q, MAX_DURATION s): the highest rate dnsperf gets answered.
# Every response code is checked: a fixed-load run fails on any rcode but NOERROR and NXDOMAIN, or
# when its NXDOMAIN share is off by more than a point from what the query file should give (names
# that are neither owners in the zone nor services of the server's config); so every response of
# meridian-steered must be NOERROR, in the maximum run too. The table is followed by each run's
# breakdown. See benches/README.md for how to read the table.
#
# Usage: benches/dnsperf.sh            (as root; installs dnsperf, knot, gdnsd, nsd, dig if missing)
# Environment (defaults in brackets):
#   RATE [40000]            queries/s of the fixed-load run
#   DURATION [10]           seconds of the fixed-load run
#   FIXED_OUTSTANDING [100] dnsperf -q of the fixed-load run (more lets dnsperf start with a burst that
#                           overflows the server socket's receive buffer, whatever the server)
#   MAX_DURATION [5]        seconds of the raw maximum run
#   MAX_CLIENTS [4]         dnsperf -c (client sockets) of the maximum run
#   MAX_OUTSTANDING [300]   dnsperf -q of the maximum run
#   BASE_PORT [5391]        null=BASE, meridian=+1, knot=+2, gdnsd=+3, nsd=+4, null-mmsg=+5,
#                           meridian-steered=+6 (on 127.0.0.1)
#   SERVER_CPU [0] CLIENT_CPU [1]
#   SERVERS ["null null-mmsg meridian meridian-steered knot gdnsd nsd"]  which servers to run, in this order
#   OPTIONAL_SERVERS ["gdnsd nsd"]  servers that are skipped (not failed) when they cannot be installed
#   SKIP_MERIDIAN [0]       1: do not build or run Meridian (meridian and meridian-steered)
#   MERIDIAN []             the meridian binary to measure, not built (e.g. an older build, to
#                           compare two builds in turn); default: target/release/meridian, built
#   NO_INSTALL [0]          1: never call apt-get; servers whose binaries are missing are skipped/failed
#   MAX_LOSS_PCT [1]        a run that loses more than this percentage of queries fails
#   ROUNDS [1]              run every server this many times, interleaved (round 1: each server,
#                           round 2: each server, ...); the table shows the last round and a
#                           summary gives each server's median and range of q per CPU-s and usr µs/q
#   KEEP_WORK [0]           1: keep the temp dir (configs, server logs, dnsperf output) and print its path
set -euo pipefail

RATE=${RATE:-40000}
DURATION=${DURATION:-10}
MAX_DURATION=${MAX_DURATION:-5}
FIXED_OUTSTANDING=${FIXED_OUTSTANDING:-100}
MAX_CLIENTS=${MAX_CLIENTS:-4}
MAX_OUTSTANDING=${MAX_OUTSTANDING:-300}
BASE_PORT=${BASE_PORT:-5391}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVERS=${SERVERS:-"null null-mmsg meridian meridian-steered knot gdnsd nsd"}
OPTIONAL_SERVERS=${OPTIONAL_SERVERS:-"gdnsd nsd"}
SKIP_MERIDIAN=${SKIP_MERIDIAN:-0}
NO_INSTALL=${NO_INSTALL:-0}
MAX_LOSS_PCT=${MAX_LOSS_PCT:-1}
KEEP_WORK=${KEEP_WORK:-0}
ROUNDS=${ROUNDS:-1}
ADDR=127.0.0.1 # loopback only, by design

for var in RATE DURATION FIXED_OUTSTANDING MAX_DURATION MAX_CLIENTS MAX_OUTSTANDING BASE_PORT SERVER_CPU CLIENT_CPU ROUNDS; do
    [[ ${!var} =~ ^[0-9]+$ ]] || { echo "dnsperf.sh: $var must be a non-negative integer, got '${!var}'" >&2; exit 64; }
done
((DURATION >= 1 && DURATION <= 300 && MAX_DURATION >= 1 && MAX_DURATION <= 300)) ||
    { echo "dnsperf.sh: DURATION and MAX_DURATION must be 1..300 s" >&2; exit 64; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ZONE_FILE=$REPO/benches/zones/bench.example.zone
QUERY_FILE=$REPO/benches/queries.txt
STEERED_QUERY_FILE=$REPO/benches/queries-steered.txt
STEERED_CONFIG=$REPO/benches/meridian-steered.toml
CLK_TCK=$(getconf CLK_TCK)
POLICY_RC_D=/usr/sbin/policy-rc.d

log() { echo "== $*" >&2; }
die() { echo "dnsperf.sh: error: $*" >&2; exit 1; }
is_optional() { [[ " $OPTIONAL_SERVERS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- cleanup
WORK=$(mktemp -d /tmp/meridian-dnsperf.XXXXXX)
STARTED_PIDS=()
CREATED_POLICY=0
# Once a child is reaped its PID may be reused by anyone: drop it so that cleanup never kills a stranger.
forget_pid() {
    local kept=() p
    for p in "${STARTED_PIDS[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
    STARTED_PIDS=("${kept[@]}")
}
cleanup() {
    local rc=$? pid
    for pid in "${STARTED_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for pid in "${STARTED_PIDS[@]}"; do
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    if ((CREATED_POLICY)); then rm -f "$POLICY_RC_D"; fi
    if ((KEEP_WORK)); then echo "dnsperf.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
install_packages() {
    # Debian starts a daemon on install unless policy-rc.d says no (exit 101); this machine has no
    # systemd, and we want no knotd/nsd/gdnsd on the default port 53 either way.
    if [[ ! -e $POLICY_RC_D ]]; then
        printf '#!/bin/sh\n# written by meridian benches/dnsperf.sh; removed when it exits\nexit 101\n' >"$POLICY_RC_D"
        chmod 755 "$POLICY_RC_D"
        CREATED_POLICY=1
    elif ! (set +e; "$POLICY_RC_D" x start >/dev/null 2>&1; [[ $? == 101 ]]); then
        die "$POLICY_RC_D exists and does not forbid starting services; refusing to install"
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >"$WORK/apt.log" 2>&1 || {
        log "apt-get update and retry"
        DEBIAN_FRONTEND=noninteractive apt-get update >>"$WORK/apt.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$WORK/apt.log" 2>&1
    } || { tail -20 "$WORK/apt.log" >&2; return 1; }
    if ((CREATED_POLICY)); then rm -f "$POLICY_RC_D"; CREATED_POLICY=0; fi
}

want() { [[ " $SERVERS " == *" $1 "* ]]; }
needed=()
command -v dnsperf >/dev/null || needed+=(dnsperf)
command -v dig >/dev/null || needed+=(bind9-dnsutils)
command -v taskset >/dev/null || needed+=(util-linux)
if want knot && ! command -v knotd >/dev/null; then needed+=(knot); fi
if ((${#needed[@]})); then
    ((NO_INSTALL)) && die "missing: ${needed[*]} (NO_INSTALL=1)"
    install_packages "${needed[@]}" || die "could not install ${needed[*]}"
fi
for opt in gdnsd nsd; do
    if want "$opt" && ! command -v "$opt" >/dev/null && ((!NO_INSTALL)); then
        install_packages "$opt" || log "could not install $opt; it will be skipped"
    fi
done
# Packages may have left daemons behind if policy-rc.d was not honoured; say so, touch nothing.
for daemon in knotd nsd gdnsd; do
    if pgrep -x "$daemon" >/dev/null; then
        log "note: a $daemon not started by this script is running (pids $(pgrep -x "$daemon" | tr '\n' ' '))"
    fi
done

# ---------------------------------------------------------------- builds
NULL_BIN=$REPO/target/release/examples/null_responder
MERIDIAN_BIN=${MERIDIAN:-$REPO/target/release/meridian}
log "building null responder"
if ! (cd "$REPO" && cargo build --release --example null_responder) >"$WORK/build-null.log" 2>&1; then
    # It is std-only: if the crate is mid-edit and does not build, compile the file on its own.
    log "cargo build of the example failed (see below); compiling it with rustc alone"
    tail -5 "$WORK/build-null.log" >&2
    NULL_BIN=$WORK/null_responder
    rustc --edition 2021 -C opt-level=3 -o "$NULL_BIN" "$REPO/benches/null_responder.rs"
fi
if (want meridian || want meridian-steered) && ((SKIP_MERIDIAN)); then
    log "SKIP_MERIDIAN=1: Meridian is not built and not measured"
    SERVERS=" $SERVERS "; SERVERS=${SERVERS/ meridian / }; SERVERS=${SERVERS/ meridian-steered / }
elif (want meridian || want meridian-steered) && [[ -n ${MERIDIAN:-} ]]; then
    [[ -x $MERIDIAN_BIN ]] || die "MERIDIAN=$MERIDIAN_BIN is not an executable"
    log "measuring $MERIDIAN_BIN (not built)"
elif want meridian || want meridian-steered; then
    log "building meridian (cargo build --release)"
    if ! (cd "$REPO" && cargo build --release) >"$WORK/build-meridian.log" 2>&1; then
        tail -20 "$WORK/build-meridian.log" >&2
        die "cargo build --release failed (set SKIP_MERIDIAN=1 to benchmark the others only)"
    fi
fi

# ---------------------------------------------------------------- server configs
port_of() {
    case $1 in null) echo $((BASE_PORT)) ;; meridian) echo $((BASE_PORT + 1)) ;; knot) echo $((BASE_PORT + 2)) ;;
        gdnsd) echo $((BASE_PORT + 3)) ;; nsd) echo $((BASE_PORT + 4)) ;; null-mmsg) echo $((BASE_PORT + 5)) ;;
        meridian-steered) echo $((BASE_PORT + 6)) ;;
        *) die "unknown server $1" ;; esac
}
query_file_of() { if [[ $1 == meridian-steered ]]; then echo "$STEERED_QUERY_FILE"; else echo "$QUERY_FILE"; fi; }

# Prints the command line that runs server $1 in the foreground, after writing its config under $WORK/$1.
server_command() {
    local name=$1 port dir
    port=$(port_of "$name")
    dir=$WORK/$name
    mkdir -p "$dir"
    case $name in
    null)
        echo "$NULL_BIN $ADDR:$port"
        ;;
    null-mmsg)
        echo "$NULL_BIN $ADDR:$port --mmsg"
        ;;
    meridian)
        cat >"$dir/meridian.toml" <<EOF
[dns]
listen = ["$ADDR:$port"]
workers = 1

[[zone]]
origin = "bench.example."
file = "$ZONE_FILE"
EOF
        echo "$MERIDIAN_BIN serve --config $dir/meridian.toml"
        ;;
    meridian-steered)
        # benches/meridian-steered.toml: the bench zone plus the services of queries-steered.txt;
        # our address, and its relative paths made absolute.
        sed -e "s|^listen = .*|listen = [\"$ADDR:$port\"]|" -e "s|^file = \"zones/|file = \"$REPO/benches/zones/|" \
            -e "s|^database = \"\.\./|database = \"$REPO/|" "$STEERED_CONFIG" >"$dir/meridian.toml"
        echo "$MERIDIAN_BIN serve --config $dir/meridian.toml"
        ;;
    knot)
        mkdir -p "$dir/run" "$dir/storage"
        cat >"$dir/knot.conf" <<EOF
server:
    rundir: "$dir/run"
    listen: $ADDR@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: notice
database:
    storage: "$dir/storage"
template:
  - id: default
    storage: "$dir/storage"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: bench.example.
    file: "$ZONE_FILE"
EOF
        echo "knotd -c $dir/knot.conf"
        ;;
    gdnsd)
        mkdir -p "$dir/etc/zones" "$dir/run" "$dir/state"
        cp "$ZONE_FILE" "$dir/etc/zones/bench.example"
        cat >"$dir/etc/config" <<EOF
options => {
    listen => [ $ADDR:$port ]
    udp_threads => 1
    tcp_threads => 1
    run_dir => $dir/run
    state_dir => $dir/state
}
EOF
        echo "gdnsd -c $dir/etc start" # 3.x: "start" runs in the foreground
        ;;
    nsd)
        cat >"$dir/nsd.conf" <<EOF
server:
    ip-address: $ADDR@$port
    server-count: 1
    rrl-ratelimit: 0
    minimal-responses: yes # as Knot and gdnsd do by default: no NS/glue on plain answers
    username: ""
    chroot: ""
    zonesdir: "$dir"
    database: ""
    zonelistfile: "$dir/zone.list"
    xfrdfile: "$dir/xfrd.state"
    xfrdir: "$dir"
    pidfile: "$dir/nsd.pid"
    logfile: "$dir/nsd.log"
    do-ip6: no
remote-control:
    control-enable: no
zone:
    name: "bench.example"
    zonefile: "$ZONE_FILE"
EOF
        echo "nsd -d -c $dir/nsd.conf"
        ;;
    esac
}

binary_of() {
    case $1 in
    null | null-mmsg) echo "$NULL_BIN" ;;
    meridian | meridian-steered) echo "$MERIDIAN_BIN" ;;
    knot) echo knotd ;;
    *) echo "$1" ;;
    esac
}
# Running, not a zombie (an exited child stays a zombie until we wait for it).
alive() { [[ -r /proc/$1/stat ]] && [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) != Z* ]]; }

# ---------------------------------------------------------------- process accounting
# The server and its descendants (NSD forks its workers), one pid a line.
process_tree() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2 }
        END {
            for (p in parent) {
                q = p
                while (q != "" && q != root && q > 1) q = parent[q]
                if (q == root) print p
            }
        }'
}
# "utime_ticks stime_ticks sched_ns" summed over the tree (sched_ns over every thread's schedstat).
cpu_sample() {
    local pids pid u=0 s=0 ns=0 fields t stat first
    pids=$(process_tree "$1")
    for pid in $pids; do
        # Field 2 (comm) may hold spaces: cut through the last ')' then count from field 3.
        fields=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        read -r -a stat <<<"$fields"
        u=$((u + stat[11])); s=$((s + stat[12]))
        for t in /proc/"$pid"/task/*/schedstat; do
            read -r first _ 2>/dev/null <"$t" && ns=$((ns + first))
        done
    done
    echo "$u $s $ns"
}

# "busy total" ticks of one CPU from /proc/stat (busy: user nice system irq softirq steal).
cpu_ticks() { awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat; }
# Datagrams dropped by the kernel because a socket's receive buffer was full (whole machine).
rcvbuf_errors() { awk '/^Udp:/ { if (seen) { print $6; exit } seen = 1 }' /proc/net/snmp; }

# ---------------------------------------------------------------- readiness and correctness
# dig one query; prints "STATUS FLAGS ANSWERCOUNT" or nothing.
probe() {
    local port=$1 qname=$2 qtype=$3
    dig @"$ADDR" -p "$port" +time=1 +tries=1 +norecurse +nocookie +noedns "$qname" "$qtype" 2>/dev/null |
        awk '/->>HEADER<<-/ { for (i = 1; i <= NF; i++) if ($i == "status:") { st = $(i + 1); sub(",", "", st) } }
             /^;; flags:/ { split($0, a, ";"); fl = a[3]; sub(/^ *flags: */, "", fl); sub(/ *$/, "", fl)
                            for (i = 1; i <= NF; i++) if ($i == "ANSWER:") { an = $(i + 1); sub(",", "", an) } }
             END { if (st != "") printf "%s %s %s\n", st, (fl == "" ? "-" : fl), an }' | sed 's/ *$//'
}

wait_ready() {
    local name=$1 pid=$2 port=$3 out
    for _ in $(seq 1 100); do # at most ~20 s
        alive "$pid" || return 1
        out=$(probe "$port" www.bench.example A) || true
        [[ -n $out ]] && return 0
        sleep 0.2
    done
    return 1
}

# Real servers must answer authoritatively: www A -> NOERROR aa with answers, nope -> NXDOMAIN aa.
check_answers() {
    local name=$1 port=$2 www nx
    [[ $name == null* ]] && return 0
    www=$(probe "$port" www.bench.example A)
    nx=$(probe "$port" nope.bench.example A)
    [[ $www == NOERROR* && " $www " == *" aa "* && ${www##* } -ge 1 ]] ||
        { echo "$name: www.bench.example A answered '$www', want NOERROR, aa, >=1 answer" >&2; return 1; }
    [[ $nx == NXDOMAIN* && " $nx " == *" aa "* ]] ||
        { echo "$name: nope.bench.example A answered '$nx', want NXDOMAIN, aa" >&2; return 1; }
    [[ $name == meridian-steered ]] || return 0
    # Each service, as dnsperf will ask it (no EDNS): NOERROR aa with an answer (an address or the CNAME).
    local svc got
    for svc in $(service_names "$WORK/$name/meridian.toml"); do
        got=$(probe "$port" "$svc" A)
        [[ $got == NOERROR* && " $got " == *" aa "* && ${got##* } -ge 1 ]] ||
            { echo "$name: service $svc A answered '$got', want NOERROR, aa, >=1 answer" >&2; return 1; }
    done
}

# ---------------------------------------------------------------- expected response codes
# Owner names of the bench zone, lowercase and fully qualified, one a line. A reader for this
# file's plain layout only: $ORIGIN, "@" and relative owners in the first column, indented
# continuation lines.
zone_owners() {
    awk '/^\$ORIGIN/ { origin = tolower($2); next }
         NF == 0 || /^[;$ \t]/ { next }
         { o = tolower($1); if (o == "@") o = origin; else if (o !~ /\.$/) o = o "." origin; print o }' "$ZONE_FILE" |
        sort -u
}
# The [[service]] names of Meridian config $1 (nothing when there is no such file), one a line.
service_names() {
    [[ -f $1 ]] || return 0
    awk '/^\[/ { in_service = ($0 == "[[service]]") }
         in_service && $1 == "name" { gsub(/"/, "", $3); print tolower($3) }' "$1"
}
# Share (%) of the lines of query file $1 that must answer NXDOMAIN: names that are neither owners in
# the zone nor services of config $2. (The bench zone has no wildcard, no delegation and no empty
# non-terminal, so every other name answers NOERROR, with data or NODATA.)
expected_nxdomain_pct() {
    awk 'NR == FNR { exists[$1] = 1; next }
         NF { n++; q = tolower($1); if (q !~ /\.$/) q = q "."; if (!(q in exists)) nx++ }
         END { printf "%.2f", (n ? 100 * nx / n : 0) }' <(zone_owners; service_names "$2") "$1"
}

# ---------------------------------------------------------------- dnsperf
# Runs dnsperf pinned to CLIENT_CPU; output to $1, queries from $2; extra args follow.
run_dnsperf() {
    local out=$1 queries=$2; shift 2
    # -t 1: a reply later than 1 s is lost; dnsperf stops sending at -l and waits out stragglers.
    # No -e, -E or -D: plain queries without an OPT record (no EDNS), as the prepared path's
    # commonest case; callers must not add them.
    # In the background, so that a signal to this script is handled at once (trap kills it).
    timeout $((DURATION + MAX_DURATION + 30)) taskset -c "$CLIENT_CPU" \
        dnsperf -s "$ADDR" -d "$queries" -t 1 "$@" >"$out" 2>&1 &
    local pid=$!
    STARTED_PIDS+=("$pid")
    local rc=0
    wait "$pid" || rc=$?
    forget_pid "$pid"
    return "$rc"
}
# Parse a dnsperf report into shell variables: SENT COMPLETED LOST QPS RTIME RESP_SIZE BAD_RCODES
# LATENCY_US, and the response codes: RCODES (dnsperf's breakdown) and N_NXDOMAIN.
parse_dnsperf() {
    local f=$1
    SENT=$(awk '/Queries sent:/ { print $3 }' "$f")
    COMPLETED=$(awk '/Queries completed:/ { print $3 }' "$f")
    LOST=$(awk '/Queries lost:/ { print $3 }' "$f")
    QPS=$(awk '/Queries per second:/ { printf "%.0f", $4 }' "$f")
    RTIME=$(awk '/Run time \(s\):/ { print $4 }' "$f")
    RESP_SIZE=$(awk '/Average packet size:/ { print $7 }' "$f")
    LATENCY_US=$(awk '/Average Latency \(s\):/ { printf "%.0f", $4 * 1e6 }' "$f")
    # Responses other than NOERROR/NXDOMAIN ("Response codes: NOERROR 9 (90.00%), NXDOMAIN 1 (10.00%)").
    BAD_RCODES=$(awk -F'[:,]' '/Response codes:/ { n = 0; for (i = 2; i <= NF; i++) { split($i, w, " ");
                     if (w[1] != "NOERROR" && w[1] != "NXDOMAIN") n += w[2] } print n }' "$f")
    RCODES=$(sed -n 's/^ *Response codes: *//p' "$f")
    N_NXDOMAIN=$(rcode_count NXDOMAIN)
    [[ -n $SENT && -n $COMPLETED && -n $QPS ]] || { cat "$f" >&2; return 1; }
    LOST=${LOST:-0}; BAD_RCODES=${BAD_RCODES:-0}; RESP_SIZE=${RESP_SIZE:-?}; LATENCY_US=${LATENCY_US:-?}
}
# Count of rcode $1 in $RCODES ("NOERROR 9 (90.00%), NXDOMAIN 1 (10.00%)").
rcode_count() {
    awk -v c="$1" '{ n = split($0, part, ","); for (i = 1; i <= n; i++) { split(part[i], w, " "); if (w[1] == c) s += w[2] } }
                   END { print s + 0 }' <<<"$RCODES"
}
# name run expected-NXDOMAIN-%: fails on any rcode but NOERROR and NXDOMAIN, and on an NXDOMAIN share
# more than a point from the expected one (any NXDOMAIN at all when none is expected).
check_rcodes() {
    local name=$1 run=$2 want=$3 got
    [[ $name == null* ]] && return 0 # the do-nothing responders answer NOERROR to everything
    if ((BAD_RCODES)); then
        echo "$name: $run run got $BAD_RCODES responses other than NOERROR/NXDOMAIN: $RCODES" >&2; return 1
    fi
    got=$(awk -v x="$N_NXDOMAIN" -v c="$COMPLETED" 'BEGIN { printf "%.2f", (c ? 100 * x / c : 0) }')
    if awk -v g="$got" -v w="$want" -v x="$N_NXDOMAIN" 'BEGIN { exit !(w == 0 ? x > 0 : (g - w > 1 || w - g > 1)) }'; then
        echo "$name: $run run answered NXDOMAIN to $got% of queries, want $want%: $RCODES" >&2; return 1
    fi
}
check_loss() { # name run
    local pct
    pct=$(awk -v l="$LOST" -v s="$SENT" 'BEGIN { printf "%.2f", (s ? 100 * l / s : 100) }')
    if awk -v p="$pct" -v m="$MAX_LOSS_PCT" 'BEGIN { exit !(p > m) }'; then
        echo "$1: $2 run lost $LOST of $SENT queries ($pct% > $MAX_LOSS_PCT%)" >&2; return 1
    fi
    LOSS_PCT=$pct
}

# ---------------------------------------------------------------- run
declare -A R  # results, keyed "name,field"
declare -A RC # response codes over every run: "name,NOERROR" -> count; "name,codes" -> the codes seen
RAN=()
FAILED=()

stop_server() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then log "pid $pid ignored SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

# Adds the last parsed run's response codes to the totals over every run of server $1.
tally_rcodes() {
    local code count
    while read -r code count _; do
        [[ -n $code ]] || continue
        RC[$1,$code]=$((${RC[$1,$code]:-0} + count))
        [[ " ${RC[$1,codes]:-} " == *" $code "* ]] || RC[$1,codes]+="$code "
    done < <(tr ',' '\n' <<<"$RCODES")
}

bench_server() {
    local name=$1 port cmd pid before after busy0 total0 busy1 total1 drops0 u0 s0 n0 u1 s1 n1 queries want_nx
    port=$(port_of "$name")
    queries=$(query_file_of "$name")
    if ss -Hlun "sport = :$port" | grep -q .; then
        echo "$name: UDP port $port is already in use" >&2; return 1
    fi
    cmd=$(server_command "$name")
    log "$name: starting on $ADDR:$port (CPU $SERVER_CPU): $cmd"
    # shellcheck disable=SC2086 # cmd is a word list we built
    taskset -c "$SERVER_CPU" $cmd >"$WORK/$name.log" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    if ! wait_ready "$name" "$pid" "$port"; then
        echo "$name: did not answer on $ADDR:$port; its log:" >&2
        tail -20 "$WORK/$name.log" >&2
        stop_server "$pid"; return 1
    fi
    check_answers "$name" "$port" || { stop_server "$pid"; return 1; }
    want_nx=$(expected_nxdomain_pct "$queries" "$WORK/$name/meridian.toml")

    # (a) fixed load; CPU taken from the server's own accounting around the run.
    log "$name: fixed load, $RATE qps for ${DURATION}s"
    read -r busy0 total0 < <(cpu_ticks "$SERVER_CPU")
    drops0=$(rcvbuf_errors)
    before=$(cpu_sample "$pid")
    run_dnsperf "$WORK/$name.fixed.txt" "$queries" -p "$port" -Q "$RATE" -l "$DURATION" -c 1 -T 1 -q "$FIXED_OUTSTANDING" ||
        { cat "$WORK/$name.fixed.txt" >&2; stop_server "$pid"; return 1; }
    after=$(cpu_sample "$pid")
    read -r busy1 total1 < <(cpu_ticks "$SERVER_CPU")
    R[$name,drops]=$(($(rcvbuf_errors) - drops0))
    parse_dnsperf "$WORK/$name.fixed.txt" || { stop_server "$pid"; return 1; }
    tally_rcodes "$name"
    R[$name,rcodes]=$RCODES
    check_loss "$name" fixed || { stop_server "$pid"; return 1; }
    check_rcodes "$name" fixed "$want_nx" || { stop_server "$pid"; return 1; }
    read -r u0 s0 n0 <<<"$before"
    read -r u1 s1 n1 <<<"$after"
    R[$name,qps]=$QPS
    R[$name,lost]=$LOSS_PCT
    R[$name,size]=$RESP_SIZE
    R[$name,lat]=$LATENCY_US
    R[$name,cpu]=$(awk -v n=$((n1 - n0)) 'BEGIN { printf "%.3f", n / 1e9 }')
    R[$name,statcpu]=$(awk -v t=$((u1 - u0 + s1 - s0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
    # What else ran on the server's CPU meanwhile (other processes, interrupts): noise if well above 0.
    R[$name,other]=$(awk -v b=$((busy1 - busy0)) -v t=$((total1 - total0)) -v n=$((n1 - n0)) -v hz="$CLK_TCK" \
        'BEGIN { o = t ? 100 * (b / hz - n / 1e9) / (t / hz) : 0; printf "%.0f", (o < 0 ? 0 : o) }')
    R[$name,qpcpu]=$(awk -v q="$COMPLETED" -v n=$((n1 - n0)) 'BEGIN { printf "%.0f", (n ? q / (n / 1e9) : 0) }')
    R[$name,usr]=$(awk -v t=$((u1 - u0)) -v hz="$CLK_TCK" -v q="$COMPLETED" 'BEGIN { printf "%.2f", 1e6 * t / hz / q }')
    R[$name,sys]=$(awk -v t=$((s1 - s0)) -v hz="$CLK_TCK" -v q="$COMPLETED" 'BEGIN { printf "%.2f", 1e6 * t / hz / q }')
    if ((QPS * 100 < RATE * 95)); then log "$name: warning: achieved $QPS qps, below 95% of the $RATE asked"; fi

    # (b) raw maximum: no rate limit, several client sockets, bounded by -l.
    log "$name: maximum rate for ${MAX_DURATION}s"
    before=$(cpu_sample "$pid")
    run_dnsperf "$WORK/$name.max.txt" "$queries" -p "$port" -l "$MAX_DURATION" -c "$MAX_CLIENTS" -T 1 -q "$MAX_OUTSTANDING" ||
        { cat "$WORK/$name.max.txt" >&2; stop_server "$pid"; return 1; }
    after=$(cpu_sample "$pid")
    parse_dnsperf "$WORK/$name.max.txt" || { stop_server "$pid"; return 1; }
    tally_rcodes "$name"
    R[$name,maxrcodes]=$RCODES
    # Near 100: the server was the bottleneck; well below: dnsperf (one CPU) was.
    R[$name,maxcpu]=$(awk -v n=$(($(cut -d' ' -f3 <<<"$after") - $(cut -d' ' -f3 <<<"$before"))) -v t="$RTIME" \
        'BEGIN { printf "%.0f", (t > 0 ? 100 * n / 1e9 / t : 0) }')
    R[$name,max]=$QPS
    R[$name,maxlost]=$(awk -v l="$LOST" -v s="$SENT" 'BEGIN { printf "%.2f", (s ? 100 * l / s : 100) }')
    # Overload drops some queries by nature (no loss limit here), but whatever is answered must be right.
    check_rcodes "$name" maximum "$want_nx" || { stop_server "$pid"; return 1; }
    if ! alive "$pid"; then
        echo "$name: exited during the runs; its log:" >&2
        tail -20 "$WORK/$name.log" >&2
        stop_server "$pid"; return 1
    fi
    log "$name: stopping pid $pid"
    stop_server "$pid"
}

((ROUNDS >= 1 && ROUNDS <= 20)) || { echo "dnsperf.sh: ROUNDS must be 1..20" >&2; exit 64; }
for round in $(seq 1 "$ROUNDS"); do
    ((ROUNDS > 1)) && log "round $round of $ROUNDS"
    for name in $SERVERS; do
        [[ " ${FAILED[*]} " == *" $name "* ]] && continue
        bin=$(binary_of "$name")
        if ! command -v "$bin" >/dev/null; then
            if is_optional "$name"; then
                ((round == 1)) && log "$name: $bin not installed; skipped"
                continue
            fi
            FAILED+=("$name"); echo "$name: $bin not found" >&2; continue
        fi
        if bench_server "$name"; then
            ((round == 1)) && RAN+=("$name")
            R[$name,all_qpcpu]+="${R[$name,qpcpu]} "
            R[$name,all_usr]+="${R[$name,usr]} "
        else
            FAILED+=("$name")
        fi
    done
done

# ---------------------------------------------------------------- report
echo
echo "UDP on $ADDR, server on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU; fixed load $RATE qps for ${DURATION}s;"
mixes="query mix $(basename "$QUERY_FILE") ($(wc -l <"$QUERY_FILE") lines)"
[[ " ${RAN[*]} " == *" meridian-steered "* ]] &&
    mixes+=", meridian-steered: $(basename "$STEERED_QUERY_FILE") ($(wc -l <"$STEERED_QUERY_FILE") lines)"
echo "max: -c $MAX_CLIENTS -q $MAX_OUTSTANDING for ${MAX_DURATION}s; $mixes; no EDNS"
fmt='%-16s | %7s %6s %6s %6s %8s %6s %6s %6s %6s %6s %6s | %7s %6s %6s\n'
# shellcheck disable=SC2059 # fmt is ours
printf "$fmt" "" "fixed" "lost" "CPU" "stat" "q per" "usr" "sys" "mean" "resp" "other" "rcvbuf" "max" "lost" "server"
# shellcheck disable=SC2059
printf "$fmt" server "qps" "%" "s" "s" "CPU-s" "µs/q" "µs/q" "lat µs" "bytes" "CPU %" "drops" "qps" "%" "CPU %"
for name in "${RAN[@]}"; do
    # shellcheck disable=SC2059
    printf "$fmt" "$name" "${R[$name,qps]}" "${R[$name,lost]}" "${R[$name,cpu]}" "${R[$name,statcpu]}" \
        "${R[$name,qpcpu]}" "${R[$name,usr]}" "${R[$name,sys]}" "${R[$name,lat]}" "${R[$name,size]}" \
        "${R[$name,other]}" "${R[$name,drops]}" "${R[$name,max]}" "${R[$name,maxlost]}" "${R[$name,maxcpu]}"
done
echo
# Failed servers too: their wrong codes are the point.
echo "Response codes of the last round (fixed run; maximum run):"
for name in $SERVERS; do
    [[ -n ${R[$name,rcodes]:-} ]] || continue
    failed=""; [[ " ${FAILED[*]} " == *" $name "* ]] && failed="  (FAILED)"
    printf '%-16s  %s; %s%s\n' "$name" "${R[$name,rcodes]}" "${R[$name,maxrcodes]:-not run}" "$failed"
done
if ((ROUNDS > 1)); then
    echo "Response codes over all $ROUNDS rounds, both runs:"
    for name in $SERVERS; do
        [[ -n ${RC[$name,codes]:-} ]] || continue
        line=""
        for code in ${RC[$name,codes]:-}; do line+="${line:+, }$code ${RC[$name,$code]}"; done
        printf '%-16s  %s\n' "$name" "${line:-none}"
    done
fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ran() { [[ " ${RAN[*]} " == *" $1 "* ]]; }
# Subjects: Meridian on the static mix and on the steered one; Knot's when neither ran.
subjects=()
for name in meridian meridian-steered; do ran "$name" && subjects+=("$name"); done
if ((${#subjects[@]} == 0)) && ran knot; then
    subjects=(knot)
    echo
    echo "Meridian did not run; the ratios below are Knot's."
fi
# Servers a subject is compared with: the others that ran (meridian-steered is a subject only).
others_of() {
    local other
    for other in null null-mmsg meridian knot gdnsd nsd; do
        [[ $other != "$1" ]] && ran "$other" && echo "$other"
    done
}
if ((${#subjects[@]} && ${#RAN[@]} > 1)); then
    for subject in "${subjects[@]}"; do
        echo
        for other in $(others_of "$subject"); do
            printf '%s vs %-9s  queries per server CPU-second: %5sx   user µs/q: %5sx   max qps: %5sx\n' \
                "$subject" "$other" "$(ratio "${R[$subject,qpcpu]}" "${R[$other,qpcpu]}")" \
                "$(ratio "${R[$subject,usr]}" "${R[$other,usr]}")" "$(ratio "${R[$subject,max]}" "${R[$other,max]}")"
        done
    done
fi
if ((ROUNDS > 1)); then
    echo
    echo "Over $ROUNDS rounds (median, and the range):"
    # "median min max" of a list of numbers.
    stats() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %s %s\n", m, v[1], v[NR] }'; }
    for name in "${RAN[@]}"; do
        read -r qm ql qh < <(stats "${R[$name,all_qpcpu]}")
        read -r um ul uh < <(stats "${R[$name,all_usr]}")
        printf '%-16s  q per CPU-s %8.0f (%.0f-%.0f)   usr µs/q %5.2f (%.2f-%.2f)\n' "$name" "$qm" "$ql" "$qh" "$um" "$ul" "$uh"
        R[$name,med_qpcpu]=$qm; R[$name,med_usr]=$um
    done
    for subject in "${subjects[@]}"; do
        [[ $subject == knot ]] && continue
        for other in $(others_of "$subject"); do
            printf '%s vs %-9s  medians: queries per server CPU-second %5sx   user µs/q %5sx\n' "$subject" "$other" \
                "$(ratio "${R[$subject,med_qpcpu]}" "${R[$other,med_qpcpu]}")" \
                "$(ratio "${R[$subject,med_usr]}" "${R[$other,med_usr]}")"
        done
    done
fi
noisy=()
for name in "${RAN[@]}"; do ((${R[$name,other]} > 5)) && noisy+=("$name"); done
echo
echo "q per CPU-s: queries answered in the fixed run per second of server CPU (schedstat); higher is better."
echo "user µs/q ratio: the subject's user time per query over the other's (lower is better); tick-sampled."
echo "other CPU %: what else ran on the server's CPU during the fixed run (noise when above a few %)."
echo "max qps measures the server only where its CPU % is near 100; below that dnsperf's one CPU was the limit."
if ((${#noisy[@]})); then
    echo "warning: other work took over 5% of CPU $SERVER_CPU during the fixed run of: ${noisy[*]};" \
        "rerun on an idle machine."
fi
if ((${#FAILED[@]})); then
    echo
    echo "FAILED: ${FAILED[*]} (KEEP_WORK=1 keeps the configs and logs)"
    exit 1
fi
