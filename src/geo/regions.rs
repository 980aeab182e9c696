//! [`RegionMap`]: which region a client belongs to, and for how wide a network that holds.
//!
//! # Precedence
//! 1. CIDR overrides, longest prefix first;
//! 2. region prefixes (a region's own `prefixes`), longest prefix first;
//! 3. the database location: subdivision (`US-CA`), then country (`US`), then continent (`NA`);
//! 4. the default region.
//!
//! # ECS scope
//! [`Placement::scope_prefix`] is how wide a network around the client gets the same answer, so a
//! resolver may cache it for that network (RFC 7871):
//! - an override or region prefix decides at its own length;
//! - a database decision (subdivision, country, continent, or default because no rule matched
//!   the database's answer) at the length of the database network, including the empty network
//!   around an address the database does not cover (not 0: other networks get other regions, and a
//!   resolver would reuse a scope-0 answer for all of its clients);
//! - without a database to consult (none given, or no region maps continents, countries or
//!   subdivisions) the default region decides at length 0: the answer does not depend on location.
//!
//! In every case the scope is then narrowed, if needed, so that the network it names holds no
//! override or prefix (of a rule that outranks the decision) that does not also contain the
//! client: to one bit past the longest prefix the client shares with such an entry. Example:
//! overrides `216.160.0.0/16` and `216.160.83.56/30`; client `216.160.83.60` is placed by the /16
//! but gets scope /30, since its /29 would include the /30's clients. IPv4-mapped IPv6 clients
//! are placed as IPv4 and their scope given in IPv6 terms (+96).
//!
//! # Budget
//! [`RegionMap::locate`] does not allocate: two prefix tables (a binary search per distinct prefix
//! length), one database lookup (a tree walk and a hash probe), a 676-entry country array, a
//! 7-entry continent array and a binary search over subdivisions.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::GeoDb;
use super::continent::{CONTINENTS, code2, continent_of};
use super::location::{Location, Subdivision, code_str};
use super::prefix::PrefixTable;

/// One region as configured: its name and what maps clients to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegionSpec {
    /// Region name, unique within the map.
    pub name: String,
    /// Continent codes (`EU`, `NA`, ...) whose clients go to this region.
    pub continents: Vec<String>,
    /// ISO 3166-1 alpha-2 country codes (`DE`, `US`, ...), either case.
    pub countries: Vec<String>,
    /// ISO 3166-2 subdivision codes (`US-CA`, `GB-ENG`), either case.
    pub subdivisions: Vec<String>,
    /// Client networks that belong to this region whatever the database says.
    pub prefixes: Vec<IpNet>,
}

/// Everything a [`RegionMap`] is built from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegionMapSpec {
    /// The regions, in order: a region's index in [`Placement::region`] is its position here.
    pub regions: Vec<RegionSpec>,
    /// CIDR overrides: (client network, region name). They outrank everything else.
    pub overrides: Vec<(IpNet, String)>,
    /// The region of clients that no rule places.
    pub default_region: String,
}

/// Why a client was placed in its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementSource {
    /// A CIDR override.
    Override,
    /// One of the region's own prefixes.
    Prefix,
    /// The database's subdivision (`US-CA`).
    Subdivision,
    /// The database's country.
    Country,
    /// The database's continent.
    Continent,
    /// No rule matched.
    Default,
}

impl fmt::Display for PlacementSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlacementSource::Override => "override",
            PlacementSource::Prefix => "prefix",
            PlacementSource::Subdivision => "subdivision",
            PlacementSource::Country => "country",
            PlacementSource::Continent => "continent",
            PlacementSource::Default => "default",
        })
    }
}

/// The region of one client address, and how widely that holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Index of the region in [`RegionMapSpec::regions`].
    pub region: usize,
    /// ECS scope prefix length for the answer (see the module docs), in the family of the address.
    pub scope_prefix: u8,
    /// The rule that decided.
    pub source: PlacementSource,
    /// What the database said, when it was consulted (not for overrides and prefixes, which are
    /// decided before it).
    pub location: Option<Location>,
}

/// A problem in a [`RegionMapSpec`]; [`RegionMap::new`] reports all of them at once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegionMapError {
    /// Two regions share a name.
    #[error("region {name:?} is defined more than once")]
    DuplicateRegion {
        /// The name.
        name: String,
    },
    /// More regions than a placement can index.
    #[error("{count} regions defined; at most 65534 are supported")]
    TooManyRegions {
        /// How many were given.
        count: usize,
    },
    /// The default region names no region.
    #[error("default region {name:?} is not defined")]
    UnknownDefaultRegion {
        /// The name.
        name: String,
    },
    /// An override names no region.
    #[error("override {prefix}: region {region:?} is not defined")]
    UnknownOverrideRegion {
        /// The override's network.
        prefix: IpNet,
        /// The name.
        region: String,
    },
    /// A continent code that is not one of the seven.
    #[error("region {region:?}: continent {code:?} is not one of AF, AN, AS, EU, NA, OC, SA")]
    BadContinent {
        /// The region.
        region: String,
        /// The code as given.
        code: String,
    },
    /// A country code that is not a known ISO 3166-1 alpha-2 code.
    #[error("region {region:?}: country {code:?} is not an ISO 3166-1 alpha-2 code")]
    BadCountry {
        /// The region.
        region: String,
        /// The code as given.
        code: String,
    },
    /// A subdivision that is not an ISO 3166-2 code of a known country.
    #[error("region {region:?}: subdivision {code:?} is not an ISO 3166-2 code such as \"US-CA\"")]
    BadSubdivision {
        /// The region.
        region: String,
        /// The code as given.
        code: String,
    },
    /// The same continent, country, subdivision, prefix or override network maps to two regions.
    #[error("{kind} {key} is mapped to both region {first:?} and region {second:?}")]
    Conflict {
        /// `continent`, `country`, `subdivision`, `prefix` or `override`.
        kind: &'static str,
        /// The code or network.
        key: String,
        /// The region it was mapped to first.
        first: String,
        /// The region it was mapped to again.
        second: String,
    },
}

const NONE: u16 = u16::MAX;

/// Maps client addresses to regions; built once from a [`RegionMapSpec`], then only read.
#[derive(Debug, Clone)]
pub struct RegionMap {
    names: Vec<String>,
    default: u16,
    overrides: PrefixTable,
    prefixes: PrefixTable,
    /// (country, subdivision, region), sorted.
    subdivisions: Vec<([u8; 2], Subdivision, u16)>,
    /// Region per country, indexed by `(c0 - 'A') * 26 + (c1 - 'A')`.
    countries: Box<[u16; 676]>,
    /// Region per continent, in the order of [`CONTINENTS`].
    continents: [u16; 7],
    /// Whether any rule reads the database.
    uses_db: bool,
}

impl RegionMap {
    /// Builds the map, or reports every problem in `spec`.
    pub fn new(spec: &RegionMapSpec) -> Result<RegionMap, Vec<RegionMapError>> {
        let mut errors = Vec::new();
        let names: Vec<String> = spec.regions.iter().map(|r| r.name.clone()).collect();
        if names.len() >= usize::from(NONE) {
            errors.push(RegionMapError::TooManyRegions { count: names.len() });
            return Err(errors);
        }
        for (i, n) in names.iter().enumerate() {
            // Reported once, at the second definition.
            if names[..i].iter().filter(|m| *m == n).count() == 1 {
                errors.push(RegionMapError::DuplicateRegion { name: n.clone() });
            }
        }
        let index = |name: &str| names.iter().position(|n| n == name).map(|i| i as u16);
        let default = index(&spec.default_region).unwrap_or_else(|| {
            errors.push(RegionMapError::UnknownDefaultRegion {
                name: spec.default_region.clone(),
            });
            0
        });

        let mut countries = Box::new([NONE; 676]);
        let mut continents = [NONE; 7];
        let mut subdivisions: Vec<([u8; 2], Subdivision, u16)> = Vec::new();
        let mut prefixes = Vec::new();
        let conflict = |kind, key: String, first: u16, second: u16| RegionMapError::Conflict {
            kind,
            key,
            first: names[usize::from(first)].clone(),
            second: names[usize::from(second)].clone(),
        };
        for (i, r) in spec.regions.iter().enumerate() {
            let i = i as u16;
            let bad = |code: &String| (r.name.clone(), code.clone());
            for code in &r.continents {
                match code2(code).and_then(|c| CONTINENTS.iter().position(|k| k.as_bytes() == c)) {
                    Some(k) if continents[k] == NONE || continents[k] == i => continents[k] = i,
                    Some(k) => errors.push(conflict(
                        "continent",
                        CONTINENTS[k].into(),
                        continents[k],
                        i,
                    )),
                    None => {
                        let (region, code) = bad(code);
                        errors.push(RegionMapError::BadContinent { region, code });
                    }
                }
            }
            for code in &r.countries {
                match code2(code).filter(|c| continent_of(*c).is_some()) {
                    Some(c) => {
                        let slot = &mut countries[country_slot(c)];
                        if *slot != NONE && *slot != i {
                            errors.push(conflict("country", code_str(&c).into(), *slot, i));
                        } else {
                            *slot = i;
                        }
                    }
                    None => {
                        let (region, code) = bad(code);
                        errors.push(RegionMapError::BadCountry { region, code });
                    }
                }
            }
            for code in &r.subdivisions {
                match Subdivision::parse_iso(code).filter(|(c, _)| continent_of(*c).is_some()) {
                    Some((c, s)) => match subdivisions.iter().find(|e| e.0 == c && e.1 == s) {
                        Some(e) if e.2 != i => {
                            let key = format!("{}-{}", code_str(&c), s);
                            errors.push(conflict("subdivision", key, e.2, i));
                        }
                        Some(_) => {}
                        None => subdivisions.push((c, s, i)),
                    },
                    None => {
                        let (region, code) = bad(code);
                        errors.push(RegionMapError::BadSubdivision { region, code });
                    }
                }
            }
            prefixes.extend(r.prefixes.iter().map(|p| (*p, i)));
        }
        subdivisions.sort_unstable();

        let mut overrides = Vec::new();
        for (prefix, region) in &spec.overrides {
            match index(region) {
                Some(i) => overrides.push((*prefix, i)),
                None => errors.push(RegionMapError::UnknownOverrideRegion {
                    prefix: *prefix,
                    region: region.clone(),
                }),
            }
        }
        let mut table = |kind, entries: &[(IpNet, u16)]| {
            PrefixTable::new(entries).unwrap_or_else(|cs| {
                for c in cs {
                    errors.push(conflict(kind, c.prefix.to_string(), c.first, c.second));
                }
                PrefixTable::default()
            })
        };
        let prefixes = table("prefix", &prefixes);
        let overrides = table("override", &overrides);

        if !errors.is_empty() {
            return Err(errors);
        }
        let uses_db = !subdivisions.is_empty()
            || countries.iter().any(|&r| r != NONE)
            || continents.iter().any(|&r| r != NONE);
        Ok(RegionMap {
            names,
            default,
            overrides,
            prefixes,
            subdivisions,
            countries,
            continents,
            uses_db,
        })
    }

    /// Places the client at `ip`, consulting `db` when a rule needs it (see the module docs for
    /// precedence and scope). Does not allocate.
    pub fn locate(&self, ip: IpAddr, db: Option<&GeoDb>) -> Placement {
        self.locate_with(ip, db, false)
    }

    /// [`RegionMap::locate`], consulting `db` also when no rule needs it but `want_location` is
    /// set (to rank by the client's position): unless an override or region prefix decides,
    /// the placement then carries the database's record, and the scope is its network's.
    pub fn locate_with(&self, ip: IpAddr, db: Option<&GeoDb>, want_location: bool) -> Placement {
        if let IpAddr::V6(v6) = ip
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            let mut p = self.locate_with(IpAddr::V4(v4), db, want_location);
            p.scope_prefix += 96;
            if let Some(l) = &mut p.location {
                l.prefix_len += 96;
            }
            return p;
        }
        let place = |region: u16, scope_prefix, source, location| Placement {
            region: usize::from(region),
            scope_prefix,
            source,
            location,
        };
        if let Some((r, len)) = self.overrides.longest_match(ip) {
            let scope = self.overrides.scope_floor(ip, len);
            return place(r, scope, PlacementSource::Override, None);
        }
        if let Some((r, len)) = self.prefixes.longest_match(ip) {
            return place(r, self.floor(ip, len), PlacementSource::Prefix, None);
        }
        let (location, len) = match db
            .filter(|_| self.uses_db || want_location)
            .map(|db| db.lookup(ip))
        {
            Some(Ok(l)) => (Some(l), l.prefix_len),
            // A record that cannot be decoded (unexpected after verification): answer the
            // default for this one address only.
            Some(Err(_)) => (None, if ip.is_ipv4() { 32 } else { 128 }),
            None => (None, 0),
        };
        let scope = self.floor(ip, len);
        match location.as_ref().and_then(|l| self.by_location(l)) {
            Some((r, source)) => place(r, scope, source, location),
            None => place(self.default, scope, PlacementSource::Default, location),
        }
    }

    /// Number of regions.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no regions (never true for a built map: the default must exist).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of region `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The index of the region called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The index of the default region.
    pub fn default_region(&self) -> usize {
        usize::from(self.default)
    }

    /// Whether any region maps continents, countries or subdivisions (else no lookup is made).
    pub fn uses_database(&self) -> bool {
        self.uses_db
    }

    /// `len` narrowed by both prefix tables.
    fn floor(&self, ip: IpAddr, len: u8) -> u8 {
        self.prefixes
            .scope_floor(ip, self.overrides.scope_floor(ip, len))
    }

    fn by_location(&self, l: &Location) -> Option<(u16, PlacementSource)> {
        if let (Some(c), Some(s)) = (l.country, l.subdivision) {
            let found = self
                .subdivisions
                .binary_search_by(|e| (e.0, e.1).cmp(&(c, s)))
                .ok()
                .map(|i| self.subdivisions[i].2);
            if let Some(r) = found {
                return Some((r, PlacementSource::Subdivision));
            }
        }
        if let Some(r) = l.country.filter(|c| c.iter().all(u8::is_ascii_uppercase)) {
            let r = self.countries[country_slot(r)];
            if r != NONE {
                return Some((r, PlacementSource::Country));
            }
        }
        let r = l
            .continent
            .and_then(|c| CONTINENTS.iter().position(|k| k.as_bytes() == c))
            .map(|k| self.continents[k])?;
        (r != NONE).then_some((r, PlacementSource::Continent))
    }
}

/// Index of an upper-case two-letter code in the 26 × 26 country array.
fn country_slot(c: [u8; 2]) -> usize {
    usize::from(c[0] - b'A') * 26 + usize::from(c[1] - b'A')
}
