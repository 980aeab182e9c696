//! A secondary zone's settings: `primaries` (and `key`) in a `[[zone]]`.
//!
//! A zone with `primaries` is not read from a master file of the operator's: Meridian takes it
//! from one of the primaries by zone transfer and keeps its copy in the zone's `file` (which it
//! writes; the file need not exist yet). This file checks those settings, each problem with its
//! place like the rest of the configuration; the transfers themselves are the `secondary`
//! module's (a higher layer).

use std::net::SocketAddr;
use std::str::FromStr;

use hickory_proto::rr::Name;
use toml::Spanned;

/// What makes a zone a secondary: where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secondary {
    /// The primaries to query and transfer from, tried in order.
    pub primaries: Vec<SocketAddr>,
    /// The TSIG key (by name) that signs this zone's SOA queries and transfer requests, and
    /// that a NOTIFY for it must be signed with; `None`: unsigned.
    pub key: Option<Name>,
    /// That key's position in `Config::tsig_keys`.
    pub key_index: Option<usize>,
}

/// The position in `ring` (the `[[tsig_key]]`s, `raw` as written) of zone `i`'s `key`; a name
/// no `[[tsig_key]]` defines goes to `problem` with its byte offset.
pub fn key_index(
    i: usize,
    key: &Spanned<String>,
    raw: &[super::tsig::TsigKeyConfig],
    ring: &crate::wire::tsig::KeyRing,
    problem: &mut dyn FnMut(usize, String),
) -> Option<usize> {
    use crate::wire::tsig::name_to_wire;
    let wanted = name_to_wire(key.get_ref());
    if wanted.is_none() || !raw.iter().any(|k| name_to_wire(k.name.get_ref()) == wanted) {
        problem(
            key.span().start,
            format!(
                "zone[{i}].key: key {:?} is not defined by a [[tsig_key]]",
                key.get_ref()
            ),
        );
        return None;
    }
    // A defined key with its own problem is not in the ring; that problem is reported.
    wanted.and_then(|w| ring.find(&w))
}

/// The secondary settings of zone `i`, when it has `primaries`; each problem goes to `problem`
/// with its byte offset (`at`: the zone's, for a problem of the whole list).
pub fn compile(
    i: usize,
    at: usize,
    primaries: Option<&Vec<Spanned<String>>>,
    key: Option<&Spanned<String>>,
    problem: &mut dyn FnMut(usize, String),
) -> Option<Secondary> {
    let Some(list) = primaries else {
        if let Some(k) = key {
            problem(
                k.span().start,
                format!("zone[{i}].key: a key is for a zone with primaries"),
            );
        }
        return None;
    };
    if list.is_empty() {
        problem(
            at,
            format!("zone[{i}].primaries: at least one primary is needed"),
        );
    }
    let mut out = Vec::with_capacity(list.len());
    for (j, p) in list.iter().enumerate() {
        match SocketAddr::from_str(p.get_ref().trim()) {
            Ok(a) => out.push(a),
            Err(_) => problem(
                p.span().start,
                format!(
                    "zone[{i}].primaries[{j}]: {:?} is not an address:port like \"192.0.2.1:53\" or \"[2001:db8::1]:53\"",
                    p.get_ref()
                ),
            ),
        }
    }
    let key = key.and_then(|k| match Name::from_str(k.get_ref()) {
        Ok(mut n) => {
            n.set_fqdn(true);
            Some(n)
        }
        Err(e) => {
            problem(
                k.span().start,
                format!("zone[{i}].key: {:?} is not a key name: {e}", k.get_ref()),
            );
            None
        }
    });
    Some(Secondary {
        primaries: out,
        key,
        key_index: None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(zone: &str) -> Result<Config, String> {
        let dir = tempfile_dir();
        let text = format!("[dns]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\n{zone}");
        Config::parse(&dir.join("m.toml"), &text).map_err(|e| e.to_string())
    }

    fn tempfile_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
    }

    #[test]
    fn a_zone_with_primaries_needs_no_file_yet() {
        let c = parse(
            "origin = \"example.net.\"\nprimaries = [\"127.0.0.1:5301\", \"[::1]:53\"]\nfile = \"kept/example.net.zone\"\nkey = \"xfr\"\n\
             [[tsig_key]]\nname = \"xfr.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0\"\n",
        )
        .unwrap();
        let s = c.zones[0].secondary.as_ref().unwrap();
        assert_eq!(s.primaries.len(), 2);
        assert_eq!(s.key.as_ref().unwrap().to_string(), "xfr.");
        assert_eq!(s.key_index, Some(0));
        assert!(c.zones[0].file.ends_with("kept/example.net.zone"));
    }

    #[test]
    fn bad_primaries_and_a_key_without_primaries_are_placed() {
        let e =
            parse("origin = \"example.net.\"\nprimaries = [\"127.0.0.1\"]\nfile = \"k.zone\"\n")
                .unwrap_err();
        assert!(e.contains("m.toml:5:14: zone[0].primaries[0]"), "{e}");
        let e = parse("origin = \"example.com.\"\nfile = \"example.com.zone\"\nkey = \"k.\"\n")
            .unwrap_err();
        assert!(
            e.contains("m.toml:6:7: zone[0].key: a key is for a zone with primaries"),
            "{e}"
        );
        let e = parse(
            "origin = \"example.net.\"\nprimaries = [\"127.0.0.1:53\"]\nfile = \"k.zone\"\nkey = \"nokey.\"\n",
        )
        .unwrap_err();
        assert!(
            e.contains("m.toml:7:7: zone[0].key: key \"nokey.\" is not defined by a [[tsig_key]]"),
            "{e}"
        );
    }
}
