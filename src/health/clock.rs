//! The health clock: tokio's, so that tests can pause and advance it. The monitor and the fleet
//! both read it (one clock, so a peer's receive time compares with the monitor's instants).
//!
//! Everything the monitor decides with time (when probes run, rise and fall, overrides' expiry,
//! hold-downs, latency windows, the instants its view must be refreshed at) reads [`now`]. In a
//! running server tokio's clock is the system's monotonic clock. Under
//! `#[tokio::test(start_paused = true)]` it stands still until the test advances it (or the idle
//! runtime jumps to its next timer), and the monitor's deadlines fire at those virtual instants.
//! The state file keeps expiries in Unix seconds; [`unix_now`] reads them on the same clock.

use std::time::{Duration, Instant, SystemTime};

/// The monitor's now: tokio's clock, as a `std` instant the health core takes.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Seconds since the Unix epoch on the monitor's clock: the system's wall clock, moved by as far
/// as tokio's clock has been advanced past the system's monotonic clock (not at all unless time
/// is paused).
pub fn unix_now() -> u64 {
    unix_now_ms() / 1000
}

/// [`unix_now`] in milliseconds: what the fleet's observations are stamped with (and checked
/// against).
pub fn unix_now_ms() -> u64 {
    let virtual_now = now();
    let (real_now, wall) = (Instant::now(), SystemTime::now());
    let wall = if virtual_now >= real_now {
        wall.checked_add(virtual_now - real_now)
    } else {
        wall.checked_sub(real_now - virtual_now)
    };
    wall.and_then(|w| w.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d: Duration| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_time_moves_both_clocks() {
        let (t0, u0) = (now(), unix_now());
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(now() - t0, Duration::from_secs(3600));
        // The wall clock moved by the hour too (and by the real time the test took, well under
        // a second, which truncation to seconds may show as one more).
        assert!(
            (3600..=3601).contains(&(unix_now() - u0)),
            "{}",
            unix_now() - u0
        );
    }

    #[test]
    fn without_a_runtime_it_is_the_system_clock() {
        let (before, t, after) = (Instant::now(), now(), Instant::now());
        assert!(before <= t && t <= after);
        let system = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(unix_now().abs_diff(system) <= 1);
    }
}
