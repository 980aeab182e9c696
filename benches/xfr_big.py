#!/usr/bin/env python3
"""Zone transfers at scale: a 100,000-record zone from Meridian to a Knot secondary, on loopback.

The script generates the zone (nothing large is kept in the repository), starts a release-built
Meridian serving it and a small second zone, with `[zone.transfer] allow` and `notify` for a Knot
secondary that it then starts (knotd in the foreground, its own config, rundir and storage in a
temp dir; never the Debian service). It measures:

  - Meridian: time from start until it answers, RSS (VmRSS, VmHWM from /proc/PID/status) before
    the transfer, the highest VmRSS sampled during it (every 20 ms) and VmHWM, its peak RSS, at
    the end of the run;
  - the AXFR, ROUNDS times (each to a fresh Knot with empty storage): time from Knot's start
    until Knot serves the big zone's serial, and what Knot's log says of it (its own duration,
    messages, bytes);
  - query service on the small zone during the transfers: a paced UDP client (a separate
    process, one query in flight, bounded in count and time) asks small.test. names from each
    Knot's start until it serves the zone; the same client for as long in all, with no transfer
    running (after the rounds, the last Knot idle), is the reference. Answered count, median and
    p99 latency of each;
  - an IXFR: one record of the big zone edited, its serial raised, `POST /reload` on the admin
    API; how long the reload took and the time from the request until Knot serves the new
    serial, and that Knot's log says IXFR.

Usage (as root if knot must be installed; builds target/release/meridian unless SKIP_BUILD=1):
    python3 benches/xfr_big.py
Environment (defaults in brackets):
    RECORDS [100000]   records in the big zone, SOA included
    RATE [2000]        queries per second the client aims at (one in flight at a time)
    ROUNDS [5]         AXFRs, each to a fresh Knot (empty storage); the last one stays for the IXFR
    BASE_PORT [5481]   Meridian DNS = BASE, its admin API = BASE+1, Knot = BASE+2 (127.0.0.1)
    MAX_WAIT [120]     seconds any one wait may last (Meridian's load, the AXFR, the IXFR)
    NO_INSTALL [0]     1: never call apt-get; fail if knotd is missing
    SKIP_BUILD [0]     1: use target/release/meridian as it is
    PIN [0]            1: Meridian alone on the first CPU, Knot and the client on the second (when
                       there are two); 0: wherever the scheduler puts them
    KEEP_WORK [0]      1: keep the temp dir (configs, zone, logs) and print its path
Every process it starts is stopped by its PID when it exits (SIGTERM, then SIGKILL after 3 s).
"""
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ADDR = "127.0.0.1"  # loopback only, by design
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY_RC_D = "/usr/sbin/policy-rc.d"
BIG = "big.test."
SMALL = "small.test."
SMALL_NAMES = [("www.small.test.", 1), ("api.small.test.", 28), ("small.test.", 15)]  # A, AAAA, MX


def env_int(name, default, low, high):
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or not low <= int(raw) <= high:
        sys.exit(f"xfr_big.py: {name} must be an integer in {low}..{high}, got {raw!r}")
    return int(raw)


def log(msg):
    print(f"== {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ DNS on the wire (stdlib only)
def dns_query(qid, name, qtype):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".") if p)
    return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", qtype, 1)


def skip_name(msg, i):
    while True:
        n = msg[i]
        if n >= 0xC0:
            return i + 2
        if n == 0:
            return i + 1
        i += n + 1


def soa_serial(msg):
    """The serial of the SOA in the answer section of a NOERROR response, else None."""
    if len(msg) < 12 or msg[3] & 0x0F != 0:
        return None
    qd, an = struct.unpack(">HH", msg[4:8])
    i = 12
    for _ in range(qd):
        i = skip_name(msg, i) + 4
    for _ in range(an):
        i = skip_name(msg, i)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[i:i + 10])
        i += 10
        if rtype == 6:
            j = skip_name(msg, skip_name(msg, i))
            return struct.unpack(">I", msg[j:j + 4])[0]
        i += rdlen
    return None


def ask(port, name, qtype, timeout=0.2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        qid = random.randrange(65536)
        s.sendto(dns_query(qid, name, qtype), (ADDR, port))
        while True:
            data, _ = s.recvfrom(65535)
            if data[:2] == struct.pack(">H", qid):
                return data
    except OSError:
        return None
    finally:
        s.close()


def serial_at(port, zone):
    msg = ask(port, zone, 6)
    return soa_serial(msg) if msg else None


# ------------------------------------------------------------------ the query client (own process)
def client_main(argv):
    """Paced queries to the small zone: one in flight, at most `count`, for at most `seconds`,
    until `stop_file` exists; `stop_file`.ready is written just before the first query. Writes
    {"sent", "answered", "errors", "seconds", "lat_us": [...]} to `out`."""
    port, rate, seconds, stop_file, out = int(argv[0]), int(argv[1]), float(argv[2]), argv[3], argv[4]
    count = int(rate * seconds)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((ADDR, port))
    queries = [dns_query(0, n, t) for n, t in SMALL_NAMES]
    open(stop_file + ".ready", "w").close()
    sent = answered = errors = 0
    lat = []
    start = time.monotonic()
    for n in range(count):
        due = start + n / rate
        now = time.monotonic()
        if now - start > seconds or (n % 64 == 0 and os.path.exists(stop_file)):
            break
        if due > now:
            time.sleep(due - now)
        qid = n & 0xFFFF
        q = queries[n % len(queries)]
        t0 = time.monotonic()
        s.send(struct.pack(">H", qid) + q[2:])
        sent += 1
        deadline = t0 + 1.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break  # lost
            s.settimeout(left)
            try:
                data = s.recv(4096)
            except OSError:
                break
            if data[:2] == struct.pack(">H", qid):
                if data[3] & 0x0F == 0:
                    answered += 1
                    lat.append((time.monotonic() - t0) * 1e6)
                else:
                    errors += 1
                break
    with open(out, "w") as f:
        json.dump({"sent": sent, "answered": answered, "errors": errors,
                   "seconds": time.monotonic() - start, "lat_us": lat}, f)


# ------------------------------------------------------------------ processes we start
STARTED = []  # Popen objects: the only processes this script ever signals
MERIDIAN_CPU = PEER_CPU = None  # PIN=1: Meridian alone on one CPU, Knot and the client on another


def start(cmd, log_path, cpu=None, **kw):
    """Start `cmd` (on CPU `cpu` alone, if given), its output into `log_path`."""
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    proc = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=pin, **kw)
    STARTED.append(proc)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in STARTED:
        STARTED.remove(proc)


def stop_all():
    for proc in list(STARTED):
        stop(proc)


def wait_until(what, limit, cond, step=0.01):
    t0 = time.monotonic()
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() - t0 > limit:
            raise RuntimeError(f"timed out after {limit} s waiting for {what}")
        time.sleep(step)


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def mb(kb):
    return f"{kb / 1024:.0f} MB"


# ------------------------------------------------------------------ setup
def install_knot(work):
    created = False
    if not os.path.exists(POLICY_RC_D):
        with open(POLICY_RC_D, "w") as f:
            f.write("#!/bin/sh\n# written by meridian benches/xfr_big.py; removed when it is done\nexit 101\n")
        os.chmod(POLICY_RC_D, 0o755)
        created = True
    elif subprocess.run([POLICY_RC_D, "x", "start"], capture_output=True).returncode != 101:
        sys.exit(f"xfr_big.py: {POLICY_RC_D} exists and does not forbid starting services; refusing to install")
    try:
        log("apt-get install knot (its service not started)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        with open(os.path.join(work, "apt.log"), "w") as out:
            cmd = ["apt-get", "install", "-y", "--no-install-recommends", "knot"]
            if subprocess.run(cmd, stdout=out, stderr=out, env=env).returncode != 0:
                subprocess.run(["apt-get", "update"], stdout=out, stderr=out, env=env)
                subprocess.run(cmd, stdout=out, stderr=out, env=env, check=True)
    finally:
        if created:
            os.remove(POLICY_RC_D)


def knotd_path():
    return shutil.which("knotd") or next((p for p in ["/usr/sbin/knotd"] if os.path.exists(p)), None)


def write_big_zone(path, records, serial, edited):
    """`records` records, SOA included: a header of 6, then one record per owner h0, h1, ...
    cycling A, A, A, AAAA, AAAA, TXT, MX, CNAME. `edited` changes h0's address."""
    with open(path, "w") as z:
        z.write(f"$ORIGIN {BIG}\n$TTL 3600\n")
        z.write(f"@ SOA ns1 hostmaster {serial} 3600 600 1209600 300\n@ NS ns1\n@ NS ns2\n"
                "ns1 A 192.0.2.1\nns2 A 192.0.2.2\nmx A 192.0.2.25\n")
        for i in range(records - 6):
            kind = i % 8
            if kind < 3:
                a = (10 << 24) + i + (1 if edited and i == 0 else 0)
                rdata = f"A {a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}"
            elif kind < 5:
                rdata = f"AAAA 2001:db8::{i >> 16:x}:{i & 0xFFFF:x}"
            elif kind == 5:
                rdata = f'TXT "record {i} of the big zone"'
            elif kind == 6:
                rdata = f"MX {i % 50} mx"
            else:
                rdata = f"CNAME h{i - 1}"
            z.write(f"h{i} {rdata}\n")


SMALL_ZONE = f"""$ORIGIN {SMALL}
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
@ MX 10 mail
ns1 A 192.0.2.53
mail A 192.0.2.25
www A 192.0.2.80
api AAAA 2001:db8::80
"""


def latency_line(r):
    lat = sorted(r["lat_us"])
    if not lat:
        return r["sent"], r["answered"], "-", "-", "-"
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return r["sent"], r["answered"], f"{statistics.median(lat):.0f}", f"{p99:.0f}", f"{lat[-1]:.0f}"


def main():
    records = env_int("RECORDS", 100000, 10, 5_000_000)
    rate = env_int("RATE", 2000, 1, 50000)
    base = env_int("BASE_PORT", 5481, 1024, 65000)
    max_wait = env_int("MAX_WAIT", 120, 5, 1800)
    rounds = env_int("ROUNDS", 5, 1, 50)
    global MERIDIAN_CPU, PEER_CPU
    if os.environ.get("PIN", "0") == "1" and len(os.sched_getaffinity(0)) >= 2:
        MERIDIAN_CPU, PEER_CPU = sorted(os.sched_getaffinity(0))[:2]
    no_install = os.environ.get("NO_INSTALL", "0") == "1"
    skip_build = os.environ.get("SKIP_BUILD", "0") == "1"
    keep = os.environ.get("KEEP_WORK", "0") == "1"
    dns_port, admin_port, knot_port = base, base + 1, base + 2
    for port in (dns_port, admin_port, knot_port):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            if kind == socket.SOCK_STREAM:  # as servers do: a connection in TIME_WAIT is no user
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ADDR, port))
            except OSError:
                sys.exit(f"xfr_big.py: {ADDR}:{port} is in use (set BASE_PORT)")
            finally:
                s.close()

    work = tempfile.mkdtemp(prefix="meridian-xfr-big.")
    try:
        run(work, records, rate, rounds, dns_port, admin_port, knot_port, max_wait, no_install, skip_build)
    finally:
        stop_all()
        if keep:
            print(f"xfr_big.py: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(work, records, rate, rounds, dns_port, admin_port, knot_port, max_wait, no_install, skip_build):
    knotd = knotd_path()
    if knotd is None:
        if no_install:
            sys.exit("xfr_big.py: knotd is not installed (NO_INSTALL=1)")
        install_knot(work)
        knotd = knotd_path() or sys.exit("xfr_big.py: knotd still missing after the install")
    meridian = os.path.join(REPO, "target/release/meridian")
    if not skip_build:
        log("cargo build --release")
        with open(os.path.join(work, "build.log"), "w") as out:
            if subprocess.run(["cargo", "build", "--release"], cwd=REPO, stdout=out, stderr=out).returncode:
                sys.exit(f"xfr_big.py: cargo build --release failed (see {out.name}; KEEP_WORK=1 keeps it)")
    if not os.path.exists(meridian):
        sys.exit(f"xfr_big.py: {meridian} is missing")

    big_path = os.path.join(work, "big.zone")
    t0 = time.monotonic()
    write_big_zone(big_path, records, 1, edited=False)
    log(f"generated {records} records ({os.path.getsize(big_path) / 1e6:.1f} MB) in {time.monotonic() - t0:.1f} s")
    with open(os.path.join(work, "small.zone"), "w") as f:
        f.write(SMALL_ZONE)
    with open(os.path.join(work, "meridian.toml"), "w") as f:
        f.write(f"""[dns]
listen = ["{ADDR}:{dns_port}"]
workers = 1

[admin]
listen = "{ADDR}:{admin_port}"

[[zone]]
origin = "{BIG}"
file = "big.zone"
[zone.transfer]
allow = ["{ADDR}/32"]
notify = ["{ADDR}:{knot_port}"]

[[zone]]
origin = "{SMALL}"
file = "small.zone"
""")

    # Meridian: load, then RSS before any transfer.
    log(f"starting Meridian on {ADDR}:{dns_port}")
    t0 = time.monotonic()
    mer = start([meridian, "serve", "--config", os.path.join(work, "meridian.toml")],
                os.path.join(work, "meridian.log"), cpu=MERIDIAN_CPU, cwd=work)

    def meridian_up():
        if mer.poll() is not None:
            raise RuntimeError(f"Meridian exited ({mer.returncode}); see {work}/meridian.log")
        return serial_at(dns_port, BIG) == 1 and serial_at(dns_port, SMALL) == 1
    wait_until("Meridian to answer", max_wait, meridian_up, 0.05)
    load_s = time.monotonic() - t0
    time.sleep(0.5)
    rss_before, hwm_before = status_kb(mer.pid, "VmRSS"), status_kb(mer.pid, "VmHWM")

    def knot_conf(kdir):
        os.makedirs(os.path.join(kdir, "storage"))
        path = os.path.join(kdir, "knot.conf")
        with open(path, "w") as f:
            f.write(f"""server:
    rundir: "{kdir}"
    listen: {ADDR}@{knot_port}
log:
  - target: stderr
    any: info
database:
    storage: "{kdir}/storage"
remote:
  - id: meridian
    address: {ADDR}@{dns_port}
acl:
  - id: notify_from_meridian
    address: {ADDR}
    action: notify
template:
  - id: default
    storage: "{kdir}/storage"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
zone:
  - domain: {BIG}
    master: meridian
    acl: notify_from_meridian
""")
        return path

    def client(seconds, name):
        stop_file = os.path.join(work, f"{name}.stop")
        out = os.path.join(work, f"{name}.json")
        proc = start([sys.executable, os.path.abspath(__file__), "--client", str(dns_port), str(rate),
                      str(seconds), stop_file, out], os.path.join(work, f"{name}.log"), cpu=PEER_CPU)
        wait_until(f"the {name} client to start", 10, lambda: os.path.exists(stop_file + ".ready"))
        return proc, stop_file, out

    def finish(proc, stop_file, out):
        open(stop_file, "w").close()
        try:
            proc.wait(max_wait)
        finally:
            stop(proc)
        with open(out) as f:
            return json.load(f)

    peak_rss = 0

    def knot_has(knot, log_path, serial):
        nonlocal peak_rss
        peak_rss = max(peak_rss, status_kb(mer.pid, "VmRSS"))
        if knot.poll() is not None:
            raise RuntimeError(f"knotd exited ({knot.returncode}); see {log_path}")
        return serial_at(knot_port, BIG) == serial

    # The AXFR, `rounds` times: a fresh Knot (empty storage) from its start until it serves
    # serial 1, the client asking the small zone meanwhile. The last Knot stays for the IXFR.
    axfr_s, axfr_lines, during = [], [], []
    for n in range(1, rounds + 1):
        kdir = os.path.join(work, f"knot{n}")
        conf = knot_conf(kdir)
        log_path = os.path.join(kdir, "knot.log")
        busy = client(max_wait, f"during{n}")
        log(f"round {n}: starting Knot on {ADDR}:{knot_port}; the AXFR begins")
        t0 = time.monotonic()
        knot = start([knotd, "-c", conf], log_path, cpu=PEER_CPU)
        wait_until("Knot to serve serial 1", max_wait, lambda: knot_has(knot, log_path, 1), 0.02)
        axfr_s.append(time.monotonic() - t0)
        during.append(finish(*busy))
        with open(log_path) as f:
            axfr_lines += [l for l in f.read().splitlines() if "AXFR, incoming" in l and "finished" in l]
        if n < rounds:
            stop(knot)
    axfr_peak_rss, hwm_after = peak_rss, status_kb(mer.pid, "VmHWM")

    # The reference: the same client, as long as all the rounds' windows, no transfer running.
    window = sum(r["seconds"] for r in during)
    time.sleep(0.5)
    log(f"reference run: {window:.1f} s of queries with no transfer")
    idle = client(window, "idle")
    idle[0].wait(window + max_wait)
    reference = finish(*idle)

    # The IXFR: Knot refreshes a zone at most every refresh-min-interval (2 s by default), NOTIFY
    # or not; let the bootstrap be older than that, as a secondary's is.
    time.sleep(max(0.0, 2.1 - reference["seconds"] - 0.5))
    write_big_zone(big_path, records, 2, edited=True)
    log("edited one record, serial 2; POST /reload")
    t0 = time.monotonic()
    req = urllib.request.Request(f"http://{ADDR}:{admin_port}/reload", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=max_wait) as resp:
        body = resp.read().decode()
    reload_s = time.monotonic() - t0
    wait_until("Knot to serve serial 2", max_wait, lambda: knot_has(knot, log_path, 2), 0.01)
    ixfr_s = time.monotonic() - t0
    time.sleep(0.2)
    hwm_end, rss_end = status_kb(mer.pid, "VmHWM"), status_kb(mer.pid, "VmRSS")
    with open(log_path) as f:
        knot_log = f.read()
    ixfr_line = next((l for l in knot_log.splitlines() if "IXFR, incoming" in l and "finished" in l), "")
    if not ixfr_line:
        raise RuntimeError(f"Knot's log shows no finished IXFR:\n{knot_log[-3000:]}")
    version = subprocess.run([knotd, "--version"], capture_output=True, text=True).stdout.strip()

    pooled = {k: sum((r[k] for r in during), type(during[0][k])()) for k in ("sent", "answered", "errors", "lat_us")}
    pooled["seconds"] = window
    print()
    print(f"{records:,} records ({os.path.getsize(big_path) / 1e6:.1f} MB zone file) from Meridian "
          f"(release, 1 UDP worker) to {version}, on {ADDR}; " +
          (f"Meridian on CPU {MERIDIAN_CPU}, Knot and the client on CPU {PEER_CPU}" if MERIDIAN_CPU is not None
           else f"{os.cpu_count()} CPUs, not pinned"))
    rows = [
        ("Meridian start until it answers (loads the zone)", f"{load_s:.2f} s"),
        ("Meridian RSS before the transfer (VmRSS / VmHWM)", f"{mb(rss_before)} / {mb(hwm_before)}"),
        (f"Knot start until it serves serial 1 (AXFR), median of {rounds}",
         f"{statistics.median(axfr_s):.2f} s ({min(axfr_s):.2f}-{max(axfr_s):.2f})"),
        ("Meridian VmRSS during the AXFRs (max, sampled every 20 ms)", mb(axfr_peak_rss)),
        ("Meridian VmHWM after the AXFRs", mb(hwm_after)),
        ("POST /reload of the edited zone (one record, serial 2)", f"{reload_s:.2f} s"),
        ("POST /reload sent until Knot serves serial 2 (IXFR)", f"{ixfr_s:.2f} s"),
        ("  of which after the reload's answer", f"{ixfr_s - reload_s:.3f} s"),
        ("Meridian VmRSS / VmHWM (peak RSS of the run) at the end", f"{mb(rss_end)} / {mb(hwm_end)}"),
    ]
    for what, value in rows:
        print(f"  {what:<60} {value:>16}")
    print()
    print(f"  queries to {SMALL} (UDP, one in flight, paced at {rate}/s; latency as the client sees it)")
    print(f"  {'':<22} {'seconds':>8} {'sent':>7} {'answered':>9} {'median µs':>10} {'p99 µs':>8} {'max µs':>8}")
    for name, r in (("no transfer", reference), ("during the AXFRs", pooled)):
        sent, answered, med, p99, mx = latency_line(r)
        print(f"  {name:<22} {r['seconds']:>8.2f} {sent:>7} {answered:>9} {med:>10} {p99:>8} {mx:>8}")
    print()
    knot_says = [line.split("] ", 1)[-1].strip() for line in axfr_lines[-1:] + [ixfr_line]]
    print(f"  Knot's log of the last AXFR ({len(axfr_lines)} logged) and of the IXFR:")
    for line in knot_says:
        print(f"    {line}")
    print(f"  reload answer: {' '.join(body.split())}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
        sys.exit(0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except RuntimeError as e:
        sys.exit(f"xfr_big.py: {e}")
