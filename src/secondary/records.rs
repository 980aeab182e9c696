//! A secondary zone's records as its task holds them: a set that IXFR differences are applied
//! to, built into a served [`Zone`] by the ordinary zone builder, and written as the kept copy,
//! an RFC 1035 master file that the ordinary zone loader reads back.
//!
//! Records are keyed by owner (lowercase wire form), type and RDATA (wire form, names
//! uncompressed), so a record is held once and an IXFR deletion finds it whatever its TTL
//! (RFC 1995 §4). Only types the master-file writer can write in a form the zone loader reads
//! are held ([`writable`]); others (DNSSEC records among them: Meridian does not sign or serve
//! them) are left out of the zone and counted by the caller.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, RecordType};

use crate::zone::build::{build_zone, lower_wire, rdata_wire};
use crate::zone::file::SourceRecord;
use crate::zone::{Zone, ZoneError};

/// One record: owner, TTL, data.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub owner: Name,
    pub ttl: u32,
    pub rdata: RData,
}

type Key = (Box<[u8]>, u16, Box<[u8]>);

/// A zone's records, each once.
#[derive(Debug, Clone, Default)]
pub struct Records {
    map: BTreeMap<Key, Record>,
}

/// Whether the kept-copy writer writes records of this type (and so the zone holds them).
pub fn writable(rtype: RecordType) -> bool {
    use RecordType::*;
    matches!(
        rtype,
        A | AAAA
            | NS
            | CNAME
            | PTR
            | MX
            | SOA
            | SRV
            | TXT
            | CAA
            | SSHFP
            | TLSA
            | NAPTR
            | SVCB
            | HTTPS
    )
}

fn key(r: &Record) -> Option<Key> {
    let rdata = rdata_wire(&r.rdata).ok()?;
    Some((
        lower_wire(&r.owner),
        u16::from(r.rdata.record_type()),
        rdata.into_boxed_slice(),
    ))
}

impl Records {
    /// Add `r` (replacing an equal record, so its TTL is the latest); false when it does not
    /// encode.
    pub fn insert(&mut self, r: Record) -> bool {
        match key(&r) {
            Some(k) => {
                self.map.insert(k, r);
                true
            }
            None => false,
        }
    }

    /// Remove the record equal to `r` (TTL aside); false when there is none.
    pub fn remove(&mut self, r: &Record) -> bool {
        key(r).is_some_and(|k| self.map.remove(&k).is_some())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.map.values()
    }

    /// The apex SOA (the only SOA a built zone may hold).
    pub fn soa(&self) -> Option<&SOA> {
        self.map.values().find_map(|r| match &r.rdata {
            RData::SOA(s) => Some(s),
            _ => None,
        })
    }

    /// Records read by the ordinary zone loader (the kept copy at start).
    pub fn from_source(records: Vec<SourceRecord>) -> Records {
        let mut out = Records::default();
        for r in records {
            out.insert(Record {
                owner: r.owner,
                ttl: r.ttl,
                rdata: r.rdata,
            });
        }
        out
    }

    /// Build the zone to serve, with the ordinary builder and its checks; `file` names the
    /// kept copy in errors.
    pub fn to_zone(&self, origin: &Name, file: &Path) -> Result<Zone, Vec<ZoneError>> {
        let records = self
            .map
            .values()
            .map(|r| SourceRecord {
                owner: r.owner.clone(),
                ttl: r.ttl,
                rdata: r.rdata.clone(),
                file: file.to_path_buf(),
                line: 0,
                column: 0,
            })
            .collect();
        build_zone(origin, file, records)
    }

    /// The zone as an RFC 1035 master file: absolute names, every record with its TTL and
    /// class, the SOA first.
    pub fn master_file(&self, origin: &Name) -> String {
        let mut out = format!(
            "; zone {} kept by Meridian from a zone transfer\n",
            ascii(origin)
        );
        let soa_first = self
            .map
            .values()
            .filter(|r| r.rdata.record_type() == RecordType::SOA)
            .chain(
                self.map
                    .values()
                    .filter(|r| r.rdata.record_type() != RecordType::SOA),
            );
        for r in soa_first {
            let _ = write!(
                out,
                "{} {} IN {} ",
                ascii(&r.owner),
                r.ttl,
                r.rdata.record_type()
            );
            write_rdata(&mut out, &r.rdata);
            out.push('\n');
        }
        out
    }
}

/// A name in ASCII presentation form, absolute.
fn ascii(name: &Name) -> String {
    let mut n = name.clone();
    n.set_fqdn(true);
    n.to_ascii()
}

/// RDATA in presentation form. Names are written in ASCII (`xn--` labels as such), TXT as
/// quoted strings with escapes; the other writable types in hickory-proto's own form, which its
/// master-file parser (the zone loader's) reads.
fn write_rdata(out: &mut String, rdata: &RData) {
    let _ = match rdata {
        RData::NS(n) => write!(out, "{}", ascii(&n.0)),
        RData::CNAME(n) => write!(out, "{}", ascii(&n.0)),
        RData::PTR(n) => write!(out, "{}", ascii(&n.0)),
        RData::MX(mx) => write!(out, "{} {}", mx.preference, ascii(&mx.exchange)),
        RData::SRV(s) => write!(
            out,
            "{} {} {} {}",
            s.priority,
            s.weight,
            s.port,
            ascii(&s.target)
        ),
        RData::SOA(s) => write!(
            out,
            "{} {} {} {} {} {} {}",
            ascii(&s.mname),
            ascii(&s.rname),
            s.serial,
            s.refresh,
            s.retry,
            s.expire,
            s.minimum
        ),
        RData::TXT(t) => {
            for (i, s) in t.txt_data.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                quoted(out, s);
            }
            Ok(())
        }
        other => write!(out, "{other}"),
    };
}

/// One character-string, quoted: `"` and `\` escaped, UTF-8 text as it is (the zone loader
/// reads it back byte for byte). Other bytes are written as `\DDD`, which hickory-proto's
/// parser does not read back exactly: such TXT data does not survive the kept copy.
fn quoted(out: &mut String, s: &[u8]) {
    out.push('"');
    match std::str::from_utf8(s) {
        Ok(text) => {
            for c in text.chars() {
                if matches!(c, '"' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
        Err(_) => {
            for &b in s {
                match b {
                    b'"' | b'\\' => {
                        out.push('\\');
                        out.push(b as char);
                    }
                    0x20..=0x7e => out.push(b as char),
                    _ => {
                        let _ = write!(out, "\\{b:03}");
                    }
                }
            }
        }
    }
    out.push('"');
}

/// Write `text` to `path` atomically: a temporary file in the same folder (created if need
/// be), synced, then renamed over `path`. A reader sees the old file or the new one, never part.
pub fn write_kept(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or("zone".into(), |n| n.to_string_lossy());
    // A name no other writer uses at the same time (two tasks of one zone across a reload).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp: PathBuf = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    })();
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::load_zone;

    const ZONE: &str = r#"$ORIGIN example.net.
$TTL 300
@ 3600 IN SOA ns1.example.net. hostmaster.example.net. 2026120301 60 10 600 300
@ NS ns1
@ NS ns2.other.example.
@ MX 10 mail
@ TXT "v=spf1 -all" "second \"quoted\" \\ part" "café ☕"
@ CAA 0 issue "letsencrypt.org"
ns1 A 192.0.2.1
ns1 AAAA 2001:db8::1
mail A 192.0.2.25
www CNAME web
web A 192.0.2.80
web A 192.0.2.81
_sip._tcp SRV 10 60 5060 sip
sip A 192.0.2.5
ptr PTR www.example.net.
ssh SSHFP 1 1 0123456789abcdef0123456789abcdef01234567
_443._tcp.www TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
svc HTTPS 1 . alpn=h2,h3 port=8443
svc2 SVCB 0 web.example.net.
sub NS ns.sub
ns.sub A 192.0.2.53
*.wild A 192.0.2.99
xn--bcher-kva A 192.0.2.7
"#;

    fn lines(records: &Records) -> Vec<String> {
        let mut v: Vec<String> = records
            .iter()
            .map(|r| {
                format!(
                    "{} {} {:?}",
                    r.owner.to_lowercase(),
                    r.ttl,
                    rdata_wire(&r.rdata).unwrap()
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_kept_copy_reads_back_with_the_ordinary_loader_as_the_same_records() {
        let dir = tempfile::tempdir().unwrap();
        let origin: Name = "example.net.".parse().unwrap();
        let src = dir.path().join("src.zone");
        std::fs::write(&src, ZONE).unwrap();
        let records =
            Records::from_source(crate::zone::file::read_zone_file(&src, &origin).unwrap());
        assert_eq!(records.len(), 23);
        let kept = dir.path().join("kept/deeper/example.net.zone");
        write_kept(&kept, &records.master_file(&origin)).unwrap();
        let back = Records::from_source(
            crate::zone::file::read_zone_file(&kept, &origin)
                .unwrap_or_else(|e| panic!("{e:?}\n{}", std::fs::read_to_string(&kept).unwrap())),
        );
        assert_eq!(lines(&back), lines(&records));
        // And the ordinary loader builds a zone of it, as the records build one.
        let loaded = load_zone(&origin, &kept).unwrap();
        let built = records.to_zone(&origin, &kept).unwrap();
        assert_eq!(loaded.serial, 2026120301);
        assert_eq!(loaded.record_count, built.record_count);
        assert_eq!(loaded.nodes().len(), built.nodes().len());
        // No temporary file is left beside it.
        let left: Vec<_> = std::fs::read_dir(kept.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn a_record_is_held_once_and_removed_whatever_its_ttl() {
        let mut r = Records::default();
        let a = |ttl| Record {
            owner: "WWW.example.net.".parse().unwrap(),
            ttl,
            rdata: RData::A("192.0.2.1".parse().unwrap()),
        };
        assert!(r.insert(a(300)));
        assert!(r.insert(a(60)));
        assert_eq!(r.len(), 1);
        assert_eq!(r.iter().next().unwrap().ttl, 60);
        let mut lower = a(5);
        lower.owner = "www.example.net.".parse().unwrap();
        assert!(r.remove(&lower));
        assert!(r.is_empty());
        assert!(!r.remove(&lower));
    }
}
