//! Bounded waiting on the real clock, for tests that watch a running server or a child process.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Poll `condition` every 10 ms until it holds; panics with `what` after `limit`. Returns the
/// time it took.
#[track_caller]
pub fn wait_for(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !condition() {
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    t0.elapsed()
}

/// Wait for `child` to exit, at most `limit`; `None` if it is still running.
pub fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if t0.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
