//! Wildcard listen addresses (issue 10): a server bound to `0.0.0.0` or `::` must answer each
//! UDP query from the address the query was sent to. Clients here use *connected* UDP sockets,
//! as stub resolvers do, so the kernel discards a reply from any other address and a wrong
//! source shows up as a timeout. TCP is checked on the same addresses.
//!
//! Only loopback addresses are used: all of 127.0.0.0/8 is local on Linux without configuration,
//! and `::1` is the one IPv6 loopback address. Every loop is bounded in count and time.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::support::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

/// Names asked and the A records they must answer with (from [`EXAMPLE_ZONE`]).
const ASKED: [(&str, &[&str]); 3] = [
    ("www.example.com.", &["192.0.2.10", "192.0.2.11"]),
    ("mail.example.com.", &["192.0.2.25"]),
    ("ns1.example.com.", &["192.0.2.53"]),
];

/// A query for `ASKED[k]` with the given ID, as bytes.
fn query_bytes(k: usize, id: u16) -> Vec<u8> {
    let mut bytes = query(ASKED[k].0, RecordType::A, Some(1232))
        .to_vec()
        .unwrap();
    bytes[..2].copy_from_slice(&id.to_be_bytes());
    bytes
}

/// Why `reply` is not the right answer to query `k` with `id`, if it is not.
fn wrong_answer(reply: &[u8], k: usize, id: u16) -> Option<String> {
    let m = match Message::from_vec(reply) {
        Ok(m) => m,
        Err(e) => return Some(format!("unparsable reply: {e}")),
    };
    let mut got: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    got.sort();
    if m.metadata.id != id || m.metadata.response_code != ResponseCode::NoError || got != ASKED[k].1
    {
        return Some(format!(
            "id {} (want {id}), {:?}, answers {got:?} (want {:?})",
            m.metadata.id, m.metadata.response_code, ASKED[k].1
        ));
    }
    None
}

/// A UDP client connected to `to`: the kernel hands it only datagrams from exactly `to`.
fn connected(to: SocketAddr, timeout: Duration) -> UdpSocket {
    let local = if to.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let s = UdpSocket::bind(local).unwrap();
    s.connect(to).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s
}

/// A server listening on `0.0.0.0:0` and `[::]:0`; its IPv4 and IPv6 ports.
fn wildcard_server() -> (TestServer, u16, u16) {
    let srv = start_on(
        &["0.0.0.0:0", "[::]:0"],
        &[("example.com.", EXAMPLE_ZONE)],
        "",
    );
    let s = srv.server.as_ref().unwrap();
    let (udp, tcp) = (s.udp_addrs(), s.tcp_addrs());
    assert!(udp[0].ip().is_unspecified() && udp[1].ip().is_unspecified());
    assert_eq!(
        (udp[0].port(), udp[1].port()),
        (tcp[0].port(), tcp[1].port())
    );
    let (v4, v6) = (udp[0].port(), udp[1].port());
    (srv, v4, v6)
}

/// The addresses a wildcard server is asked at: three IPv4 loopbacks and `::1`.
fn destinations(v4: u16, v6: u16) -> Vec<SocketAddr> {
    let mut d: Vec<SocketAddr> = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|ip| SocketAddr::new(ip.parse().unwrap(), v4))
        .collect();
    d.push(SocketAddr::new("::1".parse().unwrap(), v6));
    d
}

/// One query over a connected UDP socket; what was wrong, if anything.
fn ask_udp(to: SocketAddr, k: usize, id: u16) -> Option<String> {
    let s = connected(to, TIMEOUT);
    s.send(&query_bytes(k, id)).unwrap();
    let mut buf = [0u8; 4096];
    match s.recv_from(&mut buf) {
        Ok((n, from)) if from == to => wrong_answer(&buf[..n], k, id),
        Ok((_, from)) => Some(format!("reply from {from}")),
        Err(e) => Some(format!("no reply from {to} ({e})")),
    }
}

#[test]
fn wildcard_udp_replies_from_the_queried_address() {
    let (srv, v4, v6) = wildcard_server();
    let mut failures = Vec::new();
    for (n, to) in destinations(v4, v6).into_iter().enumerate() {
        for (k, (name, _)) in ASKED.iter().enumerate() {
            let id = (n * 16 + k) as u16 + 1;
            if let Some(why) = ask_udp(to, k, id) {
                failures.push(format!("UDP {to} {name}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    srv.stop();
}

#[test]
fn wildcard_tcp_answers_on_every_address() {
    let (srv, v4, v6) = wildcard_server();
    for to in destinations(v4, v6) {
        let mut s = TcpStream::connect_timeout(&to, TIMEOUT).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(s.peer_addr().unwrap(), to);
        // Two queries on one connection: the accepted socket keeps the queried address.
        for (k, (name, _)) in ASKED.iter().enumerate().take(2) {
            let id = 0x4000 + k as u16;
            write_framed(&mut s, &query_bytes(k, id));
            let reply = read_framed(&mut s).unwrap_or_else(|| panic!("TCP {to}: no answer"));
            if let Some(why) = wrong_answer(&reply, k, id) {
                panic!("TCP {to} {name}: {why}");
            }
        }
    }
    srv.stop();
}

/// Queries sent back to back from several connected sockets to four addresses, interleaved, so
/// that the workers' `recvmmsg` batches hold datagrams for different destinations: each must go
/// back from its own address, with its own ID.
#[test]
fn wildcard_udp_batches_mixing_destinations() {
    const SOCKETS_PER_DST: usize = 2;
    const ROUNDS: usize = 5;
    const PER_SOCKET_PER_ROUND: usize = 5; // 4 addresses x 2 sockets x 5 x 5 rounds = 200
    let (srv, v4, _) = wildcard_server();
    let dsts: Vec<SocketAddr> = (1..=4)
        .map(|i| SocketAddr::new(IpAddr::from([127, 0, 0, i]), v4))
        .collect();
    let clients: Vec<(SocketAddr, UdpSocket)> = dsts
        .iter()
        .flat_map(|&d| (0..SOCKETS_PER_DST).map(move |_| (d, connected(d, TIMEOUT))))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next_id: u16 = 1;
    let mut answered = 0;
    for _ in 0..ROUNDS {
        // Sent first, all of them (a round is small enough for the socket buffers), ...
        let mut pending: Vec<HashMap<u16, usize>> = vec![HashMap::new(); clients.len()];
        for j in 0..PER_SOCKET_PER_ROUND {
            for (c, (_, s)) in clients.iter().enumerate() {
                let k = (c + j) % ASKED.len();
                s.send(&query_bytes(k, next_id)).unwrap();
                pending[c].insert(next_id, k);
                next_id += 1;
            }
        }
        // ... then every reply collected, checked against what its socket asked.
        for (c, (dst, s)) in clients.iter().enumerate() {
            let mut buf = [0u8; 4096];
            while !pending[c].is_empty() {
                assert!(Instant::now() < deadline, "out of time");
                let (n, from) = s
                    .recv_from(&mut buf)
                    .unwrap_or_else(|e| panic!("{dst}: {} unanswered ({e})", pending[c].len()));
                assert_eq!(from, *dst);
                assert!(n >= 12, "{dst}: short reply");
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                let k = pending[c]
                    .remove(&id)
                    .unwrap_or_else(|| panic!("{dst}: unexpected ID {id}"));
                if let Some(why) = wrong_answer(&buf[..n], k, id) {
                    panic!("{dst} {}: {why}", ASKED[k].0);
                }
                answered += 1;
            }
        }
    }
    assert_eq!(answered, 200);
    srv.stop();
}

/// Regression: a listener on one specific address still answers, over UDP and TCP.
#[test]
fn specific_address_listener_answers() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], "");
    assert_eq!(srv.udp.ip(), IpAddr::from([127, 0, 0, 1]));
    for (k, (name, _)) in ASKED.iter().enumerate() {
        let id = 0x2000 + k as u16;
        if let Some(why) = ask_udp(srv.udp, k, id) {
            panic!("UDP {name}: {why}");
        }
        let reply = tcp_raw(srv.tcp, &query_bytes(k, id));
        if let Some(why) = wrong_answer(&reply, k, id) {
            panic!("TCP {name}: {why}");
        }
    }
    srv.stop();
}
