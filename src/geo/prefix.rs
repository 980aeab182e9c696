//! CIDR prefix tables: longest-prefix match, and the narrowest ECS scope that stays truthful.
//!
//! A table is built once from (prefix, value) pairs and then only read. Per address family it
//! keeps one sorted vector per distinct prefix length (longest-prefix match is one binary search
//! per length, longest first) and one vector of every entry sorted by address (for
//! [`PrefixTable::scope_floor`]). Nothing allocates after construction.

use std::net::IpAddr;

use ipnet::IpNet;

/// An immutable set of CIDR prefixes, each with a small value (a region index).
#[derive(Debug, Default, Clone)]
pub(crate) struct PrefixTable {
    v4: Family,
    v6: Family,
}

#[derive(Debug, Clone)]
struct Family {
    /// Address width in bits: 32 or 128.
    width: u8,
    /// (prefix length, entries of that length as (masked address, value) sorted by address),
    /// longest length first.
    by_len: Vec<(u8, Vec<(u128, u16)>)>,
    /// Every entry as (masked address, prefix length), sorted.
    all: Vec<(u128, u8)>,
}

impl Default for Family {
    fn default() -> Self {
        Family {
            width: 128,
            by_len: Vec::new(),
            all: Vec::new(),
        }
    }
}

/// Two entries of one table with the same prefix and different values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub prefix: IpNet,
    pub first: u16,
    pub second: u16,
}

impl PrefixTable {
    /// Builds a table. Host bits of each prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`); the
    /// same prefix twice with the same value is kept once, with different values is a conflict.
    pub(crate) fn new(entries: &[(IpNet, u16)]) -> Result<PrefixTable, Vec<Conflict>> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for &(net, value) in entries {
            match net.trunc() {
                IpNet::V4(n) => v4.push((n.prefix_len(), u128::from(u32::from(n.addr())), value)),
                IpNet::V6(n) => v6.push((n.prefix_len(), u128::from(n.addr()), value)),
            }
        }
        let mut conflicts = Vec::new();
        let v4 = Family::build(32, v4, &mut conflicts);
        let v6 = Family::build(128, v6, &mut conflicts);
        if conflicts.is_empty() {
            Ok(PrefixTable { v4, v6 })
        } else {
            Err(conflicts)
        }
    }

    /// The value and prefix length of the longest prefix containing `ip`.
    pub(crate) fn longest_match(&self, ip: IpAddr) -> Option<(u16, u8)> {
        let (fam, a) = self.family(ip);
        fam.by_len.iter().find_map(|(len, entries)| {
            let key = mask(a, *len, fam.width);
            entries
                .binary_search_by_key(&key, |e| e.0)
                .ok()
                .map(|i| (entries[i].1, *len))
        })
    }

    /// The shortest prefix length, at least `len`, whose network around `ip` holds no entry of
    /// this table that does not also contain `ip`.
    ///
    /// An answer decided for `ip`'s `/len` network may be cached by a resolver for that whole
    /// network (the ECS scope). When a more specific entry sits inside it, clients in that entry
    /// get another answer, so the scope must be narrowed until the entry falls outside: to one
    /// bit past the common prefix of `ip` and the entry. Cost: a binary search plus one step per
    /// entry inside the `/len` network.
    pub(crate) fn scope_floor(&self, ip: IpAddr, len: u8) -> u8 {
        let (fam, a) = self.family(ip);
        let len = len.min(fam.width);
        let start = mask(a, len, fam.width);
        let end = start | host_mask(len, fam.width);
        let from = fam.all.partition_point(|e| e.0 < start);
        let mut scope = len;
        for &(addr, elen) in fam.all[from..].iter().take_while(|e| e.0 <= end) {
            if mask(a, elen, fam.width) == addr {
                continue; // contains ip: it does not split the network
            }
            let common = ((a ^ addr).leading_zeros() - (128 - u32::from(fam.width))) as u8;
            scope = scope.max(common + 1);
        }
        scope
    }

    fn family(&self, ip: IpAddr) -> (&Family, u128) {
        match ip {
            IpAddr::V4(a) => (&self.v4, u128::from(u32::from(a))),
            IpAddr::V6(a) => (&self.v6, u128::from(a)),
        }
    }
}

impl Family {
    fn build(width: u8, mut entries: Vec<(u8, u128, u16)>, conflicts: &mut Vec<Conflict>) -> Self {
        entries.sort_unstable_by_key(|&(len, addr, _)| (std::cmp::Reverse(len), addr));
        let mut by_len: Vec<(u8, Vec<(u128, u16)>)> = Vec::new();
        for (len, addr, value) in entries {
            match by_len.last_mut() {
                Some((l, v)) if *l == len => match v.last() {
                    Some(&(a, first)) if a == addr => {
                        if first != value {
                            conflicts.push(Conflict {
                                prefix: to_net(addr, len, width),
                                first,
                                second: value,
                            });
                        }
                    }
                    _ => v.push((addr, value)),
                },
                _ => by_len.push((len, vec![(addr, value)])),
            }
        }
        let mut all: Vec<(u128, u8)> = by_len
            .iter()
            .flat_map(|(len, v)| v.iter().map(move |&(a, _)| (a, *len)))
            .collect();
        all.sort_unstable();
        Family { width, by_len, all }
    }
}

/// `a` with all but the first `len` of `width` bits cleared.
fn mask(a: u128, len: u8, width: u8) -> u128 {
    a & !host_mask(len, width)
}

/// The host bits of a `/len` network in a `width`-bit family.
fn host_mask(len: u8, width: u8) -> u128 {
    let host = u32::from(width.saturating_sub(len));
    if host == 0 {
        0
    } else if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    }
}

fn to_net(addr: u128, len: u8, width: u8) -> IpNet {
    let ip = if width == 32 {
        IpAddr::V4((addr as u32).into())
    } else {
        IpAddr::V6(addr.into())
    };
    IpNet::new(ip, len).expect("length within the family")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, u16)]) -> PrefixTable {
        let v: Vec<(IpNet, u16)> = entries
            .iter()
            .map(|(n, v)| (n.parse().unwrap(), *v))
            .collect();
        PrefixTable::new(&v).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table(&[
            ("10.0.0.0/8", 1),
            ("10.1.0.0/16", 2),
            ("10.1.2.0/24", 3),
            ("0.0.0.0/0", 9),
        ]);
        assert_eq!(t.longest_match(ip("10.1.2.3")), Some((3, 24)));
        assert_eq!(t.longest_match(ip("10.1.3.3")), Some((2, 16)));
        assert_eq!(t.longest_match(ip("10.2.0.1")), Some((1, 8)));
        assert_eq!(t.longest_match(ip("192.0.2.1")), Some((9, 0)));
        assert_eq!(t.longest_match(ip("2001:db8::1")), None);
        let t6 = table(&[("2001:db8::/32", 1), ("2001:db8:1::/48", 2), ("::/0", 3)]);
        assert_eq!(t6.longest_match(ip("2001:db8:1::5")), Some((2, 48)));
        assert_eq!(t6.longest_match(ip("2001:db8:2::5")), Some((1, 32)));
        assert_eq!(t6.longest_match(ip("2001:db9::")), Some((3, 0)));
        assert_eq!(t6.longest_match(ip("10.0.0.1")), None);
    }

    #[test]
    fn host_bits_are_ignored_and_conflicts_reported() {
        let t = table(&[("10.1.2.3/8", 1), ("10.0.0.0/8", 1)]);
        assert_eq!(t.longest_match(ip("10.200.0.0")), Some((1, 8)));
        let e = PrefixTable::new(&[
            ("10.0.0.0/8".parse().unwrap(), 1),
            ("10.9.9.9/8".parse().unwrap(), 2),
        ])
        .unwrap_err();
        assert_eq!(
            e,
            vec![Conflict {
                prefix: "10.0.0.0/8".parse().unwrap(),
                first: 1,
                second: 2
            }]
        );
    }

    #[test]
    fn scope_is_narrowed_around_more_specific_entries() {
        let t = table(&[("10.1.2.0/24", 1), ("10.1.0.0/16", 2)]);
        // Decided at /8 (say, by the database): 10.1.0.0/16 lies inside 10.0.0.0/8 and does not
        // contain 10.200.0.1; they share 8 bits, so the scope must be /9.
        assert_eq!(t.scope_floor(ip("10.200.0.1"), 8), 9);
        // 10.1.3.1 is in 10.1.0.0/16 (contains it, no split) but not in 10.1.2.0/24: common
        // prefix with 10.1.2.0 is 23 bits, so /24.
        assert_eq!(t.scope_floor(ip("10.1.3.1"), 16), 24);
        // Nothing inside the network: the decided length stands.
        assert_eq!(t.scope_floor(ip("192.0.2.1"), 20), 20);
        assert_eq!(t.scope_floor(ip("10.1.2.7"), 24), 24);
        // Decided at /0: any entry at all narrows it.
        assert_eq!(t.scope_floor(ip("192.0.2.1"), 0), 1);
        let t6 = table(&[("2001:db8:1::/48", 1)]);
        assert_eq!(t6.scope_floor(ip("2001:db8:2::1"), 32), 47);
        assert_eq!(t6.scope_floor(ip("10.0.0.1"), 0), 0);
        assert_eq!(PrefixTable::default().longest_match(ip("10.0.0.1")), None);
    }
}
