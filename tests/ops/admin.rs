//! The admin HTTP API against a real server on loopback: health and readiness, status, explain
//! (also through `meridian explain --server`), reload (good and broken), bearer tokens, drains
//! that withdraw an endpoint from real UDP answers and expire on time, and bad input of every
//! kind answered with a 4xx, never a panic. Requests are written by hand over a plain TCP socket,
//! independent of the server's HTTP stack.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::target::{tcp_accepting, tcp_listening};
use crate::support::*;
use hickory_proto::rr::RecordType;
use meridian::config::Config;
use meridian::health::state::Serving;
use serde_json::Value;

/// One HTTP response.
struct Http {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Http {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_string()
    }
}

/// Send one request (`Connection: close`) and read the whole response.
fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Http {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Http {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get(addr: SocketAddr, target: &str) -> Http {
    http(addr, "GET", target, &[], b"")
}

fn post(addr: SocketAddr, target: &str) -> Http {
    http(addr, "POST", target, &[], b"")
}

fn admin(srv: &TestServer) -> SocketAddr {
    srv.server
        .as_ref()
        .unwrap()
        .admin_addr()
        .expect("admin API bound")
}

/// A failover service svc.example.com over p1 (e1, e2) then p2 (e3), two answers; endpoints
/// run `checks` (a `[checks.alive]` table must come with it) when it is not empty.
fn service_config(admin: &str, checks: &str, extra_p2: &str) -> String {
    let pool_checks = if checks.is_empty() {
        String::new()
    } else {
        "checks = [\"alive\"]\n".to_string()
    };
    let ep = |name: &str, addr: &str| {
        format!(
            "[[pool.endpoint]]\nname = \"{name}\"\naddress = \"{addr}\"\ncheck_address = \"127.0.0.1\"\n"
        )
    };
    format!(
        "{admin}\n{checks}\n{REGIONS}\
         [[pool]]\nname = \"p1\"\nregion = \"r1\"\n{pool_checks}{}{}\
         [[pool]]\nname = \"p2\"\nregion = \"r2\"\n{pool_checks}{}{extra_p2}\
         [[service]]\nname = \"svc.example.com.\"\npolicy = \"failover\"\npools = [\"p1\", \"p2\"]\n\
         answers = 2\nttl = 60\nfailover_ttl = 5\n",
        ep("e1", "192.0.2.1"),
        ep("e2", "192.0.2.2"),
        ep("e3", "198.51.100.1"),
    )
}

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

/// The A records of svc.example.com over UDP, sorted.
fn answers(srv: &TestServer) -> Vec<String> {
    let m = srv.udp(&query("svc.example.com.", RecordType::A, Some(1232)));
    let mut v: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

fn serving(srv: &TestServer, name: &str) -> Option<Serving> {
    srv.server.as_ref().unwrap().monitor().serving(name)
}

#[test]
fn healthz_and_readyz_follow_first_verdicts() {
    // A listener nobody accepts on: the HTTP probe connects, asks, and times out. Its first
    // verdict therefore comes only after the timeout.
    let (blackhole, port) = tcp_listening("127.0.0.1");
    let extra = format!(
        "{ADMIN}[checks.slow]\nkind = \"http\"\nport = {port}\ninterval = \"3s\"\ntimeout = \"1500ms\"\n\
         rise = 1\nfall = 1\njitter = \"10ms\"\n\
         [[pool]]\nname = \"p\"\nchecks = [\"slow\"]\n\
         [[pool.endpoint]]\nname = \"hole\"\naddress = \"192.0.2.9\"\ncheck_address = \"127.0.0.1\"\n"
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let a = admin(&srv);
    let h = get(a, "/healthz");
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
    let r = get(a, "/readyz");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.error().contains("hole"), "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let took = wait_for(Duration::from_secs(6), "readyz 200", || {
        get(a, "/readyz").status == 200
    });
    assert!(
        took >= Duration::from_millis(500),
        "ready too early: {took:?}"
    );
    assert_eq!(get(a, "/healthz").status, 200);
    drop(blackhole);
}

#[test]
fn status_reports_zones_services_endpoints_and_decisions() {
    let port = tcp_accepting();
    let checks = format!(
        "[checks.alive]\nkind = \"tcp\"\nport = {port}\ninterval = \"200ms\"\ntimeout = \"150ms\"\n\
         rise = 1\nfall = 1\njitter = \"10ms\"\n"
    );
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        &service_config(ADMIN, &checks, ""),
    );
    let a = admin(&srv);
    let monitor = srv.server.as_ref().unwrap().monitor().clone();
    wait_for(Duration::from_secs(3), "first verdicts", || monitor.ready());
    // Latency samples need a probe or two after the verdict.
    wait_for(Duration::from_secs(3), "latency samples", || {
        get(a, "/status").json()["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["latency"]["samples"].as_u64().unwrap() >= 2)
    });
    let r = get(a, "/status");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let s = r.json();
    assert_eq!(s["generation"], 1);
    assert_eq!(s["ready"], true);
    assert_eq!(s["reloads"], serde_json::json!({"ok": 0, "failed": 0}));
    let zone = &s["zones"][0];
    assert_eq!(zone["origin"], "example.com.");
    assert_eq!(zone["serial"], 2026112701);
    assert!(zone["records"].as_u64().unwrap() > 10, "{zone}");

    let svc = &s["services"][0];
    assert_eq!(svc["name"], "svc.example.com.");
    assert_eq!(svc["policy"], "failover");
    assert_eq!(
        (svc["ttl"].as_u64(), svc["failover_ttl"].as_u64()),
        (Some(60), Some(5))
    );
    assert_eq!(svc["fallback"]["kind"], "all");
    assert_eq!(svc["pools"][0]["name"], "p1");
    assert_eq!(svc["pools"][0]["region"], "r1");
    assert_eq!(
        svc["pools"][0]["endpoints"],
        serde_json::json!(["e1", "e2"])
    );
    assert_eq!(svc["pools"][1]["endpoints"], serde_json::json!(["e3"]));

    let eps = s["endpoints"].as_array().unwrap();
    let names: Vec<&str> = eps.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["e1", "e2", "e3"]);
    for e in eps {
        assert_eq!(e["health"], "up", "{e}");
        assert_eq!(e["serving"], "up", "{e}");
        assert!(e["since_seconds"].as_f64().unwrap() >= 0.0, "{e}");
        assert!(e["last_detail"].is_string(), "{e}");
        let l = &e["latency"];
        for k in ["p50_ms", "p90_ms", "p99_ms", "mean_ms"] {
            let v = l[k].as_f64().unwrap_or_else(|| panic!("{k}: {e}"));
            assert!((0.0..500.0).contains(&v), "{k}: {e}");
        }
        assert!(l["p50_ms"].as_f64() <= l["p99_ms"].as_f64(), "{e}");
        assert_eq!(l["lost"], 0, "{e}");
        assert_eq!(l["loss_ratio"], 0.0, "{e}");
        assert!(e["override"].is_null(), "{e}");
    }
    assert_eq!(eps[2]["pool"], "p2");

    let d = &s["decisions"][0];
    assert_eq!(d["service"], "svc.example.com.");
    assert_eq!(d["varies_by_region"], false);
    let regions = d["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 2);
    for (r, name) in regions.iter().zip(["r1", "r2"]) {
        assert_eq!(r["client_region"], name);
        assert_eq!(
            (r["ttl"].as_u64(), r["degraded"].as_bool()),
            (Some(60), Some(false)),
            "{r}"
        );
        assert_eq!(r["tier"], "primary");
        assert_eq!(r["answer"], "endpoints");
        assert_eq!(r["pools"][0]["pool"], "p1");
        assert_eq!(r["pools"][0]["share"], 1.0);
        assert_eq!(r["pools"][0]["endpoints"], serde_json::json!(["e1", "e2"]));
        assert_eq!(r["pools"][1]["pool"], "p2");
        assert_eq!(r["pools"][1]["share"], 0.0);
    }

    // A drain shows up everywhere: override, serving, and the decision.
    let r = post(a, "/endpoints/e1/drain?expires=10m");
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["override"], "drain");
    assert_eq!(j["status"]["serving"], "drained");
    wait_for(Duration::from_secs(2), "drain in the decision", || {
        get(a, "/status").json()["decisions"][0]["regions"][0]["degraded"] == true
    });
    let s = get(a, "/status").json();
    let e1 = &s["endpoints"][0];
    assert_eq!(e1["serving"], "drained");
    assert_eq!(e1["health"], "up", "still probed and healthy");
    assert_eq!(e1["override"]["kind"], "drain");
    let left = e1["override"]["expires_in_seconds"].as_f64().unwrap();
    assert!((590.0..=600.0).contains(&left), "{e1}");
    let r1 = &s["decisions"][0]["regions"][0];
    assert_eq!(
        (r1["ttl"].as_u64(), r1["withdrawn"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(r1["pools"][0]["endpoints"], serde_json::json!(["e2"]));
}

#[test]
fn explain_serves_the_live_report_as_json_and_text() {
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        &service_config(ADMIN, "", ""),
    );
    let a = admin(&srv);
    let r = get(a, "/explain?name=svc.example.com&client=192.0.2.99");
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["name"], "svc.example.com.");
    assert_eq!(j["client"], "192.0.2.99");
    assert_eq!(j["qtype"], "A");
    let svc = &j["service"];
    assert_eq!(svc["policy"], "failover");
    assert_eq!(svc["tier"], "primary");
    assert_eq!(
        (svc["ttl"].as_u64(), svc["degraded"].as_bool()),
        (Some(60), Some(false))
    );
    assert_eq!(svc["location"]["region"], "r1");
    assert_eq!(svc["location"]["source"], "default");
    let c = &svc["candidates"];
    assert_eq!(
        (c[0]["pool"].as_str(), c[0]["share"].as_f64()),
        (Some("p1"), Some(1.0))
    );
    assert_eq!(c[0]["reason"]["kind"], "configured");
    assert_eq!(c[0]["endpoints"][0]["name"], "e1");
    assert_eq!(c[0]["endpoints"][0]["ipv4"], "192.0.2.1");
    assert_eq!(c[0]["endpoints"][0]["serving"], "up");
    assert_eq!(c[1]["pool"], "p2");
    let ans = &j["answer"];
    assert_eq!(ans["authoritative"], true);
    let mut data: Vec<&str> = ans["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(
                (r["type"].as_str(), r["ttl"].as_u64()),
                (Some("A"), Some(60))
            );
            r["data"].as_str().unwrap()
        })
        .collect();
    data.sort();
    assert_eq!(data, ["192.0.2.1", "192.0.2.2"]);

    // Live health: a drain is in the next report (the CLI path, from config, cannot know it).
    assert_eq!(post(a, "/endpoints/e1/drain").status, 200);
    wait_for(Duration::from_secs(2), "drained in explain", || {
        let j = get(a, "/explain?name=svc.example.com.&client=192.0.2.99").json();
        j["service"]["candidates"][0]["endpoints"][0]["serving"] == "drained"
            && j["answer"]["records"].as_array().unwrap().len() == 1
    });

    // The text form is what `meridian explain` prints; `--server` fetches it.
    let t = get(
        a,
        "/explain?name=svc.example.com&client=192.0.2.99&format=text",
    );
    assert_eq!(t.status, 200);
    assert!(t.header("content-type").unwrap().starts_with("text/plain"));
    assert!(t.body.contains("candidates (rank order):"), "{}", t.body);
    assert!(t.body.contains("drained"), "{}", t.body);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args([
            "explain",
            "--server",
            &format!("http://{a}"),
            "svc.example.com",
            "192.0.2.99",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), t.body);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args([
            "explain",
            "--server",
            &format!("http://{a}"),
            "svc.example.com",
            "192.0.2.99",
            "--ecs",
            "40",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("400"),
        "{out:?}"
    );

    // A static name: no service part, the zone's answer.
    let j = get(
        a,
        "/explain?name=www.example.com&client=2001:db8::1&qtype=aaaa&ecs=48",
    )
    .json();
    assert!(j["service"].is_null(), "{j}");
    assert_eq!(j["qtype"], "AAAA");
    assert_eq!(j["ecs_prefix"], 48);
    assert_eq!(j["answer"]["records"][0]["data"], "2001:db8::10");
    assert_eq!(j["answer"]["ecs_scope"], 0);
}

#[test]
fn reload_applies_a_good_edit_and_refuses_a_broken_one() {
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        &service_config(ADMIN, "", ""),
    );
    let a = admin(&srv);
    // Keep the [dns] part and zone the helper wrote; replace the rest.
    let original = std::fs::read_to_string(&srv.config_path).unwrap();
    let head = &original[..original.find("[admin]").unwrap()];
    let zone_part = &original[original.find("[[zone]]").unwrap()..];
    let e4 = "[[pool.endpoint]]\nname = \"e4\"\naddress = \"198.51.100.4\"\n";
    let good = format!("{head}{}{zone_part}", service_config(ADMIN, "", e4));
    std::fs::write(&srv.config_path, &good).unwrap();
    let r = post(a, "/reload");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["generation"], 2);
    let s = get(a, "/status").json();
    assert_eq!(s["generation"], 2);
    assert_eq!(s["reloads"], serde_json::json!({"ok": 1, "failed": 0}));
    let names: Vec<&str> = s["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["e1", "e2", "e3", "e4"]);
    assert_eq!(
        s["services"][0]["pools"][1]["endpoints"],
        serde_json::json!(["e3", "e4"])
    );

    // Broken: a pool in an undefined region and a service with an unknown policy.
    let broken = good.clone()
        + "[[pool]]\nname = \"p9\"\nregion = \"nowhere\"\n"
        + "[[service]]\nname = \"bad.example.com.\"\npolicy = \"sideways\"\npools = [\"p1\"]\n";
    std::fs::write(&srv.config_path, &broken).unwrap();
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let r = post(a, "/reload");
    assert_eq!(r.status, 422, "{}", r.body);
    let j = r.json();
    assert_eq!(j["generation"], 2);
    let errors: Vec<&str> = j["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    let path = srv.config_path.display().to_string();
    let region_at = format!("{path}:{}:10: ", line_of("\"nowhere\""));
    let policy_at = format!("{path}:{}:10: ", line_of("\"sideways\""));
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&region_at) && e.contains("nowhere")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&policy_at) && e.contains("sideways")),
        "{errors:?}"
    );
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("generation 2 keeps serving")
    );
    // Nothing changed.
    let s2 = get(a, "/status").json();
    assert_eq!(s2["generation"], 2);
    assert_eq!(s2["reloads"], serde_json::json!({"ok": 1, "failed": 1}));
    assert_eq!(s2["services"], s["services"]);
    assert_eq!(answers(&srv), ["192.0.2.1", "192.0.2.2"]);
}

#[test]
fn mutating_calls_need_the_token_when_one_is_configured() {
    let cfg = service_config(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret-token\"\n",
        "",
        "",
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &cfg);
    let a = admin(&srv);
    for target in ["/reload", "/endpoints/e1/drain"] {
        let r = post(a, target);
        assert_eq!(r.status, 401, "{target}: {}", r.body);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert!(r.error().contains("bearer token"), "{}", r.body);
        for bad in [
            "Bearer wrong",
            "Bearer s3cret-tokeN",
            "Bearer s3cret-token2",
            "Basic czNjcmV0",
            "s3cret-token",
        ] {
            let r = http(a, "POST", target, &[("Authorization", bad)], b"");
            assert_eq!(r.status, 401, "{target} with {bad:?}");
        }
    }
    assert_eq!(
        serving(&srv, "e1"),
        Some(Serving::Up),
        "refused calls changed nothing"
    );
    let auth = [("Authorization", "Bearer s3cret-token")];
    let r = http(a, "POST", "/endpoints/e1/drain", &auth, b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(serving(&srv, "e1"), Some(Serving::Drained));
    let r = http(a, "POST", "/reload", &auth, b"");
    assert_eq!((r.status, r.json()["generation"].as_u64()), (200, Some(2)));
    // GETs stay open.
    for target in [
        "/healthz",
        "/status",
        "/metrics",
        "/explain?name=svc.example.com&client=192.0.2.1",
    ] {
        assert_eq!(get(a, target).status, 200, "{target}");
    }
}

#[test]
fn token_from_the_environment() {
    // SAFETY: a variable no other test reads or writes.
    unsafe { std::env::set_var("MERIDIAN_ADMIN_TEST_TOKEN", "from-env") };
    let cfg = service_config(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"MERIDIAN_ADMIN_TEST_TOKEN\"\n",
        "",
        "",
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &cfg);
    let a = admin(&srv);
    assert_eq!(post(a, "/endpoints/e2/drain").status, 401);
    let r = http(
        a,
        "POST",
        "/endpoints/e2/drain",
        &[("Authorization", "Bearer from-env")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn drain_withdraws_from_answers_and_expiry_restores() {
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        &service_config(ADMIN, "", ""),
    );
    let a = admin(&srv);
    let both = ["192.0.2.1", "192.0.2.2"];
    assert_eq!(answers(&srv), both);

    let r = post(a, "/endpoints/e1/drain");
    assert_eq!(r.status, 200, "{}", r.body);
    let took = wait_for(Duration::from_secs(1), "e1 withdrawn", || {
        answers(&srv) == ["192.0.2.2"]
    });
    assert!(took < Duration::from_millis(500), "{took:?}");
    let r = post(a, "/endpoints/e1/undrain");
    assert_eq!(
        (r.status, r.json()["override"].is_null()),
        (200, true),
        "{}",
        r.body
    );
    wait_for(Duration::from_secs(1), "e1 back", || answers(&srv) == both);

    // force-down withdraws too; clear restores.
    assert_eq!(post(a, "/endpoints/e2/force-down").status, 200);
    wait_for(Duration::from_secs(1), "e2 forced down", || {
        answers(&srv) == ["192.0.2.1"]
    });
    assert_eq!(post(a, "/endpoints/e2/clear").status, 200);
    wait_for(Duration::from_secs(1), "e2 back", || answers(&srv) == both);

    // A drain with an expiry: withdrawn at once, back right after it expires — well before the
    // 5 s periodic rebuild, because the expiry wakes the table rebuild.
    let t0 = Instant::now();
    let r = post(a, "/endpoints/e1/drain?expires=1s");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["expires_in_seconds"], 1.0);
    wait_for(Duration::from_secs(1), "e1 withdrawn", || {
        answers(&srv) == ["192.0.2.2"]
    });
    wait_for(Duration::from_secs(3), "e1 restored", || {
        answers(&srv) == both
    });
    let restored = t0.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_millis(2000)).contains(&restored),
        "restored after {restored:?}"
    );
    assert_eq!(serving(&srv, "e1"), Some(Serving::Up));
    let s = get(a, "/status").json();
    assert!(
        s["endpoints"][0]["override"].is_null(),
        "{}",
        s["endpoints"][0]
    );
}

#[test]
fn public_listen_without_token_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    let text = "[dns]\nlisten = [\"127.0.0.1:0\"]\n\n[admin]\nlisten = \"0.0.0.0:9353\"\n";
    let e = Config::parse(&path, text).unwrap_err().to_string();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with(&format!("{}:5:10: admin.listen: ", path.display())),
        "{e}"
    );
    assert!(
        e.contains("never an open admin API on a public address"),
        "{e}"
    );
    let e = Config::parse(&path, &text.replace("0.0.0.0", "[::]"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a loopback address"), "{e}");
    // With a token it is allowed; loopback needs none.
    let ok = Config::parse(&path, &format!("{text}token = \"t\"\n")).unwrap();
    assert_eq!(ok.admin.unwrap().token.as_deref(), Some("t"));
    let ok = Config::parse(&path, &text.replace("0.0.0.0", "127.0.0.1")).unwrap();
    assert_eq!(ok.admin.unwrap().token, None);
    // Other mistakes name their place too.
    let bad = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"a\"\ntoken_env = \"B\"\nport = 1\n";
    let e = Config::parse(Path::new("x.toml"), bad)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("x.toml:5:1: unknown field `port`"), "{e}");
    let bad = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"a\"\ntoken_env = \"B\"\n";
    let e = Config::parse(Path::new("x.toml"), bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("x.toml:4:13: admin.token_env: set either"),
        "{e}"
    );
    let bad = "[admin]\nlisten = \"somewhere\"\n";
    let e = Config::parse(Path::new("x.toml"), bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("x.toml:2:10: admin.listen: \"somewhere\""),
        "{e}"
    );
    // No [admin] table: no listener.
    assert!(Config::parse(&path, "[dns]\n").unwrap().admin.is_none());
}

#[test]
fn bad_requests_get_4xx_and_never_a_panic() {
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        &service_config(ADMIN, "", ""),
    );
    let a = admin(&srv);
    // method, target, status, and text the error message must contain.
    let cases = r#"
        POST   /endpoints/nope/drain                                          404 no endpoint "nope"
        POST   /endpoints/e1/explode                                          404 no action
        GET    /nowhere                                                       404 no route
        GET    /endpoints/e1                                                  404 no route
        GET    /reload                                                        405 takes POST
        POST   /status                                                        405 takes GET
        DELETE /endpoints/e1/drain                                            405 takes POST
        POST   /endpoints/e1/drain?expires=soon                               400 expires
        POST   /endpoints/e1/drain?expires=0s                                 400 above 0
        POST   /endpoints/e1/drain?expires=-5s                                400 expires
        POST   /endpoints/e1/drain?expires=99999999999999999999999999h        400 expires
        POST   /endpoints/e1/drain?expires=400d                               400 expires
        POST   /endpoints/e1/drain?expires=10000h                             400 366 days
        POST   /endpoints/e1/clear?expires=1m                                 400 no expiry
        POST   /endpoints/e1/drain?for=1m                                     400 unknown parameter
        POST   /endpoints/e1/drain?expires=1m&expires=2m                      400 twice
        POST   /endpoints/%ff/drain                                           400 UTF-8
        POST   /reload?now=1                                                  400 unknown parameter
        GET    /explain                                                       400 name is required
        GET    /explain?name=svc.example.com                                  400 client is required
        GET    /explain?name=svc.example.com&client=nope                      400 not an IP address
        GET    /explain?name=svc.example.com&client=192.0.2.1&ecs=33          400 prefix length
        GET    /explain?name=svc.example.com&client=::1&ecs=129               400 prefix length
        GET    /explain?name=svc.example.com&client=192.0.2.1&ecs=-1          400 prefix length
        GET    /explain?name=svc.example.com&client=192.0.2.1&qtype=BOGUS     400 query type
        GET    /explain?name=svc.example.com&client=192.0.2.1&format=xml      400 format
        GET    /explain?name=svc.example.com&client=192.0.2.1&x=1             400 unknown parameter
        GET    /explain?name=a..b&client=192.0.2.1                            400
        GET    /explain?name=%zz&client=192.0.2.1                             400 percent
        GET    /status?verbose=1                                              400 takes none
    "#;
    for case in cases.lines().filter(|l| !l.trim().is_empty()) {
        let mut w = case.split_whitespace();
        let (method, target) = (w.next().unwrap(), w.next().unwrap());
        let status: u16 = w.next().unwrap().parse().unwrap();
        let needle = w.collect::<Vec<_>>().join(" ");
        let r = http(a, method, target, &[], b"");
        assert_eq!(r.status, status, "{method} {target}: {}", r.body);
        assert!(r.error().contains(&needle), "{method} {target}: {}", r.body);
    }
    let long = format!("/explain?name={}&client=192.0.2.1", "a".repeat(300));
    assert_eq!(get(a, &long).status, 400);
    // An oversized body.
    let r = http(
        a,
        "POST",
        "/endpoints/e1/drain",
        &[],
        &vec![b'x'; 70 * 1024],
    );
    assert_eq!(r.status, 413, "{}", r.body);
    // Garbage instead of HTTP: the connection is closed (or answered 400), the server lives on.
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"\x00\x01\x02 not http at all\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        buf.is_empty() || buf.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    // Nothing was changed by any of it, and everything still answers.
    assert_eq!(serving(&srv, "e1"), Some(Serving::Up));
    assert_eq!(get(a, "/healthz").status, 200);
    assert_eq!(get(a, "/status").json()["generation"], 1);
    let m = get(a, "/metrics");
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
}

#[test]
fn connections_over_the_cap_are_closed_and_shutdown_ends_the_listener() {
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        &service_config(ADMIN, "", ""),
    );
    let a = admin(&srv);
    // Hold the cap's worth of idle connections open; the next one is closed at once.
    let held: Vec<TcpStream> = (0..meridian::admin::MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(a).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(a).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = Vec::new();
    let _ = extra.read_to_end(&mut buf);
    assert!(
        buf.is_empty(),
        "over the cap: {:?}",
        String::from_utf8_lossy(&buf)
    );
    drop(held);
    wait_for(Duration::from_secs(3), "a free slot", || {
        TcpStream::connect(a).is_ok_and(|mut s| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut b = Vec::new();
            let _ = s.read_to_end(&mut b);
            b.starts_with(b"HTTP/1.1 200")
        })
    });
    srv.stop();
    assert!(
        TcpStream::connect(a).is_err(),
        "admin listener closed on shutdown"
    );
}
