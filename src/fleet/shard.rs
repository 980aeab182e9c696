//! Probe sharding (`[fleet] probes_per_endpoint = k`): which instances probe which endpoint.
//!
//! Each endpoint is probed by the `k` live instances (this one and the peers whose data is
//! fresh) with the highest rendezvous score, a stable 64-bit hash of (endpoint name, node
//! name): [`chosen`], [`assigned`]. Every instance works the same answer out from the same
//! names, with nothing to coordinate; when an instance leaves, only the endpoints it probed
//! move (each to the next-highest score), and when one joins, only those it now wins move to it.
//! The hash is FNV-1a with a final mix, written out here so that it never changes with the
//! Rust version (std's `DefaultHasher` promises no such thing): a fleet of mixed builds agrees.
//!
//! [`Assignment`] is one instance's decision at one moment: the endpoints assigned to it, plus
//! any endpoint none of whose chosen peers reports probing it yet (a hand-over not yet
//! complete: the instance that held it keeps probing until the new one has a verdict; or a peer
//! that sees the fleet otherwise): probing it too is the safe side. Only a chosen peer's report
//! counts, so two instances that are both not chosen cannot each stop because the other probes.
//! Pure: the fleet builds it from its settings and peers (`Fleet::assignment`), the server
//! hands it to the monitor.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The rendezvous score of `node` for `endpoint`: FNV-1a 64 over the endpoint name's length (8
/// bytes, little-endian), the endpoint name and the node name, then MurmurHash3's 64-bit
/// finaliser so that every bit of the score depends on every input byte. Stable: the same on
/// every build and platform.
pub fn score(endpoint: &str, node: &str) -> u64 {
    let len = (endpoint.len() as u64).to_le_bytes();
    let bytes = len.iter().chain(endpoint.as_bytes()).chain(node.as_bytes());
    let mut h = bytes.fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Whether `a` outranks `b` for `endpoint`: the higher score, ties to the lower name.
fn outranks(endpoint: &str, a: &str, b: &str) -> bool {
    (score(endpoint, a), std::cmp::Reverse(a)) > (score(endpoint, b), std::cmp::Reverse(b))
}

/// The `k` of `nodes` that probe `endpoint`, best first (all of them when there are `k` or
/// fewer). `nodes` should hold each name once.
pub fn chosen<'a>(endpoint: &str, nodes: &'a [String], k: usize) -> Vec<&'a str> {
    let mut ranked: Vec<(u64, &str)> = nodes
        .iter()
        .map(|n| (score(endpoint, n), n.as_str()))
        .collect();
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    ranked.into_iter().take(k).map(|(_, n)| n).collect()
}

/// Whether `me` is among the `k` of `nodes` (and `me`, whether listed or not) that probe
/// `endpoint`. With `me` alone, always.
pub fn assigned(endpoint: &str, nodes: &[String], k: usize, me: &str) -> bool {
    let better = nodes
        .iter()
        .filter(|n| n.as_str() != me && outranks(endpoint, n, me))
        .count();
    better < k
}

/// One instance's probing at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    k: usize,
    me: String,
    /// The live nodes, this one included, sorted, each once.
    nodes: Vec<String>,
    /// By fresh peer: the endpoints it reports probing (with a verdict).
    probed: HashMap<String, HashSet<String>>,
}

impl Assignment {
    /// For the node `me` with `k` probes per endpoint and the fresh peers `peers`: each one's
    /// node name and the endpoints it reports probing.
    pub fn new(
        k: NonZeroU32,
        me: &str,
        peers: impl IntoIterator<Item = (String, HashSet<String>)>,
    ) -> Assignment {
        let probed: HashMap<String, HashSet<String>> =
            peers.into_iter().filter(|(n, _)| n != me).collect();
        let mut nodes: Vec<String> = probed.keys().cloned().collect();
        nodes.push(me.to_string());
        nodes.sort_unstable();
        Assignment {
            k: k.get() as usize,
            me: me.to_string(),
            nodes,
            probed,
        }
    }

    /// Probes per endpoint.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The live nodes, this one included, sorted.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Whether rendezvous hashing gives `endpoint` to this instance.
    pub fn assigned(&self, endpoint: &str) -> bool {
        assigned(endpoint, &self.nodes, self.k, &self.me)
    }

    /// Whether this instance probes `endpoint`: assigned to it, or none of the peers it is
    /// assigned to reports probing it.
    pub fn probes(&self, endpoint: &str) -> bool {
        let chosen = chosen(endpoint, &self.nodes, self.k);
        chosen.contains(&self.me.as_str())
            || !chosen
                .iter()
                .any(|n| self.probed.get(*n).is_some_and(|p| p.contains(endpoint)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn endpoints() -> Vec<String> {
        (0..1000).map(|i| format!("web-{i}")).collect()
    }

    #[test]
    fn scores_are_stable() {
        // Fixed values: a change of the hash would split a fleet of mixed builds.
        let a = score("web-1", "eu-1");
        assert_eq!(a, score("web-1", "eu-1"));
        assert_ne!(a, score("web-1", "eu-2"));
        assert_ne!(a, score("web-2", "eu-1"));
        // The endpoint's length is hashed: the split between the names counts.
        assert_ne!(score("ab", "c"), score("a", "bc"));
        assert_eq!(score("web-1", "eu-1"), GOLDEN);
    }

    /// `score("web-1", "eu-1")`, as this code and an independent Python transcription of it
    /// compute it.
    const GOLDEN: u64 = 0x922a_cb35_4af9_ca5a;

    #[test]
    fn each_endpoint_gets_k_nodes_and_the_same_everywhere() {
        let all = nodes(&["eu-1", "us-1", "ap-1"]);
        for e in endpoints().iter().take(100) {
            for k in 1..=4 {
                let c = chosen(e, &all, k);
                assert_eq!(c.len(), k.min(3), "{e}");
                // Every node agrees with the list, and order of the input does not matter.
                for n in &all {
                    assert_eq!(assigned(e, &all, k, n), c.contains(&n.as_str()), "{e} {n}");
                }
                let mut reversed = all.clone();
                reversed.reverse();
                assert_eq!(chosen(e, &reversed, k), c);
            }
        }
    }

    #[test]
    fn load_is_balanced_over_1000_endpoints() {
        let all = nodes(&["eu-1", "us-1", "ap-1"]);
        for (k, each) in [(1, 1000 / 3), (2, 2000 / 3)] {
            for n in &all {
                let held = endpoints()
                    .iter()
                    .filter(|e| assigned(e, &all, k, n))
                    .count();
                // Binomial: sd is about 15; 60 is four of them.
                assert!(
                    held.abs_diff(each) <= 60,
                    "k={k}: {n} holds {held}, want ~{each}"
                );
            }
        }
    }

    #[test]
    fn only_the_leavers_endpoints_move() {
        let three = nodes(&["eu-1", "us-1", "ap-1"]);
        let two = nodes(&["eu-1", "ap-1"]);
        for k in [1, 2] {
            let mut moved = 0;
            for e in endpoints() {
                let before = chosen(&e, &three, k);
                let after = chosen(&e, &two, k);
                // Whoever held it and is still there holds it still.
                for n in before.iter().filter(|n| **n != "us-1") {
                    assert!(after.contains(n), "k={k}: {e} moved away from {n}");
                }
                if before.contains(&"us-1") {
                    moved += 1;
                } else {
                    assert_eq!(before, after, "k={k}: {e} moved without us-1");
                }
            }
            assert!(moved > 0);
        }
        // And back: when us-1 returns it takes the same endpoints again.
        for e in endpoints() {
            assert_eq!(
                assigned(&e, &three, 1, "us-1"),
                chosen(&e, &three, 1) == ["us-1"]
            );
        }
    }

    #[test]
    fn alone_an_instance_probes_everything() {
        let k1 = NonZeroU32::new(1).unwrap();
        let alone = Assignment::new(k1, "eu-1", []);
        assert_eq!(alone.nodes(), ["eu-1"]);
        assert!(
            endpoints()
                .iter()
                .all(|e| alone.probes(e) && alone.assigned(e))
        );
        assert!(endpoints().iter().all(|e| assigned(e, &[], 1, "eu-1")));
    }

    #[test]
    fn an_endpoint_its_chosen_peers_do_not_probe_is_probed_here() {
        let k1 = NonZeroU32::new(1).unwrap();
        let everything: HashSet<String> = endpoints().into_iter().collect();
        let peers = |us: HashSet<String>, ap: HashSet<String>| {
            [("us-1".to_string(), us), ("ap-1".to_string(), ap)]
        };
        let a = Assignment::new(k1, "eu-1", peers(everything.clone(), everything.clone()));
        assert_eq!(a.nodes(), ["ap-1", "eu-1", "us-1"]);
        let mine = endpoints().iter().filter(|e| a.probes(e)).count();
        assert!(mine.abs_diff(333) <= 60, "{mine}");
        assert!(endpoints().iter().all(|e| a.probes(e) == a.assigned(e)));
        // An endpoint given to a peer that does not report it yet (a hand-over: no verdict
        // there yet) is probed here too, whichever other peer probes it.
        let theirs = endpoints()
            .into_iter()
            .find(|e| chosen(e, a.nodes(), 1) == ["us-1"])
            .unwrap();
        let mut gap = everything.clone();
        gap.remove(&theirs);
        let b = Assignment::new(k1, "eu-1", peers(gap, everything.clone()));
        assert!(b.probes(&theirs) && !b.assigned(&theirs));
        assert_eq!(endpoints().iter().filter(|e| b.probes(e)).count(), mine + 1);
        // Peers that report nothing (just started): everything is probed here.
        let c = Assignment::new(k1, "eu-1", peers(HashSet::new(), HashSet::new()));
        assert!(endpoints().iter().all(|e| c.probes(e)));
    }
}
