//! `meridian simulate` as an operator runs it, on MaxMind's GeoIP2 City test database and pools
//! at real datacenter locations: clients go to the nearest pool, the routing quality is
//! reported, `--down` moves networks to the next nearest pool and flags pools pushed past their
//! overprovisioning; bad input is refused with its place. `GET /simulate` on a running server
//! answers the same report. `explain` in the same world prints each pool's distance from the
//! client itself, not from the place its class was ranked at.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::steering::city_db;
use crate::support::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_meridian");

/// Networks of the test database: London, Boxford (GB), Linköping (SE), Milton (US, WA),
/// San Diego (US), Changchun (CN), Bhutan, the Philippines, Tokyo (JP, IPv6).
const NETWORKS: &str = "network,weight\n\
    81.2.69.142/31,1000\n\
    2.125.160.216/29\n\
    89.160.20.112/28,500\n\
    216.160.83.56/29,800\n\
    214.78.120.0/22\n\
    175.16.199.0/24,300\n\
    67.43.156.0/24,100\n\
    202.196.224.0/20,200\n\
    2001:218::/32,700\n";

/// A `nearest` service over six pools at real datacenter locations, regions per continent.
fn write_config(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let pool = |name: &str, region: &str, lat: f64, lon: f64, ep: &str, addr: &str| {
        format!(
            "[[pool]]\nname = \"{name}\"\nregion = \"{region}\"\nlocation = [{lat}, {lon}]\n\
             [[pool.endpoint]]\nname = \"{ep}\"\naddress = \"{addr}\"\n"
        )
    };
    let cfg = dir.join("meridian.toml");
    std::fs::write(
        &cfg,
        format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n\
             [[zone]]\norigin = \"example.com.\"\nfile = \"example.com.zone\"\n\
             [geo]\ndatabase = \"{db}\"\ndefault_region = \"europe\"\n\
             [[region]]\nname = \"europe\"\nlocation = [50.1, 8.7]\ncontinents = [\"EU\", \"AF\"]\n\
             [[region]]\nname = \"americas\"\nlocation = [39.0, -77.5]\ncontinents = [\"NA\", \"SA\"]\n\
             [[region]]\nname = \"asia\"\nlocation = [1.35, 103.8]\ncontinents = [\"AS\", \"OC\"]\n\
             {}{}{}{}{}{}\
             [[service]]\nname = \"gslb.example.com.\"\npolicy = \"nearest\"\n\
             pools = [\"dublin\", \"frankfurt\", \"virginia\", \"oregon\", \"tokyo\", \"singapore\"]\n",
            pool("dublin", "europe", 53.35, -6.26, "dub1", "192.0.2.1"),
            pool("frankfurt", "europe", 50.11, 8.68, "fra1", "192.0.2.2"),
            pool("virginia", "americas", 39.04, -77.49, "iad1", "198.51.100.1"),
            pool("oregon", "americas", 45.84, -119.70, "pdx1", "198.51.100.2"),
            pool("tokyo", "asia", 35.68, 139.69, "nrt1", "203.0.113.1"),
            pool("singapore", "asia", 1.35, 103.82, "sin1", "203.0.113.2"),
            db = city_db()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("networks.csv"), NETWORKS).unwrap();
    cfg
}

/// Run `meridian simulate --config CFG --service gslb.example.com ARGS`: exit code, stdout,
/// stderr.
fn simulate(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["simulate", "--service", "gslb.example.com", "--config"])
        .arg(cfg)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn simulate_json(cfg: &Path, args: &[&str]) -> Value {
    let (code, out, err) = simulate(cfg, &[args, &["--json"]].concat());
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The report's row for `network`.
fn row<'a>(report: &'a Value, network: &str) -> &'a Value {
    report["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["network"] == network)
        .unwrap_or_else(|| panic!("no network {network}"))
}

/// `[(pool, share)]` of a share list.
fn shares(v: &Value) -> Vec<(String, f64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["pool"].as_str().unwrap().to_string(),
                s["share"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn simulate_sends_each_network_to_its_nearest_pool_and_reports_the_quality() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let csv = dir.path().join("networks.csv");
    let r = simulate_json(&cfg, &["--networks", csv.to_str().unwrap()]);
    assert_eq!(r["policy"], "nearest");
    assert_eq!(r["what_if"], Value::Null);
    let london = row(&r, "81.2.69.142/31");
    assert_eq!(london["region"], "europe");
    assert_eq!(london["position"]["source"], "record");
    assert_eq!(shares(&london["pools"]), [("dublin".to_string(), 1.0)]);
    assert_eq!(london["best_pool"], "dublin");
    assert_eq!(london["excess_ms"], 0.0);
    // London-Dublin is 464 km: 4.6 ms + 2 ms.
    let rtt = london["expected_rtt_ms"].as_f64().unwrap();
    assert!((rtt - 6.64).abs() < 0.05, "{rtt}");
    assert_eq!(row(&r, "2.125.160.216/29")["weight"], 8.0); // default: address count
    assert_eq!(shares(&row(&r, "2001:218::/32")["pools"])[0].0, "tokyo");
    assert_eq!(shares(&row(&r, "216.160.83.56/29")["pools"])[0].0, "oregon");
    assert_eq!(
        shares(&row(&r, "89.160.20.112/28")["pools"])[0].0,
        "frankfurt"
    );
    for n in r["networks"].as_array().unwrap() {
        let sum: f64 = shares(&n["pools"]).iter().map(|s| s.1).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{n}");
        assert!(n["excess_ms"].as_f64().unwrap() >= 0.0, "{n}");
    }
    let s = &r["summary"];
    assert_eq!(s["networks"], 9);
    assert!(s["within_10pct"].as_f64().unwrap() >= 0.9, "{s}");
    assert!(s["mean_excess_ms"].as_f64().unwrap() < 1.0, "{s}");
    let total: f64 = shares(&s["pools"]).iter().map(|s| s.1).sum();
    assert!((total - 1.0).abs() < 1e-9, "{s}");
    // The text report says the same.
    let (code, text, err) = simulate(&cfg, &["--networks", csv.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("81.2.69.142/31"), "{text}");
    assert!(text.contains("within 10% of their best RTT"), "{text}");
}

/// Without `--networks`, every network of the database; `--limit` keeps the largest.
#[test]
fn simulate_reads_the_databases_networks_and_limit_keeps_the_largest() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let all = simulate_json(&cfg, &[]);
    let n = all["networks"].as_array().unwrap().len();
    assert!(n > 100, "{n}");
    let five = simulate_json(&cfg, &["--limit", "5"]);
    let rows = five["networks"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let smallest_kept = rows
        .iter()
        .map(|r| r["weight"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    let larger_left_out = all["networks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["weight"].as_f64().unwrap() > smallest_kept)
        .count();
    assert!(
        larger_left_out <= 5,
        "{larger_left_out} networks larger than a kept one"
    );
}

#[test]
fn simulate_down_moves_networks_to_the_next_nearest_pool() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let csv = dir.path().join("networks.csv");
    let csv = csv.to_str().unwrap();
    let r = simulate_json(&cfg, &["--networks", csv, "--down", "dublin"]);
    assert_eq!(r["down"], serde_json::json!(["dublin"]));
    // Spill is bounded by capacity (the default), sized by the database's networks: London
    // goes to Frankfurt, its next-nearest pool, as far as Frankfurt has room, the rest further.
    let london = row(&r, "81.2.69.142/31");
    let to = shares(&london["pools"]);
    assert_eq!(to[0].0, "frankfurt", "{to:?}");
    assert!(to.iter().all(|(p, _)| p != "dublin"), "{to:?}");
    assert_eq!(london["best_pool"], "frankfurt"); // Dublin does not serve: not the best
    let w = &r["what_if"];
    let moved = w["moved"].as_array().unwrap();
    let m = moved
        .iter()
        .find(|m| m["network"] == "81.2.69.142/31")
        .expect("London moved");
    assert_eq!(shares(&m["from"]), [("dublin".to_string(), 1.0)]);
    assert_eq!(shares(&m["to"]), to);
    let over = r["overprovisioning"].as_f64().unwrap();
    assert_eq!(over, 1.4);
    for p in w["pools"].as_array().unwrap() {
        let (b, x) = (
            p["baseline_share"].as_f64().unwrap(),
            p["what_if_share"].as_f64().unwrap(),
        );
        // The engine's load and budget, over the demand; over capacity means load > budget.
        let load = p["load"].as_f64().expect("bounded: the engine's load");
        match p["budget"].as_f64() {
            Some(budget) => assert_eq!(p["over_capacity"], load > budget + 1e-9, "{p}"),
            None => assert_eq!(p["over_capacity"], false, "{p}"),
        }
        if p["pool"] == "dublin" {
            assert!(b > 0.0 && x == 0.0 && load == 0.0, "{p}");
        }
        if p["pool"] == "frankfurt" {
            // Frankfurt fills to its budget, and no further.
            let budget = p["budget"].as_f64().unwrap();
            assert!((load - budget).abs() < 1e-9, "{p}");
            assert!(x > b && p["over_capacity"] == false, "{p}");
        }
    }
    // Unbounded (`spill = "unbounded"`), London's traffic all goes to Frankfurt, which the
    // report then finds over its baseline × overprovisioning.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let unbounded = dir.path().join("unbounded.toml");
    std::fs::write(
        &unbounded,
        text.replace(
            "policy = \"nearest\"\n",
            "policy = \"nearest\"\nspill = \"unbounded\"\n",
        ),
    )
    .unwrap();
    let r = simulate_json(&unbounded, &["--networks", csv, "--down", "dublin"]);
    let london = row(&r, "81.2.69.142/31");
    assert_eq!(shares(&london["pools"]), [("frankfurt".to_string(), 1.0)]);
    for p in r["what_if"]["pools"].as_array().unwrap() {
        let (b, x) = (
            p["baseline_share"].as_f64().unwrap(),
            p["what_if_share"].as_f64().unwrap(),
        );
        assert!(p["load"].is_null() && p["budget"].is_null(), "{p}");
        assert_eq!(p["over_capacity"], x > b * over + 1e-12, "{p}");
        if p["pool"] == "frankfurt" {
            assert!(p["over_capacity"] == true, "{p}");
        }
    }
    // A region and an endpoint name work too: without Asia, Tokyo's clients go elsewhere.
    let r = simulate_json(&cfg, &["--networks", csv, "--down", "asia"]);
    let jp = shares(&row(&r, "2001:218::/32")["pools"]);
    assert!(
        jp.iter().all(|(p, _)| p != "tokyo" && p != "singapore"),
        "{jp:?}"
    );
    let r = simulate_json(&cfg, &["--networks", csv, "--down", "nrt1"]);
    assert_eq!(shares(&row(&r, "2001:218::/32")["pools"])[0].0, "singapore");
}

#[test]
fn simulate_refuses_unknown_names_and_bad_csv_lines_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let (code, _, err) = simulate(&cfg, &["--down", "atlantis"]);
    assert_eq!(code, 64);
    assert!(
        err.contains("\"atlantis\": no pool, region or endpoint"),
        "{err}"
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "81.2.69.142/31,1\n10.0.0.0/8,lots\n").unwrap();
    let (code, _, err) = simulate(&cfg, &["--networks", bad.to_str().unwrap()]);
    assert_eq!(code, 64);
    assert!(
        err.contains(&format!("{}:2: weight \"lots\"", bad.display())),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["simulate", "--service", "nope.example.com", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service \"nope.example.com\""));
}

/// One request to the admin API (`Connection: close`, `headers` as given, `body` with its
/// `Content-Length`): status and body.
fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// GET `target` from the admin API: status and body.
fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    http(addr, "GET", target, &[], b"")
}

#[test]
fn admin_simulate_agrees_with_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let srv = start_file(&cfg);
    let admin = srv.server().admin_addr().expect("admin API bound");
    for (query, args) in [
        ("", &[][..]),
        (
            "&down=dublin&down=iad1",
            &["--down", "dublin", "--down", "iad1"][..],
        ),
    ] {
        let (status, body) = get(admin, &format!("/simulate?service=gslb.example.com{query}"));
        assert_eq!(status, 200, "{body}");
        let api: Value = serde_json::from_str(&body).unwrap();
        // Without --networks the command line takes every network of the database, as the
        // API does (the test database has fewer than its default cap).
        let cli = simulate_json(&cfg, args);
        assert!(api["networks"].as_array().unwrap().len() > 100);
        assert_eq!(api, cli, "{query}");
    }
    let (status, body) = get(admin, "/simulate?service=gslb.example.com&networks=5");
    assert_eq!(status, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["networks"].as_array().unwrap().len(), 5);
    let (status, body) = get(admin, "/simulate?service=gslb.example.com&down=atlantis");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("atlantis"), "{body}");
    srv.stop();
}

/// `POST /simulate` takes the networks CSV `meridian simulate --networks` reads as its body
/// (larger than other routes' bodies may be), needs the bearer token like every POST, and
/// refuses a bad line with its number.
#[test]
fn admin_simulate_takes_a_networks_csv_body() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let with_token = std::fs::read_to_string(&cfg).unwrap().replace(
        "[admin]\nlisten = \"127.0.0.1:0\"\n",
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret\"\n",
    );
    assert!(with_token.contains("s3cret"));
    std::fs::write(&cfg, with_token).unwrap();
    let csv = dir.path().join("networks.csv");
    let srv = start_file(&cfg);
    let admin = srv.server().admin_addr().expect("admin API bound");
    let auth = [("Authorization", "Bearer s3cret")];
    let post = |target: &str, headers: &[(&str, &str)], body: &[u8]| {
        http(admin, "POST", target, headers, body)
    };
    let target = "/simulate?service=gslb.example.com&down=dublin";

    let (status, body) = post(target, &auth, NETWORKS.as_bytes());
    assert_eq!(status, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    let cli = simulate_json(
        &cfg,
        &["--networks", csv.to_str().unwrap(), "--down", "dublin"],
    );
    assert_eq!(api["networks"].as_array().unwrap().len(), 9);
    assert_eq!(api, cli);
    let (status, text) = post(&format!("{target}&format=text"), &auth, NETWORKS.as_bytes());
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("81.2.69.142/31"), "{text}");
    assert!(text.contains("moved: "), "{text}");

    // Over the 64 KiB other bodies may have (a long comment here): still read whole.
    let long = format!("{NETWORKS}# {}\n", "x".repeat(100 * 1024));
    let (status, body) = post(target, &auth, long.as_bytes());
    assert_eq!(status, 200, "{body}");
    let big: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(big["networks"], cli["networks"]);

    // A POST needs the token; GETs stay open.
    let (status, body) = post(target, &[], NETWORKS.as_bytes());
    assert_eq!(status, 401, "{body}");
    let (status, body) = post(
        target,
        &[("Authorization", "Bearer nope")],
        b"81.2.69.142/31\n",
    );
    assert_eq!(status, 401, "{body}");
    let (status, body) = get(admin, "/simulate?service=gslb.example.com&networks=3");
    assert_eq!(status, 200, "{body}");

    // Bad input: a bad line with its number, no networks, a count with a body, too large.
    for (target, csv, needle) in [
        (
            target,
            "81.2.69.142/31,1\n10.0.0.0/8,lots\n",
            "line 2: weight \"lots\"",
        ),
        (target, "network,weight\n# nothing\n", "no networks"),
        (target, "81.2.69.142/31,1,2\n", "line 1: 3 fields"),
        (
            target,
            "81.2.69.142/33\n",
            "line 1: \"81.2.69.142/33\" is not a network",
        ),
        (
            "/simulate?service=gslb.example.com&networks=5",
            NETWORKS,
            "unknown parameter \"networks\"",
        ),
        (
            "/simulate?service=nope.example.com",
            NETWORKS,
            "nope.example.com",
        ),
    ] {
        let (status, body) = post(target, &auth, csv.as_bytes());
        assert_eq!(status, 400, "{target} {csv:?}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        let error = error["error"].as_str().unwrap();
        assert!(error.contains(needle), "{csv:?}: {error}");
    }
    let too_long = (16 * 1024 * 1024 + 1).to_string();
    let mut headers = auth.to_vec();
    headers.push(("Content-Length", &too_long));
    let (status, body) = post(target, &headers, b"");
    assert_eq!(status, 413, "{body}");
    let (status, body) = http(admin, "DELETE", target, &auth, b"");
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("takes GET or POST"), "{body}");
    srv.stop();
}

/// Great-circle km between two (latitude, longitude) points: the test's own haversine.
fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let (dp, dl) = (p2 - p1, (b.1 - a.1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

const LONDON: (f64, f64) = (51.5074, -0.1278);
const DUBLIN: (f64, f64) = (53.35, -6.26);
const FRANKFURT: (f64, f64) = (50.11, 8.68);

/// `meridian explain gslb.example.com CLIENT ARGS --config CFG`: its text, which must succeed.
fn explain(cfg: &Path, client: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["explain", "gslb.example.com", client])
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The `ranked at` line's latitude and longitude, and the whole line.
fn ranked_at(text: &str) -> ((f64, f64), &str) {
    let line = text
        .lines()
        .find(|l| l.starts_with("ranked at "))
        .unwrap_or_else(|| panic!("no ranked-at line:\n{text}"));
    let at = line["ranked at ".len()..]
        .split_once(' ')
        .unwrap()
        .0
        .split_once(',')
        .map(|(a, b)| (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap()))
        .unwrap();
    (at, line)
}

/// The candidates of a text report in order: (pool, score).
fn candidates(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .skip_while(|l| !l.starts_with("candidates"))
        .skip(1)
        .filter_map(|l| l.trim_start().strip_prefix("pool "))
        .map(|l| {
            let pool = l.split_whitespace().next().unwrap().to_string();
            let score = l.split("score").nth(1).unwrap().split_whitespace().next();
            (pool, score.unwrap().parse().unwrap())
        })
        .collect()
}

/// `explain` on a `nearest` service says where the client's class was ranked (for a London
/// client, a place far out in the Atlantic whose ranking London's cell shares) and prints the
/// candidates' distances from the client itself; `latency` likewise prints the estimated round
/// trip from the client. A client without a position is scored from its region's location.
#[test]
fn explain_prints_distances_from_the_clients_own_position() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let text = explain(&cfg, "81.2.69.142", &["--ecs", "32"]);
    let ((lat, lon), line) = ranked_at(&text);
    assert!(
        (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon),
        "{line}"
    );
    assert!(line.contains("from the client's position"), "{line}");
    let c = candidates(&text);
    assert_eq!(c.len(), 6, "{text}");
    assert_eq!(c[0].0, "dublin", "{text}");
    for (pool, at) in [("dublin", DUBLIN), ("frankfurt", FRANKFURT)] {
        let km = c.iter().find(|p| p.0 == pool).unwrap().1;
        let truth = haversine_km(LONDON, at);
        assert!((km - truth).abs() < 100.0, "{pool}: {km} km, truly {truth}");
    }

    // `latency`: the distance model from the client (1 ms per 100 km), nothing measured.
    let latency = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("policy = \"nearest\"", "policy = \"latency\"");
    let latency_cfg = dir.path().join("latency.toml");
    std::fs::write(
        &latency_cfg,
        format!("[node]\nregion = \"europe\"\n{latency}"),
    )
    .unwrap();
    let text = explain(&latency_cfg, "81.2.69.142", &["--ecs", "32"]);
    let c = candidates(&text);
    assert_eq!(c[0].0, "dublin", "{text}");
    let ms = c[0].1;
    let truth = haversine_km(LONDON, DUBLIN) / 100.0;
    assert!((ms - truth).abs() < 1.0, "dublin: {ms} ms, model {truth}");

    // An address the database does not place: its region's (Europe's) location.
    let text = explain(&cfg, "10.1.1.1", &[]);
    let ((lat, lon), line) = ranked_at(&text);
    assert_eq!((lat, lon), (50.1, 8.7), "{line}");
    assert!(line.contains("the client region's location"), "{line}");
    let c = candidates(&text);
    assert_eq!(c[0].0, "frankfurt", "{text}");
    let km = c[0].1;
    let truth = haversine_km((50.1, 8.7), FRANKFURT);
    assert!((km - truth).abs() < 1.0, "{km} km, truly {truth}");
}

/// The admin API's JSON `explain` carries the same client-based distances and scores, with the
/// class's own scores beside them, and the decision's order and shares.
#[test]
fn admin_explain_json_scores_from_the_clients_own_position() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let srv = start_file(&cfg);
    let admin = srv.server().admin_addr().expect("admin API bound");
    let (status, body) = get(
        admin,
        "/explain?name=gslb.example.com&client=81.2.69.142&ecs=32",
    );
    assert_eq!(status, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    let s = &r["service"];
    let position = &s["location"]["position"];
    let from = s["scored_from"].as_array().expect("scored_from");
    assert_eq!(from[0], position["lat"], "{s}");
    assert_eq!(from[1], position["lon"], "{s}");
    assert_eq!(s["ranked_at"].as_array().map(Vec::len), Some(3), "{s}");
    let c = s["candidates"].as_array().unwrap();
    assert_eq!(c[0]["pool"], "dublin", "{s}");
    assert_eq!(c[0]["share"], 1.0, "{s}");
    for (pool, at) in [("dublin", DUBLIN), ("frankfurt", FRANKFURT)] {
        let p = c.iter().find(|p| p["pool"] == pool).unwrap();
        let truth = haversine_km(LONDON, at);
        for key in ["score", "distance_km"] {
            let km = p[key].as_f64().unwrap();
            assert!(
                (km - truth).abs() < 100.0,
                "{pool} {key}: {km}, truly {truth}"
            );
        }
        assert!(p["ranked_score"].as_f64().is_some(), "{p}");
    }
    srv.stop();
}
