//! The answer engine seen from outside: real queries over real UDP and TCP to a running server,
//! with every response decoded by hickory-proto and checked field by field (RCODE, flags,
//! section contents with exact owner case, TTLs and RDATA).
//!
//! Every behaviour is asked over both transports with [`TestServer::both`]; the expected
//! records are written in presentation form (`owner TTL TYPE RDATA`), so a failure shows the
//! whole section as it came back.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::support::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::svcb::{Alpn, IpHint, Mandatory, SvcParamKey, SvcParamValue};
use hickory_proto::rr::rdata::{A, AAAA, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The main test zone: apex data, CNAME shapes, an empty non-terminal, a delegation with glue,
/// MX and SRV targets inside the zone, a wildcard.
const ZONE: &str = include_str!("../fixtures/example.com.full.zone");

/// The negative-answer TTL of [`ZONE`]: min(SOA TTL 3600, MINIMUM 300).
const NEG_SOA: &str = "example.com. 300 SOA ns1.example.com. hostmaster.example.com. 2026112701 7200 3600 1209600 300";

// ---------------------------------------------------------------------------------------------
// Helpers

/// One record in presentation form, owner in the exact case it came back in.
fn show(r: &Record) -> String {
    format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data)
}

fn section(records: &[Record]) -> Vec<String> {
    records.iter().map(show).collect()
}

/// What a response must hold.
struct Want<'a> {
    rcode: ResponseCode,
    aa: bool,
    answer: &'a [&'a str],
    authority: &'a [&'a str],
    additional: &'a [&'a str],
}

impl Want<'_> {
    fn noerror<'a>(answer: &'a [&'a str]) -> Want<'a> {
        Want {
            rcode: ResponseCode::NoError,
            aa: true,
            answer,
            authority: &[],
            additional: &[],
        }
    }
}

/// Header checks common to every answered query: a response to this query, echoing ID, opcode,
/// RD and the question (byte for byte, so with its case), RA/AD clear, TC clear.
fn check_header(q: &Message, r: &Message, transport: &str) {
    let ctx = format!("{transport}: {r:?}");
    assert_eq!(r.metadata.id, q.metadata.id, "{ctx}");
    assert_eq!(r.metadata.message_type, MessageType::Response, "{ctx}");
    assert_eq!(r.metadata.op_code, OpCode::Query, "{ctx}");
    assert_eq!(
        r.metadata.recursion_desired, q.metadata.recursion_desired,
        "RD copied; {ctx}"
    );
    assert!(!r.metadata.recursion_available, "RA clear; {ctx}");
    assert!(!r.metadata.authentic_data, "AD clear; {ctx}");
    assert!(!r.metadata.truncation, "TC clear; {ctx}");
    assert_eq!(r.queries.len(), 1, "{ctx}");
    let (asked, got) = (&q.queries[0], &r.queries[0]);
    assert_eq!(
        got.name().to_string(),
        asked.name().to_string(),
        "qname case; {ctx}"
    );
    assert!(got.name().eq_case(asked.name()), "{ctx}");
    assert_eq!(got.query_type(), asked.query_type(), "{ctx}");
    assert_eq!(got.query_class(), asked.query_class(), "{ctx}");
    assert_eq!(
        r.edns.is_some(),
        q.edns.is_some(),
        "OPT echoed iff sent; {ctx}"
    );
}

/// Send `q` over UDP and TCP and check both responses against `want`; returns them.
fn check_msg(srv: &TestServer, q: &Message, want: &Want) -> [Message; 2] {
    let rs = srv.both(q);
    for (r, transport) in rs.iter().zip(["UDP", "TCP"]) {
        check_header(q, r, transport);
        let ctx = format!("{transport} {}: {r:?}", q.queries[0]);
        assert_eq!(r.metadata.response_code, want.rcode, "rcode; {ctx}");
        assert_eq!(r.metadata.authoritative, want.aa, "AA; {ctx}");
        assert_eq!(section(&r.answers), want.answer, "answer; {ctx}");
        assert_eq!(section(&r.authorities), want.authority, "authority; {ctx}");
        assert_eq!(
            section(&r.additionals),
            want.additional,
            "additional; {ctx}"
        );
    }
    rs
}

/// [`query`], with the name kept in exactly the case given (`Name::from_str` lowercases).
fn ask(name: &str, rtype: RecordType, payload: Option<u16>) -> Message {
    let mut m = query(name, rtype, payload);
    m.queries[0] = Query::query(Name::from_ascii(name).unwrap(), rtype);
    assert_eq!(m.queries[0].name().to_string(), name);
    m
}

/// Ask `name`/`rtype` (RD set, no EDNS) over UDP and TCP and check both against `want`.
fn check(srv: &TestServer, name: &str, rtype: RecordType, want: Want) -> [Message; 2] {
    check_msg(srv, &ask(name, rtype, None), &want)
}

fn nxdomain<'a>(answer: &'a [&'a str], soa: &'a [&'a str]) -> Want<'a> {
    Want {
        rcode: ResponseCode::NXDomain,
        aa: true,
        answer,
        authority: soa,
        additional: &[],
    }
}

fn nodata<'a>(answer: &'a [&'a str], soa: &'a [&'a str]) -> Want<'a> {
    Want {
        rcode: ResponseCode::NoError,
        aa: true,
        answer,
        authority: soa,
        additional: &[],
    }
}

fn refused(srv: &TestServer, q: &Message) {
    check_msg(
        srv,
        q,
        &Want {
            rcode: ResponseCode::Refused,
            aa: false,
            answer: &[],
            authority: &[],
            additional: &[],
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Header flags and case

#[test]
fn authoritative_answer_sets_aa_copies_rd_and_clears_ra() {
    let srv = start(&[("example.com.", ZONE)], "");
    let www = [
        "www.example.com. 300 A 192.0.2.10",
        "www.example.com. 300 A 192.0.2.11",
    ];
    // RD set (as a stub resolver sends it).
    let q = ask("www.example.com.", RecordType::A, None);
    assert!(q.metadata.recursion_desired);
    check_msg(&srv, &q, &Want::noerror(&www));
    // RD clear (as a recursive resolver sends it).
    let mut q = ask("www.example.com.", RecordType::A, None);
    q.metadata.recursion_desired = false;
    check_msg(&srv, &q, &Want::noerror(&www));
    // The same with EDNS: the OPT comes back, the flags are the same.
    let mut q = ask("www.example.com.", RecordType::AAAA, Some(1232));
    q.metadata.recursion_desired = false;
    let rs = check_msg(
        &srv,
        &q,
        &Want::noerror(&["www.example.com. 300 AAAA 2001:db8::10"]),
    );
    for r in &rs {
        assert_eq!(r.edns.as_ref().unwrap().version(), 0);
    }
    // Negative answers are authoritative too, with RD copied.
    let mut q = ask("nope.example.com.", RecordType::A, None);
    q.metadata.recursion_desired = false;
    check_msg(&srv, &q, &nxdomain(&[], &[NEG_SOA]));
    srv.stop();
}

#[test]
fn qname_case_is_preserved_in_question_and_answer_owners() {
    let srv = start(&[("example.com.", ZONE)], "");
    check(
        &srv,
        "WwW.ExAmPlE.cOm.",
        RecordType::A,
        Want::noerror(&[
            "WwW.ExAmPlE.cOm. 300 A 192.0.2.10",
            "WwW.ExAmPlE.cOm. 300 A 192.0.2.11",
        ]),
    );
    // The CNAME's owner keeps the asked case; the target's records are owned by the target
    // as the zone wrote it.
    check(
        &srv,
        "WEB.example.COM.",
        RecordType::A,
        Want::noerror(&[
            "WEB.example.COM. 3600 CNAME www.example.com.",
            "www.example.com. 300 A 192.0.2.10",
            "www.example.com. 300 A 192.0.2.11",
        ]),
    );
    // A wildcard answer is owned by the asked name, in its case.
    check(
        &srv,
        "Foo.APPS.example.com.",
        RecordType::A,
        Want::noerror(&["Foo.APPS.example.com. 3600 A 192.0.2.80"]),
    );
    // The referral's NS owner is the cut, spelt as the question spelt it.
    check(
        &srv,
        "Host.SUB.Example.Com.",
        RecordType::A,
        Want {
            rcode: ResponseCode::NoError,
            aa: false,
            answer: &[],
            authority: &[
                "SUB.Example.Com. 3600 NS ns.sub.example.com.",
                "SUB.Example.Com. 3600 NS ns.example.net.",
            ],
            additional: &[
                "ns.sub.example.com. 3600 A 192.0.2.153",
                "ns.sub.example.com. 3600 AAAA 2001:db8::153",
            ],
        },
    );
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// Negative answers (RFC 2308)

#[test]
fn negative_ttl_is_soa_minimum_when_below_soa_ttl() {
    let srv = start(&[("example.com.", ZONE)], "");
    check(
        &srv,
        "missing.example.com.",
        RecordType::A,
        nxdomain(&[], &[NEG_SOA]),
    );
    check(
        &srv,
        "www.example.com.",
        RecordType::MX,
        nodata(&[], &[NEG_SOA]),
    );
    check(
        &srv,
        "example.com.",
        RecordType::AAAA,
        nodata(&[], &[NEG_SOA]),
    );
    // A positive SOA answer carries the SOA's own TTL.
    check(
        &srv,
        "example.com.",
        RecordType::SOA,
        Want::noerror(&[
            "example.com. 3600 SOA ns1.example.com. hostmaster.example.com. 2026112701 7200 3600 1209600 300",
        ]),
    );
    srv.stop();
}

#[test]
fn negative_ttl_is_soa_ttl_when_below_minimum() {
    let zone = "$ORIGIN short.test.\n\
                @ 60 IN SOA ns hostmaster 5 3600 600 86400 900\n\
                  60 IN NS ns\n\
                ns 3600 IN A 192.0.2.1\n";
    let srv = start(&[("short.test.", zone)], "");
    let soa = "short.test. 60 SOA ns.short.test. hostmaster.short.test. 5 3600 600 86400 900";
    check(
        &srv,
        "missing.short.test.",
        RecordType::A,
        nxdomain(&[], &[soa]),
    );
    check(&srv, "ns.short.test.", RecordType::TXT, nodata(&[], &[soa]));
    srv.stop();
}

#[test]
fn empty_non_terminals_are_nodata_not_nxdomain() {
    let srv = start(&[("example.com.", ZONE)], "");
    check(
        &srv,
        "a.b.c.example.com.",
        RecordType::TXT,
        Want::noerror(&["a.b.c.example.com. 3600 TXT deep"]),
    );
    check(
        &srv,
        "a.b.c.example.com.",
        RecordType::A,
        nodata(&[], &[NEG_SOA]),
    );
    for ent in ["b.c.example.com.", "c.example.com."] {
        for t in [RecordType::A, RecordType::TXT, RecordType::ANY] {
            check(&srv, ent, t, nodata(&[], &[NEG_SOA]));
        }
    }
    // Beside and below the real names, nothing exists.
    check(
        &srv,
        "x.c.example.com.",
        RecordType::A,
        nxdomain(&[], &[NEG_SOA]),
    );
    check(
        &srv,
        "x.a.b.c.example.com.",
        RecordType::TXT,
        nxdomain(&[], &[NEG_SOA]),
    );
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// CNAME

#[test]
fn cname_is_chased_within_the_zone() {
    let srv = start(&[("example.com.", ZONE)], "");
    check(
        &srv,
        "web.example.com.",
        RecordType::A,
        Want::noerror(&[
            "web.example.com. 3600 CNAME www.example.com.",
            "www.example.com. 300 A 192.0.2.10",
            "www.example.com. 300 A 192.0.2.11",
        ]),
    );
    check(
        &srv,
        "web.example.com.",
        RecordType::AAAA,
        Want::noerror(&[
            "web.example.com. 3600 CNAME www.example.com.",
            "www.example.com. 300 AAAA 2001:db8::10",
        ]),
    );
    // The target exists but has no data of the type: NOERROR, the CNAME, and the SOA.
    check(
        &srv,
        "tomail.example.com.",
        RecordType::TXT,
        nodata(
            &["tomail.example.com. 3600 CNAME mail.example.com."],
            &[NEG_SOA],
        ),
    );
    srv.stop();
}

#[test]
fn cname_chain_is_followed_to_the_end() {
    let srv = start(&[("example.com.", ZONE)], "");
    check(
        &srv,
        "c1.example.com.",
        RecordType::A,
        Want::noerror(&[
            "c1.example.com. 3600 CNAME c2.example.com.",
            "c2.example.com. 600 CNAME c3.example.com.",
            "c3.example.com. 3600 CNAME www.example.com.",
            "www.example.com. 300 A 192.0.2.10",
            "www.example.com. 300 A 192.0.2.11",
        ]),
    );
    // Entering the chain half-way.
    check(
        &srv,
        "c3.example.com.",
        RecordType::AAAA,
        Want::noerror(&[
            "c3.example.com. 3600 CNAME www.example.com.",
            "www.example.com. 300 AAAA 2001:db8::10",
        ]),
    );
    srv.stop();
}

#[test]
fn cname_to_another_zone_is_returned_alone() {
    let srv = start(&[("example.com.", ZONE)], "");
    for t in [RecordType::A, RecordType::AAAA, RecordType::MX] {
        check(
            &srv,
            "cdn.example.com.",
            t,
            Want::noerror(&["cdn.example.com. 3600 CNAME edge.example.net."]),
        );
    }
    srv.stop();
}

#[test]
fn cname_to_missing_name_is_nxdomain_with_the_cname() {
    // RFC 6604 §3: the RCODE describes the last name in the chain.
    let srv = start(&[("example.com.", ZONE)], "");
    check(
        &srv,
        "dangling.example.com.",
        RecordType::A,
        nxdomain(
            &["dangling.example.com. 3600 CNAME nothere.example.com."],
            &[NEG_SOA],
        ),
    );
    srv.stop();
}

#[test]
fn qtype_cname_returns_the_cname_without_chasing() {
    let srv = start(&[("example.com.", ZONE)], "");
    for (name, target) in [
        ("web.example.com.", "www.example.com."),
        ("c1.example.com.", "c2.example.com."),
        ("cdn.example.com.", "edge.example.net."),
        ("dangling.example.com.", "nothere.example.com."),
    ] {
        let ttl = 3600;
        let rr = format!("{name} {ttl} CNAME {target}");
        check(&srv, name, RecordType::CNAME, Want::noerror(&[&rr]));
    }
    // A name without a CNAME: NODATA.
    check(
        &srv,
        "www.example.com.",
        RecordType::CNAME,
        nodata(&[], &[NEG_SOA]),
    );
    srv.stop();
}

#[test]
fn cname_loop_terminates_with_a_bounded_answer() {
    let srv = start(&[("example.com.", ZONE)], "");
    for (start_name, other) in [
        ("loop-a.example.com.", "loop-b.example.com."),
        ("self.example.com.", "self.example.com."),
    ] {
        let q = ask(start_name, RecordType::A, None);
        for (r, transport) in srv.both(&q).iter().zip(["UDP", "TCP"]) {
            check_header(&q, r, transport);
            let ctx = format!("{transport}: {r:?}");
            assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{ctx}");
            assert!(r.metadata.authoritative, "{ctx}");
            let n = r.answers.len();
            assert!((2..=17).contains(&n), "bounded chain, got {n}; {ctx}");
            // The chain alternates exactly between the two names (or repeats the one).
            for (i, rr) in r.answers.iter().enumerate() {
                let (owner, target) = if i % 2 == 0 {
                    (start_name, other)
                } else {
                    (other, start_name)
                };
                assert_eq!(show(rr), format!("{owner} 3600 CNAME {target}"), "{ctx}");
            }
            assert!(
                r.authorities.is_empty() && r.additionals.is_empty(),
                "{ctx}"
            );
        }
    }
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// Wildcards: the example zone and outcomes of RFC 4592 §2.2.1

const RFC4592_ZONE: &str = include_str!("../fixtures/rfc4592.zone");

const RFC4592_SOA: &str =
    "example. 3600 SOA ns.example.com. hostmaster.example. 1 7200 1800 604800 3600";

fn rfc4592() -> TestServer {
    start(&[("example.", RFC4592_ZONE)], "")
}

#[test]
fn rfc4592_host3_mx_is_synthesized_from_the_wildcard() {
    let srv = rfc4592();
    check(
        &srv,
        "host3.example.",
        RecordType::MX,
        Want {
            rcode: ResponseCode::NoError,
            aa: true,
            answer: &["host3.example. 3600 MX 10 host1.example."],
            authority: &[],
            additional: &["host1.example. 3600 A 192.0.2.1"],
        },
    );
    srv.stop();
}

#[test]
fn rfc4592_host3_a_is_nodata() {
    let srv = rfc4592();
    check(
        &srv,
        "host3.example.",
        RecordType::A,
        nodata(&[], &[RFC4592_SOA]),
    );
    srv.stop();
}

#[test]
fn rfc4592_foo_bar_txt_is_synthesized_from_the_wildcard() {
    let srv = rfc4592();
    check(
        &srv,
        "foo.bar.example.",
        RecordType::TXT,
        Want::noerror(&["foo.bar.example. 3600 TXT this is a wildcard"]),
    );
    srv.stop();
}

#[test]
fn rfc4592_host1_mx_is_nodata_because_host1_exists() {
    let srv = rfc4592();
    check(
        &srv,
        "host1.example.",
        RecordType::MX,
        nodata(&[], &[RFC4592_SOA]),
    );
    srv.stop();
}

#[test]
fn rfc4592_sub_star_mx_is_nodata() {
    let srv = rfc4592();
    check(
        &srv,
        "sub.*.example.",
        RecordType::MX,
        nodata(&[], &[RFC4592_SOA]),
    );
    // Its own data is there, and is not a wildcard.
    check(
        &srv,
        "sub.*.example.",
        RecordType::TXT,
        Want::noerror(&["sub.*.example. 3600 TXT this is not a wildcard"]),
    );
    srv.stop();
}

#[test]
fn rfc4592_telnet_srv_under_empty_non_terminal_is_nxdomain() {
    let srv = rfc4592();
    check(
        &srv,
        "_telnet._tcp.host1.example.",
        RecordType::SRV,
        nxdomain(&[], &[RFC4592_SOA]),
    );
    // The existing sibling is answered.
    check(
        &srv,
        "_ssh._tcp.host1.example.",
        RecordType::SRV,
        Want {
            rcode: ResponseCode::NoError,
            aa: true,
            answer: &["_ssh._tcp.host1.example. 3600 SRV 0 0 22 host1.example."],
            authority: &[],
            additional: &["host1.example. 3600 A 192.0.2.1"],
        },
    );
    srv.stop();
}

#[test]
fn rfc4592_host_subdel_a_is_a_referral() {
    let srv = rfc4592();
    check(
        &srv,
        "host.subdel.example.",
        RecordType::A,
        Want {
            rcode: ResponseCode::NoError,
            aa: false,
            answer: &[],
            authority: &[
                "subdel.example. 3600 NS ns.example.com.",
                "subdel.example. 3600 NS ns.example.net.",
            ],
            additional: &[],
        },
    );
    srv.stop();
}

#[test]
fn rfc4592_ghost_star_mx_is_nxdomain() {
    let srv = rfc4592();
    check(
        &srv,
        "ghost.*.example.",
        RecordType::MX,
        nxdomain(&[], &[RFC4592_SOA]),
    );
    // The wildcard owner itself, asked literally, is an ordinary name.
    check(
        &srv,
        "*.example.",
        RecordType::TXT,
        Want::noerror(&["*.example. 3600 TXT this is a wildcard"]),
    );
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// Delegations

/// The referral for `sub.example.com.` in [`ZONE`].
fn sub_referral<'a>() -> Want<'a> {
    Want {
        rcode: ResponseCode::NoError,
        aa: false,
        answer: &[],
        authority: &[
            "sub.example.com. 3600 NS ns.sub.example.com.",
            "sub.example.com. 3600 NS ns.example.net.",
        ],
        additional: &[
            "ns.sub.example.com. 3600 A 192.0.2.153",
            "ns.sub.example.com. 3600 AAAA 2001:db8::153",
        ],
    }
}

#[test]
fn ns_at_a_cut_is_a_referral_with_glue() {
    let srv = start(&[("example.com.", ZONE)], "");
    check(&srv, "sub.example.com.", RecordType::NS, sub_referral());
    // Other types at the cut belong to the child too.
    for t in [
        RecordType::A,
        RecordType::SOA,
        RecordType::MX,
        RecordType::ANY,
    ] {
        check(&srv, "sub.example.com.", t, sub_referral());
    }
    srv.stop();
}

#[test]
fn names_below_a_cut_are_referred() {
    let srv = start(&[("example.com.", ZONE)], "");
    for (name, t) in [
        ("host.sub.example.com.", RecordType::A),
        ("deep.er.sub.example.com.", RecordType::AAAA),
        // Glue is not authoritative data: asking for it directly is referred as well.
        ("ns.sub.example.com.", RecordType::A),
        ("x.sub.example.com.", RecordType::DS),
    ] {
        check(&srv, name, t, sub_referral());
    }
    srv.stop();
}

#[test]
fn ds_at_the_cut_is_answered_by_the_parent() {
    // RFC 4035 §3.1.4.1: DS lives on the parent side of the cut: authoritative NODATA here.
    let srv = start(&[("example.com.", ZONE)], "");
    check(
        &srv,
        "sub.example.com.",
        RecordType::DS,
        nodata(&[], &[NEG_SOA]),
    );
    check(
        &srv,
        "SUB.example.com.",
        RecordType::DS,
        nodata(
            &[],
            &[
                "example.com. 300 SOA ns1.example.com. hostmaster.example.com. 2026112701 7200 3600 1209600 300",
            ],
        ),
    );
    srv.stop();
}

#[test]
fn apex_ns_is_an_authoritative_answer_with_addresses() {
    let srv = start(&[("example.com.", ZONE)], "");
    check(
        &srv,
        "example.com.",
        RecordType::NS,
        Want {
            rcode: ResponseCode::NoError,
            aa: true,
            answer: &[
                "example.com. 3600 NS ns1.example.com.",
                "example.com. 3600 NS ns2.example.net.",
            ],
            authority: &[],
            additional: &[
                "ns1.example.com. 3600 A 192.0.2.53",
                "ns1.example.com. 3600 AAAA 2001:db8::53",
            ],
        },
    );
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// Zone selection

const CHILD_ZONE: &str = r#"
$ORIGIN sub.example.com.
$TTL 1800
@     IN SOA ns.sub.example.com. admin.sub.example.com. ( 42 3600 600 604800 120 )
      IN NS  ns
      IN NS  ns.example.net.
ns    IN A   192.0.2.153
      IN AAAA 2001:db8::153
host  IN A   198.51.100.7
"#;

const ORG_ZONE: &str = r#"
$ORIGIN example.org.
$TTL 900
@   IN SOA ns1.example.com. hostmaster.example.com. 9 3600 600 604800 30
    IN NS  ns1.example.com.
www IN A   203.0.113.9
"#;

#[test]
fn names_outside_every_zone_are_refused() {
    let srv = start(&[("example.com.", ZONE)], "");
    for name in [
        "example.net.",
        "www.example.net.",
        "com.",
        ".",
        // A byte suffix of a served name that is not a label suffix.
        "notexample.com.",
        "www.notexample.com.",
    ] {
        for t in [RecordType::A, RecordType::SOA, RecordType::NS] {
            refused(&srv, &ask(name, t, None));
        }
    }
    // With EDNS too.
    refused(&srv, &ask("example.net.", RecordType::A, Some(1232)));
    srv.stop();
}

#[test]
fn several_zones_longest_match_wins() {
    let srv = start(
        &[
            ("example.com.", ZONE),
            ("sub.example.com.", CHILD_ZONE),
            ("example.org.", ORG_ZONE),
        ],
        "",
    );
    let child_soa = "sub.example.com. 120 SOA ns.sub.example.com. admin.sub.example.com. 42 3600 600 604800 120";
    // The child answers its own names authoritatively (no referral from the parent).
    check(
        &srv,
        "host.sub.example.com.",
        RecordType::A,
        Want::noerror(&["host.sub.example.com. 1800 A 198.51.100.7"]),
    );
    check(
        &srv,
        "sub.example.com.",
        RecordType::NS,
        Want {
            rcode: ResponseCode::NoError,
            aa: true,
            answer: &[
                "sub.example.com. 1800 NS ns.sub.example.com.",
                "sub.example.com. 1800 NS ns.example.net.",
            ],
            authority: &[],
            additional: &[
                "ns.sub.example.com. 1800 A 192.0.2.153",
                "ns.sub.example.com. 1800 AAAA 2001:db8::153",
            ],
        },
    );
    check(
        &srv,
        "sub.example.com.",
        RecordType::SOA,
        Want::noerror(&[
            "sub.example.com. 1800 SOA ns.sub.example.com. admin.sub.example.com. 42 3600 600 604800 120",
        ]),
    );
    check(
        &srv,
        "nope.sub.example.com.",
        RecordType::A,
        nxdomain(&[], &[child_soa]),
    );
    check(
        &srv,
        "host.sub.example.com.",
        RecordType::MX,
        nodata(&[], &[child_soa]),
    );
    // The parent still answers the rest of its zone.
    check(
        &srv,
        "www.example.com.",
        RecordType::AAAA,
        Want::noerror(&["www.example.com. 300 AAAA 2001:db8::10"]),
    );
    check(
        &srv,
        "nope.example.com.",
        RecordType::A,
        nxdomain(&[], &[NEG_SOA]),
    );
    // The unrelated zone.
    check(
        &srv,
        "www.example.org.",
        RecordType::A,
        Want::noerror(&["www.example.org. 900 A 203.0.113.9"]),
    );
    check(
        &srv,
        "nope.example.org.",
        RecordType::A,
        nxdomain(
            &[],
            &["example.org. 30 SOA ns1.example.com. hostmaster.example.com. 9 3600 600 604800 30"],
        ),
    );
    refused(&srv, &ask("example.net.", RecordType::A, None));
    srv.stop();
}

#[test]
fn ds_at_a_served_child_apex_is_answered_from_the_parent() {
    // RFC 4035 §3.1.4.1: a server authoritative for both sides of a cut answers DS from the
    // parent zone (the child's apex has no DS; the parent's SOA belongs in a NODATA for it).
    let srv = start(
        &[("example.com.", ZONE), ("sub.example.com.", CHILD_ZONE)],
        "",
    );
    check(
        &srv,
        "sub.example.com.",
        RecordType::DS,
        nodata(&[], &[NEG_SOA]),
    );
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// ANY, zone transfers

#[test]
fn any_is_answered_with_exactly_one_rrset() {
    let srv = start(&[("example.com.", ZONE)], "");
    // Every RRset present at each name, in presentation form.
    let www_sets: [&[&str]; 2] = [
        &[
            "www.example.com. 300 A 192.0.2.10",
            "www.example.com. 300 A 192.0.2.11",
        ],
        &["www.example.com. 300 AAAA 2001:db8::10"],
    ];
    let apex_sets: [&[&str]; 3] = [
        &[
            "example.com. 3600 NS ns1.example.com.",
            "example.com. 3600 NS ns2.example.net.",
        ],
        &[
            "example.com. 3600 SOA ns1.example.com. hostmaster.example.com. 2026112701 7200 3600 1209600 300",
        ],
        &[
            "example.com. 3600 MX 10 mail.example.com.",
            "example.com. 3600 MX 20 mx.example.net.",
        ],
    ];
    for (name, sets) in [
        ("www.example.com.", &www_sets[..]),
        ("example.com.", &apex_sets[..]),
        (
            "web.example.com.",
            &[&["web.example.com. 3600 CNAME www.example.com."][..]][..],
        ),
        (
            "x.apps.example.com.",
            &[&["x.apps.example.com. 3600 A 192.0.2.80"][..]][..],
        ),
    ] {
        let q = ask(name, RecordType::ANY, None);
        for (r, transport) in srv.both(&q).iter().zip(["UDP", "TCP"]) {
            check_header(&q, r, transport);
            let ctx = format!("{transport}: {r:?}");
            assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{ctx}");
            assert!(r.metadata.authoritative, "{ctx}");
            let got = section(&r.answers);
            // One whole RRset of the name: no more, no less, no other.
            assert!(
                sets.iter().any(|s| got == *s),
                "{transport} ANY {name}: {got:?} is not one RRset of {sets:?}"
            );
            assert!(r.authorities.is_empty(), "{ctx}");
        }
    }
    // ANY for a missing name is still NXDOMAIN.
    check(
        &srv,
        "missing.example.com.",
        RecordType::ANY,
        nxdomain(&[], &[NEG_SOA]),
    );
    srv.stop();
}

#[test]
fn zone_transfers_are_refused() {
    let srv = start(&[("example.com.", ZONE)], "");
    refused(&srv, &ask("example.com.", RecordType::AXFR, None));
    // IXFR carries the client's SOA in the authority section (RFC 1995 §3).
    let mut q = ask("example.com.", RecordType::IXFR, None);
    q.add_authority(Record::from_rdata(
        Name::from_str("example.com.").unwrap(),
        3600,
        RData::SOA(SOA::new(
            Name::from_str("ns1.example.com.").unwrap(),
            Name::from_str("hostmaster.example.com.").unwrap(),
            2026112600,
            7200,
            3600,
            1209600,
            300,
        )),
    ));
    refused(&srv, &q);
    refused(&srv, &ask("example.com.", RecordType::IXFR, None));
    // For names inside the zone but not at the apex, too.
    refused(&srv, &ask("www.example.com.", RecordType::AXFR, None));
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// Record types and RDATA

const RDATA_ZONE: &str = r#"
$ORIGIN rdata.test.
$TTL 600
@      IN SOA ns1 admin.rdata.test. ( 7 3600 900 604800 60 )
       IN NS  ns1
       IN NS  ns2.example.net.
       IN CAA 0 issue "letsencrypt.org"
       IN CAA 128 iodef "mailto:security@rdata.test"
       IN HTTPS 1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.10 ipv6hint=2001:db8::10
ns1    IN A    192.0.2.1
v6     IN AAAA 2001:db8:0:0:0:0:0:1
alias  IN CNAME target.example.net.
mx     IN MX   5 mail.example.net.
txt    IN TXT  "v=spf1 -all" "two words" "semi ; colon (inside) quotes" bare "say \"hi\""
_xmpp._tcp IN SRV 5 0 5269 xmpp.example.net.
svc    IN SVCB 1 backend.example.net. port=853 alpn=dot mandatory=alpn
alias-svc IN SVCB 0 backend.example.net.
"#;

const REVERSE_ZONE: &str = r#"
$TTL 86400
@  IN SOA ns1.rdata.test. admin.rdata.test. 1 3600 900 604800 60
   IN NS  ns1.rdata.test.
10 IN PTR www.rdata.test.
"#;

fn rdata_server() -> TestServer {
    start(
        &[
            ("rdata.test.", RDATA_ZONE),
            ("2.0.192.in-addr.arpa.", REVERSE_ZONE),
        ],
        "",
    )
}

/// The RDATA of the only answer record, over UDP and TCP (which must agree), after checking
/// the header, the owner and the TTL.
fn one_rdata(srv: &TestServer, name: &str, t: RecordType, ttl: u32) -> Vec<RData> {
    let q = ask(name, t, None);
    let rs = srv.both(&q);
    let mut out = Vec::new();
    for (r, transport) in rs.iter().zip(["UDP", "TCP"]) {
        check_header(&q, r, transport);
        let ctx = format!("{transport}: {r:?}");
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{ctx}");
        assert!(r.metadata.authoritative, "{ctx}");
        for rr in &r.answers {
            assert_eq!(rr.name.to_string(), name, "{ctx}");
            assert_eq!(rr.ttl, ttl, "{ctx}");
            assert_eq!(rr.record_type(), t, "{ctx}");
        }
        let data: Vec<RData> = r.answers.iter().map(|rr| rr.data.clone()).collect();
        out.push(data);
    }
    assert_eq!(out[0], out[1], "UDP and TCP differ");
    out.swap_remove(0)
}

#[test]
fn soa_ns_a_aaaa_cname_mx_ptr_rdata() {
    let srv = rdata_server();
    let n = |s: &str| Name::from_str(s).unwrap();
    let soa = one_rdata(&srv, "rdata.test.", RecordType::SOA, 600);
    let RData::SOA(s) = &soa[0] else {
        panic!("{soa:?}")
    };
    assert_eq!(soa.len(), 1);
    assert_eq!(s.mname.to_string(), "ns1.rdata.test.");
    assert_eq!(s.rname.to_string(), "admin.rdata.test.");
    assert_eq!(
        (s.serial, s.refresh, s.retry, s.expire, s.minimum),
        (7, 3600, 900, 604800, 60)
    );

    let ns = one_rdata(&srv, "rdata.test.", RecordType::NS, 600);
    let ns: Vec<String> = ns.iter().map(|d| d.to_string()).collect();
    assert_eq!(ns, ["ns1.rdata.test.", "ns2.example.net."]);

    assert_eq!(
        one_rdata(&srv, "ns1.rdata.test.", RecordType::A, 600),
        [RData::A(A(Ipv4Addr::new(192, 0, 2, 1)))]
    );
    assert_eq!(
        one_rdata(&srv, "v6.rdata.test.", RecordType::AAAA, 600),
        [RData::AAAA(AAAA(Ipv6Addr::new(
            0x2001, 0xdb8, 0, 0, 0, 0, 0, 1
        )))]
    );
    let cname = one_rdata(&srv, "alias.rdata.test.", RecordType::CNAME, 600);
    assert_eq!(cname.len(), 1);
    assert_eq!(cname[0].to_string(), "target.example.net.");
    let RData::CNAME(c) = &cname[0] else {
        panic!("{cname:?}")
    };
    assert!(c.0.eq_case(&n("target.example.net.")));

    let mx = one_rdata(&srv, "mx.rdata.test.", RecordType::MX, 600);
    let [RData::MX(m)] = &mx[..] else {
        panic!("{mx:?}")
    };
    assert_eq!(m.preference, 5);
    assert_eq!(m.exchange.to_string(), "mail.example.net.");

    let ptr = one_rdata(&srv, "10.2.0.192.in-addr.arpa.", RecordType::PTR, 86400);
    let [RData::PTR(p)] = &ptr[..] else {
        panic!("{ptr:?}")
    };
    assert_eq!(p.0.to_string(), "www.rdata.test.");
    srv.stop();
}

#[test]
fn txt_strings_keep_spaces_semicolons_and_quotes() {
    let srv = rdata_server();
    let txt = one_rdata(&srv, "txt.rdata.test.", RecordType::TXT, 600);
    let [RData::TXT(t)] = &txt[..] else {
        panic!("{txt:?}")
    };
    let strings: Vec<&[u8]> = t.txt_data.iter().map(|s| &s[..]).collect();
    assert_eq!(
        strings,
        [
            &b"v=spf1 -all"[..],
            b"two words",
            b"semi ; colon (inside) quotes",
            b"bare",
            b"say \"hi\"",
        ]
    );
    srv.stop();
}

#[test]
fn srv_caa_rdata() {
    let srv = rdata_server();
    let s = one_rdata(&srv, "_xmpp._tcp.rdata.test.", RecordType::SRV, 600);
    let [RData::SRV(s)] = &s[..] else {
        panic!("{s:?}")
    };
    assert_eq!((s.priority, s.weight, s.port), (5, 0, 5269));
    assert_eq!(s.target.to_string(), "xmpp.example.net.");

    let caa = one_rdata(&srv, "rdata.test.", RecordType::CAA, 600);
    let [RData::CAA(issue), RData::CAA(iodef)] = &caa[..] else {
        panic!("{caa:?}")
    };
    assert_eq!(
        (issue.flags(), issue.tag.as_str(), &issue.value[..]),
        (0, "issue", &b"letsencrypt.org"[..])
    );
    assert!(!issue.issuer_critical);
    assert_eq!(
        (iodef.flags(), iodef.tag.as_str(), &iodef.value[..]),
        (128, "iodef", &b"mailto:security@rdata.test"[..])
    );
    assert!(iodef.issuer_critical);
    srv.stop();
}

#[test]
fn https_and_svcb_rdata() {
    let srv = rdata_server();
    let https = one_rdata(&srv, "rdata.test.", RecordType::HTTPS, 600);
    let [RData::HTTPS(h)] = &https[..] else {
        panic!("{https:?}")
    };
    assert_eq!(h.0.svc_priority, 1);
    assert_eq!(h.0.target_name.to_string(), ".");
    assert_eq!(
        h.0.svc_params,
        [
            (
                SvcParamKey::Alpn,
                SvcParamValue::Alpn(Alpn(vec!["h2".into(), "h3".into()]))
            ),
            (SvcParamKey::Port, SvcParamValue::Port(8443)),
            (
                SvcParamKey::Ipv4Hint,
                SvcParamValue::Ipv4Hint(IpHint(vec![A(Ipv4Addr::new(192, 0, 2, 10))]))
            ),
            (
                SvcParamKey::Ipv6Hint,
                SvcParamValue::Ipv6Hint(IpHint(vec![AAAA(Ipv6Addr::new(
                    0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10
                ))]))
            ),
        ]
    );

    // Written out of order in the file; on the wire SvcParams must be in increasing key order
    // (RFC 9460 §2.2).
    let svcb = one_rdata(&srv, "svc.rdata.test.", RecordType::SVCB, 600);
    let [RData::SVCB(s)] = &svcb[..] else {
        panic!("{svcb:?}")
    };
    assert_eq!(s.svc_priority, 1);
    assert_eq!(s.target_name.to_string(), "backend.example.net.");
    assert_eq!(
        s.svc_params,
        [
            (
                SvcParamKey::Mandatory,
                SvcParamValue::Mandatory(Mandatory(vec![SvcParamKey::Alpn]))
            ),
            (
                SvcParamKey::Alpn,
                SvcParamValue::Alpn(Alpn(vec!["dot".into()]))
            ),
            (SvcParamKey::Port, SvcParamValue::Port(853)),
        ]
    );

    // AliasMode: priority 0, no parameters.
    let alias = one_rdata(&srv, "alias-svc.rdata.test.", RecordType::SVCB, 600);
    let [RData::SVCB(a)] = &alias[..] else {
        panic!("{alias:?}")
    };
    assert_eq!(a.svc_priority, 0);
    assert_eq!(a.target_name.to_string(), "backend.example.net.");
    assert!(a.svc_params.is_empty());
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// Additional section

#[test]
fn mx_and_srv_targets_in_zone_get_addresses_in_additional() {
    let srv = start(&[("example.com.", ZONE)], "");
    check(
        &srv,
        "example.com.",
        RecordType::MX,
        Want {
            rcode: ResponseCode::NoError,
            aa: true,
            answer: &[
                "example.com. 3600 MX 10 mail.example.com.",
                "example.com. 3600 MX 20 mx.example.net.",
            ],
            authority: &[],
            // Only the in-zone target; mx.example.net. is not ours.
            additional: &[
                "mail.example.com. 3600 A 192.0.2.25",
                "mail.example.com. 3600 AAAA 2001:db8::25",
            ],
        },
    );
    check(
        &srv,
        "_sip._tcp.example.com.",
        RecordType::SRV,
        Want {
            rcode: ResponseCode::NoError,
            aa: true,
            answer: &["_sip._tcp.example.com. 3600 SRV 10 60 5060 sip.example.com."],
            authority: &[],
            additional: &["sip.example.com. 3600 A 192.0.2.60"],
        },
    );
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// Master-file features

const FEATURES_ZONE: &str = "$TTL 1h
$ORIGIN example.test.
@   IN SOA ns1 hostmaster ( 2026010101 ; serial
            2h         ; refresh
            30m        ; retry
            2w         ; expire
            5m )       ; negative TTL
    IN NS ns1          ; owner inherited from the line above: the apex
ns1 IN A 192.0.2.1
    1d IN AAAA 2001:db8::1   ; inherited owner, own TTL with a unit
$ORIGIN sub.example.test.
www  IN A 192.0.2.2         ; relative to the new origin
     IN MX ( 10             ; parentheses across lines
             mail )         ; relative target, new origin
mail IN A 192.0.2.3
$ORIGIN example.test.
$TTL 120
txt  TXT ( \"one\"   ; class omitted, a comment inside
           \"two\" )
mixed 1h30m IN A 192.0.2.4
after IN A 192.0.2.5
";

#[test]
fn zone_file_features() {
    let srv = start(&[("example.test.", FEATURES_ZONE)], "");
    check(
        &srv,
        "example.test.",
        RecordType::SOA,
        Want::noerror(&[
            "example.test. 3600 SOA ns1.example.test. hostmaster.example.test. 2026010101 7200 1800 1209600 300",
        ]),
    );
    check(
        &srv,
        "example.test.",
        RecordType::NS,
        Want {
            rcode: ResponseCode::NoError,
            aa: true,
            answer: &["example.test. 3600 NS ns1.example.test."],
            authority: &[],
            additional: &[
                "ns1.example.test. 3600 A 192.0.2.1",
                "ns1.example.test. 86400 AAAA 2001:db8::1",
            ],
        },
    );
    check(
        &srv,
        "www.sub.example.test.",
        RecordType::A,
        Want::noerror(&["www.sub.example.test. 3600 A 192.0.2.2"]),
    );
    check(
        &srv,
        "www.sub.example.test.",
        RecordType::MX,
        Want {
            rcode: ResponseCode::NoError,
            aa: true,
            answer: &["www.sub.example.test. 3600 MX 10 mail.sub.example.test."],
            authority: &[],
            additional: &["mail.sub.example.test. 3600 A 192.0.2.3"],
        },
    );
    let soa = "example.test. 300 SOA ns1.example.test. hostmaster.example.test. 2026010101 7200 1800 1209600 300";
    // `www` was not placed under the zone origin.
    check(
        &srv,
        "www.example.test.",
        RecordType::A,
        nxdomain(&[], &[soa]),
    );
    let q = ask("txt.example.test.", RecordType::TXT, None);
    for r in check_msg(
        &srv,
        &q,
        &Want::noerror(&["txt.example.test. 120 TXT onetwo"]),
    ) {
        let RData::TXT(t) = &r.answers[0].data else {
            panic!()
        };
        let strings: Vec<&[u8]> = t.txt_data.iter().map(|s| &s[..]).collect();
        assert_eq!(strings, [&b"one"[..], b"two"]);
    }
    check(
        &srv,
        "mixed.example.test.",
        RecordType::A,
        Want::noerror(&["mixed.example.test. 5400 A 192.0.2.4"]),
    );
    check(
        &srv,
        "after.example.test.",
        RecordType::A,
        Want::noerror(&["after.example.test. 120 A 192.0.2.5"]),
    );
    srv.stop();
}

#[test]
fn indented_comment_or_blank_line_does_not_hide_the_next_owner() {
    // A line holding only white space (and perhaps a comment) is not an entry; the next line's
    // first token is still its owner name.
    let zone = "$ORIGIN blank.test.\n\
                $TTL 300\n\
                @ IN SOA ns hostmaster 1 3600 600 86400 60\n\
                \x20 IN NS ns\n\
                \x20   ; an indented comment\n\
                ns IN A 192.0.2.1\n\
                \x20\x20\t\n\
                www IN A 192.0.2.2\n\
                \x20\x20\n\
                $ORIGIN other.blank.test.\n\
                host IN A 192.0.2.3\n";
    let srv = start(&[("blank.test.", zone)], "");
    check(
        &srv,
        "ns.blank.test.",
        RecordType::A,
        Want::noerror(&["ns.blank.test. 300 A 192.0.2.1"]),
    );
    check(
        &srv,
        "www.blank.test.",
        RecordType::A,
        Want::noerror(&["www.blank.test. 300 A 192.0.2.2"]),
    );
    check(
        &srv,
        "host.other.blank.test.",
        RecordType::A,
        Want::noerror(&["host.other.blank.test. 300 A 192.0.2.3"]),
    );
    srv.stop();
}

/// A question built by hand (fixed ID, RD clear, no EDNS) is answered like `query()`'s.
#[test]
fn hand_built_question_without_rd() {
    let srv = start(&[("example.com.", ZONE)], "");
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_str("mail.example.com.").unwrap(),
        RecordType::AAAA,
    ));
    assert!(!m.metadata.recursion_desired);
    check_msg(
        &srv,
        &m,
        &Want::noerror(&["mail.example.com. 3600 AAAA 2001:db8::25"]),
    );
    srv.stop();
}

#[test]
fn svcb_with_a_repeated_key_is_a_located_zone_error() {
    // Out-of-order keys are fine (see `https_and_svcb_rdata`); a repeated key makes the zone
    // unservable, and loading must say where rather than fail later.
    let dir = tempfile::tempdir().unwrap();
    let zone =
        "$ORIGIN dup.test.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n  NS ns\nsvc SVCB 1 . port=1 port=2\n";
    std::fs::write(dir.path().join("dup.zone"), zone).unwrap();
    let toml = "[dns]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\norigin = \"dup.test.\"\nfile = \"dup.zone\"\n";
    let path = dir.path().join("meridian.toml");
    std::fs::write(&path, toml).unwrap();
    let config = meridian::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let Err(e) = meridian::snapshot::assemble(&config) else {
        panic!("a zone with a repeated SvcParam key compiled");
    };
    let msg = e.to_string();
    assert!(msg.contains("dup.zone:5:"), "{msg}");
    assert!(msg.contains("SvcParam key port is repeated"), "{msg}");
}
