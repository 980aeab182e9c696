//! RFC 1035 §5 master-file reader that knows where every record came from.
//!
//! The file is split into entries here (comments, parentheses across lines, quoted strings,
//! `$ORIGIN`, `$TTL`, `$INCLUDE`, owner and TTL/class inheritance), keeping the line and column of
//! every token. The RDATA of each entry is then handed to hickory-proto's record parsers, so the
//! knowledge of every record type's text form comes from one well-tested place while each error
//! still names the file, line and column it belongs to.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::ProtoError;
use hickory_proto::rr::rdata::HTTPS;
use hickory_proto::rr::rdata::svcb::SvcParamKey;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::txt::{ParseError, Parser};

use super::build::ZoneError;

/// Deepest `$INCLUDE` nesting accepted.
const MAX_INCLUDE_DEPTH: usize = 8;

/// One record as read from a master file.
pub struct SourceRecord {
    pub owner: Name,
    pub ttl: u32,
    pub rdata: RData,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

struct Token {
    text: String,
    line: usize,
    column: usize,
}

struct Entry {
    /// The entry began with white space: the owner is the previous entry's.
    inherits_owner: bool,
    tokens: Vec<Token>,
    line: usize,
}

/// Split master-file text into entries, or say where the text is malformed.
fn split_entries(text: &str, file: &Path) -> Result<Vec<Entry>, ZoneError> {
    let mut entries = Vec::new();
    let mut cur = Entry {
        inherits_owner: false,
        tokens: Vec::new(),
        line: 1,
    };
    let mut depth = 0usize;
    let mut paren_line = 0usize;
    let (mut line, mut column) = (1usize, 0usize);
    let mut at_line_start = true;
    let mut chars = text.chars().peekable();
    let err = |line, column, message: String| ZoneError::at(file, line, column, message);
    while let Some(c) = chars.next() {
        column += 1;
        match c {
            '\n' => {
                if depth == 0 {
                    if !cur.tokens.is_empty() {
                        entries.push(std::mem::replace(
                            &mut cur,
                            Entry {
                                inherits_owner: false,
                                tokens: Vec::new(),
                                line: line + 1,
                            },
                        ));
                    }
                    // A line of only white space or a comment is no entry, and does not make
                    // the next line inherit its owner.
                    cur.inherits_owner = false;
                    at_line_start = true;
                }
                line += 1;
                column = 0;
                continue;
            }
            ';' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            ' ' | '\t' | '\r' => {
                if at_line_start && depth == 0 && cur.tokens.is_empty() {
                    cur.inherits_owner = c != '\r';
                    cur.line = line;
                }
            }
            '(' => {
                if depth == 0 {
                    paren_line = line;
                }
                depth += 1;
            }
            ')' => {
                if depth == 0 {
                    return Err(err(line, column, "')' without a matching '('".into()));
                }
                depth -= 1;
            }
            _ => {
                if cur.tokens.is_empty() && depth == 0 {
                    cur.line = line;
                }
                let (start_line, start_col) = (line, column);
                let mut tok = String::new();
                let mut c = c;
                let mut quoted = false;
                let starts_quoted = c == '"';
                loop {
                    tok.push(c);
                    if c == '\\' {
                        match chars.next() {
                            Some(n) => {
                                column += 1;
                                if n == '\n' {
                                    line += 1;
                                    column = 0;
                                }
                                tok.push(n);
                            }
                            None => return Err(err(line, column, "escape at end of file".into())),
                        }
                    } else if c == '"' {
                        quoted = !quoted;
                        if !quoted && starts_quoted {
                            break; // a closing quote ends a quoted token
                        }
                    }
                    match chars.peek() {
                        None => {
                            if quoted {
                                return Err(err(
                                    start_line,
                                    start_col,
                                    "unterminated quoted string".into(),
                                ));
                            }
                            break;
                        }
                        Some(&n)
                            if !quoted && (n.is_whitespace() || matches!(n, ';' | '(' | ')')) =>
                        {
                            break;
                        }
                        Some(_) => {
                            c = chars.next().expect("peeked");
                            column += 1;
                            if c == '\n' {
                                line += 1;
                                column = 0;
                            }
                        }
                    }
                }
                cur.tokens.push(Token {
                    text: tok,
                    line: start_line,
                    column: start_col,
                });
            }
        }
        at_line_start = false;
    }
    if depth > 0 {
        return Err(err(paren_line, 0, "'(' is never closed".into()));
    }
    if !cur.tokens.is_empty() {
        entries.push(cur);
    }
    Ok(entries)
}

/// Parse a TTL: seconds, or BIND-style units (`1h30m`, `2d`).
fn parse_ttl(s: &str) -> Option<u32> {
    hickory_proto::serialize::txt::parse_ttl(s).ok()
}

/// Reading state carried across entries and into included files.
struct Reader<'a> {
    zone_origin: &'a Name,
    records: Vec<SourceRecord>,
    errors: Vec<ZoneError>,
    last_ttl: Option<u32>,
    /// Every file read (the zone's and its includes), each stamped before it was read.
    files: Vec<Source>,
}

impl Reader<'_> {
    fn read_file(&mut self, file: &Path, origin: Name, depth: usize, from: Option<(&Path, usize)>) {
        if let Some(stamp) = super::build::Stamp::of(file) {
            self.files.push((file.to_path_buf(), stamp));
        }
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("cannot read zone file {}: {e}", file.display());
                self.errors.push(match from {
                    Some((f, line)) => ZoneError::at(f, line, 1, msg),
                    None => ZoneError::at(file, 0, 0, msg),
                });
                return;
            }
        };
        let entries = match split_entries(&text, file) {
            Ok(e) => e,
            Err(e) => {
                self.errors.push(e);
                return;
            }
        };
        let mut origin = origin;
        let mut default_ttl: Option<u32> = None;
        let mut owner: Option<Name> = None;
        for entry in entries {
            let first = &entry.tokens[0];
            let err = |t: &Token, m: String| ZoneError::at(file, t.line, t.column, m);
            if !entry.inherits_owner && first.text.starts_with('$') {
                let arg = entry.tokens.get(1);
                match (first.text.to_ascii_uppercase().as_str(), arg) {
                    ("$ORIGIN", Some(a)) => match Name::parse(&a.text, Some(&origin)) {
                        Ok(n) => origin = n,
                        Err(e) => self
                            .errors
                            .push(err(a, format!("bad $ORIGIN {}: {e}", a.text))),
                    },
                    ("$TTL", Some(a)) => match parse_ttl(&a.text) {
                        Some(t) => default_ttl = Some(t),
                        None => self.errors.push(err(a, format!("bad $TTL {}", a.text))),
                    },
                    ("$INCLUDE", Some(a)) => {
                        if depth >= MAX_INCLUDE_DEPTH {
                            self.errors
                                .push(err(a, "$INCLUDE nested too deeply".into()));
                            continue;
                        }
                        let path = file
                            .parent()
                            .unwrap_or(Path::new("."))
                            .join(a.text.trim_matches('"'));
                        let inc_origin = match entry.tokens.get(2) {
                            Some(o) => match Name::parse(&o.text, Some(&origin)) {
                                Ok(n) => n,
                                Err(e) => {
                                    self.errors
                                        .push(err(o, format!("bad origin {}: {e}", o.text)));
                                    continue;
                                }
                            },
                            None => origin.clone(),
                        };
                        self.read_file(&path, inc_origin, depth + 1, Some((file, first.line)));
                    }
                    (d, None) => self
                        .errors
                        .push(err(first, format!("{d} needs an argument"))),
                    (d, _) => self
                        .errors
                        .push(err(first, format!("unknown directive {d}"))),
                }
                continue;
            }
            let mut toks = entry.tokens.iter();
            if !entry.inherits_owner {
                let t = toks.next().expect("entry has a token");
                let parsed = if t.text == "@" {
                    Ok(origin.clone())
                } else {
                    Name::parse(&t.text, Some(&origin))
                };
                match parsed {
                    Ok(n) => owner = Some(n),
                    Err(e) => {
                        self.errors
                            .push(err(t, format!("bad owner name {}: {e}", t.text)));
                        owner = None;
                        continue;
                    }
                }
            }
            let Some(owner) = owner.clone() else {
                self.errors.push(ZoneError::at(
                    file,
                    entry.line,
                    1,
                    "record has no owner name".into(),
                ));
                continue;
            };
            let (mut ttl, mut rtype) = (None, None);
            for t in toks.by_ref() {
                let upper = t.text.to_ascii_uppercase();
                if ttl.is_none() && t.text.starts_with(|c: char| c.is_ascii_digit()) {
                    match parse_ttl(&t.text) {
                        Some(v) => ttl = Some(v),
                        None => {
                            self.errors.push(err(t, format!("bad TTL {}", t.text)));
                            break;
                        }
                    }
                } else if let Ok(class) = DNSClass::from_str(&upper) {
                    if class != DNSClass::IN {
                        self.errors
                            .push(err(t, format!("class {upper} is not served; only IN")));
                        break;
                    }
                } else {
                    match RecordType::from_str(&upper) {
                        Ok(rt) => rtype = Some((rt, t)),
                        Err(_) => self
                            .errors
                            .push(err(t, format!("unknown record type {}", t.text))),
                    }
                    break;
                }
            }
            let Some((rtype, type_tok)) = rtype else {
                if self.errors.last().is_none_or(|e| e.line != entry.line) {
                    self.errors.push(ZoneError::at(
                        file,
                        entry.line,
                        1,
                        "record has no type".into(),
                    ));
                }
                continue;
            };
            let Some(ttl) = ttl.or(default_ttl).or(self.last_ttl) else {
                self.errors.push(err(
                    type_tok,
                    "record has no TTL and no $TTL is in force".into(),
                ));
                continue;
            };
            self.last_ttl = Some(ttl);
            let rdata_text: Vec<&str> = toks.map(|t| t.text.as_str()).collect();
            match parse_rdata(rtype, &rdata_text, &origin) {
                Ok(rdata) => {
                    if !self.zone_origin.zone_of(&owner) {
                        self.errors.push(err(
                            first,
                            format!("owner {owner} is outside the zone {}", self.zone_origin),
                        ));
                        continue;
                    }
                    self.records.push(SourceRecord {
                        owner,
                        ttl,
                        rdata,
                        file: file.to_path_buf(),
                        line: entry.line,
                        column: first.column,
                    });
                }
                Err(m) => self
                    .errors
                    .push(err(type_tok, format!("bad {rtype} record: {m}"))),
            }
        }
    }
}

/// Why one record's RDATA could not be read; reported as "bad TYPE record: ..." at the type.
#[derive(Debug, thiserror::Error)]
enum RdataError {
    /// Nothing after the type.
    #[error("missing RDATA")]
    Missing,
    /// hickory-proto's master-file parser refused the text.
    #[error("{0}")]
    Parse(#[source] ParseError),
    /// The text made no record, or more than one.
    #[error("expected exactly one record")]
    NotOne,
    /// An SVCB/HTTPS record names a SvcParam key twice.
    #[error("SvcParam key {0} is repeated")]
    RepeatedSvcParam(SvcParamKey),
    /// The parser accepted the text but the record does not encode.
    #[error("{0}")]
    Encode(#[source] ProtoError),
}

/// Parse one record's RDATA with hickory-proto's parser, relative names against `origin`.
fn parse_rdata(rtype: RecordType, parts: &[&str], origin: &Name) -> Result<RData, RdataError> {
    if parts.is_empty() {
        return Err(RdataError::Missing);
    }
    let text = format!("$ORIGIN {origin}\n@ 0 IN {rtype} {}\n", parts.join(" "));
    let (_, sets) = Parser::new(text, None, None)
        .parse()
        .map_err(RdataError::Parse)?;
    let mut records = sets
        .into_values()
        .flat_map(|s| s.records_without_rrsigs().cloned().collect::<Vec<_>>());
    let mut rdata = match (records.next(), records.next()) {
        (Some(r), None) => r.data.clone(),
        _ => return Err(RdataError::NotOne),
    };
    // SvcParams may be written in any order but go on the wire in key order, each key once
    // (RFC 9460 §2.1, §2.2).
    if let RData::SVCB(svcb) | RData::HTTPS(HTTPS(svcb)) = &mut rdata {
        svcb.svc_params.sort_by_key(|(k, _)| u16::from(*k));
        if let Some(w) = svcb.svc_params.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(RdataError::RepeatedSvcParam(w[0].0));
        }
    }
    // Whatever the parser accepted must also encode; say so here rather than fail later.
    super::build::rdata_wire(&rdata).map_err(RdataError::Encode)?;
    Ok(rdata)
}

/// Read a master file (and its includes) for the zone `origin`. All problems are reported.
pub fn read_zone_file(file: &Path, origin: &Name) -> Result<Vec<SourceRecord>, Vec<ZoneError>> {
    read_zone_files(file, origin).map(|(records, _)| records)
}

/// A file a zone was read from, and its stamp taken before it was read.
pub type Source = (PathBuf, super::build::Stamp);

/// [`read_zone_file`], and every file read (the zone's and its includes) with its stamp taken
/// before it was read.
pub fn read_zone_files(
    file: &Path,
    origin: &Name,
) -> Result<(Vec<SourceRecord>, Vec<Source>), Vec<ZoneError>> {
    let mut reader = Reader {
        zone_origin: origin,
        records: Vec::new(),
        errors: Vec::new(),
        last_ttl: None,
        files: Vec::new(),
    };
    reader.read_file(file, origin.clone(), 0, None);
    if reader.errors.is_empty() {
        Ok((reader.records, reader.files))
    } else {
        Err(reader.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_handle_parens_quotes_and_comments() {
        let text =
            "a IN TXT \"x ; y\" ; comment\n  IN A 192.0.2.1\n@ SOA ns h (\n 1 2 ; c\n 3 4 5 )\n";
        let e = split_entries(text, Path::new("z")).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0].tokens
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>(),
            ["a", "IN", "TXT", "\"x ; y\""]
        );
        assert!(e[1].inherits_owner);
        assert_eq!(e[1].line, 2);
        assert_eq!(e[2].tokens.len(), 9);
        assert_eq!(e[2].tokens[8].line, 5);
    }

    #[test]
    fn unclosed_paren_names_its_line() {
        let e = split_entries("a A 1.2.3.4\n@ SOA ( ns h\n 1 2 3\n", Path::new("z"))
            .err()
            .unwrap();
        assert_eq!(e.line, 2);
    }
}
