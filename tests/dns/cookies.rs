//! DNS Cookies (RFC 7873, RFC 9018) with real clients and by hand: dig and kdig get a server
//! cookie and, sending it back, are answered (with `strict`, a cookie that does not validate is
//! answered BADCOOKIE, so an answer proves the check passed); malformed options are FORMERR;
//! with `[cookies] enabled = false` no cookie is sent; over TCP as over UDP.

use std::process::Command;

use super::rrl::{cookie_in, tcp_from, udp_from, www};
use crate::support::wire::walk;
use crate::support::*;

const STRICT: &str = "[cookies]\nstrict = true\n";

/// Run `tool` (dig or kdig) against the server with `args`; its output.
fn run(tool: &str, srv: &TestServer, args: &[&str]) -> String {
    let port = srv.udp.port().to_string();
    let out = Command::new(tool)
        .args(["-p", &port, "@127.0.0.1", "www.example.com.", "A"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?}: {text}");
    text
}

/// The hex digits of the COOKIE a dig or kdig output shows (client and server cookie).
fn shown_cookie(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.contains("COOKIE:"))
        .unwrap_or_else(|| panic!("no COOKIE line: {text}"));
    let after = &line[line.find("COOKIE:").unwrap() + "COOKIE:".len()..];
    after
        .split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_hexdigit()))
        .collect()
}

#[test]
fn dig_learns_a_cookie_and_its_return_validates() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], STRICT);
    let first = run("dig", &srv, &["+cookie", "+norec"]);
    assert!(first.contains("status: NOERROR"), "{first}");
    assert!(
        first.contains("(good)"),
        "dig sees its own client cookie: {first}"
    );
    let cookie = shown_cookie(&first);
    assert_eq!(cookie.len(), 48, "client 8 bytes, server 16: {first}");
    // Sent back: validated (strict would answer BADCOOKIE otherwise), answered.
    let second = run("dig", &srv, &[&format!("+cookie={cookie}"), "+norec"]);
    assert!(second.contains("status: NOERROR"), "{second}");
    assert!(second.contains("192.0.2.10"), "{second}");
    assert_eq!(
        shown_cookie(&second),
        cookie,
        "a young cookie comes back as it was"
    );
    // A server cookie with one bit changed: BADCOOKIE, with a fresh cookie to use.
    let mut bad: Vec<u8> = cookie.bytes().collect();
    bad[47] = if bad[47] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad).unwrap();
    let refused = run("dig", &srv, &[&format!("+cookie={bad}"), "+nobadcookie"]);
    assert!(refused.contains("status: BADCOOKIE"), "{refused}");
    assert!(!refused.contains("192.0.2.10"), "no answer: {refused}");
    let fresh = shown_cookie(&refused);
    assert_eq!(
        (fresh.len(), &fresh[..16]),
        (48, &cookie[..16]),
        "a cookie to retry with"
    );
    // dig's own retry after BADCOOKIE succeeds.
    let retried = run("dig", &srv, &[&format!("+cookie={bad}")]);
    assert!(retried.contains("status: NOERROR"), "{retried}");
    // Over TCP too.
    let tcp = run("dig", &srv, &[&format!("+cookie={cookie}"), "+tcp"]);
    assert!(
        tcp.contains("status: NOERROR") && tcp.contains("192.0.2.10"),
        "{tcp}"
    );
    srv.stop();
}

#[test]
fn kdig_learns_a_cookie_and_its_return_validates() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], STRICT);
    let first = run("kdig", &srv, &["+cookie"]);
    assert!(first.contains("NOERROR"), "{first}");
    let cookie = shown_cookie(&first);
    assert_eq!(cookie.len(), 48, "{first}");
    let second = run("kdig", &srv, &[&format!("+cookie={cookie}")]);
    assert!(
        second.contains("NOERROR") && second.contains("192.0.2.10"),
        "{second}"
    );
    let mut bad: Vec<u8> = cookie.bytes().collect();
    // kdig shows the cookie in either case: change the digit whatever case it is in.
    bad[30] = if bad[30].eq_ignore_ascii_case(&b'a') {
        b'b'
    } else {
        b'a'
    };
    let bad = String::from_utf8(bad).unwrap();
    let refused = run("kdig", &srv, &[&format!("+cookie={bad}"), "+nobadcookie"]);
    assert!(refused.contains("BADCOOKIE"), "{refused}");
    srv.stop();
}

#[test]
fn cookie_options_by_hand() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], "");
    let s = udp_from("127.0.0.1", TIMEOUT);
    let ask = |q: &[u8]| {
        s.send_to(q, srv.udp).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.recv(&mut buf).expect("a reply");
        buf[..n].to_vec()
    };
    // A client cookie alone: answered, with it and a 16-byte server cookie (version 1).
    let r = ask(&www(1, Some(&[1, 2, 3, 4, 5, 6, 7, 8])));
    let c = cookie_in(&r).unwrap();
    assert_eq!(
        (c.len(), &c[..8], c[8]),
        (24, &[1, 2, 3, 4, 5, 6, 7, 8][..], 1)
    );
    assert_eq!(walk(&r, true).unwrap().counts, [1, 2, 0, 1]);
    // Not strict: a server cookie that does not validate is answered, with a fresh cookie.
    let mut forged = c.clone();
    forged[20] ^= 1;
    let r = ask(&www(2, Some(&forged)));
    assert_eq!(walk(&r, true).unwrap().counts, [1, 2, 0, 1]);
    let fresh = cookie_in(&r).unwrap();
    assert_eq!((fresh.len(), &fresh[..8]), (24, &c[..8]));
    assert_ne!(fresh, forged);
    // Malformed lengths: FORMERR (RFC 7873 §5.2.2).
    for len in [0usize, 7, 9, 15, 41] {
        let r = ask(&www(3, Some(&vec![9u8; len])));
        assert_eq!(walk(&r, true).unwrap().rcode(), 1, "cookie of {len} bytes");
    }
    // Over TCP the same.
    let r = tcp_from("127.0.0.1", srv.tcp, &www(4, Some(&c)));
    assert_eq!(
        cookie_in(&r).unwrap(),
        c,
        "valid and young: sent back as it came"
    );
    srv.stop();

    // Turned off: the option is ignored, no cookie comes back.
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        "[cookies]\nenabled = false\n",
    );
    s.send_to(&www(5, Some(&[1; 8])), srv.udp).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(walk(&buf[..n], true).unwrap().counts, [1, 2, 0, 1]);
    assert_eq!(cookie_in(&buf[..n]), None);
    srv.stop();

    // Strict: BADCOOKIE is RCODE 23 (extended RCODE 1 in the OPT, 7 in the header), with the
    // question and a fresh cookie, nothing else.
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], STRICT);
    let first = cookie_in(&ask_at(&s, srv.udp, &www(6, Some(&[4; 8])))).unwrap();
    let mut forged = first.clone();
    forged[9] ^= 0x80; // the reserved bytes take part in the hash
    let r = ask_at(&s, srv.udp, &www(7, Some(&forged)));
    let m = walk(&r, true).unwrap();
    assert_eq!((m.rcode(), m.counts), (23, [1, 0, 0, 1]));
    let fresh = cookie_in(&r).unwrap();
    assert_eq!((fresh.len(), &fresh[..8]), (24, &first[..8]));
    assert_ne!(fresh, forged);
    srv.stop();
}

fn ask_at(s: &std::net::UdpSocket, server: std::net::SocketAddr, q: &[u8]) -> Vec<u8> {
    s.send_to(q, server).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).expect("a reply");
    buf[..n].to_vec()
}
