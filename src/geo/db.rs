//! [`GeoDb`]: one memory-mapped MaxMind DB file and the decoding of its location records.
//!
//! Understood schemas, all read by one borrowed record type (unknown fields are skipped):
//! - GeoIP2 / GeoLite2 City and Country, DB-IP (same shape): `continent.code`,
//!   `country.iso_code` (else `registered_country.iso_code`), `subdivisions[0].iso_code`,
//!   `location.latitude` / `location.longitude` / `location.accuracy_radius`;
//! - ip-location-db (flat): `country_code`, and `latitude` / `longitude` in its city files; the
//!   continent is derived from the country ([`super::continent::continent_of`]).
//!
//! Opening walks the whole search tree and decodes every distinct record once: that checks the
//! file, and the decoded [`Location`]s are kept in a table keyed by record offset. A lookup is
//! then a tree walk and one hash probe; decoding a GeoIP2 City record at query time costs several
//! times the walk, because its many `names` maps must be skipped. Memory: about 60 bytes per
//! distinct record (some hundreds in a country database, far more in a City one).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use maxminddb::{Mmap, Reader};
use serde::Deserialize;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};

use super::GeoError;
use super::continent::{code2, continent_of, is_continent};
use super::location::{Location, Subdivision};

/// An open, verified MaxMind DB file, memory-mapped.
///
/// The file must be replaced by rename (as `geoipupdate` and `geo-data/refresh.sh` do), never
/// rewritten in place: the map keeps the old file alive after a rename, but a file truncated
/// under it would fault its readers.
pub struct GeoDb {
    reader: Reader<Mmap>,
    /// Every record of the file, decoded, by data-section offset (`prefix_len` left at 0).
    records: Records,
    path: PathBuf,
    stamp: FileStamp,
}

type Records = HashMap<usize, Location, foldhash::fast::RandomState>;

/// Identity of a file's contents as seen by `stat`: a rename changes the inode, a rewrite the
/// size or modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileStamp {
    pub(crate) fn of(meta: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

impl GeoDb {
    /// Opens, maps and checks the database at `path`: the metadata and layout, then every
    /// network of the search tree and every record it points to, decoded once and kept (see
    /// the module docs). Tens of milliseconds for a country database of some megabytes (release
    /// build). Errors name the file.
    ///
    /// Also parses the compiled-in country centroid table if nothing has yet
    /// ([`super::centroids::load`]), so that [`super::position()`] of a looked-up location never
    /// pays for it.
    pub fn open(path: impl AsRef<Path>) -> Result<GeoDb, GeoError> {
        super::centroids::load();
        let path = path.as_ref();
        let io = |source| GeoError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(GeoError::NotAFile {
                path: path.to_owned(),
            });
        }
        // The map and the stamp come from the same open file, so a rename between the two
        // cannot pair one file's contents with another's identity.
        // SAFETY: the file is mapped read-only; databases are replaced by rename, which leaves
        // this inode and so the map intact (documented on `GeoDb` and in geo-data/README.md).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let invalid = |source| GeoError::Invalid {
            path: path.to_owned(),
            source,
        };
        let reader = Reader::from_source(map).map_err(invalid)?;
        let records = decode_all(&reader).map_err(invalid)?;
        Ok(GeoDb {
            reader,
            records,
            path: path.to_owned(),
            stamp: FileStamp::of(&meta),
        })
    }

    /// Every network of the database that has a record, as (first address, prefix length),
    /// in tree order: IPv4 networks as IPv4 (not through their IPv6 aliases), then IPv6 ones.
    /// Walks the whole search tree (seconds for a full City database): for `meridian simulate`,
    /// never the query path.
    pub fn networks(&self) -> Result<Vec<(IpAddr, u8)>, GeoError> {
        let invalid = |source| GeoError::Invalid {
            path: self.path.clone(),
            source,
        };
        let mut out = Vec::new();
        for item in self
            .reader
            .networks(maxminddb::WithinOptions::default())
            .map_err(invalid)?
        {
            let net = item.and_then(|found| found.network()).map_err(invalid)?;
            out.push((net.ip(), net.prefix()));
        }
        Ok(out)
    }

    /// Looks up `ip` and decodes its location.
    ///
    /// An address the database does not cover gives a [`Location`] whose fields are all `None`
    /// and whose `prefix_len` is that of the empty network around it (0 for IPv6 in an
    /// IPv4-only database). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is looked up as IPv4,
    /// since databases differ in whether they alias `::ffff:0:0/96`, and its prefix length is
    /// reported in IPv6 terms (IPv4 length + 96). No allocation: the record was decoded when the
    /// file was opened.
    pub fn lookup(&self, ip: IpAddr) -> Result<Location, GeoError> {
        if let IpAddr::V6(v6) = ip {
            if let Some(v4) = v6.to_ipv4_mapped() {
                let mut loc = self.lookup(IpAddr::V4(v4))?;
                loc.prefix_len += 96;
                return Ok(loc);
            }
            if self.reader.metadata().ip_version == 4 {
                return Ok(Location::default());
            }
        }
        let decode = |source| GeoError::Decode {
            path: self.path.clone(),
            ip,
            source,
        };
        let found = self.reader.lookup(ip).map_err(decode)?;
        let net = found.network().map_err(decode)?;
        // An IPv4 address that ends above the IPv4 subtree of an IPv6 database (no data for any
        // of IPv4) gets an IPv6 network back: for IPv4 purposes that is the whole space.
        let prefix_len = if ip.is_ipv4() && net.ip().is_ipv6() {
            0
        } else {
            net.prefix()
        };
        let mut loc = match found.offset() {
            None => Location::default(),
            Some(offset) => match self.records.get(&offset) {
                Some(loc) => *loc,
                // Unreachable for a file that passed `decode_all`; decoded here all the same.
                None => decode_one(&found).map_err(decode)?,
            },
        };
        loc.prefix_len = prefix_len;
        Ok(loc)
    }

    /// The path the database was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `database_type` of the metadata (`GeoIP2-City`, `GeoLite2-Country`,
    /// `country ipvAll`, ...).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built, in seconds since the Unix epoch.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// 4 for an IPv4-only database, 6 for one that holds IPv6 (and usually IPv4) networks.
    pub fn ip_version(&self) -> u16 {
        self.reader.metadata().ip_version
    }

    pub(crate) fn stamp(&self) -> FileStamp {
        self.stamp
    }
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("database_type", &self.database_type())
            .field("build_epoch", &self.build_epoch())
            .field("ip_version", &self.ip_version())
            .field("records", &self.records.len())
            .finish()
    }
}

/// Walks the whole search tree and decodes each distinct record once, so that a file that opens
/// cannot fail a lookup later: a corrupt tree (bad pointers, cycles) or record is found here, off
/// the query path. `Reader::verify` would check more, but it also rejects files that every reader
/// serves (an empty metadata `description`, as in the ip-location-db files).
fn decode_all(reader: &Reader<Mmap>) -> Result<Records, maxminddb::MaxMindDbError> {
    let opts = maxminddb::WithinOptions::default().include_networks_without_data();
    let mut records = Records::default();
    // A tree of n nodes has n + 1 leaves; allow for aliased subtrees as `Reader::verify` does
    // (3n). More means a cycle.
    let limit = (reader.metadata().node_count as usize).saturating_mul(3);
    for (steps, item) in reader.networks(opts)?.enumerate() {
        if steps > limit {
            return Err(maxminddb::MaxMindDbError::invalid_database(
                "the search tree has more leaves than its nodes allow (a cycle?)",
            ));
        }
        let found = item?;
        if let Some(offset) = found.offset()
            && !records.contains_key(&offset)
        {
            records.insert(offset, decode_one(&found)?);
        }
    }
    Ok(records)
}

/// Decodes the record a lookup found (`prefix_len` is left at 0).
fn decode_one(
    found: &maxminddb::LookupResult<'_, Mmap>,
) -> Result<Location, maxminddb::MaxMindDbError> {
    let mut loc = Location::default();
    if let Some(rec) = found.decode::<Record<'_>>()? {
        rec.fill(&mut loc);
    }
    Ok(loc)
}

/// The union of the location fields of every understood schema, borrowed from the map.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    continent: Option<Coded<'a>>,
    #[serde(borrow)]
    country: Option<Iso<'a>>,
    #[serde(borrow)]
    registered_country: Option<Iso<'a>>,
    #[serde(borrow)]
    subdivisions: Option<FirstSubdivision<'a>>,
    location: Option<Coordinates>,
    #[serde(borrow)]
    country_code: Option<&'a str>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(Deserialize)]
struct Coded<'a> {
    #[serde(borrow)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Iso<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Coordinates {
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_radius: Option<Radius>,
}

/// `location.accuracy_radius` in km: a `uint16` in MaxMind's files. The decoder checks integer
/// types exactly, so any integer type is read here (larger values saturate at `u16::MAX`) and a
/// writer's wider type does not make the record, and so the file, undecodable.
struct Radius(u16);

impl<'de> Deserialize<'de> for Radius {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Km;
        impl Visitor<'_> for Km {
            type Value = Radius;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a radius in km, a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Radius, E> {
                Ok(Radius(u16::try_from(v).unwrap_or(u16::MAX)))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Radius, E> {
                Ok(Radius(u16::try_from(v).unwrap_or(u16::MAX)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Radius, E> {
                u64::try_from(v)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
                    .and_then(|v| self.visit_u64(v))
            }
        }
        d.deserialize_any(Km)
    }
}

/// The first element of `subdivisions`; the rest are skipped, so no `Vec` is built.
struct FirstSubdivision<'a>(Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstSubdivision<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct First;
        impl<'de> Visitor<'de> for First {
            type Value = FirstSubdivision<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of subdivisions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<Iso<'de>>()?.and_then(|s| s.iso_code);
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstSubdivision(first))
            }
        }
        d.deserialize_seq(First)
    }
}

impl Record<'_> {
    fn fill(&self, loc: &mut Location) {
        let iso = |c: &Option<Iso<'_>>| c.as_ref().and_then(|c| c.iso_code).and_then(code2);
        loc.country = iso(&self.country)
            .or_else(|| iso(&self.registered_country))
            .or_else(|| self.country_code.and_then(code2));
        loc.continent = self
            .continent
            .as_ref()
            .and_then(|c| c.code)
            .and_then(code2)
            .filter(|c| is_continent(*c))
            .or_else(|| loc.country.and_then(continent_of));
        loc.subdivision = self
            .subdivisions
            .as_ref()
            .and_then(|s| s.0)
            .and_then(Subdivision::new);
        let (lat, lon, accuracy) = match &self.location {
            Some(c) => (c.latitude, c.longitude, c.accuracy_radius.as_ref()),
            None => (self.latitude, self.longitude, None),
        };
        loc.lat_lon = lat.zip(lon);
        loc.accuracy_km = accuracy.filter(|_| loc.lat_lon.is_some()).map(|r| r.0);
    }
}
