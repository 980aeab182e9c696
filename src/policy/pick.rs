//! The per-query draw: one pool by share, then up to N distinct endpoints by weight.
//!
//! This is the only part of the policy engine on the query path, so it is written to a budget
//! (STYLE habit 4) and everything it reads was prepared by [`crate::policy::table`].
//!
//! # Budget
//! - No heap allocation, lock, float or system call: inputs are slices, the output is a
//!   caller-owned `[EndpointRef; MAX_ANSWERS]`, scratch space is a fixed array on the stack.
//! - Pool: one comparison per pool choice (a decision has a handful) on the high 32 bits of the
//!   query's random number.
//! - Endpoints: per answer, one SplitMix64 step, a walk over the at most [`MAX_ANSWERS`] endpoints
//!   already chosen, and a binary search over the pool's cumulative weights. Sampling without
//!   replacement never retries: the draw is made over the weight that remains and mapped past the
//!   endpoints already taken, so a dominant weight cannot make it loop.
//!
//! Workers own an [`Rng`] (wyrand: one add and one 64×64→128 multiply per number) and pass one
//! `next_u64()` per query; [`pick`] derives the further numbers it needs from that one value.

/// Most endpoints one answer can hold (and the size of the output array of [`pick`]).
pub const MAX_ANSWERS: usize = 8;

/// One endpoint, by position: `pools[pool].endpoints[endpoint]` in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EndpointRef {
    /// Index into the pools.
    pub pool: u32,
    /// Index into that pool's endpoints.
    pub endpoint: u32,
}

/// One way a decision can answer: a set of endpoints and how often it is taken.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolChoice {
    /// Cumulative share on a 2³² scale: the choice is taken when the draw is below this and not
    /// below the previous choice's threshold. The last choice also takes every draw above.
    pub threshold: u32,
    /// The endpoints to draw answers from (usually one pool's serving endpoints; for `weighted`
    /// and fail-open fallback, endpoints of several pools).
    pub endpoints: Vec<EndpointRef>,
    /// Running sums of the endpoints' weights (all positive, same length as `endpoints`).
    pub cumulative: Vec<u64>,
}

/// Fills `out` with up to `want` distinct endpoints and returns how many.
///
/// `random` selects the pool choice (its high 32 bits against the thresholds) and seeds the
/// endpoint draws. Returns 0 only when `choices` is empty or `want` is 0; never more than
/// `min(want, MAX_ANSWERS, endpoints of the chosen pool)`. The first endpoint is the first drawn.
pub fn pick(
    choices: &[PoolChoice],
    random: u64,
    want: usize,
    out: &mut [EndpointRef; MAX_ANSWERS],
) -> usize {
    let Some(last) = choices.len().checked_sub(1) else {
        return 0;
    };
    let x = (random >> 32) as u32;
    let mut index = last;
    for (i, c) in choices[..last].iter().enumerate() {
        if x < c.threshold {
            index = i;
            break;
        }
    }
    let choice = &choices[index];
    let want = want.min(MAX_ANSWERS).min(choice.endpoints.len());
    let total = choice.cumulative.last().copied().unwrap_or(0);
    let mut state = random;
    // Indexes taken so far, kept in ascending order, and their summed weight.
    let mut taken = [0usize; MAX_ANSWERS];
    let mut taken_weight = 0u64;
    let mut n = 0;
    while n < want {
        let left = total - taken_weight;
        if left == 0 {
            break;
        }
        let mut r = below(splitmix64(&mut state), left);
        // Map r from the remaining weight onto the full line, skipping the taken intervals.
        let mut insert_at = n;
        for (k, &t) in taken[..n].iter().enumerate() {
            if r >= start_of(&choice.cumulative, t) {
                r += weight_of(&choice.cumulative, t);
            } else {
                insert_at = k;
                break;
            }
        }
        let i = choice.cumulative.partition_point(|&c| c <= r);
        taken.copy_within(insert_at..n, insert_at + 1);
        taken[insert_at] = i;
        taken_weight += weight_of(&choice.cumulative, i);
        out[n] = choice.endpoints[i];
        n += 1;
    }
    n
}

fn start_of(cumulative: &[u64], i: usize) -> u64 {
    if i == 0 { 0 } else { cumulative[i - 1] }
}

fn weight_of(cumulative: &[u64], i: usize) -> u64 {
    cumulative[i] - start_of(cumulative, i)
}

/// A number in `0..n` from 64 random bits (multiply-shift; bias below 2⁻³² for any weight sum
/// a config can produce).
fn below(x: u64, n: u64) -> u64 {
    ((x as u128 * n as u128) >> 64) as u64
}

/// One SplitMix64 step: a well-mixed sequence from any seed, including 0.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small fast random generator (wyrand) for one DNS worker: not cryptographic, not shared.
///
/// Each worker seeds its own (e.g. from the clock and its index, at start-up) and calls
/// [`Rng::next_u64`] once per query for [`pick`].
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xA076_1D64_78BD_642F);
        let t = self.state as u128 * (self.state ^ 0xE703_7ED1_A0B4_28DB) as u128;
        (t >> 64) as u64 ^ t as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(threshold: u32, weights: &[u64]) -> PoolChoice {
        let mut sum = 0;
        PoolChoice {
            threshold,
            endpoints: (0..weights.len())
                .map(|i| EndpointRef {
                    pool: 0,
                    endpoint: i as u32,
                })
                .collect(),
            cumulative: weights
                .iter()
                .map(|w| {
                    sum += w;
                    sum
                })
                .collect(),
        }
    }

    #[test]
    fn never_duplicates_never_exceeds_want() {
        let mut rng = Rng::new(1);
        let mut out = [EndpointRef::default(); MAX_ANSWERS];
        for _ in 0..20_000 {
            let n = 1 + (rng.next_u64() % 12) as usize;
            let weights: Vec<u64> = (0..n).map(|_| 1 + rng.next_u64() % 1000).collect();
            let c = [choice(u32::MAX, &weights)];
            let want = (rng.next_u64() % 10) as usize;
            let got = pick(&c, rng.next_u64(), want, &mut out);
            assert_eq!(got, want.min(n).min(MAX_ANSWERS));
            let mut seen = 0u64;
            for e in &out[..got] {
                assert!((e.endpoint as usize) < n);
                assert_eq!(
                    seen & (1 << e.endpoint),
                    0,
                    "duplicate in {:?}",
                    &out[..got]
                );
                seen |= 1 << e.endpoint;
            }
        }
    }

    #[test]
    fn dominant_weight_does_not_stop_the_others_from_being_drawn() {
        let c = [choice(u32::MAX, &[1_000_000_000, 1, 1])];
        let mut out = [EndpointRef::default(); MAX_ANSWERS];
        assert_eq!(pick(&c, 42, 3, &mut out), 3);
        assert_eq!(out[0].endpoint, 0);
    }

    #[test]
    fn first_answer_follows_weights() {
        let c = [choice(u32::MAX, &[1, 3])];
        let mut rng = Rng::new(9);
        let mut out = [EndpointRef::default(); MAX_ANSWERS];
        let draws = 40_000;
        let mut second = 0;
        for _ in 0..draws {
            pick(&c, rng.next_u64(), 1, &mut out);
            second += (out[0].endpoint == 1) as usize;
        }
        let p = second as f64 / draws as f64;
        assert!((p - 0.75).abs() < 0.01, "{p}");
    }

    #[test]
    fn pool_draw_uses_thresholds_and_the_last_catches_all() {
        let c = [choice(1 << 31, &[1]), choice(u32::MAX, &[1])];
        let mut out = [EndpointRef::default(); MAX_ANSWERS];
        for (random, expect) in [
            (0u64, 0),
            (((1u64 << 31) - 1) << 32, 0),
            (1u64 << 63, 1),
            (u64::MAX, 1),
        ] {
            let mut cs = c.clone();
            cs[expect].endpoints[0].pool = 7;
            assert_eq!(pick(&cs, random, 1, &mut out), 1);
            assert_eq!(out[0].pool, 7, "random {random:#x}");
        }
        assert_eq!(pick(&[], 1, 3, &mut out), 0);
        assert_eq!(pick(&c, 1, 0, &mut out), 0);
    }

    #[test]
    fn rng_is_seeded_and_spreads_bits() {
        let (mut a, mut b) = (Rng::new(5), Rng::new(5));
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        assert!(xs.iter().all(|&x| x == b.next_u64()));
        let ones: u32 = xs.iter().map(|x| x.count_ones()).sum();
        assert!((2900..3500).contains(&ones), "{ones}");
        assert_ne!(Rng::new(0).next_u64(), Rng::new(1).next_u64());
    }
}
