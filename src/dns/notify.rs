//! NOTIFY (RFC 1996) received: a primary says a secondary zone changed.
//!
//! A NOTIFY (opcode 4) for the apex of a secondary zone, class IN, type SOA, is acknowledged
//! (QR=1, opcode NOTIFY, AA, the same ID and question, NOERROR) and wakes the zone's refresh
//! task, which queries the primaries' SOA at once, when it comes from the address of one of
//! the zone's primaries or, for a zone with a TSIG key (`[[zone]] key`), when it is signed with
//! that key, from anywhere (the acknowledgement is then signed). A zone with a key takes no
//! other NOTIFY: unsigned or signed with another key, NOTAUTH; a TSIG that does not verify gets
//! the TSIG error answer (BADKEY, BADSIG, BADTIME). Every other NOTIFY is REFUSED; one without
//! exactly one question is a FORMERR. The answer section (the primary's new SOA, a hint) is
//! not read: the task asks for itself.
//!
//! Off the fast paths: the kept and prepared responses take opcode QUERY only, so a NOTIFY
//! reaches [`respond`] through the general path. Waking the task is one `Notify::notify_one`
//! on the handle the snapshot holds for the zone: no lock of the query path, no allocation.

use std::net::IpAddr;

use crate::snapshot::Snapshot;
use crate::wire::{CLASS_IN, NameBuf, Rcode, TYPE_SOA, read_qname};

use super::answer::Outcome;

/// The opcode of NOTIFY.
pub const OPCODE_NOTIFY: u8 = 4;

/// Whether `packet` is a request (QR=0) with opcode NOTIFY.
#[inline]
pub fn is_notify(packet: &[u8]) -> bool {
    packet.len() >= 12 && packet[2] & 0x80 == 0 && (packet[2] >> 3) & 0xF == OPCODE_NOTIFY
}

/// Answer a NOTIFY from `from` at `now` (Unix seconds, for TSIG; 0: the clock is read when the
/// NOTIFY is signed) into `out` (at least 512 bytes), waking the zone's task when it is accepted. A TSIG that does not verify is set in
/// `tsig_error` (for the metrics).
pub fn respond(
    snap: &Snapshot,
    packet: &[u8],
    from: IpAddr,
    now: u64,
    tsig_error: &mut Option<crate::wire::tsig::TsigError>,
    out: &mut [u8],
) -> Option<Outcome> {
    use crate::wire::tsig::{Signer, verify_request};
    let keys = &snap.tsig_keys;
    let signed_maybe = u16::from_be_bytes([packet[10], packet[11]]) > 0;
    let now = if now == 0 && signed_maybe {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    } else {
        now
    };
    let signed = if signed_maybe {
        match verify_request(packet, keys, now) {
            Ok(s) => s,
            Err(rejected) => {
                *tsig_error = Some(rejected.error);
                let len = rejected.write_response(packet, keys, out, now)?;
                return Some(Outcome {
                    len,
                    rcode: match rejected.error {
                        crate::wire::tsig::TsigError::FormErr => Rcode::FormErr,
                        _ => Rcode::NotAuth,
                    },
                    truncated: false,
                    zone: None,
                    qtype: 0,
                    ecs: false,
                });
            }
        }
    } else {
        None
    };
    let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
    let mut name = NameBuf::default();
    let question = (qdcount == 1)
        .then(|| read_qname(packet, 12, &mut name))
        .flatten()
        .and_then(|end| {
            let t = packet.get(end..end + 4)?;
            Some((
                end + 4,
                u16::from_be_bytes([t[0], t[1]]),
                u16::from_be_bytes([t[2], t[3]]),
            ))
        });
    let (rcode, question_end, qtype) = match question {
        None => (Rcode::FormErr, 12, 0),
        Some((end, qtype, qclass)) => {
            let zone = snap.secondaries.zone(name.wire());
            if end > out.len() {
                return None;
            }
            let asked = qclass == CLASS_IN && qtype == TYPE_SOA;
            match zone {
                Some(z) if asked => match z.key_index {
                    // A zone with a key: signed with it, from anywhere; nothing else.
                    Some(k) if signed.is_some_and(|s| s.key == k) => {
                        z.wake.notify_one();
                        (Rcode::NoError, end, qtype)
                    }
                    Some(_) => (Rcode::NotAuth, end, qtype),
                    None if z.primaries.iter().any(|p| same_host(*p, from)) => {
                        z.wake.notify_one();
                        (Rcode::NoError, end, qtype)
                    }
                    None => (Rcode::Refused, end, qtype),
                },
                _ => (Rcode::Refused, end, qtype),
            }
        }
    };
    out[..2].copy_from_slice(&packet[..2]);
    // QR, opcode NOTIFY, AA; RD copied; the RCODE.
    let flags: u16 = 0x8000
        | (u16::from(OPCODE_NOTIFY) << 11)
        | 0x0400
        | (u16::from(packet[2]) << 8 & 0x0100)
        | rcode as u16;
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    let qd: u16 = if question_end > 12 { 1 } else { 0 };
    out[4..12].copy_from_slice(&[0, qd as u8, 0, 0, 0, 0, 0, 0]);
    out[12..question_end].copy_from_slice(&packet[12..question_end]);
    let mut len = question_end;
    // A signed NOTIFY gets a signed answer (RFC 8945 §5.3).
    if let Some(s) = signed
        && let Some(key) = keys.get(s.key)
        && let Some(signed_len) = Signer::new(key, &s).sign(out, len, now)
    {
        len = signed_len;
    }
    Some(Outcome {
        len,
        rcode,
        truncated: false,
        zone: None,
        qtype,
        ecs: false,
    })
}

/// The same host, an IPv4 address and its IPv4-mapped IPv6 form alike.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::snapshot::secondary::{Secondaries, SecondaryZone};

    fn notify(id: u16, name: &[u8], qtype: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0x20, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m
    }

    fn snapshot(wake: Arc<tokio::sync::Notify>) -> Snapshot {
        Snapshot {
            catalog: Default::default(),
            edns_udp_payload: 1232,
            steering: None,
            tables: None,
            nsid: None,
            tsig_keys: Default::default(),
            secondaries: Arc::new(Secondaries {
                zones: Box::new([SecondaryZone {
                    origin: "example.net.".parse().unwrap(),
                    apex: b"\x07example\x03net\x00"[..].into(),
                    primaries: Box::new(["127.0.0.1".parse().unwrap()]),
                    key: None,
                    key_index: None,
                    wake,
                    replica: None,
                }]),
            }),
        }
    }

    #[test]
    fn a_primarys_notify_is_acknowledged_and_wakes_the_zone() {
        let wake = Arc::new(tokio::sync::Notify::new());
        let snap = snapshot(wake.clone());
        let q = notify(0x4242, b"\x07Example\x03net\x00", TYPE_SOA);
        let mut out = [0u8; 512];
        let o = respond(
            &snap,
            &q,
            "127.0.0.1".parse().unwrap(),
            0,
            &mut None,
            &mut out,
        )
        .unwrap();
        assert_eq!(o.rcode, Rcode::NoError);
        assert_eq!(&out[..2], &[0x42, 0x42]);
        assert_eq!(out[2], 0x80 | 0x20 | 0x04, "QR, opcode NOTIFY, AA");
        assert_eq!(&out[12..o.len], &q[12..]);
        // The wake-up is stored until the task waits.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), wake.notified())
                .await
                .expect("woken");
        });
    }

    #[test]
    fn other_sources_zones_and_types_are_refused() {
        let snap = snapshot(Arc::new(tokio::sync::Notify::new()));
        let mut out = [0u8; 512];
        let from_primary = "127.0.0.1".parse().unwrap();
        for (q, from) in [
            (
                notify(1, b"\x07example\x03net\x00", TYPE_SOA),
                "127.0.0.2".parse().unwrap(),
            ),
            (notify(2, b"\x07example\x03com\x00", TYPE_SOA), from_primary),
            (notify(3, b"\x07example\x03net\x00", 1), from_primary),
        ] {
            let o = respond(&snap, &q, from, 0, &mut None, &mut out).unwrap();
            assert_eq!(o.rcode, Rcode::Refused);
            assert_eq!(out[3] & 0xF, 5);
        }
        assert!(is_notify(&notify(1, b"\x00", TYPE_SOA)));
    }
}
