//! Probers against real servers that each test starts on 127.0.0.1:0 (and drops at its end):
//! TCP, UDP, DNS over UDP, ICMP echo to loopback, and scripts.
//!
//! Timing bounds: a failure that should be fast must come well under its timeout; one that
//! must cost its timeout must take between the timeout and the timeout plus one second.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;
use meridian::health::probe::{
    self, DnsSpec, ExecSpec, IcmpSpec, ProbeResult, ProbeSpec, Target, TcpSpec, UdpSpec, exec,
    icmp, net,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

use crate::support::target::{
    LOCALHOST, SERVE_MAX, probe_target as target, tcp_server, udp_server,
};

/// The timeout of probes that are expected to run out of time.
const SHORT: Duration = Duration::from_millis(500);
/// The timeout of probes that are expected to finish early.
const LONG: Duration = Duration::from_secs(3);

/// Asserts that a probe failed after costing its whole timeout, and not much more.
fn assert_costs_timeout(r: &ProbeResult, elapsed: Duration, timeout: Duration) {
    assert!(!r.ok, "{r:?}");
    assert!(
        elapsed >= timeout && elapsed <= timeout + Duration::from_secs(1),
        "took {elapsed:?} for a {timeout:?} timeout: {r:?}"
    );
    assert!(r.rtt >= timeout && r.rtt <= elapsed, "{r:?}");
}

/// Asserts a fast failure: well before `LONG`.
fn assert_fails_fast(r: &ProbeResult, elapsed: Duration) {
    assert!(!r.ok, "{r:?}");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}: {r:?}");
}

// ---- TCP ----

#[tokio::test]
async fn tcp_connect_passes() {
    let addr = tcp_server(None).await;
    let spec = ProbeSpec::Tcp(TcpSpec::default());
    let r = probe::run(&spec, &target(addr), LONG).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "connected");
    assert!(r.rtt < Duration::from_secs(1), "{r:?}");
}

#[tokio::test]
async fn tcp_refused_fails_fast() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let start = Instant::now();
    let r = net::tcp(&TcpSpec::default(), &target(addr), LONG).await;
    assert_fails_fast(&r, start.elapsed());
    assert_eq!(r.detail, "connection refused");
}

// On paused time: with nothing left to happen but the deadline, tokio's clock jumps to it.
#[tokio::test(start_paused = true)]
async fn tcp_blackhole_costs_its_timeout() {
    // Accepts, reads the request, never replies.
    let addr = tcp_server(None).await;
    let spec = TcpSpec {
        send: Some(b"PING\r\n".to_vec()),
        expect_prefix: Some(b"+PONG".to_vec()),
    };
    let start = tokio::time::Instant::now();
    let r = net::tcp(&spec, &target(addr), SHORT).await;
    assert_costs_timeout(&r, start.elapsed(), SHORT);
    assert!(r.detail.starts_with("timed out after 500ms"), "{r:?}");
}

#[tokio::test]
async fn tcp_send_expect_prefix_matches() {
    let addr = tcp_server(Some(b"+PONG\r\n")).await;
    let spec = TcpSpec {
        send: Some(b"PING\r\n".to_vec()),
        expect_prefix: Some(b"+PONG".to_vec()),
    };
    let r = net::tcp(&spec, &target(addr), LONG).await;
    assert!(r.ok, "{r:?}");
    assert!(r.rtt < Duration::from_secs(1), "{r:?}");
}

#[tokio::test]
async fn tcp_send_expect_prefix_mismatch() {
    let addr = tcp_server(Some(b"-ERR unknown command\r\n")).await;
    let spec = TcpSpec {
        send: Some(b"PING\r\n".to_vec()),
        expect_prefix: Some(b"+PONG".to_vec()),
    };
    let start = Instant::now();
    let r = net::tcp(&spec, &target(addr), LONG).await;
    assert_fails_fast(&r, start.elapsed());
    assert!(
        r.detail.starts_with("reply does not start with \"+PONG\""),
        "{r:?}"
    );
}

// ---- UDP ----

#[tokio::test]
async fn udp_echo_passes() {
    let addr = udp_server(true, b"").await;
    let spec = UdpSpec {
        send: b"hello".to_vec(),
        expect_prefix: Some(b"hel".to_vec()),
    };
    let r = net::udp(&spec, &target(addr), LONG).await;
    assert!(r.ok, "{r:?}");
    let any = UdpSpec {
        send: b"hello".to_vec(),
        expect_prefix: None,
    };
    let r = net::udp(&any, &target(addr), LONG).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "reply received (5 bytes)");
}

#[tokio::test]
async fn udp_prefix_mismatch_fails() {
    let addr = udp_server(true, b"ERR ").await;
    let spec = UdpSpec {
        send: b"hello".to_vec(),
        expect_prefix: Some(b"hello".to_vec()),
    };
    let r = net::udp(&spec, &target(addr), LONG).await;
    assert!(!r.ok, "{r:?}");
    assert!(
        r.detail.starts_with("reply does not start with \"hello\""),
        "{r:?}"
    );
}

// On paused time: with nothing left to happen but the deadline, tokio's clock jumps to it.
#[tokio::test(start_paused = true)]
async fn udp_no_reply_costs_its_timeout() {
    let addr = udp_server(false, b"").await;
    let spec = UdpSpec {
        send: b"hello".to_vec(),
        expect_prefix: None,
    };
    let start = tokio::time::Instant::now();
    let r = net::udp(&spec, &target(addr), SHORT).await;
    assert_costs_timeout(&r, start.elapsed(), SHORT);
    assert!(r.detail.starts_with("timed out after 500ms"), "{r:?}");
}

#[tokio::test]
async fn udp_closed_port_fails_fast() {
    let sock = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let addr = sock.local_addr().unwrap();
    drop(sock);
    let spec = UdpSpec {
        send: b"hello".to_vec(),
        expect_prefix: None,
    };
    let start = Instant::now();
    let r = net::udp(&spec, &target(addr), LONG).await;
    assert_fails_fast(&r, start.elapsed());
    assert_eq!(r.detail, "port unreachable");
}

#[tokio::test]
async fn udp_without_port_fails() {
    let t = Target {
        address: LOCALHOST,
        port: None,
        endpoint: "x".into(),
    };
    let r = net::udp(&UdpSpec::default(), &t, LONG).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "udp probe needs a port");
}

// ---- DNS ----

/// A DNS responder: for each query, first sends `decoy` replies with a wrong id (NOERROR), then
/// (if `answer`) the real reply with `rcode`. Each query's (name, type) goes to the channel.
async fn dns_server(
    rcode: ResponseCode,
    decoys: usize,
    answer: bool,
) -> (SocketAddr, mpsc::UnboundedReceiver<(String, RecordType)>) {
    let sock = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let addr = sock.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        for _ in 0..SERVE_MAX {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let q = Message::from_vec(&buf[..n]).expect("the probe sends a valid query");
            assert_eq!(q.metadata.message_type, MessageType::Query);
            let question = &q.queries[0];
            let _ = tx.send((question.name().to_ascii(), question.query_type()));
            for i in 0..decoys {
                let mut decoy =
                    Message::response(q.metadata.id.wrapping_add(1 + i as u16), OpCode::Query);
                decoy.add_query(question.clone());
                let _ = sock.send_to(&decoy.to_vec().unwrap(), peer).await;
            }
            if answer {
                let mut reply = Message::error_msg(q.metadata.id, OpCode::Query, rcode);
                reply.add_query(question.clone());
                let _ = sock.send_to(&reply.to_vec().unwrap(), peer).await;
            }
        }
    });
    (addr, rx)
}

fn dns_spec(rcode: u8) -> DnsSpec {
    DnsSpec {
        name: "health.example.com".into(),
        qtype: u16::from(RecordType::AAAA),
        rcode,
    }
}

#[tokio::test]
async fn dns_passes_when_rcode_matches() {
    let (addr, mut queries) = dns_server(ResponseCode::NoError, 0, true).await;
    let r = net::dns(&dns_spec(0), &target(addr), LONG).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "rcode NOERROR");
    let (name, qtype) = queries.recv().await.unwrap();
    assert_eq!(
        (name.as_str(), qtype),
        ("health.example.com.", RecordType::AAAA)
    );

    let (addr, _) = dns_server(ResponseCode::NXDomain, 0, true).await;
    let r = net::dns(&dns_spec(3), &target(addr), LONG).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "rcode NXDOMAIN");
}

#[tokio::test]
async fn dns_fails_on_another_rcode() {
    let (addr, _) = dns_server(ResponseCode::ServFail, 0, true).await;
    let r = net::dns(&dns_spec(0), &target(addr), LONG).await;
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.detail, "rcode SERVFAIL, expected NOERROR");
}

#[tokio::test]
async fn dns_ignores_replies_with_another_id() {
    // Decoys say NOERROR with the wrong id; the real reply says SERVFAIL.
    let (addr, _) = dns_server(ResponseCode::ServFail, 3, true).await;
    let r = net::dns(&dns_spec(0), &target(addr), LONG).await;
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.detail, "rcode SERVFAIL, expected NOERROR");

    // Only decoys: nothing counts, the probe runs out of time.
    let (addr, _) = dns_server(ResponseCode::NoError, 3, false).await;
    let start = Instant::now();
    let r = net::dns(&dns_spec(0), &target(addr), SHORT).await;
    assert_costs_timeout(&r, start.elapsed(), SHORT);
}

// ---- ICMP ----

#[tokio::test]
async fn icmp_echo_to_ipv4_loopback() {
    let mode = icmp::icmp_available();
    println!("ICMP mode: {mode:?}");
    let mode = mode.expect("CI runs as root: a ping socket or a raw socket must work");
    let t = Target {
        address: LOCALHOST,
        port: None,
        endpoint: "lo".into(),
    };
    for _ in 0..3 {
        let r = icmp::probe(&IcmpSpec::default(), &t, LONG).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.detail, format!("echo reply ({mode})"));
        assert!(r.rtt < Duration::from_secs(1), "{r:?}");
    }
}

#[tokio::test]
async fn icmp_echo_to_ipv6_loopback() {
    if UdpSocket::bind("[::1]:0").await.is_err() {
        println!("no IPv6 loopback here: skipped");
        return;
    }
    let t = Target {
        address: "::1".parse().unwrap(),
        port: None,
        endpoint: "lo6".into(),
    };
    let r = icmp::probe(&IcmpSpec::default(), &t, LONG).await;
    println!("ICMPv6: {r:?}");
    assert!(r.ok, "{r:?}");
}

#[tokio::test]
async fn icmp_probes_run_concurrently() {
    let t = Target {
        address: LOCALHOST,
        port: None,
        endpoint: "lo".into(),
    };
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let t = t.clone();
        set.spawn(async move { icmp::probe(&IcmpSpec {}, &t, LONG).await });
    }
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        assert!(r.ok, "{r:?}");
    }
}

// ---- exec ----

fn exec_spec(args: &[&str]) -> ExecSpec {
    ExecSpec {
        command: args.iter().map(|s| s.to_string()).collect(),
    }
}

fn local_target() -> Target {
    Target {
        address: LOCALHOST,
        port: Some(8080),
        endpoint: "web-1".into(),
    }
}

#[tokio::test]
async fn exec_exit_zero_passes() {
    let r = exec::probe(&exec_spec(&["true"]), &local_target(), LONG).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "exit 0");
}

#[tokio::test]
async fn exec_failure_keeps_first_line_of_output() {
    let spec = exec_spec(&["sh", "-c", "echo db down; echo more; exit 1"]);
    let r = exec::probe(&spec, &local_target(), LONG).await;
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.detail, "exit 1: db down");

    let spec = exec_spec(&["sh", "-c", "echo on stderr >&2; exit 3"]);
    let r = exec::probe(&spec, &local_target(), LONG).await;
    assert_eq!(r.detail, "exit 3: on stderr");
}

#[tokio::test]
async fn exec_missing_program_fails() {
    let r = exec::probe(&exec_spec(&["/nonexistent/check"]), &local_target(), LONG).await;
    assert!(!r.ok, "{r:?}");
    assert!(
        r.detail.starts_with("cannot run \"/nonexistent/check\""),
        "{r:?}"
    );
}

/// Whether a process is gone: no /proc entry, or a zombie waiting for init to reap it (an
/// orphan's reaping is init's business, not the prober's).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn read_pid(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[tokio::test]
async fn exec_hang_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // The shell records its pid and that of a child it waits for, then hangs.
    let script = format!("echo $$ > {d}/pid; sleep 30 & echo $! > {d}/child; echo started; wait");
    let spec = exec_spec(&["sh", "-c", &script]);
    let start = Instant::now();
    let r = exec::probe(&spec, &local_target(), SHORT).await;
    assert_costs_timeout(&r, start.elapsed(), SHORT);
    assert_eq!(r.detail, "killed after timeout 500ms: started");

    let pid = read_pid(&dir.path().join("pid"));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "script {pid} killed and reaped"
    );
    let child = read_pid(&dir.path().join("child"));
    let deadline = Instant::now() + Duration::from_secs(2);
    while !gone(&child) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        gone(&child),
        "the script's child {child} was killed with its group"
    );
}

#[tokio::test]
async fn exec_substitutes_address_port_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("args");
    let script = format!("echo \"$1|$2|$3|$4\" > {}", out.display());
    let spec = exec_spec(&[
        "sh",
        "-c",
        &script,
        "sh",
        "{address}",
        "{port}",
        "{endpoint}",
        "{address}:{port}",
    ]);
    let r = exec::probe(&spec, &local_target(), LONG).await;
    assert!(r.ok, "{r:?}");
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(got.trim(), "127.0.0.1|8080|web-1|127.0.0.1:8080");
}
