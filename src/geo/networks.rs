//! Client networks and how much traffic each stands for: `network,weight` lines, the format
//! `meridian simulate --networks` and `[geo] demand` read.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;

/// Largest default weight of an IPv6 network (its address count is capped here).
pub const IPV6_WEIGHT_CAP: f64 = 4_294_967_296.0;

/// A network: its first address and prefix length, e.g. `81.2.69.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    /// The network of `addr` at `prefix` bits (host bits cleared); `None` for a prefix too long.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Network> {
        let addr = match addr {
            IpAddr::V4(a) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
            _ => return None,
        };
        Some(Network { addr, prefix })
    }

    /// How many addresses it holds, capped at [`IPV6_WEIGHT_CAP`] for IPv6.
    pub fn addresses(&self) -> f64 {
        match self.addr {
            IpAddr::V4(_) => 2f64.powi(32 - i32::from(self.prefix)),
            IpAddr::V6(_) => 2f64.powi(128 - i32::from(self.prefix)).min(IPV6_WEIGHT_CAP),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A client network and how much traffic it stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientNetwork {
    pub network: Network,
    pub weight: f64,
}

/// What is wrong with one line of a networks CSV.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CsvProblem {
    #[error("{0:?} is not a network (address/prefix)")]
    Network(String),
    #[error("weight {0:?} is not a non-negative number")]
    Weight(String),
    #[error("{0} fields: expected network[,weight]")]
    Fields(usize),
}

/// Parse a networks CSV: `network,weight` a line (weight optional: the network's address
/// count). Blank lines, `#` comments and a first line starting with `network` (a header) are
/// skipped. A problem comes with its 1-based line number.
pub fn parse_networks(text: &str) -> Result<Vec<ClientNetwork>, (usize, CsvProblem)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() || (i == 0 && line.starts_with("network")) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad_net = || (i + 1, CsvProblem::Network(fields[0].to_string()));
        let network = match fields[0].split_once('/') {
            Some((a, p)) => {
                let a = IpAddr::from_str(a).map_err(|_| bad_net())?;
                let p = p.parse::<u8>().map_err(|_| bad_net())?;
                Network::new(a, p).ok_or_else(bad_net)?
            }
            None => {
                let a = IpAddr::from_str(fields[0]).map_err(|_| bad_net())?;
                Network::new(a, if a.is_ipv4() { 32 } else { 128 }).ok_or_else(bad_net)?
            }
        };
        let weight = match fields.len() {
            1 => network.addresses(),
            2 if fields[1].is_empty() => network.addresses(),
            2 => match fields[1].parse::<f64>() {
                Ok(w) if w.is_finite() && w >= 0.0 => w,
                _ => return Err((i + 1, CsvProblem::Weight(fields[1].to_string()))),
            },
            n => return Err((i + 1, CsvProblem::Fields(n))),
        };
        out.push(ClientNetwork { network, weight });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_parse_with_default_weights() {
        let nets = parse_networks(
            "network,weight\n81.2.69.0/24,256\n\n# c\n2001:db8::/32\n10.1.2.3/8, \n",
        )
        .unwrap();
        assert_eq!(nets.len(), 3);
        assert_eq!(nets[0].network.to_string(), "81.2.69.0/24");
        assert_eq!(nets[0].weight, 256.0);
        assert_eq!(nets[1].weight, IPV6_WEIGHT_CAP);
        assert_eq!(nets[2].network.to_string(), "10.0.0.0/8");
        assert_eq!(nets[2].weight, 16_777_216.0);
    }

    #[test]
    fn csv_problems_name_their_line() {
        assert_eq!(
            parse_networks("1.2.3.0/24\n1.2.3.0/33\n"),
            Err((2, CsvProblem::Network("1.2.3.0/33".into())))
        );
        assert_eq!(
            parse_networks("1.2.3.0/24,-1\n"),
            Err((1, CsvProblem::Weight("-1".into())))
        );
        assert_eq!(
            parse_networks("1.2.3.0/24,1,2\n"),
            Err((1, CsvProblem::Fields(3)))
        );
    }
}
