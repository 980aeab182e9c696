//! RFC 1035 §5 master-file reader that knows where every record came from.
//!
//! The file is split into entries here (comments, parentheses across lines, quoted strings,
//! `$ORIGIN`, `$TTL`, `$INCLUDE`, owner and TTL/class inheritance), keeping the line and column of
//! every token, one entry at a time and without copying the text. Records come out in wire form
//! into one arena ([`ReadRecords`]): no heap object per record.
//!
//! Names and the RDATA of the common types (A, AAAA, NS, CNAME, PTR, MX, plain TXT) in their
//! plain forms are read here directly; everything else (escapes, internationalised names, every
//! other type) is handed to hickory-proto's parsers, so the knowledge of every record type's text
//! form comes from one well-tested place, which the direct readers are tested against, while
//! each error still names the file, line and column it belongs to.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::ProtoError;
use hickory_proto::rr::rdata::HTTPS;
use hickory_proto::rr::rdata::svcb::SvcParamKey;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::DecodeError;
use hickory_proto::serialize::txt::{ParseError, Parser};

use super::build::{ZoneError, name_wire, rdata_wire, wire_to_text};
use super::text::{owner_name, rdata_tokens, splits};

/// Deepest `$INCLUDE` nesting accepted.
const MAX_INCLUDE_DEPTH: usize = 8;

/// One record as hickory-proto holds it (a secondary's records, the catalog zone's).
pub struct SourceRecord {
    pub owner: Name,
    pub ttl: u32,
    pub rdata: RData,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// One record as read: where its owner (wire form, as written) and RDATA (wire form, names
/// uncompressed) are in [`ReadRecords::bytes`], and where it was written.
#[derive(Clone, Copy, Debug)]
pub struct RawRecord {
    owner_at: u32,
    rdata_at: u32,
    pub ttl: u32,
    pub line: u32,
    pub column: u32,
    rdata_len: u16,
    pub rtype: u16,
    file: u16,
    owner_len: u8,
}

/// Records read from master files, in wire form in one arena.
#[derive(Default)]
pub struct ReadRecords {
    pub records: Vec<RawRecord>,
    bytes: Vec<u8>,
    files: Vec<PathBuf>,
}

impl ReadRecords {
    /// Add a record; `owner` is a wire name, `rdata` wire RDATA.
    pub fn push(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8], at: (u16, u32, u32)) {
        let prev = self.records.last().copied();
        let owner_at = match prev {
            Some(p) if self.owner(&p) == owner => p.owner_at,
            _ => {
                let at = self.bytes.len();
                self.bytes.extend_from_slice(owner);
                at as u32
            }
        };
        let rdata_at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(rdata);
        assert!(
            self.bytes.len() <= u32::MAX as usize,
            "zone data fits in 4 GiB"
        );
        self.records.push(RawRecord {
            owner_at,
            rdata_at,
            ttl,
            line: at.1,
            column: at.2,
            rdata_len: rdata.len() as u16,
            rtype,
            file: at.0,
            owner_len: owner.len() as u8,
        });
    }

    /// The position of `path` among the files records name.
    pub fn file_id(&mut self, path: &Path) -> u16 {
        match self.files.iter().position(|f| f == path) {
            Some(i) => i as u16,
            None => {
                self.files.push(path.to_path_buf());
                (self.files.len() - 1).min(u16::MAX as usize) as u16
            }
        }
    }

    pub fn owner(&self, r: &RawRecord) -> &[u8] {
        &self.bytes[r.owner_at as usize..r.owner_at as usize + r.owner_len as usize]
    }

    pub fn rdata(&self, r: &RawRecord) -> &[u8] {
        &self.bytes[r.rdata_at as usize..r.rdata_at as usize + r.rdata_len as usize]
    }

    /// An error located where `r` was written.
    pub fn error_at(&self, r: &RawRecord, message: String) -> ZoneError {
        let file = self.files.get(r.file as usize).map_or(Path::new(""), |f| f);
        ZoneError::at(file, r.line as usize, r.column as usize, message)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records held as hickory-proto values, in wire form; one that does not encode is an error
    /// at its position.
    pub fn from_source(records: Vec<SourceRecord>) -> Result<ReadRecords, Vec<ZoneError>> {
        let mut out = ReadRecords::default();
        let mut errors = Vec::new();
        for r in records {
            let file = out.file_id(&r.file);
            match rdata_wire(&r.rdata) {
                Ok(rdata) => out.push(
                    &name_wire(&r.owner),
                    u16::from(r.rdata.record_type()),
                    r.ttl,
                    &rdata,
                    (file, r.line as u32, r.column as u32),
                ),
                Err(e) => errors.push(ZoneError::at(&r.file, r.line, r.column, e.to_string())),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// The records as hickory-proto values (each RDATA decoded from its wire form).
    pub fn to_source(&self) -> Vec<SourceRecord> {
        use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, Restrict};
        self.records
            .iter()
            .filter_map(|r| {
                let rdata = self.rdata(r);
                let mut dec = BinDecoder::new(rdata);
                let rtype = RecordType::from(r.rtype);
                let rdata = RData::read(&mut dec, rtype, Restrict::new(rdata.len() as u16)).ok()?;
                let mut owner = BinDecoder::new(self.owner(r));
                Some(SourceRecord {
                    owner: Name::read(&mut owner).ok()?,
                    ttl: r.ttl,
                    rdata,
                    file: self.files.get(r.file as usize).cloned().unwrap_or_default(),
                    line: r.line as usize,
                    column: r.column as usize,
                })
            })
            .collect()
    }
}

#[derive(Debug)]
struct Token<'t> {
    text: &'t str,
    line: usize,
    column: usize,
}

/// What an entry's tokens do not say.
#[derive(Debug)]
struct EntryHead {
    /// The entry began with white space: the owner is the previous entry's.
    inherits_owner: bool,
    line: usize,
}

/// Splits master-file text into entries, one at a time.
struct Lexer<'t> {
    text: &'t str,
    pos: usize,
    line: usize,
    /// Characters (not bytes) since the line's start.
    column: usize,
    at_line_start: bool,
    file: &'t Path,
}

impl<'t> Lexer<'t> {
    fn new(text: &'t str, file: &'t Path) -> Self {
        Lexer {
            text,
            pos: 0,
            line: 1,
            column: 0,
            at_line_start: true,
            file,
        }
    }

    fn err(&self, line: usize, column: usize, message: &str) -> ZoneError {
        ZoneError::at(self.file, line, column, message.into())
    }

    /// The character at the reading position (not consumed).
    fn peek(&self) -> Option<char> {
        let b = *self.text.as_bytes().get(self.pos)?;
        if b < 0x80 {
            Some(b as char)
        } else {
            self.text[self.pos..].chars().next()
        }
    }

    /// Consume one character, counting lines and columns.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 0;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    /// The next entry's tokens into `toks`; `None` at the end of the text.
    fn next_entry(&mut self, toks: &mut Vec<Token<'t>>) -> Result<Option<EntryHead>, ZoneError> {
        toks.clear();
        let mut head = EntryHead {
            inherits_owner: false,
            line: self.line,
        };
        let mut depth = 0usize;
        let mut paren_line = 0usize;
        while let Some(c) = self.peek() {
            if c == '\n' {
                self.bump();
                if depth == 0 {
                    self.at_line_start = true;
                    if !toks.is_empty() {
                        return Ok(Some(head));
                    }
                    // A line of only white space or a comment is no entry, and does not make
                    // the next line inherit its owner.
                    head = EntryHead {
                        inherits_owner: false,
                        line: self.line,
                    };
                }
                continue;
            }
            let at_line_start = std::mem::replace(&mut self.at_line_start, false);
            match c {
                ';' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                ' ' | '\t' | '\r' => {
                    self.bump();
                    if at_line_start && depth == 0 && toks.is_empty() {
                        head.inherits_owner = c != '\r';
                        head.line = self.line;
                    }
                }
                '(' => {
                    self.bump();
                    if depth == 0 {
                        paren_line = self.line;
                    }
                    depth += 1;
                }
                ')' => {
                    self.bump();
                    if depth == 0 {
                        return Err(self.err(self.line, self.column, "')' without a matching '('"));
                    }
                    depth -= 1;
                }
                _ => {
                    if toks.is_empty() && depth == 0 {
                        head.line = self.line;
                    }
                    let start = self.pos;
                    self.bump();
                    let (start_line, start_col) = (self.line, self.column);
                    let starts_quoted = c == '"';
                    let mut quoted = false;
                    let mut c = c;
                    loop {
                        if c == '\\' {
                            if self.bump().is_none() {
                                return Err(self.err(
                                    self.line,
                                    self.column,
                                    "escape at end of file",
                                ));
                            }
                        } else if c == '"' {
                            quoted = !quoted;
                            if !quoted && starts_quoted {
                                break; // a closing quote ends a quoted token
                            }
                        }
                        match self.peek() {
                            None => {
                                if quoted {
                                    return Err(self.err(
                                        start_line,
                                        start_col,
                                        "unterminated quoted string",
                                    ));
                                }
                                break;
                            }
                            Some(n)
                                if !quoted
                                    && (n.is_whitespace() || matches!(n, ';' | '(' | ')')) =>
                            {
                                break;
                            }
                            Some(_) => c = self.bump().expect("peeked"),
                        }
                    }
                    toks.push(Token {
                        text: &self.text[start..self.pos],
                        line: start_line,
                        column: start_col,
                    });
                }
            }
        }
        if depth > 0 {
            return Err(self.err(paren_line, 0, "'(' is never closed"));
        }
        Ok((!toks.is_empty()).then_some(head))
    }
}

/// Parse a TTL: seconds, or BIND-style units (`1h30m`, `2d`).
fn parse_ttl(s: &str) -> Option<u32> {
    if !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    hickory_proto::serialize::txt::parse_ttl(s).ok()
}

/// The wire form of a plain name (lowercase letters, digits, hyphens not first, `*` labels; absolute, or
/// relative to `origin`, a wire name) appended to `out`; `false`, with `out` as it was, for
/// anything else (escapes, other characters, `xn--` labels, lengths past the limits): those go
/// to hickory-proto's reader.
fn plain_name(text: &str, origin: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let bytes = text.as_bytes();
    let (body, absolute) = match bytes.strip_suffix(b".") {
        Some(b) => (b, true),
        None => (bytes, false),
    };
    if body.is_empty() {
        return false; // "." and "" go the general way
    }
    for label in body.split(|&b| b == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && (label == b"*"
                || label
                    .iter()
                    .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
            && label[0] != b'-'
            && !label.starts_with(b"xn--");
        if !ok {
            out.truncate(start);
            return false;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    if absolute {
        out.push(0);
    } else {
        out.extend_from_slice(origin);
    }
    if out.len() - start > crate::wire::MAX_NAME {
        out.truncate(start);
        return false;
    }
    true
}

/// RDATA of the common types in their plain text forms, appended to `out`; `false` (with `out`
/// as it was) for anything else.
fn plain_rdata(rtype: RecordType, parts: &[&str], origin: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let ok = match (rtype, parts) {
        (RecordType::A, [a]) => Ipv4Addr::from_str(a)
            .map(|a| out.extend_from_slice(&a.octets()))
            .is_ok(),
        (RecordType::AAAA, [a]) => Ipv6Addr::from_str(a)
            .map(|a| out.extend_from_slice(&a.octets()))
            .is_ok(),
        (RecordType::NS | RecordType::CNAME | RecordType::PTR, [n]) => plain_name(n, origin, out),
        (RecordType::MX, [pref, n]) => {
            pref.bytes().all(|b| b.is_ascii_digit())
                && u16::from_str(pref)
                    .map(|p| out.extend_from_slice(&p.to_be_bytes()))
                    .is_ok()
                && plain_name(n, origin, out)
        }
        (RecordType::TXT, strings) if !strings.is_empty() => strings.iter().all(|s| {
            let inner = s
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .filter(|i| {
                    i.len() <= 255
                        && i.bytes()
                            .all(|b| (b' '..=b'~').contains(&b) && b != b'\\' && b != b'"')
                });
            inner.is_some_and(|i| {
                out.push(i.len() as u8);
                out.extend_from_slice(i.as_bytes());
                true
            })
        }),
        _ => false,
    };
    if !ok {
        out.truncate(start);
    }
    ok
}

/// Reading state carried across entries and into included files.
struct Reader<'a> {
    zone_origin: &'a Name,
    /// Lowercase wire form of the zone's origin.
    apex: Box<[u8]>,
    records: ReadRecords,
    errors: Vec<ZoneError>,
    last_ttl: Option<u32>,
    /// Every file read (the zone's and its includes), each stamped before it was read.
    files: Vec<Source>,
    /// Read names and RDATA of the common types directly (false: all through hickory-proto, the
    /// reference the direct readers are tested against).
    direct: bool,
    /// Bytes read so far from the zone's files: with its `$INCLUDE`s a zone reads at most
    /// [`MAX_ZONE_FILE_BYTES`].
    read: u64,
}

/// The most a zone reads from its file and every file it includes: 2 GiB. Ten million records
/// at up to 200 bytes a line (a plain `name TTL IN A address` line is 30 to 60 bytes; long TXT
/// and SVCB lines are the exception) fit; past it the zone is refused, naming the file and the
/// limit, and a file larger than what is left is not read at all.
pub const MAX_ZONE_FILE_BYTES: u64 = 2 << 30;

/// Why [`read_within`] read no text.
enum Unread {
    /// The file is larger than the room left (its size, or `None` when it grew while read).
    Over(Option<u64>),
    /// It could not be opened or read, or is not a regular file.
    Failed(String),
}

/// Read `file` whole as text, if it is a regular file of at most `room` bytes (a device or a pipe
/// named by an `$INCLUDE` would be an endless read; a file that grows while read is cut at
/// `room + 1` bytes and refused).
fn read_within(file: &Path, room: u64) -> Result<String, Unread> {
    use std::io::Read;
    let failed = |e: std::io::Error| Unread::Failed(e.to_string());
    let f = std::fs::File::open(file).map_err(failed)?;
    let meta = f.metadata().map_err(failed)?;
    if !meta.is_file() {
        return Err(Unread::Failed("not a regular file".into()));
    }
    if meta.len() > room {
        return Err(Unread::Over(Some(meta.len())));
    }
    let mut text = String::with_capacity(meta.len() as usize);
    f.take(room + 1).read_to_string(&mut text).map_err(failed)?;
    if text.len() as u64 > room {
        return Err(Unread::Over(None));
    }
    Ok(text)
}

/// Whether the wire name `name` is `apex` or below it (case-insensitive).
fn within(name: &[u8], apex: &[u8]) -> bool {
    let mut pos = 0;
    while pos < name.len() {
        if name.len() - pos == apex.len() {
            return name[pos..].eq_ignore_ascii_case(apex);
        }
        if name[pos] == 0 {
            break;
        }
        pos += 1 + name[pos] as usize;
    }
    false
}

impl Reader<'_> {
    fn read_file(&mut self, file: &Path, origin: Name, depth: usize, from: Option<(&Path, usize)>) {
        if let Some(stamp) = super::build::Stamp::of(file) {
            self.files.push((file.to_path_buf(), stamp));
        }
        let text = match read_within(file, MAX_ZONE_FILE_BYTES - self.read) {
            Ok(t) => t,
            Err(e) => {
                let size = |n: Option<u64>| n.map_or("more".into(), |n| n.to_string());
                let limit = format!("over the limit of {MAX_ZONE_FILE_BYTES} bytes (2 GiB)");
                let cannot =
                    |why: String| format!("cannot read zone file {}: {why}", file.display());
                self.errors.push(match (from, e) {
                    (None, Unread::Over(n)) => ZoneError::at(
                        file,
                        0,
                        0,
                        format!("zone file of {} bytes, {limit}", size(n)),
                    ),
                    (None, Unread::Failed(why)) => ZoneError::at(file, 0, 0, cannot(why)),
                    (Some((f, line)), Unread::Over(n)) => {
                        let why =
                            format!("zone file of {} bytes, {limit} for a zone's files", size(n));
                        ZoneError::at(f, line, 1, cannot(why))
                    }
                    (Some((f, line)), Unread::Failed(why)) => {
                        ZoneError::at(f, line, 1, cannot(why))
                    }
                });
                return;
            }
        };
        self.read += text.len() as u64;
        let file_id = self.records.file_id(file);
        // Room for what the text can hold, so the vectors do not grow by copying (a copy is
        // briefly twice the memory); pages never written are never resident.
        self.records.records.reserve(text.len() / 12);
        self.records.bytes.reserve(text.len());
        let mut lexer = Lexer::new(&text, file);
        let mut toks = Vec::new();
        let mut origin = origin;
        let mut origin_wire = name_wire(&origin);
        let mut default_ttl: Option<u32> = None;
        // The current owner in wire form (empty: none).
        let mut owner: Vec<u8> = Vec::new();
        let mut rdata: Vec<u8> = Vec::new();
        loop {
            let entry = match lexer.next_entry(&mut toks) {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => {
                    self.errors.push(e);
                    return;
                }
            };
            let first = &toks[0];
            let err = |t: &Token, m: String| ZoneError::at(file, t.line, t.column, m);
            if !entry.inherits_owner && first.text.starts_with('$') {
                let arg = toks.get(1);
                match (first.text.to_ascii_uppercase().as_str(), arg) {
                    ("$ORIGIN", Some(a)) => match Name::parse(a.text, Some(&origin)) {
                        Ok(n) => {
                            origin_wire = name_wire(&n);
                            origin = n;
                        }
                        Err(e) => self
                            .errors
                            .push(err(a, format!("bad $ORIGIN {}: {e}", a.text))),
                    },
                    ("$TTL", Some(a)) => match parse_ttl(a.text) {
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
                        let inc_origin = match toks.get(2) {
                            Some(o) => match Name::parse(o.text, Some(&origin)) {
                                Ok(n) => n,
                                Err(e) => {
                                    self.errors
                                        .push(err(o, format!("bad origin {}: {e}", o.text)));
                                    continue;
                                }
                            },
                            None => origin.clone(),
                        };
                        let line = first.line;
                        self.read_file(&path, inc_origin, depth + 1, Some((file, line)));
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
            let mut toks_iter = toks.iter();
            if !entry.inherits_owner {
                let t = toks_iter.next().expect("entry has a token");
                owner.clear();
                if t.text == "@" {
                    owner.extend_from_slice(&origin_wire);
                } else if let Err(e) = owner_name(t.text, &origin, &origin_wire, &mut owner) {
                    self.errors
                        .push(err(t, format!("bad owner name {}: {e}", t.text)));
                    continue;
                }
            }
            if owner.is_empty() {
                self.errors.push(ZoneError::at(
                    file,
                    entry.line,
                    1,
                    "record has no owner name".into(),
                ));
                continue;
            }
            let (mut ttl, mut rtype) = (None, None);
            for t in toks_iter.by_ref() {
                if ttl.is_none() && t.text.starts_with(|c: char| c.is_ascii_digit()) {
                    match parse_ttl(t.text) {
                        Some(v) => ttl = Some(v),
                        None => {
                            self.errors.push(err(t, format!("bad TTL {}", t.text)));
                            break;
                        }
                    }
                    continue;
                }
                let upper = t.text.to_ascii_uppercase();
                if let Ok(class) = DNSClass::from_str(&upper) {
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
            let rest = toks_iter.as_slice();
            // Refused, not ignored: tokens after the data of a type that takes a fixed number,
            // and a token hickory-proto's lexer would read as two.
            if let Some(extra) = rdata_tokens(rtype).and_then(|n| rest.get(n)) {
                self.errors.push(err(
                    extra,
                    format!(
                        "bad {rtype} record: {} after its data (it takes {} field{})",
                        extra.text,
                        rdata_tokens(rtype).unwrap_or(0),
                        if rdata_tokens(rtype) == Some(1) {
                            ""
                        } else {
                            "s"
                        }
                    ),
                ));
                continue;
            }
            if let Some(t) = rest.iter().find(|t| splits(t.text)) {
                self.errors.push(err(
                    t,
                    format!(
                        "bad {rtype} record: {} has white space inside; write it as one quoted string",
                        t.text
                    ),
                ));
                continue;
            }
            let parts: Vec<&str> = rest.iter().map(|t| t.text).collect();
            rdata.clear();
            if !(self.direct && plain_rdata(rtype, &parts, &origin_wire, &mut rdata)) {
                match parse_rdata(rtype, &parts, &origin) {
                    Ok(r) => rdata = rdata_wire(&r).expect("checked by parse_rdata"),
                    Err(m) => {
                        self.errors
                            .push(err(type_tok, format!("bad {rtype} record: {m}")));
                        continue;
                    }
                }
            }
            if !within(&owner, &self.apex) {
                self.errors.push(err(
                    first,
                    format!(
                        "owner {} is outside the zone {}",
                        wire_to_text(&owner),
                        self.zone_origin
                    ),
                ));
                continue;
            }
            if rdata.len() > u16::MAX as usize {
                self.errors
                    .push(err(type_tok, format!("bad {rtype} record: RDATA too long")));
                continue;
            }
            self.records.push(
                &owner,
                u16::from(rtype),
                ttl,
                &rdata,
                (file_id, entry.line as u32, first.column as u32),
            );
        }
    }
}

/// Why one record's RDATA could not be read; reported as "bad TYPE record: ..." at the type.
#[derive(Debug, thiserror::Error)]
pub(super) enum RdataError {
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
    /// A CAA tag that is not 1 to 15 ASCII letters and digits (RFC 8659 §4.1).
    #[error("CAA tag {0:?} is not 1 to 15 ASCII letters and digits (RFC 8659 §4.1)")]
    CaaTag(String),
    /// The parser accepted the text and it encodes, but what it encodes to does not decode:
    /// served, it would make the whole response unreadable to a client that checks.
    #[error("its wire form does not decode: {0}")]
    Decode(#[source] DecodeError),
}

/// Parse one record's RDATA with hickory-proto's parser, relative names against `origin`.
pub(super) fn parse_rdata(
    rtype: RecordType,
    parts: &[&str],
    origin: &Name,
) -> Result<RData, RdataError> {
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
    if let RData::CAA(caa) = &rdata {
        let tag = &caa.tag;
        if !(1..=15).contains(&tag.len()) || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RdataError::CaaTag(tag.to_string()));
        }
    }
    // Whatever the parser accepted must also encode, and decode again as its type; say so here
    // rather than serve what a client cannot read.
    let wire = super::build::rdata_wire(&rdata).map_err(RdataError::Encode)?;
    if wire.len() <= u16::MAX as usize {
        // (longer: refused as too long by the caller)
        decodes(rtype, &wire).map_err(RdataError::Decode)?;
    }
    Ok(rdata)
}

/// Whether `wire`, RDATA of type `rtype`, decodes with hickory-proto, every octet read.
fn decodes(rtype: RecordType, wire: &[u8]) -> Result<(), DecodeError> {
    use hickory_proto::serialize::binary::{BinDecoder, Restrict};
    let mut dec = BinDecoder::new(wire);
    RData::read(&mut dec, rtype, Restrict::new(wire.len() as u16)).map(drop)
}

/// Read a master file (and its includes) for the zone `origin`, as hickory-proto values. All
/// problems are reported.
pub fn read_zone_file(file: &Path, origin: &Name) -> Result<Vec<SourceRecord>, Vec<ZoneError>> {
    read_zone_files(file, origin).map(|(records, _)| records.to_source())
}

/// A file a zone was read from, and its stamp taken before it was read.
pub type Source = (PathBuf, super::build::Stamp);

/// Read a master file (and its includes) for the zone `origin`, with every file read (the zone's
/// and its includes) and its stamp taken before it was read. All problems are reported.
pub fn read_zone_files(
    file: &Path,
    origin: &Name,
) -> Result<(ReadRecords, Vec<Source>), Vec<ZoneError>> {
    read_with(file, origin, true)
}

fn read_with(
    file: &Path,
    origin: &Name,
    direct: bool,
) -> Result<(ReadRecords, Vec<Source>), Vec<ZoneError>> {
    let mut reader = Reader {
        zone_origin: origin,
        apex: super::build::lower_wire(origin),
        records: ReadRecords::default(),
        errors: Vec::new(),
        last_ttl: None,
        files: Vec::new(),
        direct,
        read: 0,
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

    fn split_entries(
        text: &str,
        file: &Path,
    ) -> Result<Vec<(EntryHead, Vec<Token<'static>>)>, ZoneError> {
        let text: &'static str = Box::leak(text.to_string().into_boxed_str());
        let file: &'static Path = Box::leak(file.to_path_buf().into_boxed_path());
        let mut lexer = Lexer::new(text, file);
        let mut out = Vec::new();
        let mut toks = Vec::new();
        while let Some(h) = lexer.next_entry(&mut toks)? {
            out.push((h, std::mem::take(&mut toks)));
        }
        Ok(out)
    }

    #[test]
    fn entries_handle_parens_quotes_and_comments() {
        let text =
            "a IN TXT \"x ; y\" ; comment\n  IN A 192.0.2.1\n@ SOA ns h (\n 1 2 ; c\n 3 4 5 )\n";
        let e = split_entries(text, Path::new("z")).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0].1.iter().map(|t| t.text).collect::<Vec<_>>(),
            ["a", "IN", "TXT", "\"x ; y\""]
        );
        assert!(e[1].0.inherits_owner);
        assert_eq!(e[1].0.line, 2);
        assert_eq!(e[2].1.len(), 9);
        assert_eq!(e[2].1[8].line, 5);
    }

    /// A zone file in a folder of its own, removed when dropped.
    struct TempZone(PathBuf);

    impl TempZone {
        fn new(name: &str, text: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("meridian-file-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("z.zone"), text).unwrap();
            TempZone(dir)
        }

        fn path(&self) -> PathBuf {
            self.0.join("z.zone")
        }

        /// The errors of both readers (direct and hickory-proto only), which must agree, as
        /// `line:column: message`.
        fn errors(&self) -> Vec<String> {
            let origin = Name::from_ascii("example.").unwrap();
            let show = |direct| match read_with(&self.path(), &origin, direct) {
                Ok(_) => Vec::new(),
                Err(e) => e
                    .iter()
                    .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
                    .collect::<Vec<_>>(),
            };
            let (fast, slow) = (show(true), show(false));
            assert_eq!(fast, slow, "both readers");
            fast
        }
    }

    impl Drop for TempZone {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    const HEAD: &str = "$ORIGIN example.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n";

    /// Tokens after a record's data are refused at the first of them, by both readers, as BIND,
    /// Knot and NSD refuse them (fuzz/regressions/zone/crash-trailing-tokens).
    #[test]
    fn tokens_after_the_data_are_refused_where_they_are() {
        let z = TempZone::new(
            "trailing",
            &format!(
                "{HEAD}subdel NS ns.    TXT \"x\"\na A 192.0.2.1 192.0.2.2 junk\n\
                 b A 192.0.2.1\nm MX 10 mx (\n  extra )\ns SRV 1 2 3 t. u.\n\
                 t TXT \"x\" y\nw A 192.0.2.1\"a b\"\n"
            ),
        );
        assert_eq!(
            z.errors(),
            [
                "5:18: bad NS record: TXT after its data (it takes 1 field)",
                "6:15: bad A record: 192.0.2.2 after its data (it takes 1 field)",
                "9:3: bad MX record: extra after its data (it takes 2 fields)",
                "10:16: bad SRV record: u. after its data (it takes 4 fields)",
                "12:5: bad A record: 192.0.2.1\"a b\" has white space inside; \
                 write it as one quoted string",
            ]
        );
    }

    /// A CAA tag is 1 to 15 letters and digits (RFC 8659 §4.1): a longer one is refused at load
    /// (fuzz/regressions/zone/crash-caa-long-tag); and what hickory-proto's text parser accepts
    /// must decode as well as encode, which is what refused the tag's wire form.
    #[test]
    fn caa_tags_past_15_characters_are_refused() {
        let z = TempZone::new(
            "caa",
            &format!(
                "{HEAD}@ CAA 0 issuewildcardxxxx \"ca.example.net\"\n@ CAA 0 is-sue \"x\"\n\
                 @ CAA 0 issue \"ca.example.net\"\n@ CAA 128 tbs123456789012 \"x\"\n"
            ),
        );
        let e = z.errors();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("5:3: bad CAA record: CAA tag \"issuewildcardxxxx\""));
        assert!(e[1].starts_with("6:3: bad CAA record: CAA tag \"is-sue\""));
        // The wire form hickory-proto encodes for such a tag does not decode.
        let mut wire = vec![0, 17];
        wire.extend_from_slice(b"issuewildcardxxxxca.example.net");
        assert!(decodes(RecordType::CAA, &wire).is_err());
    }

    /// Owners keep the case written and may hold any octet (an underscore inside a label), on
    /// both readers; `@` is the origin as given.
    #[test]
    fn owners_are_read_as_written() {
        let text = format!(
            "{HEAD}MixedCase A 192.0.2.1\nmy_host A 192.0.2.2\nWWW.Example. A 192.0.2.3\n\
             0/25 CNAME a\n"
        );
        let z = TempZone::new("owners", &text);
        assert_eq!(z.errors(), Vec::<String>::new());
        let origin = Name::from_ascii("Example.").unwrap();
        for direct in [true, false] {
            let (read, _) =
                read_with(&z.path(), &origin, direct).unwrap_or_else(|e| panic!("{e:?}"));
            let owners: Vec<String> = read
                .records
                .iter()
                .map(|r| wire_to_text(read.owner(r)))
                .collect();
            assert_eq!(
                owners,
                [
                    "example.",
                    "example.",
                    "MixedCase.example.",
                    "my_host.example.",
                    "WWW.Example.",
                    "0/25.example.",
                ]
            );
        }
    }

    /// A record written twice is held once and counted once (the load log line's and the zone
    /// metrics' `records`; fuzz/regressions/zone/crash-duplicate-count).
    #[test]
    fn a_record_written_twice_counts_once() {
        let z = TempZone::new(
            "dup",
            &format!("{HEAD}dup TXT \"x\"\ndup TXT \"x\"\nDUP 60 TXT \"x\"\nns A 192.0.2.1\n"),
        );
        let zone = super::super::load_zone(&Name::from_ascii("example.").unwrap(), &z.path())
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(zone.record_count, 4);
    }

    /// `$INCLUDE`d files count toward the zone's limit, and one that is not a regular file is
    /// refused at its `$INCLUDE` line instead of read without end.
    #[test]
    fn included_files_are_held_to_the_zone_limit() {
        let z = TempZone::new("include-limit", &format!("{HEAD}$INCLUDE big.zone\n"));
        let big = z.0.join("big.zone");
        // Sparse: nothing is written, and nothing must be read. With the main file's bytes
        // read first, exactly the limit is over what is left.
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_ZONE_FILE_BYTES).unwrap();
        let e = z.errors();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("5:1: cannot read zone file "), "{e:?}");
        assert!(
            e[0].ends_with("zone file of 2147483648 bytes, over the limit of 2147483648 bytes (2 GiB) for a zone's files"),
            "{e:?}"
        );
        // Within the limit, it is read.
        f.set_len(0).unwrap();
        std::fs::write(&big, "big A 192.0.2.7\n").unwrap();
        assert_eq!(z.errors(), Vec::<String>::new());
        let z = TempZone::new("include-dev", &format!("{HEAD}$INCLUDE /dev/zero\n"));
        assert_eq!(
            z.errors(),
            ["5:1: cannot read zone file /dev/zero: not a regular file"]
        );
    }

    #[test]
    fn unclosed_paren_names_its_line() {
        let e = split_entries("a A 1.2.3.4\n@ SOA ( ns h\n 1 2 3\n", Path::new("z"))
            .err()
            .unwrap();
        assert_eq!(e.line, 2);
    }

    /// Every record the direct readers take is read exactly as hickory-proto's parsers read it
    /// (the oracle), names and RDATA; and errors are the same.
    #[test]
    fn direct_readers_agree_with_hickory() {
        let dir = std::env::temp_dir().join(format!("meridian-direct-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("z.zone");
        let mut text = String::from(
            "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 host.master 7 3600 600 86400 300\n",
        );
        let names = [
            "a",
            "a.b",
            "*",
            "*.w",
            "x-y",
            "-lead",
            "trail-",
            "1",
            "a1.b2.c3",
            "h0.example.test.",
            "UPPER",
            "MiXed.Case",
            "_srv._tcp",
            "under_score",
            "xn--nxasmq6b",
            "xn--bad",
            "ünï",
            "a\\.b",
            "a\\065",
            "sub.other.test.",
        ];
        for (i, n) in names.iter().enumerate() {
            text.push_str(&format!("{n} A 192.0.2.{i}\n"));
            text.push_str(&format!("{n} AAAA 2001:db8::{i:x}\n"));
            text.push_str(&format!("n{i} NS {n}\n"));
            text.push_str(&format!("c{i} CNAME {n}\n"));
            text.push_str(&format!("p{i} PTR {n}\n"));
            text.push_str(&format!("m{i} MX {i} {n}\n"));
        }
        for rd in [
            "\"plain\"",
            "\"two\" \"strings\"",
            "\"\"",
            "unquoted",
            "\"esc\\\"aped\"",
            "\"semi ; colon\"",
            "\"tab\there\"",
        ] {
            text.push_str(&format!("t TXT {rd}\n"));
        }
        for rd in [
            "1.2.3",
            "256.1.1.1",
            "01.2.3.4",
            "::ffff:1.2.3.4",
            "1.2.3.4 5",
        ] {
            text.push_str(&format!("bad A {rd}\nbad AAAA {rd}\n"));
        }
        text.push_str("mx MX 65536 a\nmx MX +1 a\nmx MX 1\nmx MX 1 a b\n");
        text.push_str("bad NS a b\nbad CNAME a \"b\"\nbad PTR a\\ b\n");
        std::fs::write(&path, &text).unwrap();
        let origin = Name::from_ascii("example.test.").unwrap();
        let fast = read_with(&path, &origin, true);
        let slow = read_with(&path, &origin, false);
        let show = |r: &Result<(ReadRecords, Vec<Source>), Vec<ZoneError>>| -> Vec<String> {
            match r {
                Ok((rr, _)) => rr
                    .records
                    .iter()
                    .map(|x| {
                        format!(
                            "{:?} {} {} {:?} {:?}",
                            rr.owner(x),
                            x.rtype,
                            x.ttl,
                            rr.rdata(x),
                            (x.line, x.column)
                        )
                    })
                    .collect(),
                Err(e) => e.iter().map(|e| e.to_string()).collect(),
            }
        };
        let (f, s) = (show(&fast), show(&slow));
        assert!(fast.is_err(), "the bad records are refused");
        assert_eq!(f, s);
        // Without the bad lines both read the same records, and the direct readers took some.
        let refused = [
            "bad ",
            "mx ",
            "-lead",
            "under_score",
            "xn--bad",
            "sub.other",
        ];
        let good: String = text
            .lines()
            .filter(|l| !refused.iter().any(|r| l.contains(r)))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, &good).unwrap();
        let fast = read_with(&path, &origin, true);
        let slow = read_with(&path, &origin, false);
        let (f, s) = (show(&fast), show(&slow));
        assert_eq!(f, s);
        assert!(fast.is_ok(), "{f:?}");
        assert!(f.len() > 100, "{}", f.len());
        std::fs::remove_dir_all(&dir).ok();
    }
}
