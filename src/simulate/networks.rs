//! Client networks for [`super::report`]: a CSV of `network,weight`, or every network of the
//! GeoIP database.

use std::path::Path;

use super::SimulateError;
use crate::geo::networks::{ClientNetwork, Network, parse_networks};
use crate::snapshot::Steering;

/// Read a networks CSV ([`parse_networks`]).
pub fn read_networks(path: &Path) -> Result<Vec<ClientNetwork>, SimulateError> {
    let text = std::fs::read_to_string(path).map_err(|source| SimulateError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_networks(&text).map_err(|(line, problem)| SimulateError::Csv {
        path: path.to_owned(),
        line,
        problem,
    })
}

/// Every network of the GeoIP database, weighted by its address count (IPv6 capped); the
/// `limit` largest (in database order) when given.
pub fn database_networks(
    st: &Steering,
    limit: Option<usize>,
) -> Result<Vec<ClientNetwork>, SimulateError> {
    let geo = st.geo.as_ref().ok_or(SimulateError::NoNetworks)?;
    let mut nets: Vec<ClientNetwork> = geo
        .load()
        .networks()?
        .into_iter()
        .filter_map(|(a, p)| Network::new(a, p))
        .map(|network| ClientNetwork {
            network,
            weight: network.addresses(),
        })
        .collect();
    if let Some(n) = limit.filter(|&n| n < nets.len()) {
        let mut order: Vec<usize> = (0..nets.len()).collect();
        order.sort_by(|&a, &b| nets[b].weight.total_cmp(&nets[a].weight).then(a.cmp(&b)));
        let mut keep: Vec<usize> = order.into_iter().take(n).collect();
        keep.sort_unstable();
        nets = keep.into_iter().map(|i| nets[i]).collect();
    }
    Ok(nets)
}
