//! Client positions (`geo::position`) from MaxMind's City test database, the shipped iptoasn
//! country database and databases written here; the country centroid table against known
//! centroids, its file and the shipped database.

use std::collections::BTreeSet;

use meridian::geo::centroids::{Centroid, countries, country_centroid};
use meridian::geo::continent::continent_of;
use meridian::geo::position::DEFAULT_RECORD_RADIUS_KM;
use meridian::geo::{GeoDb, Position, PositionSource as Src, position};
use mmdb_writer::{Value, Writer};

use crate::{city, data, ip, net};

/// Great-circle distance in km (haversine, mean Earth radius).
fn km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = (p2 - p1, (lon2 - lon1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}
fn centroid(code: &str) -> Centroid {
    country_centroid(code.as_bytes().try_into().unwrap()).unwrap_or_else(|| panic!("{code}"))
}
fn from_centroid(code: &str) -> Position {
    let c = centroid(code);
    Position {
        lat: c.lat,
        lon: c.lon,
        radius_km: c.radius_km,
        source: Src::CountryCentroid,
    }
}

/// A City database gives the record's coordinates and accuracy radius.
#[test]
fn city_records_give_their_coordinates_and_accuracy() {
    let db = city();
    let at = |a: &str| position(&db.lookup(ip(a)).unwrap());
    for (addr, lat, lon, radius_km) in [
        ("81.2.69.142", 51.5142, -0.0931, 10.0),
        ("2.125.160.216", 51.75, -1.25, 100.0),
        ("149.101.100.1", 37.751, -97.822, 1000.0), // MaxMind's own country-level placement
        ("::ffff:2.125.160.216", 51.75, -1.25, 100.0),
    ] {
        let want = Position {
            lat,
            lon,
            radius_km,
            source: Src::Record,
        };
        assert_eq!(at(addr), Some(want), "{addr}");
    }
    // A continent only (2.3.3.3), an empty record (214.1.1.1), no record (1.1.1.1): nowhere.
    for addr in ["2.3.3.3", "214.1.1.1", "1.1.1.1"] {
        assert_eq!(at(addr), None, "{addr}");
    }
    // A Country database has no coordinates: the country's centroid.
    let country = GeoDb::open(data("test/GeoIP2-Country-Test.mmdb")).unwrap();
    assert_eq!(
        position(&country.lookup(ip("81.2.69.142")).unwrap()),
        Some(from_centroid("GB"))
    );
}

/// The shipped country database gives countries only: positions are their centroids.
#[test]
fn country_database_gives_centroids() {
    let db = GeoDb::open(data("iptoasn-country.mmdb")).unwrap();
    for (addr, code) in [
        ("193.0.14.129", "NL"),
        ("202.12.27.33", "JP"),
        ("8.8.8.8", "US"),
        ("2001:7fd::1", "NL"),
    ] {
        let p = position(&db.lookup(ip(addr)).unwrap());
        assert_eq!(p, Some(from_centroid(code)), "{addr}");
    }
    assert_eq!(position(&db.lookup(ip("10.0.0.1")).unwrap()), None);
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::map(entries)
}

/// Coordinates without an accuracy radius get the default; a country alone, its centroid; an
/// accuracy radius without coordinates, or a country without a row, nothing of their own.
#[test]
fn written_records_coordinates_radius_and_country() {
    let mut w = Writer::builder("Test-City").build();
    let geoip2 = |location: Value| {
        map([
            ("country", map([("iso_code", "DE".into())])),
            ("location", location),
        ])
    };
    let inserts = [
        // Coordinates, no accuracy radius (DB-IP's shape).
        (
            "192.0.2.0/26",
            geoip2(map([
                ("latitude", 48.14.into()),
                ("longitude", 11.58.into()),
            ])),
        ),
        // Coordinates with a radius written wider than MaxMind's uint16: saturates.
        (
            "192.0.2.64/26",
            geoip2(map([
                ("latitude", 48.14.into()),
                ("longitude", 11.58.into()),
                ("accuracy_radius", 70_000u32.into()),
            ])),
        ),
        // A radius but no coordinates: the radius means nothing alone.
        (
            "192.0.2.128/26",
            geoip2(map([("accuracy_radius", 5u16.into())])),
        ),
        // Coordinates out of range: ignored.
        (
            "192.0.2.192/26",
            geoip2(map([
                ("latitude", 148.0.into()),
                ("longitude", 11.58.into()),
                ("accuracy_radius", 5u16.into()),
            ])),
        ),
        // A country only, flat schema.
        ("198.51.100.0/24", map([("country_code", "AU".into())])),
        // ip-location-db city: coordinates, no radius.
        (
            "203.0.113.0/25",
            map([
                ("country_code", "NL".into()),
                ("latitude", 52.37.into()),
                ("longitude", 4.89.into()),
            ]),
        ),
        // A pseudo-code with no territory.
        ("203.0.113.128/25", map([("country_code", "AP".into())])),
    ];
    for (n, v) in inserts {
        w.insert_value(net(n), v).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.mmdb");
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    let db = GeoDb::open(&path).unwrap();
    let look = |a: &str| db.lookup(ip(a)).unwrap();
    let at = |a: &str| position(&look(a));
    let record = |lat, lon, radius_km| {
        Some(Position {
            lat,
            lon,
            radius_km,
            source: Src::Record,
        })
    };

    assert_eq!(look("192.0.2.1").accuracy_km, None);
    assert_eq!(
        at("192.0.2.1"),
        record(48.14, 11.58, DEFAULT_RECORD_RADIUS_KM)
    );
    assert_eq!(look("192.0.2.65").accuracy_km, Some(u16::MAX));
    assert_eq!(at("192.0.2.65"), record(48.14, 11.58, 65535.0));
    let l = look("192.0.2.129");
    assert_eq!((l.lat_lon, l.accuracy_km), (None, None));
    assert_eq!(at("192.0.2.129"), Some(from_centroid("DE")));
    assert_eq!(look("192.0.2.193").lat_lon, Some((148.0, 11.58)));
    assert_eq!(at("192.0.2.193"), Some(from_centroid("DE")));
    assert_eq!(at("198.51.100.7"), Some(from_centroid("AU")));
    assert_eq!(
        at("203.0.113.9"),
        record(52.37, 4.89, DEFAULT_RECORD_RADIUS_KM)
    );
    assert_eq!(at("203.0.113.200"), None);
    assert_eq!(at("2001:db8::1"), None);
}

/// Known centroids, within a tolerance: the table puts countries where they are.
#[test]
fn centroids_of_known_countries() {
    let near = |code: &str, at: (f64, f64), within_km: f64| {
        let c = centroid(code);
        let d = km((c.lat, c.lon), at);
        assert!(d <= within_km, "{code}: {c:?} is {d:.0} km from {at:?}");
    };
    // France: metropolitan France and Corsica (the overseas departments have rows of their
    // own), near 46 N 2 E.
    near("FR", (46.0, 2.0), 100.0);
    // US: the USGS geographic centre of the 50 states (44°58'N 103°46'W).
    near("US", (44.9672, -103.7716), 50.0);
    // Australia: the Lambert gravitational centre (25°36'36"S 134°21'17"E).
    near("AU", (-25.6101, 134.3548), 50.0);
    near("GB", (54.0, -2.5), 100.0);
    near("DE", (51.16, 10.45), 50.0);
    near("JP", (37.5, 137.5), 150.0); // Honshu, not the Pacific
    near("GF", (3.9, -53.1), 100.0); // French Guiana, carved out of France
    near("SJ", (78.5, 18.0), 200.0); // Svalbard, carved out of Norway
    near("NZ", (-41.5, 172.8), 150.0);
    near("FJ", (-17.7, 178.2), 150.0); // across the antimeridian, not at 0° longitude
    // Within their extent: the contiguous US's box, and Russia's Siberian centre.
    let us = centroid("US");
    assert!(
        (24.5..49.4).contains(&us.lat) && (-125.0..-66.9).contains(&us.lon),
        "{us:?}"
    );
    let ru = centroid("RU");
    assert!(
        (60.0..70.0).contains(&ru.lat) && (85.0..105.0).contains(&ru.lon),
        "{ru:?}"
    );
    // Radii: about sqrt(area / pi) for compact countries, wider for spread-out ones.
    for (code, lo, hi) in [
        ("FR", 400.0, 500.0),   // sqrt(551,000 km² / pi) = 419
        ("DE", 330.0, 400.0),   // sqrt(357,000 km² / pi) = 337
        ("SG", 10.0, 20.0),     // 730 km²
        ("VA", 1.0, 1.0),       // too small to draw: the minimum
        ("US", 2500.0, 3200.0), // Alaska and Hawaii widen it
        ("CL", 1500.0, 2000.0), // 4,300 km long
    ] {
        let r = centroid(code).radius_km;
        assert!((lo..=hi).contains(&r), "{code}: radius {r}");
    }
    assert_eq!(centroid("XK").name, "Kosovo");
    assert_eq!(centroid("CI").name, "Cote d'Ivoire");
}

/// The shipped file, read here independently: every row parses, is in range, names a known
/// country code once, and is what the compiled table holds; the table has nothing else.
#[test]
fn every_centroid_row_parses_and_is_in_range() {
    let text = std::fs::read_to_string(data("country-centroids.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("code,latitude,longitude,radius_km,name"));
    let mut codes = Vec::new();
    for line in lines {
        let cols: Vec<&str> = line.splitn(5, ',').collect();
        let [code, lat, lon, radius, name] = cols[..] else {
            panic!("{line}")
        };
        let num = |s: &str| s.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        let (lat, lon, radius) = (num(lat), num(lon), num(radius));
        assert!((-90.0..=90.0).contains(&lat), "{line}");
        assert!((-180.0..=180.0).contains(&lon), "{line}");
        assert!(radius > 0.0 && radius < 6000.0, "{line}");
        let c2: [u8; 2] = code.as_bytes().try_into().unwrap();
        assert!(continent_of(c2).is_some(), "{line}: unknown code");
        let name = name.trim_matches('"');
        let c = country_centroid(c2).unwrap_or_else(|| panic!("{line}: not in the table"));
        assert_eq!(
            (c.lat, c.lon, c.radius_km, c.name),
            (lat, lon, radius, name),
            "{line}"
        );
        codes.push(c2);
    }
    assert!(
        codes.windows(2).all(|w| w[0] < w[1]),
        "rows sorted by code, each once"
    );
    assert_eq!(codes.len(), countries().count());
    assert!(codes.len() >= 250, "{} rows", codes.len());
}

/// Every code the country → continent table knows has a centroid, but the two pseudo-codes;
/// and so does every code the shipped database uses.
#[test]
fn every_country_has_a_centroid() {
    let no_territory: BTreeSet<[u8; 2]> = [*b"AP", *b"EU"].into();
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            let code = [a, b];
            let want = continent_of(code).is_some() && !no_territory.contains(&code);
            assert_eq!(country_centroid(code).is_some(), want, "{code:?}");
        }
    }
    let reader = maxminddb::Reader::open_readfile(data("iptoasn-country.mmdb")).unwrap();
    let mut missing = BTreeSet::new();
    let mut used = 0;
    for item in reader.networks(Default::default()).unwrap() {
        let cc: String = item
            .unwrap()
            .decode_path(&[maxminddb::PathElement::Key("country_code")])
            .unwrap()
            .unwrap();
        let code: [u8; 2] = cc.as_bytes().try_into().unwrap();
        used += 1;
        if country_centroid(code).is_none() {
            missing.insert(cc);
        }
    }
    assert!(used > 100_000, "{used} networks");
    // AP (Asia/Pacific) is the one code of the shipped file with no territory.
    assert!(
        missing.iter().all(|c| c == "AP" || c == "EU"),
        "{missing:?}"
    );
}
