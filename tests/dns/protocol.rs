//! Protocol conformance over real sockets: RCODEs for malformed and unsupported queries
//! (RFC 1035, RFC 6891, RFC 7871, RFC 9619), EDNS(0), UDP truncation, TCP framing and limits
//! (RFC 7766) and Client Subnet echo.
//!
//! Malformed queries are built byte by byte (hickory-proto will not encode them). Every reply is
//! read twice: by a hand-written walk of its sections, which must end exactly at the end of the
//! datagram (so header counts describe what is really there), and by hickory-proto's decoder.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::support::wire::*;
use crate::support::*;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RData, RecordType};

const QR: u16 = 0x8000;
const AA: u16 = 0x0400;
const TC: u16 = 0x0200;
const RD: u16 = 0x0100;

const A: u16 = 1;
const TXT: u16 = 16;
const IN: u16 = 1;
const CH: u16 = 3;

const FORMERR: u16 = 1;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
const BADVERS: u16 = 16;

/// The server's EDNS payload in every test here (also Meridian's default).
const SERVER_PAYLOAD: u16 = 1232;

/// How long "no answer" is waited for.
const SILENCE: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------------
// Zone

/// RRsets of 25, 40 and 100 A records at one name. Each A record in a response takes 16 bytes
/// (owner pointer 2, type 2, class 2, TTL 4, RDLENGTH 2, address 4); header 12, the question of
/// `big.example.com.` 21, an OPT without options 11. So `mid` is 433 bytes without EDNS (fits in
/// 512), `big` is 684 bytes with EDNS (over 512, under 1232), `huge` 1645 (over 1232).
///
/// The boundary names make responses of exact sizes: `EXACT512` with 29 records is 512 bytes
/// without EDNS (523 with an OPT), `OVER512` with 30 is 528; `max1232` with 74 records and an
/// OPT is 1232 bytes, `ovr1232` with 75 is 1248.
fn zone() -> String {
    let mut z = String::from(EXAMPLE_ZONE);
    for (name, n, net) in [
        ("mid", 25, 1),
        ("big", 40, 2),
        ("huge", 100, 3),
        (&EXACT512[..18], 29, 4),
        (&OVER512[..18], 30, 5),
        ("max1232", 74, 6),
        ("ovr1232", 75, 7),
    ] {
        for i in 1..=n {
            z.push_str(&format!("{name} IN A 10.0.{net}.{i}\n"));
        }
    }
    z
}

/// Names whose wire form is 32 bytes: 18-byte first label + `example.com.`.
const EXACT512: &str = "exactly-512-octets.example.com.";
const OVER512: &str = "one-over-512-bytes.example.com.";

fn server(extra: &str) -> TestServer {
    start(&[("example.com.", &zone())], extra)
}

// ---------------------------------------------------------------------------------------------
// Building queries by hand

fn name(n: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in n.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

fn question(n: &str, qtype: u16, qclass: u16) -> Vec<u8> {
    let mut q = name(n);
    q.extend(qtype.to_be_bytes());
    q.extend(qclass.to_be_bytes());
    q
}

/// An OPT record owned by the root.
fn opt(payload: u16, version: u8, dnssec_ok: bool, options: &[u8]) -> Vec<u8> {
    opt_owned(&[0], payload, version, dnssec_ok, options)
}

fn opt_owned(owner: &[u8], payload: u16, version: u8, dnssec_ok: bool, options: &[u8]) -> Vec<u8> {
    let mut r = owner.to_vec();
    r.extend(41u16.to_be_bytes());
    r.extend(payload.to_be_bytes());
    r.extend([0, version, if dnssec_ok { 0x80 } else { 0 }, 0]);
    r.extend((options.len() as u16).to_be_bytes());
    r.extend_from_slice(options);
    r
}

fn option(code: u16, data: &[u8]) -> Vec<u8> {
    let mut o = code.to_be_bytes().to_vec();
    o.extend((data.len() as u16).to_be_bytes());
    o.extend_from_slice(data);
    o
}

/// A Client Subnet option, fields exactly as given.
fn ecs(family: u16, source: u8, scope: u8, address: &[u8]) -> Vec<u8> {
    let mut d = family.to_be_bytes().to_vec();
    d.extend([source, scope]);
    d.extend_from_slice(address);
    option(8, &d)
}

/// A message: a header with exactly these counts, then `body` as it is.
fn message(id: u16, flags: u16, counts: [u16; 4], body: &[&[u8]]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend(flags.to_be_bytes());
    for c in counts {
        m.extend(c.to_be_bytes());
    }
    for part in body {
        m.extend_from_slice(part);
    }
    m
}

/// A well-formed query with RD set: one question, and the OPT record if given.
fn query_raw(id: u16, n: &str, qtype: u16, opt: Option<&[u8]>) -> Vec<u8> {
    let q = question(n, qtype, IN);
    match opt {
        Some(o) => message(id, RD, [1, 0, 0, 1], &[&q, o]),
        None => message(id, RD, [1, 0, 0, 0], &[&q]),
    }
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}

// ---------------------------------------------------------------------------------------------
// Reading replies by hand

/// Everything every reply to `query` must satisfy; the reply's layout and hickory's reading.
fn check_reply(query: &[u8], reply: &[u8]) -> (Layout, Message) {
    let l = walk(reply, true).unwrap_or_else(|e| panic!("reply does not walk: {e}\n{reply:02x?}"));
    assert_eq!(l.id, be16(query, 0).unwrap(), "reply ID");
    assert_ne!(l.flags & QR, 0, "QR set");
    assert_eq!(
        l.opcode(),
        (be16(query, 2).unwrap() >> 11) & 0xF,
        "opcode copied"
    );
    assert_eq!(l.flags & 0x00E0, 0, "RA, Z and AD clear");
    assert!(l.opts.len() <= 1, "at most one OPT: {l:?}");
    if l.counts[0] == 1 {
        assert_eq!(
            &reply[12..l.question_end],
            &query[12..l.question_end],
            "question echoed byte for byte"
        );
    }
    let m = Message::from_vec(reply)
        .unwrap_or_else(|e| panic!("hickory cannot decode the reply: {e}\n{reply:02x?}"));
    assert_eq!(m.metadata.id, l.id);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert_eq!(m.queries.len(), l.counts[0] as usize, "QDCOUNT");
    assert_eq!(m.answers.len(), l.counts[1] as usize, "ANCOUNT");
    assert_eq!(m.authorities.len(), l.counts[2] as usize, "NSCOUNT");
    assert_eq!(
        m.additionals.len() + m.edns.is_some() as usize,
        l.counts[3] as usize,
        "ARCOUNT"
    );
    assert_eq!(u16::from(m.metadata.response_code), l.rcode());
    (l, m)
}

/// One query over UDP; its reply, checked.
fn udp_ask(srv: &TestServer, q: &[u8]) -> (Layout, Message, usize) {
    let reply = udp_raw(srv.udp, q).expect("UDP reply");
    let (l, m) = check_reply(q, &reply);
    (l, m, reply.len())
}

/// One query over a fresh TCP connection; its reply, checked.
fn tcp_ask(srv: &TestServer, q: &[u8]) -> (Layout, Message, usize) {
    let reply = tcp_raw(srv.tcp, q);
    let (l, m) = check_reply(q, &reply);
    (l, m, reply.len())
}

/// The reply to `q` over UDP and over TCP must be an error with `rcode`, no answer or authority
/// records, the question echoed if `echoes_question`, and an OPT (payload ours, version 0, no
/// options, DO copied) exactly when `opt` is `Some(do_bit)`. `None` for `opt` leaves the OPT
/// unspecified (only its consistency with the counts is checked).
fn expect_error(
    srv: &TestServer,
    q: &[u8],
    rcode: u16,
    echoes_question: bool,
    opt: Option<Option<bool>>,
) {
    for (transport, (l, _m, _len)) in [("udp", udp_ask(srv, q)), ("tcp", tcp_ask(srv, q))] {
        let ctx = format!("{transport}: query {q:02x?}\nreply {l:?}");
        assert_eq!(l.rcode(), rcode, "rcode; {ctx}");
        assert_eq!(l.counts[0], echoes_question as u16, "QDCOUNT; {ctx}");
        assert_eq!(
            (l.counts[1], l.counts[2]),
            (0, 0),
            "no answer or authority; {ctx}"
        );
        assert_eq!(l.flags & (AA | TC), 0, "AA and TC clear; {ctx}");
        assert_eq!(l.flags & RD, be16(q, 2).unwrap() & RD, "RD copied; {ctx}");
        match opt {
            None => {}
            Some(None) => assert!(l.opts.is_empty(), "no OPT expected; {ctx}"),
            Some(Some(dnssec_ok)) => {
                assert_eq!(l.counts[3], 1, "only the OPT in additional; {ctx}");
                let o = l.opt();
                assert!(o.root, "OPT owned by root; {ctx}");
                assert_eq!(o.payload, SERVER_PAYLOAD, "{ctx}");
                assert_eq!(o.version, 0, "{ctx}");
                assert_eq!(
                    o.flags,
                    if dnssec_ok { 0x8000 } else { 0 },
                    "DO copied; {ctx}"
                );
                assert!(o.rdata.is_empty(), "no options echoed; {ctx}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// FORMERR

#[test]
fn formerr_for_qdcount_zero_and_two() {
    let srv = server("");
    let q = question("www.example.com.", A, IN);
    let q2 = question("mail.example.com.", A, IN);
    let o = opt(1232, 0, false, &[]);
    // RFC 9619: exactly one question.
    expect_error(
        &srv,
        &message(0x0101, RD, [0, 0, 0, 0], &[]),
        FORMERR,
        false,
        Some(None),
    );
    expect_error(
        &srv,
        &message(0x0102, RD, [2, 0, 0, 0], &[&q, &q2]),
        FORMERR,
        false,
        Some(None),
    );
    // Attacker counts: two claimed, one present; 0xFFFF claimed.
    expect_error(
        &srv,
        &message(0x0103, RD, [2, 0, 0, 0], &[&q]),
        FORMERR,
        false,
        Some(None),
    );
    expect_error(
        &srv,
        &message(0x0104, 0, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], &[&q]),
        FORMERR,
        false,
        Some(None),
    );
    // With a valid OPT the FORMERR must carry one (RFC 6891 §7), even without a question to echo.
    expect_error(
        &srv,
        &message(0x0105, RD, [0, 0, 0, 1], &[&o]),
        FORMERR,
        false,
        Some(Some(false)),
    );
    expect_error(
        &srv,
        &message(0x0106, RD, [2, 0, 0, 1], &[&q, &q2, &o]),
        FORMERR,
        false,
        Some(Some(false)),
    );
    let o_do = opt(4096, 0, true, &[]);
    expect_error(
        &srv,
        &message(0x0107, RD, [2, 0, 0, 1], &[&q, &q2, &o_do]),
        FORMERR,
        false,
        Some(Some(true)),
    );
    srv.stop();
}

#[test]
fn formerr_for_two_opt_records() {
    let srv = server("");
    let q = question("www.example.com.", A, IN);
    let o = opt(1232, 0, false, &[]);
    // RFC 6891 §6.1.1. Whether the reply carries an OPT is left open; its counts must hold.
    expect_error(
        &srv,
        &message(0x0201, RD, [1, 0, 0, 2], &[&q, &o, &o]),
        FORMERR,
        true,
        None,
    );
    let o2 = opt(512, 0, true, &option(65001, b"x"));
    expect_error(
        &srv,
        &message(0x0202, RD, [1, 0, 0, 2], &[&q, &o, &o2]),
        FORMERR,
        true,
        None,
    );
    srv.stop();
}

#[test]
fn formerr_for_opt_not_owned_by_root() {
    let srv = server("");
    let q = question("www.example.com.", A, IN);
    let named = opt_owned(&name("www.example.com."), 1232, 0, false, &[]);
    expect_error(
        &srv,
        &message(0x0301, RD, [1, 0, 0, 1], &[&q, &named]),
        FORMERR,
        true,
        None,
    );
    // A compression pointer to the question name is not the root either.
    let pointed = opt_owned(&[0xC0, 12], 1232, 0, false, &[]);
    expect_error(
        &srv,
        &message(0x0302, RD, [1, 0, 0, 1], &[&q, &pointed]),
        FORMERR,
        true,
        None,
    );
    srv.stop();
}

#[test]
fn formerr_for_bad_client_subnet() {
    let srv = server("");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "scope prefix non-zero in a query",
            ecs(1, 24, 8, &[192, 0, 2]),
        ),
        ("IPv4 source prefix 33", ecs(1, 33, 0, &[192, 0, 2, 0, 0])),
        (
            "IPv4 source prefix 33, four address bytes",
            ecs(1, 33, 0, &[192, 0, 2, 0]),
        ),
        (
            "IPv6 source prefix 129",
            ecs(
                2,
                129,
                0,
                &[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
        ),
        (
            "address longer than /24 needs",
            ecs(1, 24, 0, &[192, 0, 2, 0]),
        ),
        ("address shorter than /24 needs", ecs(1, 24, 0, &[192, 0])),
        ("address for /0", ecs(1, 0, 0, &[192])),
        ("bits set beyond /23", ecs(1, 23, 0, &[192, 0, 3])),
        (
            "bits set beyond /52",
            ecs(2, 52, 0, &[0x20, 1, 0x0d, 0xb8, 0, 0, 0x01]),
        ),
        ("unknown family 3", ecs(3, 0, 0, &[])),
        ("family 0", ecs(0, 0, 0, &[])),
        ("option shorter than its fixed part", option(8, &[0, 1, 24])),
        (
            "two ECS options",
            [ecs(1, 24, 0, &[192, 0, 2]), ecs(1, 24, 0, &[192, 0, 2])].concat(),
        ),
    ];
    let q = question("www.example.com.", A, IN);
    for (i, (what, options)) in cases.iter().enumerate() {
        let dnssec_ok = i % 2 == 1;
        let o = opt(1232, 0, dnssec_ok, options);
        let msg = message(0x0400 + i as u16, RD, [1, 0, 0, 1], &[&q, &o]);
        eprintln!("case: {what}");
        // The OPT itself is valid: the FORMERR carries one, without the bad option.
        expect_error(&srv, &msg, FORMERR, true, Some(Some(dnssec_ok)));
    }
    // An option whose length runs past the OPT's RDATA: the OPT itself is broken.
    let mut o = opt(1232, 0, false, &ecs(1, 24, 0, &[192, 0, 2]));
    let rdlen_at = o.len() - 11 - 2;
    o[rdlen_at + 2 + 3] = 20; // the option's own length: 7 -> 20
    expect_error(
        &srv,
        &message(0x04F0, RD, [1, 0, 0, 1], &[&q, &o]),
        FORMERR,
        true,
        None,
    );
    srv.stop();
}

#[test]
fn formerr_for_truncated_question() {
    let srv = server("");
    let full = question("www.example.com.", A, IN);
    // Every proper prefix of the question: the name cut, QTYPE cut, QCLASS cut.
    for cut in 0..full.len() {
        let msg = message(0x0500 + cut as u16, RD, [1, 0, 0, 0], &[&full[..cut]]);
        expect_error(&srv, &msg, FORMERR, false, Some(None));
        let reply = udp_raw(srv.udp, &msg).unwrap();
        assert_eq!(reply.len(), 12, "a bare header, cut at {cut}");
    }
    // Label length past the end; a label longer than 63; a name over 255 bytes.
    let mut past = vec![0x3F, b'a', b'b'];
    past.extend([0, 1, 0, 1]);
    expect_error(
        &srv,
        &message(0x0580, RD, [1, 0, 0, 0], &[&past]),
        FORMERR,
        false,
        Some(None),
    );
    let mut long_label = vec![64];
    long_label.extend([b'a'; 64]);
    long_label.extend([0, 0, 1, 0, 1]);
    expect_error(
        &srv,
        &message(0x0581, RD, [1, 0, 0, 0], &[&long_label]),
        FORMERR,
        false,
        Some(None),
    );
    let mut long_name = Vec::new();
    for _ in 0..5 {
        long_name.push(60);
        long_name.extend([b'a'; 60]);
    }
    long_name.extend([0, 0, 1, 0, 1]);
    expect_error(
        &srv,
        &message(0x0582, RD, [1, 0, 0, 0], &[&long_name]),
        FORMERR,
        false,
        Some(None),
    );
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// NOTIMP, and messages that get no answer

#[test]
fn notimp_for_opcodes_other_than_query_and_notify() {
    let srv = server("");
    let q = question("example.com.", 6, IN);
    let o = opt(1232, 0, false, &[]);
    // NOTIFY is answered: REFUSED for a zone that is not a secondary zone (tests/ops/secondary.rs
    // has the rest), with AA and opcode NOTIFY.
    let notify = message(0x0604, 4 << 11, [1, 0, 0, 0], &[&q]);
    let (_, m, _) = udp_ask(&srv, &notify);
    assert_eq!(m.metadata.op_code, OpCode::Notify);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.metadata.authoritative);
    for opcode in [1u16, 2, 3, 5, 6, 15] {
        let flags = opcode << 11;
        let plain = message(0x0600 + opcode, flags, [1, 0, 0, 0], &[&q]);
        expect_error(&srv, &plain, NOTIMP, false, Some(None));
        // With an OPT the NOTIMP carries one (RFC 6891 §7).
        let edns = message(0x0610 + opcode, flags, [1, 0, 0, 1], &[&q, &o]);
        expect_error(&srv, &edns, NOTIMP, false, Some(Some(false)));
        let (_, m, _) = udp_ask(&srv, &plain);
        assert_eq!(m.metadata.op_code, OpCode::from_u8(opcode as u8));
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    }
    srv.stop();
}

#[test]
fn responses_and_runts_get_no_answer() {
    let srv = server("");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let good = query_raw(0x0700, "www.example.com.", A, None);
    let mut drops: Vec<Vec<u8>> = Vec::new();
    // Responses (QR=1): a well-formed one, one with every flag set, and one that is garbage.
    let mut resp = good.clone();
    resp[2] |= 0x80;
    drops.push(resp.clone());
    let mut all = good.clone();
    all[2] = 0xFF;
    all[3] = 0xFF;
    drops.push(all);
    drops.push(message(0x0701, QR, [0xFFFF; 4], &[&[0xC0, 0x0C, 0xFF]]));
    // Runts: 0 to 11 bytes.
    for len in 0..12 {
        drops.push(good[..len].to_vec());
    }
    for d in &drops {
        assert_eq!(
            udp_raw_timeout(srv.udp, d, SILENCE),
            None,
            "no reply to {d:02x?}"
        );
    }
    // Several at once from one socket, then nothing arrives within the wait.
    for d in &drops {
        sock.send_to(d, srv.udp).unwrap();
    }
    sock.set_read_timeout(Some(SILENCE)).unwrap();
    let mut buf = [0u8; 2048];
    assert!(
        sock.recv_from(&mut buf).is_err(),
        "a reply came to a response or runt"
    );
    // The server is still there.
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock.send_to(&good, srv.udp).unwrap();
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    let (l, _) = check_reply(&good, &buf[..n]);
    assert_eq!((l.rcode(), l.counts[1]), (0, 2));
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// EDNS(0)

#[test]
fn edns_opt_echoed_with_our_payload_and_do_bit() {
    let srv = server("");
    for (i, (payload, dnssec_ok)) in [
        (1232, false),
        (1232, true),
        (4096, true),
        (512, false),
        (65535, false),
    ]
    .into_iter()
    .enumerate()
    {
        let q = query_raw(
            0x0800 + i as u16,
            "www.example.com.",
            A,
            Some(&opt(payload, 0, dnssec_ok, &[])),
        );
        for (l, m, _) in [udp_ask(&srv, &q), tcp_ask(&srv, &q)] {
            assert_eq!(l.rcode(), 0);
            assert_eq!(l.counts, [1, 2, 0, 1]);
            let o = l.opt();
            assert!(o.root);
            assert_eq!((o.payload, o.ext_rcode, o.version), (SERVER_PAYLOAD, 0, 0));
            assert_eq!(
                o.flags,
                if dnssec_ok { 0x8000 } else { 0 },
                "DO copied, Z clear"
            );
            assert!(o.rdata.is_empty());
            let e = m.edns.as_ref().expect("hickory sees the OPT");
            assert_eq!(e.max_payload(), SERVER_PAYLOAD);
            assert_eq!(e.version(), 0);
            assert_eq!(e.flags().dnssec_ok, dnssec_ok);
        }
    }
    // No OPT in, no OPT out.
    let (l, m, _) = udp_ask(&srv, &query_raw(0x0810, "www.example.com.", A, None));
    assert_eq!(l.counts, [1, 2, 0, 0]);
    assert!(m.edns.is_none());
    srv.stop();
}

#[test]
fn edns_badvers_for_version_above_zero() {
    let srv = server("");
    for (i, version) in [1u8, 2, 255].into_iter().enumerate() {
        let dnssec_ok = i == 1;
        let q = query_raw(
            0x0900 + i as u16,
            "www.example.com.",
            A,
            Some(&opt(1232, version, dnssec_ok, &[])),
        );
        expect_error(&srv, &q, BADVERS, true, Some(Some(dnssec_ok)));
        let (l, m, _) = udp_ask(&srv, &q);
        assert_eq!(l.flags & 0xF, 0, "header RCODE holds the low bits of 16");
        assert_eq!(l.opt().ext_rcode, 1, "OPT holds the high bits of 16");
        assert_eq!(l.opt().version, 0, "we speak version 0");
        assert_eq!(u16::from(m.metadata.response_code), BADVERS);
        assert!(m.answers.is_empty());
    }
    // A bad ECS option in a version-1 OPT is a FORMERR first.
    let q = query_raw(
        0x0910,
        "www.example.com.",
        A,
        Some(&opt(1232, 1, false, &ecs(1, 24, 8, &[192, 0, 2]))),
    );
    expect_error(&srv, &q, FORMERR, true, Some(Some(false)));
    srv.stop();
}

#[test]
fn edns_unknown_options_ignored() {
    let srv = server("");
    let options = [
        option(65001, b"hello"),
        option(3, b""),       // NSID, not implemented
        option(12, &[0; 16]), // padding
    ]
    .concat();
    let q = query_raw(
        0x0A00,
        "www.example.com.",
        A,
        Some(&opt(1232, 0, false, &options)),
    );
    for (l, m, _) in [udp_ask(&srv, &q), tcp_ask(&srv, &q)] {
        assert_eq!(l.rcode(), 0);
        assert_eq!(l.counts, [1, 2, 0, 1]);
        assert!(l.opt().rdata.is_empty(), "unknown options are not echoed");
        let addrs: Vec<_> = m.answers.iter().map(|r| r.data.clone()).collect();
        assert_eq!(
            addrs,
            vec![
                RData::A("192.0.2.10".parse().unwrap()),
                RData::A("192.0.2.11".parse().unwrap())
            ]
        );
    }
    srv.stop();
}

#[test]
fn edns_payload_below_512_treated_as_512() {
    let srv = server("");
    for (i, payload) in [0u16, 1, 100, 511, 512].into_iter().enumerate() {
        let q = query_raw(
            0x0B00 + i as u16,
            "mid.example.com.",
            A,
            Some(&opt(payload, 0, false, &[])),
        );
        let (l, _, len) = udp_ask(&srv, &q);
        assert_eq!(l.flags & TC, 0, "payload {payload}: 444 bytes fit in 512");
        assert_eq!(l.counts, [1, 25, 0, 1]);
        assert_eq!(len, 444);
    }
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// UDP size limits

#[test]
fn udp_without_edns_truncates_at_512() {
    let srv = server("");
    let (l, _, len) = udp_ask(&srv, &query_raw(0x0C00, "mid.example.com.", A, None));
    assert_eq!(
        (l.flags & TC, l.counts, len),
        (0, [1, 25, 0, 0], 433),
        "mid fits in 512"
    );
    for (i, n) in ["big.example.com.", "huge.example.com."]
        .into_iter()
        .enumerate()
    {
        let (l, _, len) = udp_ask(&srv, &query_raw(0x0C01 + i as u16, n, A, None));
        assert!(len <= 512, "{n}: {len} bytes");
        assert_ne!(l.flags & TC, 0, "{n}: TC");
        assert_eq!(l.rcode(), 0);
        assert_eq!(l.counts, [1, 0, 0, 0], "{n}: no partial RRset, no OPT");
    }
    srv.stop();
}

#[test]
fn udp_with_edns_capped_at_server_payload() {
    let srv = server("");
    // Client offers 4096, the server's limit is 1232: huge (1644 bytes) is truncated.
    for (i, payload) in [4096u16, 65535, 1233].into_iter().enumerate() {
        let q = query_raw(
            0x0D00 + i as u16,
            "huge.example.com.",
            A,
            Some(&opt(payload, 0, true, &[])),
        );
        let (l, _, len) = udp_ask(&srv, &q);
        assert!(len <= SERVER_PAYLOAD as usize, "{len} bytes");
        assert_ne!(l.flags & TC, 0, "TC");
        assert_eq!(l.counts, [1, 0, 0, 1], "cut back to question and OPT");
        assert_eq!(
            (l.opt().payload, l.opt().flags),
            (SERVER_PAYLOAD, 0x8000),
            "OPT kept"
        );
    }
    // big (684 bytes) fits in 1232 and in anything the client offers above that.
    for (i, payload) in [1232u16, 4096, 700, 684].into_iter().enumerate() {
        let q = query_raw(
            0x0D10 + i as u16,
            "big.example.com.",
            A,
            Some(&opt(payload, 0, false, &[])),
        );
        let (l, m, len) = udp_ask(&srv, &q);
        assert_eq!(l.flags & TC, 0, "payload {payload}: no TC");
        assert_eq!(l.counts, [1, 40, 0, 1]);
        assert_eq!(len, 684);
        assert!(m.answers.iter().all(|r| r.record_type() == RecordType::A));
    }
    // The client's own smaller limit is respected too.
    for (i, payload) in [683u16, 600, 513].into_iter().enumerate() {
        let q = query_raw(
            0x0D20 + i as u16,
            "big.example.com.",
            A,
            Some(&opt(payload, 0, false, &[])),
        );
        let (l, _, len) = udp_ask(&srv, &q);
        assert!(len <= payload as usize, "{len} > {payload}");
        assert_ne!(l.flags & TC, 0);
        assert_eq!(l.counts, [1, 0, 0, 1]);
    }
    srv.stop();
}

#[test]
fn udp_limits_are_exact() {
    let srv = server("");
    // Without EDNS: 512 bytes is sent whole, 528 is truncated.
    let (l, _, len) = udp_ask(&srv, &query_raw(0x0D40, EXACT512, A, None));
    assert_eq!((len, l.flags & TC, l.counts), (512, 0, [1, 29, 0, 0]));
    let (l, _, len) = udp_ask(&srv, &query_raw(0x0D41, OVER512, A, None));
    assert_eq!((len, l.flags & TC, l.counts), (12 + 36, TC, [1, 0, 0, 0]));
    // The client's payload is a limit to the byte: 523 fits in 523, not in 522.
    let ask = |id: u16, n: &str, payload: u16| {
        udp_ask(
            &srv,
            &query_raw(id, n, A, Some(&opt(payload, 0, false, &[]))),
        )
    };
    let (l, _, len) = ask(0x0D42, EXACT512, 523);
    assert_eq!((len, l.flags & TC, l.counts), (523, 0, [1, 29, 0, 1]));
    for (i, payload) in [522u16, 512].into_iter().enumerate() {
        let (l, _, len) = ask(0x0D43 + i as u16, EXACT512, payload);
        assert_eq!(
            (len, l.flags & TC, l.counts),
            (12 + 36 + 11, TC, [1, 0, 0, 1]),
            "{payload}"
        );
    }
    // The server's 1232 likewise: 1232 bytes fit whatever larger payload the client offers.
    for (i, payload) in [1232u16, 1233, 4096, 65535].into_iter().enumerate() {
        let (l, _, len) = ask(0x0D50 + i as u16, "max1232.example.com.", payload);
        assert_eq!(
            (len, l.flags & TC, l.counts),
            (1232, 0, [1, 74, 0, 1]),
            "{payload}"
        );
        let (l, _, len) = ask(0x0D58 + i as u16, "ovr1232.example.com.", payload);
        assert_eq!(
            (len, l.flags & TC, l.counts),
            (12 + 25 + 11, TC, [1, 0, 0, 1]),
            "{payload}"
        );
    }
    let (l, _, _) = ask(0x0D60, "max1232.example.com.", 1231);
    assert_eq!((l.flags & TC, l.counts), (TC, [1, 0, 0, 1]));
    // Over TCP both come whole.
    let (l, _, len) = tcp_ask(&srv, &query_raw(0x0D61, "ovr1232.example.com.", A, None));
    assert_eq!((len, l.flags & TC, l.counts), (1248 - 11, 0, [1, 75, 0, 0]));
    srv.stop();
}

#[test]
fn udp_truncation_with_txt_records() {
    // Larger records, another code path through the zone loader: 30 TXT strings of 50 bytes.
    let mut z = String::from(EXAMPLE_ZONE);
    for i in 0..30 {
        z.push_str(&format!("t IN TXT \"{i:02}{}\"\n", "x".repeat(48)));
    }
    let srv = start(&[("example.com.", &z)], "");
    let (l, _, len) = udp_ask(&srv, &query_raw(0x0E00, "t.example.com.", TXT, None));
    assert!(len <= 512);
    assert_ne!(l.flags & TC, 0);
    let q = query_raw(
        0x0E01,
        "t.example.com.",
        TXT,
        Some(&opt(4096, 0, false, &[])),
    );
    let (l, _, len) = udp_ask(&srv, &q);
    assert!(len <= 1232);
    assert_ne!(l.flags & TC, 0, "30 x 63 bytes do not fit in 1232");
    assert_eq!(l.counts, [1, 0, 0, 1]);
    let (l, m, _) = tcp_ask(&srv, &q);
    assert_eq!(l.flags & TC, 0);
    assert_eq!(l.counts, [1, 30, 0, 1]);
    let mut texts: Vec<String> = m
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::TXT(t) => t
                .txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
            other => panic!("not TXT: {other:?}"),
        })
        .collect();
    texts.sort();
    assert_eq!(texts[0], format!("00{}", "x".repeat(48)));
    assert_eq!(texts[29], format!("29{}", "x".repeat(48)));
    srv.stop();
}

#[test]
fn tcp_returns_the_full_answer() {
    let srv = server("");
    for (i, (n, count, edns)) in [
        ("big.example.com.", 40, false),
        ("big.example.com.", 40, true),
        ("huge.example.com.", 100, false),
        ("huge.example.com.", 100, true),
    ]
    .into_iter()
    .enumerate()
    {
        let o = opt(4096, 0, false, &[]);
        let q = query_raw(0x0F00 + i as u16, n, A, edns.then_some(&o[..]));
        let (l, m, len) = tcp_ask(&srv, &q);
        assert_eq!(l.flags & TC, 0, "{n}: no TC over TCP");
        assert_eq!(l.counts, [1, count, 0, edns as u16], "{n}");
        assert_eq!(
            len,
            12 + n.len() + 1 + 4 + 16 * count as usize + 11 * edns as usize
        );
        assert!(l.types[0].iter().all(|&t| t == A));
        let mut addrs: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), count as usize, "{n}: every record, once");
    }
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// TCP (RFC 7766)

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

#[test]
fn tcp_pipelined_queries_in_one_write() {
    let srv = server("");
    let names = [
        "www", "mail", "ns1", "nope", "web", "big", "x.apps", "huge", "mid", "a.b.c",
    ];
    let queries: Vec<Vec<u8>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| query_raw(0x1000 + i as u16, &format!("{n}.example.com."), A, None))
        .collect();
    let mut s = connect(srv.tcp);
    let all: Vec<u8> = queries.iter().flat_map(|q| framed(q)).collect();
    s.write_all(&all).unwrap();
    // Answered in order (one task per connection), each with its own ID and question.
    for q in &queries {
        let reply = read_framed(&mut s).expect("pipelined answer");
        let (l, _) = check_reply(q, &reply);
        assert_eq!(l.counts[0], 1);
    }
    // The connection stays open for more.
    let q = query_raw(0x10FF, "www.example.com.", A, None);
    write_framed(&mut s, &q);
    let (l, _) = check_reply(&q, &read_framed(&mut s).unwrap());
    assert_eq!(l.counts[1], 2);
    srv.stop();
}

#[test]
fn tcp_drops_responses_and_runts_but_keeps_the_connection() {
    let srv = server("");
    let good = query_raw(0x1100, "www.example.com.", A, None);
    let mut resp = good.clone();
    resp[0] = 0x11;
    resp[1] = 0x01;
    resp[2] |= 0x80;
    let mut all = framed(&resp);
    all.extend(framed(&good[..5]));
    all.extend(framed(&[]));
    all.extend(framed(&good));
    let mut s = connect(srv.tcp);
    s.write_all(&all).unwrap();
    let reply = read_framed(&mut s).expect("answer to the good query");
    let (l, _) = check_reply(&good, &reply);
    assert_eq!(l.counts[1], 2);
    srv.stop();
}

#[test]
fn tcp_query_split_across_segments() {
    let srv = server("");
    let q = query_raw(
        0x1200,
        "www.example.com.",
        A,
        Some(&opt(1232, 0, false, &[])),
    );
    let f = framed(&q);
    let mut s = connect(srv.tcp);
    // The length prefix itself split, then the message in three pieces.
    for piece in [&f[..1], &f[1..2], &f[2..7], &f[7..20], &f[20..]] {
        s.write_all(piece).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let (l, _) = check_reply(&q, &read_framed(&mut s).expect("answer"));
    assert_eq!(l.counts, [1, 2, 0, 1]);
    // A second query on the same connection: its length prefix split after the first byte.
    let q2 = query_raw(0x1201, "mail.example.com.", A, None);
    let f2 = framed(&q2);
    s.write_all(&f2[..1]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&f2[1..]).unwrap();
    let (l, _) = check_reply(&q2, &read_framed(&mut s).expect("answer"));
    assert_eq!(l.counts[1], 1);
    srv.stop();
}

/// Read until EOF (or reset); how long it took, or `None` if the connection stayed open.
fn wait_closed(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    for _ in 0..64 {
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => {} // a late answer; keep reading
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(t0.elapsed()),
            Err(_) => return None, // timed out
        }
        if t0.elapsed() > within {
            return None;
        }
    }
    None
}

#[test]
fn tcp_idle_connection_closed() {
    let srv = server("tcp_idle_timeout_secs = 1");
    // Idle after an answer.
    let mut s = connect(srv.tcp);
    let q = query_raw(0x1300, "www.example.com.", A, None);
    write_framed(&mut s, &q);
    check_reply(&q, &read_framed(&mut s).unwrap());
    let took =
        wait_closed(&mut s, Duration::from_secs(3)).expect("server closes an idle connection");
    assert!(
        took >= Duration::from_millis(800),
        "closed after {took:?}, before the timeout"
    );
    // Idle from the start.
    let mut s = connect(srv.tcp);
    assert!(wait_closed(&mut s, Duration::from_secs(3)).is_some());
    // Stalled in the middle of a message.
    let mut s = connect(srv.tcp);
    s.write_all(&framed(&q)[..9]).unwrap();
    assert!(wait_closed(&mut s, Duration::from_secs(3)).is_some());
    srv.stop();
}

#[test]
fn tcp_connection_cap() {
    let srv = server("tcp_max_connections = 2");
    let q = query_raw(0x1400, "www.example.com.", A, None);
    let ask = |s: &mut TcpStream| -> Option<Vec<u8>> {
        s.write_all(&framed(&q)).ok()?;
        read_framed(s)
    };
    let mut c1 = connect(srv.tcp);
    let mut c2 = connect(srv.tcp);
    check_reply(&q, &ask(&mut c1).expect("first connection served"));
    check_reply(&q, &ask(&mut c2).expect("second connection served"));
    let mut c3 = connect(srv.tcp);
    assert_eq!(
        ask(&mut c3),
        None,
        "third connection closed without an answer"
    );
    drop(c3);
    // The first two still work.
    check_reply(&q, &ask(&mut c1).unwrap());
    check_reply(&q, &ask(&mut c2).unwrap());
    // Close one; a new connection is served once the server has seen the close.
    drop(c1);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut served = false;
    for _ in 0..30 {
        let mut c = connect(srv.tcp);
        if let Some(reply) = ask(&mut c) {
            check_reply(&q, &reply);
            served = true;
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(served, "a freed slot is reused");
    check_reply(&q, &ask(&mut c2).unwrap());
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// EDNS Client Subnet (RFC 7871)

#[test]
fn client_subnet_echoed_with_scope_zero() {
    let srv = server("");
    let v6: [u8; 7] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0];
    let cases: Vec<(u16, u8, Vec<u8>, &str)> = vec![
        (1, 24, vec![192, 0, 2], "192.0.2.0"),
        (1, 32, vec![192, 0, 2, 1], "192.0.2.1"),
        (1, 20, vec![198, 51, 96], "198.51.96.0"),
        (1, 0, vec![], "0.0.0.0"),
        (2, 56, v6.to_vec(), "2001:db8::"),
        (2, 0, vec![], "::"),
    ];
    for (i, (family, source, addr, ip)) in cases.into_iter().enumerate() {
        let o = opt(1232, 0, false, &ecs(family, source, 0, &addr));
        let q = query_raw(0x1500 + i as u16, "www.example.com.", A, Some(&o));
        for (l, m, _) in [udp_ask(&srv, &q), tcp_ask(&srv, &q)] {
            let ctx = format!("{family}/{source} {addr:?}");
            assert_eq!(l.rcode(), 0, "{ctx}");
            assert_eq!(l.counts, [1, 2, 0, 1], "{ctx}");
            // Same family, source prefix and address, scope 0: a static answer.
            assert_eq!(l.opt().rdata, ecs(family, source, 0, &addr), "{ctx}");
            let e = m.edns.as_ref().unwrap();
            match e.option(EdnsCode::Subnet) {
                Some(EdnsOption::Subnet(cs)) => {
                    assert_eq!(cs.addr().to_string(), ip, "{ctx}");
                    assert_eq!(
                        (cs.source_prefix(), cs.scope_prefix()),
                        (source, 0),
                        "{ctx}"
                    );
                }
                other => panic!("{ctx}: no ECS in the reply: {other:?}"),
            }
        }
    }
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// Classes

#[test]
fn non_in_classes_refused() {
    let srv = server("");
    for (i, (n, qtype, class)) in [
        ("version.bind.", TXT, CH),
        ("www.example.com.", A, CH),
        ("www.example.com.", A, 2),   // CSNET
        ("www.example.com.", A, 4),   // HS
        ("www.example.com.", A, 254), // NONE
        ("www.example.com.", A, 255), // ANY
    ]
    .into_iter()
    .enumerate()
    {
        let q = message(
            0x1600 + i as u16,
            RD,
            [1, 0, 0, 0],
            &[&question(n, qtype, class)],
        );
        for (l, m, _) in [udp_ask(&srv, &q), tcp_ask(&srv, &q)] {
            assert_eq!(l.rcode(), REFUSED, "{n} class {class}");
            assert_eq!(l.counts, [1, 0, 0, 0]);
            assert_eq!(l.flags & AA, 0, "not authoritative for class {class}");
            assert_eq!(m.queries[0].query_class, DNSClass::from(class));
        }
    }
    // Class IN is answered.
    let (l, _, _) = udp_ask(
        &srv,
        &message(
            0x16FF,
            RD,
            [1, 0, 0, 0],
            &[&question("www.example.com.", A, IN)],
        ),
    );
    assert_eq!((l.rcode(), l.counts[1]), (0, 2));
    srv.stop();
}
