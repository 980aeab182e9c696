//! Prepared responses against the general path, byte for byte.
//!
//! [`Catalog::new`] answers questions of exactly a zone's owner names from bytes that are ready
//! (an RRset's own, the negative SOA, or sections written ahead of time), and [`respond`] copies
//! them on a hit; [`Catalog::build`] with a budget of 0 bytes
//! prepares nothing, so every query takes the general path. This test loads the same zones into
//! both kinds of catalog, asks both the same questions (every owner name in several cases, names
//! below and beside them, names outside every zone; many types; with and without EDNS, DO, ECS
//! and small payloads; over UDP and TCP) and requires identical outcomes and identical bytes.
//! It also checks that the fast path is really there to be taken, so the comparison is not
//! between two copies of the general path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::rr::Name;
use meridian::dns::answer::{Outcome, Peer, Transport, Work, respond};
use meridian::snapshot::Snapshot;
use meridian::wire::MAX_MESSAGE;
use meridian::wire::{Query, parse_query};
use meridian::zone::{Catalog, Found, Presence, Ready, Zone, load_zone};

/// CNAME shapes (chains, loops, out-of-zone and dangling targets), an empty non-terminal chain,
/// a delegation with glue, MX and SRV targets in and out of the zone, a wildcard, and an RRset
/// too big for 512 bytes.
const EXAMPLE_COM: &str = concat!(
    include_str!("../fixtures/example.com.full.zone"),
    r#"big       IN TXT "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          IN TXT "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
          IN TXT "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
"#
);

/// The RFC 4592 §2.2.1 example: wildcards, a `*` label in the middle of a name, a delegation.
const RFC4592: &str = include_str!("../fixtures/rfc4592.zone");

/// The child of example.com.'s delegation `sub`, served by the same catalog: names at the
/// parent/child boundary (DS at the cut, glue that the child also holds, or not).
const SUB_EXAMPLE_COM: &str = r#"
$ORIGIN sub.example.com.
$TTL 3600
@         IN SOA  ns.sub.example.com. hostmaster.sub.example.com. ( 7 7200 3600 1209600 600 )
          IN NS   ns.sub.example.com.
          IN NS   ns.example.net.
ns        IN A    192.0.2.153
www       IN A    192.0.2.154
          IN MX   5 ns
"#;

/// Sizes around every limit: MX, SRV and address RRsets of growing size (1 to 16 records, then
/// up to 48), the MX and SRV targets in the zone with A and AAAA each, so that the answer fits
/// and the additional section is cut back (or not) at every payload size; CNAMEs onto them; a
/// delegation with much glue.
fn growing_zone() -> String {
    let mut z = String::from(
        "$ORIGIN grow.test.\n$TTL 600\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 60\n",
    );
    for i in 1..=12 {
        z.push_str(&format!("@ IN NS ns{i}\nns{i} IN A 192.0.2.{i}\n"));
    }
    for i in 1..=48 {
        z.push_str(&format!(
            "t{i} IN A 198.51.100.{i}\nt{i} IN AAAA 2001:db8::{i:x}\n"
        ));
    }
    for n in (1..=16).chain([20, 24, 28, 32, 40, 48]) {
        for i in 1..=n {
            z.push_str(&format!("mx{n} IN MX {i} t{i}\n"));
            z.push_str(&format!("srv{n} IN SRV 0 0 443 t{i}\n"));
            z.push_str(&format!("a{n} IN A 203.0.113.{i}\n"));
        }
    }
    // CNAMEs whose targets hold other types than A and AAAA (their chase depends on the type).
    for (alias, target) in [
        ("alias", "mx12"),
        ("alias-big", "mx40"),
        ("alias-srv", "srv3"),
        ("alias-apex", "grow.test."),
        ("alias-t", "t1"),
        ("alias-deleg", "g1.deleg"),
        ("alias-alias", "alias"),
    ] {
        z.push_str(&format!("{alias} IN CNAME {target}\n"));
    }
    for i in 1..=40 {
        z.push_str(&format!(
            "deleg IN NS g{i}.deleg\ng{i}.deleg IN A 192.0.2.{i}\ng{i}.deleg IN AAAA 2001:db8:1::{i:x}\n"
        ));
    }
    z
}

const QTYPES: &[u16] = &[
    1,   // A
    2,   // NS
    5,   // CNAME
    6,   // SOA
    12,  // PTR (the shipped example.net. holds one)
    15,  // MX
    16,  // TXT
    28,  // AAAA
    33,  // SRV
    43,  // DS
    65,  // HTTPS (the shipped example.com. holds one)
    255, // ANY
    0,   // reserved
    99,  // SPF: held nowhere
    252, // AXFR: refused
    257, // CAA (the shipped example.com. holds one)
];

/// How a query carries EDNS.
#[derive(Debug, Clone, Copy)]
enum EdnsVariant {
    None,
    Payload4096,
    /// Forces cut-backs and truncation on big answers over UDP.
    Payload512,
    /// DO bit set, payload 1232.
    DnssecOk,
    /// Client Subnet option: family 1, source /24, 192.0.2.0; payload 1232.
    ClientSubnet,
}

const EDNS_VARIANTS: &[EdnsVariant] = &[
    EdnsVariant::None,
    EdnsVariant::Payload4096,
    EdnsVariant::Payload512,
    EdnsVariant::DnssecOk,
    EdnsVariant::ClientSubnet,
];

/// The server's own EDNS payload size (the snapshot's), both a common value and the largest.
const SERVER_PAYLOADS: &[u16] = &[1232, 4096];

/// Names no zone in any catalog below contains (some are inside `example.` when it is served,
/// which is fine: they are then one more name inside a zone).
const OUTSIDE: &[&str] = &[
    ".",
    "com.",
    "org.",
    "arpa.",
    "example.org.",
    "WWW.Example.ORG.",
    "xexample.com.",
    "example.com.evil.",
    "ample.com.",
    "in-addr.arpa.",
    "bench.example.org.",
    "nope.example.",
];

// ---------------------------------------------------------------- names and packets

/// Wire form of a presentation name (no escapes; case kept).
fn wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// Presentation form of a wire name (for messages).
fn text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    while wire[pos] != 0 {
        let l = wire[pos] as usize;
        out.push_str(&String::from_utf8_lossy(&wire[pos + 1..pos + 1 + l]));
        out.push('.');
        pos += 1 + l;
    }
    if out.is_empty() { ".".into() } else { out }
}

/// Apply `f` to every byte of every label (length bytes are below 'A' and untouched anyway,
/// but are skipped explicitly so that the index within a label is known).
fn map_labels(wire: &[u8], f: impl Fn(usize, u8) -> u8) -> Vec<u8> {
    let mut out = wire.to_vec();
    let mut pos = 0;
    while out[pos] != 0 {
        let l = out[pos] as usize;
        for i in 0..l {
            out[pos + 1 + i] = f(i, out[pos + 1 + i]);
        }
        pos += 1 + l;
    }
    out
}

fn upper(wire: &[u8]) -> Vec<u8> {
    map_labels(wire, |_, b| b.to_ascii_uppercase())
}

/// Alternating case, starting upper (`WwW.ExAmPlE.CoM.`).
fn mixed(wire: &[u8]) -> Vec<u8> {
    map_labels(wire, |i, b| {
        if i % 2 == 0 {
            b.to_ascii_uppercase()
        } else {
            b.to_ascii_lowercase()
        }
    })
}

/// `label` + `.` + `wire`, if the result is a legal name.
fn child(label: &[u8], wire: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![label.len() as u8];
    out.extend_from_slice(label);
    out.extend_from_slice(wire);
    (out.len() <= 255).then_some(out)
}

/// A small deterministic generator for query IDs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A query message: header (ID, RD), one question for `qname` as given (case kept), class IN,
/// and an OPT record in the additional section as `edns` says.
fn query(id: u16, qname: &[u8], qtype: u16, edns: EdnsVariant) -> Vec<u8> {
    let arcount: u16 = if matches!(edns, EdnsVariant::None) {
        0
    } else {
        1
    };
    let mut p = Vec::with_capacity(12 + qname.len() + 4 + 30);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    p.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    p.extend_from_slice(&0u16.to_be_bytes()); // ANCOUNT
    p.extend_from_slice(&0u16.to_be_bytes()); // NSCOUNT
    p.extend_from_slice(&arcount.to_be_bytes()); // ARCOUNT
    p.extend_from_slice(qname);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes()); // IN
    let (payload, dnssec_ok, options): (u16, bool, Vec<u8>) = match edns {
        EdnsVariant::None => return p,
        EdnsVariant::Payload4096 => (4096, false, vec![]),
        EdnsVariant::Payload512 => (512, false, vec![]),
        EdnsVariant::DnssecOk => (1232, true, vec![]),
        EdnsVariant::ClientSubnet => (
            1232,
            false,
            // OPTION-CODE 8, OPTION-LENGTH 7, FAMILY 1, SOURCE /24, SCOPE 0, 192.0.2.
            vec![0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2],
        ),
    };
    p.push(0); // root owner
    p.extend_from_slice(&41u16.to_be_bytes()); // OPT
    p.extend_from_slice(&payload.to_be_bytes());
    p.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
    p.extend_from_slice(&(options.len() as u16).to_be_bytes());
    p.extend_from_slice(&options);
    p
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, row) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("    {:04x}:", i * 16));
        for b in row {
            out.push_str(&format!(" {b:02x}"));
        }
        out.push('\n');
    }
    out
}

/// Both responses in hex and where they first differ.
fn hex_diff(a: &[u8], b: &[u8]) -> String {
    let first = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    format!(
        "  lengths {} (prepared) vs {} (general), first difference at offset {first} (0x{first:x})\n  prepared:\n{}  general:\n{}",
        a.len(),
        b.len(),
        hex(a),
        hex(b)
    )
}

// ---------------------------------------------------------------- zones and catalogs

/// A zone to load: its origin and its master file.
struct Source {
    origin: String,
    file: PathBuf,
}

fn load(sources: &[Source]) -> Vec<Zone> {
    sources
        .iter()
        .map(|s| {
            let origin = Name::from_ascii(&s.origin).unwrap();
            load_zone(&origin, &s.file).unwrap_or_else(|errors| {
                let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                panic!("zone {} did not load:\n{}", s.origin, msgs.join("\n"))
            })
        })
        .collect()
}

/// The same zones as a catalog with prepared responses (A) and one without (B).
fn catalogs(sources: &[Source]) -> (Arc<Catalog>, Arc<Catalog>) {
    let a = Catalog::new(load(sources));
    let b = Catalog::build(load(sources), 0);
    assert!(a.prepares(), "Catalog::new prepares nothing");
    assert!(
        !b.prepares() && b.prepared_bytes() == 0,
        "Catalog::build(.., 0) prepared something"
    );
    (Arc::new(a), Arc::new(b))
}

fn snapshot(catalog: &Arc<Catalog>, edns_udp_payload: u16) -> Snapshot {
    Snapshot {
        catalog: catalog.clone(),
        edns_udp_payload,
        steering: None,
        tables: None,
        nsid: None,
        secondaries: Default::default(),
        tsig_keys: Default::default(),
    }
}

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The zones of the shipped configuration, with the origins config/meridian.toml gives them.
fn shipped_zones() -> Vec<Source> {
    let config = manifest().join("config/meridian.toml");
    let toml: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    let zones = toml["zone"].as_array().expect("[[zone]] tables");
    let sources: Vec<Source> = zones
        .iter()
        .map(|z| Source {
            origin: z["origin"].as_str().unwrap().to_string(),
            file: config.parent().unwrap().join(z["file"].as_str().unwrap()),
        })
        .collect();
    assert!(!sources.is_empty(), "no [[zone]] in {}", config.display());
    // Every file in config/zones is one of them.
    let mut on_disk: Vec<PathBuf> = std::fs::read_dir(manifest().join("config/zones"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "zone"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<PathBuf> = sources.iter().map(|s| s.file.clone()).collect();
    listed.sort();
    let canon = |v: Vec<PathBuf>| -> Vec<PathBuf> {
        v.into_iter()
            .map(|p| std::fs::canonicalize(p).unwrap())
            .collect()
    };
    assert_eq!(canon(on_disk), canon(listed));
    sources
}

fn source(origin: &str, file: PathBuf) -> Source {
    Source {
        origin: origin.to_string(),
        file,
    }
}

/// Every zone set the comparison runs over, by name.
fn zone_sets(dir: &Path) -> Vec<(&'static str, Vec<Source>)> {
    let write = |file: &str, text: &str| {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        path
    };
    let example_com = write("example.com.zone", EXAMPLE_COM);
    let rfc4592 = write("example.zone", RFC4592);
    let sub = write("sub.example.com.zone", SUB_EXAMPLE_COM);
    let grow = write("grow.test.zone", &growing_zone());
    let shipped = shipped_zones();
    let example_net = shipped
        .iter()
        .find(|s| s.origin == "example.net.")
        .expect("the shipped configuration serves example.net.")
        .file
        .clone();
    let bench = manifest().join("benches/zones/bench.example.zone");
    vec![
        // Everything at once: example. is the parent of every other zone, sub.example.com. the
        // child of example.com.'s delegation.
        (
            "full",
            vec![
                source("example.com.", example_com.clone()),
                source("sub.example.com.", sub),
                source("example.", rfc4592.clone()),
                source("example.net.", example_net),
                source("bench.example.", bench),
                source("grow.test.", grow),
            ],
        ),
        // The shipped configuration's zones.
        ("shipped", shipped),
        // example.com. without its child: names below `sub` are referrals with glue.
        (
            "no-child",
            vec![
                source("example.com.", example_com),
                source("example.", rfc4592),
            ],
        ),
    ]
}

// ---------------------------------------------------------------- the comparison

/// The names asked of a catalog: every owner name of every zone in three cases, a child and a
/// wildcard below each (grow.test.: in two cases only), and the names outside.
fn question_names(catalog: &Catalog) -> Vec<Vec<u8>> {
    let mut names = BTreeSet::new();
    for zone in catalog.zones() {
        // The zone made for sizes has many names alike: asked as written and in mixed case only.
        let sizes_only = zone.apex() == wire("grow.test.");
        for (name, _) in zone.names() {
            names.insert(name.to_vec());
            names.insert(mixed(name));
            if sizes_only {
                continue;
            }
            names.insert(upper(name));
            names.extend(child(b"x", name));
            names.extend(child(b"X", &mixed(name)));
            names.extend(child(b"*", name));
        }
        // The node names as the zone file wrote them (the same names; the case may differ).
        for node in zone.nodes() {
            names.insert(node.name.to_vec());
        }
    }
    for name in OUTSIDE {
        names.insert(wire(name));
        names.insert(wire(&format!("x.{}", name.trim_start_matches('.'))));
    }
    names.into_iter().collect()
}

struct Tally {
    cases: usize,
    /// Cases where catalog A holds a prepared response for the question.
    prepared: usize,
    mismatches: Vec<String>,
}

fn compare(set: &str, a: &Arc<Catalog>, b: &Arc<Catalog>, rng: &mut Rng, tally: &mut Tally) {
    let names = question_names(a);
    assert_eq!(names, question_names(b));
    let mut out_a = vec![0xA5u8; MAX_MESSAGE];
    let mut out_b = vec![0x5Au8; MAX_MESSAGE];
    let mut parsed = Query::default();
    for &server_payload in SERVER_PAYLOADS {
        let (snap_a, snap_b) = (snapshot(a, server_payload), snapshot(b, server_payload));
        for name in &names {
            for &qtype in QTYPES {
                for &edns in EDNS_VARIANTS {
                    for transport in [Transport::Udp, Transport::Tcp] {
                        let id = rng.next() as u16;
                        let packet = query(id, name, qtype, edns);
                        let peer = Peer {
                            transport,
                            addr: [198, 51, 100, 7].into(),
                            random: rng.next(),
                        };
                        let ra = respond(&snap_a, &packet, peer, &mut Work::default(), &mut out_a);
                        let rb = respond(&snap_b, &packet, peer, &mut Work::default(), &mut out_b);
                        tally.cases += 1;

                        // Would catalog A answer this from a prepared response? (B never can.)
                        parse_query(&packet, &mut parsed).expect("test queries parse");
                        match a.prepared_for(&parsed.qname, parsed.qtype) {
                            Ok(_) => tally.prepared += 1,
                            // What it found on the way is what the general path would look up.
                            Err(found) => assert_found(a, &parsed.qname, parsed.qtype, found),
                        }
                        assert!(b.prepared_for(&parsed.qname, parsed.qtype).is_err());
                        if let Some((_, Presence::At(place))) =
                            b.resolve(&parsed.qname, parsed.qtype)
                        {
                            assert!(b.prepared(&place, parsed.qtype).is_none());
                        }

                        let case = || {
                            format!(
                                "set {set}, name {}, qtype {qtype}, EDNS {edns:?}, {transport:?}, server payload {server_payload}, id {id:#06x}",
                                text(name)
                            )
                        };
                        if ra != rb {
                            tally.mismatches.push(format!(
                                "{}\n  outcome {ra:?} (prepared) vs {rb:?} (general)",
                                case()
                            ));
                        }
                        // Every query here is well formed: each is answered.
                        let (Some(oa), Some(ob)) = (ra, rb) else {
                            panic!("no response ({ra:?} vs {rb:?}) for {}", case());
                        };
                        let (bytes_a, bytes_b) = (&out_a[..oa.len], &out_b[..ob.len]);
                        if bytes_a != bytes_b {
                            tally.mismatches.push(format!(
                                "{}\n  outcome {:?} (prepared) vs {:?} (general)\n{}",
                                case(),
                                oa,
                                ob,
                                hex_diff(bytes_a, bytes_b)
                            ));
                        }
                        let limit = match (transport, edns) {
                            (Transport::Tcp, _) => MAX_MESSAGE,
                            (_, EdnsVariant::None | EdnsVariant::Payload512) => 512,
                            (_, EdnsVariant::Payload4096) => 4096.min(server_payload as usize),
                            _ => 1232.min(server_payload as usize),
                        };
                        check_sane(&oa, bytes_a, id, &packet, limit, case);
                        // Leave fresh garbage behind for the next case.
                        out_a[..oa.len].fill(0xA5);
                        out_b[..ob.len].fill(0x5A);
                    }
                }
            }
        }
    }
}

/// What every response must be, whichever path wrote it: the ID and question echoed, QR set,
/// within the size limit of the transport and EDNS payloads.
fn check_sane(
    o: &Outcome,
    resp: &[u8],
    id: u16,
    packet: &[u8],
    limit: usize,
    case: impl Fn() -> String,
) {
    assert!(resp.len() >= 12, "short response for {}", case());
    assert_eq!(
        u16::from_be_bytes([resp[0], resp[1]]),
        id,
        "ID for {}",
        case()
    );
    assert_ne!(resp[2] & 0x80, 0, "QR clear for {}", case());
    let qlen = {
        let mut pos = 12;
        while packet[pos] != 0 {
            pos += 1 + packet[pos] as usize;
        }
        pos + 1 + 4
    };
    assert_eq!(
        &resp[12..qlen],
        &packet[12..qlen],
        "question for {}",
        case()
    );
    assert!(
        resp.len() <= limit,
        "{} bytes, over the limit of {limit}, for {}",
        resp.len(),
        case()
    );
    assert_eq!(o.len, resp.len());
}

#[test]
fn prepared_responses_equal_the_general_path() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tally = Tally {
        cases: 0,
        prepared: 0,
        mismatches: Vec::new(),
    };
    for (set, sources) in zone_sets(dir.path()) {
        let (a, b) = catalogs(&sources);
        let before = (tally.cases, tally.prepared);
        compare(set, &a, &b, &mut rng, &mut tally);
        eprintln!(
            "{set}: {} zones, {} bytes prepared, {} cases, {} with a prepared response",
            a.zones().len(),
            a.prepared_bytes(),
            tally.cases - before.0,
            tally.prepared - before.1
        );
    }
    eprintln!(
        "{} cases ({} with a prepared response) in {:.2?}",
        tally.cases,
        tally.prepared,
        started.elapsed()
    );
    if !tally.mismatches.is_empty() {
        let shown: Vec<&String> = tally.mismatches.iter().take(10).collect();
        panic!(
            "{} of {} cases differ between the prepared and the general path; the first {}:\n\n{}",
            tally.mismatches.len(),
            tally.cases,
            shown.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n\n")
        );
    }
    assert!(
        (10_000..1_000_000).contains(&tally.cases),
        "{} cases",
        tally.cases
    );
    // A good part of the comparison went through prepared responses.
    assert!(
        tally.prepared * 10 >= tally.cases,
        "only {} of {} cases had a prepared response",
        tally.prepared,
        tally.cases
    );
}

// ---------------------------------------------------------------- the fast path is there

/// The prepared response catalog `c` holds for `name` (a node) and `qtype`, if any, found the
/// way `respond` finds it: from a parsed query's name. NXDOMAIN is left out (see the end of
/// `fast_path_is_taken_where_it_should_be`).
fn prepared_for(c: &Catalog, name: &str, qtype: u16) -> Option<(u16, u16, u16, bool, u16)> {
    let mut q = Query::default();
    parse_query(&query(1, &wire(name), qtype, EdnsVariant::None), &mut q).unwrap();
    match c.prepared_for(&q.qname, q.qtype).ok()? {
        Ready::Prepared(_, p, body) => {
            assert!(!body.is_empty());
            Some((p.an, p.ns, p.ar, p.aa, p.rcode))
        }
        // NODATA: the negative SOA in the authority section.
        Ready::Negative(_, 0) => Some((0, 1, 0, true, 0)),
        Ready::Negative(..) => None,
    }
}

#[test]
fn fast_path_is_taken_where_it_should_be() {
    let dir = tempfile::tempdir().unwrap();
    let sets = zone_sets(dir.path());
    let set = |n: &str| &sets.iter().find(|(name, _)| *name == n).unwrap().1;
    let (a, b) = catalogs(set("no-child"));

    // An existing name with an A RRset: two addresses, authoritative, no additional.
    assert_eq!(
        prepared_for(&a, "www.example.com.", 1),
        Some((2, 0, 0, true, 0))
    );
    assert!(prepared_for(&a, "WwW.ExAmPlE.CoM.", 1).is_some());
    assert_eq!(
        prepared_for(&a, "www.example.com.", 28),
        Some((1, 0, 0, true, 0))
    );
    // A type the name does not hold: NODATA with the SOA.
    assert_eq!(
        prepared_for(&a, "www.example.com.", 16),
        Some((0, 1, 0, true, 0))
    );
    assert_eq!(
        prepared_for(&a, "www.example.com.", 99),
        Some((0, 1, 0, true, 0))
    );
    // MX at the apex with the in-zone target's addresses.
    assert_eq!(
        prepared_for(&a, "example.com.", 15),
        Some((2, 0, 2, true, 0))
    );
    // An empty non-terminal: NODATA.
    assert_eq!(
        prepared_for(&a, "b.c.example.com.", 1),
        Some((0, 1, 0, true, 0))
    );
    // CNAME chased to www for the address types; other types at a CNAME are not prepared.
    assert_eq!(
        prepared_for(&a, "web.example.com.", 1),
        Some((3, 0, 0, true, 0))
    );
    assert!(prepared_for(&a, "web.example.com.", 5).is_some());
    assert!(prepared_for(&a, "web.example.com.", 15).is_none());
    // ANY always takes the general path.
    assert!(prepared_for(&a, "www.example.com.", 255).is_none());
    assert!(prepared_for(&a, "example.com.", 255).is_none());
    // At and below a delegation: referrals are never prepared.
    assert!(prepared_for(&a, "sub.example.com.", 2).is_none());
    assert!(prepared_for(&a, "sub.example.com.", 43).is_none());
    assert!(prepared_for(&a, "ns.sub.example.com.", 1).is_none());
    assert!(prepared_for(&a, "ns.sub.example.com.", 28).is_none());
    // Names that do not exist as owners (wildcard matches, NXDOMAIN) have no place at all.
    assert!(prepared_for(&a, "x.apps.example.com.", 1).is_none());
    assert!(prepared_for(&a, "nope.example.com.", 1).is_none());
    assert!(prepared_for(&a, "example.org.", 1).is_none());
    // The literal wildcard owner is a name like any other.
    assert_eq!(
        prepared_for(&a, "*.apps.example.com.", 1),
        Some((1, 0, 0, true, 0))
    );
    // What `respond` sends for it is the header, the question as asked and those bytes.
    let packet = query(0x1234, &wire("WwW.ExAmPlE.CoM."), 1, EdnsVariant::None);
    let mut q = Query::default();
    parse_query(&packet, &mut q).unwrap();
    let (_, place) = a.resolve(&q.qname, 1).unwrap();
    let (_, body) = a.prepared(&place.place().unwrap(), 1).unwrap();
    let mut out = vec![0u8; MAX_MESSAGE];
    let peer = Peer {
        transport: Transport::Udp,
        addr: [192, 0, 2, 1].into(),
        random: 1,
    };
    let o = respond(
        &snapshot(&a, 1232),
        &packet,
        peer,
        &mut Work::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[12..packet.len()], &packet[12..]);
    assert_eq!(&out[packet.len()..o.len], body);
    assert_eq!(&out[..4], &[0x12, 0x34, 0x85, 0x00]); // QR AA RD, NOERROR
    assert_eq!(&out[4..12], &[0, 1, 0, 2, 0, 0, 0, 0]);

    // The catalog without prepared responses has none, anywhere.
    for (name, qtype) in [
        ("www.example.com.", 1),
        ("example.com.", 15),
        ("web.example.com.", 1),
    ] {
        assert!(prepared_for(&b, name, qtype).is_none(), "{name} {qtype}");
    }

    // With the child zone served: the child answers its own names authoritatively, the parent
    // still answers DS at the cut (general path).
    let (a, _) = catalogs(set("full"));
    assert_eq!(
        prepared_for(&a, "ns.sub.example.com.", 1),
        Some((1, 0, 0, true, 0))
    );
    assert_eq!(
        prepared_for(&a, "sub.example.com.", 2),
        Some((2, 0, 1, true, 0))
    );
    assert!(prepared_for(&a, "sub.example.com.", 43).is_none());
    assert!(prepared_for(&a, "www.example.com.", 1).is_some());
    assert!(prepared_for(&a, "host1.example.", 1).is_some());
    assert!(prepared_for(&a, "subdel.example.", 2).is_none());

    // NXDOMAIN is ready in zones without wildcards or delegations, for names that are no node
    // of theirs, whatever the type; never where a wildcard or a cut could answer instead.
    let nx = |c: &Catalog, name: &str, qtype: u16| {
        let mut q = Query::default();
        parse_query(&query(1, &wire(name), qtype, EdnsVariant::None), &mut q).unwrap();
        match c.prepared_for(&q.qname, q.qtype) {
            Ok(Ready::Negative(z, 3)) => Some(Name::from_ascii(&z.origin).unwrap().to_string()),
            _ => None,
        }
    };
    for qtype in [1, 28, 15, 16, 255] {
        assert_eq!(
            nx(&a, "Nope.Bench.Example.", qtype).as_deref(),
            Some("bench.example."),
            "{qtype}"
        );
    }
    assert_eq!(
        nx(&a, "a.b.nope.bench.example.", 1).as_deref(),
        Some("bench.example.")
    );
    assert_eq!(nx(&a, "nope.bench.example.", 43), None); // DS: the general path
    assert_eq!(nx(&a, "www.bench.example.", 1), None); // a node: its own prepared answer
    assert_eq!(nx(&a, "nope.example.com.", 1), None); // a zone with wildcards and a cut
    assert_eq!(nx(&a, "nope.example.", 1), None);
    assert_eq!(nx(&a, "nope.example.org.", 1), None); // no zone
    let (_, b) = catalogs(set("full"));
    assert_eq!(nx(&b, "nope.bench.example.", 1), None); // nothing prepared
}

/// What `prepared_for` found when nothing was ready must be what `resolve` finds for the same
/// question (the general path takes the first in place of the second).
fn assert_found(c: &Catalog, name: &meridian::wire::NameBuf, qtype: u16, found: Found) {
    let resolved = c.resolve(name, qtype).map(|(z, p)| (z.id, p));
    match found {
        Found::NotLooked => assert!(
            qtype == 43 || !c.prepares(),
            "looked up nothing for {qtype}"
        ),
        Found::NotServed => assert_eq!(resolved, None, "{:?} {qtype}", name.wire()),
        Found::In(z, p) => assert_eq!(resolved, Some((z.id, p)), "{:?} {qtype}", name.wire()),
    }
}
