//! Response rate limiting over real sockets: a UDP flood from one client is limited (answers
//! up to the burst and the rate, then every second response truncated, the rest dropped) while
//! another client is answered in full; a limited client still gets its answer over TCP (dig
//! retries there by itself); a flood that presents a valid server cookie is not limited.
//!
//! Clients send from 127.0.0.2 and 127.0.0.3 with `ipv4_prefix = 32`, so they are two prefixes,
//! and `exempt = []`, since loopback is exempt by default. Every flood is bounded: 20,000
//! queries sent within about two seconds.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::wire::walk;
use crate::support::*;

/// Limits low enough for a test to pass them quickly.
const LIMITS: &str = "[rrl]\nrate = 100\nburst = 100\nslip = 2\nipv4_prefix = 32\nexempt = []\n";
/// Queries in a flood.
const FLOOD: usize = 20_000;

/// A UDP socket on `ip`, any port, that waits at most `timeout` for a datagram.
pub fn udp_from(ip: &str, timeout: Duration) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s
}

/// `www.example.com. A` with ID `id`, and an OPT with a COOKIE option when `cookie` is given.
pub fn www(id: u16, cookie: Option<&[u8]>) -> Vec<u8> {
    let mut q = vec![(id >> 8) as u8, id as u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
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

/// The COOKIE option's data in a response's OPT record, if any.
pub fn cookie_in(response: &[u8]) -> Option<Vec<u8>> {
    let layout = walk(response, true).unwrap();
    let rdata = &layout.opts.first()?.rdata;
    let mut at = 0;
    while at + 4 <= rdata.len() {
        let code = u16::from_be_bytes([rdata[at], rdata[at + 1]]);
        let len = u16::from_be_bytes([rdata[at + 2], rdata[at + 3]]) as usize;
        if code == 10 {
            return Some(rdata[at + 4..at + 4 + len].to_vec());
        }
        at += 4 + len;
    }
    None
}

/// What a flood got back.
#[derive(Debug, Default)]
struct Replies {
    /// Whole answers: TC clear, the two A records of www.
    full: usize,
    /// Truncated: TC set, no records but the question (and the OPT, with a cookie).
    slipped: usize,
}

/// Send `FLOOD` queries from `socket` to `server`, paced (200 every 20 ms), while a thread reads
/// the replies; what came back, and how long the sending took.
fn flood(
    socket: &UdpSocket,
    server: SocketAddr,
    query: impl Fn(u16) -> Vec<u8>,
) -> (Replies, Duration) {
    let reader = socket.try_clone().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let counting = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            reader
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut r = Replies::default();
            let mut buf = [0u8; 4096];
            loop {
                match reader.recv(&mut buf) {
                    Ok(n) => {
                        let m = walk(&buf[..n], true).unwrap();
                        let tc = m.flags & 0x0200 != 0;
                        match (tc, m.counts) {
                            (false, [1, 2, 0, _]) => r.full += 1,
                            (true, [1, 0, 0, _]) => r.slipped += 1,
                            other => panic!("neither whole nor slipped: {other:?} {m:?}"),
                        }
                    }
                    Err(_) if done.load(Ordering::SeqCst) => return r,
                    Err(_) => {}
                }
            }
        })
    };
    let t0 = Instant::now();
    for chunk in 0..FLOOD / 200 {
        for i in 0..200 {
            socket
                .send_to(&query((chunk * 200 + i) as u16), server)
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = t0.elapsed();
    std::thread::sleep(Duration::from_millis(300)); // the last replies
    done.store(true, Ordering::SeqCst);
    (counting.join().unwrap(), took)
}

/// One query from `socket` and its reply (panics when none comes).
fn ask(socket: &UdpSocket, server: SocketAddr, q: &[u8]) -> Vec<u8> {
    socket.send_to(q, server).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a reply");
    buf[..n].to_vec()
}

#[test]
fn a_udp_flood_from_one_prefix_is_limited_while_another_is_answered_in_full() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], LIMITS);
    let server = srv.udp;
    // The other client: 40 queries a second, one at a time, all through the flood.
    let other = std::thread::spawn(move || {
        let s = udp_from("127.0.0.3", Duration::from_secs(2));
        let mut answered = 0;
        for id in 0..60u16 {
            let r = walk(&ask(&s, server, &www(id, None)), true).unwrap();
            assert_eq!(r.flags & 0x0200, 0, "not truncated");
            assert_eq!(r.counts, [1, 2, 0, 0], "the whole answer");
            answered += 1;
            std::thread::sleep(Duration::from_millis(25));
        }
        answered
    });
    let flooder = udp_from("127.0.0.2", Duration::from_secs(2));
    let (got, took) = flood(&flooder, server, |id| www(id, None));
    assert_eq!(
        other.join().unwrap(),
        60,
        "the other prefix answered in full"
    );
    // Answers: the burst, then the rate, over the time the flood lasted (a second's slack).
    let most = 100 + (100.0 * (took.as_secs_f64() + 1.0)) as usize;
    assert!(
        got.full >= 100 && got.full <= most,
        "{got:?} in {took:?}: between 100 and {most} whole answers"
    );
    // Of the rest, one in two goes out truncated; the others are dropped (a few truncated ones
    // may be lost on the way, none added).
    let limited = FLOOD - got.full;
    assert!(
        got.slipped <= limited / 2 + 1 && got.slipped >= limited * 2 / 5,
        "{got:?}: about half of {limited} limited responses slipped"
    );
    assert!(got.full + got.slipped < FLOOD * 6 / 10, "{got:?}");
    // The limited client is answered over TCP, which is never limited.
    let tcp = tcp_from("127.0.0.2", srv.tcp, &www(7, None));
    assert_eq!(walk(&tcp, true).unwrap().counts, [1, 2, 0, 0]);
    srv.stop();
}

/// One query over TCP from `ip`; the reply.
pub fn tcp_from(ip: &str, server: SocketAddr, q: &[u8]) -> Vec<u8> {
    let mut s = tcp_connect_from(ip, server);
    write_framed(&mut s, q);
    read_framed(&mut s).expect("a TCP answer")
}

/// A TCP connection from `ip` (any port) to `server`.
pub fn tcp_connect_from(ip: &str, server: SocketAddr) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(ip.parse().unwrap(), 0).into())
        .unwrap();
    s.connect_timeout(&server.into(), TIMEOUT).unwrap();
    let s: std::net::TcpStream = s.into();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// dig, limited to one response a second with every limited one slipped, gets a truncated
/// answer to its second query and asks again over TCP by itself.
#[test]
fn dig_retries_a_slipped_answer_over_tcp() {
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        "[rrl]\nrate = 1\nburst = 1\nslip = 1\nipv4_prefix = 32\nexempt = []\n",
    );
    let dig = |n: usize| {
        let out = std::process::Command::new("dig")
            .args(["-b", "127.0.0.2", "-p", &srv.udp.port().to_string()])
            .args([
                "@127.0.0.1",
                "www.example.com.",
                "A",
                "+nocookie",
                "+tries=1",
                "+time=2",
            ])
            .output()
            .expect("dig runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "dig {n}: {text}");
        text
    };
    let first = dig(1);
    assert!(!first.contains("Truncated"), "{first}");
    assert!(first.contains("192.0.2.10"), "{first}");
    let second = dig(2);
    assert!(
        second.contains("Truncated, retrying in TCP mode"),
        "the second answer slipped: {second}"
    );
    assert!(
        second.contains("192.0.2.10") && second.contains("192.0.2.11"),
        "{second}"
    );
    srv.stop();
}

#[test]
fn a_flood_with_valid_cookies_is_not_limited() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], LIMITS);
    let s = udp_from("127.0.0.2", Duration::from_secs(2));
    // A client cookie alone: answered (within the burst) with a server cookie.
    let client = [0xc0, 0x0c, 0x1e, 0, 1, 2, 3, 4];
    let first = ask(&s, srv.udp, &www(1, Some(&client)));
    let cookie = cookie_in(&first).expect("a cookie in the answer");
    assert_eq!((cookie.len(), &cookie[..8]), (24, &client[..]));
    // 20,000 queries with it, up to 100 in flight: every one answered whole. A reply that does
    // not come (a limited one) fails the receive after 2 s.
    let t0 = Instant::now();
    let (mut sent, mut answered) = (0usize, 0usize);
    let mut buf = [0u8; 4096];
    while answered < FLOOD {
        while sent < FLOOD && sent - answered < 100 {
            s.send_to(&www(sent as u16, Some(&cookie)), srv.udp)
                .unwrap();
            sent += 1;
        }
        let n = s
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("reply {answered} of {FLOOD} did not come: {e}"));
        let m = walk(&buf[..n], true).unwrap();
        assert_eq!(
            (m.flags & 0x0200, m.counts),
            (0, [1, 2, 0, 1]),
            "whole answer"
        );
        assert_eq!(cookie_in(&buf[..n]).as_deref(), Some(&cookie[..]));
        answered += 1;
    }
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(30), "{took:?}");
    // The same flood with a server cookie that does not validate is limited like any other.
    let mut forged = cookie.clone();
    forged[23] ^= 0xff;
    let (got, _) = flood(&s, srv.udp, |id| www(id, Some(&forged)));
    assert!(got.full <= 100 + 400, "{got:?}");
    assert!(got.slipped > 0, "{got:?}");
    srv.stop();
}

/// Loopback is exempt by default: a burst far past the default rate is answered in full.
#[test]
fn loopback_is_exempt_by_default() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], "");
    let s = udp_from("127.0.0.2", Duration::from_secs(2));
    let mut buf = [0u8; 4096];
    let mut answered = 0;
    let (mut sent, total) = (0usize, 2000usize);
    while answered < total {
        while sent < total && sent - answered < 100 {
            s.send_to(&www(sent as u16, None), srv.udp).unwrap();
            sent += 1;
        }
        let n = s.recv(&mut buf).expect("every reply");
        assert_eq!(walk(&buf[..n], true).unwrap().counts, [1, 2, 0, 0]);
        answered += 1;
    }
    srv.stop();
}
