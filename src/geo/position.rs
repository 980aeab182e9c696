//! [`position()`]: where a client is, as a point and a radius, from what the database said.
//!
//! In order:
//! 1. the record's own coordinates (City databases), with its accuracy radius, else
//!    [`DEFAULT_RECORD_RADIUS_KM`];
//! 2. the centroid of the record's country ([`super::centroids`]), with the country's radius;
//! 3. nothing: no coordinates and no country with a centroid (an address the database does not
//!    cover, a pseudo-code such as `AP`). The caller then uses the client region's location.
//!
//! The radius is how uncertain the point is: a caller ranking pools by distance treats pools
//! whose distances differ by less than it as near-ties.
//!
//! # Budget
//! No allocation, lock or I/O: a few comparisons, and at most one index into the centroid table
//! (parsed when a database is opened).

use std::fmt;

use super::centroids::country_centroid;
use super::location::Location;

/// The radius given to record coordinates that come without an accuracy radius (DB-IP,
/// ip-location-db city files), in km: city-level placement, the radius MaxMind's City test data
/// gives its city-level records (10 to 100 km) at its widest. MaxMind's own country-level
/// records carry their radius (1000 km and more) and so never get this one.
pub const DEFAULT_RECORD_RADIUS_KM: f64 = 100.0;

/// Where a client is, and how sure that is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// Latitude, degrees north (−90 to 90).
    pub lat: f64,
    /// Longitude, degrees east (−180 to 180).
    pub lon: f64,
    /// How far from the point the client may be, in km.
    pub radius_km: f64,
    /// Where the point came from.
    pub source: PositionSource,
}

/// Where a [`Position`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionSource {
    /// The database record's coordinates (and its accuracy radius, or the default).
    Record,
    /// The centroid of the record's country.
    CountryCentroid,
}

impl PositionSource {
    /// "record" or "country centroid", as reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            PositionSource::Record => "record",
            PositionSource::CountryCentroid => "country centroid",
        }
    }
}

impl fmt::Display for PositionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a client is: from the record's coordinates, else its country's centroid (see the
/// module docs); `None` when the location has neither. Coordinates that are not finite or out of
/// range are ignored, as if absent. No allocation, lock or I/O.
pub fn position(loc: &Location) -> Option<Position> {
    if let Some((lat, lon)) = loc.lat_lon
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
    {
        return Some(Position {
            lat,
            lon,
            radius_km: loc.accuracy_km.map_or(DEFAULT_RECORD_RADIUS_KM, f64::from),
            source: PositionSource::Record,
        });
    }
    let c = country_centroid(loc.country?)?;
    Some(Position {
        lat: c.lat,
        lon: c.lon,
        radius_km: c.radius_km,
        source: PositionSource::CountryCentroid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat_lon: Option<(f64, f64)>, accuracy_km: Option<u16>, country: &[u8; 2]) -> Location {
        Location {
            country: Some(*country),
            lat_lon,
            accuracy_km,
            ..Location::default()
        }
    }

    #[test]
    fn record_then_country_then_nothing() {
        let p = position(&at(Some((51.5, -0.1)), Some(10), b"GB")).unwrap();
        assert_eq!(
            p,
            Position {
                lat: 51.5,
                lon: -0.1,
                radius_km: 10.0,
                source: PositionSource::Record
            }
        );
        let p = position(&at(Some((51.5, -0.1)), None, b"GB")).unwrap();
        assert_eq!(
            (p.radius_km, p.source),
            (DEFAULT_RECORD_RADIUS_KM, PositionSource::Record)
        );
        let gb = country_centroid(*b"GB").unwrap();
        let p = position(&at(None, None, b"GB")).unwrap();
        assert_eq!(
            p,
            Position {
                lat: gb.lat,
                lon: gb.lon,
                radius_km: gb.radius_km,
                source: PositionSource::CountryCentroid
            }
        );
        // Coordinates out of range or not numbers: as if absent.
        for bad in [
            (91.0, 0.0),
            (0.0, -180.5),
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
        ] {
            assert_eq!(
                position(&at(Some(bad), Some(5), b"GB")).map(|p| p.source),
                Some(PositionSource::CountryCentroid),
                "{bad:?}"
            );
        }
        assert_eq!(position(&at(None, None, b"AP")), None);
        assert_eq!(position(&Location::default()), None);
        // The edges of the ranges are coordinates.
        let pole = position(&at(Some((-90.0, 180.0)), None, b"AQ")).unwrap();
        assert_eq!(pole.source, PositionSource::Record);
        assert_eq!(
            PositionSource::CountryCentroid.to_string(),
            "country centroid"
        );
    }
}
