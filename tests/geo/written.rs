//! Databases written by the test with `mmdb-writer`: every schema, IPv4-only and IPv6 trees.

use meridian::geo::{GeoDb, Location, PlacementSource as By, RegionMap, RegionMapSpec};
use mmdb_writer::{IpVersion, Value, Writer};

use crate::regions::{region, strings};
use crate::{codes, ip, net};

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::map(entries)
}
fn iso(code: &str) -> Value {
    map([
        ("iso_code", code.into()),
        ("names", map([("en", "Somewhere".into())])),
    ])
}

/// Databases written by the test: each schema, IPv4-only and IPv6 trees.
#[test]
fn written_databases_of_every_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::builder("Test-City")
        .description(&[("en", "Meridian test")])
        .build();
    let geoip2 = map([
        ("continent", map([("code", "EU".into())])),
        ("country", iso("DE")),
        ("subdivisions", Value::array([iso("BE"), iso("XYZ")])),
        (
            "location",
            map([("latitude", 52.52.into()), ("longitude", 13.405.into())]),
        ),
    ]);
    w.insert_value(net("192.0.2.0/24"), geoip2).unwrap();
    let dbip = map([
        ("continent", map([("code", "NA".into())])),
        ("country", map([("iso_code", "us".into())])),
        (
            "subdivisions",
            Value::array([map([("names", map([("en", "California".into())]))])]),
        ),
    ]);
    w.insert_value(net("192.0.2.128/25"), dbip).unwrap();
    w.insert_value(
        net("198.51.100.0/24"),
        map([("registered_country", iso("JP"))]),
    )
    .unwrap();
    w.insert_value(net("2001:db8::/32"), map([("country_code", "FR".into())]))
        .unwrap();
    w.insert_value(net("2001:db8:1::/48"), map([("country_code", "ZZ".into())]))
        .unwrap();
    let flat_city = map([
        ("country_code", "NL".into()),
        ("latitude", 52.37.into()),
        ("longitude", 4.89.into()),
    ]);
    w.insert_value(net("203.0.113.0/24"), flat_city).unwrap();
    let path = dir.path().join("city.mmdb");
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    let db = GeoDb::open(&path).unwrap();
    let look = |a: &str| db.lookup(ip(a)).unwrap();

    let l = look("192.0.2.1");
    assert_eq!(
        (codes(&l), l.lat_lon, l.prefix_len),
        (
            (Some("EU"), Some("DE"), Some("BE")),
            Some((52.52, 13.405)),
            25
        )
    );
    let l = look("192.0.2.200"); // DB-IP shape: a subdivision with names only
    assert_eq!(
        (codes(&l), l.lat_lon, l.prefix_len),
        ((Some("NA"), Some("US"), None), None, 25)
    );
    assert_eq!(codes(&look("198.51.100.7")), (Some("AS"), Some("JP"), None)); // registered_country
    // Flat schema, continent derived; the /32 is split around the /48 inside it, so /47.
    let l = look("2001:db8:2::1");
    assert_eq!(
        (codes(&l), l.prefix_len),
        ((Some("EU"), Some("FR"), None), 47)
    );
    let l = look("2001:db8:1::1"); // unknown country code: no continent
    assert_eq!((codes(&l), l.prefix_len), ((None, Some("ZZ"), None), 48));
    assert_eq!(look("203.0.113.9").lat_lon, Some((52.37, 4.89)));
    assert_eq!(look("::ffff:192.0.2.1").prefix_len, 121);

    // The written database drives a region map like any other.
    let regions = RegionMap::new(&RegionMapSpec {
        regions: vec![
            region("berlin", |r| r.subdivisions = strings(&["DE-BE"])),
            region("eu", |r| r.continents = strings(&["EU"])),
            region("rest", |_| {}),
        ],
        overrides: vec![],
        default_region: "rest".into(),
    })
    .unwrap();
    let p = regions.locate(ip("192.0.2.1"), Some(&db));
    assert_eq!(
        (p.region, p.source, p.scope_prefix),
        (0, By::Subdivision, 25)
    );
    let p = regions.locate(ip("2001:db8:2::1"), Some(&db));
    assert_eq!((p.region, p.source, p.scope_prefix), (1, By::Continent, 47));

    // An IPv4-only database: IPv6 is unknown (whole space), mapped IPv4 is found.
    let mut w4 = Writer::builder("Test-V4").ip_version(IpVersion::V4).build();
    w4.insert_value(net("192.0.2.0/24"), map([("country_code", "DE".into())]))
        .unwrap();
    let path4 = dir.path().join("v4.mmdb");
    std::fs::write(&path4, w4.to_bytes().unwrap()).unwrap();
    let db4 = GeoDb::open(&path4).unwrap();
    assert_eq!(db4.ip_version(), 4);
    let l = db4.lookup(ip("192.0.2.9")).unwrap();
    assert_eq!((l.country_str(), l.prefix_len), (Some("DE"), 24));
    assert_eq!(db4.lookup(ip("2001:db8::1")).unwrap(), Location::default());
    assert_eq!(db4.lookup(ip("::ffff:192.0.2.9")).unwrap().prefix_len, 120);
}
