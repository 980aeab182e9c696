//! Prometheus metrics: names, descriptions, buckets, and allocation-free counting on the query
//! path.
//!
//! Names follow `meridian_<component>_<thing>_<unit|total>`; every metric is described once
//! ([`install`]). The query path never calls into the `metrics` registry: each DNS worker owns a
//! [`Tally`] of plain `u64` arrays indexed by zone, query type, RCODE and transport (and, for
//! steered answers, by service, client region and endpoint) and flushes it into pre-registered
//! counter handles every [`FLUSH_EVERY`] queries or when idle. Label strings are built only when
//! the configuration changes (a reload), never per query. Health, policy and reload metrics are
//! recorded where those events happen, off the query path.
//!
//! Layer 6 of ARCHITECTURE.md: uses only modules of lower layers.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{Counter, Unit, counter, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::dns::answer::{Outcome, Steered, SteeredState, Transport};
use crate::dns::rrl::{Action, Class};
use crate::snapshot::Snapshot;
use crate::wire::Rcode;
use crate::wire::cookie::Verdict;
use labels::Labels;

mod labels;

/// A worker pushes its local counts to the registry after this many queries (and when idle).
pub const FLUSH_EVERY: u32 = 1024;
/// One query in this many has its answer time measured.
const LATENCY_SAMPLE: u32 = 64;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the Prometheus recorder (once per process) and describe every metric.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("meridian_health_probe_rtt_seconds".into()),
                &[
                    0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                    1.0, 2.5, 5.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("meridian_policy_table_rebuild_duration_seconds".into()),
                    &[0.000_01, 0.000_1, 0.001, 0.01, 0.1, 1.0],
                )
            })
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program): then ours still
        // renders, and the embedding program's gets the events.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        zero_fault_counters();
        handle
    })
}

/// The dependency faults' counters, at zero from the start: an alert's `increase()` or `rate()`
/// sees the first fault only when the series was there before it (one that appears at 1 shows no
/// increase).
fn zero_fault_counters() {
    for result in ["ok", "error"] {
        counter!("meridian_geo_database_reloads_total", "result" => result).increment(0);
    }
    for operation in ["read", "write"] {
        counter!("meridian_health_state_file_errors_total", "operation" => operation).increment(0);
    }
    for result in ["delivered", "failed", "dropped"] {
        counter!("meridian_health_webhook_deliveries_total", "result" => result).increment(0);
    }
    for direction in ["forward", "backward"] {
        counter!("meridian_clock_jumps_total", "direction" => direction).increment(0);
    }
}

/// Count one zone transfer request (`kind` "axfr" or "ixfr", `result` "served" or "refused"). Off the
/// query path: transfers are rare, and the label strings are built here.
pub fn count_transfer(zone: &str, kind: &'static str, result: &'static str) {
    counter!("meridian_xfr_requests_total", "zone" => zone.to_string(), "kind" => kind, "result" => result)
        .increment(1);
}

/// Count one signed query or transfer request whose TSIG did not verify, by error (badkey,
/// badsig, badtime, badtrunc, formerr). Off the query path: such requests are rare.
pub fn count_tsig_error(error: crate::wire::tsig::TsigError) {
    counter!("meridian_tsig_errors_total", "error" => error.as_str()).increment(1);
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    let h = install();
    h.run_upkeep();
    let mut out = h.render();
    render_answer_durations(&mut out);
    out
}

/// Upper bounds (seconds) of the answer-time histogram buckets.
const ANSWER_BUCKETS: [f64; 10] = [
    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 5e-5, 1e-4, 1e-3,
];

/// The answer-time histogram, kept by hand: the registry's histograms store samples in
/// growing buffers, which would allocate on the query path. Per transport: one count per
/// bucket (+Inf last), the sum in nanoseconds.
struct AnswerDurations {
    buckets: [[AtomicU64; ANSWER_BUCKETS.len() + 1]; 2],
    sum_ns: [AtomicU64; 2],
}

static ANSWER_DURATIONS: AnswerDurations = AnswerDurations {
    buckets: [const { [const { AtomicU64::new(0) }; ANSWER_BUCKETS.len() + 1] }; 2],
    sum_ns: [const { AtomicU64::new(0) }; 2],
};

fn render_answer_durations(out: &mut String) {
    use std::fmt::Write as _;
    let name = "meridian_dns_answer_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time to parse and answer one query (sampled 1 in {LATENCY_SAMPLE})."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (t, transport) in TRANSPORTS.iter().enumerate() {
        let mut cumulative = 0;
        for (i, le) in ANSWER_BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_string()])
            .enumerate()
        {
            cumulative += ANSWER_DURATIONS.buckets[t][i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{transport=\"{transport}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = ANSWER_DURATIONS.sum_ns[t].load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{transport=\"{transport}\"}} {sum}");
        let _ = writeln!(
            out,
            "{name}_count{{transport=\"{transport}\"}} {cumulative}"
        );
    }
}

fn describe() {
    describe_counter!(
        "meridian_dns_queries_total",
        "DNS queries answered, by zone, query type, RCODE and transport."
    );
    describe_counter!(
        "meridian_dns_responses_truncated_total",
        "UDP responses cut back with TC=1, by transport."
    );
    describe_counter!(
        "meridian_dns_ecs_queries_total",
        "Queries by presence of an EDNS Client Subnet option."
    );
    describe_counter!(
        "meridian_dns_dropped_total",
        "Datagrams not answered (responses, runts, oversized)."
    );
    describe_counter!(
        "meridian_rrl_limited_total",
        "UDP responses over the rate limit ([rrl]), by class (positive, empty, nxdomain, error, large, any) and action: dropped, or slipped (sent truncated, TC=1)."
    );
    describe_counter!(
        "meridian_dns_cookies_total",
        "Queries with a COOKIE option, by result: client_only (a server cookie issued), valid (a server cookie made here for that address within the hour: exempt from rate limiting), invalid (answered as client_only, or BADCOOKIE with [cookies] strict)."
    );
    describe_counter!(
        "meridian_tcp_connections_refused_total",
        "TCP connections closed on accept, by reason: max_connections (tcp_max_connections open) or max_per_client (tcp_max_connections_per_client open from that address)."
    );
    describe_counter!(
        "meridian_tcp_connections_closed_total",
        "TCP connections closed, by reason: client (it closed first), idle (no message for tcp_idle_timeout_secs), read_timeout (a message not complete within tcp_io_timeout_ms), write_timeout (answers not taken within tcp_io_timeout_ms), max_queries (tcp_max_queries answered), error, shutdown."
    );
    describe_gauge!("meridian_tcp_connections_open", "TCP connections open now.");
    describe_counter!(
        "meridian_xfr_requests_total",
        "Zone transfer requests over TCP for a served zone's apex, by zone, kind (axfr, ixfr) and result: served, refused (no [zone.transfer], or a source outside allow without one of keys), badtsig (a TSIG that did not verify: answered NOTAUTH)."
    );
    describe_counter!(
        "meridian_tsig_errors_total",
        "Signed queries and transfer requests whose TSIG did not verify, by error: badkey (unknown key or algorithm), badsig (wrong MAC), badtime (clock outside the fudge), badtrunc, formerr. Answered NOTAUTH (FORMERR for formerr)."
    );
    describe_gauge!(
        "meridian_zone_records",
        "Records of each zone as last read from its files."
    );
    describe_gauge!(
        "meridian_zone_bytes",
        "Bytes each zone's records and index hold (allocator overhead aside), as last read."
    );
    describe_gauge!(
        "meridian_zone_load_seconds",
        "How long each zone's last read from its files took (a reload keeps unchanged zones without reading them)."
    );
    describe_gauge!(
        "meridian_zone_serial",
        "Serial served per zone with [zone.transfer]: the version its secondaries should reach."
    );
    describe_gauge!(
        "meridian_zone_journal_versions",
        "Versions a zone's journal keeps for incremental transfers (IXFR); a secondary further behind takes the whole zone."
    );
    describe_counter!(
        "meridian_zone_versions_total",
        "New zone versions (a new serial), by zone and cause: file (a reload changed the zone) or snapshot (a service's answer changed)."
    );
    describe_counter!(
        "meridian_zone_serial_not_raised_total",
        "Reloads that changed a zone without raising its file's serial (the served serial was raised by one), by zone."
    );
    describe_counter!(
        "meridian_notify_total",
        "NOTIFY to secondaries, by zone and result: sent (each datagram), acked, refused (an error RCODE), unanswered (after 5 tries)."
    );
    describe_counter!(
        "meridian_dns_kept_responses_total",
        "UDP queries answered from prepared data, by result: hit (a kept response to the same bytes) or miss (answered, then kept)."
    );
    describe_counter!(
        "meridian_policy_answers_total",
        "Steered answers by service and client region (region \"any\" when the answer is the same everywhere and the client is not located)."
    );
    describe_counter!(
        "meridian_policy_endpoint_answers_total",
        "Endpoints given in steered answers, by service, pool and endpoint."
    );
    describe_counter!(
        "meridian_policy_degraded_answers_total",
        "Steered answers from a degraded decision, by service and kind: withdrawn (endpoints down or drained, no spill), spill (part of the region's traffic goes to other pools), standby, fallback."
    );
    describe_counter!(
        "meridian_policy_table_rebuilds_total",
        "Decision-table rebuilds."
    );
    describe_histogram!(
        "meridian_policy_table_rebuild_duration_seconds",
        Unit::Seconds,
        "Time to rebuild the decision tables."
    );
    describe_gauge!(
        "meridian_policy_service_degraded",
        "1 while any client region of the service is answered from a degraded decision."
    );
    describe_gauge!(
        "meridian_fleet_vantages_deciding",
        "Vantages whose health verdicts decide now: this instance plus its fresh fleet peers (1: the local verdict alone)."
    );
    describe_gauge!(
        "meridian_policy_tables_fingerprint",
        "A digest (48 bits) of every answer the decision tables give: instances of a fleet with the same configuration, health and measurements show the same value."
    );
    describe_gauge!(
        "meridian_policy_pool_load_ratio",
        "Share of the service's demand ([geo] demand) the pool takes now, spill bounded by capacity; only for services whose spill is bounded."
    );
    describe_gauge!(
        "meridian_policy_pool_budget_ratio",
        "Most share of the service's demand spill may bring the pool to (its max_share, else its baseline share x overprovisioning, x its healthy fraction); absent when unbounded."
    );
    describe_gauge!(
        "meridian_health_endpoint_up",
        "1 when the endpoint serves in answers, 0 when down or drained."
    );
    describe_gauge!(
        "meridian_health_endpoint_state_seconds",
        Unit::Seconds,
        "Time since the endpoint's health last changed."
    );
    describe_gauge!(
        "meridian_health_endpoint_override",
        "1 for the manual override in force on the endpoint (kind drain, force-up or force-down), else 0."
    );
    describe_counter!(
        "meridian_health_probes_total",
        "Probe attempts by endpoint, check and result."
    );
    describe_histogram!(
        "meridian_health_probe_rtt_seconds",
        Unit::Seconds,
        "Probe round-trip time by endpoint and check."
    );
    describe_counter!(
        "meridian_health_transitions_total",
        "Endpoint health changes, by endpoint and new state."
    );
    describe_counter!(
        "meridian_fleet_pulls_total",
        "Pulls of a fleet peer's observations, by peer and result: ok, http_error, unauthorized, too_large, garbage, stale, future, self, wrong_version, timeout, unreachable (only ok changes the peer's data)."
    );
    describe_gauge!(
        "meridian_fleet_peer_fresh",
        "1 while the fleet peer's newest accepted observations are younger than max_age, else 0; NaN for a series that no longer stands for a configured peer."
    );
    describe_gauge!(
        "meridian_fleet_peer_age_seconds",
        Unit::Seconds,
        "Time since the fleet peer's newest accepted observations were received."
    );
    describe_gauge!(
        "meridian_fleet_probed_endpoints",
        "Endpoints this instance probes now: all of them unless [fleet] probes_per_endpoint shards the probing across the live instances."
    );
    describe_counter!(
        "meridian_fleet_observation_requests_total",
        "Requests for this instance's observations (GET /fleet/observations), by result: ok, unauthorized (no or a wrong fleet token)."
    );
    describe_counter!(
        "meridian_config_reloads_total",
        "Configuration reloads by result (ok, error)."
    );
    describe_gauge!(
        "meridian_config_generation",
        "Configuration generation in force (1 at start)."
    );
    describe_counter!(
        "meridian_geo_database_reloads_total",
        "GeoIP database file checks that found a change (checked every 10 s), by result: ok (the new database swapped in) or error (missing, unreadable or not a valid database: the loaded one serves on; a missing file counts at every check)."
    );
    describe_counter!(
        "meridian_health_state_file_errors_total",
        "State file ([health] state_file) failures, by operation: read (unreadable, over its size limit or not valid: overrides unchanged) or write (an override changed but could not be saved: it holds until a restart)."
    );
    describe_counter!(
        "meridian_health_webhook_deliveries_total",
        "State change notifications to webhooks, by result: delivered (one per webhook), failed (every attempt failed: refused, unreachable or timed out), dropped (the queue of 1,024 changes was full)."
    );
    describe_counter!(
        "meridian_clock_jumps_total",
        "Steps of the system's wall clock against its monotonic clock (a second or more between two readings a second apart), by direction: forward or backward. Health, latency, overrides in force and rate limiting run on the monotonic clock."
    );
    describe_gauge!(
        "meridian_geo_database_build_timestamp_seconds",
        Unit::Seconds,
        "Build time of the GeoIP database in use (Unix time)."
    );
    describe_gauge!(
        "meridian_secondary_serial",
        "SOA serial held of each secondary zone (a zone with primaries)."
    );
    describe_counter!(
        "meridian_secondary_refresh_total",
        "Secondary zone checks by zone and result: current (the primary's serial is not newer), ixfr or axfr (a new version by incremental or full transfer), failed (no primary answered, or the transfer was refused or broken; the data held serves on)."
    );
    describe_gauge!(
        "meridian_secondary_expire_seconds",
        Unit::Seconds,
        "SOA expire of each secondary zone: how long it is served without a successful check."
    );
    describe_gauge!(
        "meridian_secondary_expires_timestamp_seconds",
        Unit::Seconds,
        "When each secondary zone stops being served unless a check succeeds first (Unix time)."
    );
    describe_counter!(
        "meridian_secondary_notifies_total",
        "NOTIFY messages from a primary that woke a secondary zone's check, by zone."
    );
    describe_counter!(
        "meridian_secondary_kept_write_errors_total",
        "New versions of a secondary zone whose kept copy could not be written (served anyway; a restart would serve the older copy), by zone."
    );
}

/// Query types with their own label; the rest count as "other".
const QTYPES: [(u16, &str); 13] = [
    (1, "A"),
    (28, "AAAA"),
    (5, "CNAME"),
    (15, "MX"),
    (16, "TXT"),
    (2, "NS"),
    (6, "SOA"),
    (33, "SRV"),
    (12, "PTR"),
    (257, "CAA"),
    (65, "HTTPS"),
    (64, "SVCB"),
    (255, "ANY"),
];
const N_QTYPES: usize = QTYPES.len() + 1;
const RCODES: [&str; 9] = [
    "NOERROR",
    "FORMERR",
    "SERVFAIL",
    "NXDOMAIN",
    "NOTIMP",
    "REFUSED",
    "BADVERS",
    "NOTAUTH",
    "BADCOOKIE",
];
const TRANSPORTS: [&str; 2] = ["udp", "tcp"];

/// Position of a query type in [`QTYPES`] ([`QTYPES`]`.len()` for "other"), by table for the
/// types below 256 (a load instead of a scan on every query).
#[inline(always)]
fn qtype_slot(t: u16) -> usize {
    const fn table() -> [u8; 256] {
        let mut out = [QTYPES.len() as u8; 256];
        let mut i = 0;
        while i < QTYPES.len() {
            if QTYPES[i].0 < 256 {
                out[QTYPES[i].0 as usize] = i as u8;
            }
            i += 1;
        }
        out
    }
    static SLOTS: [u8; 256] = table();
    match SLOTS.get(t as usize) {
        Some(&slot) => slot as usize,
        None => QTYPES
            .iter()
            .position(|(v, _)| *v == t)
            .unwrap_or(QTYPES.len()),
    }
}

fn rcode_slot(r: Rcode) -> usize {
    match r {
        Rcode::NoError => 0,
        Rcode::FormErr => 1,
        Rcode::ServFail => 2,
        Rcode::NxDomain => 3,
        Rcode::NotImp => 4,
        Rcode::Refused => 5,
        Rcode::BadVers => 6,
        Rcode::NotAuth => 7,
        Rcode::BadCookie => 8,
    }
}

fn transport_slot(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
    }
}

/// Local counts beside (not interleaved with) the registry handles they flush into, so that
/// counting touches only the dense `n` array.
#[derive(Default)]
struct Counts {
    n: Vec<u64>,
    handles: Vec<Counter>,
}

impl Counts {
    fn push(&mut self, c: Counter) {
        self.n.push(0);
        self.handles.push(c);
    }

    fn flush(&mut self) {
        for (n, c) in self.n.iter_mut().zip(&self.handles) {
            if *n > 0 {
                c.increment(*n);
                *n = 0;
            }
        }
    }
}

/// Local counts and their registry handles, laid out for one configuration.
struct Layout {
    /// Identity of the zones and steering they were built for.
    key: (usize, usize),
    zones: usize,
    queries: Counts,
    /// Per service × (region, then "any").
    answers: Counts,
    regions: usize,
    /// Per service, per endpoint of the service's pools: a service's endpoints only, not every
    /// endpoint of the configuration (10,000 services of 10 endpoints each in a configuration of
    /// 100,000 endpoints are 100,000 counters, not a billion).
    endpoints: Counts,
    /// `service_pools[service_start[s]..service_start[s + 1]]`: service `s`'s pools, each with
    /// the position of its first endpoint in `endpoints`.
    service_pools: Vec<(usize, usize)>,
    service_start: Vec<usize>,
    /// Per service × [withdrawn, spill, standby, fallback].
    degraded: Counts,
    /// The label values of the counters, for the next layout to take over what it shares.
    labels: Labels,
    /// How many of the counters were looked up in the registry (the rest were taken over).
    registered: usize,
}

fn key_of(snap: &Snapshot) -> (usize, usize) {
    (
        std::sync::Arc::as_ptr(&snap.catalog) as usize,
        snap.steering
            .as_ref()
            .map_or(0, |s| std::sync::Arc::as_ptr(s) as usize),
    )
}

impl Layout {
    /// Counters for `snap`, registered in the metrics registry, except those `old` (the layout
    /// of the snapshot served before) holds with the same labels: their handles are taken over,
    /// so a reload that changed little looks little up (a registry lookup builds and hashes its
    /// label strings; 10,000 services are some 1,100,000 counters).
    fn new(snap: &Snapshot, old: Option<&Layout>) -> Layout {
        install();
        let zone_names: Vec<String> = snap
            .catalog
            .zones()
            .iter()
            .map(|z| z.origin.clone())
            .chain(["none".into()])
            .collect();
        const PER_ZONE: usize = N_QTYPES * RCODES.len() * TRANSPORTS.len();
        let mut registered = 0;
        let mut queries = Counts::default();
        for z in &zone_names {
            let kept = old.and_then(|o| {
                let i = o.labels.zones.iter().position(|k| k == z)?;
                o.queries.handles.get(i * PER_ZONE..(i + 1) * PER_ZONE)
            });
            if let Some(handles) = kept {
                handles.iter().for_each(|c| queries.push(c.clone()));
                continue;
            }
            for q in QTYPES.iter().map(|(_, n)| *n).chain(["other"]) {
                for r in RCODES {
                    for t in TRANSPORTS {
                        let labels = [
                            ("zone", z.clone()),
                            ("qtype", q.into()),
                            ("rcode", r.into()),
                            ("transport", t.into()),
                        ];
                        queries.push(counter!("meridian_dns_queries_total", &labels));
                        registered += 1;
                    }
                }
            }
        }
        let (mut answers, mut endpoints, mut degraded) =
            (Counts::default(), Counts::default(), Counts::default());
        let (mut service_pools, mut service_start) = (Vec::new(), vec![0]);
        let mut regions = 0;
        let mut labels = Labels::default();
        labels.zones = zone_names;
        if let Some(st) = &snap.steering {
            let m = &st.model;
            regions = m.regions.len() + 1;
            labels.regions = m.regions.iter().map(|r| r.name.clone()).collect();
            let same_regions = old.is_some_and(|o| o.labels.regions == labels.regions);
            let mut previous = old.map(|o| o.labels.finder());
            for (si, s) in m.services.iter().enumerate() {
                let bytes = labels.push_service(m, s);
                let from = previous.as_mut().and_then(|f| f.find(si, bytes));
                let o = old.filter(|_| from.is_some());
                match o.zip(from).filter(|_| same_regions) {
                    Some((o, os)) => o.answers.handles[os * regions..(os + 1) * regions]
                        .iter()
                        .for_each(|c| answers.push(c.clone())),
                    None => {
                        for r in m
                            .regions
                            .iter()
                            .map(|r| r.name.clone())
                            .chain(["any".to_string()])
                        {
                            let labels = [("service", s.name.clone()), ("region", r)];
                            answers.push(counter!("meridian_policy_answers_total", &labels));
                            registered += 1;
                        }
                    }
                }
                // The same labels: the same pools and endpoints, so as many counters, in order.
                let kept = o.zip(from).map(|(o, os)| {
                    let first = o.service_pools[o.service_start[os]..o.service_start[os + 1]]
                        .first()
                        .map_or(0, |&(_, base)| base);
                    (o, os, first)
                });
                let first_here = endpoints.n.len();
                for &pi in &s.pools {
                    let p = &m.pools[pi];
                    service_pools.push((pi, endpoints.n.len()));
                    for e in p.endpoints.iter() {
                        if let Some((o, _, first)) = kept {
                            let at = first + (endpoints.n.len() - first_here);
                            endpoints.push(o.endpoints.handles[at].clone());
                            continue;
                        }
                        let labels = [
                            ("service", s.name.clone()),
                            ("pool", p.name.clone()),
                            ("endpoint", e.name.clone()),
                        ];
                        endpoints.push(counter!("meridian_policy_endpoint_answers_total", &labels));
                        registered += 1;
                    }
                }
                match kept {
                    Some((o, os, _)) => o.degraded.handles[os * 4..(os + 1) * 4]
                        .iter()
                        .for_each(|c| degraded.push(c.clone())),
                    None => {
                        for kind in ["withdrawn", "spill", "standby", "fallback"] {
                            let labels = [("service", s.name.clone()), ("kind", kind.to_string())];
                            degraded
                                .push(counter!("meridian_policy_degraded_answers_total", &labels));
                            registered += 1;
                        }
                    }
                }
                service_start.push(service_pools.len());
            }
        }
        Layout {
            key: key_of(snap),
            zones: labels.zones.len(),
            queries,
            answers,
            regions,
            endpoints,
            service_pools,
            service_start,
            degraded,
            labels,
            registered,
        }
    }

    /// Count a service's answer: its region, the endpoints drawn, and whether it was degraded.
    #[inline(never)]
    fn record_steered(&mut self, s: &Steered) {
        let svc = s.service as usize;
        let region = if s.region == crate::dns::answer::ANY_REGION {
            self.regions - 1
        } else {
            s.region as usize
        };
        if let Some(a) = self.answers.n.get_mut(svc * self.regions + region) {
            *a += 1;
        }
        let pools = match (self.service_start.get(svc), self.service_start.get(svc + 1)) {
            (Some(&a), Some(&b)) => &self.service_pools[a..b],
            _ => &[][..],
        };
        for e in &s.endpoints[..s.count as usize] {
            // A service has a few pools: a short scan finds the drawn one's first counter.
            let Some(&(_, base)) = pools.iter().find(|(p, _)| *p == e.pool as usize) else {
                continue;
            };
            if let Some(c) = self.endpoints.n.get_mut(base + e.endpoint as usize) {
                *c += 1;
            }
        }
        let kind = match s.state {
            SteeredState::Normal => None,
            SteeredState::Withdrawn => Some(0),
            SteeredState::Spill => Some(1),
            SteeredState::Standby => Some(2),
            SteeredState::Fallback => Some(3),
        };
        if let Some(k) = kind.and_then(|k| self.degraded.n.get_mut(svc * 4 + k)) {
            *k += 1;
        }
    }

    /// How many counters the layout holds.
    fn counters(&self) -> usize {
        self.queries.n.len() + self.answers.n.len() + self.endpoints.n.len() + self.degraded.n.len()
    }

    fn flush(&mut self) {
        self.queries.flush();
        self.answers.flush();
        self.endpoints.flush();
        self.degraded.flush();
    }
}

/// Lay the counters out for a new configuration, flushing the old ones.
#[cold]
#[inline(never)]
fn relayout(layout: &mut Option<Layout>, snap: &Snapshot) {
    if let Some(l) = layout {
        l.flush();
    }
    let old = layout.take();
    let new = Layout::new(snap, old.as_ref());
    tracing::debug!(
        registered = new.registered,
        kept = new.counters() - new.registered,
        "query counters laid out for a new snapshot"
    );
    *layout = Some(new);
}

/// Positions in [`Tally::fixed`].
const TRUNCATED: usize = 0;
const ECS: usize = 2;
const DROPPED: usize = 4;
const KEPT: usize = 5;
/// Per [`Class`] × (dropped, slipped).
const LIMITED: usize = 7;
/// Per cookie verdict: client_only, valid, invalid.
const COOKIES: usize = LIMITED + 2 * Class::ALL.len();

/// One DNS worker's counters. Counting is a few array increments; [`Tally::flush`] hands them to
/// the registry without allocating.
pub struct Tally {
    layout: Option<Layout>,
    /// Counters that do not depend on the configuration: [`TRUNCATED`] + transport,
    /// [`ECS`] + (0 present, 1 absent: filled in by [`Tally::flush`]), [`DROPPED`],
    /// [`KEPT`] + (0 hit, 1 miss), [`LIMITED`] + 2 × class + (0 dropped, 1 slipped),
    /// [`COOKIES`] + verdict.
    fixed: Counts,
    pending: u32,
    sample: u32,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    pub fn new() -> Tally {
        install();
        let mut fixed = Counts::default();
        for t in TRANSPORTS {
            fixed.push(counter!("meridian_dns_responses_truncated_total", "transport" => t));
        }
        for p in ["present", "absent"] {
            fixed.push(counter!("meridian_dns_ecs_queries_total", "ecs" => p));
        }
        fixed.push(counter!("meridian_dns_dropped_total"));
        for r in ["hit", "miss"] {
            fixed.push(counter!("meridian_dns_kept_responses_total", "result" => r));
        }
        for class in Class::ALL {
            for action in [Action::Drop, Action::Slip] {
                let labels = [("class", class.as_str()), ("action", action.as_str())];
                fixed.push(counter!("meridian_rrl_limited_total", &labels));
            }
        }
        for result in ["client_only", "valid", "invalid"] {
            fixed.push(counter!("meridian_dns_cookies_total", "result" => result));
        }
        Tally {
            layout: None,
            fixed,
            pending: 0,
            sample: 0,
        }
    }

    /// Whether the next query's answer time should be measured (1 in 64).
    #[inline]
    pub fn sample_latency(&mut self) -> bool {
        self.sample = self.sample.wrapping_add(1);
        self.sample.is_multiple_of(LATENCY_SAMPLE)
    }

    /// Record a measured answer time.
    pub fn record_latency(&mut self, transport: Transport, took: std::time::Duration) {
        let t = transport_slot(transport);
        let secs = took.as_secs_f64();
        let i = ANSWER_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(ANSWER_BUCKETS.len());
        ANSWER_DURATIONS.buckets[t][i].fetch_add(1, Ordering::Relaxed);
        ANSWER_DURATIONS.sum_ns[t].fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Count a UDP query answered from a kept response (`hit`), or answered from prepared data
    /// and then kept.
    #[inline(always)]
    pub fn kept(&mut self, hit: bool) {
        self.fixed.n[KEPT + usize::from(!hit)] += 1;
    }

    /// Count a datagram that got no answer.
    #[inline]
    pub fn dropped(&mut self) {
        self.fixed.n[DROPPED] += 1;
    }

    /// Count a response the rate limiter held back (`action` is dropped or slipped).
    #[inline]
    pub fn limited(&mut self, class: Class, action: Action) {
        self.fixed.n[LIMITED + 2 * class as usize + usize::from(action == Action::Slip)] += 1;
    }

    /// Count a query's COOKIE by its verdict.
    #[inline]
    pub fn cookie(&mut self, v: Verdict) {
        let slot = match v {
            Verdict::ClientOnly => 0,
            Verdict::Valid => 1,
            Verdict::Invalid => 2,
        };
        self.fixed.n[COOKIES + slot] += 1;
    }

    /// Count one answered query. Allocates only on the first query after a reload.
    #[inline(always)]
    pub fn record(
        &mut self,
        snap: &Snapshot,
        o: &Outcome,
        steered: Option<&Steered>,
        transport: Transport,
    ) {
        self.follow(snap);
        self.count(o, steered, transport);
    }

    /// Lay the counters out for `snap`, unless they already are: call before [`Tally::count`]
    /// for queries answered from it (once per batch of datagrams). Allocates only after a reload.
    #[inline(always)]
    pub fn follow(&mut self, snap: &Snapshot) {
        if self.layout.as_ref().is_none_or(|l| l.key != key_of(snap)) {
            relayout(&mut self.layout, snap);
        }
    }

    /// Count one query answered from the snapshot last passed to [`Tally::follow`].
    #[inline(always)]
    pub fn count(&mut self, o: &Outcome, steered: Option<&Steered>, transport: Transport) {
        let Some(l) = self.layout.as_mut() else {
            return;
        };
        let zone = o
            .zone
            .map_or(l.zones - 1, |z| (z as usize).min(l.zones - 1));
        let slot = ((zone * N_QTYPES + qtype_slot(o.qtype)) * RCODES.len() + rcode_slot(o.rcode))
            * 2
            + transport_slot(transport);
        l.queries.n[slot] += 1;
        if o.truncated {
            self.fixed.n[TRUNCATED + transport_slot(transport)] += 1;
        }
        // ECS present is counted here; absent is the rest, worked out when flushing.
        if o.ecs {
            self.fixed.n[ECS] += 1;
        }
        if let Some(s) = steered {
            l.record_steered(s);
        }
        self.pending += 1;
        if self.pending >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// Hand every local count to the registry.
    pub fn flush(&mut self) {
        if let Some(l) = &mut self.layout {
            l.flush();
        }
        self.fixed.n[ECS + 1] = u64::from(self.pending).saturating_sub(self.fixed.n[ECS]);
        self.fixed.flush();
        self.pending = 0;
    }

    /// Flush if anything is waiting (call when idle).
    pub fn flush_if_pending(&mut self) {
        if self.pending > 0 || self.fixed.n[DROPPED..].iter().any(|&n| n > 0) {
            self.flush();
        }
    }
}

/// The TCP listeners' counters, registered once (connections come and go at any rate; no
/// registry lookup per connection).
pub struct TcpCounters {
    /// `meridian_tcp_connections_refused_total` by reason: max_connections, max_per_client.
    pub refused: [Counter; 2],
    /// `meridian_tcp_connections_closed_total` by [`TcpClose`].
    pub closed: [Counter; TcpClose::ALL.len()],
    pub open: metrics::Gauge,
}

/// Why a TCP connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpClose {
    Client,
    Idle,
    ReadTimeout,
    WriteTimeout,
    MaxQueries,
    Error,
    Shutdown,
}

impl TcpClose {
    pub const ALL: [TcpClose; 7] = [
        TcpClose::Client,
        TcpClose::Idle,
        TcpClose::ReadTimeout,
        TcpClose::WriteTimeout,
        TcpClose::MaxQueries,
        TcpClose::Error,
        TcpClose::Shutdown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TcpClose::Client => "client",
            TcpClose::Idle => "idle",
            TcpClose::ReadTimeout => "read_timeout",
            TcpClose::WriteTimeout => "write_timeout",
            TcpClose::MaxQueries => "max_queries",
            TcpClose::Error => "error",
            TcpClose::Shutdown => "shutdown",
        }
    }
}

/// The TCP counters (registered on first use).
pub fn tcp() -> &'static TcpCounters {
    static TCP: OnceLock<TcpCounters> = OnceLock::new();
    TCP.get_or_init(|| {
        install();
        let refused =
            |r: &'static str| counter!("meridian_tcp_connections_refused_total", "reason" => r);
        TcpCounters {
            refused: [refused("max_connections"), refused("max_per_client")],
            closed: TcpClose::ALL
                .map(|c| counter!("meridian_tcp_connections_closed_total", "reason" => c.as_str())),
            open: metrics::gauge!("meridian_tcp_connections_open"),
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn qtype_slots_match_the_table() {
        for (i, (t, _)) in super::QTYPES.iter().enumerate() {
            assert_eq!(super::qtype_slot(*t), i);
        }
        assert_eq!(super::qtype_slot(99), super::QTYPES.len());
        assert_eq!(super::qtype_slot(0), super::QTYPES.len());
        assert_eq!(super::qtype_slot(300), super::QTYPES.len());
    }
}
