//! The fleet's transport against real servers on loopback: instances pull each other's
//! observations over real HTTP (serving states follow real probe targets, a stopped peer ages
//! out and comes back when restarted on its port), every kind of bad peer input is refused,
//! counted and never merged (fake peers on raw sockets, a real peer with another token),
//! `GET /fleet/observations` needs the fleet token when one is set, and `[fleet]` mistakes name
//! their place.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::fleet_kit::{LIMIT, free_port, get};
use crate::support::target::{Targets, http_check};
use crate::support::*;
use meridian::config::Config;
use meridian::config::fleet::Quorum;
use meridian::fleet::{Fleet, PeerView, PullResult};
use meridian::health::state::Serving;
use serde_json::{Value, json};

/// Pull every 100 ms; data counts for 500 ms.
const FLEET_TIMING: &str = "interval = \"100ms\"\nmax_age = \"500ms\"\n";

/// An instance's configuration file in `dir`: node `name` in region `region`, admin on `admin`
/// (`127.0.0.1:0` for any port), pulling `peers`, with endpoints web-a and web-b probed over HTTP
/// on `ports`; `fleet` goes into `[fleet]` (timing, token).
fn write_config(
    dir: &Path,
    name: &str,
    region: &str,
    admin: &str,
    peers: &[String],
    ports: (u16, u16),
    fleet: &str,
) -> PathBuf {
    std::fs::write(dir.join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let peers: Vec<String> = peers.iter().map(|p| format!("{p:?}")).collect();
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\
         [[zone]]\norigin = \"example.com.\"\nfile = \"example.com.zone\"\n\
         [node]\nname = \"{name}\"\nregion = \"{region}\"\n\
         [admin]\nlisten = \"{admin}\"\n\
         {REGIONS}{}{}\
         [[pool]]\nname = \"a\"\nregion = \"r1\"\nchecks = [\"a\"]\n\
         [[pool.endpoint]]\nname = \"web-a\"\naddress = \"192.0.2.1\"\ncheck_address = \"127.0.0.1\"\n\
         [[pool]]\nname = \"b\"\nregion = \"r2\"\nchecks = [\"b\"]\n\
         [[pool.endpoint]]\nname = \"web-b\"\naddress = \"192.0.2.2\"\ncheck_address = \"127.0.0.1\"\n\
         [fleet]\npeers = [{}]\n{fleet}\n",
        http_check("a", ports.0, 1, 1),
        http_check("b", ports.1, 1, 1),
        peers.join(", "),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn admin_url(srv: &TestServer) -> String {
    format!("http://{}", srv.server().admin_addr().unwrap())
}

fn fleet(srv: &TestServer) -> Fleet {
    srv.server().fleet().clone()
}

/// The data `srv` keeps from the peer at `url`, if any.
fn view_of(srv: &TestServer, url: &str) -> Option<Arc<PeerView>> {
    fleet(srv)
        .peers()
        .peers
        .iter()
        .find(|p| p.url == url)
        .cloned()
}

/// What `srv`'s peer at `url` says of `endpoint`, when its data is fresh.
fn peer_says(srv: &TestServer, url: &str, endpoint: &str) -> Option<Serving> {
    let views = fleet(srv).peers();
    let v = views.peers.iter().find(|p| p.url == url)?;
    v.fresh(meridian::monitor::now(), views.max_age)
        .then(|| v.endpoints.get(endpoint).map(|o| o.serving))?
}

fn is_fresh(srv: &TestServer, url: &str) -> bool {
    fleet(srv).status().iter().any(|p| p.url == url && p.fresh)
}

/// Load `path` and apply it to the running `srv` (as a reload does).
fn reload(srv: &TestServer, path: &Path) {
    let (config, snap) = meridian::snapshot::load(path).unwrap_or_else(|e| panic!("{e}"));
    srv.server().reload(&config, snap);
}

#[test]
fn instances_pull_each_others_observations_and_a_stopped_peer_ages_out() {
    let targets = Targets::new();
    let mut web_a = targets.start(0);
    let web_b = targets.start(0);
    let ports = (web_a.port, web_b.port);
    let dir = tempfile::tempdir().unwrap();
    // eu-1 first, pulling nobody; us-1 pulls eu-1; then eu-1 learns us-1's port by a reload.
    // One fleet token for both.
    let timing = format!("{FLEET_TIMING}token = \"fleet-secret\"\n");
    let eu_path = write_config(dir.path(), "eu-1", "r1", "127.0.0.1:0", &[], ports, &timing);
    let eu = start_file(&eu_path);
    let eu_url = admin_url(&eu);
    let us_port = free_port();
    let us_admin = format!("127.0.0.1:{us_port}");
    let us_url = format!("http://{us_admin}");
    let us_path = write_config(
        dir.path(),
        "us-1",
        "r2",
        &us_admin,
        std::slice::from_ref(&eu_url),
        ports,
        &timing,
    );
    let us = start_file(&us_path);
    let eu_admin = eu.server().admin_addr().unwrap().to_string();
    write_config(
        dir.path(),
        "eu-1",
        "r1",
        &eu_admin,
        std::slice::from_ref(&us_url),
        ports,
        &timing,
    );
    reload(&eu, &eu_path);

    // Each holds the other's observations of every endpoint, both up.
    for (srv, peer) in [(&eu, &us_url), (&us, &eu_url)] {
        wait_for(LIMIT, "each endpoint up as the peer sees it", || {
            ["web-a", "web-b"]
                .iter()
                .all(|e| peer_says(srv, peer, e) == Some(Serving::Up))
        });
    }
    // Latency travels too (once a probe answered: serving is up from the start).
    wait_for(LIMIT, "us-1's latency of web-a at eu-1", || {
        view_of(&eu, &us_url).is_some_and(|v| v.endpoints["web-a"].samples > 0)
    });
    let v = view_of(&eu, &us_url).unwrap();
    assert_eq!((v.node.as_str(), v.vantage.as_str()), ("us-1", "r2"));
    assert_eq!(v.endpoints.len(), 2);
    assert!(v.endpoints["web-a"].p50.is_some());
    assert!(v.endpoints["web-a"].histogram.is_some());

    // A target dies: each instance's probes see it, and so does its peer, within a few
    // intervals; subscribers are told.
    let changes = fleet(&eu).subscribe();
    let before = *changes.borrow();
    targets.kill(&mut web_a);
    let took = wait_for(LIMIT, "us-1 reports web-a down to eu-1", || {
        peer_says(&eu, &us_url, "web-a") == Some(Serving::Down)
    });
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(peer_says(&eu, &us_url, "web-b"), Some(Serving::Up));
    // The view is stored just before the version is bumped: a reader may see it first.
    wait_for(LIMIT, "subscribers told of the change", || {
        *changes.borrow() > before
    });

    // /status shows the peer.
    let (code, body) = get(eu.server().admin_addr().unwrap(), "/status", None);
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&body).unwrap();
    let peer = &status["fleet"]["peers"][0];
    assert_eq!(peer["url"], us_url.as_str(), "{peer}");
    assert_eq!(peer["node"], "us-1");
    assert_eq!(peer["vantage"], "r2");
    assert_eq!(peer["fresh"], true);
    assert_eq!(peer["last_result"], "ok");
    assert!(peer["pulls"]["ok"].as_u64().unwrap() >= 1, "{peer}");
    assert_eq!(status["fleet"]["quorum"], "majority");

    // us-1 stops: eu-1 keeps its data but it goes stale after max_age, and subscribers hear.
    let kept = view_of(&eu, &us_url).unwrap();
    let version = *changes.borrow();
    us.stop();
    wait_for(LIMIT, "us-1's data stale", || !is_fresh(&eu, &us_url));
    let stale = view_of(&eu, &us_url).expect("the data is kept, stale");
    assert!(!stale.fresh(meridian::monitor::now(), Duration::from_millis(500)));
    assert!(stale.sent_unix_ms >= kept.sent_unix_ms);
    wait_for(LIMIT, "subscribers told of the stale peer", || {
        *changes.borrow() > version
    });
    assert!(fleet(&eu).pulls(&us_url, PullResult::Unreachable) >= 1);

    // Restarted on the same port, it is fresh again.
    let us = start_file(&us_path);
    assert_eq!(admin_url(&us), us_url);
    wait_for(LIMIT, "us-1 fresh again", || is_fresh(&eu, &us_url));
    wait_for(LIMIT, "us-1 sees web-a down again", || {
        peer_says(&eu, &us_url, "web-a") == Some(Serving::Down)
    });
    drop(us);
    drop(eu);
}

/// A fake peer on loopback: every request is answered with `respond()`'s bytes (a whole HTTP
/// response, or a head whose body `stream` bytes then follow), on a thread of its own.
fn fake_peer(respond: impl Fn() -> Vec<u8> + Send + 'static, stream: usize) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = s.write_all(&respond());
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < stream && s.write_all(&chunk).is_ok() {
                sent += chunk.len();
            }
        }
    });
    url
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A valid document from node "fake" (what `edit` leaves of it), as an HTTP 200.
fn document(edit: impl Fn(&mut Value) + Send + 'static) -> impl Fn() -> Vec<u8> + Send + 'static {
    move || {
        let mut doc = json!({
            "version": 1, "node": "fake", "vantage": "r2", "sent_unix_ms": now_ms(),
            "endpoints": [{
                "name": "web-a", "serving": "up", "health": "up", "since_unix_ms": 1,
                "override": null, "p50_ms": 1.5, "p90_ms": 2.0, "samples": 3, "lost": 0,
                "histogram": null
            }]
        });
        edit(&mut doc);
        ok(&doc.to_string())
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn bad_peer_input_is_refused_counted_and_never_merged() {
    let targets = Targets::new();
    let (web_a, web_b) = (targets.start(0), targets.start(0));
    let ports = (web_a.port, web_b.port);
    let dir = tempfile::tempdir().unwrap();
    // A real peer whose fleet token differs.
    let other = start_file(&write_config(
        dir.path(),
        "other",
        "r2",
        "127.0.0.1:0",
        &[],
        ports,
        &format!("{FLEET_TIMING}token = \"not-ours\"\n"),
    ));
    let garbage = fake_peer(|| ok("<html>surely not JSON</html>"), 0);
    let shape = fake_peer(|| ok(r#"{"version": 1, "node": "fake"}"#), 0);
    // Over the cap: said so by Content-Length, and not said, streamed until the reader stops.
    let declared = fake_peer(
        || b"HTTP/1.1 200 OK\r\ncontent-length: 9437184\r\nconnection: close\r\n\r\n".to_vec(),
        0,
    );
    let huge = fake_peer(
        || {
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
                .to_vec()
        },
        9 * 1024 * 1024,
    );
    let past = fake_peer(
        document(|d| d["sent_unix_ms"] = json!(now_ms() - 60_000)),
        0,
    );
    let future = fake_peer(
        document(|d| d["sent_unix_ms"] = json!(now_ms() + 60_000)),
        0,
    );
    let version = fake_peer(document(|d| d["version"] = json!(2)), 0);
    let own = fake_peer(document(|d| d["node"] = json!("eu-1")), 0);
    let histogram = fake_peer(
        document(|d| d["endpoints"][0]["histogram"] = json!("HISTv2AAAA==")),
        0,
    );
    let error = fake_peer(
        || b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n".to_vec(),
        0,
    );
    // Good twice, then stamped just before the document kept (and later beyond max_age) saying
    // "down": what was accepted stays as it was.
    let served = Arc::new(AtomicU64::new(0));
    let good_sent = Arc::new(AtomicU64::new(0));
    let (turns, good) = (Arc::clone(&served), Arc::clone(&good_sent));
    let turning = fake_peer(
        move || {
            let n = turns.fetch_add(1, Ordering::SeqCst);
            let sent = if n < 2 {
                now_ms()
            } else {
                good.load(Ordering::SeqCst) - 1
            };
            if n < 2 {
                good.store(sent, Ordering::SeqCst);
            }
            document(move |d| {
                d["sent_unix_ms"] = json!(sent);
                d["endpoints"][0]["serving"] = json!(if n < 2 { "up" } else { "down" });
            })()
        },
        0,
    );
    let bad = [
        (&garbage, PullResult::Garbage),
        (&shape, PullResult::Garbage),
        (&declared, PullResult::TooLarge),
        (&huge, PullResult::TooLarge),
        (&past, PullResult::Stale),
        (&future, PullResult::Future),
        (&version, PullResult::WrongVersion),
        (&own, PullResult::OwnNode),
        (&histogram, PullResult::Garbage),
        (&error, PullResult::HttpError),
    ];
    let other_url = admin_url(&other);
    let mut peers: Vec<String> = bad.iter().map(|(u, _)| (*u).clone()).collect();
    peers.extend([other_url.clone(), turning.clone()]);
    let eu = start_file(&write_config(
        dir.path(),
        "eu-1",
        "r1",
        "127.0.0.1:0",
        &peers,
        ports,
        // Slower than elsewhere: reading 8 MiB must fit in a pull's time (its interval).
        "interval = \"1s\"\nmax_age = \"2s\"\ntoken = \"ours\"\n",
    ));
    let f = fleet(&eu);
    for (url, result) in bad
        .iter()
        .map(|(u, r)| ((*u).clone(), *r))
        .chain([(other_url.clone(), PullResult::Unauthorized)])
    {
        wait_for(LIMIT, &format!("{url} refused as {result:?}"), || {
            f.pulls(&url, result) >= 2
        });
        assert_eq!(f.pulls(&url, PullResult::Ok), 0, "{url}");
        assert!(view_of(&eu, &url).is_none(), "{url}: nothing merged");
    }
    let text = meridian::metrics::render();
    let series = format!("meridian_fleet_pulls_total{{peer=\"{garbage}\",result=\"garbage\"}}");
    assert!(
        exposition::sample(&text, &series) >= 2.0,
        "{series} in\n{text}"
    );

    // The turning peer: accepted, then refused as not newer than what is kept (and then as
    // older than max_age); the kept data is the accepted one.
    wait_for(LIMIT, "the turning peer refused as not newer", || {
        f.status()
            .iter()
            .any(|p| p.url == turning && p.last_detail.contains("not after the document kept"))
    });
    wait_for(LIMIT, "the turning peer refused twice", || {
        f.pulls(&turning, PullResult::Stale) >= 2
    });
    assert_eq!(f.pulls(&turning, PullResult::Ok), 2);
    let kept = view_of(&eu, &turning).unwrap();
    let first_sent = good_sent.load(Ordering::SeqCst);
    assert_eq!(kept.sent_unix_ms, first_sent);
    assert_eq!(kept.endpoints["web-a"].serving, Serving::Up);
    // ... and it ages out by itself.
    wait_for(LIMIT, "the turning peer's data stale", || {
        !is_fresh(&eu, &turning)
    });
    assert_eq!(view_of(&eu, &turning).unwrap().sent_unix_ms, first_sent);
    drop(eu);
    drop(other);
}

#[test]
fn observations_need_the_fleet_token_when_one_is_set() {
    let targets = Targets::new();
    let (web_a, web_b) = (targets.start(0), targets.start(0));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "eu-1",
        "r1",
        "127.0.0.1:0",
        &[],
        (web_a.port, web_b.port),
        &format!("{FLEET_TIMING}token = \"s3cret\"\n"),
    );
    let srv = start_file(&path);
    let admin = srv.server().admin_addr().unwrap();
    let (code, _) = get(admin, "/fleet/observations", None);
    assert_eq!(code, 401);
    let (code, _) = get(admin, "/fleet/observations", Some("wrong"));
    assert_eq!(code, 401);
    // The admin API's other GETs stay open.
    assert_eq!(get(admin, "/status", None).0, 200);
    wait_for(LIMIT, "first verdicts", || srv.server().monitor().ready());
    let (code, body) = get(admin, "/fleet/observations", Some("s3cret"));
    assert_eq!(code, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["node"], "eu-1");
    assert_eq!(doc["vantage"], "r1");
    let sent = doc["sent_unix_ms"].as_u64().unwrap();
    assert!(sent.abs_diff(now_ms()) < 5_000, "{sent}");
    let names: Vec<&str> = doc["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-a", "web-b"]);
    assert_eq!(doc["endpoints"][0]["serving"], "up");
    assert_eq!(doc["endpoints"][0]["health"], "up");

    // A drain travels with when it was set; the document passes the puller's own check.
    srv.server()
        .monitor()
        .set_override(
            "web-b",
            Some(meridian::health::state::OverrideKind::Drain),
            None,
        )
        .unwrap();
    let (_, body) = get(admin, "/fleet/observations", Some("s3cret"));
    let doc: Value = serde_json::from_str(&body).unwrap();
    let b = &doc["endpoints"][1];
    assert_eq!(b["serving"], "drained", "{b}");
    assert_eq!(b["override"]["kind"], "drain");
    assert!(
        b["override"]["set_unix_ms"]
            .as_u64()
            .unwrap()
            .abs_diff(now_ms())
            < 5_000
    );
    assert!(b["override"]["expires_unix_ms"].is_null());
    let checked =
        meridian::fleet::wire::check(body.as_bytes(), "us-1", Duration::from_secs(5), now_ms())
            .unwrap();
    assert!(
        checked.endpoints["web-a"].histogram.is_some(),
        "the window's RTTs"
    );

    // Without [fleet] there is nothing to serve.
    let plain = start(
        &[("example.com.", EXAMPLE_ZONE)],
        "[admin]\nlisten = \"127.0.0.1:0\"\n",
    );
    let (code, _) = get(
        plain.server().admin_addr().unwrap(),
        "/fleet/observations",
        None,
    );
    assert_eq!(code, 404);
}

#[test]
fn fleet_config_mistakes_name_their_place() {
    let path = Path::new("m.toml");
    let base = format!("{REGIONS}[node]\nname = \"eu-1\"\nregion = \"r1\"\n");
    let parse = |fleet: &str| Config::parse(path, &format!("{base}[fleet]\n{fleet}"));
    // [fleet] is on line 10 (after six lines of regions and three of [node]).
    let e = parse("peers = [\"http://127.0.0.1:9354\", \"ftp://x:1\", \"http://127.0.0.1:9354/\"]\nquorum = 0\n")
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0]
            .starts_with("m.toml:11:35: fleet.peers[1]: \"ftp://x:1\" is not an http or https URL"),
        "{e}"
    );
    assert!(
        lines[1].starts_with("m.toml:11:48: fleet.peers[2]: http://127.0.0.1:9354 is listed twice"),
        "{e}"
    );
    assert!(
        lines[2].starts_with("m.toml:12:10: fleet.quorum: 0 is not a number of vantages"),
        "{e}"
    );
    let e = parse("quorum = \"most\"\ninterval = \"2s\"\nmax_age = \"1s\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.toml:11:10: fleet.quorum: \"most\" is neither"),
        "{e}"
    );
    assert!(
        e.contains("m.toml:13:11: fleet.max_age: 1s is shorter than fleet.interval"),
        "{e}"
    );
    let e = parse("peers = [\"http://ns1.example.net\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.toml:11:10: fleet.peers[0]: \"http://ns1.example.net\" has no port"),
        "{e}"
    );
    // node.region is required with [fleet]; the error points at the table.
    let e = Config::parse(path, "[node]\nname = \"x\"\n\n[fleet]\npeers = []\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("m.toml:4:1: fleet: node.region is required"),
        "{e}"
    );
    // Good settings compile, quorum and defaults included.
    let c = parse("peers = [\"https://ns3.example.net:9353/\"]\nquorum = 2\n").unwrap();
    let f = c.fleet.unwrap();
    assert_eq!(f.peers, ["https://ns3.example.net:9353"]);
    assert_eq!(f.quorum, Quorum::AtLeast(2.try_into().unwrap()));
    assert_eq!(
        (f.interval, f.max_age),
        (Duration::from_secs(2), Duration::from_secs(10))
    );
    assert_eq!((f.node.as_str(), f.vantage.as_str()), ("eu-1", "r1"));
    assert!(Config::parse(path, "[dns]\n").unwrap().fleet.is_none());
}
