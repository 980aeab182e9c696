//! What the fleet tests (fleet.rs, fleet_votes.rs, fleet_shard.rs) share: three nodes' names and
//! regions, free loopback ports, a peer count, and a GET on an admin listener.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::support::*;

/// Every wait in the fleet tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(10);
/// The three instances of the three-node tests: `[node] name` and region.
pub const NODES: [(&str, &str); 3] = [("eu-1", "eu"), ("us-1", "us"), ("ap-1", "ap")];

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How many of `srv`'s fleet peers have fresh data.
pub fn fresh_peers(srv: &TestServer) -> usize {
    srv.server()
        .fleet()
        .status()
        .iter()
        .filter(|p| p.fresh)
        .count()
}

/// One GET over a plain socket, with a bearer token when given: status and body.
pub fn get(addr: SocketAddr, target: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// One GET to `srv`'s admin listener, without a token: status and body.
pub fn http_get(srv: &TestServer, target: &str) -> (u16, String) {
    get(srv.server().admin_addr().unwrap(), target, None)
}
