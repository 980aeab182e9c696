//! Reading DNS messages by hand, independently of hickory-proto: every section walked, the
//! header counts checked against what is really there. Shared by the protocol and garbage tests.
#![allow(dead_code)]

/// An OPT record as it is on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// Owner is the root name (a single zero byte).
    pub root: bool,
    pub payload: u16,
    pub ext_rcode: u8,
    pub version: u8,
    /// The 16 flag bits (DO is the top one).
    pub flags: u16,
    pub rdata: Vec<u8>,
}

/// A message as laid out on the wire.
#[derive(Debug)]
pub struct Layout {
    pub id: u16,
    pub flags: u16,
    /// QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT.
    pub counts: [u16; 4],
    /// Offset just past the question section.
    pub question_end: usize,
    /// Types of the answer, authority and additional records, in order.
    pub types: [Vec<u16>; 3],
    /// Every OPT record of the additional section.
    pub opts: Vec<Opt>,
}

impl Layout {
    pub fn rcode(&self) -> u16 {
        let high = self.opts.first().map_or(0, |o| o.ext_rcode as u16);
        (high << 4) | (self.flags & 0xF)
    }
    pub fn opcode(&self) -> u16 {
        (self.flags >> 11) & 0xF
    }
    pub fn opt(&self) -> &Opt {
        assert_eq!(self.opts.len(), 1, "exactly one OPT expected: {self:?}");
        &self.opts[0]
    }
}

pub fn be16(m: &[u8], at: usize) -> Result<u16, String> {
    match m.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(format!("message ends inside a 16-bit field at {at}")),
    }
}

/// Skip a name; compression pointers must point inside the message.
pub fn skip_name(m: &[u8], mut pos: usize) -> Result<usize, String> {
    for _ in 0..128 {
        let l = *m
            .get(pos)
            .ok_or(format!("name runs off the end at {pos}"))?;
        match l & 0xC0 {
            0 if l == 0 => return Ok(pos + 1),
            0 => pos += 1 + l as usize,
            0xC0 => {
                let target = (be16(m, pos)? & 0x3FFF) as usize;
                if target >= m.len() {
                    return Err(format!("pointer at {pos} to {target} leaves the message"));
                }
                return Ok(pos + 2);
            }
            _ => return Err(format!("reserved label type {l:#x} at {pos}")),
        }
    }
    Err(format!("name at {pos} has too many labels"))
}

/// Walk every section; with `exact`, the header counts must describe the message exactly, to
/// its last byte.
pub fn walk(m: &[u8], exact: bool) -> Result<Layout, String> {
    if m.len() < 12 {
        return Err(format!("{} bytes: shorter than a header", m.len()));
    }
    let counts = [be16(m, 4)?, be16(m, 6)?, be16(m, 8)?, be16(m, 10)?];
    let mut pos = 12;
    for _ in 0..counts[0] {
        pos = skip_name(m, pos)? + 4;
        if pos > m.len() {
            return Err("question runs off the end".into());
        }
    }
    let question_end = pos;
    let mut types: [Vec<u16>; 3] = Default::default();
    let mut opts = Vec::new();
    for (section, &count) in counts[1..].iter().enumerate() {
        for _ in 0..count {
            let owner = pos;
            let p = skip_name(m, pos)?;
            let rtype = be16(m, p)?;
            let class = be16(m, p + 2)?;
            let rdlen = be16(m, p + 8)? as usize;
            let rdata = m
                .get(p + 10..p + 10 + rdlen)
                .ok_or(format!("RDATA at {} runs off the end", p + 10))?;
            types[section].push(rtype);
            if rtype == 41 && section == 2 {
                opts.push(Opt {
                    root: m[owner] == 0,
                    payload: class,
                    ext_rcode: m[p + 4],
                    version: m[p + 5],
                    flags: u16::from_be_bytes([m[p + 6], m[p + 7]]),
                    rdata: rdata.to_vec(),
                });
            }
            pos = p + 10 + rdlen;
        }
    }
    if exact && pos != m.len() {
        return Err(format!("counts cover {pos} bytes of {}", m.len()));
    }
    Ok(Layout {
        id: be16(m, 0)?,
        flags: be16(m, 2)?,
        counts,
        question_end,
        types,
        opts,
    })
}
