//! The anycast health check, config/anycast/meridian-anycast-check, against a real `meridian
//! serve` on loopback: ExaBGP lines on readiness changes (ready, killed, not ready until every
//! health check has a first verdict), `--check` exit codes, rise/fall counting probe by probe,
//! the admin token, exiting the way ExaBGP 4 expects, BIRD mode against a real BIRD with its own
//! control socket, and a real ExaBGP taking the script's lines. The shipped ExaBGP and BIRD
//! examples are checked by the daemons' own parsers.
//!
//! curl, bird2 and exabgp come from Debian packages that .ci/run installs; a missing one fails
//! these tests instead of skipping them.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::anycast_support::*;
use crate::support::target::closed_port;
use crate::support::{exit_within, wait_for};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The words of `s`, for argument lists.
fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// Fast probing for tests: every 0.2 s, two results in a row to change.
fn fast<'a>(admin: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--admin", admin, "--prefix", PREFIX];
    v.extend(words("--interval 0.2 --timeout 2 --rise 2 --fall 2"));
    v.extend_from_slice(more);
    v
}

#[test]
fn announces_when_ready_and_withdraws_when_meridian_is_killed() {
    let m = meridian("", "");
    let url = m.url();
    let mut s = script(&fast(&url, &[]), &[], None);
    s.expect(ANNOUNCE, secs(10));
    // Still ready: about ten more probes, and nothing more is said.
    s.expect_quiet(secs(2));
    m.stop(libc::SIGKILL);
    s.expect(WITHDRAW, secs(10));
    s.expect_quiet(secs(1));
    assert!(s.stderr().contains("cannot connect to"), "{}", s.stderr());
    // ExaBGP closing our stdin ends the script.
    s.close_stdin();
    assert!(s.exit_within(secs(5)).success());
}

#[test]
fn announces_only_once_every_health_check_has_a_first_verdict() {
    // The check target accepts connections (the kernel's backlog) but answers nothing until the
    // test serves it: Meridian's first probe hangs for up to 20 s, and /readyz says 503.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let checks = format!(
        "[checks.web]\nkind = \"http\"\nport = {port}\ninterval = \"30s\"\ntimeout = \"20s\"\n\
         rise = 1\nfall = 1\njitter = \"10ms\"\n\
         [[pool]]\nname = \"p\"\nchecks = [\"web\"]\n\
         [[pool.endpoint]]\nname = \"e1\"\naddress = \"192.0.2.10\"\ncheck_address = \"127.0.0.1\"\n"
    );
    let m = meridian("", &checks);
    let url = m.url();
    assert_eq!(readyz(m.admin), 503, "the test's premise: not ready yet");
    let s = script(&fast(&url, &[]), &[], None);
    // The first probe decides at once: withdraw.
    s.expect(WITHDRAW, secs(10));
    s.expect_quiet(secs(2));
    assert_eq!(check(&url, &[]).0, Some(1));
    assert_eq!(readyz(m.admin), 503);
    assert!(s.stderr().contains("HTTP 503"), "{}", s.stderr());
    // The target comes up: the pending probe gets its 200, /readyz turns 200, and after two
    // ready probes in a row the route is announced.
    http_stub(target, |_| Some(200));
    s.expect(ANNOUNCE, secs(15));
    assert_eq!(readyz(m.admin), 200);
    assert_eq!(check(&url, &[]).0, Some(0));
}

/// `meridian-anycast-check --check --admin URL EXTRA...`: exit code and stderr.
fn check(url: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(script_path())
        .args(["--check", "--admin", url, "--timeout", "5"])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn check_mode_exits_0_when_ready_1_when_not_and_2_on_bad_usage() {
    let m = meridian("", "");
    let url = m.url();
    assert_eq!(check(&url, &[]), (Some(0), String::new()));
    m.stop(libc::SIGTERM);
    let (code, text) = check(&url, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("not ready: cannot connect to"), "{text}");
    for (bad, says) in [
        (&["--rise", "0"][..], "--rise: '0' is not a count"),
        (&["--interval", "soon"], "--interval: 'soon'"),
        (&["--bogus"], "unknown option '--bogus'"),
        (
            &["--mode", "gobgp"],
            "--mode: 'gobgp' is not exabgp or bird",
        ),
        (&["--admin", "ftp://x"], "is not http://HOST:PORT"),
        (&["--token-file", "/nonexistent/token"], "cannot read"),
    ] {
        let (code, text) = check(&url, bad);
        assert_eq!(code, Some(2), "{bad:?}: {text}");
        assert!(text.contains(says), "{bad:?}: {text}");
    }
    // ExaBGP mode needs a prefix, and only a prefix: a newline would inject a command.
    let (code, text) = check(&url, &["--mode", "exabgp"]);
    assert_eq!(code, Some(2), "{text}");
    for bad in ["192.0.2.53/32\nannounce route 0.0.0.0/0", "192.0.2.53"] {
        let (code, text) = check(&url, &["--mode", "exabgp", "--prefix", bad]);
        assert_eq!(code, Some(2), "{text}");
        assert!(text.contains("is not ADDRESS/LENGTH"), "{text}");
    }
}

#[test]
fn rise_and_fall_count_consecutive_probes() {
    // A stand-in admin API answers each probe as this table says, one probe at a time: the
    // script's next probe arrives only after it acted on the previous one, so its output file
    // holds exactly what the probes so far decided. Rise 3, fall 2.
    let (requests, asked) = mpsc::channel::<()>();
    let (answers, answer) = mpsc::channel::<Option<u16>>();
    let admin = admin_stub(move |_| {
        requests.send(()).ok()?;
        answer.recv().ok().flatten()
    });
    let (a, w) = (ANNOUNCE, WITHDRAW);
    let steps: &[(Option<u16>, &[&str])] = &[
        (Some(200), &[a]),       // the first probe decides at once
        (Some(503), &[a]),       // one failure: kept
        (Some(200), &[a]),       // the count starts again
        (Some(503), &[a]),       // one failure
        (None, &[a, w]),         // no answer at all: the second failure in a row
        (Some(200), &[a, w]),    // one success
        (Some(200), &[a, w]),    // two
        (Some(401), &[a, w]),    // the count starts again
        (Some(200), &[a, w]),    // one
        (Some(200), &[a, w]),    // two
        (Some(200), &[a, w, a]), // three in a row: announced
        (Some(200), &[a, w, a]), // and not again
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stdout");
    let url = format!("http://{admin}");
    let mut args = vec!["--admin", &url, "--prefix", PREFIX];
    args.extend(words("--interval 0.05 --timeout 10 --rise 3 --fall 2"));
    let s = script(&args, &[], Some(&out));
    let mut said: &[&str] = &[];
    for (i, (status, then)) in steps.iter().enumerate() {
        asked
            .recv_timeout(secs(15))
            .unwrap_or_else(|_| panic!("no probe {i}; stderr:\n{}", s.stderr()));
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.lines().collect::<Vec<_>>(), said, "before probe {i}");
        answers.send(*status).unwrap();
        said = then;
    }
    asked.recv_timeout(secs(15)).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().collect::<Vec<_>>(), said);
    drop(s);
}

#[test]
fn the_admin_token_comes_from_a_variable_or_a_file_and_is_never_printed() {
    const TOKEN: &str = "s3cret-token";
    // A stand-in that, like a proxy in front of the admin API, wants the bearer token, and
    // writes down the Authorization headers it gets (one stand-in per case).
    let proxy = || {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = Arc::clone(&seen);
        let admin = admin_stub(move |head| {
            let auth = head
                .lines()
                .find_map(|l| l.strip_prefix("Authorization: "))
                .unwrap_or("")
                .to_string();
            let ok = auth == format!("Bearer {TOKEN}");
            log.lock().unwrap().push(auth);
            Some(if ok { 200 } else { 401 })
        });
        (format!("http://{admin}"), seen)
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let file = file.to_str().unwrap();
    let bearer = format!("Bearer {TOKEN}");
    // (arguments, environment, first line, Authorization header sent)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 5] = [
        (&[], &[], WITHDRAW, ""),
        (
            &[],
            &[("MERIDIAN_ADMIN_TOKEN", "wrong")],
            WITHDRAW,
            "Bearer wrong",
        ),
        (&[], &[("MERIDIAN_ADMIN_TOKEN", TOKEN)], ANNOUNCE, &bearer),
        (
            &["--token-env", "MY_TOKEN"],
            &[("MY_TOKEN", TOKEN)],
            ANNOUNCE,
            &bearer,
        ),
        (
            &["--token-file", file],
            &[("MERIDIAN_ADMIN_TOKEN", "wrong")],
            ANNOUNCE,
            &bearer,
        ),
    ];
    for (i, (args, env, first, header)) in cases.into_iter().enumerate() {
        let (url, seen) = proxy();
        let s = script(&fast(&url, args), env, None);
        s.expect(first, secs(10));
        s.expect_quiet(secs(1));
        let stderr = s.stderr();
        assert!(
            !stderr.contains(TOKEN),
            "case {i} printed the token: {stderr}"
        );
        if first == WITHDRAW {
            assert!(stderr.contains("HTTP 401"), "case {i}: {stderr}");
        }
        let seen = seen.lock().unwrap();
        assert!(!seen.is_empty(), "case {i}");
        assert!(seen.iter().all(|a| a == header), "case {i}: {seen:?}");
    }
    // Nor is it on curl's command line, where ps would show it: a curl wrapper first in PATH
    // writes down its arguments.
    let real = tool("curl");
    let argv = dir.path().join("argv");
    let wrapper = dir.path().join("curl");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\nexec '{}' \"$@\"\n",
            argv.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let env = [("PATH", path.as_str()), ("MERIDIAN_ADMIN_TOKEN", TOKEN)];
    let (url, _) = proxy();
    let s = script(&fast(&url, &[]), &env, None);
    s.expect(ANNOUNCE, secs(10));
    drop(s);
    let argv = std::fs::read_to_string(&argv).unwrap();
    assert!(argv.contains("--max-time"), "the wrapper ran: {argv}");
    assert!(!argv.contains(TOKEN), "{argv}");

    // Meridian itself with a token: GETs stay open (README, "Admin API"), so /readyz needs no
    // token, and one sent along does no harm.
    let m = meridian(&format!("token = \"{TOKEN}\""), "");
    let url = m.url();
    assert_eq!(check(&url, &[]).0, Some(0));
    assert_eq!(check(&url, &["--token-file", file]).0, Some(0));
    let s = script(&fast(&url, &["--token-file", file]), &[], None);
    s.expect(ANNOUNCE, secs(10));
    assert!(!s.stderr().contains(TOKEN));
}

const NOTHING: Vec<std::path::PathBuf> = Vec::new();

#[test]
fn exits_when_exabgp_says_shutdown_closes_stdin_or_sends_sigterm() {
    let url = format!("http://127.0.0.1:{}", closed_port("127.0.0.1"));
    let args = fast(&url, &[]);
    // ExaBGP's answers are read; "error" is logged.
    let mut s = script(&args, &[], None);
    s.expect(WITHDRAW, secs(10));
    s.say("done");
    s.say("error");
    wait_for(secs(5), "the error logged", || {
        s.stderr().contains("ExaBGP answered error")
    });
    // Before it stops, ExaBGP writes "shutdown PID PPID" (text encoder) ...
    s.say("shutdown 4242 1");
    assert_eq!(s.exit_within(secs(5)).code(), Some(0));
    assert_eq!(s.leftovers(), NOTHING);
    // ... or a JSON notification (json encoder).
    let mut s = script(&args, &[], None);
    s.expect(WITHDRAW, secs(10));
    s.say(r#"{ "exabgp": "4.0.1", "time": 1.0, "host" : "h", "pid" : 1, "ppid" : 1, "counter": 1, "type": "notification", "notification": "shutdown"}"#);
    assert_eq!(s.exit_within(secs(5)).code(), Some(0));
    assert_eq!(s.leftovers(), NOTHING);
    // It then sends SIGTERM, which must work also right after a line: bash 5.2 ignored it about
    // once in twenty tries when it came while `read -t` waited with a command substitution in
    // its arguments. Closing the pipe also ends the script.
    for _ in 0..40 {
        let mut s = script(&args, &[], None);
        s.expect(WITHDRAW, secs(10));
        s.signal(libc::SIGTERM);
        assert_eq!(s.exit_within(secs(5)).code(), Some(0));
        assert_eq!(s.leftovers(), NOTHING);
    }
    let mut s = script(&args, &[], None);
    s.expect(WITHDRAW, secs(10));
    s.close_stdin();
    assert_eq!(s.exit_within(secs(5)).code(), Some(0));
    assert_eq!(s.leftovers(), NOTHING);
}

const BIRD_CONF: &str = "router id 192.0.2.1;\n\
                         protocol static anycast {\n  disabled;\n  ipv4;\n  route 192.0.2.53/32 blackhole;\n}\n";

#[test]
fn bird_mode_enables_and_disables_a_real_static_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bird.ctl");
    let birdc = format!("{} -s {}", tool("birdc").display(), socket.display());
    let m = meridian("", "");
    let url = m.url();
    let args = |refresh| {
        let mut v = vec![
            "--mode",
            "bird",
            "--admin",
            &url,
            "--birdc",
            &birdc,
            "--refresh",
            refresh,
        ];
        v.extend(words("--protocol anycast --interval 0.2 --rise 2 --fall 2"));
        v
    };
    // Started before BIRD: birdc fails, and the script keeps trying.
    let mut s = script(&args("0"), &[], None);
    wait_for(secs(10), "a failed birdc", || {
        s.stderr().contains("birdc enable anycast failed")
    });
    std::thread::sleep(secs(1)); // about five retries, logged once
    let b = bird(dir.path(), BIRD_CONF);
    wait_for(secs(10), "anycast up", || b.state("anycast") == "up");
    let (_, routes) = b.birdc(&["show", "route"]);
    assert!(routes.contains("192.0.2.53/32"), "{routes}");
    // "enabled", not "already enabled": BIRD started it disabled, as configured.
    wait_for(secs(5), "the enable logged", || {
        s.stderr().contains("birdc enable: anycast: enabled")
    });
    // The same failure is logged once (a starting BIRD may add a "Connection refused").
    let stderr = s.stderr();
    let missing = "control socket (".to_string() + socket.to_str().unwrap() + "): No such file";
    assert_eq!(stderr.matches(&missing).count(), 1, "said once: {stderr}");
    s.signal(libc::SIGTERM);
    assert_eq!(s.exit_within(secs(5)).code(), Some(0));

    // BIRD loses the state, as a restarted BIRD would: --refresh puts it back.
    let mut s = script(&args("1"), &[], None);
    wait_for(secs(10), "the first enable", || {
        s.stderr().contains("anycast: already enabled")
    });
    assert!(b.birdc(&["disable", "anycast"]).0);
    assert_eq!(b.state("anycast"), "down");
    wait_for(secs(10), "anycast re-enabled", || {
        b.state("anycast") == "up"
    });
    m.stop(libc::SIGTERM);
    wait_for(secs(10), "anycast down", || b.state("anycast") == "down");
    let (_, routes) = b.birdc(&["show", "route"]);
    assert!(!routes.contains("192.0.2.53/32"), "{routes}");
    for said in [
        "birdc enable: anycast: enabled",
        "birdc disable: anycast: disabled",
    ] {
        wait_for(secs(5), said, || s.stderr().contains(said));
    }
    s.signal(libc::SIGTERM);
    assert_eq!(s.exit_within(secs(5)).code(), Some(0));
}

#[test]
fn a_real_exabgp_takes_the_lines_and_the_shipped_examples_parse() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    // The shipped examples, with the script where the ExaBGP one expects it installed.
    let shipped = std::fs::read_to_string(root.join("config/anycast/exabgp.conf"))
        .unwrap()
        .replace(
            "/usr/local/bin/meridian-anycast-check",
            script_path().to_str().unwrap(),
        );
    std::fs::write(dir.path().join("shipped.conf"), shipped).unwrap();
    let out = exabgp(&["--test", "shipped.conf"], dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "exabgp --test: {out:?}");
    let out = Command::new(tool("bird"))
        .arg("-p")
        .arg("-c")
        .arg(root.join("config/anycast/bird.conf"))
        .output()
        .expect("bird");
    assert!(out.status.success(), "bird -p: {out:?}");

    // ExaBGP runs the script against a live Meridian, with no BGP peer (connections refused).
    let m = meridian("", "");
    let url = m.url();
    let conf = format!(
        "process meridian {{\n  run {} {};\n  encoder text;\n}}\n\
         neighbor 127.0.0.1 {{\n  router-id 192.0.2.1;\n  local-address 127.0.0.1;\n  \
         local-as 64511;\n  peer-as 64496;\n  family {{ ipv4 unicast; }}\n  \
         api {{ processes [ meridian ]; }}\n}}\n",
        script_path().display(),
        fast(&url, &[]).join(" ")
    );
    std::fs::write(dir.path().join("exabgp.conf"), conf).unwrap();
    let mut exa = Reaped(
        exabgp(&["exabgp.conf"], dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut exa.0;
    let (tx, rx) = mpsc::channel();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut log = Vec::new();
    let expect = |what: &str, log: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + secs(30);
        while !log.iter().any(|l: &String| l.contains(what)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => log.push(line),
                Err(_) => panic!("ExaBGP never logged {what:?}:\n{}", log.join("\n")),
            }
        }
    };
    expect("route added to neighbor 127.0.0.1", &mut log);
    assert!(
        log.iter()
            .any(|l| l.contains(": 192.0.2.53/32 next-hop self")),
        "{}",
        log.join("\n")
    );
    expect("responding to meridian : done", &mut log);
    m.stop(libc::SIGKILL);
    expect("route removed from neighbor 127.0.0.1", &mut log);
    assert!(
        !log.iter()
            .any(|l| l.contains("responding to meridian : error")),
        "{}",
        log.join("\n")
    );
    // Stopping ExaBGP stops the script.
    // SAFETY: kill(2) takes plain integers; the PID is a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(
        exit_within(child, secs(30)).is_some(),
        "ExaBGP did not stop on SIGTERM"
    );
    let arg = format!("{url}\0");
    wait_for(secs(10), "the script to exit", || !running_with(&arg));
}

/// `exabgp ARGS` in `dir`, as whoever runs the tests, logging to stdout, without its CLI pipes
/// and with BGP connections going to a closed loopback port.
fn exabgp(args: &[&str], dir: &std::path::Path) -> Command {
    let mut c = Command::new(tool("exabgp"));
    c.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("exabgp.daemon.drop", "false")
        .env("exabgp.api.cli", "false")
        .env("exabgp.log.destination", "stdout")
        .env("exabgp.log.level", "DEBUG")
        .env("exabgp.log.processes", "true")
        .env("exabgp.tcp.port", closed_port("127.0.0.1").to_string());
    c
}

/// Whether a process whose command line (NUL-separated arguments) holds `needle` still runs.
fn running_with(needle: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(needle))
            .unwrap_or(false)
    })
}
