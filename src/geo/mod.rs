//! Geo: where a client is, and which region serves it.
//!
//! The policy engine answers per client region; this module turns a client address (the ECS
//! address or the query's source) into a region, and says how wide a network shares that answer
//! (the ECS scope prefix). It also says where the client itself is, as a point and a radius, for
//! ranking pools by distance from the client. It reads MaxMind DB files and never probes anything.
//!
//! - [`GeoDb`] ([`db`]): a memory-mapped, verified `.mmdb` file; decodes GeoIP2 / GeoLite2 City
//!   and Country, DB-IP, and the flat `country_code` schema of ip-location-db into a
//!   [`Location`] (continent, country, subdivision, coordinates and their accuracy radius,
//!   network prefix length).
//! - [`GeoSource`] ([`source`]): the file on disk and the database serving from it; picks up a
//!   file replaced by rename, rejects a corrupt one and keeps the old.
//! - [`RegionMap`] ([`regions`]): overrides, region prefixes, subdivisions, countries,
//!   continents and a default region, in that precedence; [`RegionMap::locate`] gives a
//!   [`Placement`] with the region, the scope prefix and the rule that decided.
//! - [`position()`] ([`mod@position`]): where the client is, a [`Position`] (latitude,
//!   longitude, radius): the record's coordinates and accuracy radius when the database has them,
//!   else the centroid and radius of its country ([`centroids`]), else none (the caller then uses
//!   the client region's location).
//! - [`continent`]: the country → continent table.
//! - [`centroids`]: the country centroid table, `geo-data/country-centroids.csv` compiled in
//!   (Natural Earth, public domain).
//!
//! Data shipped in `geo-data/`: the public-domain iptoasn country database (the default), the
//! country centroids, and MaxMind's test databases under `geo-data/test/`.
//!
//! # Hot-path budget
//! [`RegionMap::locate`], [`GeoDb::lookup`] and [`position()`] do no allocation, lock or I/O:
//! prefix tables are sorted vectors searched by bisection, records are decoded when the file is
//! opened, the centroid table is parsed then too (a 676-entry array indexed by country code), and
//! [`GeoSource::load`] is a lock-free pointer load (`tests/geo.rs` counts allocations to prove
//! it).
//!
//! Layer 0 of ARCHITECTURE.md: uses only modules of lower layers.

pub mod centroids;
pub mod continent;
pub mod db;
pub mod location;
pub mod networks;
pub mod position;
mod prefix;
pub mod regions;
pub mod source;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use db::GeoDb;
pub use location::{Location, Subdivision};
pub use position::{Position, PositionSource, position};
pub use regions::{
    Placement, PlacementSource, RegionMap, RegionMapError, RegionMapSpec, RegionSpec,
};
pub use source::GeoSource;

/// Why a geo database could not be opened, reloaded or read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be opened, inspected or mapped (missing, no permission, ...).
    #[error("geo database {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The path names something other than a regular file.
    #[error("geo database {}: not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is not a valid MaxMind DB (truncated, corrupt, not a database at all).
    #[error("geo database {}: not a valid MaxMind DB file: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the reader found wrong.
        source: maxminddb::MaxMindDbError,
    },
    /// The file changed while it was being loaded (a writer at work); try again later.
    #[error("geo database {}: changed while it was being loaded; will retry", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// A record could not be decoded.
    #[error("geo database {}: record for {ip} cannot be decoded: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The address looked up.
        ip: IpAddr,
        /// What the decoder found wrong.
        source: maxminddb::MaxMindDbError,
    },
}

/// Opens, maps and verifies the database at `path`: [`GeoDb::open`].
pub fn open(path: impl AsRef<Path>) -> Result<GeoDb, GeoError> {
    GeoDb::open(path)
}
