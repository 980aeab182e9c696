//! Targets for health probes, on loopback.
//!
//! - [`Targets`]: HTTP servers on one small runtime of their own (for tests that are not async),
//!   each answering with a status and after a delay that the test changes while it runs, counting
//!   requests; killing one closes its port, restarting binds the same port again.
//! - [`tcp_accepting`], [`tcp_listening`], [`closed_port`]: TCP ports that accept and close, that
//!   complete handshakes but never answer, or that refuse.
//! - [`probe_target`]: the `Target` a prober takes for a server's address.
//! - [`tcp_server`], [`udp_server`]: for async tests, on the test's runtime: a TCP server that
//!   may answer a fixed reply, a UDP server that echoes or stays silent.
//! - [`Switch`]: for async tests, on the test's runtime: a TCP target a test switches up and
//!   down and slows down, for a `tcp` check ([`switch_check`]); on paused time its replies come
//!   at once or exactly their delay of virtual time later.
//!
//! The recording HTTP/HTTPS server of tests/health/probe_http.rs (request lines, headers, SNI,
//! scripted replies) stays there: no other test needs it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The probe target for a server at `addr`, as the probers take it (endpoint "web-1").
pub fn probe_target(addr: SocketAddr) -> meridian::health::probe::Target {
    meridian::health::probe::Target {
        address: addr.ip(),
        port: Some(addr.port()),
        endpoint: "web-1".into(),
    }
}

/// HTTP targets on loopback, all on one small runtime.
pub struct Targets {
    rt: tokio::runtime::Runtime,
}

/// One HTTP target. It answers every request with `status` (`200` at first) and a two-byte body
/// `ok`, after `delay_ms`, then closes the connection.
pub struct Target {
    pub port: u16,
    /// The status of each reply.
    pub status: Arc<AtomicU16>,
    /// Milliseconds each reply waits before it is written.
    pub delay_ms: Arc<AtomicU64>,
    /// Requests read so far, over every restart.
    pub requests: Arc<AtomicU64>,
    task: Option<tokio::task::AbortHandle>,
}

impl Target {
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Targets {
    pub fn new() -> Targets {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Targets { rt }
    }

    /// A target on a free port, replying `200` after `delay_ms`.
    pub fn start(&self, delay_ms: u64) -> Target {
        let mut t = Target {
            port: 0,
            status: Arc::new(AtomicU16::new(200)),
            delay_ms: Arc::new(AtomicU64::new(delay_ms)),
            requests: Arc::new(AtomicU64::new(0)),
            task: None,
        };
        self.restart(&mut t);
        t
    }

    /// Close the target's port (connections are then refused).
    pub fn kill(&self, t: &mut Target) {
        if let Some(task) = t.task.take() {
            task.abort();
        }
    }

    /// Listen again on the target's port (any free port the first time).
    pub fn restart(&self, t: &mut Target) {
        self.kill(t);
        let mut listener = None;
        for _ in 0..100 {
            // The aborted accept loop drops its listener on the runtime thread: retry briefly.
            match self
                .rt
                .block_on(tokio::net::TcpListener::bind(("127.0.0.1", t.port)))
            {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let listener = listener.expect("bind the target's port again");
        t.port = listener.local_addr().unwrap().port();
        let (status, delay, requests) = (
            Arc::clone(&t.status),
            Arc::clone(&t.delay_ms),
            Arc::clone(&t.requests),
        );
        let task = self.rt.spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let (status, delay, requests) = (
                    Arc::clone(&status),
                    Arc::clone(&delay),
                    Arc::clone(&requests),
                );
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    requests.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(delay.load(Ordering::SeqCst))).await;
                    let code = status.load(Ordering::SeqCst);
                    let resp = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        t.task = Some(task.abort_handle());
    }
}

/// A `[checks.NAME]` table: HTTP on `port`, fast enough for tests.
pub fn http_check(name: &str, port: u16, rise: u32, fall: u32) -> String {
    format!(
        "[checks.{name}]\nkind = \"http\"\nport = {port}\ninterval = \"100ms\"\ntimeout = \"80ms\"\n\
         rise = {rise}\nfall = {fall}\njitter = \"10ms\"\n"
    )
}

/// A TCP port that accepts and closes connections on a thread of its own: a `tcp` check target
/// that is up, for the rest of the test binary.
pub fn tcp_accepting() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    port
}

/// A TCP port on `ip` that completes handshakes (into its backlog) and never reads or answers,
/// for as long as the listener is kept: up for a `tcp` check, a blackhole for an HTTP one.
pub fn tcp_listening(ip: &str) -> (TcpListener, u16) {
    let l = TcpListener::bind((ip, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// A port on `ip` closed again at once: connections to it are refused.
pub fn closed_port(ip: &str) -> u16 {
    tcp_listening(ip).1
}

/// Connections or datagrams a [`tcp_server`] or [`udp_server`] handles before it stops.
pub const SERVE_MAX: usize = 8;

/// A TCP server on the current runtime: reads up to one chunk from each connection, writes
/// `reply` (if any), and holds the connection open until the test ends.
pub async fn tcp_server(reply: Option<&'static [u8]>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..SERVE_MAX {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            if let Some(reply) = reply {
                let mut buf = [0u8; 64];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply).await;
            }
            held.push(stream);
        }
    });
    addr
}

/// A UDP server on the current runtime: echoes each datagram back, prefixed with `prefix`, or
/// drops it when `echo` is false.
pub async fn udp_server(echo: bool, prefix: &'static [u8]) -> SocketAddr {
    let sock = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        for _ in 0..SERVE_MAX {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            if echo {
                let reply = [prefix, &buf[..n]].concat();
                let _ = sock.send_to(&reply, peer).await;
            }
        }
    });
    addr
}

/// A TCP target on the current runtime. Each connection's first bytes are answered, after the
/// delay, with `up` or `down`, then the connection is closed: a `tcp` check that sends `ping`
/// and expects `up` ([`switch_check`]) passes or fails as the test sets it. It serves until the
/// runtime ends.
pub struct Switch {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
}

impl Switch {
    /// A switch on 127.0.0.1, up, answering at once.
    pub async fn start() -> Switch {
        let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, delay_ms) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU64::new(0)));
        let (u, d) = (Arc::clone(&up), Arc::clone(&delay_ms));
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (up, delay) = (Arc::clone(&u), Arc::clone(&d));
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    let _ = stream.read(&mut buf).await;
                    tokio::time::sleep(Duration::from_millis(delay.load(Ordering::SeqCst))).await;
                    let reply: &[u8] = if up.load(Ordering::SeqCst) {
                        b"up"
                    } else {
                        b"down"
                    };
                    let _ = stream.write_all(reply).await;
                });
            }
        });
        Switch { addr, up, delay_ms }
    }

    /// Answer `up` (true) or `down` from now on.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    /// Wait this long before each answer from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

/// A `[checks.NAME]` table for a [`Switch`] at `addr`: `tcp`, sends `ping`, expects `up`, every
/// `interval`, timeout 500 ms, first probe at once (no jitter), then the `more` lines.
pub fn switch_check(name: &str, addr: SocketAddr, interval: &str, more: &str) -> String {
    format!(
        "[checks.{name}]\nkind = \"tcp\"\nport = {}\nsend = \"ping\"\nexpect = \"up\"\n\
         interval = \"{interval}\"\ntimeout = \"500ms\"\njitter = \"0s\"\n{more}\n",
        addr.port()
    )
}
