//! Graded failover: how much of a client region's traffic each ranked pool takes.
//!
//! Losing part of a region should move part of its traffic, not all of it at once onto a
//! neighbour that then overloads: failure is graded, not binary. The rule follows
//! Envoy: priority levels with an overprovisioning factor, and inside a level a split by capacity.
//!
//! # Definitions (per pool, over the endpoints of the serving tier, see [`crate::policy`])
//! - capacity `C` = sum of the endpoints' capacities (a capacity of 0 counts as 1);
//! - healthy capacity `H` = the same sum over the endpoints that serve;
//! - healthy fraction `h = H / C` (0 for a pool without endpoints in the tier);
//! - keep `k = min(1, h × OF)`: the share of its clients a pool keeps ([`PoolCapacity::keep`]);
//! - spare capacity `S = H × k` ([`PoolCapacity::spare`]): the capacity it can lend, discounted by
//!   how much of its own load it is already shedding.
//!
//! # The rule
//! 1. Ranked pools are grouped into *levels*: consecutive pools with equal rank scores (the pools
//!    the policy cannot tell apart, such as the pools of one fallback region under `geo`). With
//!    strict scores every pool is its own level.
//! 2. A level's keep is computed like a pool's over the level's summed `C` and `H`.
//! 3. Levels take traffic in rank order: with `remaining` starting at 1, a level takes
//!    `min(remaining, k_level)` and `remaining` shrinks by that much. So a healthy first level keeps
//!    everything; one at healthy fraction `h < 1/OF` keeps `h × OF` and the rest spills to the next
//!    levels, as far down as needed.
//! 4. Inside a level, its share is split between its pools in proportion to their spare capacity.
//! 5. If traffic remains after the last level (the levels' keeps sum to less than 1), every share is
//!    scaled up by the same factor so that they sum to 1: traffic only goes where endpoints serve,
//!    in proportion to what each could keep (Envoy's normalisation).
//!
//! Shares therefore sum to 1 whenever any endpoint serves, and are all 0 otherwise. Only
//! arithmetic on the inputs, in a fixed order: the same inputs give the same shares.
//!
//! Example (`OF` 1.4): pool A has 10 endpoints of capacity 1 and 4 are down: `h = 0.6`, so A keeps
//! `min(1, 0.84) = 0.84`. If B (10 healthy) and C (5 healthy) form the next level, it takes the
//! remaining 0.16, split 10 : 5 by spare capacity: B 0.1067, C 0.0533. If B and C are separate
//! levels (B ranked before C), B alone takes 0.16.

/// Capacity of one pool over the endpoints of the serving tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolCapacity {
    /// Sum of the capacities of the pool's endpoints in the tier.
    pub total: u64,
    /// Sum of the capacities of those that serve.
    pub healthy: u64,
}

impl PoolCapacity {
    /// `H / C`, or 0 for a pool without endpoints in the tier.
    pub fn healthy_fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.healthy as f64 / self.total as f64
        }
    }

    /// `min(1, h × OF)`: the share of its own clients the pool keeps.
    pub fn keep(&self, overprovisioning: f64) -> f64 {
        (self.healthy_fraction() * usable_factor(overprovisioning)).min(1.0)
    }

    /// `H × keep`: the capacity the pool can lend to traffic spilled from earlier levels.
    pub fn spare(&self, overprovisioning: f64) -> f64 {
        self.healthy as f64 * self.keep(overprovisioning)
    }
}

/// The overprovisioning factor actually used: config validates 1..=10; anything below 1 or not a
/// number counts as 1, so a fully healthy pool always keeps all its traffic.
fn usable_factor(overprovisioning: f64) -> f64 {
    if overprovisioning.is_finite() && overprovisioning >= 1.0 {
        overprovisioning
    } else {
        1.0
    }
}

/// Shares of traffic for pools in rank order.
///
/// `capacity[i]` and `levels[i]` describe the `i`-th ranked pool; pools with equal consecutive
/// `levels` values form one level. Returns one share per pool, in the same order; see the module
/// docs for the rule.
pub fn shares(capacity: &[PoolCapacity], levels: &[usize], overprovisioning: f64) -> Vec<f64> {
    debug_assert_eq!(capacity.len(), levels.len());
    let mut out = vec![0.0; capacity.len()];
    let mut remaining = 1.0f64;
    let mut start = 0;
    while start < capacity.len() {
        let mut end = start + 1;
        while end < capacity.len() && levels[end] == levels[start] {
            end += 1;
        }
        let level = capacity[start..end]
            .iter()
            .fold(PoolCapacity::default(), |acc, c| PoolCapacity {
                total: acc.total + c.total,
                healthy: acc.healthy + c.healthy,
            });
        let take = remaining.min(level.keep(overprovisioning));
        if take > 0.0 {
            let spare: f64 = capacity[start..end]
                .iter()
                .map(|c| c.spare(overprovisioning))
                .sum();
            for i in start..end {
                out[i] = take * capacity[i].spare(overprovisioning) / spare;
            }
            remaining -= take;
        }
        start = end;
    }
    let total: f64 = out.iter().sum();
    if remaining > 0.0 && total > 0.0 {
        for s in &mut out {
            *s /= total;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(total: u64, healthy: u64) -> PoolCapacity {
        PoolCapacity { total, healthy }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn healthy_first_pool_keeps_everything() {
        let s = shares(&[cap(10, 10), cap(10, 10)], &[0, 1], 1.4);
        assert_eq!(s, vec![1.0, 0.0]);
        // Losing less than 1 - 1/OF of the capacity moves nothing.
        let s = shares(&[cap(10, 8), cap(10, 10)], &[0, 1], 1.4);
        assert_eq!(s, vec![1.0, 0.0]);
    }

    #[test]
    fn partial_loss_spills_to_the_next_level_split_by_spare_capacity() {
        // A: 10 endpoints, 4 down → keeps 0.84; B (10) and C (5) share the next level.
        let s = shares(&[cap(10, 6), cap(10, 10), cap(5, 5)], &[0, 1, 1], 1.4);
        assert!(close(s[0], 0.84), "{s:?}");
        assert!(close(s[1], 0.16 * 10.0 / 15.0), "{s:?}");
        assert!(close(s[2], 0.16 * 5.0 / 15.0), "{s:?}");
        assert!(close(s.iter().sum::<f64>(), 1.0));
    }

    #[test]
    fn separate_levels_take_spill_in_rank_order() {
        let s = shares(&[cap(10, 6), cap(10, 10), cap(5, 5)], &[0, 1, 2], 1.4);
        assert!(
            close(s[0], 0.84) && close(s[1], 0.16) && s[2] == 0.0,
            "{s:?}"
        );
        // A down entirely, B at h = 0.5 keeps 0.7, C takes the remaining 0.3.
        let s = shares(&[cap(10, 0), cap(10, 5), cap(5, 5)], &[0, 1, 2], 1.4);
        assert!(s[0] == 0.0 && close(s[1], 0.7) && close(s[2], 0.3), "{s:?}");
    }

    #[test]
    fn degraded_pool_in_a_level_gets_less_than_its_healthy_capacity() {
        // B: 10 endpoints, 5 down: keep 0.7, spare 3.5. C: 5 healthy, spare 5.
        let s = shares(&[cap(10, 6), cap(10, 5), cap(5, 5)], &[0, 1, 1], 1.4);
        assert!(
            close(s[1], 0.16 * 3.5 / 8.5) && close(s[2], 0.16 * 5.0 / 8.5),
            "{s:?}"
        );
    }

    #[test]
    fn not_enough_health_anywhere_is_normalised() {
        // A keeps 0.7, B 0.14, C has nothing: 0.84 in all, scaled to 1.
        let s = shares(&[cap(10, 5), cap(10, 1), cap(10, 0)], &[0, 1, 2], 1.4);
        assert!(
            close(s[0], 0.7 / 0.84) && close(s[1], 0.14 / 0.84) && s[2] == 0.0,
            "{s:?}"
        );
    }

    #[test]
    fn nothing_serving_gives_no_shares() {
        assert_eq!(
            shares(&[cap(3, 0), cap(0, 0)], &[0, 1], 1.4),
            vec![0.0, 0.0]
        );
        assert_eq!(shares(&[], &[], 1.4), Vec::<f64>::new());
    }

    #[test]
    fn factor_below_one_counts_as_one() {
        assert_eq!(cap(4, 4).keep(0.5), 1.0);
        assert_eq!(cap(4, 2).keep(f64::NAN), 0.5);
    }

    /// Property: for random capacities and levels, shares are non-negative, zero where nothing
    /// serves, sum to 1 whenever anything serves, and are reproducible.
    #[test]
    fn shares_properties_hold_for_random_inputs() {
        let mut rng = crate::policy::Rng::new(7);
        for _ in 0..5_000 {
            let n = 1 + (rng.next_u64() % 6) as usize;
            let mut caps = Vec::new();
            let mut levels = Vec::new();
            let mut level = 0;
            for i in 0..n {
                let total = rng.next_u64() % 12;
                let healthy = if total == 0 {
                    0
                } else {
                    rng.next_u64() % (total + 1)
                };
                caps.push(cap(total, healthy));
                if i > 0 && !rng.next_u64().is_multiple_of(3) {
                    level += 1;
                }
                levels.push(level);
            }
            let of = 1.0 + (rng.next_u64() % 10) as f64 / 10.0;
            let s = shares(&caps, &levels, of);
            let any = caps.iter().any(|c| c.healthy > 0);
            let sum: f64 = s.iter().sum();
            assert!(s.iter().all(|&x| x >= 0.0));
            assert!(s.iter().zip(&caps).all(|(&x, c)| c.healthy > 0 || x == 0.0));
            if any {
                assert!((sum - 1.0).abs() < 1e-9, "{caps:?} {levels:?} {s:?}");
            } else {
                assert_eq!(sum, 0.0);
            }
            assert_eq!(s, shares(&caps, &levels, of), "deterministic");
        }
    }
}
