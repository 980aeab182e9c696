//! Geo against real `.mmdb` files: MaxMind's test databases and the shipped iptoasn database in
//! geo-data/, and databases written here with `mmdb-writer`.
//!
//! Here: decoding and prefix lengths of each shipped database, the continent table against real
//! data, and the no-allocation budget of `RegionMap::locate` and `geo::position`. In tests/geo/:
//! region precedence and ECS scopes (`regions`), reload by rename and refusal of bad files
//! (`reload`), databases of every schema written by the test (`written`), client positions and
//! the country centroid table (`positions`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use meridian::geo::continent::continent_of;
use meridian::geo::{GeoDb, GeoSource, Location, PositionSource, position};

#[path = "geo/positions.rs"]
mod positions;
#[path = "geo/regions.rs"]
mod regions;
#[path = "geo/reload.rs"]
mod reload;
#[path = "geo/written.rs"]
mod written;
// Allocations counted per thread, so tests running in parallel do not disturb each other.
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("geo-data")
        .join(name)
}
fn city() -> GeoDb {
    GeoDb::open(data("test/GeoIP2-City-Test.mmdb")).unwrap()
}
fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}
fn codes(l: &Location) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        l.continent_str(),
        l.country_str(),
        l.subdivision.as_ref().map(|s| s.as_str()),
    )
}

#[test]
fn city_test_database() {
    let db = city();
    assert_eq!(db.database_type(), "GeoIP2-City");
    assert_eq!(db.ip_version(), 6);
    // (address, continent, country, subdivision, lat/lon, accuracy radius, prefix length), as
    // in MaxMind's source-data/GeoIP2-City-Test.json.
    let cases = [
        (
            "81.2.69.142",
            "EU",
            "GB",
            Some("ENG"),
            (51.5142, -0.0931),
            10,
            31,
        ),
        (
            "2.125.160.216",
            "EU",
            "GB",
            Some("ENG"),
            (51.75, -1.25),
            100,
            29,
        ),
        (
            "89.160.20.112",
            "EU",
            "SE",
            Some("E"),
            (58.4167, 15.6167),
            76,
            28,
        ),
        (
            "216.160.83.56",
            "NA",
            "US",
            Some("WA"),
            (47.2513, -122.3149),
            22,
            29,
        ),
        (
            "214.78.120.5",
            "NA",
            "US",
            Some("CA"),
            (32.7405, -117.0935),
            100,
            22,
        ),
        (
            "149.101.100.1",
            "NA",
            "US",
            None,
            (37.751, -97.822),
            1000,
            28,
        ),
        ("67.43.156.1", "AS", "BT", None, (27.5, 90.5), 534, 24),
        (
            "2001:218::1",
            "AS",
            "JP",
            None,
            (35.68536, 139.75309),
            100,
            32,
        ),
        (
            "2001:480:10::1",
            "NA",
            "US",
            Some("CA"),
            (32.7203, -117.1552),
            20,
            48,
        ),
    ];
    for (addr, continent, country, sub, lat_lon, accuracy, len) in cases {
        let l = db.lookup(ip(addr)).unwrap();
        assert_eq!(codes(&l), (Some(continent), Some(country), sub), "{addr}");
        assert_eq!(l.lat_lon, Some(lat_lon), "{addr}");
        assert_eq!(l.accuracy_km, Some(accuracy), "{addr}");
        assert_eq!(l.prefix_len, len, "{addr}");
        assert!(l.is_known());
    }
    // IPv4-mapped: same record, prefix in IPv6 terms.
    let mapped = db.lookup(ip("::ffff:81.2.69.142")).unwrap();
    assert_eq!((mapped.country_str(), mapped.prefix_len), (Some("GB"), 127));
    // A continent without a country, and a record with neither.
    assert_eq!(
        codes(&db.lookup(ip("2.3.3.3")).unwrap()),
        (Some("EU"), None, None)
    );
    let empty = db.lookup(ip("214.1.1.1")).unwrap();
    assert!(!empty.is_known() && empty.prefix_len == 24);
    // Not in the database: nothing known, prefix of the empty network around it.
    let none = db.lookup(ip("1.1.1.1")).unwrap();
    assert_eq!(
        none,
        Location {
            prefix_len: 8,
            ..Location::default()
        }
    );
}

#[test]
fn country_test_databases() {
    for (file, kind) in [
        ("test/GeoLite2-Country-Test.mmdb", "GeoLite2-Country"),
        ("test/GeoIP2-Country-Test.mmdb", "GeoIP2-Country"),
    ] {
        let db = meridian::geo::open(data(file)).unwrap();
        assert_eq!(db.database_type(), kind);
        for (addr, continent, country, len) in [
            ("81.2.69.142", "EU", "GB", 31),
            ("89.160.20.112", "EU", "SE", 28),
            ("216.160.83.56", "NA", "US", 29),
            ("2001:218::1", "AS", "JP", 32),
        ] {
            let l = db.lookup(ip(addr)).unwrap();
            assert_eq!(
                codes(&l),
                (Some(continent), Some(country), None),
                "{file} {addr}"
            );
            assert_eq!(
                (l.lat_lon, l.accuracy_km, l.prefix_len),
                (None, None, len),
                "{file} {addr}"
            );
        }
    }
    let lite_city = GeoDb::open(data("test/GeoLite2-City-Test.mmdb")).unwrap();
    assert_eq!(
        lite_city
            .lookup(ip("216.160.83.56"))
            .unwrap()
            .subdivision
            .unwrap()
            .as_str(),
        "WA"
    );
}

/// Our country → continent table agrees with every record of MaxMind's City test data.
#[test]
fn continent_table_matches_maxmind_test_data() {
    let reader = maxminddb::Reader::open_readfile(data("test/GeoIP2-City-Test.mmdb")).unwrap();
    let mut checked = 0;
    for item in reader.networks(Default::default()).unwrap() {
        let rec: maxminddb::geoip2::City = item.unwrap().decode().unwrap().unwrap();
        if let (Some(c), Some(k)) = (rec.country.iso_code, rec.continent.code) {
            let got = continent_of(c.as_bytes().try_into().unwrap());
            assert_eq!(
                got.as_ref().map(|k| std::str::from_utf8(k).unwrap()),
                Some(k),
                "{c}"
            );
            checked += 1;
        }
    }
    assert!(checked > 200, "checked {checked}");
}

/// The shipped default database: well-known public addresses (lookups in the file only).
#[test]
fn iptoasn_default_database() {
    let db = GeoDb::open(data("iptoasn-country.mmdb")).unwrap();
    assert_eq!(db.ip_version(), 6);
    for (addr, country, continent) in [
        ("8.8.8.8", "US", "NA"),
        ("1.1.1.1", "US", "NA"),
        ("9.9.9.9", "US", "NA"),
        ("193.0.14.129", "NL", "EU"), // k.root-servers.net, RIPE NCC
        ("202.12.27.33", "JP", "AS"), // m.root-servers.net, WIDE
        ("2001:4860:4860::8888", "US", "NA"),
        ("2606:4700:4700::1111", "US", "NA"),
        ("2001:7fd::1", "NL", "EU"),
    ] {
        let l = db.lookup(ip(addr)).unwrap();
        assert_eq!(codes(&l), (Some(continent), Some(country), None), "{addr}");
        assert!(
            l.lat_lon.is_none() && l.accuracy_km.is_none() && (8..=64).contains(&l.prefix_len),
            "{addr}: {l:?}"
        );
    }
    // The file has no IPv4-mapped alias; the lookup still finds the IPv4 record.
    let (v4, mapped) = (
        db.lookup(ip("8.8.8.8")).unwrap(),
        db.lookup(ip("::ffff:8.8.8.8")).unwrap(),
    );
    assert_eq!(
        (mapped.country, mapped.prefix_len),
        (v4.country, v4.prefix_len + 96)
    );
    assert!(!db.lookup(ip("10.0.0.1")).unwrap().is_known());
    // Every country code in the file has a continent.
    let reader = maxminddb::Reader::open_readfile(data("iptoasn-country.mmdb")).unwrap();
    let mut codes = std::collections::BTreeSet::new();
    for item in reader.networks(Default::default()).unwrap() {
        let cc: Option<String> = item
            .unwrap()
            .decode_path(&[maxminddb::PathElement::Key("country_code")])
            .unwrap();
        codes.insert(cc.unwrap());
    }
    let missing: Vec<_> = codes
        .iter()
        .filter(|c| continent_of(c.as_bytes().try_into().unwrap()).is_none())
        .collect();
    assert!(
        codes.len() > 200 && missing.is_empty(),
        "{} codes, no continent: {missing:?}",
        codes.len()
    );
}

/// The hot-path budget: after warm-up, placing clients and positioning them allocates nothing.
#[test]
fn locate_does_not_allocate() {
    let (map, city, default_db) = (
        regions::world(),
        city(),
        GeoDb::open(data("iptoasn-country.mmdb")).unwrap(),
    );
    let source = GeoSource::open(data("test/GeoIP2-City-Test.mmdb")).unwrap();
    let addrs: Vec<IpAddr> = [
        "81.2.69.142",
        "2.125.160.216",
        "214.78.120.5",
        "216.160.83.60",
        "89.160.20.1",
        "1.1.1.1",
        "2001:218::1",
        "2001:480:10::1",
        "::ffff:81.2.69.144",
        "8.8.8.8",
        "2001:4860:4860::8888",
    ]
    .iter()
    .map(|a| ip(a))
    .collect();
    let mut sink = 0usize;
    // What position() is given: each database's location of each address, looked up before
    // counting, and once more as a country-only location (so that both sources are taken).
    let locations: Vec<Location> = addrs
        .iter()
        .flat_map(|a| [city.lookup(*a).unwrap(), default_db.lookup(*a).unwrap()])
        .flat_map(|l| [l, Location { lat_lon: None, ..l }])
        .collect();
    let mut positioned = [0usize; 2]; // from records, from country centroids
    let mut run = || {
        for a in &addrs {
            sink += map.locate(*a, Some(&city)).region;
            sink += map.locate(*a, Some(&default_db)).scope_prefix as usize;
            sink += map.locate(*a, Some(&**source.load())).region;
        }
        for l in &locations {
            if let Some(p) = position(std::hint::black_box(l)) {
                positioned[usize::from(p.source == PositionSource::CountryCentroid)] += 1;
                sink += p.radius_km as usize;
            }
        }
    };
    run();
    let before = counting_alloc::thread_allocations();
    drop(std::hint::black_box(Box::new(0u64)));
    assert_eq!(
        counting_alloc::thread_allocations(),
        before + 1,
        "the counter counts"
    );
    let before = counting_alloc::thread_allocations();
    for _ in 0..1000 {
        run();
    }
    let allocs = counting_alloc::thread_allocations() - before;
    assert_eq!(
        allocs, 0,
        "allocations in 33000 placements and 44000 positions"
    );
    assert!(sink > 0);
    // Both sources were taken, in each of the 1001 runs: the City database has coordinates for
    // 7 of the addresses (each also positioned without them, by its country), the iptoasn one
    // a country for 10 (twice each).
    assert_eq!(positioned, [1001 * 7, 1001 * (7 + 20)]);
}
