//! One secondary zone's life: its task refreshes the zone from the primaries on the SOA's
//! timers and on NOTIFY, publishes each new version, keeps the copy on disk, and withdraws the
//! zone when its expire time passes without a successful refresh.
//!
//! Timers (RFC 1035 §3.3.13, RFC 1996): the first check is at once; after a successful check
//! the next is `refresh` seconds later, after a failed one `retry` seconds later (each at least
//! [`MIN_INTERVAL`]; [`NO_DATA_RETRY`] before any SOA is held). A NOTIFY wakes the task to check
//! at once. A check asks each primary's SOA in order; when the first that answers has a newer
//! serial (RFC 1982), the zone is transferred from it: IXFR from the serial held (its
//! differences applied to the records held; an AXFR-style answer taken whole), AXFR when
//! nothing is held or the increments do not apply. Every failure leaves the served data as it
//! was, is logged and counted, and the next primary is tried.
//!
//! The expire clock runs from the last successful check; the kept file's modification time is
//! set to it, so a restart that serves the kept copy knows how long it may.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use hickory_proto::rr::{Name, RData};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{self, ClientError, Limits};
use super::records::{Record, Records, write_kept};
use super::transfer::{Transfer, apply};
use super::{Shared, ZoneStatus};
use crate::config::ZoneSource;
use crate::control::Publisher;
use crate::zone::transfer::serial_newer;

/// Shortest refresh or retry interval, whatever the SOA says.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Retry interval while no SOA is held (nothing transferred yet).
pub const NO_DATA_RETRY: Duration = Duration::from_secs(10);

/// What one check did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The primary's serial is not newer: nothing to transfer.
    Current,
    /// A new version came by IXFR differences.
    Ixfr,
    /// A new version came whole (AXFR, or an AXFR-style IXFR answer).
    Axfr,
}

impl Checked {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Checked::Current => "current",
            Checked::Ixfr => "ixfr",
            Checked::Axfr => "axfr",
        }
    }
}

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{primary}: {error}")]
    Primary {
        primary: std::net::SocketAddr,
        error: ClientError,
    },
    #[error("{primary}: the transferred zone is not servable: {reason}")]
    Unservable {
        primary: std::net::SocketAddr,
        reason: String,
    },
    #[error("no primary answered")]
    NoPrimary,
}

/// One zone's task state.
pub struct ZoneTask {
    pub origin: Name,
    pub apex: Box<[u8]>,
    pub source: ZoneSource,
    pub publisher: Publisher,
    pub shared: Shared,
    pub limits: Limits,
    /// The records held: the version served (or last served).
    held: Option<Records>,
    /// Whether the zone is in the served catalog.
    serving: bool,
    expires: Option<Instant>,
    /// The master file of a version published but not yet written to the kept copy.
    unwritten: Option<String>,
}

fn soa_of(held: &Records) -> Option<&hickory_proto::rr::rdata::SOA> {
    held.soa()
}

fn secs(s: i32) -> Duration {
    Duration::from_secs(s.max(0) as u64)
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl ZoneTask {
    pub fn new(source: ZoneSource, publisher: Publisher, shared: Shared) -> ZoneTask {
        ZoneTask {
            origin: source.origin.clone(),
            apex: crate::zone::build::lower_wire(&source.origin),
            source,
            publisher,
            shared,
            limits: Limits::default(),
            held: None,
            serving: false,
            expires: None,
            unwritten: None,
        }
    }

    /// TSIG for this zone's requests: its key (`[[zone]] key`) from the served key ring, read
    /// at each check so that a reload's new secret is used at once.
    fn signing(&self) -> client::Signing {
        let key = self
            .source
            .secondary
            .as_ref()
            .and_then(|s| s.key_index)
            .and_then(|i| self.publisher.current().tsig_keys.get(i).cloned());
        client::Signing::new(key)
    }

    fn file(&self) -> &PathBuf {
        &self.source.file
    }

    fn label(&self) -> String {
        self.origin.to_string()
    }

    /// The kept copy, if there is one that loads: its records, and when it expires (its
    /// modification time is the last successful check).
    fn read_kept(&mut self) {
        if !self.file().exists() {
            return;
        }
        match crate::zone::file::read_zone_file(self.file(), &self.origin) {
            Ok(records) => {
                let held = Records::from_source(records);
                let Some(soa) = soa_of(&held) else { return };
                let checked = std::fs::metadata(self.file())
                    .and_then(|m| m.modified())
                    .unwrap_or_else(|_| SystemTime::now());
                let age = SystemTime::now()
                    .duration_since(checked)
                    .unwrap_or_default();
                let left = secs(soa.expire).saturating_sub(age);
                self.expires = Some(Instant::now() + left);
                self.publish_gauges(soa.serial, SystemTime::now() + left, soa.expire);
                self.serving = self
                    .publisher
                    .current()
                    .catalog
                    .zone_at_apex(&self.apex)
                    .is_some();
                self.held = Some(held);
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!(zone = %self.origin, "kept copy not read: {e}");
                }
            }
        }
    }

    fn publish_gauges(&self, serial: u32, expires_at: SystemTime, expire: i32) {
        let zone = self.label();
        metrics::gauge!("meridian_secondary_serial", "zone" => zone.clone()).set(serial as f64);
        metrics::gauge!("meridian_secondary_expire_seconds", "zone" => zone.clone())
            .set(expire.max(0) as f64);
        metrics::gauge!("meridian_secondary_expires_timestamp_seconds", "zone" => zone)
            .set(unix(expires_at));
        self.shared.update(&self.origin, |s| {
            s.serial = Some(serial);
            s.expires_at = Some(unix(expires_at) as u64);
        });
    }

    /// Run until cancelled.
    pub async fn run(mut self, cancel: CancellationToken) {
        // The zone's counters exist from the start (at 0), so rates and alerts see them.
        for name in [
            "meridian_secondary_notifies_total",
            "meridian_secondary_kept_write_errors_total",
        ] {
            metrics::counter!(name, "zone" => self.label()).increment(0);
        }
        self.read_kept();
        let Some(wake) = self.publisher.wake(&self.apex) else {
            return; // not a secondary zone of the served configuration (a reload removed it)
        };
        let mut next = Instant::now();
        loop {
            let until = match self.expires.filter(|_| self.serving) {
                Some(e) => next.min(e),
                None => next,
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(until) => {}
                _ = wake.notified() => {
                    tracing::info!(zone = %self.origin, "NOTIFY from a primary: checking its SOA");
                    metrics::counter!("meridian_secondary_notifies_total", "zone" => self.label()).increment(1);
                    next = Instant::now();
                }
            }
            let now = Instant::now();
            if self.serving && self.expires.is_some_and(|e| e <= now) {
                self.expire();
            }
            if next <= now {
                let outcome = self.check().await;
                next = Instant::now() + self.interval(outcome.is_ok());
                // Status first, then the disk: what is served is said at once.
                self.record(outcome);
                self.write_kept().await;
            }
        }
    }

    /// No successful check for `expire` seconds: stop serving the zone.
    fn expire(&mut self) {
        if self.publisher.replace_zone(&self.apex, None) {
            tracing::error!(zone = %self.origin, "secondary zone expired: no successful refresh within the SOA expire; not served until a transfer succeeds");
        }
        self.serving = false;
        self.shared.update(&self.origin, |s| s.serving = false);
    }

    fn interval(&self, ok: bool) -> Duration {
        match self.held.as_ref().and_then(soa_of) {
            None => NO_DATA_RETRY,
            Some(soa) if ok => secs(soa.refresh).max(MIN_INTERVAL),
            Some(soa) => secs(soa.retry).max(MIN_INTERVAL),
        }
    }

    fn record(&mut self, outcome: Result<(std::net::SocketAddr, Checked), CheckError>) {
        let result = match &outcome {
            Ok((_, c)) => c.as_str(),
            Err(_) => "failed",
        };
        metrics::counter!("meridian_secondary_refresh_total", "zone" => self.label(), "result" => result)
            .increment(1);
        let primary = match &outcome {
            Ok((p, _)) => Some(p.to_string()),
            Err(CheckError::Primary { primary, .. } | CheckError::Unservable { primary, .. }) => {
                Some(primary.to_string())
            }
            Err(CheckError::NoPrimary) => None,
        };
        if let Err(e) = &outcome {
            tracing::warn!(zone = %self.origin, "secondary refresh failed, the data held serves on: {e}");
        }
        let detail = outcome.as_ref().err().map(|e| e.to_string());
        let serving = self.serving;
        self.shared.update(&self.origin, |s| {
            s.last_refresh = Some(unix(SystemTime::now()) as u64);
            s.last_result = result;
            s.detail = detail;
            if primary.is_some() {
                s.primary = primary;
            }
            s.serving = serving;
        });
    }

    /// Ask the primaries in order; transfer from the first whose serial is newer.
    async fn check(&mut self) -> Result<(std::net::SocketAddr, Checked), CheckError> {
        let mut last = CheckError::NoPrimary;
        for &primary in &self
            .source
            .secondary
            .as_ref()
            .map(|s| s.primaries.clone())
            .unwrap_or_default()
        {
            match self.check_one(primary).await {
                Ok(c) => return Ok((primary, c)),
                Err(e) => {
                    tracing::debug!(zone = %self.origin, "{e}");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn check_one(&mut self, primary: std::net::SocketAddr) -> Result<Checked, CheckError> {
        let fail = |error| CheckError::Primary { primary, error };
        let theirs = client::query_soa(primary, &self.origin, &self.signing(), &self.limits)
            .await
            .map_err(fail)?;
        let ours = self.held.as_ref().and_then(soa_of).map(|s| s.serial);
        if let Some(ours) = ours
            && !serial_newer(theirs, ours)
        {
            self.succeeded();
            return Ok(Checked::Current);
        }
        let held_soa: Option<Record> = self
            .held
            .as_ref()
            .and_then(|h| h.iter().find(|r| matches!(r.rdata, RData::SOA(_))).cloned());
        let mut got = client::transfer(
            primary,
            &self.origin,
            held_soa.as_ref(),
            &self.signing(),
            &self.limits,
        )
        .await
        .map_err(fail)?;
        let mut kind = Checked::Axfr;
        let records = loop {
            match got.transfer {
                Transfer::Full(records) => break records,
                Transfer::Incremental(diffs) => {
                    let held = self.held.as_ref().expect("an IXFR is asked only with data");
                    match apply(held, &diffs) {
                        Ok(records) => {
                            kind = Checked::Ixfr;
                            break records;
                        }
                        Err(e) => {
                            tracing::warn!(zone = %self.origin, %primary, "IXFR differences do not apply ({e}): AXFR instead");
                        }
                    }
                }
                Transfer::UpToDate(serial) => {
                    tracing::info!(zone = %self.origin, %primary, serial, "IXFR answered with the SOA alone: AXFR instead");
                }
            }
            if held_soa.is_none() {
                return Err(fail(ClientError::NoSoa));
            }
            got = client::transfer(primary, &self.origin, None, &self.signing(), &self.limits)
                .await
                .map_err(fail)?;
            if matches!(
                got.transfer,
                Transfer::Incremental(_) | Transfer::UpToDate(_)
            ) {
                return Err(fail(ClientError::Mismatch("an AXFR answered as an IXFR")));
            }
        };
        if got.skipped > 0 {
            tracing::warn!(zone = %self.origin, skipped = got.skipped, "records of types Meridian does not serve (DNSSEC, unknown) left out");
        }
        let serial = records.soa().map(|s| s.serial).unwrap_or(0);
        if let Some(ours) = ours
            && !serial_newer(serial, ours)
        {
            return Err(CheckError::Unservable {
                primary,
                reason: format!("serial {serial} is not newer than the {ours} held"),
            });
        }
        let mut zone = records
            .to_zone(&self.origin, self.file())
            .map_err(|errors| CheckError::Unservable {
                primary,
                reason: errors
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        zone.transfer = self.source.transfer.as_ref().map(|t| t.as_slice().into());
        zone.transfer_keys = self.source.transfer_keys.as_slice().into();
        let text = records.master_file(&self.origin);
        if !self.publisher.replace_zone(&self.apex, Some(zone)) {
            return Err(CheckError::Unservable {
                primary,
                reason: "no longer a secondary zone of the configuration served".into(),
            });
        }
        self.serving = true;
        tracing::info!(zone = %self.origin, %primary, serial, kind = kind.as_str(), records = records.len(), messages = got.messages, "secondary zone updated");
        self.held = Some(records);
        self.unwritten = Some(text);
        self.succeeded();
        Ok(kind)
    }

    /// Write the kept copy of the version just published, if any: a failure is logged and
    /// counted; the new data serves anyway.
    async fn write_kept(&mut self) {
        let Some(text) = self.unwritten.take() else {
            return;
        };
        let file = self.file().clone();
        let written = tokio::task::spawn_blocking(move || write_kept(&file, &text))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        if let Err(e) = written {
            tracing::error!(zone = %self.origin, file = %self.file().display(), "kept copy not written: {e}");
            metrics::counter!("meridian_secondary_kept_write_errors_total", "zone" => self.label())
                .increment(1);
        }
    }

    /// A successful check: the expire clock starts again (and the kept file says so); an
    /// expired zone is served again.
    fn succeeded(&mut self) {
        let Some(held) = &self.held else { return };
        let Some(soa) = soa_of(held) else { return };
        let (serial, expire) = (soa.serial, soa.expire);
        let now = SystemTime::now();
        self.expires = Some(Instant::now() + secs(expire));
        if let Ok(f) = std::fs::File::options().append(true).open(self.file()) {
            let _ = f.set_modified(now);
        }
        self.publish_gauges(serial, now + secs(expire), expire);
        if !self.serving {
            match held.to_zone(&self.origin, self.file()) {
                Ok(mut zone) => {
                    zone.transfer = self.source.transfer.as_ref().map(|t| t.as_slice().into());
                    zone.transfer_keys = self.source.transfer_keys.as_slice().into();
                    self.serving = self.publisher.replace_zone(&self.apex, Some(zone));
                    tracing::info!(zone = %self.origin, serial, "secondary zone served again");
                }
                Err(e) => tracing::error!(zone = %self.origin, "held records do not build: {e:?}"),
            }
        }
        self.shared.update(&self.origin, |s| s.serving = true);
    }
}

/// A zone's status before its task has done anything.
pub fn initial_status(origin: &Name) -> ZoneStatus {
    ZoneStatus {
        origin: origin.to_string(),
        serial: None,
        primary: None,
        last_refresh: None,
        last_result: "none",
        detail: None,
        expires_at: None,
        serving: false,
    }
}
