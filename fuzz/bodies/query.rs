//! The query parser on arbitrary bytes: `wire::parse_query`, its fast path `wire::parse_plain`,
//! and the name reader under both.
//!
//! Held to:
//! - no panic, whatever the bytes;
//! - the fast path, where it accepts, fills the query exactly as the full parser does;
//! - the question name is the message's own bytes, lowercased, with its hash and label count;
//! - an error reply's question end lies inside the message, after a header and a name;
//! - where hickory-proto's decoder also reads the message, both read the same ID, question and
//!   OPT (payload, version, DO bit, Client Subnet);
//! - parse → encode → parse: the query as parsed, written again by hickory-proto's encoder,
//!   parses to the same query.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::rdata::opt::{ClientSubnet as HSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use meridian::wire::{Query, Reject, name_hash, parse_plain, parse_query};

pub fn run(data: &[u8]) {
    let mut full = Query::default();
    let parsed = parse_query(data, &mut full);
    let mut plain = Query::default();
    if parse_plain(data, &mut plain) {
        assert_eq!(
            parsed,
            Ok(()),
            "the fast path accepted what parse_query refuses"
        );
        assert_same(&full, &plain, "parse_plain and parse_query");
    }
    match parsed {
        Ok(()) => {
            check_question(data, &full);
            against_hickory(data, &full);
            round_trip(&full, data);
        }
        Err(Reject::Error {
            question_end: Some(end),
            ..
        }) => assert!(
            (17..=data.len()).contains(&end),
            "question end {end} outside a {}-byte message",
            data.len()
        ),
        Err(_) => {}
    }
}

/// The fields of two parsed queries are the same.
fn assert_same(a: &Query, b: &Query, what: &str) {
    assert_eq!(a.id, b.id, "{what}: id");
    assert_eq!(a.flags, b.flags, "{what}: flags");
    assert_eq!(a.question_end, b.question_end, "{what}: question end");
    assert_eq!(a.qname.wire(), b.qname.wire(), "{what}: name");
    assert_eq!(a.qname.hash(), b.qname.hash(), "{what}: name hash");
    assert_eq!(
        a.qname.label_count(),
        b.qname.label_count(),
        "{what}: labels"
    );
    assert_eq!(a.qtype, b.qtype, "{what}: type");
    assert_eq!(a.qclass, b.qclass, "{what}: class");
    assert_eq!(a.edns, b.edns, "{what}: OPT");
}

/// The question name is the message's bytes from offset 12, lowercased; its hash and labels
/// are those of that name.
fn check_question(data: &[u8], q: &Query) {
    let name = &data[12..q.question_end - 4];
    assert_eq!(q.qname.wire(), name.to_ascii_lowercase(), "question name");
    assert!(name.len() <= 255, "name of {} bytes", name.len());
    assert_eq!(q.qname.hash(), name_hash(q.qname.wire()), "name hash");
    let mut labels = 0;
    let mut at = 0;
    while name[at] != 0 {
        assert!(q.qname.is_label_start(at), "label at {at} not recorded");
        labels += 1;
        at += 1 + name[at] as usize;
    }
    assert_eq!(q.qname.label_count(), labels, "label count");
    assert_eq!(q.qname.suffix(labels), [0], "the root suffix");
    assert_eq!(
        u16::from_be_bytes([data[q.question_end - 4], data[q.question_end - 3]]),
        q.qtype
    );
}

/// Where hickory-proto's decoder reads the message too, it reads the same query.
fn against_hickory(data: &[u8], q: &Query) {
    let Ok(m) = Message::from_vec(data) else {
        return; // hickory is stricter about some records a query may carry
    };
    assert_eq!(m.metadata.id, q.id, "hickory: id");
    assert_eq!(m.queries.len(), 1, "hickory: one question");
    let hq = &m.queries[0];
    assert!(
        hq.name().to_lowercase().eq_case(&lower_name(q)),
        "hickory: name {} against {:?}",
        hq.name(),
        q.qname.wire()
    );
    assert_eq!(u16::from(hq.query_type()), q.qtype, "hickory: type");
    assert_eq!(u16::from(hq.query_class()), q.qclass, "hickory: class");
    match (&m.edns, &q.edns) {
        (None, None) => {}
        (Some(h), Some(e)) => {
            assert_eq!(h.max_payload(), e.udp_payload, "hickory: payload");
            assert_eq!(h.version(), e.version, "hickory: version");
            assert_eq!(h.flags().dnssec_ok, e.dnssec_ok, "hickory: DO");
            if let Some(c) = e.client_subnet {
                match h.option(EdnsCode::Subnet) {
                    Some(EdnsOption::Subnet(s)) => {
                        assert_eq!(s.source_prefix(), c.source_prefix, "hickory: ECS prefix");
                        assert_eq!(s.addr(), c.ip(), "hickory: ECS address");
                    }
                    other => panic!("hickory: ECS {other:?}, ours {c:?}"),
                }
            }
        }
        (h, e) => panic!("hickory reads OPT {h:?}, the parser {e:?}"),
    }
}

fn lower_name(q: &Query) -> Name {
    Name::read(&mut BinDecoder::new(q.qname.wire())).expect("a parsed name reads")
}

/// The query written again by hickory-proto (header bits, question, OPT and its options: Client
/// Subnet, NSID, COOKIE) parses to the same query.
fn round_trip(q: &Query, data: &[u8]) {
    let name = Name::read(&mut BinDecoder::new(&data[12..])).expect("a parsed name reads");
    let mut m = Message::new(q.id, MessageType::Query, OpCode::Query);
    let bit = |b: u16| q.flags & b != 0;
    m.metadata.authoritative = bit(0x0400);
    m.metadata.truncation = bit(0x0200);
    m.metadata.recursion_desired = bit(0x0100);
    m.metadata.recursion_available = bit(0x0080);
    m.metadata.authentic_data = bit(0x0020);
    m.metadata.checking_disabled = bit(0x0010);
    m.metadata.response_code = (q.flags & 0xF).into();
    let mut hq = HQuery::query(name, RecordType::from(q.qtype));
    hq.set_query_class(DNSClass::from(q.qclass));
    m.add_query(hq);
    if let Some(e) = q.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(e.udp_payload)
            .set_version(e.version)
            .set_dnssec_ok(e.dnssec_ok);
        if let Some(c) = e.client_subnet {
            edns.options_mut()
                .insert(EdnsOption::Subnet(HSubnet::new(c.ip(), c.source_prefix, 0)));
        }
        if e.nsid {
            edns.options_mut()
                .insert(EdnsOption::Unknown(meridian::wire::OPT_NSID, Vec::new()));
        }
        if let Some(c) = e.cookie {
            let mut cookie = c.client.to_vec();
            cookie.extend_from_slice(&c.server[..c.server_len as usize]);
            edns.options_mut().insert(EdnsOption::Unknown(
                meridian::wire::cookie::OPT_COOKIE,
                cookie,
            ));
        }
        m.set_edns(edns);
    }
    let Ok(bytes) = m.to_vec() else {
        // hickory refuses to write a few classes and types in a question (OPT's class, say).
        return;
    };
    let mut again = Query::default();
    assert_eq!(
        parse_query(&bytes, &mut again),
        Ok(()),
        "the query written again does not parse: {bytes:02x?}"
    );
    // The Z bit (0x0040) has no field in hickory's header: it is not written again.
    assert_eq!(again.flags, q.flags & !0x0040, "flags written again");
    again.flags = q.flags;
    assert_same(q, &again, "parse → encode → parse");
}
