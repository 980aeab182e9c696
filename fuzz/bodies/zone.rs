//! The master-file reader and zone builder on arbitrary text, through the public entry
//! `zone::load_zone` (the text is written to a file in a scratch folder first), and the round
//! trip through the kept-copy writer a secondary uses (`secondary::records`).
//!
//! The zone's origin is `example.com.`, or the name on a first line `; origin NAME` (a comment
//! to the reader). `$INCLUDE` reads files: an input that could include anything outside the
//! scratch folder (a `/` or `\` anywhere in a text with `$INCLUDE`) is skipped, so the fuzzer
//! never reads /dev/zero or the machine's files.
//!
//! Held to:
//! - no panic, whatever the text;
//! - every error names the file it is about, at a line the file has;
//! - a zone that loads has its origin as apex, every node at or below it, an SOA as negative
//!   answer, RRsets of records that decode with hickory-proto to their own type, and a record
//!   count that is the number of records its RRsets hold;
//! - read → write (the kept-copy writer, `Records::master_file`) → read gives the same records
//!   (owner in its case, type, data, TTL), and the written file loads as a zone with as many
//!   records. TXT strings that are not UTF-8 are left out of this check: the writer documents
//!   that they do not survive.

use std::path::Path;

use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use meridian::secondary::records::{Records, writable};
use meridian::zone::build::lower_wire;
use meridian::zone::file::read_zone_file;
use meridian::zone::load_zone;

pub fn run(data: &[u8]) {
    run_in(super::process_scratch(), data)
}

/// [`run`] with its files in `dir`.
pub fn run_in(dir: &Path, data: &[u8]) {
    if reads_outside(data) {
        return;
    }
    let origin = origin_of(data);
    let path = dir.join("fuzz.zone");
    std::fs::write(&path, data).expect("write the zone file");
    let lines = data.split(|&b| b == b'\n').count();
    let zone = match load_zone(&origin, &path) {
        Ok(zone) => zone,
        Err(errors) => {
            assert!(!errors.is_empty(), "an error without errors");
            for e in &errors {
                assert!(
                    e.file.starts_with(dir),
                    "an error about {}",
                    e.file.display()
                );
                if e.file == path {
                    assert!(e.line <= lines, "{e} (the file has {lines} lines)");
                }
                let _ = e.to_string();
            }
            return;
        }
    };
    let apex = lower_wire(&origin);
    assert_eq!(zone.apex(), &apex[..], "apex");
    assert_eq!(zone.negative_soa().rtype, 6, "negative answers' SOA");
    let mut records = 0;
    for node in zone.nodes() {
        assert!(
            at_or_below(&node.name.to_ascii_lowercase(), &apex),
            "node {:?} outside {origin}",
            node.name
        );
        for set in node.rrsets.iter() {
            let mut n = 0;
            for rec in set.each_record() {
                n += 1;
                let mut wire = node.name.to_vec();
                wire.extend_from_slice(rec);
                match Record::read(&mut BinDecoder::new(&wire)) {
                    Ok(r) => assert_eq!(u16::from(r.record_type()), set.rtype, "{r}"),
                    Err(e) => panic!("record {wire:02x?} does not decode: {e}"),
                }
            }
            assert_eq!(n, set.count as usize, "RRset count");
            records += n;
        }
    }
    // A record written twice is held once and counted once (fuzzing found it counted twice:
    // fuzz/regressions/zone/crash-duplicate-count).
    assert_eq!(
        records, zone.record_count,
        "records served, and the zone's count"
    );
    round_trip(dir, &origin, &path);
}

/// Whether `$INCLUDE` could name a file outside the scratch folder.
fn reads_outside(data: &[u8]) -> bool {
    let lower = data.to_ascii_lowercase();
    lower.windows(8).any(|w| w == b"$include") && data.iter().any(|&b| b == b'/' || b == b'\\')
}

/// `; origin NAME` on the first line, else example.com.
fn origin_of(data: &[u8]) -> Name {
    let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
    std::str::from_utf8(first)
        .ok()
        .and_then(|l| l.strip_prefix("; origin "))
        .and_then(|n| Name::from_ascii(n.trim()).ok())
        .map(|mut n| {
            n.set_fqdn(true);
            n
        })
        .unwrap_or_else(|| Name::from_ascii("example.com.").expect("a name"))
}

/// Whether lowercase wire name `name` is `apex` or below it (label by label).
fn at_or_below(name: &[u8], apex: &[u8]) -> bool {
    let mut at = 0;
    loop {
        if name[at..] == *apex {
            return true;
        }
        match name.get(at) {
            Some(&0) | None => return false,
            Some(&l) => at += 1 + l as usize,
        }
    }
}

/// Read → write as a kept copy → read: the same records.
fn round_trip(dir: &Path, origin: &Name, path: &Path) {
    let source = read_zone_file(path, origin).expect("a zone that loads reads");
    if source.iter().any(|r| match &r.rdata {
        RData::TXT(t) => t.txt_data.iter().any(|s| std::str::from_utf8(s).is_err()),
        _ => false,
    }) {
        return;
    }
    let held = Records::from_source(
        source
            .into_iter()
            .filter(|r| writable(r.rdata.record_type()))
            .collect(),
    );
    let text = held.master_file(origin);
    let kept = dir.join("kept.zone");
    std::fs::write(&kept, &text).expect("write the kept copy");
    let again = match read_zone_file(&kept, origin) {
        Ok(r) => Records::from_source(r),
        Err(e) => panic!("the kept copy does not read: {e:?}\n{text}"),
    };
    let a: Vec<_> = held.iter().collect();
    let b: Vec<_> = again.iter().collect();
    assert_eq!(a.len(), b.len(), "records after the round trip:\n{text}");
    for (x, y) in a.iter().zip(&b) {
        // Owners keep their case (fuzz/regressions/zone/crash-owner-case: a mixed-case origin
        // written as `@` came back lowercase when the reader lowercased names written out).
        assert!(
            x.owner.eq_case(&y.owner) && x.ttl == y.ttl && x.rdata == y.rdata,
            "{x:?} came back as {y:?}:\n{text}"
        );
    }
    if !held.is_empty()
        && let Err(e) = held.to_zone(origin, &kept)
    {
        // The kept records hold fewer types than the file; that can only remove problems.
        panic!("the kept records do not build: {e:?}\n{text}");
    }
}
