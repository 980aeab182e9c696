//! A health monitor on its own, started in the test's runtime from configuration text, for
//! tests that drive it on tokio's paused time (`#[tokio::test(start_paused = true)]`): the
//! monitor reads tokio's clock, so its probes, rise and fall, hold-downs, overrides' expiry and
//! latency windows move with `tokio::time::sleep` and `advance`, not with the wall clock. Its
//! probes are real: point its checks at targets served by the same runtime ([`Switch`]), whose
//! replies come at once (or exactly their delay of virtual time later).
//!
//! [`Switch`]: super::target::Switch

use std::path::Path;
use std::time::Duration;

use meridian::config::Config;
use meridian::config::model::EndpointId;
use meridian::health::state::{Health, Serving};
use meridian::monitor::{EndpointStatus, Monitor};
use meridian::snapshot::steering::EndpointView;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A running monitor, the configuration it was started with, and its tasks.
pub struct TestMonitor {
    pub monitor: Monitor,
    pub config: Config,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// Configuration text: one pool `p` of `endpoints` (name, check; an empty check: none), after
/// the `checks` tables. Every endpoint answers 192.0.2.1; checked ones are probed on 127.0.0.1.
pub fn pool(checks: &str, endpoints: &[(&str, &str)]) -> String {
    let mut text = format!("[dns]\nlisten = [\"127.0.0.1:0\"]\n{checks}[[pool]]\nname = \"p\"\n");
    for (name, check) in endpoints {
        text.push_str(&format!(
            "[[pool.endpoint]]\nname = \"{name}\"\naddress = \"192.0.2.1\"\n"
        ));
        if !check.is_empty() {
            text.push_str(&format!(
                "check_address = \"127.0.0.1\"\nchecks = [\"{check}\"]\n"
            ));
        }
    }
    text
}

/// Sleep until `secs` after `t0` (on paused time: jump there, running everything due on the
/// way).
pub async fn at(t0: tokio::time::Instant, secs: f64) {
    tokio::time::sleep_until(t0 + Duration::from_secs_f64(secs)).await;
}

/// Compile configuration text (its `[dns]` table included); relative paths in it resolve to /.
pub fn config(text: &str) -> Config {
    Config::parse(Path::new("/meridian.toml"), text).unwrap_or_else(|e| panic!("config: {e}"))
}

impl TestMonitor {
    /// Start a monitor for `config` on the current runtime.
    pub fn start(config: &Config) -> TestMonitor {
        let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
        let monitor = Monitor::start(config, cancel.clone(), &tracker);
        TestMonitor {
            monitor,
            config: config.clone(),
            cancel,
            tracker,
        }
    }

    /// Stop every task of the monitor and wait until they have ended.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .expect("monitor tasks end");
    }

    /// The status of the endpoint called `name`.
    pub fn status(&self, name: &str) -> EndpointStatus {
        self.monitor
            .status()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no endpoint {name}"))
    }

    /// The combined health of `name`.
    pub fn health(&self, name: &str) -> Health {
        self.status(name).health
    }

    /// The id of `name` in the configuration the monitor was started with.
    pub fn id(&self, name: &str) -> EndpointId {
        id_in(&self.config, name)
    }

    /// The slot of `name` in the published view, which must be of the configuration the
    /// monitor was started with.
    pub fn slot(&self, name: &str) -> EndpointView {
        let view = self.monitor.view();
        assert_eq!(
            view.layout(),
            self.config.model.layout,
            "view of another layout"
        );
        view.get(self.id(name))
    }

    /// What the published view says `name` serves.
    pub fn serving(&self, name: &str) -> Serving {
        self.slot(name).serving
    }
}

impl Drop for TestMonitor {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The id of the endpoint called `name` in `config`.
pub fn id_in(config: &Config, name: &str) -> EndpointId {
    config
        .pools
        .iter()
        .flat_map(|p| p.endpoints.iter())
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no endpoint {name}"))
        .id
}
