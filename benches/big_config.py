#!/usr/bin/env python3
"""Write a large configuration for scale measurements: N services, 2N pools, 10N endpoints.

Usage: benches/big_config.py DIR [N]   (default N = 10000: 10,000 services, 20,000 pools,
100,000 endpoints, about 7 MB of TOML). Writes DIR/meridian.toml and DIR/big.example.zone.
No health checks (nothing is probed); every name is in the one zone. Then, e.g.:
    /usr/bin/time -v target/release/meridian check --config DIR/meridian.toml
"""
import os
import sys

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "big.example.zone"), "w") as z:
    z.write("$ORIGIN big.example.\n$TTL 300\n")
    z.write("@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\n")
with open(os.path.join(out, "meridian.toml"), "w") as f:
    f.write('[dns]\nlisten = ["127.0.0.1:0"]\n\n[[zone]]\norigin = "big.example."\n'
            'file = "big.example.zone"\n\n')
    for name, lat, lon, cont in [("eu", 50.1, 8.7, "EU"), ("us", 39.0, -77.5, "NA"),
                                 ("ap", 1.35, 103.8, "AS")]:
        f.write(f'[[region]]\nname = "{name}"\nlocation = [{lat}, {lon}]\n'
                f'continents = ["{cont}"]\n\n')
    regions = ["eu", "us", "ap"]
    for p in range(2 * n):
        f.write(f'[[pool]]\nname = "pool-{p}"\nregion = "{regions[p % 3]}"\n')
        for e in range(5):
            i = p * 5 + e
            f.write(f'[[pool.endpoint]]\nname = "ep-{i}"\n'
                    f'address = "10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"\n')
        f.write("\n")
    for s in range(n):
        f.write(f'[[service]]\nname = "s{s}.big.example."\npolicy = "geo"\n'
                f'pools = ["pool-{2 * s}", "pool-{2 * s + 1}"]\n\n')
