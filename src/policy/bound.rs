//! Spill bounded by capacity: traffic that leaves its nearest pools goes to the next ones only
//! as far as they have room, and on past them when they are full.
//!
//! [`crate::policy::spill`] decides for one client place at a time: a place whose leading pools
//! failed sends its traffic to its next level, whatever else is arriving there. When a whole
//! region fails, every one of its places picks the same next-nearest pool, which then receives
//! the region's traffic on top of its own. This module looks at all places of a service at once,
//! weighted by how much traffic each sends ([`Demand`]), and caps what spill may add to a pool.
//!
//! # Definitions (per service)
//! - demand `d` of a place: the weight of the client networks placed there (see [`Demand`]);
//! - baseline load of a pool: `Σ d × share` over all places with every endpoint healthy;
//! - budget of a pool: its configured `max_share` × total demand, else baseline × OF (the
//!   service's overprovisioning factor: the headroom the pool was sized with), times its healthy
//!   fraction `h`. A pool no place prefers (baseline 0) and without `max_share` is unbounded: there
//!   is nothing to size it by.
//!
//! # The rule
//! 1. Each place's shares come from [`crate::policy::spill::shares`] (health-aware, per place).
//! 2. Level 0 of every place (its nearest pools) is granted as it is: a pool's own clients are
//!    never turned away by traffic spilled from elsewhere.
//! 3. Levels 1, 2, … are processed in rounds, round `l` taking every place's level `l` at once.
//!    A place asks each pool of the level for its own share there plus what earlier rounds could
//!    not place (split by spare capacity, like a level's share). A pool whose room (budget minus
//!    load so far) covers what all places ask grants it; otherwise it grants every place the same
//!    fraction, room / asked, and the rest moves on to each place's next level.
//! 4. What no level can take stays with the place's granted pools, scaled up in proportion (the
//!    service is out of capacity: traffic stays as near as it can), or with its local shares when
//!    nothing was granted at all.
//!
//! Only arithmetic on the inputs in a fixed order (places in order, pools in service order): the
//! same inputs give the same shares. Places without demand get the same fractions, so a client
//! from a network the demand did not list is still answered by the bounded shares.

use super::spill::PoolCapacity;

/// How much traffic comes from where, in one arbitrary unit (addresses, queries, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demand {
    /// Weight of the clients whose position is known: (cell index, their region, weight),
    /// sorted by cell and region, no repeats.
    pub cells: Vec<(u32, u32, f64)>,
    /// Per region: weight of the clients placed without a position (a region prefix, an
    /// override, no coordinates or country in the database).
    pub unplaced: Vec<f64>,
    /// Per region: weight of all clients placed in it (for the policies that rank by region).
    pub by_region: Vec<f64>,
}

impl Demand {
    /// Total weight.
    pub fn total(&self) -> f64 {
        self.by_region.iter().sum()
    }
}

/// One place of a service as the bound sees it: its demand and its ranking.
#[derive(Debug, Clone)]
pub struct PlaceShares<'a> {
    /// Its weight.
    pub demand: f64,
    /// Service pool slot (index into the service's pools) of each ranked pool.
    pub slots: &'a [usize],
    /// Level of each ranked pool.
    pub levels: &'a [usize],
    /// Its shares with every endpoint healthy (for the baseline), per ranked pool.
    pub baseline: &'a [f64],
    /// Its shares with the current health, per ranked pool: rewritten with the bound applied.
    pub shares: Vec<f64>,
}

/// One pool of a service: what it can take and what it took.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PoolLoad {
    /// Share of the service's demand it takes with every endpoint healthy.
    pub baseline: f64,
    /// Most share spill may bring it to (`None`: unbounded).
    pub budget: Option<f64>,
    /// Share it takes now, the bound applied.
    pub load: f64,
    /// Share it would have taken without the bound.
    pub unbounded: f64,
}

impl PoolLoad {
    /// Whether it takes more than its budget (only when the service is out of capacity, or
    /// its own clients alone exceed it).
    pub fn over(&self) -> bool {
        self.budget.is_some_and(|b| self.load > b + 1e-9)
    }
}

/// Apply the bound to `places` (shares rewritten in place). `capacity` and `max_share` are per
/// service pool slot; `spare` weighs a level's pools when it splits what it is asked for.
/// Returns each slot's load in shares of the total demand (all zero when there is none).
pub fn bound(
    places: &mut [PlaceShares<'_>],
    capacity: &[PoolCapacity],
    max_share: &[Option<f64>],
    overprovisioning: f64,
) -> Vec<PoolLoad> {
    let pools = capacity.len();
    let total: f64 = places.iter().map(|p| p.demand).sum();
    let mut out = vec![PoolLoad::default(); pools];
    if total <= 0.0 || !total.is_finite() {
        return out;
    }
    let of = if overprovisioning.is_finite() && overprovisioning >= 1.0 {
        overprovisioning
    } else {
        1.0
    };
    for p in places.iter() {
        for ((&slot, &b), &s) in p.slots.iter().zip(p.baseline).zip(&p.shares) {
            out[slot].baseline += p.demand * b / total;
            out[slot].unbounded += p.demand * s / total;
        }
    }
    // Budgets in shares of the total demand.
    let budget: Vec<f64> = (0..pools)
        .map(|i| {
            let sized = match max_share[i] {
                Some(m) => m,
                None if out[i].baseline > 0.0 => out[i].baseline * of,
                None => f64::INFINITY,
            };
            sized * capacity[i].healthy_fraction()
        })
        .collect();
    for (o, &b) in out.iter_mut().zip(&budget) {
        o.budget = b.is_finite().then_some(b);
    }

    // Round 0: every place's first level, as it is.
    let mut load = vec![0.0; pools];
    let mut granted: Vec<Vec<f64>> = places.iter().map(|p| vec![0.0; p.shares.len()]).collect();
    let mut carry = vec![0.0; places.len()];
    for (p, g) in places.iter().zip(&mut granted) {
        for k in 0..p.shares.len() {
            if p.levels[k] == 0 {
                g[k] = p.shares[k];
                load[p.slots[k]] += p.demand * p.shares[k] / total;
            }
        }
    }
    let deepest = places
        .iter()
        .flat_map(|p| p.levels.iter().copied())
        .max()
        .unwrap_or(0);
    let mut asked = vec![0.0; places.iter().map(|p| p.shares.len()).max().unwrap_or(0)];
    let mut asks: Vec<Vec<f64>> = places.iter().map(|p| vec![0.0; p.shares.len()]).collect();
    for level in 1..=deepest {
        // What each place asks of each pool of this level.
        let mut wanted = vec![0.0; pools];
        for (j, p) in places.iter().enumerate() {
            let in_level = |k: &usize| p.levels[*k] == level;
            let spare: f64 = (0..p.shares.len())
                .filter(in_level)
                .map(|k| capacity[p.slots[k]].spare(of))
                .sum();
            asked.fill(0.0);
            for k in (0..p.shares.len()).filter(in_level) {
                let carried = if spare > 0.0 {
                    carry[j] * capacity[p.slots[k]].spare(of) / spare
                } else {
                    0.0
                };
                asked[k] = p.shares[k] + carried;
                wanted[p.slots[k]] += p.demand * asked[k] / total;
            }
            if spare > 0.0 {
                carry[j] = 0.0;
            }
            asks[j][..p.shares.len()].copy_from_slice(&asked[..p.shares.len()]);
        }
        // The fraction of it each pool grants.
        let fraction: Vec<f64> = (0..pools)
            .map(|i| {
                let room = (budget[i] - load[i]).max(0.0);
                if wanted[i] <= room {
                    1.0
                } else {
                    room / wanted[i]
                }
            })
            .collect();
        for (j, p) in places.iter().enumerate() {
            for k in 0..p.shares.len() {
                if p.levels[k] != level {
                    continue;
                }
                let slot = p.slots[k];
                let g = asks[j][k] * fraction[slot];
                granted[j][k] = g;
                carry[j] += asks[j][k] - g;
                load[slot] += p.demand * g / total;
            }
        }
    }
    // What is left stays as near as it can: with the granted pools, in proportion.
    for ((p, g), &left) in places.iter_mut().zip(granted).zip(&carry) {
        let sum: f64 = g.iter().sum();
        if sum <= 0.0 {
            continue; // nothing granted anywhere: keep the local shares
        }
        let scale = (sum + left) / sum;
        p.shares = g.into_iter().map(|x| x * scale).collect();
    }
    for o in &mut out {
        o.load = 0.0;
    }
    for p in places.iter() {
        for (&slot, &s) in p.slots.iter().zip(&p.shares) {
            out[slot].load += p.demand * s / total;
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

    /// Three places, each nearest to its own pool A, B, C, and ranking the others by index
    /// distance (A: A B C; B: B A C / B C A; C: C B A).
    struct World {
        slots: Vec<Vec<usize>>,
        levels: Vec<Vec<usize>>,
        baseline: Vec<Vec<f64>>,
    }

    fn world() -> World {
        World {
            slots: vec![vec![0, 1, 2], vec![1, 0, 2], vec![2, 1, 0]],
            levels: vec![vec![0, 1, 2]; 3],
            baseline: vec![vec![1.0, 0.0, 0.0]; 3],
        }
    }

    fn places<'a>(w: &'a World, demand: &[f64], shares: &[Vec<f64>]) -> Vec<PlaceShares<'a>> {
        (0..w.slots.len())
            .map(|i| PlaceShares {
                demand: demand[i],
                slots: &w.slots[i],
                levels: &w.levels[i],
                baseline: &w.baseline[i],
                shares: shares[i].clone(),
            })
            .collect()
    }

    #[test]
    fn healthy_places_keep_their_pools_and_loads_are_their_demand() {
        let w = world();
        let mut p = places(&w, &[2.0, 1.0, 1.0], &w.baseline);
        let loads = bound(&mut p, &[cap(1, 1); 3], &[None; 3], 1.4);
        for (i, l) in loads.iter().enumerate() {
            assert!((l.load - [0.5, 0.25, 0.25][i]).abs() < 1e-12, "{loads:?}");
            assert!((l.budget.unwrap() - l.baseline * 1.4).abs() < 1e-12);
        }
        for x in &p {
            assert_eq!(x.shares, vec![1.0, 0.0, 0.0]);
        }
    }

    #[test]
    fn a_lost_pool_fills_the_next_to_its_budget_and_the_rest_goes_further() {
        let w = world();
        // A (demand 2) lost: locally all of it goes to B (level 1).
        let local = vec![
            vec![0.0, 1.0, 0.0],
            vec![1.0, 0.0, 0.0],
            vec![1.0, 0.0, 0.0],
        ];
        let mut p = places(&w, &[2.0, 1.0, 1.0], &local);
        let caps = [cap(1, 0), cap(1, 1), cap(1, 1)];
        // C sized to take everything (max_share 1).
        let loads = bound(&mut p, &caps, &[None, None, Some(1.0)], 1.4);
        // B's budget: 0.25 × 1.4 = 0.35; its own 0.25 leaves 0.10 of A's 0.5: a fifth of it.
        assert!((p[0].shares[1] - 0.2).abs() < 1e-12, "{:?}", p[0].shares);
        assert!((p[0].shares[2] - 0.8).abs() < 1e-12, "{:?}", p[0].shares);
        assert!((loads[1].load - 0.35).abs() < 1e-12);
        assert!((loads[2].load - 0.65).abs() < 1e-12);
        assert!(!loads[1].over() && !loads[2].over());
        assert!((loads[1].unbounded - 0.75).abs() < 1e-12, "{loads:?}");
        // B's and C's own clients are untouched.
        assert_eq!(p[1].shares, vec![1.0, 0.0, 0.0]);
        assert_eq!(p[2].shares, vec![1.0, 0.0, 0.0]);
        for x in &p {
            assert!((x.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }

        // With C sized by its baseline too (0.35), both fill, and what is left over stays with
        // them in proportion: half each, both over budget.
        let mut p = places(&w, &[2.0, 1.0, 1.0], &local);
        let loads = bound(&mut p, &caps, &[None; 3], 1.4);
        assert!((p[0].shares[1] - 0.5).abs() < 1e-12, "{:?}", p[0].shares);
        assert!((p[0].shares[2] - 0.5).abs() < 1e-12, "{:?}", p[0].shares);
        assert!(loads[1].over() && loads[2].over());
    }

    #[test]
    fn max_share_sizes_a_pool_and_an_unpreferred_pool_is_unbounded() {
        let w = World {
            slots: vec![vec![0, 1, 2], vec![0, 1, 2]],
            levels: vec![vec![0, 1, 2]; 2],
            baseline: vec![vec![1.0, 0.0, 0.0]; 2],
        };
        let local = vec![vec![0.0, 1.0, 0.0]; 2];
        let caps = [cap(2, 0), cap(1, 1), cap(1, 1)];
        // B is preferred by nobody: unbounded, takes everything.
        let mut p = places(&w, &[1.0, 1.0], &local);
        let loads = bound(&mut p, &caps, &[None; 3], 1.4);
        assert_eq!(loads[1].budget, None);
        assert!((loads[1].load - 1.0).abs() < 1e-12);
        // With max_share 0.3, B takes 0.3 and C the rest.
        let mut p = places(&w, &[1.0, 1.0], &local);
        let loads = bound(&mut p, &caps, &[None, Some(0.3), None], 1.4);
        assert!((loads[1].load - 0.3).abs() < 1e-12, "{loads:?}");
        assert!((loads[2].load - 0.7).abs() < 1e-12, "{loads:?}");
    }

    #[test]
    fn when_everything_is_full_traffic_stays_as_near_as_it_can() {
        let w = world();
        let local = vec![
            vec![0.0, 1.0, 0.0],
            vec![1.0, 0.0, 0.0],
            vec![1.0, 0.0, 0.0],
        ];
        let mut p = places(&w, &[2.0, 1.0, 1.0], &local);
        let caps = [cap(1, 0), cap(1, 1), cap(1, 1)];
        // Budgets of exactly the home load: no room anywhere.
        let loads = bound(&mut p, &caps, &[None, Some(0.25), Some(0.25)], 1.4);
        // Round 1 granted nothing to A's place at B; round 2 nothing at C: A's place keeps its
        // local shares (all of it to B).
        assert_eq!(p[0].shares, vec![0.0, 1.0, 0.0]);
        assert!(loads[1].over());
    }

    #[test]
    fn a_place_without_demand_gets_the_same_shares_as_one_ranked_alike() {
        let mut w = world();
        // Place 2 ranks like place 0 but has no demand of its own.
        w.slots[2] = w.slots[0].clone();
        let local = vec![
            vec![0.0, 1.0, 0.0],
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
        ];
        let mut p = places(&w, &[2.0, 1.0, 0.0], &local);
        let caps = [cap(1, 0), cap(1, 1), cap(1, 1)];
        bound(&mut p, &caps, &[None, None, Some(1.0)], 1.4);
        assert!(p[0].shares[1] < 1.0, "{:?}", p[0].shares);
        for k in 0..3 {
            assert!(
                (p[0].shares[k] - p[2].shares[k]).abs() < 1e-12,
                "{:?}",
                p[2].shares
            );
        }
    }

    #[test]
    fn no_demand_changes_nothing() {
        let w = world();
        let local = vec![
            vec![0.0, 1.0, 0.0],
            vec![1.0, 0.0, 0.0],
            vec![1.0, 0.0, 0.0],
        ];
        let mut p = places(&w, &[0.0; 3], &local);
        let loads = bound(&mut p, &[cap(1, 0), cap(1, 1), cap(1, 1)], &[None; 3], 1.4);
        assert_eq!(p[0].shares, local[0]);
        assert!(loads.iter().all(|l| l.load == 0.0 && l.budget.is_none()));
    }
}
