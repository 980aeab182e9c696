//! Probe sharding on the monitor's side: which endpoints this instance's probers probe.
//!
//! The monitor does not know the fleet (both are layer 6); whoever does (the server) hands it a
//! predicate over endpoint names, [`Monitor::set_probing`], whenever the assignment may have
//! changed. Each entry keeps a flag its probers read before each probe: a turn of an endpoint
//! given away costs nothing but the timer. The predicate is kept, so the endpoints a reload adds
//! start as it says.
//!
//! An endpoint given away starts afresh: its health goes back to unknown (no verdict, so it
//! does not vote, and it cannot decay to down from probes that no longer come), its latency
//! window empties (this vantage measures nothing of it), its override stays. Given back, its
//! first results decide its health as at start-up.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Entry, Monitor, clock};
use crate::health::latency::LatencyWindow;
use crate::health::state::EndpointHealth;

/// Which endpoints to probe, by name.
pub type Probes = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Detail shown for an endpoint this instance does not probe.
const GIVEN_AWAY: &str = "not probed here: probe sharding gives it to other instances";

/// Make `e` probe or not; whether that changed anything.
pub(super) fn set(e: &mut Entry, probe: bool, now: Instant) -> bool {
    if e.probing.swap(probe, Ordering::Relaxed) == probe {
        return false;
    }
    if !probe {
        let mut health = EndpointHealth::new(&e.params, now);
        if let Some((kind, until)) = e.health.override_state() {
            health.set_override(kind, until, now);
        }
        e.health = health;
        e.latency = LatencyWindow::new(now);
        e.last_detail = GIVEN_AWAY.to_string();
    }
    true
}

impl Monitor {
    /// Probe the endpoints `probes` says yes to, and only those (`None`: every endpoint), from
    /// now and after every reload until told otherwise. The view shows the change before this
    /// returns. How many endpoints this instance probes now.
    pub fn set_probing(&self, probes: Option<Probes>) -> usize {
        let sh = &self.shared;
        let mut st = sh.state();
        let now = clock::now();
        let (mut started, mut stopped) = (0, 0);
        for i in 0..st.entries.len() {
            let probe = probes.as_ref().is_none_or(|p| p(&st.entries[i].name));
            if set(&mut st.entries[i], probe, now) {
                if probe {
                    started += 1;
                } else {
                    stopped += 1;
                }
                st.refresh(i, now);
            }
        }
        st.probes = probes;
        let probing = st.entries.iter().filter(|e| e.probing()).count();
        if started + stopped > 0 {
            tracing::info!(
                started,
                stopped,
                probing,
                endpoints = st.entries.len(),
                "probe sharding: endpoints probed here changed"
            );
            sh.publish(st, now);
        }
        probing
    }

    /// How many endpoints this instance probes now, and how many it has.
    pub fn probing(&self) -> (usize, usize) {
        let st = self.shared.state();
        let probing = st.entries.iter().filter(|e| e.probing()).count();
        (probing, st.entries.len())
    }
}
