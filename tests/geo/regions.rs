//! Region mapping over MaxMind's City test database: precedence, ECS scopes, validation.

use meridian::geo::{PlacementSource as By, RegionMap, RegionMapError, RegionMapSpec, RegionSpec};

use crate::{city, ip, net};

pub(crate) fn region(name: &str, f: impl FnOnce(&mut RegionSpec)) -> RegionSpec {
    let mut r = RegionSpec {
        name: name.into(),
        ..RegionSpec::default()
    };
    f(&mut r);
    r
}
pub(crate) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// eu: continent EU · uk: country GB · us-west: US-WA, US-CA · us: country US · asia: AS ·
/// lab: prefixes · fallback: default. Overrides on top.
pub(crate) fn world() -> RegionMap {
    RegionMap::new(&RegionMapSpec {
        regions: vec![
            region("eu", |r| r.continents = strings(&["EU"])),
            region("uk", |r| r.countries = strings(&["gb"])),
            region("us-west", |r| r.subdivisions = strings(&["US-WA", "us-ca"])),
            region("us", |r| r.countries = strings(&["US"])),
            region("asia", |r| r.continents = strings(&["AS"])),
            region("lab", |r| {
                r.prefixes = vec![net("89.160.20.0/24"), net("1.2.3.0/24")]
            }),
            region("fallback", |_| {}),
        ],
        overrides: vec![
            (net("81.2.69.142/32"), "us".into()),
            (net("216.160.0.0/16"), "eu".into()),
            (net("216.160.83.56/30"), "asia".into()),
            (net("89.160.20.112/32"), "uk".into()),
            (net("2001:218::/32"), "eu".into()),
        ],
        default_region: "fallback".into(),
    })
    .unwrap()
}

#[test]
fn region_precedence_and_scope() {
    let (map, db) = (world(), city());
    let at = |addr: &str| {
        let p = map.locate(ip(addr), Some(&db));
        (map.name(p.region), p.source, p.scope_prefix)
    };
    // Database rules: subdivision beats country beats continent.
    assert_eq!(at("214.78.120.5"), ("us-west", By::Subdivision, 22));
    assert_eq!(at("2001:480:10::1"), ("us-west", By::Subdivision, 48));
    assert_eq!(at("149.101.100.1"), ("us", By::Country, 28));
    assert_eq!(at("2.125.160.216"), ("uk", By::Country, 29));
    assert_eq!(at("81.2.69.144"), ("uk", By::Country, 28));
    assert_eq!(at("2.3.3.3"), ("eu", By::Continent, 24)); // a continent, no country
    assert_eq!(at("67.43.156.1"), ("asia", By::Continent, 24));
    // Override beats country; the longest override wins; scope is the override's length...
    assert_eq!(at("81.2.69.142"), ("us", By::Override, 32));
    assert_eq!(at("216.160.83.57"), ("asia", By::Override, 30));
    assert_eq!(at("2001:218::1"), ("eu", By::Override, 32));
    // ...narrowed so it never covers the more specific 216.160.83.56/30 (sharing 29 bits with
    // .60, 17 with 216.160.1.1).
    assert_eq!(at("216.160.83.60"), ("eu", By::Override, 30));
    assert_eq!(at("216.160.1.1"), ("eu", By::Override, 18));
    // A region prefix beats the database, an override beats the prefix.
    assert_eq!(at("89.160.20.1"), ("lab", By::Prefix, 26)); // not /24: .112/32 is inside
    assert_eq!(at("89.160.20.113"), ("lab", By::Prefix, 32));
    assert_eq!(at("89.160.20.112"), ("uk", By::Override, 32));
    // Not in the database: default, scope of the database's empty network (1.0.0.0/8) narrowed
    // away from lab's 1.2.3.0/24 (14 bits shared with 1.1.1.1).
    assert_eq!(at("1.1.1.1"), ("fallback", By::Default, 15));
    assert_eq!(at("1.200.0.1"), ("fallback", By::Default, 9));
    // In the database but mapped by no rule (empty record): default at the network's length.
    assert_eq!(at("214.1.1.1"), ("fallback", By::Default, 24));
    // IPv4-mapped clients: placed as IPv4, scope in IPv6 terms.
    assert_eq!(at("::ffff:2.125.160.216"), ("uk", By::Country, 125));
    assert_eq!(at("::ffff:81.2.69.142"), ("us", By::Override, 128));
    // Location is reported when the database was consulted.
    let p = map.locate(ip("216.160.1.1"), Some(&db));
    assert!(p.location.is_none());
    let p = map.locate(ip("214.78.120.5"), Some(&db));
    assert_eq!(p.location.unwrap().lat_lon, Some((32.7405, -117.0935)));
    assert_eq!(map.default_region(), map.index_of("fallback").unwrap());
}

#[test]
fn default_region_without_database_has_scope_zero() {
    let countries_only = RegionMap::new(&RegionMapSpec {
        regions: vec![
            region("eu", |r| r.countries = strings(&["DE"])),
            region("rest", |_| {}),
        ],
        overrides: vec![],
        default_region: "rest".into(),
    })
    .unwrap();
    let p = countries_only.locate(ip("192.0.2.1"), None);
    assert_eq!(
        (p.region, p.source, p.scope_prefix, p.location),
        (1, By::Default, 0, None)
    );
    // Only prefixes: the database is never consulted, and the default's scope only excludes
    // the prefixes.
    let prefixes_only = RegionMap::new(&RegionMapSpec {
        regions: vec![
            region("a", |r| r.prefixes = vec![net("10.0.0.0/8")]),
            region("b", |_| {}),
        ],
        overrides: vec![],
        default_region: "b".into(),
    })
    .unwrap();
    assert!(!prefixes_only.uses_database());
    let p = prefixes_only.locate(ip("192.0.2.1"), Some(&city()));
    assert_eq!(
        (p.region, p.source, p.scope_prefix, p.location),
        (1, By::Default, 1, None)
    );
    assert_eq!(
        prefixes_only.locate(ip("2001:db8::1"), None).scope_prefix,
        0
    );
}

#[test]
fn region_map_reports_every_problem() {
    let errors = RegionMap::new(&RegionMapSpec {
        regions: vec![
            region("eu", |r| {
                r.continents = strings(&["EU", "EUR"]);
                r.countries = strings(&["DE", "XX"]);
                r.subdivisions = strings(&["US_CA"]);
                r.prefixes = vec![net("10.0.0.0/8")];
            }),
            region("us", |r| {
                r.countries = strings(&["de"]);
                r.prefixes = vec![net("10.1.2.3/8")];
            }),
            region("eu", |_| {}),
        ],
        overrides: vec![(net("192.0.2.0/24"), "mars".into())],
        default_region: "nowhere".into(),
    })
    .unwrap_err();
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    for want in [
        "region \"eu\" is defined more than once",
        "default region \"nowhere\" is not defined",
        "region \"eu\": continent \"EUR\" is not one of AF, AN, AS, EU, NA, OC, SA",
        "region \"eu\": country \"XX\" is not an ISO 3166-1 alpha-2 code",
        "region \"eu\": subdivision \"US_CA\" is not an ISO 3166-2 code such as \"US-CA\"",
        "country DE is mapped to both region \"eu\" and region \"us\"",
        "prefix 10.0.0.0/8 is mapped to both region \"eu\" and region \"us\"",
        "override 192.0.2.0/24: region \"mars\" is not defined",
    ] {
        assert!(
            text.iter().any(|t| t == want),
            "missing {want:?} in {text:#?}"
        );
    }
    assert_eq!(errors.len(), 8, "{text:#?}");
    assert!(matches!(errors[0], RegionMapError::DuplicateRegion { .. }));
}
