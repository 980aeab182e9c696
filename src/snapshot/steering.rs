//! Steering: the glue between configuration, the GeoIP database, health and the policy tables.
//!
//! A [`Steering`] is built once per configuration (next to the zones in the snapshot): the policy
//! model, the region map, the GeoIP source, an index of service names, and every endpoint's
//! answer data in wire form. Decision tables are built from it plus the health monitor's view by
//! [`build_tables`], off the query path, whenever health changes (debounced), every few seconds
//! for latency, and on reload; the server swaps them in together with the snapshot they belong to.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::model::{EndpointId, Fallback, Layout, Percentile};
use crate::config::policy::Model;
use crate::geo::{GeoSource, Placement, RegionMap, RegionMapSpec, RegionSpec};
use crate::health::state::{OverrideKind, Serving};

use crate::policy::{Cell, PolicyInputs, Tables, build_tables as build_policy_tables};
use crate::wire::NameBuf;
use crate::zone::NameIndex;
use crate::zone::build::name_wire_str;

/// One endpoint's answers, ready to copy.
#[derive(Debug, Clone, Default)]
pub struct EndpointWire {
    pub a: Option<[u8; 4]>,
    pub aaaa: Option<[u8; 16]>,
    /// CNAME target in wire form.
    pub cname: Option<Box<[u8]>>,
}

/// A service's fallback answers, ready to copy.
#[derive(Debug, Clone, Default)]
pub struct FallbackWire {
    pub a: Vec<[u8; 4]>,
    pub aaaa: Vec<[u8; 16]>,
    pub cname: Option<Box<[u8]>>,
}

/// Everything about steering that changes only with the configuration.
pub struct Steering {
    /// The compiled model, shared with the configuration it came from.
    pub model: Arc<Model>,
    pub regions: RegionMap,
    pub geo: Option<Arc<GeoSource>>,
    /// Lowercase service name → position in the model's services.
    services: NameIndex<u32>,
    /// Per pool, per endpoint.
    pub endpoints: Vec<Vec<EndpointWire>>,
    /// Per service.
    pub fallbacks: Vec<FallbackWire>,
    /// Demand worked out for the database last seen ([`Steering::demand`]).
    pub(super) demand: std::sync::Mutex<Option<super::demand::Kept>>,
    /// Per service, the gauges [`record_rebuild`] sets, looked up in the metrics registry at the
    /// first rebuild of this configuration rather than at every one.
    gauges: std::sync::OnceLock<Vec<ServiceGauges>>,
}

/// One service's policy gauges.
struct ServiceGauges {
    degraded: metrics::Gauge,
    /// Per pool of the service, in its order.
    pools: Vec<PoolGauges>,
}

/// One pool's gauges within a service.
struct PoolGauges {
    labels: [(&'static str, String); 2],
    load: metrics::Gauge,
    /// Registered when the pool first has a budget, as before: a pool without one has no series.
    budget: std::sync::OnceLock<metrics::Gauge>,
}

/// Why steering could not be built (beyond what config validation already reports).
#[derive(Debug, thiserror::Error)]
pub enum SteeringError {
    #[error("GeoIP database: {0}")]
    Geo(#[from] crate::geo::GeoError),
    /// Every problem the region map found, all at once.
    #[error("regions: {}", join(.0))]
    Regions(Vec<crate::geo::RegionMapError>),
}

/// The region map's problems on one line.
fn join(errors: &[crate::geo::RegionMapError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Steering {
    /// Build from a compiled model: open the GeoIP database, map regions, prepare answers.
    pub fn new(model: impl Into<Arc<Model>>) -> Result<Steering, SteeringError> {
        let model: Arc<Model> = model.into();
        let geo_settings =
            model
                .geo
                .clone()
                .unwrap_or_else(|| crate::config::policy::GeoSettings {
                    database: None,
                    demand: Default::default(),
                    default_region: 0,
                    overrides: Vec::new(),
                    regions: vec![Default::default(); model.regions.len()],
                });
        let spec = RegionMapSpec {
            regions: model
                .regions
                .iter()
                .zip(&geo_settings.regions)
                .map(|(r, rules)| RegionSpec {
                    name: r.name.clone(),
                    continents: rules.continents.clone(),
                    countries: rules.countries.clone(),
                    subdivisions: rules.subdivisions.clone(),
                    prefixes: rules.prefixes.clone(),
                })
                .collect(),
            overrides: geo_settings
                .overrides
                .iter()
                .map(|(n, r)| (*n, model.regions[*r].name.clone()))
                .collect(),
            default_region: model
                .regions
                .get(geo_settings.default_region)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
        };
        let regions = RegionMap::new(&spec).map_err(SteeringError::Regions)?;
        let geo = match &geo_settings.database {
            Some(path) => Some(Arc::new(GeoSource::open(path)?)),
            None => None,
        };
        let names: Vec<Box<[u8]>> = model
            .services
            .iter()
            .map(|s| name_wire_str(&s.name, true))
            .collect();
        let services = NameIndex::new(names.iter().enumerate().map(|(i, n)| (&n[..], i as u32)));
        let endpoints = model
            .pools
            .iter()
            .map(|p| {
                p.endpoints
                    .iter()
                    .map(|e| EndpointWire {
                        a: e.ipv4.map(|a| a.octets()),
                        aaaa: e.ipv6.map(|a| a.octets()),
                        cname: e.hostname.as_deref().map(|h| name_wire_str(h, false)),
                    })
                    .collect()
            })
            .collect();
        let fallbacks = model
            .services
            .iter()
            .map(|s| match &s.fallback {
                Fallback::All => FallbackWire::default(),
                Fallback::Addresses { ipv4, ipv6 } => FallbackWire {
                    a: ipv4.iter().map(|a| a.octets()).collect(),
                    aaaa: ipv6.iter().map(|a| a.octets()).collect(),
                    cname: None,
                },
                Fallback::Cname(c) => FallbackWire {
                    cname: Some(name_wire_str(c, false)),
                    ..Default::default()
                },
            })
            .collect();
        Ok(Steering {
            model,
            regions,
            geo,
            services,
            endpoints,
            fallbacks,
            demand: Default::default(),
            gauges: Default::default(),
        })
    }

    /// The service answering a name, if any.
    #[inline]
    pub fn service(&self, name: &NameBuf) -> Option<usize> {
        self.services.get_name(name).map(|i| i as usize)
    }

    /// Where the client at `ip` is: its placement (region, ECS scope, the rule and record that
    /// decided) and, when `with_position` (the service ranks by distance) and the client's
    /// position is known from the database, its cell. An override or region prefix decides
    /// alone: the client then counts as at its region's location. The one locating function of
    /// the query path, `explain` and `simulate`. No allocation, lock or I/O.
    #[inline]
    pub fn locate(&self, ip: IpAddr, with_position: bool) -> (Placement, Option<Cell>) {
        let db = self.geo.as_ref().map(|g| g.load());
        let placement = self
            .regions
            .locate_with(ip, db.as_deref().map(|d| &**d), with_position);
        let cell = match (with_position, &placement.location) {
            (true, Some(l)) => crate::geo::position(l).map(|p| Cell::of(p.lat, p.lon, p.radius_km)),
            _ => None,
        };
        (placement, cell)
    }

    /// The service answering a lowercase wire name, if any.
    pub fn service_wire(&self, lower_wire: &[u8]) -> Option<usize> {
        self.services.get(lower_wire).map(|i| i as usize)
    }
}

/// Health and latency of every endpoint, indexed by [`EndpointId`]: what the health monitor
/// publishes and decision tables are built from. Its ids are those of one compiled
/// configuration, its [`Layout`]: read it by id only against a model of the same layout. An
/// endpoint the view does not cover (no monitor yet) counts as up with nothing measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthView {
    layout: Layout,
    endpoints: Vec<EndpointView>,
    /// What the fleet's other instances observe, for the same layout ([`FleetView`]).
    fleet: Option<Arc<FleetView>>,
}

/// One endpoint in a [`HealthView`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointView {
    pub serving: Serving,
    /// Measured round-trip percentiles from this instance's vantage.
    pub p50: Option<Duration>,
    pub p90: Option<Duration>,
    /// An operator's override in force on this instance (it decides alone: peers' votes and
    /// overrides do not change it).
    pub overridden: Option<OverrideKind>,
    /// This instance probes it now and has a verdict from its probes, so its verdict votes and
    /// its latency is measured. False for an endpoint probe sharding gives to other instances
    /// (`[fleet] probes_per_endpoint`), and until the first results once it is given back.
    pub probed: bool,
}

impl Default for EndpointView {
    fn default() -> Self {
        EndpointView {
            serving: Serving::Up,
            p50: None,
            p90: None,
            overridden: None,
            probed: true,
        }
    }
}

/// How many fresh vantages must say an endpoint is down for it to be withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    /// More than half of the vantages that report it (this instance included).
    #[default]
    Majority,
    /// At least this many (at most all of those that report it).
    Count(u32),
}

impl Quorum {
    /// Downs needed among `voters` vantages (at least 1).
    pub fn needed(self, voters: usize) -> usize {
        let n = voters.max(1);
        match self {
            Quorum::Majority => n / 2 + 1,
            Quorum::Count(k) => (k as usize).clamp(1, n),
        }
    }
}

/// What the other instances of a fleet observe, mapped onto one configuration's endpoints: the
/// fresh peers only (a peer past its `max_age` is left out by whoever builds this).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetView {
    pub quorum: Quorum,
    pub peers: Vec<PeerObservations>,
}

/// One fresh peer's observations.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerObservations {
    /// Its `[node] name`.
    pub node: String,
    /// Its vantage, as an index into the model's regions (`None`: a region this configuration
    /// does not define; it still votes on health).
    pub vantage: Option<usize>,
    /// By [`EndpointId`] index; `None` for an endpoint it does not report.
    pub endpoints: Vec<Option<PeerEndpoint>>,
}

/// One endpoint as a peer sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerEndpoint {
    /// Its probes' verdict there (`Drained` when an override there withdraws it).
    pub serving: Serving,
    /// It probes the endpoint and has a verdict: only then does `serving` vote.
    pub probed: bool,
    pub p50: Option<Duration>,
    pub p90: Option<Duration>,
    /// An override set on that instance, and when (unix ms): the newest one across the fleet
    /// applies on every instance without one of its own.
    pub overridden: Option<(OverrideKind, u64)>,
}

/// Whether the answers include an endpoint, with the fleet's votes and overrides: this
/// instance's own override decides alone; else the newest override of a fresh peer; else it is
/// withdrawn when at least the quorum of the vantages that probe it (this one included, when
/// it does) say it is down. With no fresh peer, or when no vantage probes it (a hand-over under
/// probe sharding, before the new prober's first result), the local verdict alone.
pub fn fleet_serving(local: EndpointView, fleet: Option<&FleetView>, id: EndpointId) -> Serving {
    let Some(fleet) = fleet else {
        return local.serving;
    };
    if local.overridden.is_some() {
        return local.serving;
    }
    let seen = || {
        fleet
            .peers
            .iter()
            .filter_map(move |p| p.endpoints.get(id.index()).copied().flatten())
    };
    let newest = seen()
        .filter_map(|e| e.overridden)
        .max_by_key(|&(_, at)| at);
    if let Some((kind, _)) = newest {
        return match kind {
            OverrideKind::ForceUp => Serving::Up,
            OverrideKind::ForceDown => Serving::Down,
            OverrideKind::Drain => Serving::Drained,
        };
    }
    let votes = seen().filter(|e| e.overridden.is_none() && e.probed);
    let (mut voters, mut downs) = if local.probed {
        (1, usize::from(local.serving != Serving::Up))
    } else {
        (0, 0)
    };
    for e in votes {
        voters += 1;
        downs += usize::from(e.serving != Serving::Up);
    }
    if voters == 0 {
        return local.serving;
    }
    if downs >= fleet.quorum.needed(voters) {
        Serving::Down
    } else {
        Serving::Up
    }
}

impl HealthView {
    /// A view of `endpoints` endpoints of the configuration compiled as `layout`, each set by
    /// `of(id)`.
    pub fn new(
        layout: Layout,
        endpoints: usize,
        of: impl FnMut(EndpointId) -> EndpointView,
    ) -> HealthView {
        HealthView {
            layout,
            endpoints: (0..endpoints as u32).map(EndpointId).map(of).collect(),
            fleet: None,
        }
    }

    /// This view with the fleet's observations (mapped onto the same layout's ids).
    pub fn with_fleet(mut self, fleet: Option<Arc<FleetView>>) -> HealthView {
        self.fleet = fleet;
        self
    }

    /// The fleet's observations, when there are peers.
    pub fn fleet(&self) -> Option<&FleetView> {
        self.fleet.as_deref()
    }

    /// The same, shared (to carry over to a view derived from this one).
    pub fn fleet_shared(&self) -> Option<Arc<FleetView>> {
        self.fleet.clone()
    }

    /// Whether the answers include `id`, with the fleet's votes ([`fleet_serving`]).
    pub fn serving(&self, id: EndpointId) -> Serving {
        fleet_serving(self.get(id), self.fleet(), id)
    }

    /// The measured percentile of `id` from `vantage` (a region index): this instance's own
    /// measurement when `vantage` is `node` and it probes `id`, else the mean over the fresh
    /// peers of that vantage that measured it (`None` when none did: the distance model then
    /// ranks it).
    pub fn rtt(
        &self,
        node: Option<usize>,
        vantage: usize,
        id: EndpointId,
        pct: Percentile,
    ) -> Option<Duration> {
        let pick = |p50: Option<Duration>, p90: Option<Duration>| match pct {
            Percentile::P50 => p50,
            Percentile::P90 => p90,
        };
        if node == Some(vantage) {
            let v = self.get(id);
            if v.probed {
                return pick(v.p50, v.p90);
            }
        }
        let fleet = self.fleet()?;
        let (sum, n) = fleet
            .peers
            .iter()
            .filter(|p| p.vantage == Some(vantage))
            .filter_map(|p| p.endpoints.get(id.index()).copied().flatten())
            .filter_map(|e| pick(e.p50, e.p90))
            .fold((Duration::ZERO, 0u32), |(s, n), d| (s + d, n + 1));
        (n > 0).then(|| sum / n)
    }

    /// The vantages (region indexes) other than `node` that some fresh peer measures from.
    pub fn vantages(&self, node: Option<usize>) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .fleet()
            .map(|f| f.peers.iter().filter_map(|p| p.vantage).collect())
            .unwrap_or_default();
        v.retain(|&r| Some(r) != node);
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The compiled configuration whose [`EndpointId`]s index this view.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// How many endpoints the view holds.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// The view holds no endpoint.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// What the view holds for `id` (up, nothing measured, when it holds nothing).
    pub fn get(&self, id: EndpointId) -> EndpointView {
        self.endpoints.get(id.index()).copied().unwrap_or_default()
    }
}

/// Build decision tables for `st` from `view` (every endpoint up when the view is empty).
/// `previous` carries latency hysteresis across rebuilds.
pub fn build_tables(st: &Steering, view: &HealthView, previous: Option<&Tables>) -> Tables {
    let m = &st.model;
    let demand = st.demand();
    let serving = |p: usize, e: usize| -> Serving { view.serving(m.pools[p].endpoints[e].id) };
    let rtt = |vantage: usize, p: usize, e: usize, pct: Percentile| -> Option<Duration> {
        view.rtt(m.node_region, vantage, m.pools[p].endpoints[e].id, pct)
    };
    let vantages = view.vantages(m.node_region);
    let inputs = PolicyInputs {
        regions: &m.regions,
        pools: &m.pools,
        services: &m.services,
        serving: &serving,
        rtt: &rtt,
        node_region: m.node_region.unwrap_or(0),
        vantages: &vantages,
        demand: demand.as_deref(),
    };
    build_policy_tables(&inputs, previous)
}

/// Record a table rebuild in the metrics: count, duration, and which services are degraded.
pub fn record_rebuild(st: &Steering, tables: Option<&Tables>, took: Duration) {
    metrics::counter!("meridian_policy_table_rebuilds_total").increment(1);
    metrics::histogram!("meridian_policy_table_rebuild_duration_seconds")
        .record(took.as_secs_f64());
    let Some(tables) = tables else { return };
    // 48 bits: exact in a gauge's f64.
    metrics::gauge!("meridian_policy_tables_fingerprint").set((tables.fingerprint() >> 16) as f64);
    let gauges = st.gauges.get_or_init(|| {
        let m = &st.model;
        m.services
            .iter()
            .map(|s| ServiceGauges {
                degraded: metrics::gauge!("meridian_policy_service_degraded", "service" => s.name.clone()),
                pools: s
                    .pools
                    .iter()
                    .map(|&p| {
                        let labels = [
                            ("service", s.name.clone()),
                            ("pool", m.pools[p].name.clone()),
                        ];
                        PoolGauges {
                            load: metrics::gauge!("meridian_policy_pool_load_ratio", &labels),
                            labels,
                            budget: Default::default(),
                        }
                    })
                    .collect(),
            })
            .collect()
    });
    for (i, g) in gauges.iter().enumerate() {
        let degraded = tables.decisions(i).iter().any(|d| d.degraded);
        g.degraded.set(if degraded { 1.0 } else { 0.0 });
        for (pool, load) in g.pools.iter().zip(tables.loads(i)) {
            pool.load.set(load.load);
            if let Some(b) = load.budget {
                pool.budget
                    .get_or_init(|| {
                        metrics::gauge!("meridian_policy_pool_budget_ratio", &pool.labels)
                    })
                    .set(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(serving: Serving, overridden: Option<(OverrideKind, u64)>) -> PeerObservations {
        PeerObservations {
            node: "peer".into(),
            vantage: Some(1),
            endpoints: vec![Some(PeerEndpoint {
                serving,
                probed: true,
                p50: None,
                p90: None,
                overridden,
            })],
        }
    }

    fn local(serving: Serving) -> EndpointView {
        EndpointView {
            serving,
            ..Default::default()
        }
    }

    fn verdict(me: EndpointView, peers: Vec<PeerObservations>, quorum: Quorum) -> Serving {
        let fleet = FleetView { quorum, peers };
        fleet_serving(me, Some(&fleet), EndpointId(0))
    }

    use Serving::{Down, Drained, Up};

    #[test]
    fn one_vantage_alone_cannot_withdraw_an_endpoint_but_a_majority_can() {
        let m = Quorum::Majority;
        // Alone: the local verdict.
        assert_eq!(fleet_serving(local(Down), None, EndpointId(0)), Down);
        assert_eq!(verdict(local(Down), vec![], m), Down);
        // Three vantages: one down is not enough, two are.
        assert_eq!(
            verdict(local(Down), vec![peer(Up, None), peer(Up, None)], m),
            Up
        );
        assert_eq!(
            verdict(local(Up), vec![peer(Down, None), peer(Up, None)], m),
            Up
        );
        assert_eq!(
            verdict(local(Up), vec![peer(Down, None), peer(Down, None)], m),
            Down
        );
        assert_eq!(
            verdict(local(Down), vec![peer(Down, None), peer(Down, None)], m),
            Down
        );
        // Two vantages: majority is both.
        assert_eq!(verdict(local(Down), vec![peer(Up, None)], m), Up);
        // A count, capped at the voters.
        let one = Quorum::Count(1);
        assert_eq!(
            verdict(local(Up), vec![peer(Down, None), peer(Up, None)], one),
            Down
        );
        let five = Quorum::Count(5);
        assert_eq!(verdict(local(Down), vec![peer(Down, None)], five), Down);
        // A peer that does not report the endpoint does not vote.
        let silent = PeerObservations {
            node: "x".into(),
            vantage: None,
            endpoints: vec![None],
        };
        assert_eq!(verdict(local(Down), vec![silent], m), Down);
    }

    /// A peer that reports the endpoint but does not probe it (probe sharding).
    fn bystander(serving: Serving) -> PeerObservations {
        let mut p = peer(serving, None);
        p.endpoints[0].as_mut().unwrap().probed = false;
        p
    }

    fn not_probed_here(serving: Serving) -> EndpointView {
        EndpointView {
            serving,
            probed: false,
            ..Default::default()
        }
    }

    #[test]
    fn only_the_vantages_that_probe_an_endpoint_vote() {
        let m = Quorum::Majority;
        // k = 1: the one vantage that probes it decides, one of one, for every instance.
        assert_eq!(
            verdict(
                not_probed_here(Up),
                vec![peer(Down, None), bystander(Up)],
                m
            ),
            Down
        );
        assert_eq!(
            verdict(
                not_probed_here(Down),
                vec![peer(Up, None), bystander(Down)],
                m
            ),
            Up
        );
        // This instance probes it: it is the one voter, whatever the bystanders hold.
        assert_eq!(
            verdict(local(Down), vec![bystander(Up), bystander(Up)], m),
            Down
        );
        // k = 2: two voters, majority is both.
        assert_eq!(
            verdict(local(Down), vec![peer(Up, None), bystander(Down)], m),
            Up
        );
        assert_eq!(
            verdict(local(Down), vec![peer(Down, None), bystander(Up)], m),
            Down
        );
        // No vantage probes it (a hand-over): the local view decides.
        assert_eq!(verdict(not_probed_here(Down), vec![bystander(Up)], m), Down);
        assert_eq!(verdict(not_probed_here(Up), vec![bystander(Down)], m), Up);
        // An override on a bystander still applies fleet-wide.
        let mut drained = bystander(Drained);
        drained.endpoints[0].as_mut().unwrap().overridden = Some((OverrideKind::Drain, 5));
        assert_eq!(
            verdict(not_probed_here(Up), vec![peer(Up, None), drained], m),
            Drained
        );
    }

    #[test]
    fn latency_from_this_vantage_is_a_peers_when_this_instance_does_not_probe() {
        let ms = Duration::from_millis;
        let mut p = peer(Up, None);
        p.vantage = Some(0);
        p.endpoints[0].as_mut().unwrap().p50 = Some(ms(30));
        let fleet = Arc::new(FleetView {
            quorum: Quorum::Majority,
            peers: vec![p],
        });
        let me = |probed: bool| EndpointView {
            p50: probed.then(|| ms(10)),
            probed,
            ..Default::default()
        };
        let view = |probed| {
            HealthView::new(Layout(1), 1, |_| me(probed)).with_fleet(Some(Arc::clone(&fleet)))
        };
        let id = EndpointId(0);
        assert_eq!(
            view(true).rtt(Some(0), 0, id, Percentile::P50),
            Some(ms(10))
        );
        // Not probed here: the same vantage's peer measures it.
        assert_eq!(
            view(false).rtt(Some(0), 0, id, Percentile::P50),
            Some(ms(30))
        );
        // Nobody of that vantage measures it: nothing (the distance model ranks it).
        assert_eq!(view(false).rtt(Some(2), 2, id, Percentile::P50), None);
        let alone = HealthView::new(Layout(1), 1, |_| me(false));
        assert_eq!(alone.rtt(Some(0), 0, id, Percentile::P50), None);
    }

    #[test]
    fn overrides_decide_the_local_one_first_then_the_newest_of_the_peers() {
        let m = Quorum::Majority;
        let drained_here = EndpointView {
            serving: Drained,
            overridden: Some(OverrideKind::Drain),
            ..Default::default()
        };
        assert_eq!(
            verdict(drained_here, vec![peer(Up, None), peer(Up, None)], m),
            Drained
        );
        let forced_up_here = EndpointView {
            serving: Up,
            overridden: Some(OverrideKind::ForceUp),
            ..Default::default()
        };
        assert_eq!(
            verdict(forced_up_here, vec![peer(Down, None), peer(Down, None)], m),
            Up
        );
        // A peer's drain reaches this instance; the newer of two peer overrides wins.
        assert_eq!(
            verdict(
                local(Up),
                vec![peer(Drained, Some((OverrideKind::Drain, 10)))],
                m
            ),
            Drained
        );
        assert_eq!(
            verdict(
                local(Down),
                vec![
                    peer(Drained, Some((OverrideKind::Drain, 10))),
                    peer(Up, Some((OverrideKind::ForceUp, 20))),
                ],
                m
            ),
            Up
        );
    }
}
