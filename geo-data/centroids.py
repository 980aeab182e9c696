#!/usr/bin/env python3
"""Generate geo-data/country-centroids.csv: where each country is, as a point and a radius.

Usage: geo-data/centroids.py [--packages DIR] [--out FILE]

Sources (npm registry packages, fetched with `npm pack` into a temporary folder unless --packages
names a folder holding both tarballs already):
- world-atlas (ISC; its data is Natural Earth's 1:10m Admin 0 countries, public domain):
  `countries-10m.json`, TopoJSON country polygons whose ids are ISO 3166-1 numeric codes;
- i18n-iso-countries (MIT): `codes.json` (numeric -> alpha-2) and `langs/en.json` (names).

Per ISO 3166-1 alpha-2 code, from the polygons of its territory (edges taken as straight in
longitude and latitude, as the data is drawn; holes subtracted; polygons cut at the antimeridian
and the ring around the South Pole handled), on a sphere of radius 6371.0088 km:
- A, the area, and V, the integral of the unit position vector over the area (both exact for
  such polygons, by Green's theorem in the longitude-latitude plane, integrated along each edge);
- latitude, longitude: the direction of V, the area-weighted centroid on the sphere;
- radius_km: 2 R sqrt(1 - |V| / A). That is the radius of the spherical cap whose area is as
  concentrated around its centre as the territory is around its centroid (the mean squared
  chord distance from the centroid is 2 (1 - |V| / A) R^2 for any region): for a compact country
  it is about sqrt(A / pi); for a long or scattered one (Chile, Kiribati, the US with Alaska and
  Hawaii) it is larger, as the uncertainty of a client's position in it is.

Natural Earth draws some territories that ISO codes separately inside their sovereign's feature
(French Guiana in France, Svalbard in Norway, ...): SPLIT carves them out by bounding box. Some
features have no ISO id (Kosovo, Northern Cyprus, ...): NAMED assigns them. Features left
unassigned (disputed or uninhabited reefs and claims) are listed on stderr. A territory whose
every polygon the data's quantization collapsed into a line (Vatican City) gets the middle of its
points and a radius of half their extent, at least MIN_RADIUS_KM.

Finally every country code used by the shipped geo-data/iptoasn-country.mmdb must have a row,
except the registry pseudo-codes in NO_TERRITORY; otherwise the script fails and writes nothing.
Needs python3 (standard library only), and npm and tar unless --packages is given.
"""

import argparse
import csv
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile

WORLD_ATLAS = ("world-atlas", "2.0.2", "ISC")
ISO_CODES = ("i18n-iso-countries", "7.14.0", "MIT")

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
# Longest stretch of an edge integrated by one Simpson panel, in radians (0.25 degrees).
PANEL = math.radians(0.25)
# Radius given to a territory too small for the data to draw (see collapsed_position).
MIN_RADIUS_KM = 1.0

# Natural Earth features without an ISO numeric id, by name: the ISO territory they belong to.
NAMED = {
    "Kosovo": "XK",
    "N. Cyprus": "CY",
    "Cyprus U.N. Buffer Zone": "CY",
    "Akrotiri": "CY",
    "Dhekelia": "CY",
    "Somaliland": "SO",
    "Baikonur": "KZ",
}

# Territories with their own ISO code drawn inside another feature: (feature's ISO numeric id or
# name, territory code, (south, north, west, east) in degrees). A polygon of the feature whose
# centroid lies in the box belongs to the territory.
SPLIT = [
    ("250", "GF", (2.0, 6.0, -55.0, -51.0)),  # French Guiana
    ("250", "MQ", (14.3, 15.0, -61.3, -60.7)),  # Martinique
    ("250", "GP", (15.8, 16.6, -61.9, -60.9)),  # Guadeloupe
    ("250", "RE", (-21.5, -20.8, 55.0, 56.0)),  # Réunion
    ("250", "YT", (-13.1, -12.5, 45.0, 45.4)),  # Mayotte
    ("528", "BQ", (12.0, 12.4, -68.5, -68.1)),  # Bonaire
    ("528", "BQ", (17.4, 17.7, -63.3, -62.9)),  # Sint Eustatius, Saba
    ("578", "SJ", (74.0, 81.0, 10.0, 35.0)),  # Svalbard
    ("578", "SJ", (70.7, 71.3, -9.2, -7.8)),  # Jan Mayen
    ("578", "BV", (-54.6, -54.3, 3.2, 3.6)),  # Bouvet Island
    ("554", "TK", (-9.5, -8.4, -172.7, -171.0)),  # Tokelau
    ("Indian Ocean Ter.", "CX", (-10.7, -10.3, 105.4, 105.8)),  # Christmas Island
    ("Indian Ocean Ter.", "CC", (-12.3, -11.8, 96.7, 97.0)),  # Cocos (Keeling) Islands
]

# Codes some databases give to address space without a country: no territory, so no row.
NO_TERRITORY = {"AP", "EU"}


def npm_pack(pkg, version, into):
    """Fetches a package's tarball from the npm registry into a folder; returns its path."""
    subprocess.run(["npm", "pack", "--silent", f"{pkg}@{version}"], cwd=into, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(into, f"{pkg}-{version}.tgz")


def member(tgz, name):
    """The bytes of one file of an npm tarball."""
    with tarfile.open(tgz) as t:
        return t.extractfile(f"package/{name}").read()


def check_package(tgz, pkg, version, license_):
    """Exits unless the tarball is the pinned package, at the pinned version, under the licence
    the README documents."""
    meta = json.loads(member(tgz, "package.json"))
    if (meta["name"], meta["version"], meta["license"]) != (pkg, version, license_):
        sys.exit(f"centroids.py: {tgz}: expected {pkg} {version} ({license_}), found "
                 f"{meta['name']} {meta['version']} ({meta['license']})")


def decode_arcs(topo):
    """The arcs of a quantized TopoJSON topology as lists of (lon, lat) in radians."""
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((math.radians(x * sx + tx), math.radians(y * sy + ty)))
        arcs.append(points)
    return arcs


def polygons(geometry, arcs):
    """Each polygon of a geometry as a list of rings (exterior first), each a list of points."""
    if geometry["type"] == "Polygon":
        polys = [geometry["arcs"]]
    elif geometry["type"] == "MultiPolygon":
        polys = geometry["arcs"]
    else:
        return
    for poly in polys:
        rings = []
        for ring in poly:
            points = []
            for i in ring:
                arc = arcs[i] if i >= 0 else arcs[~i][::-1]
                points.extend(arc if not points else arc[1:])
            rings.append(points)
        yield rings


# Antiderivatives in latitude of f(lon, lat) cos(lat) for f = 1, x, y, z (unit sphere).
def g_terms(lon, lat):
    p = lat / 2 + math.sin(2 * lat) / 4
    return (math.sin(lat), math.cos(lon) * p, math.sin(lon) * p, math.sin(lat) ** 2 / 2)


def ring_moments(points):
    """(A, Vx, Vy, Vz) of the region a ring encloses in the longitude-latitude plane, signed by
    the ring's orientation: -(closed integral of G d lon), G from g_terms, edge by edge.

    Longitudes are unwrapped along the ring (an edge never spans more than 180 degrees of
    longitude, so a jump from +180 to -180 is a crossing of the antimeridian). A ring that comes
    back shifted by 360 degrees goes around a pole: it is closed along the pole of its hemisphere.
    """
    pts = list(points)
    if pts[0] != pts[-1]:
        pts.append(pts[0])
    unwrapped = [pts[0]]
    for lon, lat in pts[1:]:
        prev = unwrapped[-1][0]
        d = (lon - prev + math.pi) % (2 * math.pi) - math.pi
        unwrapped.append((prev + d, lat))
    winding = unwrapped[-1][0] - unwrapped[0][0]
    if abs(winding) > math.pi:
        pole = math.copysign(math.pi / 2, sum(lat for _, lat in unwrapped))
        unwrapped += [(unwrapped[-1][0], pole), (unwrapped[0][0], pole), unwrapped[0]]
    total = [0.0, 0.0, 0.0, 0.0]
    for (l1, p1), (l2, p2) in zip(unwrapped, unwrapped[1:]):
        dl = l2 - l1
        if dl == 0:
            continue
        panels = max(1, math.ceil(max(abs(dl), abs(p2 - p1)) / PANEL))
        for k in range(panels):
            t0, t1 = k / panels, (k + 1) / panels
            tm = (t0 + t1) / 2
            g0, gm, g1 = (g_terms(l1 + t * dl, p1 + t * (p2 - p1)) for t in (t0, tm, t1))
            w = dl / panels / 6
            for i in range(4):
                total[i] -= w * (g0[i] + 4 * gm[i] + g1[i])
    return total


def polygon_moments(rings):
    """(A, Vx, Vy, Vz) of a polygon: exterior minus holes, positive whatever the orientation."""
    parts = [ring_moments(r) for r in rings]
    sign = 1.0 if parts[0][0] >= 0 else -1.0
    return [sign * sum(p[i] for p in parts) for i in range(4)]


def direction(m):
    a, x, y, z = m
    n = math.sqrt(x * x + y * y + z * z)
    return math.degrees(math.asin(max(-1.0, min(1.0, z / n)))), math.degrees(math.atan2(y, x)), n


def in_box(lat, lon, box):
    south, north, west, east = box
    return south <= lat <= north and west <= lon <= east


def territories(topo, num_to_alpha2):
    """Moments per alpha-2 code, (lat, lon, radius_km) per code whose every polygon collapsed,
    and the names of the features left unassigned."""
    arcs = decode_arcs(topo)
    moments, collapsed, unassigned = {}, {}, []
    for g in topo["objects"]["countries"]["geometries"]:
        fid, name = g.get("id"), g["properties"]["name"]
        code = num_to_alpha2.get(fid) if fid else NAMED.get(name)
        splits = [(c, box) for key, c, box in SPLIT if key in (fid, name)]
        if code is None and not splits:
            unassigned.append(name)
            continue
        for rings in polygons(g, arcs):
            m = polygon_moments(rings)
            if m[0] <= 0 or not any(m[1:]):
                # An islet that quantization collapsed into a line: kept aside in case it is
                # all the feature has.
                if code:
                    collapsed.setdefault(code, []).extend(rings[0])
                continue
            lat, lon, _ = direction(m)
            owner = next((c for c, box in splits if in_box(lat, lon, box)), code)
            if owner is None:
                unassigned.append(f"{name} (polygon at {lat:.2f}, {lon:.2f})")
                continue
            acc = moments.setdefault(owner, [0.0, 0.0, 0.0, 0.0])
            for i in range(4):
                acc[i] += m[i]
    points = {code: collapsed_position(p) for code, p in collapsed.items() if code not in moments}
    return moments, points, unassigned


def collapsed_position(points):
    """(lat, lon, radius_km) of a feature all of whose polygons collapsed into lines (Vatican):
    the middle of its points' extent, and half its diagonal, at least MIN_RADIUS_KM."""
    lats = [lat for _, lat in points]
    lons = [lon for lon, _ in points]
    lat = (min(lats) + max(lats)) / 2
    lon = (min(lons) + max(lons)) / 2
    half_diag = math.hypot(max(lats) - min(lats), (max(lons) - min(lons)) * math.cos(lat)) / 2
    radius = max(MIN_RADIUS_KM, half_diag * EARTH_RADIUS_KM)
    return math.degrees(lat), math.degrees(lon), radius


def english_name(entry):
    """The first English name without a comma (for plain CSV), else the first."""
    names = entry if isinstance(entry, list) else [entry]
    return next((n for n in names if "," not in n), names[0])


def rows(moments, points, names):
    out = []
    for code in sorted(set(moments) | set(points)):
        if code in moments:
            lat, lon, n = direction(moments[code])
            area = moments[code][0]
            radius = 2 * EARTH_RADIUS_KM * math.sqrt(max(0.0, 1 - n / area))
        else:
            lat, lon, radius = points[code]
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
            sys.exit(f"centroids.py: {code}: out of range: {lat} {lon} {radius}")
        if '"' in names[code] or "\n" in names[code]:
            sys.exit(f"centroids.py: {code}: name {names[code]!r} does not fit the CSV")
        out.append((code, f"{lat:.4f}", f"{lon:.4f}", f"{radius:.1f}", names[code]))
    return out


def self_check():
    """The integrals on shapes with known answers, so a broken refresh fails before it writes."""
    r = math.radians

    def box(w, s, e, n):  # counter-clockwise, longitudes as given (e < w crosses 180)
        return [(r(w), r(s)), (r(e), r(s)), (r(e), r(n)), (r(w), r(n)), (r(w), r(s))]

    def close(a, b, what):
        if abs(a - b) > 1e-9 * max(1.0, abs(b)):
            sys.exit(f"centroids.py: self-check failed: {what}: {a} != {b}")

    cell = box(10, 40, 12, 43)
    a = polygon_moments([cell])[0]
    close(a, r(2) * (math.sin(r(43)) - math.sin(r(40))), "area of a 2 x 3 degree cell")
    close(polygon_moments([cell[::-1]])[0], a, "area of the same cell drawn clockwise")
    lat, lon, _ = direction(polygon_moments([cell]))
    close(lon, 11.0, "centroid longitude of the cell")
    # Closed forms: V_z = dlon (sin^2 n - sin^2 s) / 2; the horizontal part of V is
    # (cos-weighted) [p(n) - p(s)] * 2 sin(dlon / 2), p as in g_terms.
    p = [(x / 2 + math.sin(2 * x) / 4) for x in (r(40), r(43))]
    vz = r(2) * (math.sin(r(43)) ** 2 - math.sin(r(40)) ** 2) / 2
    vh = (p[1] - p[0]) * 2 * math.sin(r(1))
    close(lat, math.degrees(math.atan2(vz, vh)), "centroid latitude of the cell")
    across = polygon_moments([box(179, 40, -179, 43)])
    close(across[0], a, "area of a cell across the antimeridian")
    close(direction(across)[1], 180.0, "centroid longitude across the antimeridian")
    with_hole = polygon_moments([cell, box(10.5, 41, 11.5, 42)[::-1]])[0]
    close(with_hole, a - r(1) * (math.sin(r(42)) - math.sin(r(41))), "a cell with a hole")
    # The cap south of 80 S, drawn as Natural Earth draws Antarctica: a ring along the parallel
    # from -180 to 180, once round the pole.
    ring = [(r(lon), r(-80)) for lon in range(-180, 181, 5)]
    m = polygon_moments([ring])
    close(m[0], 2 * math.pi * (1 - math.cos(r(10))), "area of the polar cap")
    close(direction(m)[0], -90.0, "centroid of the polar cap")
    radius = 2 * math.sqrt(1 - direction(m)[2] / m[0])
    close(radius, 2 * math.sin(r(5)), "radius of the polar cap (the chord of its 10 degrees)")


def database_codes(path):
    """Every country code in a flat `country_code` MaxMind DB, read with check-mmdb.py."""
    spec = importlib.util.spec_from_file_location(
        "check_mmdb", os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-mmdb.py"))
    mmdb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mmdb)
    buf, _, tree = mmdb.open_db(path)
    end = buf.rfind(mmdb.MARKER)
    data = mmdb.Decoder(buf, tree + 16)
    off, codes = tree + 16, set()
    while off < end:
        rec, off = data.decode(off)
        if isinstance(rec, dict) and rec.get("country_code"):
            codes.add(rec["country_code"])
    return codes


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", help="folder with the two npm tarballs (default: npm pack)")
    ap.add_argument("--out", default=os.path.join(here, "country-centroids.csv"))
    args = ap.parse_args()
    self_check()

    with tempfile.TemporaryDirectory() as tmp:
        tarballs = []
        for pkg, version, license_ in (WORLD_ATLAS, ISO_CODES):
            if args.packages:
                tgz = os.path.join(args.packages, f"{pkg}-{version}.tgz")
            else:
                tgz = npm_pack(pkg, version, tmp)
            check_package(tgz, pkg, version, license_)
            tarballs.append(tgz)
        topo = json.loads(member(tarballs[0], "countries-10m.json"))
        codes = json.loads(member(tarballs[1], "codes.json"))
        english = json.loads(member(tarballs[1], "langs/en.json"))["countries"]

    num_to_alpha2 = {numeric: alpha2 for alpha2, _, numeric, *_ in codes}
    names = {code: english_name(n) for code, n in english.items()}
    moments, points, unassigned = territories(topo, num_to_alpha2)
    covered = set(moments) | set(points)
    nameless = sorted(covered - set(names))
    if nameless:
        sys.exit(f"centroids.py: no English name for {nameless}")
    table = rows(moments, points, names)

    used = database_codes(os.path.join(here, "iptoasn-country.mmdb"))
    missing = sorted(used - covered - NO_TERRITORY)
    if missing:
        sys.exit(f"centroids.py: codes of iptoasn-country.mmdb without a row: {missing}")

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("code", "latitude", "longitude", "radius_km", "name"))
    writer.writerows(table)
    tmp_out = args.out + ".tmp"
    with open(tmp_out, "w", encoding="utf-8") as f:
        f.write(text.getvalue())
    os.replace(tmp_out, args.out)
    print(f"centroids.py: {len(table)} rows -> {args.out}", file=sys.stderr)
    print(f"centroids.py: features left out: {', '.join(sorted(unassigned))}", file=sys.stderr)
    without = sorted(set(names) - covered)
    print(f"centroids.py: ISO codes without a row: {', '.join(without) or 'none'}", file=sys.stderr)
    print(f"centroids.py: database codes without a territory: "
          f"{', '.join(sorted(used & NO_TERRITORY)) or 'none'}", file=sys.stderr)


if __name__ == "__main__":
    main()
