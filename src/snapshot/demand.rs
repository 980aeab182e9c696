//! Demand: where a service's clients are, weighted, for bounding spill by capacity
//! ([`crate::policy::bound`]).
//!
//! The networks come from `[geo] demand`: every IPv4 network of the GeoIP database weighted by
//! its address count (the default; IPv6 networks carry no weight, as address counts of the
//! two families do not compare), or a CSV of `network,weight` lines (query counts from logs
//! are the better truth). Each network is placed by [`Steering::locate`], the query path's own
//! function, at its first address: into its cell when its position is known, else into its
//! region. The result depends on the database, so it is kept with the database it came from
//! and worked out again when the file is replaced; the work is one lookup per network, off the
//! query path.

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::policy::DemandSource;
use crate::geo::GeoDb;
use crate::geo::networks::{ClientNetwork, Network};
use crate::policy::Demand;

use super::Steering;

/// Demand worked out for one database (`None`: no database).
pub(super) struct Kept {
    db: Option<Arc<GeoDb>>,
    demand: Option<Arc<Demand>>,
}

/// The demand of `networks` as `st` places them.
pub fn demand_of(st: &Steering, networks: &[ClientNetwork]) -> Demand {
    let regions = st.model.regions.len();
    let mut d = Demand {
        cells: Vec::new(),
        unplaced: vec![0.0; regions],
        by_region: vec![0.0; regions],
    };
    for n in networks.iter().filter(|n| n.weight > 0.0) {
        let (placement, cell) = st.locate(n.network.addr, true);
        let Some(r) = d.by_region.get_mut(placement.region) else {
            continue;
        };
        *r += n.weight;
        match cell {
            Some(c) => d
                .cells
                .push((c.index() as u32, placement.region as u32, n.weight)),
            None => d.unplaced[placement.region] += n.weight,
        }
    }
    d.cells.sort_unstable_by_key(|c| (c.0, c.1));
    d.cells.dedup_by(|b, a| {
        let same = (a.0, a.1) == (b.0, b.1);
        if same {
            a.2 += b.2;
        }
        same
    });
    d
}

/// The database's IPv4 networks, weighted by address count (an IPv6 database's IPv4 subtree,
/// `::a.b.c.d/96+`, counts as IPv4).
pub fn database_demand(db: &GeoDb) -> Result<Vec<ClientNetwork>, crate::geo::GeoError> {
    Ok(db
        .networks()?
        .into_iter()
        .filter_map(|(addr, prefix)| match addr {
            IpAddr::V4(_) => Network::new(addr, prefix),
            IpAddr::V6(a) if prefix >= 96 && u128::from(a) >> 32 == 0 => {
                Network::new(IpAddr::V4((u128::from(a) as u32).into()), prefix - 96)
            }
            IpAddr::V6(_) => None,
        })
        .map(|network| ClientNetwork {
            network,
            weight: network.addresses(),
        })
        .collect())
}

impl Steering {
    /// Where clients are, weighted (`[geo] demand`), for the database in use now; `None` when
    /// there is none to go by (`demand = "none"`, or `"database"` without a database or with
    /// one that cannot be listed). Worked out on the first call for each database.
    pub fn demand(&self) -> Option<Arc<Demand>> {
        let db = self.geo.as_ref().map(|g| g.current());
        let same_db = |kept: &Kept| match (&kept.db, &db) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        let mut kept = self.demand.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = kept.as_ref().filter(|k| same_db(k)) {
            return k.demand.clone();
        }
        let source = self
            .model
            .geo
            .as_ref()
            .map_or(DemandSource::None, |g| g.demand.clone());
        let networks = match (&source, &db) {
            (DemandSource::None, _) | (DemandSource::Database, None) => None,
            (DemandSource::Database, Some(db)) => match database_demand(db) {
                Ok(n) => Some(Arc::new(n)),
                Err(e) => {
                    tracing::warn!("geo.demand: cannot list the database's networks: {e}");
                    None
                }
            },
            (DemandSource::Networks(_, n), _) => Some(Arc::clone(n)),
        };
        let demand = networks.map(|n| Arc::new(demand_of(self, &n)));
        *kept = Some(Kept {
            db,
            demand: demand.clone(),
        });
        demand
    }
}
