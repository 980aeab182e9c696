//! A read-only hash index keyed by lowercase wire names, built once per load.
//!
//! The query path looks names up with the hash the parser already computed while lowercasing
//! the question ([`NameBuf::hash`]), so a hit costs one probe and one short comparison, with no
//! hashing at all. Open addressing with linear probing at a load factor of at most one half;
//! the keys live in one byte arena, so a table is three allocations however many names it holds.

use crate::wire::{CHUNK, NameBuf, name_hash};

#[derive(Clone, Copy)]
struct Slot<V> {
    hash: u64,
    /// Offset of the key in the arena.
    key_at: u32,
    /// Key length; 0 marks an empty slot (a wire name is at least one byte).
    key_len: u16,
    value: V,
}

/// Lowercase wire name → `V`.
#[derive(Clone)]
pub struct NameIndex<V> {
    slots: Box<[Slot<V>]>,
    mask: usize,
    arena: Box<[u8]>,
    len: usize,
}

impl<V: Copy + Default> Default for NameIndex<V> {
    fn default() -> Self {
        NameIndex::new(std::iter::empty::<(&[u8], V)>())
    }
}

impl<V: Copy + Default> NameIndex<V> {
    /// Build from `(lowercase wire name, value)` pairs; of equal keys the first is kept.
    pub fn new<'k>(entries: impl IntoIterator<Item = (&'k [u8], V)>) -> Self {
        let entries: Vec<(&[u8], V)> = entries.into_iter().collect();
        let capacity = (entries.len() * 2).next_power_of_two().max(8);
        let empty = Slot {
            hash: 0,
            key_at: 0,
            key_len: 0,
            value: V::default(),
        };
        let mut slots = vec![empty; capacity].into_boxed_slice();
        let mask = capacity - 1;
        let mut arena = Vec::with_capacity(entries.iter().map(|e| e.0.len()).sum());
        let mut len = 0;
        for (key, value) in entries {
            assert!(
                !key.is_empty() && key.len() <= u16::MAX as usize,
                "wire names are 1 to 255 bytes"
            );
            let hash = name_hash(key);
            let mut i = hash as usize & mask;
            let mut duplicate = false;
            while slots[i].key_len != 0 {
                let s = &slots[i];
                if s.hash == hash && arena_key(&arena, s) == key {
                    duplicate = true;
                    break;
                }
                i = (i + 1) & mask;
            }
            if duplicate {
                continue;
            }
            slots[i] = Slot {
                hash,
                key_at: u32::try_from(arena.len()).expect("index keys fit in 4 GiB"),
                key_len: key.len() as u16,
                value,
            };
            arena.extend_from_slice(key);
            // Zero-padded to whole chunks, as a NameBuf holds it: compared a chunk at a time.
            arena.resize(arena.len().next_multiple_of(CHUNK), 0);
            len += 1;
        }
        NameIndex {
            slots,
            mask,
            arena: arena.into_boxed_slice(),
            len,
        }
    }
}

/// Byte equality for short keys without a call into `memcmp`: eight bytes at a time, the last
/// word overlapping the one before it (names are mostly 8 to 40 bytes: two to five compares).
#[inline(always)]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w64 = |s: &[u8], i: usize| u64::from_ne_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let w32 = |s: &[u8], i: usize| u32::from_ne_bytes(s[i..i + 4].try_into().expect("4 bytes"));
    match n {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => w32(a, 0) == w32(b, 0) && w32(a, n - 4) == w32(b, n - 4),
        _ => {
            let mut i = 0;
            while i + 8 < n {
                if w64(a, i) != w64(b, i) {
                    return false;
                }
                i += 8;
            }
            w64(a, n - 8) == w64(b, n - 8)
        }
    }
}

#[inline(always)]
fn chunk(c: &[u8]) -> u128 {
    u128::from_ne_bytes(c.try_into().expect("a whole chunk"))
}

fn arena_key<'a, V>(arena: &'a [u8], s: &Slot<V>) -> &'a [u8] {
    &arena[s.key_at as usize..s.key_at as usize + s.key_len as usize]
}

impl<V: Copy> NameIndex<V> {
    /// Look up a name whose [`name_hash`] is `hash`.
    #[inline]
    pub fn get_hashed(&self, key: &[u8], hash: u64) -> Option<V> {
        self.slot_of(hash, |s| same(arena_key(&self.arena, s), key))
            .map(|i| self.slots[i].value)
    }

    /// The slot with this hash whose key `eq` accepts, by linear probing from the hash.
    #[inline(always)]
    fn slot_of(&self, hash: u64, eq: impl Fn(&Slot<V>) -> bool) -> Option<usize> {
        let mut i = hash as usize & self.mask;
        loop {
            let s = &self.slots[i];
            if s.key_len == 0 {
                return None;
            }
            if s.hash == hash && eq(s) {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Look up any lowercase wire name.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<V> {
        if self.len == 0 {
            return None;
        }
        self.get_hashed(key, name_hash(key))
    }

    /// Look up a name as a [`NameBuf`] holds it: its hash is known and both it and the keys are
    /// zero-padded to whole chunks, so the compare is a few 16-byte words.
    #[inline(always)]
    pub fn get_name(&self, name: &NameBuf) -> Option<V> {
        let key = name.padded();
        let len = name.wire().len();
        self.slot_of(name.hash(), |s| {
            s.key_len as usize == len
                && self.arena[s.key_at as usize..]
                    .chunks_exact(CHUNK)
                    .zip(key.chunks_exact(CHUNK))
                    .all(|(a, b)| chunk(a) == chunk(b))
        })
        .map(|i| self.slots[i].value)
    }

    /// The value of `key`, to change in place.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let i = self.slot_of(name_hash(key), |s| same(arena_key(&self.arena, s), key))?;
        Some(&mut self.slots[i].value)
    }

    /// Bytes it holds on the heap.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot<V>>() + self.arena.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every `(key, value)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], V)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.key_len != 0)
            .map(|s| (arena_key(&self.arena, s), s.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `same` against `==` on every length up to 40 and every position of one differing byte.
    #[test]
    fn same_is_byte_equality() {
        for n in 0..=40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
            assert!(same(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same(&a, &b), "{n} {at}");
            }
            assert!(!same(&a, &[a.clone(), vec![0]].concat()), "{n} longer");
        }
    }
    use crate::wire::{Query, parse_query};

    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    /// The hash the parser computes while lowercasing equals the one the index stores, for
    /// every name length (each tail size of the last 8-byte word) and mixed case.
    #[test]
    fn parser_hash_matches_index_hash() {
        let mut names = vec![".".to_string()];
        for n in 1..=60 {
            let label: String = (0..n)
                .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
                .collect();
            names.push(format!("{label}.example."));
            names.push(format!("x.{label}.Ex-AMPLE.COM."));
        }
        names.push(format!(
            "{}.{}.{}.",
            "a".repeat(63),
            "B".repeat(63),
            "c".repeat(63)
        ));
        let lower: Vec<Vec<u8>> = names
            .iter()
            .map(|n| wire(&n.to_ascii_lowercase()))
            .collect();
        let index = NameIndex::new(lower.iter().enumerate().map(|(i, k)| (&k[..], i as u32)));
        assert_eq!(index.len(), names.len());
        for (i, n) in names.iter().enumerate() {
            let mut packet = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
            packet.extend_from_slice(&wire(&n.to_ascii_uppercase()));
            packet.extend_from_slice(&[0, 1, 0, 1]);
            let mut q = Query::default();
            parse_query(&packet, &mut q).unwrap();
            assert_eq!(q.qname.wire(), &lower[i][..], "{n}");
            assert_eq!(q.qname.hash(), name_hash(&lower[i]), "{n}");
            assert_eq!(index.get_name(&q.qname), Some(i as u32), "{n}");
            assert_eq!(index.get(&lower[i]), Some(i as u32));
        }
        assert_eq!(index.get(&wire("nope.example.")), None);
        assert_eq!(index.iter().count(), names.len());
    }

    #[test]
    fn first_of_equal_keys_wins_and_empty_finds_nothing() {
        let k = wire("a.example.");
        let index = NameIndex::new([(&k[..], 1u32), (&k[..], 2u32)]);
        assert_eq!(index.len(), 1);
        assert_eq!(index.get(&k), Some(1));
        let empty: NameIndex<u32> = NameIndex::default();
        assert_eq!(empty.get(&k), None);
        assert!(empty.is_empty());
    }

    /// Many keys whose hashes share their low bits still resolve: probing walks the run.
    #[test]
    fn full_table_runs_resolve() {
        let keys: Vec<Vec<u8>> = (0..5000).map(|i| wire(&format!("h{i}.example."))).collect();
        let index = NameIndex::new(keys.iter().enumerate().map(|(i, k)| (&k[..], i as u32)));
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(index.get(k), Some(i as u32));
        }
        assert_eq!(index.get(&wire("h5000.example.")), None);
    }
}
