//! What two kinds of master-file token mean, for the reader in [`super::file`]: owner names,
//! read as written (any octets, the case kept), and where a record's data ends for the types
//! whose hickory-proto parser reads a fixed number of tokens and ignores any after them.
//!
//! Owners are read here rather than by hickory-proto's `Name::parse`, which applies UTS #46
//! (IDNA) to every label: it lowercases them and refuses an underscore inside one. DNS labels are
//! any octets (RFC 2181 §11); only host names are restricted (RFC 952, RFC 1123), which is a
//! matter for the host, not for the server. Knot and NSD accept such owners, and so does this
//! reader. Names with a non-ASCII character or a `\DDD` escape still go to hickory-proto (the
//! first for IDNA, the second because hickory-proto reads the digits as octal where RFC 1035
//! says decimal, and every other name in the file, RDATA included, is read by it: the two stay
//! one reading).

use hickory_proto::ProtoError;
use hickory_proto::rr::{Name, RecordType};

use super::build::name_wire;

/// Why an owner name could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// Two dots in a row, or a dot first.
    #[error("empty label")]
    EmptyLabel,
    /// A label of more than 63 octets (RFC 1035 §2.3.4).
    #[error("label of {0} octets (at most 63)")]
    LabelTooLong(usize),
    /// A name of more than 255 octets in wire form, the origin included.
    #[error("name of {0} octets (at most 255)")]
    TooLong(usize),
    /// A `"` not written as `\"`.
    #[error("character '\"' must be escaped")]
    Quote,
    /// White space or a control character, escaped or not: owners are read as printable ASCII
    /// (the kept copy of a secondary zone writes anything else as `\DDD`, which is not read
    /// back as written).
    #[error("character {0:?} in an owner name (only printable ASCII is read)")]
    Unprintable(char),
    /// A `\` at the end of the name.
    #[error("escape at the end of the name")]
    TrailingEscape,
    /// hickory-proto refused a name with a non-ASCII character or a `\DDD` escape.
    #[error("{0}")]
    Parse(#[source] ProtoError),
}

/// Append the wire form of owner name `text` (absolute, or relative to `origin`, whose wire form
/// is `origin_wire`) to `out`, in the case written. On an error `out` is as it was.
pub fn owner_name(
    text: &str,
    origin: &Name,
    origin_wire: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), OwnerError> {
    let start = out.len();
    let r = read_owner(text, origin, origin_wire, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn read_owner(
    text: &str,
    origin: &Name,
    origin_wire: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), OwnerError> {
    let start = out.len();
    if !text.is_ascii() || has_decimal_escape(text) {
        let name = Name::parse(text, Some(origin)).map_err(OwnerError::Parse)?;
        out.extend_from_slice(&name_wire(&name));
        return Ok(());
    }
    if text == "." {
        out.push(0);
        return Ok(());
    }
    let bytes = text.as_bytes();
    let mut label_at = out.len();
    out.push(0);
    let mut absolute = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                close_label(out, label_at)?;
                if i + 1 == bytes.len() {
                    absolute = true;
                } else {
                    label_at = out.len();
                    out.push(0);
                }
            }
            b'\\' => {
                i += 1;
                match *bytes.get(i).ok_or(OwnerError::TrailingEscape)? {
                    c @ 0x21..=0x7e => out.push(c),
                    c => return Err(OwnerError::Unprintable(c as char)),
                }
            }
            b'"' => return Err(OwnerError::Quote),
            c @ 0x21..=0x7e => out.push(c),
            c => return Err(OwnerError::Unprintable(c as char)),
        }
        i += 1;
    }
    if absolute {
        out.push(0);
    } else {
        close_label(out, label_at)?;
        out.extend_from_slice(origin_wire);
    }
    let len = out.len() - start;
    if len > crate::wire::MAX_NAME {
        return Err(OwnerError::TooLong(len));
    }
    Ok(())
}

/// Write the length of the label begun at `label_at` (its length octet) into that octet.
fn close_label(out: &mut [u8], label_at: usize) -> Result<(), OwnerError> {
    match out.len() - label_at - 1 {
        0 => Err(OwnerError::EmptyLabel),
        n if n > 63 => Err(OwnerError::LabelTooLong(n)),
        n => {
            out[label_at] = n as u8;
            Ok(())
        }
    }
}

/// Whether `text` has a `\DDD` escape (a backslash before a digit, the backslash not escaped).
fn has_decimal_escape(text: &str) -> bool {
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'\\' && bytes.next().is_some_and(|n| n.is_ascii_digit()) {
            return true;
        }
    }
    false
}

/// How many tokens the RDATA of `rtype` is, for the types whose hickory-proto parser reads that
/// many and ignores whatever follows (BIND, Knot and NSD refuse such a line; so does the reader);
/// `None` for the others, whose parsers read every token (TXT, SVCB, HTTPS, TLSA, SMIMEA, DS,
/// CSYNC) or refuse one too many (SSHFP, OPENPGPKEY). CERT's certificate is one token here
/// (RFC 4398 lets it be split; hickory-proto would read the first piece only). The test below
/// holds this table to hickory-proto's behaviour.
pub fn rdata_tokens(rtype: RecordType) -> Option<usize> {
    use RecordType::*;
    Some(match rtype {
        #[allow(deprecated)]
        ZERO => 0,
        A | AAAA | ANAME | CNAME | NS | PTR => 1,
        MX | HINFO => 2,
        CAA => 3,
        SRV | CERT => 4,
        NAPTR => 6,
        SOA => 7,
        _ => return None,
    })
}

/// Whether hickory-proto's lexer would split `token`, one token to the reader's lexer, into
/// several: white space inside a token not written as one quoted string (`a"b c"`, `a\ b`).
pub fn splits(token: &str) -> bool {
    !token.starts_with('"') && token.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<u8>, OwnerError> {
        let origin = Name::from_ascii("Example.test.").unwrap();
        let mut out = vec![0xee];
        let r = owner_name(text, &origin, &name_wire(&origin), &mut out);
        match r {
            Ok(()) => Ok(out[1..].to_vec()),
            Err(e) => {
                assert_eq!(out, [0xee], "{text}: out is as it was");
                Err(e)
            }
        }
    }

    #[test]
    fn owners_keep_their_case_and_take_any_printable_octet() {
        assert_eq!(
            read("MixedCase").unwrap(),
            b"\x09MixedCase\x07Example\x04test\x00"
        );
        assert_eq!(read("WWW.Other.").unwrap(), b"\x03WWW\x05Other\x00");
        assert_eq!(
            read("my_host").unwrap(),
            b"\x07my_host\x07Example\x04test\x00"
        );
        assert_eq!(read("_sip._tcp").unwrap()[..10], *b"\x04_sip\x04_tcp");
        assert_eq!(read("0/25.2").unwrap()[..7], *b"\x040/25\x012");
        assert_eq!(read("-lead").unwrap()[..6], *b"\x05-lead");
        assert_eq!(read("*.w").unwrap()[..4], *b"\x01*\x01w");
        assert_eq!(read(".").unwrap(), b"\x00");
        // Escapes of one character stand for it, a dot included.
        assert_eq!(read("a\\.b").unwrap()[..4], *b"\x03a.b");
        assert_eq!(read("a\\(b\\\"").unwrap()[..5], *b"\x04a(b\"");
        assert_eq!(read("a\\\\").unwrap()[..3], *b"\x02a\\");
        // Non-ASCII goes through IDNA, as in RDATA.
        let idna = name_wire(&Name::parse("ünï.", None).unwrap());
        assert_eq!(read("ünï.").unwrap(), &idna[..]);
    }

    #[test]
    fn bad_owners_are_refused() {
        assert!(matches!(read("a..b"), Err(OwnerError::EmptyLabel)));
        assert!(matches!(read(".a"), Err(OwnerError::EmptyLabel)));
        assert!(matches!(
            read(&"x".repeat(64)),
            Err(OwnerError::LabelTooLong(64))
        ));
        let long = vec!["y".repeat(63); 4].join(".");
        assert!(matches!(read(&long), Err(OwnerError::TooLong(_))));
        assert!(matches!(read("a\"b"), Err(OwnerError::Quote)));
        assert!(matches!(
            read("a\x01b"),
            Err(OwnerError::Unprintable('\x01'))
        ));
        assert!(matches!(read("a\\ b"), Err(OwnerError::Unprintable(' '))));
        assert!(matches!(read("a\\"), Err(OwnerError::TrailingEscape)));
    }

    /// The names hickory-proto reads as it should (lowercase host names) read the same here.
    #[test]
    fn plain_owners_read_as_hickory_reads_them() {
        let origin = Name::from_ascii("example.test.").unwrap();
        for text in [
            "a",
            "a.b",
            "*",
            "x-y",
            "1",
            "h0.example.test.",
            "_srv._tcp",
            "xn--nxasmq6b",
        ] {
            let mut out = Vec::new();
            owner_name(text, &origin, &name_wire(&origin), &mut out).unwrap();
            let h = Name::parse(text, Some(&origin)).unwrap();
            assert_eq!(out, &name_wire(&h)[..], "{text}");
        }
    }

    /// `rdata_tokens` says exactly which types' parsers stop early: for each type hickory-proto
    /// reads from text, a record with one more token reads the same only if the table names the
    /// type, with the record's own count.
    #[test]
    fn rdata_tokens_match_hickory() {
        let origin = Name::from_ascii("example.test.").unwrap();
        let parse = |rtype, parts: &[&str]| super::super::file::parse_rdata(rtype, parts, &origin);
        let samples: &[(&str, &str)] = &[
            ("A", "192.0.2.1"),
            ("AAAA", "2001:db8::1"),
            ("ANAME", "a.example."),
            ("CNAME", "a.example."),
            ("NS", "a.example."),
            ("PTR", "a.example."),
            ("MX", "10 a.example."),
            ("HINFO", "cpu os"),
            ("CAA", "0 issue \"ca.example\""),
            ("SRV", "1 2 3 a.example."),
            ("CERT", "1 2 3 AAAA"),
            ("NAPTR", "1 2 \"u\" \"E2U+sip\" \"!^.*$!sip:a@b!\" ."),
            ("SOA", "ns h 1 2 3 4 5"),
            ("TXT", "\"a\""),
            ("SVCB", "1 a.example."),
            ("HTTPS", "1 . alpn=h2"),
            ("TLSA", "3 1 1 abcd"),
            ("SMIMEA", "3 1 1 abcd"),
            ("DS", "1 8 2 abcd"),
            ("CSYNC", "1 3 A"),
            ("SSHFP", "1 1 abcd"),
            ("OPENPGPKEY", "AAAA"),
        ];
        for (t, rd) in samples {
            let rtype: RecordType = t.parse().unwrap();
            let parts: Vec<&str> = rd.split(' ').collect();
            let Ok(alone) = parse(rtype, &parts) else {
                continue; // not read from text in this build of hickory-proto (DS)
            };
            let mut more = parts.clone();
            more.push("7");
            let ignored = parse(rtype, &more).is_ok_and(|r| r == alone);
            let expected = ignored.then_some(parts.len());
            assert_eq!(rdata_tokens(rtype), expected, "{t} {rd}");
        }
    }

    #[test]
    fn tokens_hickory_would_split() {
        assert!(splits("a\"b c\""));
        assert!(splits("a\\ b"));
        assert!(!splits("\"a b\""));
        assert!(!splits("ab"));
    }
}
