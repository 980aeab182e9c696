//! The `meridian` binary as an operator runs it: `check`, `serve`, signals, `--version`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

const BIN: &str = env!("CARGO_BIN_EXE_meridian");

fn write_config(dir: &std::path::Path, zone: &str, extra: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("example.com.zone"), zone).unwrap();
    let cfg = dir.join("meridian.toml");
    std::fs::write(
        &cfg,
        format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n{extra}\n[[zone]]\norigin = \"example.com.\"\nfile = \"example.com.zone\"\n"),
    )
    .unwrap();
    cfg
}

fn check(cfg: &std::path::Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn version_prints_the_crate_version() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("meridian {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_accepts_the_shipped_example() {
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/meridian.toml");
    let (code, text) = check(&cfg);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("zone example.com. serial 2026112701"),
        "{text}"
    );
}

#[test]
fn check_reports_every_config_problem_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z"), EXAMPLE_ZONE).unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[dns]\nlisten = [\"127.0.0.1:53\", \"nonsense\"]\nedns_udp_payload = 100\n\n[[zone]]\norigin = \"example.com.\"\nfile = \"missing.zone\"\n",
    )
    .unwrap();
    let (code, text) = check(&cfg);
    assert_eq!(code, 64, "{text}");
    let f = cfg.display().to_string();
    assert!(text.contains(&format!("{f}:2:27: dns.listen[1]")), "{text}");
    assert!(
        text.contains(&format!("{f}:3:20: dns.edns_udp_payload: 100")),
        "{text}"
    );
    assert!(text.contains(&format!("{f}:7:8: zone[0].file")), "{text}");
    assert!(text.contains("3 problem(s)"), "{text}");
}

/// `[rrl]`, `[cookies]` and the TCP limits of `[dns]` report every problem with its place.
#[test]
fn check_reports_rate_limit_cookie_and_tcp_problems_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z"), EXAMPLE_ZONE).unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[dns]\nlisten = [\"127.0.0.1:53\"]\ntcp_io_timeout_ms = 0\n\
         tcp_max_connections_per_client = -3\n\n\
         [rrl]\nrate = 0\nslip = 101\nipv6_prefix = 129\nexempt = [\"192.0.2.1/24\", \"x\"]\n\n\
         [cookies]\nsecret = \"abc\"\nsecret_lifetime = \"forever\"\n\n\
         [[zone]]\norigin = \"example.com.\"\nfile = \"z\"\n",
    )
    .unwrap();
    let (code, text) = check(&cfg);
    assert_eq!(code, 64, "{text}");
    let f = cfg.display().to_string();
    for want in [
        "3:21: dns.tcp_io_timeout_ms: 0 is outside 1..=60000",
        "4:34: dns.tcp_max_connections_per_client: -3 is outside 1..=1000000",
        "7:8: rrl.rate: 0 is outside 1..=100000",
        "8:8: rrl.slip: 101 is outside 0..=100",
        "9:15: rrl.ipv6_prefix: 129 is outside 1..=128",
        "10:11: rrl.exempt[0]: \"192.0.2.1/24\" has host bits set (the prefix is 192.0.2.0/24)",
        "10:27: rrl.exempt[1]: \"x\" is not a prefix",
        "13:10: cookies.secret: must be 32 hex digits",
        "14:19: cookies.secret_lifetime: \"forever\" is not a duration",
    ] {
        assert!(text.contains(&format!("{f}:{want}")), "{want}\n{text}");
    }
    assert!(text.contains("9 problem(s)"), "{text}");
}

#[test]
fn check_rejects_unknown_fields_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), EXAMPLE_ZONE, "worker = 3");
    let (code, text) = check(&cfg);
    assert_eq!(code, 64, "{text}");
    assert!(
        text.contains(&format!("{}:4:1:", cfg.display()))
            && text.contains("unknown field `worker`"),
        "{text}"
    );
}

#[test]
fn check_reports_zone_errors_with_file_and_line_and_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let zone = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns host 1 2 3 4 5\n NS ns\nns A 192.0.2.300\nwww AAAA nothex\nx FOO 1\nout.example.org. A 192.0.2.1\nc CNAME www\nc A 192.0.2.1\n";
    let cfg = write_config(dir.path(), zone, "");
    let (code, text) = check(&cfg);
    assert_eq!(code, 64, "{text}");
    let f = dir.path().join("example.com.zone").display().to_string();
    for needle in [
        format!("{f}:5:4: bad A record"),
        format!("{f}:6:5: bad AAAA record"),
        format!("{f}:7:3: unknown record type FOO"),
        format!("{f}:8:1: owner out.example.org. is outside the zone example.com."),
    ] {
        assert!(text.contains(&needle), "missing {needle:?} in:\n{text}");
    }
    // The CNAME conflict is only found once every record parsed; fix the others to see it.
    let zone = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns host 1 2 3 4 5\n NS ns\nc CNAME www\nc A 192.0.2.1\n";
    let cfg = write_config(dir.path(), zone, "");
    let (code, text) = check(&cfg);
    assert_eq!(code, 64);
    assert!(
        text.contains(&format!(
            "{f}:5:1: c.example.com. has a CNAME and other data"
        )),
        "{text}"
    );
    // No SOA.
    let cfg = write_config(
        dir.path(),
        "$ORIGIN example.com.\nwww 300 A 192.0.2.1\n",
        "",
    );
    let (code, text) = check(&cfg);
    assert_eq!(code, 64);
    assert!(
        text.contains("zone example.com. has no SOA record at its apex"),
        "{text}"
    );
    // Unbalanced parentheses name the line they opened on.
    let cfg = write_config(
        dir.path(),
        "$ORIGIN example.com.\n$TTL 1\n@ SOA ns host (1 2 3 4 5\nwww A 192.0.2.1\n",
        "",
    );
    let (_, text) = check(&cfg);
    assert!(
        text.contains(&format!("{f}:3: '(' is never closed")),
        "{text}"
    );
}

/// A `meridian serve` child process and the UDP address it reported.
struct Served {
    child: Child,
    udp: SocketAddr,
    tcp: SocketAddr,
}

fn serve(cfg: &std::path::Path) -> Served {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(cfg)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut udp, mut tcp) = (None, None);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("listening") {
            let field = |k: &str| {
                line.split(&format!("{k}="))
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            udp = Some(field("udp"));
            tcp = Some(field("tcp"));
            break;
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        udp: udp.expect("server reported its address"),
        tcp: tcp.unwrap(),
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) takes plain integers; the PID is a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

fn ask(addr: SocketAddr, name: &str) -> Message {
    Message::from_vec(
        &udp_raw(addr, &query(name, RecordType::A, None).to_vec().unwrap()).expect("answer"),
    )
    .unwrap()
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    exit_within(child, Duration::from_secs(10)).expect("server did not exit")
}

#[test]
fn serve_answers_reloads_on_sighup_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), EXAMPLE_ZONE, "");
    let mut s = serve(&cfg);
    let r = ask(s.udp, "www.example.com.");
    assert_eq!(r.answers.len(), 2);
    let t = Message::from_vec(&tcp_raw(
        s.tcp,
        &query("www.example.com.", RecordType::A, None)
            .to_vec()
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(t.answers.len(), 2);

    // A broken zone on reload changes nothing: the old data keeps being served.
    std::fs::write(
        dir.path().join("example.com.zone"),
        "$ORIGIN example.com.\n@ 300 SOA ns host (1 2\n",
    )
    .unwrap();
    signal(&s.child, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ask(s.udp, "www.example.com.").answers.len(), 2);

    // A good zone on reload is served at once.
    let new_zone = EXAMPLE_ZONE.replace(
        "www     300 IN A 192.0.2.10\n",
        "www     300 IN A 192.0.2.10\nnew 300 IN A 192.0.2.99\n",
    );
    std::fs::write(dir.path().join("example.com.zone"), new_zone).unwrap();
    signal(&s.child, libc::SIGHUP);
    wait_for(Duration::from_secs(5), "the reload picked up", || {
        ask(s.udp, "new.example.com.").metadata.response_code == ResponseCode::NoError
    });

    signal(&s.child, libc::SIGTERM);
    let status = wait_exit(&mut s.child);
    assert!(status.success(), "{status:?}");
}

#[test]
fn serve_exits_cleanly_on_sigint_and_refuses_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), EXAMPLE_ZONE, "");
    let mut s = serve(&cfg);
    assert_eq!(ask(s.udp, "www.example.com.").answers.len(), 2);
    signal(&s.child, libc::SIGINT);
    assert!(wait_exit(&mut s.child).success());

    let cfg = write_config(dir.path(), EXAMPLE_ZONE, "bogus = 1");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `bogus`"));
}

#[test]
fn override_command_writes_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[[pool]]\nname = \"p\"\n[[pool.endpoint]]\nname = \"eu1\"\naddress = \"192.0.2.1\"\n[health]\nstate_file = \"state.json\"\n";
    let cfg = write_config(dir.path(), EXAMPLE_ZONE, "");
    // Health tables go after [dns]; append them to the file write_config made.
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(extra);
    std::fs::write(&cfg, text).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("override")
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = run(&["eu1", "drain", "--for", "30m"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("send SIGHUP"), "{text}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    assert_eq!(saved["eu1"]["kind"], "drain");
    let expires = saved["eu1"]["expires"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 1790..=now + 1810).contains(&expires),
        "{expires} vs {now}"
    );
    let (code, text) = run(&["nope", "drain"]);
    assert_eq!(code, 64);
    assert!(text.contains("no endpoint \"nope\""), "{text}");
    let (code, _) = run(&["eu1", "clear"]);
    assert_eq!(code, 0);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    assert!(saved.get("eu1").is_none());
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), EXAMPLE_ZONE, "");
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "serve", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Every line is one JSON object, up to the one that says where it listens (the zones'
    // loads are logged before it, each with its figures).
    let mut v: serde_json::Value;
    let mut loads = 0;
    loop {
        let line = lines.next().expect("a log line").unwrap();
        v = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["fields"]["message"] == "zone loaded" {
            assert!(v["fields"]["records"].as_u64().unwrap() > 0, "{v}");
            assert!(v["fields"]["bytes"].as_u64().unwrap() > 0, "{v}");
            loads += 1;
        }
        if v["fields"]["message"] == "listening" {
            break;
        }
    }
    assert_eq!(loads, 1, "one load line for the one zone");
    assert!(
        v["fields"]["udp"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{v}"
    );
    assert_eq!(v["level"], "INFO");
    signal(&child, libc::SIGTERM);
    std::thread::spawn(move || for _ in lines {});
    assert!(wait_exit(&mut child).success());
}
