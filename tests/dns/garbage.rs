//! Robustness against hostile input: thousands of random and mutated packets over UDP, a few
//! hundred over one TCP connection, against the real server on loopback.
//!
//! Every packet carries a unique ID (written over its first two bytes), so each reply is matched
//! to the packet that caused it. The server's contract, checked for every packet:
//! - runts (< 12 bytes) and responses (QR=1) get nothing; everything else gets exactly one reply;
//! - a reply walks exactly (header counts describe the bytes), decodes with hickory-proto with the
//!   same counts, has QR set, the packet's ID and opcode, NOTIMP for opcodes other than QUERY and NOTIFY
//!   (REFUSED or FORMERR: no secondary zone here), and echoes the question byte for byte when it has one;
//! - over UDP a reply without OPT is at most 512 bytes, one with OPT at most the query's payload
//!   (at least 512) and never more than the server's 1232; TCP replies never have TC.
//!
//! Afterwards the server still answers a correct query correctly over UDP and TCP.
//!
//! The RNG is seeded: `MERIDIAN_GARBAGE_SEED=<u64>` reproduces (or varies) a run.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::support::wire::*;
use crate::support::*;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

const QR: u16 = 0x8000;
const TC: u16 = 0x0200;
const SERVER_PAYLOAD: usize = 1232;

const RANDOM_PACKETS: usize = 5000;
const MUTATED_PACKETS: usize = 5000;
const TCP_MESSAGES: usize = 400;
/// Packets in flight before the sender waits for their replies.
const BURST: usize = 32;

fn seed() -> u64 {
    let s = std::env::var("MERIDIAN_GARBAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4D45_5249_4449_414E);
    eprintln!("garbage seed: {s} (set MERIDIAN_GARBAGE_SEED to reproduce)");
    s
}

fn zone() -> String {
    let mut z = String::from(EXAMPLE_ZONE);
    for i in 1..=40 {
        z.push_str(&format!("big IN A 10.0.2.{i}\n"));
    }
    for i in 1..=100 {
        z.push_str(&format!("huge IN A 10.0.3.{i}\n"));
    }
    z
}

// ---------------------------------------------------------------------------------------------
// Valid queries to mutate, with the offsets of their length bytes

/// A well-formed query and where its length fields are (label lengths, RDLENGTHs, option
/// lengths, ECS source prefixes), so mutations can aim at them.
#[derive(Clone)]
struct Sample {
    bytes: Vec<u8>,
    lengths: Vec<usize>,
}

impl Sample {
    fn new(flags: u16, counts: [u16; 4]) -> Self {
        let mut bytes = vec![0, 0];
        bytes.extend(flags.to_be_bytes());
        for c in counts {
            bytes.extend(c.to_be_bytes());
        }
        Sample {
            bytes,
            lengths: Vec::new(),
        }
    }

    fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend(v.to_be_bytes());
        self
    }

    fn name(&mut self, n: &str) -> &mut Self {
        for label in n.split('.').filter(|l| !l.is_empty()) {
            self.lengths.push(self.bytes.len());
            self.bytes.push(label.len() as u8);
            self.bytes.extend_from_slice(label.as_bytes());
        }
        self.bytes.push(0);
        self
    }

    fn question(&mut self, n: &str, qtype: u16, qclass: u16) -> &mut Self {
        self.name(n).u16(qtype).u16(qclass)
    }

    /// An OPT record with these options (code, data); a code-8 option's source prefix is
    /// recorded as a length too.
    fn opt(
        &mut self,
        payload: u16,
        version: u8,
        dnssec_ok: bool,
        options: &[(u16, &[u8])],
    ) -> &mut Self {
        self.bytes.push(0);
        self.u16(41).u16(payload);
        self.bytes
            .extend([0, version, if dnssec_ok { 0x80 } else { 0 }, 0]);
        let rdlen: usize = options.iter().map(|(_, d)| 4 + d.len()).sum();
        self.lengths.push(self.bytes.len());
        self.u16(rdlen as u16);
        for (code, data) in options {
            self.u16(*code);
            self.lengths.push(self.bytes.len());
            self.u16(data.len() as u16);
            if *code == 8 {
                self.lengths.push(self.bytes.len() + 2);
            }
            self.bytes.extend_from_slice(data);
        }
        self
    }

    /// A plain record with a raw owner (which may be a compression pointer).
    fn record(&mut self, owner: &[u8], rtype: u16, rdata: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(owner);
        self.u16(rtype).u16(1);
        self.bytes.extend([0, 0, 0x0E, 0x10]);
        self.lengths.push(self.bytes.len());
        self.u16(rdata.len() as u16);
        self.bytes.extend_from_slice(rdata);
        self
    }
}

fn samples() -> Vec<Sample> {
    let names = [
        "www.example.com.",
        "example.com.",
        "big.example.com.",
        "huge.example.com.",
        "web.example.com.",
        "cdn.example.com.",
        "x.apps.example.com.",
        "nope.example.com.",
        "host.sub.example.com.",
        "a.b.c.example.com.",
        "WwW.ExAmPlE.CoM.",
        "example.org.",
        ".",
    ];
    let types = [1u16, 28, 15, 2, 6, 16, 255, 5, 252, 41];
    let ecs4: &[u8] = &[0, 1, 24, 0, 192, 0, 2];
    let ecs6: &[u8] = &[0, 2, 56, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0];
    let ecs0: &[u8] = &[0, 1, 0, 0];
    let mut out = Vec::new();
    for (i, n) in names.iter().enumerate() {
        for (j, &t) in types.iter().enumerate() {
            let variant = (i + j) % 8;
            let ar = if variant == 0 { 0 } else { 1 };
            let mut s = Sample::new(0x0100, [1, 0, 0, ar]);
            s.question(n, t, 1);
            match variant {
                0 => {}
                1 => {
                    s.opt(1232, 0, false, &[]);
                }
                2 => {
                    s.opt(4096, 0, true, &[(8, ecs4)]);
                }
                3 => {
                    s.opt(512, 0, false, &[(8, ecs6)]);
                }
                4 => {
                    s.opt(100, 0, true, &[(65001, b"abc"), (8, ecs0)]);
                }
                5 => {
                    s.opt(1400, 1, false, &[(10, &[1, 2, 3, 4, 5, 6, 7, 8])]);
                }
                6 => {
                    s.opt(700, 0, false, &[(3, &[]), (12, &[0; 8])]);
                }
                _ => {
                    s.opt(65535, 0, false, &[]);
                }
            }
            out.push(s);
        }
    }
    // Records in the answer, authority and additional sections of a query, with pointers.
    let mut s = Sample::new(0, [1, 1, 1, 2]);
    s.question("www.example.com.", 1, 1)
        .record(&[0xC0, 12], 1, &[192, 0, 2, 1])
        .record(&[0xC0, 16], 2, &[3, b'n', b's', b'1', 0xC0, 16])
        .record(&[0], 250, b"not really a TSIG")
        .opt(1232, 0, false, &[]);
    out.push(s);
    out
}

// ---------------------------------------------------------------------------------------------
// Mutation

fn random_packet(rng: &mut StdRng) -> Vec<u8> {
    let len = rng.random_range(0..600);
    let mut p = vec![0u8; len];
    rng.fill_bytes(&mut p);
    // Half of them get a header the parser will read past: a query, opcode 0, small counts.
    if len >= 12 && rng.random_bool(0.5) {
        p[2] &= 0x07;
        for c in 0..4 {
            p[4 + 2 * c] = 0;
            p[5 + 2 * c] = rng.random_range(0..3);
        }
    }
    p
}

fn mutate(rng: &mut StdRng, s: &Sample) -> Vec<u8> {
    let mut p = s.bytes.clone();
    // Mostly one mutation, so that many packets still reach the answer path.
    let rounds = [1, 1, 1, 1, 1, 1, 2, 2, 2, 3][rng.random_range(0..10)];
    for _ in 0..rounds {
        let len = p.len();
        match rng.random_range(0..11) {
            // Bit flips.
            0 if len > 0 => {
                for _ in 0..rng.random_range(1..=8) {
                    let at = rng.random_range(0..len);
                    p[at] ^= 1 << rng.random_range(0..8);
                }
            }
            // Byte overwrites.
            1 if len > 0 => {
                for _ in 0..rng.random_range(1..=4) {
                    let at = rng.random_range(0..len);
                    p[at] = rng.random();
                }
            }
            // Truncation.
            2 => p.truncate(rng.random_range(0..=len)),
            // A count field set to 0xFFFF, or all of them.
            3 if len >= 12 => {
                let (all, one) = (rng.random_bool(0.2), rng.random_range(0..4));
                for f in (0..4).filter(|&f| all || f == one) {
                    p[4 + 2 * f] = 0xFF;
                    p[5 + 2 * f] = 0xFF;
                }
            }
            // A count field set to a small wrong value.
            4 if len >= 12 => {
                let f = rng.random_range(0..4);
                p[4 + 2 * f] = 0;
                p[5 + 2 * f] = rng.random_range(0..4);
            }
            // A compression pointer: to itself, forward, to the header, to the question, or
            // anywhere at all.
            5 if len > 13 => {
                let at = rng.random_range(12..len - 1);
                let target: u16 = match rng.random_range(0..5) {
                    0 => at as u16,
                    1 => at as u16 + 2,
                    2 => rng.random_range(0..12),
                    3 => 12,
                    _ => rng.random_range(0..0x4000),
                };
                p[at] = 0xC0 | (target >> 8) as u8;
                p[at + 1] = target as u8;
            }
            // A length byte changed.
            6 if !s.lengths.is_empty() => {
                let at = s.lengths[rng.random_range(0..s.lengths.len())];
                if at < len {
                    p[at] = match rng.random_range(0..6) {
                        0 => 0,
                        1 => p[at].wrapping_add(1),
                        2 => p[at].wrapping_sub(1),
                        3 => 63 + rng.random_range(0..3),
                        4 => 0xFF,
                        _ => rng.random(),
                    };
                }
            }
            // Random bytes inserted.
            7 => {
                let at = rng.random_range(0..=len);
                for _ in 0..rng.random_range(1..=8) {
                    p.insert(at, rng.random());
                }
            }
            // Random bytes appended.
            8 => {
                for _ in 0..rng.random_range(1..=64) {
                    p.push(rng.random());
                }
            }
            // Header flags: QR, opcode, anything.
            9 if len >= 4 => match rng.random_range(0..3) {
                0 => p[2] |= 0x80,
                1 => p[2] = (p[2] & 0x87) | (rng.random_range(1..16u8) << 3),
                _ => {
                    p[2] = rng.random();
                    p[3] = rng.random();
                }
            },
            // A record-looking tail: a second OPT, or an OPT with a pointer owner.
            10 => {
                let owner: &[u8] = if rng.random_bool(0.5) {
                    &[0]
                } else {
                    &[0xC0, 12]
                };
                p.extend_from_slice(owner);
                p.extend([0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0]);
                if len >= 12 {
                    let ar = u16::from_be_bytes([p[10], p[11]]).wrapping_add(1);
                    p[10..12].copy_from_slice(&ar.to_be_bytes());
                }
            }
            _ => {}
        }
    }
    p
}

/// Give packet number `i` its unique ID.
fn stamp(p: &mut [u8], i: usize) {
    if p.len() >= 2 {
        p[..2].copy_from_slice(&(i as u16).to_be_bytes());
    }
}

fn deserves_reply(p: &[u8]) -> bool {
    p.len() >= 12 && p[2] & 0x80 == 0
}

// ---------------------------------------------------------------------------------------------
// Reading by hand

/// Check one reply against the packet that caused it; `Err` explains what is wrong.
fn check(query: &[u8], reply: &[u8], udp: bool) -> Result<(), String> {
    let l = walk(reply, true)?;
    if reply[..2] != query[..2] {
        return Err("ID differs".into());
    }
    if l.flags & QR == 0 {
        return Err("QR clear".into());
    }
    let opcode = (query[2] >> 3) & 0xF;
    if (l.flags >> 11) & 0xF != opcode as u16 {
        return Err("opcode not copied".into());
    }
    if l.flags & 0x00E0 != 0 {
        return Err("RA, Z or AD set".into());
    }
    if l.opts.len() > 1 {
        return Err("two OPT records".into());
    }
    let rcode = (l.opts.first().map_or(0, |o| o.ext_rcode as u16) << 4) | (l.flags & 0xF);
    // NOTIFY (opcode 4) is answered (REFUSED here: the server has no secondary zone; FORMERR
    // without one question; NOTAUTH for a TSIG that does not verify); every other opcode but
    // QUERY is NOTIMP.
    if opcode == 4 && ![1, 5, 9].contains(&rcode) {
        return Err(format!(
            "rcode {rcode} for NOTIFY, not REFUSED, FORMERR or NOTAUTH"
        ));
    }
    if opcode != 0 && opcode != 4 && rcode != 4 {
        return Err(format!("rcode {rcode} for opcode {opcode}, not NOTIMP"));
    }
    if ![0, 1, 3, 4, 5, 16].contains(&rcode) {
        return Err(format!("unexpected rcode {rcode}"));
    }
    if let Some(&Opt {
        payload, version, ..
    }) = l.opts.first()
        && (payload as usize, version) != (SERVER_PAYLOAD, 0)
    {
        return Err(format!("OPT payload {payload} version {version}"));
    }
    if l.counts[0] > 1 {
        return Err("more than one question".into());
    }
    if l.counts[0] == 1 && reply.get(12..l.question_end) != query.get(12..l.question_end) {
        return Err("question not echoed byte for byte".into());
    }
    if udp {
        let limit = match l.opts.first() {
            None => 512,
            // The query's own OPT, found the way the server finds it; 1232 if it can't be.
            Some(_) => walk(query, false)
                .ok()
                .and_then(|q| q.opts.first().map(|o| o.payload))
                .map_or(SERVER_PAYLOAD, |p| (p as usize).clamp(512, SERVER_PAYLOAD)),
        };
        if reply.len() > limit {
            return Err(format!("{} bytes over UDP, limit {limit}", reply.len()));
        }
    } else if l.flags & TC != 0 {
        return Err("TC over TCP".into());
    }
    let m = Message::from_vec(reply).map_err(|e| format!("hickory: {e}"))?;
    let decoded = [
        m.queries.len(),
        m.answers.len(),
        m.authorities.len(),
        m.additionals.len() + m.edns.is_some() as usize,
    ];
    if decoded != l.counts.map(|c| c as usize) {
        return Err(format!(
            "hickory decoded {decoded:?}, header says {:?}",
            l.counts
        ));
    }
    if m.metadata.message_type != MessageType::Response {
        return Err("hickory: not a response".into());
    }
    Ok(())
}

fn fail(what: &str, i: usize, query: &[u8], reply: &[u8]) -> ! {
    panic!("packet {i}: {what}\nquery {query:02x?}\nreply {reply:02x?}");
}

// ---------------------------------------------------------------------------------------------
// UDP

/// Collects replies by ID.
struct Inbox {
    sock: UdpSocket,
    replies: HashMap<u16, Vec<u8>>,
    buf: Vec<u8>,
}

impl Inbox {
    /// Receive until `want` more replies arrived or `wait` passed; returns how many arrived.
    fn drain(&mut self, packets: &[Vec<u8>], want: usize, wait: Duration) -> usize {
        let deadline = Instant::now() + wait;
        let mut got = 0;
        while got < want {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            let Ok(n) = self.sock.recv(&mut self.buf) else {
                break;
            };
            let reply = self.buf[..n].to_vec();
            let Some(id) = be16(&reply, 0).ok() else {
                panic!("reply of {n} bytes: {reply:02x?}");
            };
            let i = id as usize;
            match packets.get(i) {
                Some(p) if deserves_reply(p) => {}
                Some(p) => fail("answered a runt or a response", i, p, &reply),
                None => panic!("reply with unknown ID {id}: {reply:02x?}"),
            }
            if self.replies.insert(id, reply).is_some() {
                fail("two replies", i, &packets[i], &self.replies[&id]);
            }
            got += 1;
        }
        got
    }
}

#[test]
fn udp_garbage() {
    let srv = start(&[("example.com.", &zone())], "");
    let mut rng = StdRng::seed_from_u64(seed());
    let samples = samples();
    let mut packets: Vec<Vec<u8>> = Vec::with_capacity(RANDOM_PACKETS + MUTATED_PACKETS);
    for _ in 0..RANDOM_PACKETS {
        packets.push(random_packet(&mut rng));
    }
    for _ in 0..MUTATED_PACKETS {
        let s = &samples[rng.random_range(0..samples.len())];
        packets.push(mutate(&mut rng, s));
    }
    // Interleave, so both kinds share every burst.
    let order: Vec<usize> = (0..RANDOM_PACKETS)
        .flat_map(|i| [i, RANDOM_PACKETS + i])
        .collect();
    let mut packets: Vec<Vec<u8>> = order.into_iter().map(|i| packets[i].clone()).collect();
    for (i, p) in packets.iter_mut().enumerate() {
        stamp(p, i);
    }

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock = {
        let s = socket2::Socket::from(sock);
        let _ = s.set_recv_buffer_size(4 << 20);
        UdpSocket::from(s)
    };
    sock.connect(srv.udp).unwrap();
    let mut inbox = Inbox {
        sock,
        replies: HashMap::new(),
        buf: vec![0u8; 65535],
    };
    let started = Instant::now();
    for (b, burst) in packets.chunks(BURST).enumerate() {
        for p in burst {
            // A full send queue is retried once after a pause; loss is caught below.
            if inbox.sock.send(p).is_err() {
                std::thread::sleep(Duration::from_millis(5));
                let _ = inbox.sock.send(p);
            }
        }
        let want = burst.iter().filter(|p| deserves_reply(p)).count();
        inbox.drain(&packets, want, Duration::from_millis(200));
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "too slow at burst {b}"
        );
    }
    // Stragglers, and anything sent late to runts or responses.
    inbox.drain(&packets, usize::MAX, Duration::from_millis(300));

    // Packets that deserved a reply and got none: lost in a queue, or ignored. Ask again, alone.
    let missing: Vec<usize> = (0..packets.len())
        .filter(|&i| deserves_reply(&packets[i]) && !inbox.replies.contains_key(&(i as u16)))
        .collect();
    eprintln!(
        "{} packets, {} replies, {} missing after the first pass, {:?}",
        packets.len(),
        inbox.replies.len(),
        missing.len(),
        started.elapsed()
    );
    assert!(missing.len() <= 200, "{} packets unanswered", missing.len());
    for &i in &missing {
        let p = &packets[i];
        let reply = (0..2)
            .find_map(|_| udp_raw_timeout(srv.udp, p, Duration::from_millis(500)))
            .unwrap_or_else(|| fail("no reply", i, p, &[]));
        inbox.replies.insert(i as u16, reply);
    }

    let mut rcodes: HashMap<u16, usize> = HashMap::new();
    for (&id, reply) in &inbox.replies {
        let i = id as usize;
        if let Err(e) = check(&packets[i], reply, true) {
            fail(&e, i, &packets[i], reply);
        }
        let m = Message::from_vec(reply).unwrap();
        *rcodes
            .entry(u16::from(m.metadata.response_code))
            .or_default() += 1;
    }
    eprintln!("replies by rcode: {rcodes:?}");
    // The mutations reach past the header: answers and every error kind are represented.
    for rcode in [0, 1, 3, 4, 5, 16] {
        assert!(
            rcodes.get(&rcode).copied().unwrap_or(0) > 0,
            "no reply with rcode {rcode}"
        );
    }
    still_serves(&srv);
    srv.stop();
}

/// A correct query is answered correctly over UDP and TCP.
fn still_serves(srv: &TestServer) {
    for payload in [None, Some(1232)] {
        for r in srv.both(&query("www.example.com.", RecordType::A, payload)) {
            assert_eq!(r.metadata.response_code, ResponseCode::NoError);
            assert!(r.metadata.authoritative);
            let mut addrs: Vec<String> = r
                .answers
                .iter()
                .map(|a| match &a.data {
                    RData::A(a) => a.to_string(),
                    other => panic!("not A: {other:?}"),
                })
                .collect();
            addrs.sort();
            assert_eq!(addrs, ["192.0.2.10", "192.0.2.11"]);
            assert_eq!(r.edns.is_some(), payload.is_some());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TCP

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

#[test]
fn tcp_garbage() {
    let srv = start(&[("example.com.", &zone())], "");
    let mut rng = StdRng::seed_from_u64(seed() ^ 0x7C9);
    let samples = samples();
    let mut conn = connect(srv.tcp);
    let (mut answered, mut silent, mut closed_by_server, mut reconnects) = (0, 0, 0, 0);
    for i in 0..TCP_MESSAGES {
        let mut p = if rng.random_bool(0.25) {
            let mut p = random_packet(&mut rng);
            // TCP carries larger messages: sometimes a long random tail.
            if rng.random_bool(0.2) {
                let extra = rng.random_range(0..2000);
                p.extend((0..extra).map(|_| rng.random::<u8>()));
            }
            p
        } else {
            let s = &samples[rng.random_range(0..samples.len())];
            mutate(&mut rng, s)
        };
        stamp(&mut p, i);
        // Now and then, a frame that never completes: the server must close, not hang.
        if i % 100 == 99 {
            let mut partial = 100u16.to_be_bytes().to_vec();
            partial.extend_from_slice(&p[..p.len().min(10)]);
            let _ = conn.write_all(&partial);
            let _ = conn.shutdown(Shutdown::Write);
            assert_eq!(read_framed(&mut conn), None, "reply to an incomplete frame");
            conn = connect(srv.tcp);
            reconnects += 1;
            continue;
        }
        if !deserves_reply(&p) {
            // Nothing comes back; a stray reply would show up as the next reply's wrong ID.
            if conn.write_all(&framed(&p)).is_err() {
                conn = connect(srv.tcp);
                closed_by_server += 1;
            }
            silent += 1;
            continue;
        }
        // The server may close a connection (RFC 7766 allows it); the message is then asked
        // again on a fresh one, where it must be answered.
        let mut reply = None;
        for _ in 0..2 {
            let sent = conn.write_all(&framed(&p)).is_ok();
            reply = if sent { read_framed(&mut conn) } else { None };
            if reply.is_some() {
                break;
            }
            conn = connect(srv.tcp);
            closed_by_server += 1;
        }
        let reply = reply.unwrap_or_else(|| fail("no reply over TCP", i, &p, &[]));
        if let Err(e) = check(&p, &reply, false) {
            fail(&e, i, &p, &reply);
        }
        answered += 1;
    }
    eprintln!(
        "tcp: {answered} answered, {silent} silent, {closed_by_server} closed by the server, \
         {reconnects} incomplete frames"
    );
    assert_eq!(answered + silent + reconnects, TCP_MESSAGES);
    // The last connection still works, in order, after everything it was fed.
    let q = query("www.example.com.", RecordType::A, None);
    write_framed(&mut conn, &q.to_vec().unwrap());
    let r = Message::from_vec(&read_framed(&mut conn).expect("answer")).unwrap();
    assert_eq!(r.metadata.id, q.metadata.id);
    assert_eq!(r.answers.len(), 2);
    still_serves(&srv);
    srv.stop();
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}
