//! `meridian explain`: why a name is answered the way it is, for one client.
//!
//! Runs the server's own code: the region map and GeoIP lookup place the client, the decision
//! tables give the candidates with their health, latency, score and share, and the answer is
//! produced by [`crate::dns::answer::respond`] on a real query packet, exactly as a worker would.
//! The report is plain text (and the admin API will serve the same data as JSON).

use std::fmt::Write as _;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

use crate::dns::answer::{MAX_MESSAGE, Peer, Snapshot, Transport, respond};
use crate::policy::Answer;

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

/// Explain `req` against `snap`; the report, or why it cannot be made.
pub fn explain(snap: &Snapshot, req: &Request) -> Result<String, String> {
    let mut out = String::new();
    let mut name = Name::from_ascii(&req.name).map_err(|e| format!("{:?}: {e}", req.name))?;
    name.set_fqdn(true);
    let lower = crate::zone::build::lower_wire(&name);
    let _ = writeln!(out, "name      {name}");
    let _ = writeln!(
        out,
        "client    {}{}",
        req.client,
        req.ecs_prefix
            .map_or(String::new(), |p| format!(" (as ECS /{p})"))
    );

    let service = snap
        .steering
        .as_ref()
        .and_then(|st| Some((st, st.service(&lower)?)));
    match (service, &snap.tables) {
        (Some((st, svc)), Some(tables)) => {
            let def = &st.model.services[svc];
            let db = st.geo.as_ref().map(|g| g.load());
            let located = match req.ecs_prefix {
                Some(p) if def.use_ecs => truncate(req.client, p),
                _ => req.client,
            };
            let placement = st.regions.locate(located, db.as_deref().map(|d| &**d));
            let region = &st.model.regions[placement.region];
            let _ = write!(
                out,
                "location  region {} (by {}",
                region.name, placement.source
            );
            if let Some(l) = &placement.location {
                let _ = write!(
                    out,
                    "; {}",
                    [l.continent_str(), l.country_str()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join("/")
                );
                if let Some(s) = &l.subdivision {
                    let _ = write!(out, "/{}", s.as_str());
                }
                let _ = write!(out, ", network /{}", l.prefix_len);
            }
            let _ = writeln!(out, ")");
            let varies = tables.varies_by_region(svc);
            let decision = tables.decision(svc, if varies { placement.region } else { 0 });
            let e = &decision.explanation;
            let _ = writeln!(
                out,
                "service   {} policy {:?}, answers {}, tier {:?}, {} endpoint(s) withdrawn{}",
                def.name,
                def.policy,
                def.answers,
                e.tier,
                e.withdrawn,
                if decision.degraded { ", DEGRADED" } else { "" }
            );
            if let Some(h) = &e.hysteresis {
                let _ = writeln!(
                    out,
                    "hysteresis incumbent {} {:.1} ms vs challenger {} {:.1} ms (margin {:.1} ms): {}",
                    st.model.pools[h.incumbent].name,
                    h.incumbent_ms,
                    st.model.pools[h.challenger].name,
                    h.challenger_ms,
                    h.margin_ms,
                    if h.switched { "switched" } else { "kept" }
                );
            }
            let _ = writeln!(out, "candidates (rank order):");
            for p in &e.pools {
                let pool = &st.model.pools[p.ranked.pool];
                let _ = writeln!(
                    out,
                    "  pool {:<14} region {:<10} score {:>9.2} ({:?})  healthy {:>5.1}%  keep {:.2}  share {:>5.1}%",
                    pool.name,
                    st.model
                        .regions
                        .get(pool.region)
                        .map_or("?", |r| r.name.as_str()),
                    p.ranked.score,
                    p.ranked.reason,
                    p.healthy_fraction * 100.0,
                    p.keep,
                    p.share * 100.0
                );
                for ep in &p.endpoints {
                    let def = &pool.endpoints[ep.endpoint];
                    let addr = [
                        def.ipv4.map(|a| a.to_string()),
                        def.ipv6.map(|a| a.to_string()),
                        def.hostname.clone(),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                    let _ = writeln!(
                        out,
                        "    {:<16} {:<34} {:<8} weight {:<4} capacity {:<4} rtt {}",
                        def.name,
                        addr,
                        format!("{:?}", ep.serving).to_lowercase(),
                        ep.weight,
                        ep.capacity,
                        ep.rtt_ms.map_or("-".into(), |r| format!("{r:.1} ms"))
                    );
                }
            }
            match &decision.answer {
                Answer::Addresses { .. } => out.push_str("fallback  addresses\n"),
                Answer::Cname(c) => {
                    let _ = writeln!(out, "fallback  CNAME {c}");
                }
                Answer::Endpoints(_) => {}
            }
        }
        _ => out.push_str("static    not a service: answered from the zone data\n"),
    }

    // The answer, from the real answer path.
    let mut msg = Message::new(0x4d45, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(name, req.qtype));
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
    let packet = msg.to_vec().map_err(|e| e.to_string())?;
    let mut q = crate::dns::wire::Query::default();
    let mut buf = vec![0u8; MAX_MESSAGE];
    let peer = Peer {
        transport: Transport::Tcp,
        addr: req.client,
        random: req.random,
    };
    let outcome = respond(snap, &packet, peer, &mut q, &mut buf).ok_or("no response")?;
    let reply = Message::from_vec(&buf[..outcome.len]).map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "answer    {} ({})",
        reply.metadata.response_code,
        if reply.metadata.authoritative {
            "authoritative"
        } else {
            "not authoritative"
        }
    );
    for r in &reply.answers {
        let _ = writeln!(out, "  {r}");
    }
    for r in &reply.authorities {
        let _ = writeln!(out, "  authority: {r}");
    }
    let scope = reply.edns.as_ref().and_then(|e| {
        match e.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
            _ => None,
        }
    });
    if let Some(s) = scope {
        let _ = writeln!(out, "ecs scope /{s}");
    }
    Ok(out)
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
