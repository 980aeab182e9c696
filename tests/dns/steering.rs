//! Services answered by the policy engine, end to end over real UDP and TCP: clients located by
//! EDNS Client Subnet in MaxMind's GeoIP2 City test database, ECS scopes, CIDR overrides applied
//! by a reload, `geo` fallback chains, `nearest`, A/AAAA/CNAME/NODATA shapes, multi-value answers,
//! drains, and configuration errors that name their place.
//!
//! Health from real HTTP targets (failover, spill, latency, weighted, all-down) is in
//! tests/health/steering_health.rs.

use std::net::IpAddr;
use std::time::Duration;

use crate::support::steering::*;
use crate::support::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use ipnet::IpNet;
use meridian::config::Config;
use meridian::health::state::OverrideKind;

const EU: &str = "192.0.2.1";
const US: &str = "198.51.100.1";
const AP: &str = "203.0.113.1";

/// Regions eu (EU), us (NA, fallback eu), ap (AS, fallback us), one pool each; clients nothing
/// places go to `us`. `geo.example.com` honours ECS, `local.example.com` does not.
fn geo_toml() -> String {
    format!(
        r#"
[geo]
database = "{db}"
default_region = "us"

[[region]]
name = "eu"
location = [51.5, -0.1]
continents = ["EU"]

[[region]]
name = "us"
location = [47.6, -122.3]
continents = ["NA"]
fallback = ["eu"]

[[region]]
name = "ap"
location = [35.7, 139.7]
continents = ["AS"]
fallback = ["us"]

[[pool]]
name = "eu"
region = "eu"
[[pool.endpoint]]
name = "eu1"
address = "{EU}"
address6 = "2001:db8::1"

[[pool]]
name = "us"
region = "us"
[[pool.endpoint]]
name = "us1"
address = "{US}"

[[pool]]
name = "ap"
region = "ap"
[[pool.endpoint]]
name = "ap1"
address = "{AP}"

[[service]]
name = "geo.example.com."
policy = "geo"
pools = ["eu", "us", "ap"]
ttl = 60
failover_ttl = 7
# The chains' order is under test here, not the capacity bound (tests/health/steering_health.rs).
spill = "unbounded"

[[service]]
name = "local.example.com."
policy = "geo"
pools = ["eu", "us", "ap"]
ecs = false
"#,
        db = city_db()
    )
}

/// The ECS address as the server must echo it: the client's address cut to its source prefix.
fn masked(ip: &str, source: u8) -> IpAddr {
    IpNet::new(ip.parse().unwrap(), source)
        .unwrap()
        .trunc()
        .addr()
}

/// Ask `name` A from `(ip, source)` over UDP and TCP; both replies must agree on everything
/// asserted: NOERROR, AA, one address, TTL, and the ECS option (address, source, scope).
fn check(
    c: &mut Client,
    name: &str,
    ip: &'static str,
    source: u8,
    want: &str,
    ttl_want: u32,
    scope_want: u8,
) {
    for (how, m) in [
        ("udp", c.udp(name, RecordType::A, Some((ip, source)))),
        ("tcp", c.tcp(name, RecordType::A, Some((ip, source)))),
    ] {
        let ctx = format!("{name} from {ip}/{source} over {how}");
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{ctx}: {m}"
        );
        assert!(m.metadata.authoritative, "{ctx}");
        assert_eq!(one(&m), want, "{ctx}");
        assert_eq!(ttl(&m), ttl_want, "{ctx}");
        assert_eq!(
            ecs_of(&m),
            Some((masked(ip, source), source, scope_want)),
            "{ctx}"
        );
    }
}

#[test]
fn geo_policy_places_clients_by_ecs_with_the_database_network_as_scope() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &geo_toml());
    let mut c = Client::new(&srv);
    // (client, source prefix, answer, scope = the database network's prefix length)
    let cases: [(&'static str, u8, &str, u8); 7] = [
        ("81.2.69.142", 32, EU, 31),   // GB, /31
        ("2.125.160.216", 32, EU, 29), // GB, /29
        ("89.160.20.112", 32, EU, 28), // SE, /28
        ("216.160.83.56", 32, US, 29), // US-WA, /29
        ("214.78.120.5", 32, US, 22),  // US-CA, /22
        ("67.43.156.1", 32, AP, 24),   // BT, /24
        ("2001:218::1", 56, AP, 32),   // JP, /32
    ];
    for (ip, source, want, scope) in cases {
        check(&mut c, "geo.example.com.", ip, source, want, 60, scope);
    }

    // AAAA from the same decision: eu1 has an IPv6 address, us1 does not (NODATA, still scoped).
    let m = c.udp(
        "geo.example.com.",
        RecordType::AAAA,
        Some(("81.2.69.142", 32)),
    );
    assert_eq!(
        (one(&m), ttl(&m), scope(&m)),
        ("2001:db8::1".to_string(), 60, 31)
    );
    let m = c.udp(
        "geo.example.com.",
        RecordType::AAAA,
        Some(("216.160.83.56", 32)),
    );
    assert_nodata(&m, "AAAA for us1");
    assert_eq!(scope(&m), 29);

    // No ECS: located by the source address 127.0.0.1, which the database does not place: the
    // default region, and no ECS option in the reply.
    let m = c.udp("geo.example.com.", RecordType::A, None);
    assert_eq!(one(&m), US);
    assert_eq!(ecs_of(&m), None);
    // The same address as an ECS subnet: default region, scoped to the database's empty network
    // around it, 127.0.0.0/8 (src/geo/regions.rs: not 0, other networks get other regions).
    let empty = meridian::geo::GeoDb::open(city_db())
        .unwrap()
        .lookup("127.0.0.1".parse().unwrap())
        .unwrap();
    assert!(!empty.is_known() && empty.prefix_len == 8, "{empty:?}");
    check(&mut c, "geo.example.com.", "127.0.0.1", 32, US, 60, 8);
    // Source prefix 0: the resolver opts out; located by its own address, scope 0.
    check(&mut c, "geo.example.com.", "0.0.0.0", 0, US, 60, 0);

    // A service with `ecs = false` ignores the option: every client gets the source address's
    // region, and the answer is valid for the whole subnet (scope 0).
    for (ip, source) in [
        ("81.2.69.142", 32),
        ("67.43.156.1", 32),
        ("2001:218::1", 56),
    ] {
        check(&mut c, "local.example.com.", ip, source, US, 60, 0);
    }

    // CIDR overrides, applied by a reload, beat the database; the scope is the override's length,
    // and a database network holding an override is narrowed so it does not cover it.
    let mut text = std::fs::read_to_string(&srv.config_path).unwrap();
    text.push_str(
        "\n[[geo.overrides]]\nprefix = \"81.2.69.0/24\"\nregion = \"ap\"\n\
         [[geo.overrides]]\nprefix = \"216.160.83.56/32\"\nregion = \"eu\"\n",
    );
    std::fs::write(&srv.config_path, text).unwrap();
    let config = Config::load(&srv.config_path).unwrap();
    let snapshot = meridian::snapshot::assemble(&config).unwrap();
    srv.server.as_ref().unwrap().reload(&config, snapshot);
    check(&mut c, "geo.example.com.", "81.2.69.142", 32, AP, 60, 24);
    check(&mut c, "geo.example.com.", "81.2.69.143", 32, AP, 60, 24);
    check(&mut c, "geo.example.com.", "216.160.83.56", 32, EU, 60, 32);
    check(&mut c, "geo.example.com.", "216.160.83.57", 32, US, 60, 32); // its /29 holds the /32
    check(&mut c, "geo.example.com.", "2.125.160.216", 32, EU, 60, 29); // unaffected

    // Fallback chains: ap's is [us], so with ap1 drained Japan goes to us although eu comes
    // first in the service's pools; with us1 drained too, to the rest (eu). TTL: failover_ttl.
    let monitor = srv.server.as_ref().unwrap().monitor();
    let jp = Some(("2001:218::1", 56));
    monitor
        .set_override("ap1", Some(OverrideKind::Drain), None)
        .unwrap();
    wait_for(Duration::from_secs(2), "ap1 withdrawn", || {
        one(&c.udp("geo.example.com.", RecordType::A, jp)) != AP
    });
    check(&mut c, "geo.example.com.", "2001:218::1", 56, US, 7, 32);
    check(&mut c, "geo.example.com.", "2.125.160.216", 32, EU, 7, 29); // degraded service: short TTL
    monitor
        .set_override("us1", Some(OverrideKind::Drain), None)
        .unwrap();
    wait_for(Duration::from_secs(2), "us1 withdrawn", || {
        one(&c.udp("geo.example.com.", RecordType::A, jp)) != US
    });
    // Every region now answers eu: the answer no longer depends on the client, so scope 0.
    check(&mut c, "geo.example.com.", "2001:218::1", 56, EU, 7, 0);
    check(&mut c, "geo.example.com.", "214.78.120.5", 32, EU, 7, 0); // us → its chain: eu
    monitor.set_override("ap1", None, None).unwrap();
    monitor.set_override("us1", None, None).unwrap();
    wait_for(Duration::from_secs(2), "ap1 back", || {
        ttl(&c.udp("geo.example.com.", RecordType::A, jp)) == 60
    });
    check(&mut c, "geo.example.com.", "2001:218::1", 56, AP, 60, 32);
    check(&mut c, "geo.example.com.", "214.78.120.5", 32, US, 60, 22);
}

#[test]
fn nearest_policy_answers_the_closest_pool_to_the_client_region() {
    let extra = format!(
        r#"
[geo]
database = "{db}"
default_region = "gb"

# Client regions (placed by country), at their own locations.
[[region]]
name = "gb"
location = [53.5, -2.2]
countries = ["GB"]
[[region]]
name = "se"
location = [59.3, 18.1]
countries = ["SE"]
[[region]]
name = "us"
location = [39.8, -98.6]
countries = ["US"]
[[region]]
name = "bt"
location = [27.5, 90.5]
countries = ["BT"]
[[region]]
name = "jp"
location = [35.7, 139.7]
countries = ["JP"]

# Where the pools are.
[[region]]
name = "london"
location = [51.5, -0.1]
[[region]]
name = "seattle"
location = [47.6, -122.3]
[[region]]
name = "tokyo"
location = [35.7, 139.7]

[[pool]]
name = "london"
region = "london"
[[pool.endpoint]]
name = "lon1"
address = "{EU}"
[[pool]]
name = "seattle"
region = "seattle"
[[pool.endpoint]]
name = "sea1"
address = "{US}"
[[pool]]
name = "tokyo"
region = "tokyo"
[[pool.endpoint]]
name = "tyo1"
address = "{AP}"

[[service]]
name = "near.example.com."
policy = "nearest"
pools = ["tokyo", "seattle", "london"]
"#,
        db = city_db()
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let mut c = Client::new(&srv);
    let n = "near.example.com.";
    check(&mut c, n, "81.2.69.142", 32, EU, 60, 31); // GB → London
    check(&mut c, n, "89.160.20.112", 32, EU, 60, 28); // SE → London
    check(&mut c, n, "216.160.83.56", 32, US, 60, 29); // US → Seattle
    check(&mut c, n, "214.78.120.5", 32, US, 60, 22);
    check(&mut c, n, "67.43.156.1", 32, AP, 60, 24); // BT → Tokyo (4,800 km; London 7,400)
    check(&mut c, n, "2001:218::1", 56, AP, 60, 32); // JP → Tokyo
    // Without Tokyo, the next nearest: London for Bhutan, Seattle for Japan (7,700 km vs 9,600).
    let monitor = srv.server.as_ref().unwrap().monitor();
    monitor
        .set_override("tyo1", Some(OverrideKind::Drain), None)
        .unwrap();
    wait_for(Duration::from_secs(2), "tyo1 withdrawn", || {
        ttl(&c.udp(n, RecordType::A, None)) == 10
    });
    check(&mut c, n, "67.43.156.1", 32, EU, 10, 24);
    check(&mut c, n, "2001:218::1", 56, US, 10, 32);
    check(&mut c, n, "81.2.69.142", 32, EU, 10, 31);
}

/// One region, no database: answers do not depend on the client.
const SHAPES: &str = r#"
[[region]]
name = "r1"
location = [0.0, 0.0]

[[pool]]
name = "dual"
region = "r1"
[[pool.endpoint]]
name = "d1"
address = "192.0.2.20"
address6 = "2001:db8::20"

[[pool]]
name = "v6"
region = "r1"
[[pool.endpoint]]
name = "v61"
address = "2001:db8::66"

[[pool]]
name = "cdn"
region = "r1"
[[pool.endpoint]]
name = "c1"
hostname = "origin.cdn.example.net"

[[pool]]
name = "multi"
region = "r1"
[[pool.endpoint]]
name = "m1"
address = "192.0.2.31"
[[pool.endpoint]]
name = "m2"
address = "192.0.2.32"
[[pool.endpoint]]
name = "m3"
address = "192.0.2.33"
[[pool.endpoint]]
name = "m4"
address = "192.0.2.34"

[[service]]
name = "dual.example.com."
policy = "failover"
pools = ["dual"]
[[service]]
name = "v6only.example.com."
policy = "failover"
pools = ["v6"]
[[service]]
name = "media.example.com."
policy = "failover"
pools = ["cdn"]
[[service]]
name = "multi.example.com."
policy = "failover"
pools = ["multi"]
answers = 3
# On an empty non-terminal of the zone (a.b.c.example.com. has a TXT record).
[[service]]
name = "c.example.com."
policy = "failover"
pools = ["dual"]
"#;

#[test]
fn a_aaaa_cname_nodata_and_multi_value_answers() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], SHAPES);
    let mut c = Client::new(&srv);
    let gb = Some(("81.2.69.142", 32));
    for tcp in [false, true] {
        let mut ask = |name: &str, t: RecordType| {
            if tcp {
                c.tcp(name, t, gb)
            } else {
                c.udp(name, t, gb)
            }
        };
        // Address + address6: both types, from the same endpoint; scope 0 (one answer for all).
        let m = ask("dual.example.com.", RecordType::A);
        assert_eq!((one(&m), ttl(&m), scope(&m)), ("192.0.2.20".into(), 60, 0));
        assert!(m.metadata.authoritative);
        assert_eq!(m.answers[0].record_type(), RecordType::A);
        let m = ask("dual.example.com.", RecordType::AAAA);
        assert_eq!(
            (one(&m), ttl(&m), scope(&m)),
            ("2001:db8::20".into(), 60, 0)
        );
        // IPv6 only: AAAA answers, A is NODATA; so is a type no endpoint has.
        let m = ask("v6only.example.com.", RecordType::AAAA);
        assert_eq!(one(&m), "2001:db8::66");
        assert_nodata(
            &ask("v6only.example.com.", RecordType::A),
            "A for an IPv6-only endpoint",
        );
        assert_nodata(&ask("dual.example.com.", RecordType::MX), "MX at a service");
        // Hostname endpoint: a CNAME whatever address type is asked.
        for t in [RecordType::A, RecordType::AAAA] {
            let m = ask("media.example.com.", t);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert!(m.metadata.authoritative);
            assert_eq!(m.answers.len(), 1, "{m}");
            let rr = &m.answers[0];
            assert_eq!(
                (rr.record_type(), rr.name.to_string(), rr.ttl),
                (RecordType::CNAME, "media.example.com.".into(), 60)
            );
            assert!(
                matches!(&rr.data, RData::CNAME(t) if t.0.to_string() == "origin.cdn.example.net."),
                "{m}"
            );
        }
    }
    // A service on an empty non-terminal answers as a service, not with the node's NODATA
    // (asked without ECS: the query then has the shape that prepared responses answer).
    for tcp in [false, true] {
        let m = if tcp {
            c.tcp("c.example.com.", RecordType::A, None)
        } else {
            c.udp("c.example.com.", RecordType::A, None)
        };
        assert_eq!((one(&m), ttl(&m)), ("192.0.2.20".into(), 60), "{m}");
        assert!(m.metadata.authoritative);
    }
    // Case-insensitive match; the owner keeps the case asked.
    let m = c.udp("MEDIA.Example.COM.", RecordType::A, None);
    assert_eq!(m.answers.len(), 1, "{m}");
    assert_eq!(m.answers[0].name.to_string(), "MEDIA.Example.COM.");

    // answers = 3 out of 4 serving endpoints: three distinct ones each time, all four over time.
    let all: Vec<String> = (31..=34).map(|i| format!("192.0.2.{i}")).collect();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..60 {
        let got = rdata(&c.udp("multi.example.com.", RecordType::A, None));
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.windows(2).all(|w| w[0] != w[1]), "duplicates: {got:?}");
        assert!(got.iter().all(|a| all.contains(a)), "{got:?}");
        seen.extend(got);
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    // With exactly three serving, exactly those three, every time.
    let monitor = srv.server.as_ref().unwrap().monitor();
    monitor
        .set_override("m2", Some(OverrideKind::Drain), None)
        .unwrap();
    wait_for(Duration::from_secs(2), "m2 withdrawn", || {
        ttl(&c.udp("multi.example.com.", RecordType::A, None)) == 10
    });
    for _ in 0..30 {
        let got = rdata(&c.udp("multi.example.com.", RecordType::A, None));
        assert_eq!(got, ["192.0.2.31", "192.0.2.33", "192.0.2.34"]);
    }
}

#[test]
fn drain_withdraws_an_endpoint_within_one_rebuild() {
    let extra = r#"
[[region]]
name = "r1"
location = [0.0, 0.0]
[[pool]]
name = "p"
region = "r1"
[[pool.endpoint]]
name = "p1"
address = "192.0.2.41"
[[pool.endpoint]]
name = "p2"
address = "192.0.2.42"
[[service]]
name = "svc.example.com."
policy = "failover"
pools = ["p"]
answers = 2
ttl = 30
failover_ttl = 3
"#;
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], extra);
    let mut c = Client::new(&srv);
    let both = ["192.0.2.41", "192.0.2.42"];
    let m = c.udp("svc.example.com.", RecordType::A, None);
    assert_eq!((rdata(&m), ttl(&m)), (both.map(String::from).to_vec(), 30));

    let monitor = srv.server.as_ref().unwrap().monitor();
    monitor
        .set_override("p1", Some(OverrideKind::Drain), None)
        .unwrap();
    // The health change is debounced 20 ms, then one rebuild: well under a second.
    let took = wait_for(Duration::from_secs(1), "p1 withdrawn", || {
        rdata(&c.udp("svc.example.com.", RecordType::A, None)) == ["192.0.2.42"]
    });
    eprintln!("drain took {took:?}");
    for _ in 0..50 {
        let m = c.udp("svc.example.com.", RecordType::A, None);
        assert_eq!((rdata(&m), ttl(&m)), (vec!["192.0.2.42".to_string()], 3));
    }
    monitor.set_override("p1", None, None).unwrap();
    wait_for(Duration::from_secs(1), "p1 back", || {
        rdata(&c.udp("svc.example.com.", RecordType::A, None)).len() == 2
    });
    let m = c.tcp("svc.example.com.", RecordType::A, None);
    assert_eq!((rdata(&m), ttl(&m)), (both.map(String::from).to_vec(), 30));
}

/// Load and compile `service` (plus `pools` and regions) next to the example zone; the error text.
fn config_error(pools: &str, service: &str) -> (String, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z.zone"), EXAMPLE_ZONE).unwrap();
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\norigin = \"example.com.\"\nfile = \"z.zone\"\n\
         [[region]]\nname = \"r1\"\nlocation = [0.0, 0.0]\n{pools}\n{service}"
    );
    let path = dir.path().join("m.toml");
    std::fs::write(&path, &text).unwrap();
    let err = Config::load(&path)
        .and_then(|c| meridian::snapshot::assemble(&c))
        .map(|_| ())
        .expect_err("config must be refused");
    (err.to_string(), text, path)
}

/// `file:line:column` of the first occurrence of `needle` in `text`.
fn place(path: &std::path::Path, text: &str, needle: &str) -> String {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the config"));
    place_at(path, text, at)
}

/// `file:line:column` of byte `at` of `text`.
fn place_at(path: &std::path::Path, text: &str, at: usize) -> String {
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{}:{line}:{col}", path.display())
}

#[test]
fn config_errors_name_the_service_pool_or_region_and_the_place() {
    let pool = "[[pool]]\nname = \"p\"\nregion = \"r1\"\n[[pool.endpoint]]\nname = \"p1\"\naddress = \"192.0.2.1\"\n";
    let svc = |name: &str, pools: &str| {
        format!("[[service]]\nname = \"{name}\"\npolicy = \"failover\"\npools = [{pools}]\n")
    };

    // Outside every served zone: located at the service's name.
    let (err, text, path) = config_error(pool, &svc("www.example.org.", "\"p\""));
    let want = format!(
        "{}: service \"www.example.org.\" is not inside any served zone",
        place(&path, &text, "\"www.example.org.\"")
    );
    assert!(err.contains(&want), "want {want}\ngot {err}");
    // At or below a delegation: the child zone's servers answer it, not us.
    for name in ["sub.example.com.", "x.sub.example.com."] {
        let (err, text, path) = config_error(pool, &svc(name, "\"p\""));
        let want = format!(
            "{}: service \"{name}\" is at or below the delegation sub.example.com.",
            place(&path, &text, &format!("\"{name}\""))
        );
        assert!(err.contains(&want), "want {want}\ngot {err}");
    }
    // At a name that has static records.
    let (err, _, _) = config_error(pool, &svc("www.example.com.", "\"p\""));
    assert!(
        err.contains("service \"www.example.com.\"")
            && err.contains("also has records at that name"),
        "{err}"
    );
    // An undefined pool: file:line:column of the reference.
    let (err, text, path) = config_error(pool, &svc("svc.example.com.", "\"p\", \"nope\""));
    let want = format!(
        "{}: service \"svc.example.com.\": pool \"nope\" is not defined",
        place(&path, &text, "\"nope\"")
    );
    assert!(err.contains(&want), "want {want}\ngot {err}");
    // A pool listed twice (found by fuzzing the policy engine: a `weighted` service drew one
    // endpoint twice into an answer): at the second reference.
    let (err, text, path) = config_error(pool, &svc("svc.example.com.", "\"p\", \"p\""));
    let want = format!(
        "{}: service \"svc.example.com.\": pool \"p\" is listed twice",
        place(&path, &text, "\"p\"]")
    );
    assert!(err.contains(&want), "want {want}\ngot {err}");
    // Weights past 1,000,000 (found by fuzzing the policy engine: pool × endpoint weights of
    // any u32 overflowed the weighted draw's 64-bit sum), for a pool and for an endpoint.
    let heavy_pool = pool.replace(
        "region = \"r1\"\n",
        "region = \"r1\"\nweight = 4294967295\n",
    );
    let (err, text, path) = config_error(&heavy_pool, &svc("svc.example.com.", "\"p\""));
    let want = format!(
        "{}: pool \"p\".weight: 4294967295 is outside 0..=1000000",
        place(&path, &text, "4294967295")
    );
    assert!(err.contains(&want), "want {want}\ngot {err}");
    let heavy_endpoint = format!("{pool}weight = 1000001\n");
    let (err, text, path) = config_error(&heavy_endpoint, &svc("svc.example.com.", "\"p\""));
    let want = format!(
        "{}: pool \"p\": endpoint \"p1\".weight: 1000001 is outside 0..=1000000",
        place(&path, &text, "1000001")
    );
    assert!(err.contains(&want), "want {want}\ngot {err}");
    // An undefined region, where a pool names it and where a region's fallback names it.
    let bad_pool = pool.replace("region = \"r1\"", "region = \"mars\"");
    let (err, text, path) = config_error(&bad_pool, &svc("svc.example.com.", "\"p\""));
    let want = format!(
        "{}: pool \"p\".region: region \"mars\" is not defined",
        place(&path, &text, "\"mars\"")
    );
    assert!(err.contains(&want), "want {want}\ngot {err}");
    let with_fallback =
        format!("{pool}[[region]]\nname = \"r2\"\nlocation = [1.0, 1.0]\nfallback = [\"venus\"]\n");
    let (err, text, path) = config_error(&with_fallback, &svc("svc.example.com.", "\"p\""));
    let want = format!(
        "{}: region \"r2\".fallback: region \"venus\" is not defined",
        place(&path, &text, "\"venus\"")
    );
    assert!(err.contains(&want), "want {want}\ngot {err}");
    // Names given twice, each reported where the second one is: a pool, an endpoint (unique
    // across pools), a service (names compare lowercase and fully qualified).
    let second = pool.replace("name = \"p1\"", "name = \"p2\"");
    let (err, text, path) = config_error(
        &format!("{pool}{second}"),
        &svc("svc.example.com.", "\"p\""),
    );
    let at = text.rfind("\"p\"\nregion").unwrap();
    let want = format!(
        "{}: pool \"p\" is defined twice",
        place_at(&path, &text, at)
    );
    assert!(err.contains(&want), "want {want}\ngot {err}");
    let other = pool.replace("name = \"p\"", "name = \"q\"");
    let (err, text, path) =
        config_error(&format!("{pool}{other}"), &svc("svc.example.com.", "\"p\""));
    let at = text.rfind("\"p1\"").unwrap();
    let want = format!(
        "{}: pool \"q\": endpoint \"p1\" is defined twice (endpoint names are unique across pools)",
        place_at(&path, &text, at)
    );
    assert!(err.contains(&want), "want {want}\ngot {err}");
    let twice = svc("svc.example.com.", "\"p\"") + &svc("SVC.example.com", "\"p\"");
    let (err, text, path) = config_error(pool, &twice);
    let want = format!(
        "{}: service \"SVC.example.com\" is defined twice",
        place(&path, &text, "\"SVC.example.com\"")
    );
    assert!(err.contains(&want), "want {want}\ngot {err}");
}
