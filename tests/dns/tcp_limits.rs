//! TCP limits over real sockets: slowloris clients (silent, or a byte at a time) are closed by
//! the idle and I/O timeouts and meanwhile cost other clients nothing (their TCP and UDP
//! queries answered); the per-client cap refuses one address's extra connections while
//! another address still connects; a connection is closed after its query cap; a client that
//! pipelines without reading is closed when a write is not taken within the I/O timeout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::rrl::{tcp_connect_from, udp_from, www};
use crate::support::wire::walk;
use crate::support::*;

/// How long after `t0` the server closed `s` (a read gives end of stream or a reset), reading
/// and discarding whatever comes first; `None` if it is still open after `within`.
fn closed_after(s: &mut TcpStream, t0: Instant, within: Duration) -> Option<Duration> {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 65536];
    while t0.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(t0.elapsed()), // reset
        }
    }
    None
}

/// A message with its TCP length prefix.
fn framed(q: &[u8]) -> Vec<u8> {
    let mut f = (q.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(q);
    f
}

fn answered(r: &[u8]) -> bool {
    walk(r, true).is_ok_and(|m| m.counts == [1, 2, 0, 0])
}

#[test]
fn slowloris_clients_are_closed_and_harmless_to_others() {
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        "tcp_idle_timeout_secs = 1\ntcp_io_timeout_ms = 300\ntcp_max_connections_per_client = 4\n",
    );
    let t0 = Instant::now();
    // Four connections from 127.0.0.2, its cap: two never send, two send their query a byte
    // every 100 ms (3.5 s for the 35 bytes).
    let mut silent: Vec<TcpStream> = (0..2)
        .map(|_| tcp_connect_from("127.0.0.2", srv.tcp))
        .collect();
    let slow: Vec<TcpStream> = (0..2)
        .map(|_| tcp_connect_from("127.0.0.2", srv.tcp))
        .collect();
    // A fifth from that address is closed at once.
    let mut fifth = tcp_connect_from("127.0.0.2", srv.tcp);
    let shut = closed_after(&mut fifth, Instant::now(), Duration::from_millis(250));
    assert!(
        shut.is_some(),
        "a fifth connection from one address is refused at once"
    );
    let dribblers: Vec<_> = slow
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let first = Instant::now();
                let writer = std::thread::spawn(move || {
                    for b in framed(&www(9, None)) {
                        if w.write_all(&[b]).is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                });
                let closed = closed_after(&mut s, first, Duration::from_secs(3));
                writer.join().unwrap();
                closed
            })
        })
        .collect();
    // Another address is served meanwhile, over TCP and UDP.
    let other = udp_from("127.0.0.3", TIMEOUT);
    for id in 0..20 {
        assert!(answered(&super::rrl::tcp_from(
            "127.0.0.3",
            srv.tcp,
            &www(id, None)
        )));
        other.send_to(&www(id, None), srv.udp).unwrap();
        let mut buf = [0u8; 512];
        let n = other.recv(&mut buf).expect("a UDP answer");
        assert!(answered(&buf[..n]));
    }
    // Each dribbler is closed by the I/O timeout, about 300 ms after its first byte, its
    // message never complete.
    for (i, d) in dribblers.into_iter().enumerate() {
        let took = d
            .join()
            .unwrap()
            .unwrap_or_else(|| panic!("dribbler {i} still open after 3 s"));
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
            "dribbler {i} closed after {took:?}"
        );
    }
    // The silent ones by the idle timeout, about a second after they opened.
    for (i, s) in silent.iter_mut().enumerate() {
        let took = closed_after(s, t0, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("silent connection {i} still open"));
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "silent {i} closed after {took:?}"
        );
    }
    // With its connections gone, 127.0.0.2 is served again.
    wait_for(Duration::from_secs(3), "127.0.0.2 served again", || {
        let mut s = tcp_connect_from("127.0.0.2", srv.tcp);
        write_framed(&mut s, &www(1, None));
        read_framed(&mut s).is_some_and(|r| answered(&r))
    });
    srv.stop();
}

#[test]
fn the_global_cap_refuses_extra_connections_from_any_address() {
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        "tcp_max_connections = 3\ntcp_max_connections_per_client = 2\n",
    );
    let ask = |s: &mut TcpStream| -> bool {
        write_framed(s, &www(1, None));
        read_framed(s).is_some_and(|r| answered(&r))
    };
    let mut open: Vec<TcpStream> = ["127.0.0.2", "127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|ip| tcp_connect_from(ip, srv.tcp))
        .collect();
    for s in open.iter_mut() {
        assert!(ask(s));
    }
    for ip in ["127.0.0.4", "127.0.0.2"] {
        let mut s = tcp_connect_from(ip, srv.tcp);
        assert!(
            !ask(&mut s),
            "a fourth connection (from {ip}) is closed without an answer"
        );
    }
    srv.stop();
}

#[test]
fn a_connection_is_closed_after_its_query_cap() {
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        "tcp_max_queries = 3\ntcp_max_in_flight = 1\n",
    );
    let mut s = tcp_connect_from("127.0.0.2", srv.tcp);
    let mut pipelined = Vec::new();
    for id in 0..5u16 {
        pipelined.extend_from_slice(&framed(&www(id, None)));
    }
    s.write_all(&pipelined).unwrap();
    for id in 0..3u16 {
        let r = read_framed(&mut s).expect("an answer within the cap");
        assert_eq!(u16::from_be_bytes([r[0], r[1]]), id);
        assert!(answered(&r));
    }
    assert!(read_framed(&mut s).is_none(), "closed after three");
    srv.stop();
}

#[test]
fn a_client_that_does_not_read_is_closed() {
    // Answers of about 1 KiB (big.example.com. TXT), so that the server's socket buffer fills
    // after a few thousand.
    let big: String = (0..4)
        .map(|i| format!("big 300 IN TXT \"{}\"\n", i.to_string().repeat(250)))
        .collect();
    let zone = format!("{EXAMPLE_ZONE}{big}");
    let srv = start(
        &[("example.com.", &zone)],
        "tcp_io_timeout_ms = 300\ntcp_max_queries = 1000000\n",
    );
    let mut txt = www(0, None);
    txt[13..16].copy_from_slice(b"big");
    let n = txt.len();
    txt[n - 3] = 16; // TXT
    // A small receive buffer, so that the server's writes stall soon.
    let s = {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.connect(&srv.tcp.into()).unwrap();
        TcpStream::from(s)
    };
    // Pipeline up to 200,000 queries (7 MB; 200 MB of answers) without reading a byte, from a
    // thread: once the server stops reading, its writes blocked, our writes block too, until it
    // closes.
    let mut w = s.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let t0 = Instant::now();
    let writer = std::thread::spawn(move || {
        let mut chunk = Vec::new();
        for id in 0..1000u16 {
            txt[..2].copy_from_slice(&id.to_be_bytes());
            chunk.extend_from_slice(&framed(&txt));
        }
        for _ in 0..200 {
            if w.write_all(&chunk).is_err() {
                return true; // the server closed the connection
            }
        }
        false
    });
    let closed_writing = writer.join().unwrap();
    assert!(
        closed_writing,
        "the server closed a connection that never read"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // Other clients are served all along.
    assert!(answered(&super::rrl::tcp_from(
        "127.0.0.3",
        srv.tcp,
        &www(1, None)
    )));
    srv.stop();
}
