//! Support for tests/ops/anycast.rs: a `meridian serve` process with an admin listener on loopback,
//! the check script as a child process with its output collected, a stand-in admin API that
//! answers `/readyz` as a test decides, and a real BIRD with its own control socket.
//!
//! Every child is killed by the PID it was started with, and every wait has a time limit.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{exit_within, wait_for};

pub const BIN: &str = env!("CARGO_BIN_EXE_meridian");

/// The script under test, as committed.
pub fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/anycast/meridian-anycast-check")
}

pub const PREFIX: &str = "192.0.2.53/32";
pub const ANNOUNCE: &str = "announce route 192.0.2.53/32 next-hop self";
pub const WITHDRAW: &str = "withdraw route 192.0.2.53/32 next-hop self";

const ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n\
                    @ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n  IN NS ns1\n\
                    ns1 IN A 192.0.2.53\n";

/// Where the program `name` is: on PATH, or in /usr/sbin or /sbin (where Debian puts bird,
/// birdc and exabgp, and which a non-root PATH may lack).
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed (.ci/run installs it)"))
}

/// Kill a child we started (by its PID) unless it already exited, and reap it.
fn reap(child: &mut Child) {
    if child.try_wait().ok().flatten().is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A child that is killed (by its PID) and reaped when the test ends, passed or not.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        reap(&mut self.0);
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) takes plain integers; the PID is a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Lines of a child's pipe, read on a thread so a silent child never blocks a test.
fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            // Keep draining after the receiver is gone, so the child never blocks.
            let _ = tx.send(line);
        }
    });
    rx
}

/// `meridian serve` as a child process, on ephemeral loopback ports.
pub struct Meridian {
    child: Child,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
}

/// Start Meridian with `admin_extra` lines under `[admin]` and `extra` top-level tables; the
/// admin address is read from its JSON log line "admin API listening".
pub fn meridian(admin_extra: &str, extra: &str) -> Meridian {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("example.com.zone"), ZONE).unwrap();
    let cfg = dir.path().join("meridian.toml");
    std::fs::write(
        &cfg,
        format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n{admin_extra}\n{extra}\n\
             [[zone]]\norigin = \"example.com.\"\nfile = \"example.com.zone\"\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "serve", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = lines_of(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let admin = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = log.recv_timeout(left) else {
            reap(&mut child);
            panic!("meridian never said where its admin API listens:\n{seen:#?}");
        };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "admin API listening" {
            break v["fields"]["admin"].as_str().unwrap().parse().unwrap();
        }
        seen.push(line);
    };
    Meridian { child, admin, dir }
}

impl Meridian {
    pub fn url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// Stop it with `sig` (SIGKILL: a crash; SIGTERM: a clean stop) and reap it.
    pub fn stop(mut self, sig: i32) {
        signal(&self.child, sig);
        assert!(
            exit_within(&mut self.child, Duration::from_secs(10)).is_some(),
            "meridian did not exit after signal {sig}"
        );
    }
}

impl Drop for Meridian {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}

/// The HTTP status of `GET /readyz`, asked over a plain socket.
pub fn readyz(admin: SocketAddr) -> u16 {
    let mut s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /readyz HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The check script as a child process: stdin held open (ExaBGP's pipe), stdout and stderr
/// collected, its TMPDIR a folder of its own.
pub struct Script {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Option<Receiver<String>>,
    stderr: Arc<Mutex<String>>,
    tmp: tempfile::TempDir,
}

/// Start the script with `args` and only `env` (and PATH and TMPDIR) in its environment. With
/// `out`, its stdout goes to that file instead of a pipe.
pub fn script(args: &[&str], env: &[(&str, &str)], out: Option<&Path>) -> Script {
    let stdout = match out {
        Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
        None => Stdio::piped(),
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(script_path())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TMPDIR", tmp.path())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = child.stdout.take().map(lines_of);
    let stderr = Arc::new(Mutex::new(String::new()));
    let errors = lines_of(child.stderr.take().unwrap());
    let sink = Arc::clone(&stderr);
    std::thread::spawn(move || {
        for line in errors {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    Script {
        stdin: child.stdin.take(),
        child,
        lines,
        stderr,
        tmp,
    }
}

impl Script {
    /// What it left in its TMPDIR (nothing, once it exited cleanly).
    pub fn leftovers(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next stdout line within `limit`.
    pub fn next_line(&self, limit: Duration) -> Option<String> {
        self.lines.as_ref().unwrap().recv_timeout(limit).ok()
    }

    /// The next stdout line is exactly `want`, within `limit`.
    pub fn expect(&self, want: &str, limit: Duration) {
        match self.next_line(limit) {
            Some(line) => assert_eq!(line, want, "stderr:\n{}", self.stderr()),
            None => panic!("no {want:?} within {limit:?}; stderr:\n{}", self.stderr()),
        }
    }

    /// Nothing on stdout for `span`.
    pub fn expect_quiet(&self, span: Duration) {
        if let Some(line) = self.next_line(span) {
            panic!("unexpected {line:?}; stderr:\n{}", self.stderr());
        }
    }

    /// Write one line to its stdin, as ExaBGP answers.
    pub fn say(&mut self, line: &str) {
        writeln!(self.stdin.as_mut().unwrap(), "{line}").unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn signal(&self, sig: i32) {
        signal(&self.child, sig);
    }

    /// Its exit status, which must come within `limit`.
    pub fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        exit_within(&mut self.child, limit)
            .unwrap_or_else(|| panic!("still running after {limit:?}; stderr:\n{}", self.stderr()))
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}

/// A stand-in admin API on loopback: every request's head goes to `answer`, which returns the
/// status to send (with a short body) or `None` to close the connection without an answer.
pub fn admin_stub(answer: impl FnMut(&str) -> Option<u16> + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    http_stub(listener, answer);
    addr
}

/// Serve HTTP on `listener` from a thread, one connection at a time, as [`admin_stub`] says.
pub fn http_stub(
    listener: TcpListener,
    mut answer: impl FnMut(&str) -> Option<u16> + Send + 'static,
) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && c.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            if let Some(code) = answer(&String::from_utf8_lossy(&head)) {
                let body = if code == 200 {
                    "ok\n"
                } else {
                    "{\"error\": \"not ready\"}\n"
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    });
}

/// A real BIRD 2 in the foreground with its own control socket, started as whoever runs the
/// tests (it needs no privileges without kernel or BGP protocols).
pub struct Bird {
    child: Child,
    pub socket: PathBuf,
}

pub fn bird(dir: &Path, conf: &str) -> Bird {
    let conf_path = dir.join("bird.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let socket = dir.join("bird.ctl");
    let child = Command::new(tool("bird"))
        .arg("-f")
        .arg("-c")
        .arg(&conf_path)
        .arg("-s")
        .arg(&socket)
        .arg("-P")
        .arg(dir.join("bird.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("bird.stderr")).unwrap())
        .spawn()
        .unwrap();
    let b = Bird { child, socket };
    wait_for(Duration::from_secs(10), "BIRD's control socket", || {
        b.birdc(&["show", "status"]).0
    });
    b
}

impl Bird {
    /// `birdc -s SOCKET ARGS...`: exit success and output.
    pub fn birdc(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(tool("birdc"))
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    }

    /// The State column of `show protocols NAME`: "up" or "down".
    pub fn state(&self, name: &str) -> String {
        let (_, out) = self.birdc(&["show", "protocols", name]);
        out.lines()
            .find_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (cols.first() == Some(&name)).then(|| cols.get(3).unwrap_or(&"").to_string())
            })
            .unwrap_or_else(|| panic!("no protocol {name} in:\n{out}"))
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}
