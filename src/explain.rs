//! `meridian explain`: why a name is answered the way it is, for one client.
//!
//! Runs the server's own code: the region map and GeoIP lookup place the client, the decision
//! tables give the candidates with their health, latency, score and share, and the answer is
//! produced by [`crate::dns::answer::respond`] on a real query packet, exactly as a worker would.
//! [`report`] gathers all of it once into a [`Report`]; the command line prints it as text
//! ([`Report::to_text`], or [`explain`] in one step) and the admin API serves the same report as
//! JSON ([`explain_json`]), so the two never disagree.
//!
//! `nearest` and `latency` decide per class of places ([`crate::policy::places`]): the order and
//! shares are the class's, ranked at one place of it (`ranked_at`), which may be far from the
//! client. The distances and scores reported are the client's own: from its position when the
//! database gave one, else from its region's location (where its class was ranked).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::ProtoError;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::DecodeError;
use serde::{Serialize, Serializer};

use crate::config::model::{PolicyKind, PoolDef};
use crate::dns::answer::{Peer, Transport, respond};
use crate::policy::geometry::{distance_km, estimated_rtt_ms};
use crate::policy::rank::{RankReason, RankedPool};
use crate::policy::{Answer, Serving, Tier};
use crate::snapshot::Snapshot;
use crate::wire::MAX_MESSAGE;

/// What to explain.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: String,
    pub client: IpAddr,
    pub qtype: RecordType,
    /// Send the client as an EDNS Client Subnet of this prefix length (else as the source).
    pub ecs_prefix: Option<u8>,
    /// The random draw to use (the server uses a fresh one per query).
    pub random: u64,
}

/// Everything `explain` reports about one name and client.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The name asked, fully qualified.
    pub name: String,
    pub client: IpAddr,
    /// The client was presented as an EDNS Client Subnet of this prefix length.
    pub ecs_prefix: Option<u8>,
    pub qtype: String,
    /// How the service decided; `None` when the name is not a service (static zone data).
    pub service: Option<ServiceReport>,
    /// The answer the server gives, from the real answer path.
    pub answer: AnswerReport,
}

/// Where the client was placed and how a service's decision was made.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub name: String,
    #[serde(serialize_with = "ser_policy")]
    pub policy: PolicyKind,
    /// Most endpoints per answer.
    pub answers: usize,
    #[serde(serialize_with = "ser_tier")]
    pub tier: Tier,
    /// Endpoints of the service's pools that are down or drained.
    pub withdrawn: usize,
    pub degraded: bool,
    /// TTL of the decision's answers.
    pub ttl: u32,
    /// Whether any client region is answered differently from another.
    pub varies_by_region: bool,
    pub location: LocationReport,
    /// `nearest`/`latency`: the place where the client's class was ranked (latitude, longitude,
    /// accuracy band km): a cell centre, or the client region's location when the client has no
    /// position. Every place of the class shares its order (and so its shares).
    pub ranked_at: Option<(f64, f64, f64)>,
    /// `nearest`/`latency`: where the candidates' distances and scores are from (latitude,
    /// longitude): the client's position when known, else its region's location (`ranked_at`).
    pub scored_from: Option<(f64, f64)>,
    /// `latency`: pools whose measured excess moved, and whether it was published.
    pub hysteresis: Vec<HysteresisReport>,
    /// `latency`: the vantage (region) whose measurements gave the pools' excess: the client
    /// region's when a fleet peer there measures, else this instance's own.
    pub vantage: Option<String>,
    /// Whether that vantage's measurements came from a fleet peer (not this instance).
    pub vantage_is_peer: bool,
    /// Spill bounded by capacity: every pool's share of the service's demand now, and its
    /// budget (empty when the service's spill is not bounded or no demand is known).
    pub capacity: Vec<LoadReport>,
    /// Every pool of the service, in rank order.
    pub candidates: Vec<CandidateReport>,
    /// The fallback answering, when nothing serves (not for fail-open `all`).
    pub fallback: Option<FallbackReport>,
}

/// The client's placement.
#[derive(Debug, Clone, Serialize)]
pub struct LocationReport {
    pub region: String,
    /// The rule that decided: override, prefix, subdivision, country, continent, default.
    pub source: String,
    pub continent: Option<String>,
    pub country: Option<String>,
    pub subdivision: Option<String>,
    /// Prefix length of the database network that placed the client.
    pub network_prefix: Option<u8>,
    /// The client's position, when the service ranks by distance and the database gave one
    /// (else the client counts as at its region's location).
    pub position: Option<PositionReport>,
}

/// Where the client is, for `nearest` and `latency`.
#[derive(Debug, Clone, Serialize)]
pub struct PositionReport {
    pub lat: f64,
    pub lon: f64,
    pub radius_km: f64,
    /// "record" (the database's coordinates) or "country centroid".
    pub source: &'static str,
}

/// What the latency excess hysteresis did for one pool.
#[derive(Debug, Clone, Serialize)]
pub struct HysteresisReport {
    pub pool: String,
    /// The excess the previous tables published, in ms.
    pub previous_ms: f64,
    /// The excess measured now, in ms.
    pub measured_ms: f64,
    pub margin_ms: f64,
    /// Whether the measurement was published.
    pub switched: bool,
}

/// One candidate pool.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateReport {
    pub pool: String,
    pub region: String,
    /// Lower is better; the unit depends on the policy. `nearest`/`latency`: from
    /// `scored_from` (km, or estimated round trip in ms).
    pub score: f64,
    /// `nearest`/`latency`: the score at `ranked_at`, which ordered the class; else `score`.
    pub ranked_score: f64,
    /// Great-circle km to the pool's location: `nearest`/`latency` from `scored_from`, the
    /// others from the client region's location.
    pub distance_km: f64,
    /// Why the pool scored so.
    pub reason: Reason,
    #[serde(skip)]
    pub rank_reason: RankReason,
    /// Spill level (pools the policy cannot tell apart share one).
    pub level: usize,
    pub healthy_fraction: f64,
    pub keep: f64,
    /// Share of this client region's queries the pool answers.
    pub share: f64,
    /// The share spill alone would give it; it differs from `share` when the capacity bound
    /// moved traffic on (the pool was full, or traffic arrived from a full one).
    pub asked: f64,
    pub endpoints: Vec<EndpointReport>,
}

/// One pool's load under the capacity bound ([`crate::policy::bound`]).
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub pool: String,
    /// Share of the demand with every endpoint healthy.
    pub baseline: f64,
    /// Most share spill may bring it to (`None`: unbounded).
    pub budget: Option<f64>,
    /// Share it takes now.
    pub load: f64,
}

/// [`RankReason`] with names instead of indexes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    Configured,
    ClientRegion,
    FallbackRegion { position: usize },
    OtherRegion,
    Distance,
    EstimatedRtt { distance_ms: f64, excess_ms: f64 },
    Weighted,
}

/// One endpoint of a candidate pool.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointReport {
    pub name: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    pub hostname: Option<String>,
    pub serving: Serving,
    /// Draw weight in the decision's tier (0 when not in it).
    pub weight: u64,
    pub capacity: u32,
    pub rtt_ms: Option<f64>,
}

/// The service's fallback answer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FallbackReport {
    Addresses,
    Cname { target: String },
}

/// The DNS answer.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerReport {
    pub rcode: String,
    pub authoritative: bool,
    pub records: Vec<RecordReport>,
    pub authority: Vec<RecordReport>,
    /// The ECS scope prefix of the reply, when it carried ECS.
    pub ecs_scope: Option<u8>,
}

/// One record of the answer.
#[derive(Debug, Clone, Serialize)]
pub struct RecordReport {
    pub name: String,
    pub ttl: u32,
    #[serde(rename = "type")]
    pub rtype: String,
    pub data: String,
    /// Presentation form of the whole record.
    pub text: String,
}

impl RecordReport {
    fn of(r: &Record) -> RecordReport {
        RecordReport {
            name: r.name.to_string(),
            ttl: r.ttl,
            rtype: r.record_type().to_string(),
            data: r.data.to_string(),
            text: r.to_string(),
        }
    }
}

/// The configuration name of a policy: "failover", "weighted", "geo", "latency", "nearest".
pub fn policy_name(p: PolicyKind) -> &'static str {
    match p {
        PolicyKind::Failover => "failover",
        PolicyKind::Weighted => "weighted",
        PolicyKind::Geo => "geo",
        PolicyKind::Latency => "latency",
        PolicyKind::Nearest => "nearest",
    }
}

/// "primary", "standby" or "fallback".
pub fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Primary => "primary",
        Tier::Standby => "standby",
        Tier::Fallback => "fallback",
    }
}

fn ser_policy<S: Serializer>(p: &PolicyKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(policy_name(*p))
}

fn ser_tier<S: Serializer>(t: &Tier, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tier_name(*t))
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The name asked is not a domain name.
    #[error("{name:?}: {source}")]
    BadName {
        name: String,
        #[source]
        source: ProtoError,
    },
    /// The query packet could not be encoded.
    #[error("cannot encode the query: {0}")]
    Encode(#[source] ProtoError),
    /// The answer path gave no response to the query.
    #[error("no response")]
    NoResponse,
    /// The answer path's response could not be decoded.
    #[error("cannot decode the response: {0}")]
    Decode(#[source] DecodeError),
    /// The report could not be turned into JSON.
    #[error("cannot serialize the report: {0}")]
    Json(#[source] serde_json::Error),
}

/// Explain `req` against `snap` as text; the report, or why it cannot be made.
pub fn explain(snap: &Snapshot, req: &Request) -> Result<String, ExplainError> {
    report(snap, req).map(|r| r.to_text())
}

/// Explain `req` against `snap` as JSON (the same report as [`explain`]).
pub fn explain_json(snap: &Snapshot, req: &Request) -> Result<serde_json::Value, ExplainError> {
    let r = report(snap, req)?;
    serde_json::to_value(&r).map_err(ExplainError::Json)
}

/// Gather the report for `req` against `snap`.
pub fn report(snap: &Snapshot, req: &Request) -> Result<Report, ExplainError> {
    let mut name = Name::from_ascii(&req.name).map_err(|source| ExplainError::BadName {
        name: req.name.clone(),
        source,
    })?;
    name.set_fqdn(true);
    let lower = crate::zone::build::lower_wire(&name);
    let service = snap
        .steering
        .as_ref()
        .and_then(|st| Some((st, st.service_wire(&lower)?)));
    let service = match (service, &snap.tables) {
        (Some((st, svc)), Some(tables)) => {
            let def = &st.model.services[svc];
            let located = match req.ecs_prefix {
                Some(p) if def.use_ecs => truncate(req.client, p),
                _ => req.client,
            };
            let (placement, cell) = st.locate(located, tables.geometry(svc).is_some());
            let position = placement.location.as_ref().and_then(crate::geo::position);
            let region = &st.model.regions[placement.region];
            let l = placement.location.as_ref();
            let location = LocationReport {
                region: region.name.clone(),
                source: placement.source.to_string(),
                continent: l.and_then(|l| l.continent_str()).map(str::to_string),
                country: l.and_then(|l| l.country_str()).map(str::to_string),
                subdivision: l.and_then(|l| l.subdivision.as_ref().map(|s| s.as_str().to_string())),
                network_prefix: l.map(|l| l.prefix_len),
                position: cell.and(position).map(|p| PositionReport {
                    lat: p.lat,
                    lon: p.lon,
                    radius_km: p.radius_km,
                    source: p.source.as_str(),
                }),
            };
            let varies = tables.varies_by_region(svc);
            // The client's own region's decision: when every region answers alike the server
            // skips locating the client, but the candidates explained are still its region's.
            let decision = tables.decision_at(
                svc,
                crate::policy::Place {
                    region: placement.region,
                    cell,
                },
            );
            let e = &decision.explanation;
            // The class's order came from `e.at`; the client's own distances are from its
            // position (the one its cell was found by), else from its region's location, which
            // is `e.at` itself.
            let scored_from = e.at.map(|(lat, lon, _)| {
                location
                    .position
                    .as_ref()
                    .map_or((lat, lon), |p| (p.lat, p.lon))
            });
            let pool_name = |p: usize| st.model.pools[p].name.clone();
            let region_name = |r: usize| {
                st.model
                    .regions
                    .get(r)
                    .map_or("?".to_string(), |r| r.name.clone())
            };
            let hysteresis = e
                .hysteresis
                .iter()
                .map(|h| HysteresisReport {
                    pool: pool_name(h.pool),
                    previous_ms: h.previous_ms,
                    measured_ms: h.measured_ms,
                    margin_ms: h.margin_ms,
                    switched: h.switched,
                })
                .collect();
            let candidates = e
                .pools
                .iter()
                .map(|p| {
                    let pool = &st.model.pools[p.ranked.pool];
                    let (score, rank_reason, distance_km) = match scored_from {
                        Some((lat, lon)) => rescore(&p.ranked, pool, lat, lon),
                        None => (p.ranked.score, p.ranked.reason, p.ranked.distance_km),
                    };
                    let reason = match rank_reason {
                        RankReason::Configured => Reason::Configured,
                        RankReason::ClientRegion => Reason::ClientRegion,
                        RankReason::FallbackRegion { position } => {
                            Reason::FallbackRegion { position }
                        }
                        RankReason::OtherRegion => Reason::OtherRegion,
                        RankReason::Distance => Reason::Distance,
                        RankReason::EstimatedRtt {
                            distance_ms,
                            excess_ms,
                        } => Reason::EstimatedRtt {
                            distance_ms,
                            excess_ms,
                        },
                        RankReason::Weighted => Reason::Weighted,
                    };
                    CandidateReport {
                        pool: pool.name.clone(),
                        region: region_name(pool.region),
                        score,
                        ranked_score: p.ranked.score,
                        distance_km,
                        reason,
                        rank_reason,
                        level: p.level,
                        healthy_fraction: p.healthy_fraction,
                        keep: p.keep,
                        share: p.share,
                        asked: p.asked,
                        endpoints: p
                            .endpoints
                            .iter()
                            .map(|ep| {
                                let d = &pool.endpoints[ep.endpoint];
                                EndpointReport {
                                    name: d.name.clone(),
                                    ipv4: d.ipv4,
                                    ipv6: d.ipv6,
                                    hostname: d.hostname.clone(),
                                    serving: ep.serving,
                                    weight: ep.weight,
                                    capacity: ep.capacity,
                                    rtt_ms: ep.rtt_ms,
                                }
                            })
                            .collect(),
                    }
                })
                .collect();
            let fallback = match &decision.answer {
                Answer::Addresses { .. } => Some(FallbackReport::Addresses),
                Answer::Cname(c) => Some(FallbackReport::Cname { target: c.clone() }),
                Answer::Endpoints(_) => None,
            };
            Some(ServiceReport {
                name: def.name.clone(),
                policy: def.policy,
                answers: def.answers,
                tier: e.tier,
                withdrawn: e.withdrawn,
                degraded: decision.degraded,
                ttl: decision.ttl,
                varies_by_region: varies,
                location,
                ranked_at: e.at,
                scored_from,
                hysteresis,
                vantage: e.vantage.map(region_name),
                vantage_is_peer: e.vantage.is_some() && e.vantage != st.model.node_region,
                capacity: def
                    .pools
                    .iter()
                    .zip(tables.loads(svc))
                    .map(|(&p, l)| LoadReport {
                        pool: pool_name(p),
                        baseline: l.baseline,
                        budget: l.budget,
                        load: l.load,
                    })
                    .collect(),
                candidates,
                fallback,
            })
        }
        _ => None,
    };

    // The answer, from the real answer path.
    let mut msg = Message::new(0x4d45, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(name.clone(), req.qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    if let Some(p) = req.ecs_prefix {
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                truncate(req.client, p),
                p,
                0,
            )));
    }
    msg.set_edns(edns);
    let packet = msg.to_vec().map_err(ExplainError::Encode)?;
    let mut q = crate::dns::answer::Work::default();
    let mut buf = vec![0u8; MAX_MESSAGE];
    let peer = Peer {
        transport: Transport::Tcp,
        addr: req.client,
        random: req.random,
    };
    let outcome = respond(snap, &packet, peer, &mut q, &mut buf).ok_or(ExplainError::NoResponse)?;
    let reply = Message::from_vec(&buf[..outcome.len]).map_err(ExplainError::Decode)?;
    let ecs_scope = reply.edns.as_ref().and_then(|e| {
        match e.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
            _ => None,
        }
    });
    Ok(Report {
        name: name.to_string(),
        client: req.client,
        ecs_prefix: req.ecs_prefix,
        qtype: req.qtype.to_string(),
        service,
        answer: AnswerReport {
            rcode: reply.metadata.response_code.to_string(),
            authoritative: reply.metadata.authoritative,
            records: reply.answers.iter().map(RecordReport::of).collect(),
            authority: reply.authorities.iter().map(RecordReport::of).collect(),
            ecs_scope,
        },
    })
}

impl Report {
    /// The report as `meridian explain` prints it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "name      {}", self.name);
        let _ = writeln!(
            out,
            "client    {}{}",
            self.client,
            self.ecs_prefix
                .map_or(String::new(), |p| format!(" (as ECS /{p})"))
        );
        match &self.service {
            Some(s) => s.write_text(&mut out),
            None => out.push_str("static    not a service: answered from the zone data\n"),
        }
        let a = &self.answer;
        let _ = writeln!(
            out,
            "answer    {} ({})",
            a.rcode,
            if a.authoritative {
                "authoritative"
            } else {
                "not authoritative"
            }
        );
        for r in &a.records {
            let _ = writeln!(out, "  {}", r.text);
        }
        for r in &a.authority {
            let _ = writeln!(out, "  authority: {}", r.text);
        }
        if let Some(s) = a.ecs_scope {
            let _ = writeln!(out, "ecs scope /{s}");
        }
        out
    }
}

impl ServiceReport {
    fn write_text(&self, out: &mut String) {
        let l = &self.location;
        let _ = write!(out, "location  region {} (by {}", l.region, l.source);
        if let Some(prefix) = l.network_prefix {
            let place = [l.continent.as_deref(), l.country.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("/");
            let _ = write!(out, "; {place}");
            if let Some(s) = &l.subdivision {
                let _ = write!(out, "/{s}");
            }
            let _ = write!(out, ", network /{prefix}");
        }
        if let Some(p) = &l.position {
            let _ = write!(
                out,
                "; at {:.2},{:.2} ±{:.0} km ({})",
                p.lat, p.lon, p.radius_km, p.source
            );
        }
        let _ = writeln!(out, ")");
        let _ = writeln!(
            out,
            "service   {} policy {:?}, answers {}, tier {:?}, {} endpoint(s) withdrawn{}",
            self.name,
            self.policy,
            self.answers,
            self.tier,
            self.withdrawn,
            if self.degraded { ", DEGRADED" } else { "" }
        );
        for h in &self.hysteresis {
            let _ = writeln!(
                out,
                "hysteresis pool {} excess {:.1} ms measured vs {:.1} ms published (margin {:.1} ms): {}",
                h.pool,
                h.measured_ms,
                h.previous_ms,
                h.margin_ms,
                if h.switched { "published" } else { "kept" }
            );
        }
        if let Some(v) = &self.vantage {
            let _ = writeln!(
                out,
                "vantage   latency excess as measured from region {v}{}",
                if *v == self.location.region && self.vantage_is_peer {
                    " (the client's region, by a fleet peer there)"
                } else {
                    ""
                }
            );
        }
        if !self.capacity.is_empty() {
            let pools: Vec<String> = self
                .capacity
                .iter()
                .map(|c| match c.budget {
                    Some(b) => format!("{} {:.1}%/{:.1}%", c.pool, c.load * 100.0, b * 100.0),
                    None => format!("{} {:.1}%/unbounded", c.pool, c.load * 100.0),
                })
                .collect();
            let _ = writeln!(
                out,
                "capacity  load/budget as shares of the demand: {}",
                pools.join(", ")
            );
        }
        if let Some((lat, lon, band)) = self.ranked_at {
            let whose = match l.position {
                Some(_) => {
                    "where the client's class was ranked, its order shared by every place of the class; distances and scores are from the client's position"
                }
                None => {
                    "the client region's location, where its class was ranked (no position for the client); distances and scores are from there"
                }
            };
            let _ = writeln!(
                out,
                "ranked at {lat:.2},{lon:.2} (accuracy band {band:.0} km): {whose}"
            );
        }
        let _ = writeln!(out, "candidates (rank order):");
        for p in &self.candidates {
            let _ = writeln!(
                out,
                "  pool {:<14} region {:<10} score {:>9.2} ({})  healthy {:>5.1}%  keep {:.2}  share {:>5.1}%{}",
                p.pool,
                p.region,
                p.score,
                reason_text(p),
                p.healthy_fraction * 100.0,
                p.keep,
                p.share * 100.0,
                if (p.asked - p.share).abs() > 1e-9 {
                    format!(
                        " (spill alone: {:.1}%; bounded by capacity)",
                        p.asked * 100.0
                    )
                } else {
                    String::new()
                }
            );
            for ep in &p.endpoints {
                let addr = [
                    ep.ipv4.map(|a| a.to_string()),
                    ep.ipv6.map(|a| a.to_string()),
                    ep.hostname.clone(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
                let _ = writeln!(
                    out,
                    "    {:<16} {:<34} {:<8} weight {:<4} capacity {:<4} rtt {}",
                    ep.name,
                    addr,
                    format!("{:?}", ep.serving).to_lowercase(),
                    ep.weight,
                    ep.capacity,
                    ep.rtt_ms.map_or("-".into(), |r| format!("{r:.1} ms"))
                );
            }
        }
        match &self.fallback {
            Some(FallbackReport::Addresses) => out.push_str("fallback  addresses\n"),
            Some(FallbackReport::Cname { target }) => {
                let _ = writeln!(out, "fallback  CNAME {target}");
            }
            None => {}
        }
    }
}

/// What a candidate's score is, for the text report.
fn reason_text(p: &CandidateReport) -> String {
    match p.rank_reason {
        RankReason::Distance => "km".to_string(),
        RankReason::EstimatedRtt {
            distance_ms,
            excess_ms,
        } => format!(
            "estimated RTT ms: {distance_ms:.2} for {:.0} km + {excess_ms:.2} excess",
            p.distance_km
        ),
        r => format!("{r:?}"),
    }
}

/// A `nearest`/`latency` candidate scored from `(lat, lon)` rather than where its class was
/// ranked: the great-circle km to the pool and, for `latency`, the distance model plus the
/// pool's published excess (which does not depend on where it is seen from). Score, reason and
/// km; other policies' candidates as they are.
fn rescore(r: &RankedPool, pool: &PoolDef, lat: f64, lon: f64) -> (f64, RankReason, f64) {
    let km = distance_km(lat, lon, pool.lat, pool.lon);
    match r.reason {
        RankReason::Distance => (km, RankReason::Distance, km),
        RankReason::EstimatedRtt { excess_ms, .. } => {
            let distance_ms = estimated_rtt_ms(km);
            let reason = RankReason::EstimatedRtt {
                distance_ms,
                excess_ms,
            };
            (distance_ms + excess_ms, reason, km)
        }
        reason => (r.score, reason, r.distance_km),
    }
}

/// The network of `ip` at `prefix` bits.
fn truncate(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a)
                & u32::MAX
                    .checked_shl(32 - u32::from(prefix.min(32)))
                    .unwrap_or(0);
            IpAddr::V4(bits.into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a)
                & u128::MAX
                    .checked_shl(128 - u32::from(prefix.min(128)))
                    .unwrap_or(0);
            IpAddr::V6(bits.into())
        }
    }
}
