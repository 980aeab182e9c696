//! Outgoing zone transfers (AXFR over TCP, `[zone.transfer] allow`) against a real server on
//! loopback: the records transferred are the zone file's, as hickory-proto's zone parser reads
//! it (not Meridian's reader); messages stay within 16 KiB; a stock client (kdig, dig) takes
//! the transfer; everything not allowed is REFUSED.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpStream};
use std::str::FromStr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use meridian::config::Config;

use crate::support::knot::{Knot, knotd};
use crate::support::*;

/// The largest transfer message Meridian sends (unless one record is larger).
const BUDGET: usize = 16 * 1024;

/// A server for one zone `origin` with `text`, and `transfer` (the `[zone.transfer]` table's
/// body) when given.
fn serve(origin: &str, text: &str, transfer: Option<&str>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z.zone"), text).unwrap();
    let mut toml = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[zone]]\norigin = \"{origin}\"\nfile = \"z.zone\"\n"
    );
    if let Some(t) = transfer {
        toml.push_str(&format!("[zone.transfer]\n{t}\n"));
    }
    let path = dir.path().join("meridian.toml");
    std::fs::write(&path, toml).unwrap();
    Served {
        server: start_file(&path),
        _dir: dir,
    }
}

/// A server and the folder of its configuration and zone file.
struct Served {
    server: TestServer,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Served {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

/// Every record of a zone file, as hickory-proto's zone parser reads it: one line per record,
/// owner lowercased.
fn oracle(origin: &str, text: &str) -> Vec<String> {
    let (_, sets) = Parser::new(text, None, Some(Name::from_str(origin).unwrap()))
        .parse()
        .unwrap();
    let mut out: Vec<String> = sets
        .values()
        .flat_map(|s| s.records_without_rrsigs().map(line).collect::<Vec<_>>())
        .collect();
    out.sort();
    out
}

fn line(r: &Record) -> String {
    format!(
        "{} {} {} {}",
        r.name.to_lowercase(),
        r.ttl,
        r.record_type(),
        r.data
    )
}

/// An AXFR over one TCP connection: the raw messages, read until the second SOA.
fn axfr(addr: SocketAddr, name: &str, edns: Option<u16>) -> Vec<Vec<u8>> {
    transfer(addr, &query(name, RecordType::AXFR, edns))
}

/// A transfer query `q` over one TCP connection: the raw messages, read until the second SOA.
fn transfer(addr: SocketAddr, q: &Message) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write_framed(&mut s, &q.to_vec().unwrap());
    let mut messages = Vec::new();
    let mut soas = 0;
    while soas < 2 {
        let bytes = read_framed(&mut s).expect("the transfer ended before its closing SOA");
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.id, q.metadata.id);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
        assert!(m.metadata.authoritative);
        soas += m
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        messages.push(bytes);
    }
    messages
}

/// The records of a transfer between its SOAs (the opening SOA kept, the closing one dropped),
/// sorted; checks that the first and last records are the SOA and that no message is larger
/// than the budget.
fn transferred(messages: &[Vec<u8>]) -> Vec<String> {
    let mut records = Vec::new();
    for bytes in messages {
        assert!(bytes.len() <= BUDGET, "message of {} bytes", bytes.len());
        records.extend(Message::from_vec(bytes).unwrap().answers);
    }
    assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
    assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
    assert_eq!(line(&records[0]), line(records.last().unwrap()));
    records.pop();
    let mut out: Vec<String> = records.iter().map(line).collect();
    out.sort();
    out
}

#[test]
fn axfr_of_the_example_zone_is_its_file_delegation_glue_and_wildcard_included() {
    let s = serve(
        "example.com.",
        EXAMPLE_ZONE,
        Some("allow = [\"127.0.0.1/32\", \"::1/128\"]"),
    );
    for edns in [None, Some(1232)] {
        let messages = axfr(s.tcp, "example.com.", edns);
        let got = transferred(&messages);
        assert_eq!(got, oracle("example.com.", EXAMPLE_ZONE));
        for needle in [
            "*.apps.example.com.",
            "sub.example.com. 3600 NS",
            "ns.sub.example.com.",
        ] {
            assert!(
                got.iter().any(|l| l.starts_with(needle)),
                "{needle} missing"
            );
        }
        // Every message carries the question, and the OPT when the query had one.
        for bytes in &messages {
            let m = Message::from_vec(bytes).unwrap();
            assert_eq!(m.queries.len(), 1);
            assert_eq!(m.queries[0].query_type(), RecordType::AXFR);
            assert_eq!(m.edns.is_some(), edns.is_some());
        }
    }
}

/// A zone of about 20,000 records, one RRset of them larger than a message.
fn big_zone() -> String {
    let mut z = String::from(
        "$ORIGIN big.test.\n$TTL 600\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n",
    );
    for i in 0..18_000u32 {
        z.push_str(&format!(
            "h{i} IN A 10.{}.{}.{}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
        if i % 9 == 0 {
            z.push_str(&format!("h{i} IN TXT \"host number {i}\"\n"));
        }
    }
    // 1,000 records at one owner: about 40 KiB, so it must be split between its records.
    for i in 0..1000u32 {
        z.push_str(&format!(
            "huge 60 IN TXT \"record {i:04} of the large set\"\n"
        ));
    }
    z
}

#[test]
fn axfr_of_a_large_zone_streams_messages_within_16_kib_and_keeps_rrsets_whole() {
    let text = big_zone();
    let s = serve("big.test.", &text, Some("allow = [\"127.0.0.0/8\"]"));
    let messages = axfr(s.tcp, "big.test.", None);
    assert!(messages.len() > 20, "{} messages", messages.len());
    let want = oracle("big.test.", &text);
    assert!(want.len() > 20_000);
    assert_eq!(transferred(&messages), want);
    // An RRset is in one message, unless it is larger than a message (only "huge" is).
    let mut places: BTreeMap<(String, RecordType), BTreeSet<usize>> = BTreeMap::new();
    for (i, bytes) in messages.iter().enumerate() {
        for r in Message::from_vec(bytes).unwrap().answers {
            places
                .entry((r.name.to_lowercase().to_string(), r.record_type()))
                .or_default()
                .insert(i);
        }
    }
    for ((name, rtype), at) in &places {
        if name == "huge.big.test." {
            assert!(at.len() >= 3, "the large RRset in {} messages", at.len());
        } else if *rtype != RecordType::SOA {
            assert_eq!(at.len(), 1, "{name} {rtype} split across messages {at:?}");
        }
    }
}

/// Run a stock client's AXFR and return the records it printed (comment lines dropped).
fn stock_axfr(tool: &str, port: u16, zone: &str) -> Option<Vec<String>> {
    let port = port.to_string();
    let args = ["-t", "AXFR", "@127.0.0.1", "-p", &port, zone];
    let out = std::process::Command::new(tool).args(args).output().ok()?;
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("failed"), "{tool}: {text}");
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn stock_clients_take_the_transfer() {
    let text = big_zone();
    let s = serve("big.test.", &text, Some("allow = [\"127.0.0.1/32\"]"));
    let want = oracle("big.test.", &text).len() + 1; // the SOA twice
    let mut ran = 0;
    for tool in ["kdig", "dig"] {
        let Some(lines) = stock_axfr(tool, s.tcp.port(), "big.test.") else {
            eprintln!("{tool} is not installed: skipped");
            continue;
        };
        ran += 1;
        assert_eq!(lines.len(), want, "{tool} printed {} records", lines.len());
        assert!(lines[0].contains("SOA") && lines[want - 1].contains("SOA"));
    }
    assert!(
        ran > 0,
        "neither kdig nor dig is installed (.ci/run installs them)"
    );
}

fn rcode_of(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

#[test]
fn axfr_is_refused_over_udp_from_other_sources_below_the_apex_and_without_a_transfer_table() {
    let allowed = serve(
        "example.com.",
        EXAMPLE_ZONE,
        Some("allow = [\"127.0.0.1/32\"]"),
    );
    let axfr_q = |name: &str| query(name, RecordType::AXFR, None);
    // Over UDP (RFC 5936 §4.2), even from an allowed source.
    assert_eq!(
        rcode_of(&allowed.udp(&axfr_q("example.com."))),
        ResponseCode::Refused
    );
    // For a name that is not the zone's apex.
    for name in ["www.example.com.", "sub.example.com.", "example.org."] {
        assert_eq!(
            rcode_of(&allowed.tcp(&axfr_q(name))),
            ResponseCode::Refused,
            "{name}"
        );
    }
    // IXFR over UDP too.
    let ixfr = ixfr_query(2026112600);
    assert_eq!(rcode_of(&allowed.udp(&ixfr)), ResponseCode::Refused);
    // Over TCP from a source outside `allow`.
    let other = serve(
        "example.com.",
        EXAMPLE_ZONE,
        Some("allow = [\"192.0.2.0/24\", \"::1/128\"]"),
    );
    let m = other.tcp(&axfr_q("example.com."));
    assert_eq!(rcode_of(&m), ResponseCode::Refused);
    assert!(m.answers.is_empty());
    assert_eq!(rcode_of(&other.tcp(&ixfr)), ResponseCode::Refused);
    // A zone without `[zone.transfer]`.
    let none = serve("example.com.", EXAMPLE_ZONE, None);
    assert_eq!(
        rcode_of(&none.tcp(&axfr_q("example.com."))),
        ResponseCode::Refused
    );
    // Ordinary TCP queries on the same connection kind are unaffected.
    let a = allowed.tcp(&query("www.example.com.", RecordType::A, None));
    assert_eq!(a.answers.len(), 2);
}

#[test]
fn a_bad_transfer_prefix_is_reported_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z.zone"), EXAMPLE_ZONE).unwrap();
    let path = dir.path().join("meridian.toml");
    let text = "[[zone]]\norigin = \"example.com.\"\nfile = \"z.zone\"\n[zone.transfer]\nallow = [\"127.0.0.1/32\", \"10.0.0.300/8\", \"10.1.2.3/8\"]\n";
    let e = Config::parse(&path, text).unwrap_err().to_string();
    let at = |col: usize| format!("{}:5:{col}: zone[0].transfer.allow", path.display());
    assert!(
        e.contains(&format!("{}[1]: \"10.0.0.300/8\" is not a prefix", at(26))),
        "{e}"
    );
    assert!(
        e.contains(&format!("{}[2]: \"10.1.2.3/8\" has host bits set", at(42))),
        "{e}"
    );
    // An empty list and an unknown field are errors too.
    let empty = text.replace(
        "allow = [\"127.0.0.1/32\", \"10.0.0.300/8\", \"10.1.2.3/8\"]",
        "allow = []",
    );
    let e = Config::parse(&path, &empty).unwrap_err().to_string();
    assert!(e.contains("zone[0].transfer.allow: at least one"), "{e}");
    let unknown = "[[zone]]\norigin = \"example.com.\"\nfile = \"z.zone\"\n[zone.transfer]\nallow = [\"127.0.0.1/32\"]\nnotifi = [\"192.0.2.1\"]\n";
    let e = Config::parse(&path, unknown).unwrap_err().to_string();
    assert!(e.contains("notifi"), "{e}");
    let ok = text.replace(
        ", \"10.0.0.300/8\", \"10.1.2.3/8\"",
        ", \"2001:db8::/32\", \"192.0.2.7\"",
    );
    let config = Config::parse(&path, &ok).unwrap();
    assert_eq!(config.zones[0].transfer.as_ref().unwrap().len(), 3);
}

#[test]
fn a_knot_secondary_transfers_the_zones_and_answers_from_them() {
    let Some(knotd) = knotd() else {
        eprintln!("knotd is not installed: skipped");
        return;
    };
    let allow = Some("allow = [\"127.0.0.1/32\"]");
    let example = serve("example.com.", EXAMPLE_ZONE, allow);
    let big = serve("big.test.", &big_zone(), allow);
    let zones = [
        ("example.com.", example.tcp.port()),
        ("big.test.", big.tcp.port()),
    ];
    let knot = Knot::secondary(&knotd, &zones, None);
    let ask = |name: &str, rtype| knot.ask(name, rtype);
    let log_text = || knot.log();
    let answers = |name: &str, n: usize| {
        ask(name, RecordType::A).is_some_and(|m| {
            m.metadata.response_code == ResponseCode::NoError && m.answers.len() == n
        })
    };
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            std::time::Duration::from_secs(20),
            "Knot to serve both zones",
            || answers("www.example.com.", 2) && answers("h17999.big.test.", 1),
        )
    }));
    assert!(served.is_ok(), "knotd log:\n{}", log_text());
    // Data from the transfer beyond the names asked: the wildcard, the delegation and its glue.
    let m = ask("x.apps.example.com.", RecordType::A).unwrap();
    assert_eq!(m.answers.len(), 1, "{m:?}");
    let m = ask("host.sub.example.com.", RecordType::A).unwrap();
    assert!(
        !m.metadata.authoritative && !m.authorities.is_empty(),
        "{m:?}"
    );
    assert!(!m.additionals.is_empty(), "glue: {m:?}");
    let m = ask("huge.big.test.", RecordType::TXT).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    // Knot took both by AXFR, the large zone in many messages.
    let log = log_text();
    let finished: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("AXFR, incoming") && l.contains("finished"))
        .collect();
    assert_eq!(finished.len(), 2, "{log}");
    assert!(
        finished
            .iter()
            .any(|l| l.contains("[big.test.]") && !l.contains(" 1 messages")),
        "{log}"
    );
}

/// An IXFR for example.com. from a client at `serial` (its SOA in the authority section).
fn ixfr_query(serial: u32) -> Message {
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::SOA;
    let mut q = query("example.com.", RecordType::IXFR, None);
    let name = |n: &str| Name::from_str(n).unwrap();
    let soa = SOA::new(
        name("ns1.example.com."),
        name("h.example.com."),
        serial,
        1,
        1,
        1,
        1,
    );
    q.authorities
        .push(Record::from_rdata(name("example.com."), 0, RData::SOA(soa)));
    q
}

#[test]
fn ixfr_over_tcp_is_the_whole_zone_or_the_soa_alone_when_the_client_is_current() {
    let s = serve(
        "example.com.",
        EXAMPLE_ZONE,
        Some("allow = [\"127.0.0.1/32\"]"),
    );
    // An older serial: the whole zone, as an AXFR would give it (RFC 1995 §4).
    let messages = transfer(s.tcp, &ixfr_query(2026112600));
    assert_eq!(transferred(&messages), oracle("example.com.", EXAMPLE_ZONE));
    // The zone's serial, or a newer one: the SOA alone, in one message.
    for serial in [2026112701, 2026112702] {
        let m = s.tcp(&ixfr_query(serial));
        assert_eq!(rcode_of(&m), ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1, "{m:?}");
        assert_eq!(m.answers[0].record_type(), RecordType::SOA);
    }
    // kdig agrees: a full transfer for an old serial, the SOA alone for the current one.
    let kdig = |serial: u32| {
        let port = s.tcp.port().to_string();
        let t = format!("IXFR={serial}");
        let out = std::process::Command::new("kdig")
            .args(["-t", &t, "@127.0.0.1", "-p", &port, "example.com."])
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).unwrap();
        Some(
            text.lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
                .count(),
        )
    };
    if let Some(n) = kdig(2026112600) {
        assert_eq!(n, oracle("example.com.", EXAMPLE_ZONE).len() + 1);
        assert_eq!(kdig(2026112701), Some(1));
    }
}
