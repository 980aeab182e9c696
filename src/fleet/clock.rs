//! The fleet's clock: the monitor's (`monitor::clock`), read the same way, since the fleet sits
//! beside the monitor in layer 6 and may not use it. Instants are tokio's, so that
//! [`super::PeerView::received`] compares with `monitor::now()`; Unix milliseconds are the wall
//! clock moved as far as tokio's clock was advanced past the monotonic one (not at all unless
//! time is paused), like `monitor::unix_now_ms`.

use std::time::{Instant, SystemTime};

/// Now on tokio's clock, as a `std` instant.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Milliseconds since the Unix epoch on the same clock.
pub fn unix_now_ms() -> u64 {
    let virtual_now = now();
    let (real_now, wall) = (Instant::now(), SystemTime::now());
    let wall = if virtual_now >= real_now {
        wall.checked_add(virtual_now - real_now)
    } else {
        wall.checked_sub(real_now - virtual_now)
    };
    wall.and_then(|w| w.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
