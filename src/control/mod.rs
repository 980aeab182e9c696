//! The running server's control surface: reload, status, readiness.
//!
//! One cloneable handle shared by the signal handler, the admin API and tests, so that every way
//! of reloading goes through [`Control::reload`] and every reader sees the same state. A reload
//! parses, validates and compiles the whole configuration aside; only a complete success is
//! applied (health monitor reconciled, tables built, snapshot swapped). A failure changes
//! nothing, is logged with every problem, counted, and returned.
//!
//! Layer 7 of ARCHITECTURE.md: uses only modules of lower layers.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub mod publisher;

pub use publisher::Publisher;

use crate::config::{Config, ConfigErrors};
use crate::monitor::Monitor;
use crate::snapshot::Snapshot;

/// Handle to a running server's state.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

struct Inner {
    publisher: Publisher,
    monitor: Monitor,
    config: Mutex<Config>,
    /// Serialises reloads: two at once would race on the monitor.
    reloading: Mutex<()>,
    generation: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

/// What a successful reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Configuration generation now in force (1 = as started).
    pub generation: u64,
    /// Settings that only a restart changes, if the new configuration changed any.
    pub needs_restart: Vec<String>,
}

impl Control {
    pub(crate) fn new(publisher: Publisher, monitor: Monitor, config: Config) -> Control {
        Control {
            inner: Arc::new(Inner {
                publisher,
                monitor,
                config: Mutex::new(config),
                reloading: Mutex::new(()),
                generation: AtomicU64::new(1),
                reloads_ok: AtomicU64::new(0),
                reloads_failed: AtomicU64::new(0),
            }),
        }
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.publisher.current()
    }

    /// The served snapshot's only writer.
    pub fn publisher(&self) -> &Publisher {
        &self.inner.publisher
    }

    /// The health monitor.
    pub fn monitor(&self) -> &Monitor {
        &self.inner.monitor
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.inner.config.lock().expect("config lock").clone()
    }

    /// `f` of the configuration in force, read in place: a large configuration is not copied.
    /// The configuration cannot change while `f` runs (a reload waits), so keep `f` short.
    pub fn with_config<T>(&self, f: impl FnOnce(&Config) -> T) -> T {
        f(&self.inner.config.lock().expect("config lock"))
    }

    /// The configuration file reloads read.
    pub fn config_path(&self) -> PathBuf {
        self.inner.config.lock().expect("config lock").path.clone()
    }

    /// Configuration generation: 1 at start, +1 per applied reload.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Relaxed)
    }

    /// Reloads applied and refused since start.
    pub fn reload_counts(&self) -> (u64, u64) {
        (
            self.inner.reloads_ok.load(Ordering::Relaxed),
            self.inner.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// Zones are loaded (always, once serving) and every health check has a first verdict.
    pub fn ready(&self) -> bool {
        self.inner.monitor.ready()
    }

    /// Apply an already validated configuration and its snapshot: reconcile the health monitor
    /// (surviving endpoints keep their state), build decision tables from it, swap.
    pub fn apply(&self, config: Config, snapshot: Snapshot) -> Reloaded {
        let _one = self.inner.reloading.lock().expect("reload lock");
        let mut needs_restart = Vec::new();
        {
            let old = self.inner.config.lock().expect("config lock");
            if old.listen != config.listen {
                needs_restart.push("dns.listen".to_string());
            }
            if old.workers != config.workers {
                needs_restart.push("dns.workers".to_string());
            }
            if old.tcp != config.tcp {
                needs_restart.push("dns.tcp_*".to_string());
            }
            if format!("{:?}", old.admin) != format!("{:?}", config.admin) {
                needs_restart.push("admin".to_string());
            }
        }
        self.inner.monitor.reconcile(&config);
        self.inner.publisher.publish(snapshot);
        *self.inner.config.lock().expect("config lock") = config;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        Reloaded {
            generation,
            needs_restart,
        }
    }

    /// Re-read the configuration file and everything it names; apply it only if all of it is
    /// valid. Blocking (file I/O): call from a blocking context.
    pub fn reload(&self) -> Result<Reloaded, ConfigErrors> {
        let path = self.config_path();
        // Zones whose files did not change are kept, not read again (their data is shared).
        let served = self.snapshot();
        match crate::snapshot::load_after(&path, Some(&served.catalog)) {
            Ok((config, snap)) => {
                let r = self.apply(config, snap);
                release_when_unused(served);
                self.inner.reloads_ok.fetch_add(1, Ordering::Relaxed);
                for setting in &r.needs_restart {
                    tracing::warn!(setting, "changed setting takes effect only on restart");
                }
                tracing::info!(config = %path.display(), generation = r.generation, "reloaded");
                Ok(r)
            }
            Err(errors) => {
                self.inner.reloads_failed.fetch_add(1, Ordering::Relaxed);
                for e in &errors.0 {
                    tracing::error!(
                        "reload refused, still serving the previous configuration: {e}"
                    );
                }
                Err(errors)
            }
        }
    }
}

/// Once no one else holds `old` (the workers move to the new snapshot at their next batch), drop
/// it and give what the allocator keeps of its zones and indexes back to the system: without
/// that, a reload of a large changed zone leaves the process about a zone's size larger each
/// time. Waits at most 5 s, on a thread of its own.
fn release_when_unused(old: Arc<Snapshot>) {
    let spawned = std::thread::Builder::new()
        .name("meridian-release".into())
        .spawn(move || {
            for _ in 0..50 {
                if Arc::strong_count(&old) == 1 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            drop(old);
            #[cfg(target_env = "gnu")]
            // SAFETY: malloc_trim only returns free memory to the system; it takes no pointer.
            unsafe {
                libc::malloc_trim(0);
            }
        });
    if let Err(e) = spawned {
        tracing::debug!("memory not trimmed after the reload: {e}");
    }
}
