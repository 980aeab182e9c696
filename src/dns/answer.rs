//! The answer engine: one query in, one response out, for UDP and TCP alike.
//!
//! [`respond`] parses the query into a caller-owned [`Query`], finds the zone, walks the name
//! (CNAME chasing within the zone, wildcards, delegations) and writes the response into a
//! caller-owned buffer. It is a plain function of its inputs: no I/O, no clock, no allocation.
//!
//! Hot-path budget per query: one header parse, one name copy (lowercased while parsing), one
//! hash lookup per label between the name and its zone apex, and `memcpy`s of prepared RRsets.
//! Owner names are written as compression pointers into the question (or into the CNAME that
//! led to them), so prepared records never need patching.
//!
//! Sizes: over UDP the response never exceeds the client's EDNS payload (512 without EDNS) nor
//! the server's own payload size; when the answer does not fit it is cut back to the question
//! and the OPT record with TC=1, so the client retries over TCP (RFC 7766, RFC 9471).
//!
//! TSIG (RFC 8945): a query whose additional section holds more than an OPT (never the prepared
//! or kept shape) is checked against the snapshot's keys at [`Work::now`]: a signed query that
//! verifies gets a signed answer (a secondary's refresh SOA query, say), with room kept for the
//! TSIG record within the size limit; one that does not gets NOTAUTH with the TSIG error
//! (BADKEY, BADSIG, BADTIME), or FORMERR for a malformed TSIG.

use crate::wire::*;

use crate::snapshot::Snapshot;
use crate::zone::sections::{Full, Sections, Writer, copy_short, write_sections};
use crate::zone::{Found, Prepared, Presence, Ready};

/// Transport the query arrived on; decides the response size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Who asked, and how: what the answer may depend on besides the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub transport: Transport,
    /// Source address of the query (clients are located by it when no ECS option is used).
    pub addr: std::net::IpAddr,
    /// A fresh random number for weighted draws; the caller's worker owns the generator.
    pub random: u64,
}

/// The response's outcome, for callers that count things (metrics, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub len: usize,
    pub rcode: Rcode,
    pub truncated: bool,
    /// The zone that answered (its catalog position), if any.
    pub zone: Option<u16>,
    /// The question's type (0 when the question did not parse).
    pub qtype: u16,
    /// The query carried an EDNS Client Subnet option.
    pub ecs: bool,
}

/// A steered answer: service, client region ([`ANY_REGION`] when the answer is the same for every
/// region and the client was not located), the endpoints drawn, and the decision's state.
pub const ANY_REGION: u16 = u16::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steered {
    pub service: u16,
    pub region: u16,
    pub count: u8,
    pub endpoints: [crate::policy::EndpointRef; crate::policy::MAX_ANSWERS],
    pub state: SteeredState,
}

/// Whether a steered answer came from healthy primaries, a degraded decision, or a fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SteeredState {
    Normal,
    /// Endpoints withdrawn, but the leading pool still takes all of the region's traffic.
    Withdrawn,
    /// Part of the region's traffic spills to other pools.
    Spill,
    /// Standby endpoints serve.
    Standby,
    /// Nothing serves: the fallback answered.
    Fallback,
}

/// A worker's scratch for one query at a time, reused from query to query: the parsed query,
/// and what a service chose for it (for metrics; kept here so that [`Outcome`] stays small).
#[derive(Default)]
pub struct Work {
    pub query: Query,
    /// Set when a service answered; `None` for every other answer.
    pub steered: Option<Steered>,
    /// Now, in seconds since the Unix epoch, set by the caller, or 0: then the system clock is
    /// read when a signed query needs it (the UDP workers do that: most batches need no time).
    /// TSIG times are checked and signed against it.
    pub now: u64,
    /// Set when the query's TSIG did not verify (answered NOTAUTH or FORMERR); `None` otherwise.
    pub tsig_error: Option<crate::wire::tsig::TsigError>,
    /// The server's cookie secrets, set by the caller: `None` ignores COOKIE options (and
    /// sends none), as a server without cookies does (see [`super::cookie`]).
    pub cookies: Option<super::cookie::CookieKeys>,
    /// What the query's COOKIE was worth, when it had one and cookies are on; `None` otherwise
    /// (and after the prepared path, which takes no options).
    pub cookie: Option<crate::wire::cookie::Verdict>,
}

/// Answer one message. Returns `None` when nothing must be sent (responses, runts).
///
/// `out` must hold at least [`MAX_MESSAGE`] bytes for TCP, or the server's EDNS payload size
/// for UDP.
pub fn respond(
    snap: &Snapshot,
    packet: &[u8],
    peer: Peer,
    work: &mut Work,
    out: &mut [u8],
) -> Option<Outcome> {
    match try_prepared(snap, packet, peer.transport, &mut work.query.qname, out) {
        Ok(o) => {
            work.steered = None;
            work.cookie = None;
            Some(o)
        }
        Err(found) => respond_after(snap, packet, peer, work, out, found),
    }
}

/// Answer from a prepared response, if the query has the common shape (see
/// [`parse_plain_question`]) and one is ready for its exact question that fits the client's
/// limit; `None` otherwise, with `out` and `name` in no particular state. The bytes are those
/// [`respond_general`] writes: the prepared sections are its own output, written at load.
///
/// This is most queries' whole path, so it touches only the header, the name, the zone found by
/// suffix, one probe of its name index and the response buffer: no [`Query`], no [`Peer`].
#[inline(always)]
pub fn respond_prepared(
    snap: &Snapshot,
    packet: &[u8],
    transport: Transport,
    name: &mut NameBuf,
    out: &mut [u8],
) -> Option<Outcome> {
    try_prepared(snap, packet, transport, name, out).ok()
}

/// [`respond_prepared`], returning instead of `None` what it found of the question's zone and
/// name on its way, for [`respond_after`]: a service's name (never prepared) is then looked up
/// once per query, not twice.
#[inline(always)]
pub fn try_prepared<'s>(
    snap: &'s Snapshot,
    packet: &[u8],
    transport: Transport,
    name: &mut NameBuf,
    out: &mut [u8],
) -> Result<Outcome, Found<'s>> {
    let Some(q) = parse_plain_question(packet, name) else {
        return Err(Found::NotLooked);
    };
    if q.qclass != CLASS_IN || q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR {
        return Err(Found::NotLooked); // REFUSED by the general path
    }
    // Counts, flags and the sections' bytes; for NXDOMAIN the negative SOA's owner (the apex,
    // a pointer into the question) goes before them.
    let (zone, p, owner, body) = match snap.catalog.prepared_for(name, q.qtype)? {
        Ready::Prepared(zone, p, body) => (zone, p, None, body),
        Ready::Negative(zone, rcode) => {
            let apex_at = 12 + name.suffix_offset(name.label_count() - zone.apex_labels());
            let p = Prepared {
                ns: 1,
                aa: true,
                rcode,
                ..Prepared::default()
            };
            (
                zone.id,
                p,
                Some(0xC000 | apex_at as u16),
                // One record: its bytes after the pointer to the question.
                &zone.negative_soa().at_qname[2..],
            )
        }
    };
    let limit = size_limit(snap, transport, q.edns.map(|(payload, _)| payload));
    // The OPT goes last, 11 bytes: the request's was plain, so ours has no options either.
    let opt = if q.edns.is_some() { 11 } else { 0 };
    let qend = q.question_end;
    let at = qend + if owner.is_some() { 2 } else { 0 };
    let end = at + body.len();
    if end + opt > limit.min(out.len()) {
        return Err(Found::NotLooked); // cut by the client's size limit: the general path truncates
    }
    out[..2].copy_from_slice(&packet[..2]);
    copy_short(&mut out[12..qend], &packet[12..qend]);
    if let Some(ptr) = owner {
        out[qend..at].copy_from_slice(&ptr.to_be_bytes());
    }
    copy_short(&mut out[at..end], body);
    let mut w = Writer {
        buf: out,
        pos: end,
        limit: end + opt,
    };
    let mut s = Sections::of(&p);
    if let Some((udp_payload, dnssec_ok)) = q.edns {
        let e = Edns {
            udp_payload,
            version: 0,
            dnssec_ok,
            client_subnet: None,
            nsid: false,
            cookie: None,
        };
        write_opt(&mut w, snap, p.rcode, &e, 0).expect("OPT space checked");
        s.ar += 1;
    }
    finish_header(&mut w, q.flags, 1, &s, false);
    Ok(Outcome {
        len: end + opt,
        rcode: rcode_of(p.rcode),
        truncated: false,
        zone: Some(zone),
        qtype: q.qtype,
        ecs: false,
    })
}

/// The RCODEs the engine writes, as the metrics count them.
#[inline(always)]
fn rcode_of(rcode: u16) -> Rcode {
    match rcode {
        0 => Rcode::NoError,
        3 => Rcode::NxDomain,
        5 => Rcode::Refused,
        _ => Rcode::ServFail,
    }
}

/// [`respond`] without trying a prepared response first.
pub fn respond_general(
    snap: &Snapshot,
    packet: &[u8],
    peer: Peer,
    work: &mut Work,
    out: &mut [u8],
) -> Option<Outcome> {
    respond_after(snap, packet, peer, work, out, Found::NotLooked)
}

/// The general path after [`try_prepared`] found nothing ready, given what it found (used only
/// when the query has the common shape: then its question is the one `found` is for).
pub fn respond_after(
    snap: &Snapshot,
    packet: &[u8],
    peer: Peer,
    work: &mut Work,
    out: &mut [u8],
    found: Found,
) -> Option<Outcome> {
    work.steered = None;
    work.tsig_error = None;
    work.cookie = None;
    let q = &mut work.query;
    if parse_plain(packet, q) {
        return Some(answer(
            snap,
            packet,
            peer,
            q,
            &mut work.steered,
            out,
            0,
            found,
        ));
    }
    if super::notify::is_notify(packet) {
        return super::notify::respond(
            snap,
            packet,
            peer.addr,
            work.now,
            &mut work.tsig_error,
            out,
        );
    }
    let parsed = parse_query(packet, q);
    if parsed.is_ok() {
        // The COOKIE: checked, and the one to send back put in its place (RFC 7873 §5.2).
        let keys = work.cookies.as_ref();
        work.cookie = super::cookie::process(keys, &mut q.edns, peer.addr, &mut work.now);
        if super::cookie::refuse(keys, work.cookie) {
            let (end, edns) = (Some(q.question_end), q.edns);
            let rcode = Rcode::BadCookie;
            return error_response(snap, packet, q.id, q.flags, rcode, end, edns, out);
        }
    }
    match parsed {
        // More additional records than an OPT: perhaps a TSIG.
        Ok(()) if additional(packet) > q.edns.is_some() as u16 => {
            signed(snap, packet, peer, work, out)
        }
        Ok(()) => Some(answer(
            snap,
            packet,
            peer,
            q,
            &mut work.steered,
            out,
            0,
            Found::NotLooked,
        )),
        Err(Reject::Drop) => None,
        Err(Reject::Error {
            id,
            flags,
            rcode,
            question_end,
            edns,
        }) => error_response(snap, packet, id, flags, rcode, question_end, edns, out),
    }
}

/// A response with no records but the question (when it parsed) and the OPT (when the query
/// had a usable one): errors, and BADCOOKIE.
#[allow(clippy::too_many_arguments)]
fn error_response(
    snap: &Snapshot,
    packet: &[u8],
    id: u16,
    flags: u16,
    rcode: Rcode,
    question_end: Option<usize>,
    edns: Option<Edns>,
    out: &mut [u8],
) -> Option<Outcome> {
    let mut w = Writer {
        buf: out,
        pos: 0,
        limit: 512,
    };
    write_header(&mut w, id);
    let mut qd = 0;
    if let Some(end) = question_end {
        w.put(&packet[12..end]).ok()?;
        qd = 1;
    }
    let ar = match edns {
        Some(e) => {
            write_opt(&mut w, snap, rcode as u16, &e, 0).ok()?;
            1
        }
        None => 0,
    };
    finish_header(
        &mut w,
        flags,
        qd,
        &Sections {
            ar,
            rcode: rcode as u16,
            ..Default::default()
        },
        false,
    );
    Some(Outcome {
        len: w.pos,
        rcode,
        truncated: false,
        zone: None,
        qtype: 0,
        ecs: false,
    })
}

/// ARCOUNT of a message at least a header long.
fn additional(packet: &[u8]) -> u16 {
    u16::from_be_bytes([packet[10], packet[11]])
}

/// Answer a parsed query that may carry a TSIG: verified, the answer is signed; rejected, the
/// TSIG error answer; unsigned, the usual answer.
fn signed(
    snap: &Snapshot,
    packet: &[u8],
    peer: Peer,
    work: &mut Work,
    out: &mut [u8],
) -> Option<Outcome> {
    use crate::wire::tsig::{Signer, TsigError, verify_request};
    let keys = &snap.tsig_keys;
    if work.now == 0 {
        work.now = crate::wire::unix_now();
    }
    let q = &work.query;
    match verify_request(packet, keys, work.now) {
        Ok(None) => Some(answer(
            snap,
            packet,
            peer,
            q,
            &mut work.steered,
            out,
            0,
            Found::NotLooked,
        )),
        Ok(Some(signed)) => {
            let key = keys.get(signed.key)?;
            let mut o = answer(
                snap,
                packet,
                peer,
                q,
                &mut work.steered,
                out,
                key.record_len(),
                Found::NotLooked,
            );
            // Room was kept within the limit, so this only fails for a buffer smaller than one.
            if let Some(len) = Signer::new(key, &signed).sign(out, o.len, work.now) {
                o.len = len;
            }
            Some(o)
        }
        Err(rejected) => {
            work.tsig_error = Some(rejected.error);
            let len = rejected.write_response(packet, keys, out, work.now)?;
            Some(Outcome {
                len,
                rcode: match rejected.error {
                    TsigError::FormErr => Rcode::FormErr,
                    _ => Rcode::NotAuth,
                },
                truncated: false,
                zone: None,
                qtype: q.qtype,
                ecs: false,
            })
        }
    }
}

/// Start a response: the ID now; flags and counts are written by [`finish_header`].
fn write_header(w: &mut Writer, id: u16) {
    w.set_u16(0, id);
    w.pos = 12;
}

/// Fill in flags and counts. QR, AA, TC and RCODE as decided; opcode, RD and CD copied from the
/// query; RA, AD and Z clear.
#[inline(always)]
fn finish_header(w: &mut Writer, query_flags: u16, qd: u16, s: &Sections, tc: bool) {
    let mut flags = 0x8000 | (query_flags & 0x7910) | (s.rcode & 0xF);
    if s.aa {
        flags |= 0x0400;
    }
    if tc {
        flags |= 0x0200;
    }
    let mut h = [0u8; 10];
    for (at, v) in [flags, qd, s.an, s.ns, s.ar].into_iter().enumerate() {
        h[2 * at..2 * at + 2].copy_from_slice(&v.to_be_bytes());
    }
    w.buf[2..12].copy_from_slice(&h);
}

/// Write an OPT record: our payload size, extended RCODE bits, DO copied, ECS echoed if asked,
/// our NSID when asked and configured, and the COOKIE to send back (client and server cookie).
fn write_opt(w: &mut Writer, snap: &Snapshot, rcode: u16, e: &Edns, scope: u8) -> Result<(), Full> {
    let payload = snap.edns_udp_payload.max(512);
    let ecs_len = e.client_subnet.map_or(0, |c| 8 + c.address_len());
    let nsid = nsid_of(snap, e);
    let nsid_len = nsid.map_or(0, |n| 4 + n.len());
    let cookie_len = e.cookie.map_or(0, |c| 4 + c.wire_len());
    // The OPT always fits: the limit was lowered by its size beforehand.
    let saved = w.limit;
    w.limit = w.buf.len().min(MAX_MESSAGE);
    let r = (|| {
        w.put(&[0])?;
        w.put_u16(TYPE_OPT)?;
        w.put_u16(payload)?;
        w.put(&[(rcode >> 4) as u8, 0, if e.dnssec_ok { 0x80 } else { 0 }, 0])?;
        w.put_u16((ecs_len + nsid_len + cookie_len) as u16)?;
        if let Some(n) = nsid {
            w.put_u16(OPT_NSID)?;
            w.put_u16(n.len() as u16)?;
            w.put(n)?;
        }
        if let Some(c) = e.client_subnet {
            w.put_u16(OPT_ECS)?;
            w.put_u16(4 + c.address_len() as u16)?;
            w.put_u16(c.family)?;
            w.put(&[c.source_prefix, scope])?;
            w.put(&c.address[..c.address_len()])?;
        }
        if let Some(c) = &e.cookie {
            w.put_u16(crate::wire::cookie::OPT_COOKIE)?;
            w.put_u16(c.wire_len() as u16)?;
            w.put(&c.client)?;
            w.put(c.server())?;
        }
        Ok(())
    })();
    w.limit = saved;
    r
}

/// The most a response may hold: over UDP the client's EDNS payload (`None`: no OPT, 512) but
/// never more than the server's own; over TCP a whole message.
#[inline(always)]
fn size_limit(snap: &Snapshot, transport: Transport, payload: Option<u16>) -> usize {
    match (transport, payload) {
        (Transport::Tcp, _) => MAX_MESSAGE,
        (Transport::Udp, Some(p)) => p.min(snap.edns_udp_payload.max(512)) as usize,
        (Transport::Udp, None) => 512,
    }
}

/// The identifier to send in reply to `e`: only when the query asked and one is configured.
fn nsid_of<'s>(snap: &'s Snapshot, e: &Edns) -> Option<&'s [u8]> {
    snap.nsid.as_deref().filter(|_| e.nsid)
}

fn opt_size(snap: &Snapshot, e: &Option<Edns>) -> usize {
    match e {
        None => 0,
        Some(e) => {
            11 + e.client_subnet.map_or(0, |c| 8 + c.address_len())
                + nsid_of(snap, e).map_or(0, |n| 4 + n.len())
                + e.cookie.map_or(0, |c| 4 + c.wire_len())
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn answer(
    snap: &Snapshot,
    packet: &[u8],
    peer: Peer,
    q: &Query,
    steered: &mut Option<Steered>,
    out: &mut [u8],
    reserve: usize,
    found: Found,
) -> Outcome {
    let transport = peer.transport;
    // `reserve`: room kept after the message (and its OPT) for a TSIG record.
    let limit = size_limit(snap, transport, q.edns.map(|e| e.udp_payload))
        .min(out.len())
        .saturating_sub(reserve);
    let opt = opt_size(snap, &q.edns);
    let mut w = Writer {
        buf: out,
        pos: 0,
        limit: limit - opt,
    };
    write_header(&mut w, q.id);
    // Echo the question byte for byte, so the name keeps the case it was asked in.
    w.put(&packet[12..q.question_end])
        .expect("question fits: checked by parse");
    let question_end = w.pos;
    let mut s = Sections::default();
    let refused = q.qclass != CLASS_IN || q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR;
    // The zone, and whether the name is one of its nodes (the zone by suffix, then one probe of its name index).
    // (Or what the prepared attempt found for the same question.)
    let (zone, presence) = match (refused, found) {
        (true, _) => (None, Presence::Unknown),
        (false, Found::In(z, presence)) => (Some(z), presence),
        (false, Found::NotServed) => (None, Presence::Unknown),
        (false, Found::NotLooked) => match snap.catalog.resolve(&q.qname, q.qtype) {
            Some((z, presence)) => (Some(z), presence),
            None => (None, Presence::Unknown),
        },
    };
    let place = presence.place();
    let mut truncated = false;
    // ECS scope of the answer: 0 unless a service's answer depended on the client's location.
    let mut scope = 0u8;
    match zone {
        None => s.rcode = Rcode::Refused as u16,
        Some(zone) => {
            let service = snap
                .steering
                .as_ref()
                .and_then(|st| Some((st, st.service(&q.qname)?)));
            let written = match (service, &snap.tables) {
                (Some((st, svc)), Some(tables)) => super::service::write(
                    &mut w, zone, st, tables, svc, q, peer, &mut s,
                )
                .map(|(sc, st)| {
                    scope = sc;
                    *steered = Some(st);
                }),
                _ => match place.and_then(|p| snap.catalog.prepared(&p, q.qtype)) {
                    // Written ahead of time by `write_sections` itself: one copy, if it fits.
                    Some((p, body)) if w.pos + body.len() <= w.limit => w.put(body).map(|()| {
                        s = Sections::of(&p);
                    }),
                    _ => write_sections(&mut w, zone, &q.qname, q.qtype, presence, &mut s),
                },
            };
            if written.is_err() {
                // Cut back to the question: the client must retry over TCP.
                w.pos = question_end;
                s = Sections {
                    aa: s.aa,
                    rcode: s.rcode,
                    ..Default::default()
                };
                truncated = true;
            }
        }
    }
    if let Some(e) = &q.edns {
        // Static answers do not depend on the client's subnet: scope 0 (RFC 7871 §7.2.1);
        // service answers carry the scope of the network that placed the client.
        write_opt(&mut w, snap, s.rcode, e, scope).expect("OPT space reserved");
        s.ar += 1;
    }
    finish_header(&mut w, q.flags, 1, &s, truncated);
    let rcode = rcode_of(s.rcode);
    Outcome {
        len: w.pos,
        rcode,
        truncated,
        zone: zone.map(|z| z.id),
        qtype: q.qtype,
        ecs: q.edns.is_some_and(|e| e.client_subnet.is_some()),
    }
}
