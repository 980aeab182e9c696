//! Answers for service names: locate the client, look up its decision, draw, encode.
//!
//! Per query, and only here: the client's address (its EDNS Client Subnet when the service
//! honours ECS and the query carries one, else the source address), one region lookup (CIDR
//! tables, then the memory-mapped GeoIP database) — skipped when the service's answer is the same
//! for every region — one table lookup, one weighted draw ([`crate::policy::Decision::pick`]) and
//! the encoding of prepared A/AAAA/CNAME data. No allocation, no lock.
//!
//! The ECS scope returned is the prefix length of the network that decided the client's region
//! (override, region prefix or database network), or 0 when the answer does not depend on it.

use super::answer::{ANY_REGION, Peer, Steered, SteeredState};
use crate::policy::{Answer, EndpointRef, MAX_ANSWERS, Place, Tables, Tier};
use crate::snapshot::steering::Steering;
use crate::wire::{CLASS_IN, Query, TYPE_A, TYPE_AAAA, TYPE_ANY, TYPE_CNAME};
use crate::zone::Zone;
use crate::zone::sections::{Full, Sections, Writer, negative};

/// Offset of the question name: owners of service answers point there.
const QNAME_AT: u16 = 12;

fn put_rr(w: &mut Writer, rtype: u16, ttl: u32, rdata: &[u8]) -> Result<(), Full> {
    w.put_u16(0xC000 | QNAME_AT)?;
    w.put_u16(rtype)?;
    w.put_u16(CLASS_IN)?;
    w.put(&ttl.to_be_bytes())?;
    w.put_u16(rdata.len() as u16)?;
    w.put(rdata)
}

/// Write the answer for service `svc` (its name is the question); returns the ECS scope and
/// what was chosen.
#[allow(clippy::too_many_arguments)]
pub(super) fn write(
    w: &mut Writer,
    zone: &Zone,
    st: &Steering,
    tables: &Tables,
    svc: usize,
    q: &Query,
    peer: Peer,
    s: &mut Sections,
) -> Result<(u8, Steered), Full> {
    s.aa = true;
    let def = &st.model.services[svc];
    let varies = tables.varies_by_region(svc);
    let (place, scope) = if varies {
        let ecs = q.edns.and_then(|e| e.client_subnet).filter(|_| def.use_ecs);
        // ECS with source prefix 0 is the resolver opting out: locate it by its own address and
        // say the answer holds for everyone it serves (scope 0).
        let (ip, opted_out) = match ecs {
            Some(c) if c.source_prefix > 0 => (c.ip(), false),
            Some(_) => (peer.addr, true),
            None => (peer.addr, false),
        };
        let (placement, cell) = st.locate(ip, tables.geometry(svc).is_some());
        (
            Place {
                region: placement.region,
                cell,
            },
            if opted_out || ecs.is_none() {
                0
            } else {
                placement.scope_prefix
            },
        )
    } else {
        (
            Place {
                region: 0,
                cell: None,
            },
            0,
        )
    };
    let region = place.region;
    let decision = tables.decision_at(svc, place);
    let ttl = decision.ttl;
    let mut steered = Steered {
        service: svc as u16,
        region: if varies { region as u16 } else { ANY_REGION },
        count: 0,
        endpoints: [EndpointRef {
            pool: 0,
            endpoint: 0,
        }; MAX_ANSWERS],
        state: match decision.explanation.tier {
            Tier::Fallback => SteeredState::Fallback,
            Tier::Standby => SteeredState::Standby,
            Tier::Primary if decision.spills() || (!varies && tables.any_region_spills(svc)) => {
                SteeredState::Spill
            }
            Tier::Primary if decision.degraded => SteeredState::Withdrawn,
            Tier::Primary => SteeredState::Normal,
        },
    };
    let apex_at = 12
        + q.qname
            .suffix_offset(q.qname.label_count() - zone.apex_labels());
    let qtype = q.qtype;
    match &decision.answer {
        Answer::Endpoints(_) => {
            let n = decision.pick(peer.random, def.answers, &mut steered.endpoints);
            steered.count = n as u8;
            let picked = steered.endpoints;
            let wire = |r: &EndpointRef| &st.endpoints[r.pool as usize][r.endpoint as usize];
            // A hostname endpoint answers with its CNAME alone (a name has one CNAME at most).
            if let Some(cname) = picked[..n].iter().find_map(|r| wire(r).cname.as_deref()) {
                put_rr(w, TYPE_CNAME, ttl, cname)?;
                s.an += 1;
                return Ok((scope, steered));
            }
            let want_a = qtype == TYPE_A
                || (qtype == TYPE_ANY && picked[..n].iter().any(|r| wire(r).a.is_some()));
            for r in &picked[..n] {
                let e = wire(r);
                match (want_a, qtype, e.a, e.aaaa) {
                    (true, _, Some(a), _) => put_rr(w, TYPE_A, ttl, &a)?,
                    (false, TYPE_AAAA | TYPE_ANY, _, Some(aaaa)) => {
                        put_rr(w, TYPE_AAAA, ttl, &aaaa)?
                    }
                    _ => continue,
                }
                s.an += 1;
            }
        }
        Answer::Addresses { .. } => {
            let fb = &st.fallbacks[svc];
            let want_a = qtype == TYPE_A || (qtype == TYPE_ANY && !fb.a.is_empty());
            if want_a {
                for a in fb.a.iter().take(def.answers) {
                    put_rr(w, TYPE_A, ttl, a)?;
                    s.an += 1;
                }
            } else if qtype == TYPE_AAAA || qtype == TYPE_ANY {
                for a in fb.aaaa.iter().take(def.answers) {
                    put_rr(w, TYPE_AAAA, ttl, a)?;
                    s.an += 1;
                }
            }
        }
        Answer::Cname(_) => {
            if let Some(cname) = &st.fallbacks[svc].cname {
                put_rr(w, TYPE_CNAME, ttl, cname)?;
                s.an += 1;
            }
        }
    }
    if s.an == 0 {
        // The chosen endpoints have no address of the asked type: NODATA.
        negative(w, zone, apex_at, s)?;
    }
    Ok((scope, steered))
}
