#!/usr/bin/env python3
"""Scale: a million-record zone in Meridian, Knot and NSD; a 10,000-service configuration.

Nothing large is kept in the repository: the script generates, in a temp dir,

  - a zone of RECORDS A records (owners h0, h1, ...) plus a few records of other types (SOA, NS,
    MX, TXT, AAAA, CNAME at the top), its last line `hN A ...`;
  - the configuration of SERVICES services (`benches/big_config.py`: 2 pools each, 5 endpoints
    per pool, no health checks), with `[admin] listen` on loopback added.

Zone part. On the same zone file, one server at a time, each on its own loopback port in the
foreground (never a system service; every file in the temp dir): the release Meridian
(`meridian serve`, 1 UDP worker), Knot (`knotd -c`, `zonefile-load: whole`, journal off, 1 UDP
and 1 TCP worker) and NSD (`nsd -d -c`, `server-count: 1`, in-memory database, `rrl-ratelimit:
0`, username "" so it runs as the current user). For each: the time from its start until it
answers the zone's last record (a bounded loop of UDP queries, every 20 ms), then VmRSS and
VmHWM (peak) from /proc/PID/status of the largest process of the server's tree (NSD runs as a
main process, its xfrd and its server process; the zone is in the last two, which share its
pages), and the PSS of the whole tree (/proc/PID/smaps_rollup: each shared page counted once). Then the
offline checkers on the same file: `meridian check` (on the zone's configuration),
`nsd-checkzone` and `kzonecheck` when installed: wall time and peak RSS (GNU time).
Meridian's ratio to each peer: Meridian / peer (below 1 is better).

Configuration part. `meridian check` of the SERVICES configuration: wall and CPU time, peak RSS;
then a running Meridian with that configuration, `POST /reload` of the same file ROUNDS times:
the reload's wall time (request to answer) and its CPU time, utime+stime of the whole process
from /proc/PID/stat (ticks of 10 ms) read before the request and after its answer, and again
1 s after the answer, with a query to the last service at once (the UDP worker's counters for
the new configuration and a table rebuild the reload set off count as part of it). Median and
range. After each reload, SETTLE s later (the old snapshot is released by then), VmRSS; the
growth per reload is the slope of those readings from the second reload on.

Usage (builds target/release/meridian unless SKIP_BUILD=1 or MERIDIAN is set):
    python3 benches/scale.py
Environment (defaults in brackets):
    RECORDS [1000000]   A records in the zone (a few of other types come on top)
    SERVICES [10000]    services in the configuration (2 pools and 10 endpoints each)
    PARTS [zone config] which parts to run
    SERVERS [meridian knot nsd]  servers of the zone part, in this order
    ROUNDS [3]          reloads of the configuration part
    BASE_PORT [5521]    Meridian DNS = BASE, Knot = BASE+1, NSD = BASE+2, Meridian's admin = BASE+3
    MAX_WAIT [600]      seconds any one wait may last (a load, a check, a reload)
    SETTLE [6]          seconds after each reload's 1 s CPU window before VmRSS is read (the old
                        snapshot is released within 5 s of the swap)
    MERIDIAN []         the meridian binary to measure (no build); default target/release/meridian
    SKIP_BUILD [0]      1: use target/release/meridian as it is
    KEEP_WORK [0]       1: keep the temp dir (zone, configs, logs) and print its path
Every process it starts is stopped by its PID (SIGTERM, then SIGKILL after 5 s); nothing else.
"""
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
ORIGIN = "scale.test."
TICK = os.sysconf("SC_CLK_TCK")


def env_int(name, default, low, high):
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or not low <= int(raw) <= high:
        sys.exit(f"scale.py: {name} must be an integer in {low}..{high}, got {raw!r}")
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


def answer_a(msg):
    """The first A record's address in the answer of a NOERROR response, else None."""
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
        if rtype == 1 and rdlen == 4:
            return socket.inet_ntoa(msg[i:i + 4])
        i += rdlen
    return None


def ask_a(port, name, timeout=0.2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        qid = random.randrange(65536)
        s.sendto(dns_query(qid, name, 1), (ADDR, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data, _ = s.recvfrom(65535)
            if data[:2] == struct.pack(">H", qid):
                return answer_a(data)
        return None
    except OSError:
        return None
    finally:
        s.close()


# ------------------------------------------------------------------ processes we start
STARTED = []  # Popen objects: the only processes this script ever signals


def start(cmd, log_path, **kw):
    proc = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, **kw)
    STARTED.append(proc)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in STARTED:
        STARTED.remove(proc)


def stop_all():
    for proc in list(STARTED):
        stop(proc)


def run_measured(cmd, log_path, limit, **kw):
    """Run `cmd` to its end under GNU time (killed after `limit` s): (exit code, wall s, CPU s,
    peak RSS kB). GNU time's own small process forks it, so the peak is the command's alone (a
    child forked from this script would count the Python interpreter's pages before its exec)."""
    out = log_path + ".time"
    proc = start([GNU_TIME, "-f", "%e %U %S %M", "-o", out] + cmd, log_path, **kw)
    try:
        code = proc.wait(limit)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise RuntimeError(f"{cmd[0]} ran for more than {limit} s")
    STARTED.remove(proc)
    with open(out) as f:
        wall, user, system, peak = f.read().split()[-4:]
    return code, float(wall), float(user) + float(system), int(peak)


def wait_until(what, limit, cond, step=0.02):
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


def children(pid):
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for c in f.read().split():
                out += [int(c)] + children(int(c))
    except OSError:
        pass
    return out


def pss_kb(pid):
    """Proportional set size of `pid` and its descendants: each shared page counted once."""
    total = 0
    for p in [pid] + children(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total


def cpu_s(pid):
    """utime + stime of the whole process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of proc(5)


def mb(kb):
    return f"{kb / 1024:,.0f} MB"


def ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def free_port(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ADDR, port))
        except OSError:
            sys.exit(f"scale.py: {ADDR}:{port} is in use (set BASE_PORT)")
        finally:
            s.close()


# ------------------------------------------------------------------ generators
def write_zone(path, records):
    """`records` A records h0..h{records-1} after a few of other types; returns the last name and
    its address."""
    with open(path, "w") as z:
        z.write(f"$ORIGIN {ORIGIN}\n$TTL 3600\n"
                "@ SOA ns1 hostmaster 1 3600 600 1209600 300\n@ NS ns1\n@ NS ns2\n@ MX 10 mx\n"
                '@ TXT "generated by meridian benches/scale.py"\n'
                "ns1 A 192.0.2.1\nns2 A 192.0.2.2\nns1 AAAA 2001:db8::1\nmx A 192.0.2.25\n"
                "www CNAME h0\n")
        chunk = []
        for i in range(records):
            a = (10 << 24) + i
            chunk.append(f"h{i} A {a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}\n")
            if len(chunk) == 65536:
                z.write("".join(chunk))
                chunk = []
        z.write("".join(chunk))
    a = (10 << 24) + records - 1
    return f"h{records - 1}.{ORIGIN}", f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}"


def meridian_conf(d, port, zone):
    path = os.path.join(d, "meridian.toml")
    with open(path, "w") as f:
        f.write(f'[dns]\nlisten = ["{ADDR}:{port}"]\nworkers = 1\n\n'
                f'[[zone]]\norigin = "{ORIGIN}"\nfile = "{zone}"\n')
    return [MERIDIAN, "serve", "--config", path]


def knot_conf(d, port, zone):
    os.makedirs(os.path.join(d, "storage"))
    path = os.path.join(d, "knot.conf")
    with open(path, "w") as f:
        f.write(f"""server:
    rundir: "{d}"
    listen: {ADDR}@{port}
    udp-workers: 1
    tcp-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{d}/storage"
template:
  - id: default
    storage: "{d}/storage"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: {ORIGIN}
    file: "{zone}"
""")
    return [KNOTD, "-c", path]


def nsd_conf(d, port, zone):
    path = os.path.join(d, "nsd.conf")
    with open(path, "w") as f:
        f.write(f"""server:
    ip-address: {ADDR}@{port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    verbosity: 1
    rrl-ratelimit: 0
    minimal-responses: yes
remote-control:
    control-enable: no
zone:
    name: "{ORIGIN}"
    zonefile: "{zone}"
""")
    return [NSD, "-d", "-c", path]


# ------------------------------------------------------------------ the zone part
def zone_part(work, records, servers, base, max_wait):
    zone = os.path.join(work, "scale.zone")
    t0 = time.monotonic()
    last, want = write_zone(zone, records)
    size = os.path.getsize(zone)
    log(f"generated {records:,} A records ({size / 1e6:.1f} MB) in {time.monotonic() - t0:.1f} s")
    ports = {"meridian": base, "knot": base + 1, "nsd": base + 2}
    confs = {"meridian": meridian_conf, "knot": knot_conf, "nsd": nsd_conf}
    results = {}
    for name in servers:
        d = os.path.join(work, name)
        os.makedirs(d)
        cmd = confs[name](d, ports[name], zone)
        log(f"{name}: start on {ADDR}:{ports[name]}, until {last} A is answered")
        t0 = time.monotonic()
        proc = start(cmd, os.path.join(d, "out.log"), cwd=d)

        def up():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}); see {d}/out.log")
            got = ask_a(ports[name], last)
            if got is not None and got != want:
                raise RuntimeError(f"{name} answered {last} A with {got}, want {want}")
            return got == want
        wait_until(f"{name} to answer {last}", max_wait, up, 0.02)
        load = time.monotonic() - t0
        time.sleep(0.5)
        tree = [proc.pid] + children(proc.pid)
        results[name] = (load, max(status_kb(p, "VmRSS") for p in tree),
                         max(status_kb(p, "VmHWM") for p in tree), pss_kb(proc.pid))
        stop(proc)

    checks = {}
    d = os.path.join(work, "meridian")
    if not os.path.isdir(d):
        os.makedirs(d)
        meridian_conf(d, ports["meridian"], zone)
    checkers = [("meridian check", [MERIDIAN, "check", "--config", os.path.join(d, "meridian.toml")])]
    if NSD_CHECKZONE:
        checkers.append(("nsd-checkzone", [NSD_CHECKZONE, ORIGIN, zone]))
    if KZONECHECK:
        checkers.append(("kzonecheck", [KZONECHECK, "-o", ORIGIN, zone]))
    for what, cmd in checkers:
        log(f"{what} of the zone")
        code, wall, cpu, peak = run_measured(cmd, os.path.join(work, what.replace(" ", "-") + ".log"), max_wait)
        if code != 0:
            raise RuntimeError(f"{what} failed ({code}); see {work}")
        checks[what] = (wall, peak)

    print()
    print(f"Zone: {records:,} A records + 10 others ({size / 1e6:.1f} MB file), one server at a time on "
          f"{ADDR}, {os.cpu_count()} CPUs")
    print(f"  {'server':<10} {'start→answers':>14} {'VmRSS':>10} {'VmHWM':>10} {'PSS (tree)':>11}")
    for name, (load, rss, hwm, pss) in results.items():
        print(f"  {name:<10} {load:>12.2f} s {mb(rss):>10} {mb(hwm):>10} {mb(pss):>11}")
    print("  (VmRSS, VmHWM: the largest process of the server's tree; PSS: the tree's sum)")
    if "meridian" in results:
        m = results["meridian"]
        for peer, p in results.items():
            if peer != "meridian":
                print(f"  Meridian / {peer:<6} {ratio(m[0], p[0]):>12}   {ratio(m[1], p[1]):>10} "
                      f"{ratio(m[2], p[2]):>10} {ratio(m[3], p[3]):>11}")
    print(f"  {'checker':<15} {'wall':>8} {'peak RSS':>10}")
    for what, (wall, peak) in checks.items():
        print(f"  {what:<15} {wall:>6.2f} s {mb(peak):>10}")
    if "meridian check" in checks:
        m = checks["meridian check"]
        for what, c in checks.items():
            if what != "meridian check":
                print(f"  meridian check / {what}: wall {ratio(m[0], c[0])}, peak RSS {ratio(m[1], c[1])}")
    if not KZONECHECK:
        print("  (kzonecheck is not installed: not measured)")
    sys.stdout.flush()


# ------------------------------------------------------------------ the configuration part
def config_part(work, services, rounds, base, max_wait, settle):
    d = os.path.join(work, "config")
    log(f"generating {services:,} services with benches/big_config.py")
    subprocess.run([sys.executable, os.path.join(REPO, "benches/big_config.py"), d, str(services)], check=True)
    path = os.path.join(d, "meridian.toml")
    with open(path) as f:
        text = f.read()
    dns_port, admin_port = base, base + 3
    text = text.replace('listen = ["127.0.0.1:0"]', f'listen = ["{ADDR}:{dns_port}"]\nworkers = 1', 1)
    text += f'\n[admin]\nlisten = "{ADDR}:{admin_port}"\n'
    with open(path, "w") as f:
        f.write(text)
    size = os.path.getsize(path)

    log("meridian check of the configuration")
    code, wall, cpu, peak = run_measured([MERIDIAN, "check", "--config", path], os.path.join(d, "check.log"), max_wait)
    if code != 0:
        raise RuntimeError(f"meridian check failed ({code}); see {d}/check.log")

    log("meridian serve with it, then POST /reload")
    t0 = time.monotonic()
    proc = start([MERIDIAN, "serve", "--config", path], os.path.join(d, "serve.log"), cwd=d)
    last = f"s{services - 1}.big.example."

    def up():
        if proc.poll() is not None:
            raise RuntimeError(f"meridian exited ({proc.returncode}); see {d}/serve.log")
        return ask_a(dns_port, last) is not None
    wait_until(f"Meridian to answer {last}", max_wait, up, 0.05)
    start_s = time.monotonic() - t0
    time.sleep(1.0)
    rss_before = status_kb(proc.pid, "VmRSS")
    walls, cpus, cpus_after, rss = [], [], [], []
    for n in range(rounds):
        c0 = cpu_s(proc.pid)
        t0 = time.monotonic()
        req = urllib.request.Request(f"http://{ADDR}:{admin_port}/reload", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=max_wait) as resp:
            body = resp.read().decode()
            if resp.status != 200:
                raise RuntimeError(f"POST /reload answered {resp.status}: {body}")
        walls.append(time.monotonic() - t0)
        cpus.append(cpu_s(proc.pid) - c0)
        # A query at once: the UDP worker lays its counters out for the new configuration at
        # its first query after the swap, part of what the reload costs.
        if ask_a(dns_port, last, timeout=max(1.0, max_wait / 10)) is None:
            raise RuntimeError(f"{last} not answered after reload {n + 1}")
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0 - walls[-1])))
        cpus_after.append(cpu_s(proc.pid) - c0)
        # Resident memory once the reload has settled: the old snapshot is released (at most 5 s
        # after the swap, on a thread of its own), so wait for that before reading it.
        time.sleep(settle)
        rss.append(status_kb(proc.pid, "VmRSS"))
        log(f"reload {n + 1}: wall {walls[-1]:.2f} s, CPU {cpus[-1]:.2f} s "
            f"({cpus_after[-1]:.2f} s until 1 s after), VmRSS {mb(rss[-1])}")
    rss_after, hwm = rss[-1], status_kb(proc.pid, "VmHWM")
    stop(proc)
    # Growth per reload: the least-squares slope of VmRSS over the reloads (the first reload
    # may take the heap to its working size: the slope from the second on says whether memory
    # keeps growing).
    def slope(v):
        if len(v) < 2:
            return 0.0
        xs = range(len(v))
        mx, my = statistics.mean(xs), statistics.mean(v)
        return sum((x - mx) * (y - my) for x, y in zip(xs, v)) / sum((x - mx) ** 2 for x in xs)

    def med(v):
        return f"{statistics.median(v):.2f} s ({min(v):.2f}-{max(v):.2f})"
    print()
    print(f"Configuration: {services:,} services, {2 * services:,} pools, {10 * services:,} endpoints "
          f"({size / 1e6:.1f} MB TOML)")
    rows = [
        ("meridian check: wall / CPU", f"{wall:.2f} s / {cpu:.2f} s"),
        ("meridian check: peak RSS", mb(peak)),
        ("meridian serve: start until it answers the last service", f"{start_s:.2f} s"),
        (f"POST /reload wall, median of {rounds}", med(walls)),
        (f"POST /reload CPU (utime+stime), median of {rounds}", med(cpus)),
        ("  same, until 1 s after the answer", med(cpus_after)),
        ("VmRSS before / after the reloads; VmHWM", f"{mb(rss_before)} / {mb(rss_after)}; {mb(hwm)}"),
        (f"VmRSS after each reload ({settle:.0f} s after)", " ".join(f"{k / 1024:.0f}" for k in rss) + " MB"),
        ("VmRSS growth per reload (slope, reloads 2..)",
         f"{slope(rss[1:]) / 1024:+.1f} MB" if len(rss) > 2 else "- (ROUNDS < 3)"),
    ]
    for what, value in rows:
        print(f"  {what:<58} {value:>24}")
    sys.stdout.flush()


def which(name):
    return shutil.which(name) or next((p for p in [f"/usr/sbin/{name}", f"/usr/bin/{name}"]
                                       if os.path.exists(p)), None)


MERIDIAN = KNOTD = NSD = NSD_CHECKZONE = KZONECHECK = GNU_TIME = None


def main():
    global MERIDIAN, KNOTD, NSD, NSD_CHECKZONE, KZONECHECK, GNU_TIME
    records = env_int("RECORDS", 1_000_000, 1, 20_000_000)
    services = env_int("SERVICES", 10_000, 1, 200_000)
    rounds = env_int("ROUNDS", 3, 1, 50)
    base = env_int("BASE_PORT", 5521, 1024, 65000)
    max_wait = env_int("MAX_WAIT", 600, 5, 3600)
    settle = env_int("SETTLE", 6, 0, 60)
    parts = os.environ.get("PARTS", "zone config").split()
    servers = os.environ.get("SERVERS", "meridian knot nsd").split()
    if any(p not in ("zone", "config") for p in parts) or any(
            s not in ("meridian", "knot", "nsd") for s in servers):
        sys.exit("scale.py: PARTS are zone and config, SERVERS meridian, knot and nsd")
    keep = os.environ.get("KEEP_WORK", "0") == "1"
    GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
    if GNU_TIME is None:
        sys.exit("scale.py: GNU time (/usr/bin/time) is needed (apt-get install time)")
    KNOTD, NSD = which("knotd"), which("nsd")
    NSD_CHECKZONE, KZONECHECK = which("nsd-checkzone"), which("kzonecheck")
    for s, path in (("knot", KNOTD), ("nsd", NSD)):
        if "zone" in parts and s in servers and path is None:
            sys.exit(f"scale.py: {s} is not installed (apt-get install {s}; or SERVERS without it)")
    MERIDIAN = os.environ.get("MERIDIAN") or os.path.join(REPO, "target/release/meridian")
    if not os.environ.get("MERIDIAN") and os.environ.get("SKIP_BUILD", "0") != "1":
        log("cargo build --release")
        if subprocess.run(["cargo", "build", "--release"], cwd=REPO).returncode:
            sys.exit("scale.py: cargo build --release failed")
    if not os.access(MERIDIAN, os.X_OK):
        sys.exit(f"scale.py: {MERIDIAN} is missing")
    for port in range(base, base + 4):
        free_port(port)

    work = tempfile.mkdtemp(prefix="meridian-scale.")
    try:
        if "zone" in parts:
            zone_part(work, records, servers, base, max_wait)
        if "config" in parts:
            config_part(work, services, rounds, base, max_wait, settle)
    finally:
        stop_all()
        if keep:
            print(f"scale.py: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except RuntimeError as e:
        sys.exit(f"scale.py: {e}")
