//! Input limits, each hit against the `meridian` binary: the sizes of the configuration, zone
//! and state files (refused with the file and the limit named; at a reload the old data serves
//! on), the wire (datagram size, name and label lengths, record counts, thousands of malformed
//! packets of every kind answered exactly as they deserve, then correct answers), and the admin
//! API's header, body and time limits. Counts are read from the server's own `/metrics`, so they
//! are exact.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use super::served::{BIN, HEAD, Served, http};
use crate::support::*;

const SECOND: Duration = Duration::from_secs(1);

/// The one region a service's pools need.
const REGION: &str = "[[region]]\nname = \"r1\"\nlocation = [51.5, -0.1]\n";

fn write_config(dir: &Path, zone_file: &str, tables: &str) -> PathBuf {
    let cfg = dir.join("meridian.toml");
    let text =
        format!("{HEAD}{tables}\n[[zone]]\norigin = \"example.com.\"\nfile = \"{zone_file}\"\n");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// `meridian check --config cfg`: exit code and stderr.
fn check(cfg: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A sparse file of `len` bytes (zeros; no disk space taken).
fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Files

#[test]
fn configuration_and_zone_files_over_their_limits_are_refused_naming_file_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let cfg = write_config(dir.path(), "example.com.zone", "");
    assert_eq!(check(&cfg).0, 0);
    assert_eq!(meridian::config::MAX_CONFIG_BYTES, 64 << 20);
    assert_eq!(meridian::zone::file::MAX_ZONE_FILE_BYTES, 2 << 30);

    // A configuration one byte over 64 MiB; an endless one (a device) is read no further.
    let big = dir.path().join("big.toml");
    std::fs::write(&big, std::fs::read(&cfg).unwrap()).unwrap();
    let f = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
    f.set_len((64 << 20) + 1).unwrap();
    let (code, err) = check(&big);
    assert_eq!(code, 64, "{err}");
    let want = format!(
        "{}: cannot read config: 67108865 bytes, over the limit of 67108864 bytes",
        big.display()
    );
    assert!(err.contains(&want), "{err}");
    let t0 = Instant::now();
    let (code, err) = check(Path::new("/dev/zero"));
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("/dev/zero: cannot read config: more bytes, over the limit of 67108864 bytes"),
        "{err}"
    );
    assert!(t0.elapsed() < 10 * SECOND);

    // A zone file one byte over 2 GiB, and one that is a device.
    sparse(&dir.path().join("huge.zone"), (2 << 30) + 1);
    let (code, err) = check(&write_config(dir.path(), "huge.zone", ""));
    assert_eq!(code, 64, "{err}");
    let want =
        "huge.zone: zone file of 2147483649 bytes, over the limit of 2147483648 bytes (2 GiB)";
    assert!(err.contains(want), "{err}");
    let (code, err) = check(&write_config(dir.path(), "/dev/zero", ""));
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("/dev/zero does not exist or is not a file"),
        "{err}"
    );
}

#[test]
fn at_a_reload_files_over_their_limits_change_nothing_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("example.com.zone");
    std::fs::write(&zone, EXAMPLE_ZONE).unwrap();
    let state = dir.path().join("state.json");
    let tables = format!(
        "{REGION}[[pool]]\nname = \"p\"\nregion = \"r1\"\n[[pool.endpoint]]\nname = \"e1\"\naddress = \"192.0.2.1\"\n\
         [[pool.endpoint]]\nname = \"e2\"\naddress = \"192.0.2.2\"\n\
         [[service]]\nname = \"svc.example.com.\"\npolicy = \"weighted\"\npools = [\"p\"]\nanswers = 2\n\
         [health]\nstate_file = \"{}\"\n",
        state.display()
    );
    let cfg = write_config(dir.path(), "example.com.zone", &tables);
    let s = Served::start(&cfg, &[]);
    let (status, body) = s.post("/endpoints/e1/drain");
    assert_eq!(status, 200, "{body}");
    wait_for(2 * SECOND, "e1 drained", || {
        s.addresses("svc.example.com.") == ["192.0.2.2"]
    });

    // The zone file grows past its limit: refused, named, counted; the old zone answers.
    let grown = dir.path().join("grown.zone");
    sparse(&grown, (2 << 30) + 1);
    std::fs::rename(&grown, &zone).unwrap();
    let (status, body) = s.post("/reload");
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("over the limit of 2147483648 bytes"),
        "{body}"
    );
    s.wait_metric(
        3 * SECOND,
        r#"meridian_config_reloads_total{result="error"}"#,
        1.0,
    );
    assert_eq!(
        s.addresses("www.example.com."),
        ["192.0.2.10", "192.0.2.11"]
    );
    std::fs::write(&zone, EXAMPLE_ZONE).unwrap();

    // The state file past 16 MiB: not read, counted, and the overrides stay as they were.
    sparse(&state, (16 << 20) + 1);
    let (status, body) = s.post("/reload");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        s.metric(r#"meridian_health_state_file_errors_total{operation="read"}"#),
        1.0
    );
    s.wait_logged(
        SECOND,
        &[
            "overrides unchanged",
            "larger than the limit of 16777216 bytes",
        ],
    );
    assert_eq!(s.addresses("svc.example.com."), ["192.0.2.2"]);
    s.stop();
}

// ---------------------------------------------------------------------------------------------
// The wire

const RD: u16 = 0x0100;
const A: u16 = 1;
const IN: u16 = 1;

/// A name in wire form (no compression).
fn name(n: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in n.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

fn question(n: &[u8], qtype: u16) -> Vec<u8> {
    [n, &qtype.to_be_bytes(), &IN.to_be_bytes()].concat()
}

/// An EDNS option.
fn option(code: u16, data: &[u8]) -> Vec<u8> {
    [
        &code.to_be_bytes()[..],
        &(data.len() as u16).to_be_bytes(),
        data,
    ]
    .concat()
}

/// An OPT record owned by `owner`, with payload 1232, `version` and `options`.
fn opt_owned(owner: &[u8], version: u8, options: &[u8]) -> Vec<u8> {
    let mut o = owner.to_vec();
    o.extend(41u16.to_be_bytes());
    o.extend(1232u16.to_be_bytes());
    o.extend([0, version, 0, 0]);
    o.extend((options.len() as u16).to_be_bytes());
    o.extend_from_slice(options);
    o
}

fn opt(options: &[u8]) -> Vec<u8> {
    opt_owned(&[0], 0, options)
}

/// An ECS option: family, source and scope prefix lengths, address bytes.
fn ecs(family: u16, source: u8, scope: u8, address: &[u8]) -> Vec<u8> {
    option(
        8,
        &[&family.to_be_bytes()[..], &[source, scope], address].concat(),
    )
}

/// An A record owned by the root: 15 bytes.
fn record() -> Vec<u8> {
    [
        &[0u8][..],
        &A.to_be_bytes(),
        &IN.to_be_bytes(),
        &[0, 0, 1, 0],
        &[0, 4, 192, 0, 2, 1],
    ]
    .concat()
}

/// A message: header (ID 0, flags, counts), then `body`.
fn message(flags: u16, counts: [u16; 4], body: &[&[u8]]) -> Vec<u8> {
    let mut m = vec![0, 0];
    m.extend(flags.to_be_bytes());
    for c in counts {
        m.extend(c.to_be_bytes());
    }
    for part in body {
        m.extend_from_slice(part);
    }
    m
}

/// How the server must treat a packet.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Deserves {
    /// No reply at all (counted in `meridian_dns_dropped_total`).
    Nothing,
    /// A reply with this RCODE (BADVERS is 16: its high bits are in the OPT).
    Rcode(u16),
}
use Deserves::*;

const FORMERR: Deserves = Rcode(1);
const NXDOMAIN: Deserves = Rcode(3);

/// Every kind of malformed packet the wire allows, each with what it deserves.
fn malformed() -> Vec<(&'static str, Vec<u8>, Deserves)> {
    let q = question(&name("www.example.com."), A);
    let good = message(RD, [1, 0, 0, 0], &[&q]);
    let mut v: Vec<(&'static str, Vec<u8>, Deserves)> = Vec::new();
    // Truncated headers: runts of every length, and a response.
    for len in 0..12 {
        v.push(("truncated header", good[..len].to_vec(), Nothing));
    }
    v.push((
        "a response",
        message(0x8000 | RD, [1, 0, 0, 0], &[&q]),
        Nothing,
    ));
    // The question cut at every byte.
    for cut in 0..q.len() {
        v.push((
            "truncated question",
            message(RD, [1, 0, 0, 0], &[&q[..cut]]),
            FORMERR,
        ));
    }
    // Question counts other than one.
    v.push(("no question", message(RD, [0, 0, 0, 0], &[]), FORMERR));
    v.push((
        "two questions",
        message(RD, [2, 0, 0, 0], &[&q, &q]),
        FORMERR,
    ));
    // Compression loops in the question: a pointer to itself, two pointing at each other, a
    // pointer forward past the end, a pointer into the header.
    let tail = [0u8, 1, 0, 1];
    v.push((
        "pointer to itself",
        message(RD, [1, 0, 0, 0], &[&[0xC0, 12], &tail]),
        FORMERR,
    ));
    v.push((
        "pointers in a loop",
        message(
            RD,
            [1, 0, 0, 0],
            &[&[1, b'a', 0xC0, 16, 1, b'b', 0xC0, 12], &tail],
        ),
        FORMERR,
    ));
    v.push((
        "pointer past the end",
        message(RD, [1, 0, 0, 0], &[&[0xC0, 200], &tail]),
        FORMERR,
    ));
    v.push((
        "pointer into the header",
        message(RD, [1, 0, 0, 0], &[&[0xC0, 2], &tail]),
        FORMERR,
    ));
    // Label and name lengths: a length past the end, a label of 64, a name of 257 bytes
    // (122 one-letter labels under example.com.), reserved label types 0x40 and 0x80.
    v.push((
        "label past the end",
        message(RD, [1, 0, 0, 0], &[&[63, b'a', b'b']]),
        FORMERR,
    ));
    let long_label = [&[64u8][..], &[b'a'; 64], &[0], &tail].concat();
    v.push((
        "label of 64",
        message(RD, [1, 0, 0, 0], &[&long_label]),
        FORMERR,
    ));
    let deep = |n: usize| name(&format!("{}example.com.", "a.".repeat(n)));
    assert_eq!(deep(121).len(), 255);
    v.push((
        "name of 257",
        message(RD, [1, 0, 0, 0], &[&question(&deep(122), A)]),
        FORMERR,
    ));
    v.push((
        "name of 255",
        message(RD, [1, 0, 0, 0], &[&question(&deep(121), A)]),
        NXDOMAIN,
    ));
    v.push((
        "label type 0x40",
        message(RD, [1, 0, 0, 0], &[&[0x41, b'a', 0], &tail]),
        FORMERR,
    ));
    v.push((
        "label type 0x80",
        message(RD, [1, 0, 0, 0], &[&[0x81, b'a', 0], &tail]),
        FORMERR,
    ));
    // Record counts and lengths that the bytes do not hold.
    for section in 1..4 {
        let mut counts = [1, 0, 0, 0];
        counts[section] = 0xFFFF;
        v.push((
            "count of 65535, no records",
            message(RD, counts, &[&q]),
            FORMERR,
        ));
        counts[section] = 3;
        v.push((
            "count of 3, two records",
            message(RD, counts, &[&q, &record(), &record()]),
            FORMERR,
        ));
    }
    // A looping pointer owning a record of the answer section: skipped unread, never followed.
    let looped = [&[0xC0u8, 12][..], &record()[1..]].concat();
    v.push((
        "record owned by a looping pointer",
        message(RD, [1, 1, 0, 0], &[&q, &looped]),
        Rcode(0),
    ));
    let mut long_rdata = record();
    long_rdata[10] = 0xFF; // RDLENGTH 0xFF04 past the end
    v.push((
        "RDLENGTH past the end",
        message(RD, [1, 0, 0, 1], &[&q, &long_rdata]),
        FORMERR,
    ));
    // Bad OPT: two, not owned by the root, an option running past it, a version of 1.
    let o = opt(&[]);
    v.push((
        "two OPT records",
        message(RD, [1, 0, 0, 2], &[&q, &o, &o]),
        FORMERR,
    ));
    v.push((
        "OPT owned by a name",
        message(
            RD,
            [1, 0, 0, 1],
            &[&q, &opt_owned(&name("example.com."), 0, &[])],
        ),
        FORMERR,
    ));
    let mut past = opt(&option(65001, b"abc"));
    let n = past.len();
    past[n - 4] = 9; // the option says 9 bytes; 3 follow
    v.push((
        "option past the OPT",
        message(RD, [1, 0, 0, 1], &[&q, &past]),
        FORMERR,
    ));
    v.push((
        "EDNS version 1",
        message(RD, [1, 0, 0, 1], &[&q, &opt_owned(&[0], 1, &[])]),
        Rcode(16),
    ));
    // Bad ECS, and a malformed cookie.
    let bad_ecs: [(&str, Vec<u8>); 6] = [
        ("ECS family 3", ecs(3, 0, 0, &[])),
        ("ECS source /33", ecs(1, 33, 0, &[192, 0, 2, 0, 0])),
        ("ECS bits past its prefix", ecs(1, 23, 0, &[192, 0, 3])),
        (
            "ECS address longer than its prefix",
            ecs(1, 24, 0, &[192, 0, 2, 0]),
        ),
        ("ECS scope in a query", ecs(1, 24, 8, &[192, 0, 2])),
        ("ECS shorter than its fixed part", option(8, &[0, 1, 24])),
    ];
    for (what, e) in bad_ecs {
        v.push((what, message(RD, [1, 0, 0, 1], &[&q, &opt(&e)]), FORMERR));
    }
    v.push((
        "cookie of 5 bytes",
        message(RD, [1, 0, 0, 1], &[&q, &opt(&option(10, &[1; 5]))]),
        FORMERR,
    ));
    v
}

/// RCODE of a reply, with the OPT's extended bits when it has one.
fn rcode(reply: &[u8]) -> u16 {
    let m = Message::from_vec(reply).unwrap_or_else(|e| panic!("{e}: {reply:02x?}"));
    u16::from(m.metadata.response_code)
}

/// The sum of every series of metric `name` whose labels contain `label` (`""`: every one).
fn total(s: &Served, name: &str, label: &str) -> f64 {
    let (_, text) = http(s.admin, "GET", "/metrics", b"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn thousands_of_malformed_packets_get_what_each_deserves_then_correct_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let s = Served::start(&write_config(dir.path(), "example.com.zone", ""), &[]);
    let kinds = malformed();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(2 * SECOND)).unwrap();
    let good = query("www.example.com.", RecordType::A, Some(1232))
        .to_vec()
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let (mut sent, mut dropped, mut formerr) = (0u32, 0, 0);
    // One worker answers in order: after each malformed packet a good query is asked, and the
    // next datagram back must be the malformed one's reply (when it deserves one), then the
    // good one's. A reply to a packet that deserves none shows as a reply with the wrong ID.
    for round in 0..50u16 {
        for (i, (what, packet, deserves)) in kinds.iter().enumerate() {
            let id = round.wrapping_mul(1000).wrapping_add(i as u16);
            let mut p = packet.clone();
            if p.len() >= 2 {
                p[..2].copy_from_slice(&id.to_be_bytes());
            }
            sock.send_to(&p, s.udp).unwrap();
            sent += 1;
            match deserves {
                Nothing => dropped += 1,
                Rcode(want) => {
                    let (n, _) = sock
                        .recv_from(&mut buf)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(
                        u16::from_be_bytes([buf[0], buf[1]]),
                        id,
                        "{what}: reply's ID"
                    );
                    assert_eq!(rcode(&buf[..n]), *want, "{what}");
                    formerr += u32::from(*want == 1);
                }
            }
            let mut g = good.clone();
            g[..2].copy_from_slice(&0xFFFFu16.to_be_bytes());
            sock.send_to(&g, s.udp).unwrap();
            let (n, _) = sock
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("after {what}: {e}"));
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.metadata.id, 0xFFFF, "after {what}: a reply came to it");
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NoError,
                "after {what}"
            );
            assert_eq!(m.answers.len(), 2, "after {what}");
        }
    }
    assert!(sent > 3000, "{sent}");
    // Counted exactly: every packet without a reply as dropped, every FORMERR by its RCODE.
    wait_for(3 * SECOND, "the counts flushed", || {
        total(&s, "meridian_dns_dropped_total", "") == f64::from(dropped)
            && total(&s, "meridian_dns_queries_total", "rcode=\"FORMERR\"") == f64::from(formerr)
    });
    // And the server answers over TCP as well as UDP.
    let t = Message::from_vec(&tcp_raw(s.udp, &good)).unwrap();
    assert_eq!(t.answers.len(), 2);
    s.stop();
}

#[test]
fn datagram_size_and_record_count_limits_on_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let s = Served::start(&write_config(dir.path(), "example.com.zone", ""), &[]);
    let q = question(&name("www.example.com."), A);
    // A query padded (EDNS padding, option 12) to exactly `len` bytes.
    let padded = |len: usize| {
        let base = message(RD, [1, 0, 0, 1], &[&q, &opt(&option(12, &[]))]);
        let mut m = message(
            RD,
            [1, 0, 0, 1],
            &[&q, &opt(&option(12, &vec![0; len - base.len()]))],
        );
        m[..2].copy_from_slice(&[0x51, 0x2E]);
        assert_eq!(m.len(), len);
        m
    };
    // 4,096 bytes is the largest datagram read: answered; one byte more, or the most UDP
    // carries, is dropped unread.
    let answered = udp_raw(s.udp, &padded(4096)).expect("a 4,096-byte query answered");
    assert_eq!(rcode(&answered), 0);
    assert_eq!(Message::from_vec(&answered).unwrap().answers.len(), 2);
    for len in [4097, 9000, 65507] {
        assert_eq!(
            udp_raw_timeout(s.udp, &padded(len), Duration::from_millis(300)),
            None,
            "{len}"
        );
    }
    wait_for(3 * SECOND, "dropped counted", || {
        total(&s, "meridian_dns_dropped_total", "") == 3.0
    });
    // Over TCP a message may be 65,535 bytes: a query carrying 4,000 records is read through
    // (they are skipped) and answered.
    let records: Vec<u8> = (0..4000).flat_map(|_| record()).collect();
    let many = message(RD, [1, 2000, 2000, 0], &[&q, &records]);
    assert_eq!(many.len(), 33 + 60_000);
    let t0 = Instant::now();
    let reply = tcp_raw(s.udp, &many);
    assert!(t0.elapsed() < SECOND);
    assert_eq!(rcode(&reply), 0);
    assert_eq!(Message::from_vec(&reply).unwrap().answers.len(), 2);
    // Over UDP, 250 of them fit in 4,096 bytes: answered too.
    let records: Vec<u8> = (0..250).flat_map(|_| record()).collect();
    let reply = udp_raw(s.udp, &message(RD, [1, 0, 0, 250], &[&q, &records])).unwrap();
    assert_eq!(rcode(&reply), 0);
    s.stop();
}

// ---------------------------------------------------------------------------------------------
// The admin API

/// Write `head` (and `body`) on a fresh connection; the reply's status line, or "" when the
/// connection was closed without one.
fn raw_http(addr: SocketAddr, head: &[u8], body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(15 * SECOND)).unwrap();
    let _ = s.write_all(head);
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_admin_api_holds_its_header_body_and_time_limits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let tables = "[[region]]\nname = \"r1\"\nlocation = [51.5, -0.1]\n\
                  [[pool]]\nname = \"p\"\nregion = \"r1\"\n[[pool.endpoint]]\nname = \"e1\"\naddress = \"192.0.2.1\"\n\
                  [[service]]\nname = \"svc.example.com.\"\npolicy = \"weighted\"\npools = [\"p\"]\n";
    let s = Served::start(&write_config(dir.path(), "example.com.zone", tables), &[]);
    assert_eq!(meridian::admin::BODY_LIMIT, 64 * 1024);
    assert_eq!(meridian::admin::SIMULATE_BODY_LIMIT, 16 << 20);

    // A request head is read into a buffer of 64 KiB, in reads of up to 64 KiB (hyper's
    // `max_buf_size`): one of 60 KiB is answered, one past 128 KiB is refused with a 431.
    let head = |pad: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(pad)
        )
    };
    let status = raw_http(s.admin, head(60 * 1024).as_bytes(), b"");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let status = raw_http(s.admin, head(130 * 1024).as_bytes(), b"");
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    // A body of exactly 64 KiB is read; one byte more is a 413.
    let body = |n: usize| vec![b'x'; n];
    assert_eq!(
        http(s.admin, "POST", "/endpoints/e1/drain", &body(64 * 1024)).0,
        200
    );
    assert_eq!(
        http(
            s.admin,
            "POST",
            "/endpoints/e1/undrain",
            &body(64 * 1024 + 1)
        )
        .0,
        413
    );
    // POST /simulate reads up to 16 MiB: past it, a 413.
    let (status, text) = http(
        s.admin,
        "POST",
        "/simulate?service=svc.example.com.",
        &body((16 << 20) + 1),
    );
    assert_eq!(status, 413, "{text}");
    // A body announced and never sent, and a header section never finished: each connection is
    // closed by its timeout (10 s) while other requests are answered.
    let stall = |head: &'static [u8], body: &'static [u8]| {
        let admin = s.admin;
        std::thread::spawn(move || {
            let t0 = Instant::now();
            (raw_http(admin, head, body), t0.elapsed())
        })
    };
    let body = stall(
        b"POST /endpoints/e1/drain HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
        b"x",
    );
    let head = stall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a", b"");
    std::thread::sleep(SECOND);
    assert_eq!(http(s.admin, "GET", "/healthz", b"").0, 200);
    for (what, stalled) in [("body", body), ("header", head)] {
        let (status, took) = stalled.join().unwrap();
        assert!(!status.contains(" 200 "), "{what}: {status:?}");
        assert!(took >= 9 * SECOND && took < 15 * SECOND, "{what}: {took:?}");
    }
    // None of it drained anything.
    assert_eq!(s.addresses("svc.example.com."), ["192.0.2.1"]);
    s.stop();
}
