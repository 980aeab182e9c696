//! A UDP worker's cache of whole responses, keyed by the query's bytes after its ID.
//!
//! Most queries repeat a few questions byte for byte but for the ID. The prepared path
//! ([`super::answer::respond_prepared`]) answers them from nothing but those bytes and the
//! catalog (no client address, no random draw, no health), so its response to the same bytes is
//! the same until the catalog changes. A hit here is one hash of the datagram, one compare and
//! one copy with the ID patched in: no header checks, no label walk, no name index.
//!
//! Only what the prepared path wrote goes in, never a service's answer. The cache belongs to one
//! worker (no locks, no sharing), holds the catalog it was filled from (so an old catalog's
//! address cannot come back as a new one's) and is emptied, by a generation count, whenever the
//! worker's snapshot has another catalog or EDNS payload size. Direct-mapped: a colliding or
//! random-name flood only evicts, and an eviction costs the prepared path, never a wrong answer.

use std::sync::Arc;

use super::answer::Outcome;
use crate::snapshot::Snapshot;
use crate::wire::{CHUNK, Rcode, chunk_at, name_hash};
use crate::zone::Catalog;

/// Number of entries (a power of two); 512 bytes each.
const ENTRIES: usize = 256;
/// Longest query (after the ID) that is cached; a whole number of chunks.
const KEY_MAX: usize = 64;
/// Longest response that is cached; a whole number of chunks.
const RESPONSE_MAX: usize = 416;

#[repr(C, align(64))]
struct Entry {
    hash: u64,
    generation: u64,
    len: u16,
    zone: u16,
    qtype: u16,
    /// 0: empty.
    key_len: u8,
    rcode: Rcode,
    /// The query from byte 2 on, zero-padded to whole chunks.
    key: [u8; KEY_MAX],
    response: [u8; RESPONSE_MAX],
}

impl Entry {
    const EMPTY: Entry = Entry {
        hash: 0,
        generation: 0,
        len: 0,
        zone: 0,
        qtype: 0,
        key_len: 0,
        rcode: Rcode::NoError,
        key: [0; KEY_MAX],
        response: [0; RESPONSE_MAX],
    };
}

/// Where a missed query's response would go, for [`ResponseCache::insert`].
#[derive(Clone, Copy, Debug)]
pub struct Miss {
    hash: u64,
}

pub struct ResponseCache {
    entries: Box<[Entry]>,
    /// Entries of another generation are empty.
    generation: u64,
    /// What the current generation was filled from.
    catalog: Option<Arc<Catalog>>,
    edns_udp_payload: u16,
}

impl Default for ResponseCache {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseCache {
    pub fn new() -> ResponseCache {
        ResponseCache {
            entries: (0..ENTRIES).map(|_| Entry::EMPTY).collect(),
            generation: 1,
            catalog: None,
            edns_udp_payload: 0,
        }
    }

    /// Answer from `snap` from now on: empty the cache if its responses could differ.
    #[inline(always)]
    pub fn follow(&mut self, snap: &Snapshot) {
        let same = self
            .catalog
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &snap.catalog));
        if !same || self.edns_udp_payload != snap.edns_udp_payload {
            self.catalog = Some(Arc::clone(&snap.catalog));
            self.edns_udp_payload = snap.edns_udp_payload;
            self.generation += 1;
        }
    }

    /// The cached response to `packet`, written into `out` with the packet's ID; on a miss,
    /// what [`ResponseCache::insert`] needs (`None` when the packet cannot be cached).
    #[inline(always)]
    pub fn answer(&self, packet: &[u8], out: &mut [u8]) -> Result<Outcome, Option<Miss>> {
        let key = match packet.get(2..) {
            Some(k) if !k.is_empty() && k.len() <= KEY_MAX => k,
            _ => return Err(None),
        };
        let hash = name_hash(key);
        let e = &self.entries[hash as usize % ENTRIES];
        let hit = e.hash == hash
            && e.generation == self.generation
            && e.key_len as usize == key.len()
            && (0..key.len()).step_by(CHUNK).all(|at| {
                chunk_at(key, at) == u128::from_le_bytes(e.key[at..at + CHUNK].try_into().unwrap())
            });
        let len = e.len as usize;
        let Some(out) = out.get_mut(..len.next_multiple_of(CHUNK)).filter(|_| hit) else {
            return Err(Some(Miss { hash }));
        };
        for (to, from) in out
            .chunks_exact_mut(CHUNK)
            .zip(e.response.chunks_exact(CHUNK))
        {
            to.copy_from_slice(from);
        }
        out[..2].copy_from_slice(&packet[..2]);
        Ok(Outcome {
            len,
            rcode: e.rcode,
            truncated: false,
            zone: Some(e.zone),
            qtype: e.qtype,
            ecs: false,
        })
    }

    /// Keep `response`, the prepared path's answer to `packet`, for the next identical query;
    /// whether it was kept.
    pub fn insert(&mut self, miss: Miss, packet: &[u8], response: &[u8], o: &Outcome) -> bool {
        let key = &packet[2..];
        let Some(zone) = o.zone else { return false };
        if key.len() > KEY_MAX || response.len() > RESPONSE_MAX || o.truncated || o.ecs {
            return false;
        }
        let e = &mut self.entries[miss.hash as usize % ENTRIES];
        e.hash = miss.hash;
        e.generation = self.generation;
        e.len = response.len() as u16;
        e.zone = zone;
        e.qtype = o.qtype;
        e.key_len = key.len() as u8;
        e.rcode = o.rcode;
        for at in (0..KEY_MAX).step_by(CHUNK) {
            let c = if at < key.len() { chunk_at(key, at) } else { 0 };
            e.key[at..at + CHUNK].copy_from_slice(&c.to_le_bytes());
        }
        e.response[..response.len()].copy_from_slice(response);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::answer::{Transport, respond_prepared};
    use crate::snapshot::Snapshot;
    use crate::wire::NameBuf;

    const ZONE: &str = "$ORIGIN example.org.\n$TTL 300\n\
        @ IN SOA ns1 hostmaster 1 3600 900 604800 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n\
        www IN A 192.0.2.10\nwww IN AAAA 2001:db8::10\n";

    fn snapshot(zone: &str, payload: u16) -> Snapshot {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.zone");
        std::fs::write(&path, zone).unwrap();
        let origin = hickory_proto::rr::Name::from_ascii("example.org.").unwrap();
        let z = crate::zone::load_zone(&origin, &path).unwrap();
        Snapshot {
            catalog: Arc::new(Catalog::new(vec![z])),
            edns_udp_payload: payload,
            steering: None,
            tables: None,
            nsid: None,
            secondaries: Default::default(),
            tsig_keys: Default::default(),
        }
    }

    fn query(id: u16, name: &[u8], qtype: u16, edns: bool) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns as u8]);
        q.extend_from_slice(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        if edns {
            q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0]);
        }
        q
    }

    /// The prepared path's answer, then what the cache does with the same packet.
    fn prepared(snap: &Snapshot, packet: &[u8]) -> (Outcome, Vec<u8>) {
        let mut out = vec![0u8; 4096];
        let o = respond_prepared(
            snap,
            packet,
            Transport::Udp,
            &mut NameBuf::default(),
            &mut out,
        )
        .expect("a prepared answer");
        out.truncate(o.len);
        (o, out)
    }

    fn cached(c: &ResponseCache, packet: &[u8]) -> Option<(Outcome, Vec<u8>)> {
        let mut out = vec![0xAAu8; 4096];
        let o = c.answer(packet, &mut out).ok()?;
        out.truncate(o.len);
        Some((o, out))
    }

    #[test]
    fn a_repeated_query_gets_the_same_bytes_with_its_own_id() {
        let snap = snapshot(ZONE, 1232);
        let mut c = ResponseCache::new();
        c.follow(&snap);
        for (name, qtype, edns) in [
            (&b"\x03www\x07example\x03org\x00"[..], 1, false),
            (b"\x03WwW\x07example\x03org\x00", 28, true),
            (b"\x04nope\x07example\x03org\x00", 1, false), // NXDOMAIN, prepared too
            (b"\x07example\x03org\x00", 2, true),
        ] {
            let first = query(0x1111, name, qtype, edns);
            let Err(Some(miss)) = c.answer(&first, &mut [0u8; 4096]) else {
                panic!("hit before any insert");
            };
            let (o, bytes) = prepared(&snap, &first);
            c.insert(miss, &first, &bytes, &o);
            for id in [0x1111, 0x2222, 0xFFFF] {
                let again = query(id, name, qtype, edns);
                let want = prepared(&snap, &again);
                assert_eq!(cached(&c, &again), Some(want), "{name:?} {qtype} {id:x}");
            }
        }
    }

    #[test]
    fn any_other_byte_misses() {
        let snap = snapshot(ZONE, 1232);
        let mut c = ResponseCache::new();
        c.follow(&snap);
        let q = query(7, b"\x03www\x07example\x03org\x00", 1, true);
        let Err(Some(miss)) = c.answer(&q, &mut [0u8; 4096]) else {
            panic!()
        };
        let (o, bytes) = prepared(&snap, &q);
        c.insert(miss, &q, &bytes, &o);
        assert!(cached(&c, &q).is_some());
        for at in 2..q.len() {
            for bit in 0..8 {
                let mut other = q.clone();
                other[at] ^= 1 << bit;
                assert!(cached(&c, &other).is_none(), "byte {at} bit {bit}");
            }
        }
        // Shorter and longer packets (a trailing byte) miss too.
        assert!(cached(&c, &q[..q.len() - 1]).is_none());
        assert!(cached(&c, &[&q[..], &[0]].concat()).is_none());
    }

    #[test]
    fn another_catalog_or_payload_empties_it() {
        let snap = snapshot(ZONE, 1232);
        let mut c = ResponseCache::new();
        c.follow(&snap);
        let q = query(7, b"\x03www\x07example\x03org\x00", 1, true);
        let fill = |c: &mut ResponseCache, snap: &Snapshot| {
            let Err(Some(miss)) = c.answer(&q, &mut [0u8; 4096]) else {
                panic!()
            };
            let (o, bytes) = prepared(snap, &q);
            c.insert(miss, &q, &bytes, &o);
        };
        fill(&mut c, &snap);
        c.follow(&snap);
        assert!(cached(&c, &q).is_some(), "the same snapshot keeps it");
        // Same zone text, new catalog (a reload): emptied.
        let reloaded = snapshot(ZONE, 1232);
        c.follow(&reloaded);
        assert!(cached(&c, &q).is_none());
        fill(&mut c, &reloaded);
        assert!(cached(&c, &q).is_some());
        // The server's payload size is in every OPT it writes.
        let resized = Snapshot {
            edns_udp_payload: 4096,
            ..reloaded.clone()
        };
        c.follow(&resized);
        assert!(cached(&c, &q).is_none());
    }

    #[test]
    fn what_cannot_be_cached_is_not() {
        let snap = snapshot(ZONE, 1232);
        let mut c = ResponseCache::new();
        c.follow(&snap);
        // A query longer than the key room: no slot at all.
        let long = [
            b"\x3f".as_slice(),
            &[b'a'; 63],
            b"\x03www\x07example\x03org\x00",
        ]
        .concat();
        assert!(matches!(
            c.answer(&query(1, &long, 1, false), &mut [0u8; 4096]),
            Err(None)
        ));
        assert!(matches!(c.answer(&[0x12], &mut [0u8; 4096]), Err(None)));
        assert!(matches!(
            c.answer(&[0x12, 0x34], &mut [0u8; 4096]),
            Err(None)
        ));
        // Truncated, ECS-dependent or zone-less outcomes are not kept.
        let q = query(7, b"\x03www\x07example\x03org\x00", 1, false);
        let (o, bytes) = prepared(&snap, &q);
        for bad in [
            Outcome {
                truncated: true,
                ..o
            },
            Outcome { ecs: true, ..o },
            Outcome { zone: None, ..o },
        ] {
            let Err(Some(miss)) = c.answer(&q, &mut [0u8; 4096]) else {
                panic!()
            };
            c.insert(miss, &q, &bytes, &bad);
            assert!(cached(&c, &q).is_none(), "{bad:?}");
        }
        // Nor is a response longer than the room.
        let Err(Some(miss)) = c.answer(&q, &mut [0u8; 4096]) else {
            panic!()
        };
        c.insert(miss, &q, &[0u8; RESPONSE_MAX + 1], &o);
        assert!(cached(&c, &q).is_none());
    }
}
