//! A `meridian serve` child process with its admin API, for the fault and limit tests: each has
//! a metrics registry of its own (so counters are asserted exactly, whatever other tests of this
//! binary do meanwhile), its log lines are kept, and it is asked over real sockets only: DNS over
//! UDP, HTTP over a plain TCP socket, written by hand.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;

use crate::support::exposition::sample;
use crate::support::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_meridian");

/// The `[dns]` and `[admin]` tables every served configuration starts with.
pub const HEAD: &str =
    "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n";

/// A running `meridian serve`.
pub struct Served {
    pub child: Child,
    pub udp: SocketAddr,
    pub admin: SocketAddr,
    /// Every line it has written to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    /// Start `meridian serve --config cfg` with `env` added, and wait until it listens.
    pub fn start(cfg: &Path, env: &[(&str, &str)]) -> Served {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(cfg)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&log);
        // Keep reading, so that the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let field = |line: &str, key: &str| -> Option<SocketAddr> {
            line.split(&format!(" {key}="))
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut udp, mut admin) = (None, None);
        while udp.is_none() || admin.is_none() {
            assert!(
                Instant::now() < deadline,
                "the server did not start: {:#?}",
                log.lock().unwrap()
            );
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(200)); // the last lines read
                panic!("the server exited ({status}): {:#?}", log.lock().unwrap());
            }
            for line in log.lock().unwrap().iter() {
                udp = udp.or_else(|| field(line, "udp"));
                admin = admin.or_else(|| field(line, "admin"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Served {
            child,
            udp: udp.unwrap(),
            admin: admin.unwrap(),
            log,
        }
    }

    /// Whether a log line so far contains every one of `needles`.
    pub fn logged(&self, needles: &[&str]) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    }

    /// Log lines that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// Wait until a log line contains every one of `needles`.
    #[track_caller]
    pub fn wait_logged(&self, limit: Duration, needles: &[&str]) {
        let what = format!("a log line with {needles:?}");
        wait_for(limit, &what, || self.logged(needles));
    }

    /// Its `/metrics`.
    pub fn exposition(&self) -> String {
        let m = http(self.admin, "GET", "/metrics", b"");
        assert_eq!(m.0, 200, "{}", m.1);
        m.1
    }

    /// The value of a series (`name{labels}`, labels in exposition order) in its `/metrics`.
    pub fn metric(&self, series: &str) -> f64 {
        sample(&self.exposition(), series)
    }

    /// Wait until `series` reaches `value`; fails at once if it passes it.
    #[track_caller]
    pub fn wait_metric(&self, limit: Duration, series: &str, value: f64) {
        let what = format!("{series} = {value}");
        wait_for(limit, &what, || {
            let v = self.metric(series);
            assert!(v <= value, "{series} = {v}, beyond {value}");
            v == value
        });
    }

    /// `POST target` to the admin API: status and body.
    pub fn post(&self, target: &str) -> (u16, String) {
        http(self.admin, "POST", target, b"")
    }

    /// A UDP query's answer (RD, no EDNS), which must come.
    pub fn ask(&self, name: &str, qtype: hickory_proto::rr::RecordType) -> Message {
        let q = query(name, qtype, None).to_vec().unwrap();
        Message::from_vec(&udp_raw(self.udp, &q).expect("an answer over UDP")).unwrap()
    }

    /// The sorted addresses of the A records answered for `name`.
    pub fn addresses(&self, name: &str) -> Vec<String> {
        let m = self.ask(name, hickory_proto::rr::RecordType::A);
        let mut v: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        v.sort();
        v
    }

    /// Send `sig` to it.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) takes plain integers; the PID is a child this test started.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// SIGTERM, and it must exit cleanly within 10 s.
    pub fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let status = exit_within(&mut self.child, Duration::from_secs(10)).expect("exits");
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // A test that failed midway: end the child it started (by its own handle).
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request (`Connection: close`); the status and the body.
pub fn http(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head:?}"));
    (status, body.to_string())
}
