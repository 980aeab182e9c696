//! HTTP and HTTPS prober against real servers on loopback that each test starts and stops.
//!
//! The servers are hand-rolled HTTP/1.1 over tokio (TLS through tokio-rustls with an rcgen
//! self-signed certificate for "localhost"/127.0.0.1). Each records what it received (request
//! line, headers, TLS SNI, number of connections) so tests can assert what went over the wire.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meridian::health::probe::http::{HttpProber, probe};
use meridian::health::probe::{HttpSpec, ProbeResult, StatusRange, Target};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

use crate::support::target::{LOCALHOST, probe_target as target};

const T: Duration = Duration::from_secs(2);

/// One request as the server saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    sni: Option<String>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with a request: wait, then write these bytes (the whole response,
/// status line included), then either close or hold the connection open forever.
struct Reply {
    delay: Duration,
    bytes: Vec<u8>,
    hold: bool,
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

#[derive(Default)]
struct Log {
    requests: Vec<Seen>,
    connections: usize,
}

/// A running test server; aborted (listener closed) on `stop` or drop.
struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

impl Server {
    fn requests(&self) -> Vec<Seen> {
        self.log.lock().unwrap().requests.clone()
    }
    fn connections(&self) -> usize {
        self.log.lock().unwrap().connections
    }
    /// Closes the listener; returns once it is gone.
    async fn stop(self) {
        self.task.abort();
        let _ = (&mut { self }.task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A plain HTTP response with a Content-Length and `Connection: close`.
fn response(status: u16, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn now(bytes: Vec<u8>) -> Reply {
    Reply {
        delay: Duration::ZERO,
        bytes,
        hold: false,
    }
}

/// A server on `ip`:0 answering every request with `handler`; TLS when `tls` is given.
async fn serve_on(ip: IpAddr, tls: Option<TlsAcceptor>, handler: Handler) -> Server {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let task_log = log.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            task_log.lock().unwrap().connections += 1;
            let (log, handler, tls) = (task_log.clone(), handler.clone(), tls.clone());
            conns.spawn(async move {
                match tls {
                    None => handle(stream, None, &log, &handler).await,
                    Some(acceptor) => {
                        let Ok(Ok(s)) = tokio::time::timeout(T, acceptor.accept(stream)).await
                        else {
                            return;
                        };
                        let sni = s.get_ref().1.server_name().map(str::to_string);
                        handle(s, sni, &log, &handler).await
                    }
                }
            });
        }
    });
    Server { addr, log, task }
}

async fn serve(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
    serve_on(LOCALHOST, None, Arc::new(handler)).await
}

/// Reads request heads (bounded in size and time), records and answers each; keeps the
/// connection for further requests unless the reply says `Connection: close`.
async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    sni: Option<String>,
    log: &Mutex<Log>,
    handler: &Handler,
) {
    for _ in 0..16 {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            match tokio::time::timeout(T, s.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let mut seen = Seen {
            method: first.next().unwrap_or("").to_string(),
            path: first.next().unwrap_or("").to_string(),
            sni: sni.clone(),
            ..Seen::default()
        };
        for line in lines.take_while(|l| !l.is_empty()) {
            if let Some((n, v)) = line.split_once(':') {
                seen.headers
                    .push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        log.lock().unwrap().requests.push(seen.clone());
        let reply = handler(&seen);
        tokio::time::sleep(reply.delay).await;
        let _ = s.write_all(&reply.bytes).await;
        let _ = s.flush().await;
        if reply.hold {
            std::future::pending::<()>().await;
        }
        if reply.bytes.is_empty()
            || String::from_utf8_lossy(&reply.bytes).contains("Connection: close")
        {
            break;
        }
    }
    let _ = s.shutdown().await;
}

/// An HTTPS server with a fresh self-signed certificate for "localhost" and 127.0.0.1.
async fn serve_tls(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    serve_on(
        LOCALHOST,
        Some(TlsAcceptor::from(Arc::new(config))),
        Arc::new(handler),
    )
    .await
}

/// Accepts connections and never reads or answers; the sockets stay open until the test ends.
async fn blackhole() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (addr, task)
}

fn spec() -> HttpSpec {
    HttpSpec {
        tls: false,
        method: "GET".into(),
        path: "/healthz".into(),
        host: None,
        headers: vec![],
        expect_status: vec![],
        body_contains: None,
        body_regex: None,
        verify_tls: true,
        follow_redirects: false,
    }
}

async fn run(s: &HttpSpec, addr: SocketAddr) -> ProbeResult {
    probe(s, &target(addr), T).await
}

#[track_caller]
fn assert_pass(r: &ProbeResult) {
    assert!(r.ok, "expected a pass, got {r:?}");
}

#[track_caller]
fn assert_fail(r: &ProbeResult, detail: &str) {
    assert!(!r.ok, "expected a failure, got {r:?}");
    assert!(
        r.detail.contains(detail),
        "detail {:?} should contain {detail:?}",
        r.detail
    );
    assert!(
        !r.detail.contains('\n'),
        "detail is one line: {:?}",
        r.detail
    );
}

#[tokio::test]
async fn right_status_passes() {
    let srv = serve(|_| now(response(200, "", b"ok"))).await;
    let r = run(&spec(), srv.addr).await;
    assert_pass(&r);
    assert_eq!(r.detail, "HTTP 200");
    let seen = srv.requests();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/healthz")
    );
    // No host configured: Host is the target address and port.
    assert_eq!(seen[0].header("host"), Some(srv.addr.to_string().as_str()));
}

#[tokio::test]
async fn wrong_status_fails_with_the_status() {
    let srv = serve(|_| now(response(503, "", b"down"))).await;
    let r = run(&spec(), srv.addr).await;
    assert_fail(&r, "status 503 not in 200-299");
}

#[tokio::test]
async fn custom_status_ranges() {
    let srv = serve(|s| match s.path.as_str() {
        "/moved" => now(response(302, "Location: /elsewhere\r\n", b"")),
        "/ok" => now(response(200, "", b"")),
        _ => now(response(404, "", b"")),
    })
    .await;
    let ranges = vec![
        StatusRange {
            low: 200,
            high: 200,
        },
        StatusRange {
            low: 301,
            high: 302,
        },
    ];
    let mut s = HttpSpec {
        expect_status: ranges,
        ..spec()
    };
    for (path, ok) in [("/ok", true), ("/moved", true), ("/missing", false)] {
        s.path = path.into();
        let r = run(&s, srv.addr).await;
        assert_eq!(r.ok, ok, "{path}: {r:?}");
    }
    s.path = "/missing".into();
    assert_fail(&run(&s, srv.addr).await, "status 404 not in 200, 301-302");
}

#[tokio::test]
async fn body_substring_and_regex() {
    let srv = serve(|_| now(response(200, "", b"status: green, version 1.2.3\n"))).await;
    let contains = |n: &str| HttpSpec {
        body_contains: Some(n.into()),
        ..spec()
    };
    let regex = |re: &str| HttpSpec {
        body_regex: Some(re.into()),
        ..spec()
    };
    assert_pass(&run(&contains("green"), srv.addr).await);
    assert_fail(
        &run(&contains("red"), srv.addr).await,
        "body does not contain \"red\"",
    );
    assert_pass(&run(&regex(r"version \d+\.\d+\.\d+"), srv.addr).await);
    assert_fail(
        &run(&regex(r"^status: red"), srv.addr).await,
        "body does not match /^status: red/",
    );
    // Both configured: both must hold.
    let both = HttpSpec {
        body_regex: Some("green".into()),
        ..contains("nope")
    };
    assert_fail(&run(&both, srv.addr).await, "does not contain");
}

#[tokio::test]
async fn body_match_sees_only_the_first_64k() {
    let body = |at: usize| {
        let mut b = vec![b'a'; 100 * 1024];
        b[at..at + 6].copy_from_slice(b"NEEDLE");
        b
    };
    let srv = serve(move |s| {
        now(response(
            200,
            "",
            &body(if s.path == "/early" { 60_000 } else { 70_000 }),
        ))
    })
    .await;
    let s = HttpSpec {
        body_contains: Some("NEEDLE".into()),
        ..spec()
    };
    assert_pass(
        &run(
            &HttpSpec {
                path: "/early".into(),
                ..s.clone()
            },
            srv.addr,
        )
        .await,
    );
    let r = run(
        &HttpSpec {
            path: "/late".into(),
            ..s.clone()
        },
        srv.addr,
    )
    .await;
    assert_fail(&r, "body does not contain \"NEEDLE\" (first 64 KiB)");
    let re = HttpSpec {
        body_regex: Some("NEE+DLE".into()),
        path: "/late".into(),
        ..spec()
    };
    assert_fail(&run(&re, srv.addr).await, "does not match");
}

#[tokio::test]
async fn body_reading_stops_at_64k() {
    // Announces 1 MiB, sends 70 KiB, then stalls: the verdict must not wait for the rest.
    let srv = serve(|_| {
        let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".to_vec();
        bytes.extend(vec![b'a'; 70 * 1024]);
        Reply {
            delay: Duration::ZERO,
            bytes,
            hold: true,
        }
    })
    .await;
    let s = HttpSpec {
        body_contains: Some("zzz".into()),
        ..spec()
    };
    let start = Instant::now();
    let r = run(&s, srv.addr).await;
    assert_fail(&r, "body does not contain \"zzz\"");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn host_and_extra_headers_reach_the_server() {
    let srv = serve(|_| now(response(200, "", b""))).await;
    let s = HttpSpec {
        host: Some("Probe.Example".into()),
        headers: vec![
            ("X-Probe".into(), "meridian".into()),
            ("Authorization".into(), "Bearer t0k".into()),
        ],
        ..spec()
    };
    assert_pass(&run(&s, srv.addr).await);
    let seen = &srv.requests()[0];
    // The name goes to the configured target, with no DNS lookup; the port is not the default.
    assert_eq!(
        seen.header("host"),
        Some(format!("probe.example:{}", srv.addr.port()).as_str())
    );
    assert_eq!(seen.header("x-probe"), Some("meridian"));
    assert_eq!(seen.header("authorization"), Some("Bearer t0k"));
    assert!(
        seen.header("user-agent")
            .unwrap()
            .starts_with("meridian-health/")
    );
}

#[tokio::test]
async fn host_given_as_an_address_goes_in_the_host_header() {
    let srv = serve(|_| now(response(200, "", b""))).await;
    let s = HttpSpec {
        host: Some("203.0.113.5".into()),
        ..spec()
    };
    assert_pass(&run(&s, srv.addr).await);
    let expected = format!("203.0.113.5:{}", srv.addr.port());
    assert_eq!(srv.requests()[0].header("host"), Some(expected.as_str()));
}

#[tokio::test]
async fn head_method() {
    // A HEAD answer announces a length but carries no body.
    let srv = serve(|s| {
        let status = if s.method == "HEAD" { 200 } else { 405 };
        now(
            format!("HTTP/1.1 {status} X\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
                .into_bytes(),
        )
    })
    .await;
    let r = run(
        &HttpSpec {
            method: "head".into(),
            ..spec()
        },
        srv.addr,
    )
    .await;
    assert_pass(&r);
    assert_eq!(srv.requests()[0].method, "HEAD");
}

#[tokio::test]
async fn redirects_judged_as_is_unless_followed() {
    let srv = serve(|s| match s.path.as_str() {
        "/healthz" => now(response(302, "Location: /final\r\n", b"")),
        "/loop" => now(response(302, "Location: /loop\r\n", b"")),
        _ => now(response(200, "", b"final")),
    })
    .await;
    let r = run(&spec(), srv.addr).await;
    assert_fail(&r, "status 302 not in 200-299");
    assert_eq!(srv.requests().len(), 1);

    // Followed, with a host name: the second hop also goes to the target, with the same Host.
    let s = HttpSpec {
        follow_redirects: true,
        host: Some("app.example".into()),
        body_contains: Some("final".into()),
        ..spec()
    };
    let r = run(&s, srv.addr).await;
    assert_pass(&r);
    assert_eq!(r.detail, "HTTP 200");
    let seen = srv.requests();
    assert_eq!(seen[2].path, "/final");
    assert_eq!(
        seen[2].header("host"),
        Some(format!("app.example:{}", srv.addr.port()).as_str())
    );

    let r = run(
        &HttpSpec {
            path: "/loop".into(),
            ..s
        },
        srv.addr,
    )
    .await;
    assert_fail(&r, "too many redirects");
    // The first request and five followed hops.
    assert_eq!(srv.requests().len(), 3 + 6);
}

#[tokio::test]
async fn https_self_signed_fails_verification_unless_opted_out() {
    let srv = serve_tls(|_| now(response(200, "", b"secure ok"))).await;
    let s = HttpSpec {
        tls: true,
        body_contains: Some("secure".into()),
        ..spec()
    };
    let r = run(&s, srv.addr).await;
    assert_fail(&r, "certificate verify failed");
    let r = run(
        &HttpSpec {
            verify_tls: false,
            ..s
        },
        srv.addr,
    )
    .await;
    assert_pass(&r);
    let seen = srv.requests();
    assert_eq!(seen.len(), 1, "the verifying attempt sends no request");
    // No host: the URL holds an address, and TLS sends no SNI for addresses.
    assert_eq!(seen[0].sni, None);
}

#[tokio::test]
async fn sni_and_host_carry_the_configured_name() {
    let srv = serve_tls(|_| now(response(200, "", b""))).await;
    let s = HttpSpec {
        tls: true,
        verify_tls: false,
        host: Some("probe.example".into()),
        ..spec()
    };
    assert_pass(&run(&s, srv.addr).await);
    let seen = &srv.requests()[0];
    assert_eq!(seen.sni.as_deref(), Some("probe.example"));
    assert_eq!(
        seen.header("host"),
        Some(format!("probe.example:{}", srv.addr.port()).as_str())
    );
    // Verification against the name: the certificate is for localhost, and self-signed anyway.
    let r = run(
        &HttpSpec {
            verify_tls: true,
            ..s
        },
        srv.addr,
    )
    .await;
    assert_fail(&r, "certificate verify failed");
}

// On paused time: with nothing left to happen but the deadline, tokio's clock jumps to it.
#[tokio::test(start_paused = true)]
async fn blackhole_costs_exactly_the_timeout() {
    let (addr, task) = blackhole().await;
    let timeout = Duration::from_millis(500);
    let start = tokio::time::Instant::now();
    let r = probe(&spec(), &target(addr), timeout).await;
    let elapsed = start.elapsed();
    assert_fail(&r, "timed out after 500ms waiting for response");
    assert!(
        elapsed >= timeout && elapsed <= timeout + Duration::from_secs(1),
        "{elapsed:?}"
    );
    assert!(r.rtt >= timeout, "{r:?}");
    task.abort();
}

// On paused time: with nothing left to happen but the deadline, tokio's clock jumps to it.
#[tokio::test(start_paused = true)]
async fn stalled_body_costs_the_timeout() {
    let srv = serve(|_| Reply {
        delay: Duration::ZERO,
        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial".to_vec(),
        hold: true,
    })
    .await;
    let s = HttpSpec {
        body_contains: Some("ok".into()),
        ..spec()
    };
    let timeout = Duration::from_millis(400);
    let start = tokio::time::Instant::now();
    let r = probe(&s, &target(srv.addr), timeout).await;
    assert_fail(&r, "timed out after 400ms reading body");
    assert!(start.elapsed() >= timeout && start.elapsed() <= timeout + Duration::from_secs(1));
}

// On paused time: with nothing left to happen but the deadline, tokio's clock jumps to it.
#[tokio::test(start_paused = true)]
async fn slow_server_within_the_timeout_passes() {
    let srv = serve(|_| Reply {
        delay: Duration::from_millis(300),
        ..now(response(200, "", b"ok"))
    })
    .await;
    let r = probe(&spec(), &target(srv.addr), Duration::from_secs(1)).await;
    assert_pass(&r);
    assert!(
        r.rtt >= Duration::from_millis(300) && r.rtt < Duration::from_secs(1),
        "{r:?}"
    );
}

#[tokio::test]
async fn connection_refused_fails_fast() {
    let addr = TcpListener::bind((LOCALHOST, 0))
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let r = run(&spec(), addr).await;
    assert_fail(&r, "connection refused");
    assert!(r.rtt < Duration::from_millis(500), "{r:?}");
}

#[tokio::test]
async fn closed_without_answer_fails() {
    let srv = serve(|_| now(Vec::new())).await;
    let r = run(&spec(), srv.addr).await;
    assert!(
        !r.ok && !r.detail.is_empty() && r.rtt < Duration::from_secs(1),
        "{r:?}"
    );
}

#[tokio::test]
async fn killed_server_flips_pass_to_fail() {
    // A keep-alive server: a pooling client would send the second probe on the first connection.
    let srv = serve(|_| now(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec())).await;
    let (t, s) = (target(srv.addr), spec());
    let prober = HttpProber::new(&s, &t).unwrap();
    assert_pass(&prober.probe(T).await);
    assert_pass(&prober.probe(T).await);
    // No pooled connection: each attempt connected afresh.
    assert_eq!(srv.connections(), 2);
    srv.stop().await;
    assert_fail(&prober.probe(T).await, "connection refused");
}

#[tokio::test]
async fn ipv6_target_in_brackets() {
    let Ok(probe_bind) = TcpListener::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    drop(probe_bind);
    let srv = serve_on(
        "::1".parse().unwrap(),
        None,
        Arc::new(|_: &Seen| now(response(204, "", b""))),
    )
    .await;
    let t = target(srv.addr);
    let prober = HttpProber::new(&spec(), &t).unwrap();
    assert_eq!(
        prober.url().as_str(),
        format!("http://[::1]:{}/healthz", srv.addr.port())
    );
    assert_pass(&prober.probe(T).await);
    assert_eq!(
        srv.requests()[0].header("host"),
        Some(format!("[::1]:{}", srv.addr.port()).as_str())
    );
}

#[tokio::test]
async fn default_ports_and_bad_specs() {
    let t = Target {
        address: LOCALHOST,
        port: None,
        endpoint: "web-1".into(),
    };
    let p = HttpProber::new(&spec(), &t).unwrap();
    // The default port is implied by the scheme, so the URL shows none.
    assert_eq!(p.url().as_str(), "http://127.0.0.1/healthz");
    let p = HttpProber::new(
        &HttpSpec {
            tls: true,
            host: Some("a.example".into()),
            ..spec()
        },
        &t,
    )
    .unwrap();
    assert_eq!(p.url().as_str(), "https://a.example/healthz");

    for (bad, why) in [
        (
            HttpSpec {
                body_regex: Some("(".into()),
                ..spec()
            },
            "invalid body regex",
        ),
        (
            HttpSpec {
                path: "healthz".into(),
                ..spec()
            },
            "must start with '/'",
        ),
        (
            HttpSpec {
                method: "GE T".into(),
                ..spec()
            },
            "invalid HTTP method",
        ),
        (
            HttpSpec {
                headers: vec![("X Bad".into(), "v".into())],
                ..spec()
            },
            "invalid header",
        ),
        (
            HttpSpec {
                host: Some("bad host".into()),
                ..spec()
            },
            "invalid URL",
        ),
    ] {
        let e = HttpProber::new(&bad, &t).unwrap_err();
        assert!(e.to_string().contains(why), "{e} should say {why}");
        let r = probe(&bad, &t, T).await;
        assert!(!r.ok && r.detail.contains(why), "{r:?}");
    }
}
