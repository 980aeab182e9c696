#!/usr/bin/env python3
"""Reloads of a changed million-record zone while another zone is queried: queries lost and
memory (resident and peak) per reload.

Meridian serves two zones from generated files (nothing large is kept in the repository): the
big one of RECORDS A records (benches/scale.py's generator) and a small one. A client thread
asks the small zone one question after another (each waits for its answer, at most 2 s; a
wrong or missing answer counts as lost) while the big zone's file is rewritten with one more
record and `POST /reload` is sent, ROUNDS times. After each reload: the new record must be
answered; then VmRSS and VmHWM of the server. The reload builds the changed zone aside while
the old one answers, so the peak is about the old zone, the new one and the reader's working
set; BOUND (a multiple of the resident size after start) is the stated limit, checked.

Usage (builds target/release/meridian unless SKIP_BUILD=1 or MERIDIAN is set):
    python3 benches/zone_reload.py
Environment:
    RECORDS [1000000]  A records in the big zone
    ROUNDS [3]         reloads, each of a changed file
    BOUND [3.0]        VmHWM must stay below BOUND x VmRSS after start (exit 1 otherwise)
    BASE_PORT [5531]   DNS port; the admin API on BASE_PORT + 1
    MAX_WAIT [300]     seconds allowed for start and each reload
"""
import importlib.util
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("scale", os.path.join(HERE, "scale.py"))
scale = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scale)

ADDR = scale.ADDR  # loopback only, by design


def main():
    records = scale.env_int("RECORDS", 1_000_000, 1, 20_000_000)
    rounds = scale.env_int("ROUNDS", 3, 1, 20)
    base = scale.env_int("BASE_PORT", 5531, 1024, 65000)
    max_wait = scale.env_int("MAX_WAIT", 300, 5, 3600)
    bound = float(os.environ.get("BOUND", "3.0"))
    meridian = os.environ.get("MERIDIAN") or os.path.join(scale.REPO, "target/release/meridian")
    if not os.environ.get("MERIDIAN") and os.environ.get("SKIP_BUILD", "0") != "1":
        scale.log("cargo build --release")
        if scale.subprocess.run(["cargo", "build", "--release"], cwd=scale.REPO).returncode:
            sys.exit("zone_reload.py: cargo build --release failed")
    for port in (base, base + 1):
        scale.free_port(port)
    work = tempfile.mkdtemp(prefix="meridian-zone-reload.")
    big = os.path.join(work, "big.zone")
    last, want = scale.write_zone(big, records)
    with open(os.path.join(work, "small.zone"), "w") as f:
        f.write("$ORIGIN small.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n"
                "@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n")
    config = os.path.join(work, "meridian.toml")
    with open(config, "w") as f:
        f.write(f'[dns]\nlisten = ["{ADDR}:{base}"]\nworkers = 1\n\n[admin]\nlisten = "{ADDR}:{base + 1}"\n\n'
                f'[[zone]]\norigin = "{scale.ORIGIN}"\nfile = "big.zone"\n\n'
                '[[zone]]\norigin = "small.test."\nfile = "small.zone"\n')
    proc = scale.start([meridian, "serve", "--config", config], os.path.join(work, "serve.log"), cwd=work)
    try:
        scale.wait_until(f"Meridian to answer {last}", max_wait,
                         lambda: scale.ask_a(base, last) == want, 0.05)
        time.sleep(0.5)
        rss0, hwm0 = scale.status_kb(proc.pid, "VmRSS"), scale.status_kb(proc.pid, "VmHWM")

        stop = threading.Event()
        tally = {"sent": 0, "lost": 0}

        def client():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2.0)
            qid = 0
            deadline = time.monotonic() + max_wait * (rounds + 1)
            while not stop.is_set() and time.monotonic() < deadline:
                qid = (qid + 1) & 0xFFFF
                s.sendto(scale.dns_query(qid, "www.small.test.", 1), (ADDR, base))
                tally["sent"] += 1
                try:
                    while True:
                        data, _ = s.recvfrom(4096)
                        if data[:2] == struct.pack(">H", qid):
                            break
                    if scale.answer_a(data) != "192.0.2.80":
                        tally["lost"] += 1
                except OSError:
                    tally["lost"] += 1
                time.sleep(0.001)
            s.close()

        t = threading.Thread(target=client)
        t.start()
        rows = []
        with open(big) as f:
            original = f.read()
        for n in range(1, rounds + 1):
            with open(big, "w") as f:
                f.write(original + f"v{n} A 192.0.2.{n}\n")
            t0 = time.monotonic()
            req = urllib.request.Request(f"http://{ADDR}:{base + 1}/reload", method="POST", data=b"")
            with urllib.request.urlopen(req, timeout=max_wait) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"POST /reload answered {resp.status}")
            wall = time.monotonic() - t0
            if scale.ask_a(base, f"v{n}.{scale.ORIGIN}", timeout=2.0) != f"192.0.2.{n}":
                raise RuntimeError(f"v{n}.{scale.ORIGIN} not answered after reload {n}")
            time.sleep(0.5)
            rows.append((n, wall, scale.status_kb(proc.pid, "VmRSS"), scale.status_kb(proc.pid, "VmHWM")))
        stop.set()
        t.join()
    finally:
        scale.stop(proc)
    print()
    print(f"Reloads of a changed {records:,}-record zone ({os.path.getsize(big) / 1e6:.1f} MB) "
          f"while www.small.test. is asked, {os.cpu_count()} CPUs")
    print(f"  after start: VmRSS {scale.mb(rss0)}, VmHWM {scale.mb(hwm0)}")
    print(f"  {'reload':<7} {'wall':>8} {'VmRSS':>10} {'VmHWM':>10}")
    for n, wall, rss, hwm in rows:
        print(f"  {n:<7} {wall:>6.2f} s {scale.mb(rss):>10} {scale.mb(hwm):>10}")
    peak = max(r[3] for r in rows)
    print(f"  queries to small.test.: {tally['sent']:,} sent, {tally['lost']} lost")
    print(f"  peak / resident after start: {peak / rss0:.2f} (bound {bound})")
    failed = tally["lost"] > 0 or peak > bound * rss0
    if failed:
        print("zone_reload.py: FAILED (queries lost or the memory bound passed)")
    scale.shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
