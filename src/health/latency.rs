//! Sliding windows of probe round-trip times, one per endpoint and vantage point.
//!
//! The latency policy blends measured latency into a pool's score, and it
//! wants percentiles over the last few minutes, not a lifetime average: an endpoint that was fast
//! an hour ago and is slow now must look slow. A [`LatencyWindow`] keeps that history as a ring of
//! slices (by default 5 slices of 60 s), each an HDR histogram of RTTs plus a count of lost probes.
//! Time is an argument (`now`), never read from a clock, so the window is tested with virtual time.
//!
//! # Rotation
//! Slices are aligned to the `now` the window was created at. A probe result lands in the slice
//! of its `now`; a slot whose slice has fallen out of the window is cleared (without reallocating)
//! when it is reused. [`LatencyWindow::summary`] reads only the slices inside the window: the
//! current slice and the `N - 1` before it, so between `(N - 1)` and `N` slice lengths of history
//! (4 to 5 minutes by default). An idle gap longer than the window therefore leaves nothing. Time
//! never runs backwards for a window: a `now` older than the newest slice seen counts as that
//! newest slice.
//!
//! # Range, unit and precision
//! Thousands of endpoints each keep a window, so each must stay under 8 KiB (issue 3). RTTs are
//! recorded in units of [`UNIT`] (10 µs, rounded up, so loopback RTTs of tens of µs stay
//! visible) up to [`MAX_RTT`] (60 s; larger values are clamped to it), with
//! [`SIGNIFICANT_DIGITS`] = 1. Two digits do not fit: at 10 µs × 60 s each slice would need 2,176
//! counters (4.25 KiB as `u16`), and even at 1 ms units five slices cost 12.5 KiB. With one digit a
//! slice has 320 counters: 32 exact 10 µs steps below 320 µs, then 16 sub-buckets per power of two.
//! Counters are `u16`: a slice sees at most a few hundred probes (60 at a 1 s interval), far from
//! 65,535. A slice counts at most `65,535 / slices` RTTs in one bucket (13,107 for five slices,
//! some 218 probes a second in one 10 µs bucket), so the live slices added together never
//! overflow a counter either; further RTTs in a full bucket are not counted, and every
//! histogram's sample count is the sum of its counters.
//!
//! Reported values (percentiles and mean) are the midpoint of the histogram bucket that holds the
//! true value, so their error is at most [`RELATIVE_ERROR`] (1/32 ≈ 3.1 %) of the true value plus
//! one [`UNIT`] of rounding. A clamped RTT reports as about 59 s.
//!
//! # Size
//! Measured by `tests::one_endpoint_fits_in_8_kib` on x86_64 ([`LatencyWindow::heap_bytes`]:
//! struct, slice headers and counters): **3,824 bytes** for the default 5 × 60 s window:
//! 64 for the struct plus 752 per slice (640 of counters). [`MAX_SLICES`] (10) slices take
//! 7,584 bytes, still under 8 KiB. Until its first record a window is its struct alone (the
//! slices are allocated then): 100,000 endpoints without checks hold no latency histograms.
//!
//! # Cost
//! [`LatencyWindow::record`] allocates the window's slices at its first call (a window that is
//! never recorded into, an endpoint nobody probes, holds no histogram) and never again: it
//! indexes one slot and bumps one counter (and, once per slice length, zeroes the 320 counters of
//! the slot it reuses).
//! [`LatencyWindow::summary`], [`LatencyWindow::percentile`] and [`LatencyWindow::p50_p90`]
//! allocate one scratch histogram of the slices' shape (320 `u16` counters, 640 bytes) and add
//! the live slices into it counter by counter (a copy for the first), which cannot overflow
//! (see above); `p50_p90` of a window with no RTT inside it (an endpoint without checks, or not
//! answered yet) allocates nothing. The health monitor runs [`LatencyWindow::p50_p90`]
//! when a probe result arrives and when a slice leaves the window ([`LatencyWindow::next_expiry`]
//! says when), never when decision tables are rebuilt, and never on the query path.

use std::mem::size_of;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Resolution of recorded RTTs; an RTT is rounded up to a whole number of units.
pub const UNIT: Duration = Duration::from_micros(10);
/// Largest RTT the histogram tracks; larger RTTs are recorded as this value.
pub const MAX_RTT: Duration = Duration::from_secs(60);
/// Significant decimal digits kept by the histograms (HDR `sigfig`).
pub const SIGNIFICANT_DIGITS: u8 = 1;
/// Bound on the relative error of a reported percentile or mean (plus one [`UNIT`] of rounding).
pub const RELATIVE_ERROR: f64 = 1.0 / 32.0;
/// Number of slices in a window made by [`LatencyWindow::new`].
pub const DEFAULT_SLICES: usize = 5;
/// Length of one slice in a window made by [`LatencyWindow::new`].
pub const DEFAULT_SLICE_LEN: Duration = Duration::from_secs(60);
/// Most slices a window may have; keeps one endpoint's latency state under 8 KiB.
pub const MAX_SLICES: usize = 10;

const UNIT_NANOS: u64 = 10_000;
/// The histograms' highest value: [`MAX_RTT`] in [`UNIT`]s (their lowest is 1).
pub const MAX_UNITS: u64 = 6_000_000;

/// Why a window could not be built with the asked shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The slice count was 0 or above [`MAX_SLICES`].
    #[error("a latency window needs 1 to {max} slices, not {slices}", max = MAX_SLICES)]
    SliceCount {
        /// The slice count asked for.
        slices: usize,
    },
    /// The slice length was zero.
    #[error("a latency window slice must be longer than zero")]
    ZeroSliceLen,
}

/// Latency figures over the slices still inside a window at some `now`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencySummary {
    /// Median RTT; `None` when no probe answered inside the window.
    pub p50: Option<Duration>,
    /// 90th percentile RTT; `None` when no probe answered inside the window.
    pub p90: Option<Duration>,
    /// 99th percentile RTT; `None` when no probe answered inside the window.
    pub p99: Option<Duration>,
    /// Mean RTT; `None` when no probe answered inside the window.
    pub mean: Option<Duration>,
    /// Probes that answered (RTTs in the histograms).
    pub samples: u64,
    /// Probes that were lost or failed.
    pub lost: u64,
    /// `lost / (samples + lost)`; 0.0 when the window holds no probes at all.
    pub loss_ratio: f64,
}

/// One slot of the ring: the RTTs and losses of one slice-length period.
#[derive(Debug, Clone)]
struct Slice {
    /// Which period since the window's origin this slot holds. Unused slots are empty, so their
    /// epoch does not matter.
    epoch: u64,
    rtts: Histogram<u16>,
    lost: u64,
}

/// A sliding window of probe round-trip times for one endpoint, seen from one vantage point.
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    slice_len: Duration,
    /// When the window was created; slice boundaries are counted from it.
    origin: Instant,
    /// Newest epoch recorded; time never goes backwards past it.
    latest: u64,
    /// How many slices the window has.
    count: usize,
    /// The slices, allocated at the first record (empty until then): an endpoint that is never
    /// probed (no checks, or probed by other instances) holds no histogram.
    slices: Box<[Slice]>,
}

impl LatencyWindow {
    /// An empty window of [`DEFAULT_SLICES`] slices of [`DEFAULT_SLICE_LEN`] (5 × 60 s) whose
    /// first slice starts at `now`.
    pub fn new(now: Instant) -> Self {
        Self::build(DEFAULT_SLICES, DEFAULT_SLICE_LEN, now)
    }

    /// An empty window of `slices` slices of `slice_len` each, the first starting at `now`;
    /// `slices` must be in `1..=MAX_SLICES` and `slice_len` above zero.
    pub fn with_slices(
        slices: usize,
        slice_len: Duration,
        now: Instant,
    ) -> Result<Self, WindowError> {
        if slices == 0 || slices > MAX_SLICES {
            return Err(WindowError::SliceCount { slices });
        }
        if slice_len.is_zero() {
            return Err(WindowError::ZeroSliceLen);
        }
        Ok(Self::build(slices, slice_len, now))
    }

    fn build(count: usize, slice_len: Duration, origin: Instant) -> Self {
        Self {
            slice_len,
            origin,
            latest: 0,
            count,
            slices: Box::default(),
        }
    }

    /// The span the window covers: slice count × slice length.
    pub fn window(&self) -> Duration {
        self.slice_len * self.count as u32
    }

    /// Records one probe at `now`: `Some(rtt)` for an answer (clamped to [`MAX_RTT`]), `None` for
    /// a lost or failed probe (counted in the loss ratio, not in the percentiles). Allocates the
    /// slices at the first record only.
    pub fn record(&mut self, rtt: Option<Duration>, now: Instant) {
        if self.slices.is_empty() {
            self.slices = (0..self.count)
                .map(|_| Slice {
                    epoch: 0,
                    rtts: new_histogram(),
                    lost: 0,
                })
                .collect();
        }
        let epoch = self.epoch_at(now);
        self.latest = epoch;
        let n = self.slices.len() as u64;
        let slot = &mut self.slices[(epoch % n) as usize];
        if slot.epoch != epoch {
            slot.rtts.reset();
            slot.lost = 0;
            slot.epoch = epoch;
        }
        match rtt {
            // A full bucket stays full and the RTT is not counted (see the module docs).
            Some(rtt) => {
                let units = to_units(rtt);
                if slot.rtts.count_at(units) < u16::MAX / n as u16 {
                    slot.rtts.saturating_record(units);
                }
            }
            None => slot.lost += 1,
        }
    }

    /// p50, p90, p99, mean, sample and loss counts over the slices inside the window at `now`.
    /// Allocates one scratch histogram (see the module docs).
    pub fn summary(&self, now: Instant) -> LatencySummary {
        let (merged, lost) = self.merged(now);
        let samples = merged.len();
        let total = samples + lost;
        let loss_ratio = if total == 0 {
            0.0
        } else {
            lost as f64 / total as f64
        };
        let at = |q: f64| quantile(&merged, q);
        let mean = (samples > 0).then(|| {
            Duration::from_nanos((merged.mean() * UNIT_NANOS as f64).round() as u64).min(MAX_RTT)
        });
        LatencySummary {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            mean,
            samples,
            lost,
            loss_ratio,
        }
    }

    /// The RTT at quantile `q` (`0.0..=1.0`, so 0.99 is p99; values outside are clamped) over
    /// the slices inside the window at `now`; `None` when no probe answered or `q` is NaN.
    /// Allocates one scratch histogram.
    pub fn percentile(&self, q: f64, now: Instant) -> Option<Duration> {
        if q.is_nan() {
            return None;
        }
        quantile(&self.merged(now).0, q.clamp(0.0, 1.0))
    }

    /// The first instant after `now` at which [`LatencyWindow::summary`] changes with no new
    /// record: when the oldest slice inside the window that holds anything leaves it. `None` when
    /// no slice inside the window holds anything (the summary stays empty until a record).
    /// Whoever keeps a summary refreshes it then.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        let current = self.epoch_at(now);
        let n = self.count as u64;
        let oldest = self
            .slices
            .iter()
            .filter(|s| s.epoch <= current && current - s.epoch < n)
            .filter(|s| !s.rtts.is_empty() || s.lost > 0)
            .map(|s| s.epoch)
            .min()?;
        // Slice `e` leaves when the clock reaches the start of period `e + n`; a time too far to
        // represent is never.
        let periods = u32::try_from(oldest.checked_add(n)?).ok()?;
        self.origin
            .checked_add(self.slice_len.checked_mul(periods)?)
            .filter(|&t| t > now)
    }

    /// p50 and p90 over the slices inside the window at `now` (what steering reads): the
    /// summary's, without the rest of it.
    pub fn p50_p90(&self, now: Instant) -> (Option<Duration>, Option<Duration>) {
        // Nothing answered inside the window (an endpoint without checks, or not probed yet):
        // nothing to merge. A reload sets the slot of every endpoint, so this is most of them.
        if self.live(now).all(|s| s.rtts.is_empty()) {
            return (None, None);
        }
        let (merged, _) = self.merged(now);
        (quantile(&merged, 0.5), quantile(&merged, 0.9))
    }

    /// The RTTs of the slices inside the window at `now`, merged into one histogram (values in
    /// [`UNIT`]s, bounds `1..=MAX_RTT`, [`SIGNIFICANT_DIGITS`]): what a fleet peer is sent, so
    /// that histograms from several vantages can be added up. Allocates one histogram.
    pub fn merged_histogram(&self, now: Instant) -> Histogram<u16> {
        self.merged(now).0
    }

    /// Bytes of latency state this window holds: the struct, its slice headers and every
    /// histogram's counters (`distinct_values()` × counter size; HDR's `len()` is the sample
    /// count). Measured figures are in the module docs.
    pub fn heap_bytes(&self) -> usize {
        let counters: usize = self
            .slices
            .iter()
            .map(|s| s.rtts.distinct_values() * size_of::<u16>())
            .sum();
        size_of::<Self>() + self.slices.len() * size_of::<Slice>() + counters
    }

    /// The slice period `now` falls in, counted from the origin, never before the newest seen.
    fn epoch_at(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        let epoch = u64::try_from(since / self.slice_len.as_nanos()).unwrap_or(u64::MAX);
        epoch.max(self.latest)
    }

    /// The slices inside the window at `now`.
    fn live(&self, now: Instant) -> impl Iterator<Item = &Slice> {
        let current = self.epoch_at(now);
        let n = self.count as u64;
        self.slices
            .iter()
            .filter(move |s| s.epoch <= current && current - s.epoch < n)
    }

    /// The live slices' RTTs merged into one scratch histogram, and their lost-probe count.
    fn merged(&self, now: Instant) -> (Histogram<u16>, u64) {
        let mut merged = new_histogram::<u16>();
        let mut lost = 0;
        for slice in self.live(now) {
            lost += slice.lost;
            merged
                .add(&slice.rtts)
                .expect("slices and the scratch histogram have the same bounds");
        }
        (merged, lost)
    }
}

/// A histogram over `0..=MAX_UNITS` with [`SIGNIFICANT_DIGITS`], not auto-resizing.
fn new_histogram<T: hdrhistogram::Counter>() -> Histogram<T> {
    Histogram::new_with_bounds(1, MAX_UNITS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// An RTT in whole [`UNIT`]s, rounded up and clamped to [`MAX_RTT`].
fn to_units(rtt: Duration) -> u64 {
    let units = rtt.as_nanos().div_ceil(u128::from(UNIT_NANOS));
    u64::try_from(units).unwrap_or(u64::MAX).min(MAX_UNITS)
}

/// The midpoint of the bucket holding quantile `q`, as a Duration; `None` when empty.
fn quantile(h: &Histogram<u16>, q: f64) -> Option<Duration> {
    if h.is_empty() {
        return None;
    }
    let units = h.median_equivalent(h.value_at_quantile(q));
    Some(Duration::from_nanos(units.saturating_mul(UNIT_NANOS)).min(MAX_RTT))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `got` is within the documented precision of `want`.
    fn assert_close(got: Option<Duration>, want: Duration) {
        let (got, tolerance) = (got.expect("a value"), want.mul_f64(RELATIVE_ERROR) + UNIT);
        assert!(
            got.abs_diff(want) <= tolerance,
            "got {got:?}, want {want:?} ± {tolerance:?}"
        );
    }

    #[test]
    fn merged_histogram_is_the_live_slices() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::with_slices(2, MIN, t0).unwrap();
        w.record(Some(ms(10)), t0);
        w.record(Some(ms(20)), t0 + MIN);
        w.record(None, t0 + MIN);
        let h = w.merged_histogram(t0 + MIN);
        assert_eq!(h.len(), 2);
        assert_eq!(
            (h.low(), h.high(), h.sigfig()),
            (1, MAX_UNITS, SIGNIFICANT_DIGITS)
        );
        // The first slice leaves the window.
        assert_eq!(w.merged_histogram(t0 + 2 * MIN).len(), 1);
    }

    #[test]
    fn one_endpoint_fits_in_8_kib() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        for i in 0..5 {
            w.record(Some(ms(i + 1)), t0 + MIN * i as u32);
        }
        let bytes = w.heap_bytes();
        println!("latency state per endpoint (5 x 60 s): {bytes} bytes");
        assert!(bytes < 8192, "{bytes} bytes");
        let mut biggest = LatencyWindow::with_slices(MAX_SLICES, MIN, t0).unwrap();
        biggest.record(None, t0);
        let biggest = biggest.heap_bytes();
        println!("latency state per endpoint ({MAX_SLICES} slices): {biggest} bytes");
        assert!(biggest < 8192, "{biggest} bytes");
    }

    #[test]
    fn a_window_never_recorded_into_holds_no_histogram() {
        let t0 = Instant::now();
        let w = LatencyWindow::new(t0);
        assert_eq!(w.heap_bytes(), size_of::<LatencyWindow>());
        assert_eq!(w.window(), DEFAULT_SLICE_LEN * DEFAULT_SLICES as u32);
        assert_eq!(w.summary(t0 + MIN), LatencySummary::default());
        assert_eq!(w.p50_p90(t0 + MIN), (None, None));
        assert_eq!(w.next_expiry(t0), None);
        assert_eq!(w.merged_histogram(t0).len(), 0);
    }

    #[test]
    fn uniform_1_to_100_ms_percentiles() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        for i in 1..=100 {
            w.record(Some(ms(i)), t0 + ms(100 * i));
        }
        let now = t0 + Duration::from_secs(30);
        let s = w.summary(now);
        assert_eq!((s.samples, s.lost, s.loss_ratio), (100, 0, 0.0));
        assert_close(s.p50, ms(50));
        assert_close(s.p90, ms(90));
        assert_close(s.p99, ms(99));
        assert_close(s.mean, Duration::from_micros(50_500));
        assert_close(w.percentile(0.25, now), ms(25));
        assert_eq!(w.p50_p90(now), (s.p50, s.p90));
        assert_close(w.percentile(7.0, now), ms(100)); // clamped to q = 1.0
        assert_eq!(w.percentile(f64::NAN, now), None);
    }

    #[test]
    fn sub_millisecond_rtts_keep_10_us_resolution() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        for us in [35, 40, 45, 50, 55, 60, 65, 70, 75, 80] {
            w.record(Some(Duration::from_micros(us)), t0);
        }
        // 35 µs rounds up to 40 µs; below 320 µs every 10 µs step is its own bucket.
        let at = |q| w.percentile(q, t0).unwrap().as_micros();
        assert_eq!((at(0.0), at(0.5), at(1.0)), (40, 60, 80));
    }

    #[test]
    fn rotation_drops_old_slices_and_keeps_recent_ones() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        for i in 0..5u32 {
            for k in 0..10 {
                // Slice i holds ten samples of (i + 1) × 100 ms.
                w.record(
                    Some(ms(100 * (u64::from(i) + 1))),
                    t0 + MIN * i + ms(k * 1000),
                );
            }
        }
        assert_eq!(w.summary(t0 + MIN * 4).samples, 50);
        assert_close(w.percentile(0.0, t0 + MIN * 5 - ms(1)), ms(100));
        // At 5 min slice 0 leaves the window.
        assert_eq!(w.summary(t0 + MIN * 5).samples, 40);
        assert_close(w.percentile(0.0, t0 + MIN * 5), ms(200));
        // At 6 min slice 1 leaves too; a record in slice 6 reuses (and clears) slice 1's slot.
        w.record(Some(ms(900)), t0 + MIN * 6);
        let s = w.summary(t0 + MIN * 6);
        assert_eq!(s.samples, 31);
        assert_eq!(w.p50_p90(t0 + MIN * 6), (s.p50, s.p90));
        assert_close(w.percentile(0.0, t0 + MIN * 6), ms(300));
        assert_close(s.p99, ms(900));
        // Nothing recorded since: by 11 min every slice has left the window.
        assert_eq!(w.summary(t0 + MIN * 11), LatencySummary::default());
    }

    #[test]
    fn idle_gap_longer_than_the_window_clears_everything() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        for i in 0..5u32 {
            w.record(Some(ms(500)), t0 + MIN * i);
            w.record(None, t0 + MIN * i);
        }
        let later = t0 + Duration::from_secs(3600);
        w.record(Some(ms(20)), later);
        let s = w.summary(later);
        assert_eq!((s.samples, s.lost), (1, 0));
        assert_close(s.p99, ms(20));
    }

    #[test]
    fn a_late_timestamp_counts_in_the_newest_slice() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        w.record(Some(ms(10)), t0);
        w.record(Some(ms(30)), t0 + MIN * 4);
        w.record(Some(ms(20)), t0 + MIN); // delivered late: lands in slice 4, not slice 1
        let s = w.summary(t0 + MIN * 5);
        assert_eq!(s.samples, 2);
        assert_close(s.p50, ms(20));
    }

    #[test]
    fn loss_ratio_counts_lost_probes_and_ages_them_out() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        w.record(None, t0);
        w.record(None, t0);
        for _ in 0..6 {
            w.record(Some(ms(5)), t0 + MIN * 2);
        }
        let s = w.summary(t0 + MIN * 2);
        assert_eq!((s.samples, s.lost, s.loss_ratio), (6, 2, 0.25));
        assert_eq!(w.summary(t0 + MIN * 5).lost, 0);

        let mut dead = LatencyWindow::new(t0);
        for _ in 0..3 {
            dead.record(None, t0);
        }
        let s = dead.summary(t0);
        assert_eq!(
            (s.p50, s.mean, s.samples, s.lost, s.loss_ratio),
            (None, None, 0, 3, 1.0)
        );
    }

    #[test]
    fn next_expiry_is_when_the_oldest_slice_with_data_leaves() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        assert_eq!(w.next_expiry(t0), None, "empty: nothing to expire");
        // Slice 1 (60 to 120 s) holds an RTT: it leaves at 6 min, the start of period 1 + 5.
        w.record(Some(ms(7)), t0 + MIN + ms(500));
        assert_eq!(w.next_expiry(t0 + MIN * 2), Some(t0 + MIN * 6));
        // A loss in slice 3 changes the summary too, but slice 1 still leaves first.
        w.record(None, t0 + MIN * 3);
        assert_eq!(w.next_expiry(t0 + MIN * 3), Some(t0 + MIN * 6));
        // Just before the deadline the summary still has the RTT; at it, not any more.
        assert_eq!(w.summary(t0 + MIN * 6 - ms(1)).samples, 1);
        assert_eq!(w.summary(t0 + MIN * 6).samples, 0);
        // Then the loss's slice is the oldest: it leaves at 8 min, and after that nothing does.
        assert_eq!(w.next_expiry(t0 + MIN * 6), Some(t0 + MIN * 8));
        assert_eq!(w.summary(t0 + MIN * 8 - ms(1)).lost, 1);
        assert_eq!(w.summary(t0 + MIN * 8), LatencySummary::default());
        assert_eq!(w.next_expiry(t0 + MIN * 8), None);
        // A shorter window: 3 slices of 10 s.
        let mut w = LatencyWindow::with_slices(3, Duration::from_secs(10), t0).unwrap();
        w.record(Some(ms(1)), t0 + Duration::from_secs(25));
        assert_eq!(
            w.next_expiry(t0 + Duration::from_secs(25)),
            Some(t0 + Duration::from_secs(50))
        );
    }

    #[test]
    fn huge_rtts_are_clamped_to_max() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        w.record(Some(Duration::from_secs(3600)), t0);
        w.record(Some(Duration::MAX), t0);
        let s = w.summary(t0);
        assert_eq!(s.samples, 2);
        assert!(s.p99.unwrap() <= MAX_RTT && s.mean.unwrap() <= MAX_RTT);
        assert_close(s.p99, MAX_RTT);
        assert_close(s.mean, MAX_RTT);
    }

    #[test]
    fn saturated_counters_keep_percentiles_sane() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(t0);
        for _ in 0..70_000 {
            w.record(Some(ms(3)), t0);
        }
        // A slice of five counts at most 65,535 / 5 RTTs in one bucket.
        let full = u64::from(u16::MAX / 5);
        let s = w.summary(t0);
        assert_eq!(s.samples, full);
        assert_close(s.p50, ms(3));
        assert_close(s.p99, ms(3));
        // Two full slices add up without overflow, and the sample count is the counters' sum.
        for _ in 0..40_000 {
            w.record(Some(ms(3)), t0 + MIN);
        }
        w.record(Some(ms(9)), t0 + MIN);
        let s = w.summary(t0 + MIN);
        assert_eq!(s.samples, 2 * full + 1);
        assert_close(s.p50, ms(3));
        assert_close(s.p99, ms(3));
        assert_close(w.percentile(1.0, t0 + MIN), ms(9));
    }

    #[test]
    fn empty_window_has_no_values_and_bad_shapes_are_refused() {
        let t0 = Instant::now();
        let w = LatencyWindow::new(t0);
        assert_eq!(w.summary(t0), LatencySummary::default());
        assert_eq!(w.percentile(0.5, t0), None);
        assert_eq!(w.window(), Duration::from_secs(300));
        let shape = |n, len| LatencyWindow::with_slices(n, len, t0).map(|w| w.window());
        assert_eq!(
            shape(3, Duration::from_secs(10)),
            Ok(Duration::from_secs(30))
        );
        assert_eq!(shape(0, MIN), Err(WindowError::SliceCount { slices: 0 }));
        assert_eq!(
            shape(MAX_SLICES + 1, MIN),
            Err(WindowError::SliceCount { slices: 11 })
        );
        assert_eq!(shape(3, Duration::ZERO), Err(WindowError::ZeroSliceLen));
    }
}
