//! The defences' counters move with real events: rate-limited UDP responses by class and
//! action, cookies by result, TCP connections refused and closed by reason, the open gauge.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::support::exposition::{registry_lock, sample};
use crate::support::*;

/// `name. A` with ID `id`, and an OPT with a COOKIE option when `cookie` is given.
fn query(id: u16, name: &[u8], cookie: Option<&[u8]>) -> Vec<u8> {
    let mut q = vec![(id >> 8) as u8, id as u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(name);
    q.extend_from_slice(&[0, 1, 0, 1]);
    if let Some(c) = cookie {
        q[11] = 1;
        q.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0]);
        q.extend_from_slice(&(4 + c.len() as u16).to_be_bytes());
        q.extend_from_slice(&[0, 10]);
        q.extend_from_slice(&(c.len() as u16).to_be_bytes());
        q.extend_from_slice(c);
    }
    q
}

const WWW: &[u8] = b"\x03www\x07example\x03com\x00";
const NOPE: &[u8] = b"\x04nope\x07example\x03com\x00";

fn delta(before: &str, after: &str, series: &str) -> f64 {
    sample(after, series) - sample(before, series)
}

/// A TCP connection from `ip`.
fn connect_from(ip: &str, server: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(ip.parse().unwrap(), 0).into())
        .unwrap();
    s.connect(&server.into()).unwrap();
    let s = TcpStream::from(s);
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

/// Read until the server closes; whether it did within 3 s.
fn closed(s: &mut TcpStream) -> bool {
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < Duration::from_secs(3) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
    false
}

#[test]
fn rate_limiting_cookies_and_tcp_limits_are_counted() {
    let _registry = registry_lock();
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        "tcp_idle_timeout_secs = 1\ntcp_io_timeout_ms = 200\ntcp_max_connections_per_client = 2\n\
         tcp_max_queries = 2\n\
         [rrl]\nrate = 10\nburst = 10\nslip = 2\nipv4_prefix = 32\nexempt = []\n",
    );
    let before = meridian::metrics::render();
    // 1,000 NXDOMAIN queries at once from 127.0.0.2: ten pass, the rest are limited, one in two
    // of those slipped.
    let udp = UdpSocket::bind("127.0.0.2:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for id in 0..1000 {
        udp.send_to(&query(id, NOPE, None), srv.udp).unwrap();
        if id % 100 == 99 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Cookies: a client cookie alone, the server cookie sent back, a forged one (from
    // 127.0.0.3, not limited: within its burst).
    let c = UdpSocket::bind("127.0.0.3:0").unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 4096];
    c.send_to(&query(1, WWW, Some(&[3; 8])), srv.udp).unwrap();
    let n = c.recv(&mut buf).unwrap();
    let cookie = buf[n - 24..n].to_vec(); // the OPT's last option, the COOKIE
    assert_eq!(&cookie[..8], &[3; 8]);
    c.send_to(&query(2, WWW, Some(&cookie)), srv.udp).unwrap();
    c.recv(&mut buf).unwrap();
    let mut forged = cookie.clone();
    forged[23] ^= 1;
    c.send_to(&query(3, WWW, Some(&forged)), srv.udp).unwrap();
    c.recv(&mut buf).unwrap();
    // TCP: two connections from 127.0.0.4 (its cap) and a third refused; one of the two
    // closed after its query cap (two answers), the other idle.
    let mut capped = connect_from("127.0.0.4", srv.tcp);
    let mut idle = connect_from("127.0.0.4", srv.tcp);
    let mut third = connect_from("127.0.0.4", srv.tcp);
    assert!(closed(&mut third), "refused");
    for id in 0..2 {
        write_framed(&mut capped, &query(id, WWW, None));
        read_framed(&mut capped).expect("an answer");
    }
    assert!(closed(&mut capped), "closed after two queries");
    // A byte of a message, then nothing: closed by the I/O timeout.
    let mut slow = connect_from("127.0.0.5", srv.tcp);
    slow.write_all(&[0]).unwrap();
    assert!(closed(&mut slow), "closed by the I/O timeout");
    assert!(closed(&mut idle), "closed by the idle timeout");

    let limited = |action: &str| {
        format!(r#"meridian_rrl_limited_total{{class="nxdomain",action="{action}"}}"#)
    };
    let refused = r#"meridian_tcp_connections_refused_total{reason="max_per_client"}"#;
    let closed_by = |r: &str| format!(r#"meridian_tcp_connections_closed_total{{reason="{r}"}}"#);
    let cookies = |r: &str| format!(r#"meridian_dns_cookies_total{{result="{r}"}}"#);
    let mut after = String::new();
    wait_for(Duration::from_secs(5), "the counts flushed", || {
        after = meridian::metrics::render();
        delta(&before, &after, &limited("dropped")) + delta(&before, &after, &limited("slipped"))
            >= 990.0
            && delta(&before, &after, &cookies("invalid")) >= 1.0
            && delta(&before, &after, &closed_by("idle")) >= 1.0
    });
    let (dropped, slipped) = (
        delta(&before, &after, &limited("dropped")),
        delta(&before, &after, &limited("slipped")),
    );
    assert_eq!(dropped + slipped, 990.0, "all but the burst of ten");
    // Each of the two workers slips every second response it limits.
    assert!(
        (494.0..=495.0).contains(&slipped),
        "slip 2: one in two ({slipped})"
    );
    let positive = r#"meridian_rrl_limited_total{class="positive",action="dropped"}"#;
    assert_eq!(delta(&before, &after, positive), 0.0, "another class");
    for (result, n) in [("client_only", 1.0), ("valid", 1.0), ("invalid", 1.0)] {
        assert_eq!(delta(&before, &after, &cookies(result)), n, "{result}");
    }
    assert_eq!(delta(&before, &after, refused), 1.0);
    for (reason, n) in [("max_queries", 1.0), ("read_timeout", 1.0), ("idle", 1.0)] {
        assert_eq!(delta(&before, &after, &closed_by(reason)), n, "{reason}");
    }
    assert_eq!(sample(&after, "meridian_tcp_connections_open"), 0.0);
    srv.stop();
}
