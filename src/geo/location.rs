//! What a geolocation database says about a client network: [`Location`] and its parts.
//!
//! Every type here is `Copy` and fixed-size, so a lookup fills one on the stack.

use std::fmt;

/// Where a database places the network of an address.
///
/// Every field but `prefix_len` is optional: databases differ in what they carry (a country
/// database has no subdivision or coordinates), and an address the database does not cover has
/// all of them `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Location {
    /// Continent code (`AF`, `AN`, `AS`, `EU`, `NA`, `OC`, `SA`): the database's own, or derived
    /// from the country when the database has none (ip-location-db).
    pub continent: Option<[u8; 2]>,
    /// ISO 3166-1 alpha-2 country code, upper case (`country`, else `registered_country` of
    /// GeoIP2; `country_code` of ip-location-db).
    pub country: Option<[u8; 2]>,
    /// The first (largest) ISO 3166-2 subdivision of the country, without the country part
    /// (`WA` for Washington, US; `ENG` for England, GB).
    pub subdivision: Option<Subdivision>,
    /// Latitude and longitude in degrees, when the database has them (City databases).
    pub lat_lon: Option<(f64, f64)>,
    /// How far from `lat_lon` the address may be, in kilometres, when the database says
    /// (GeoIP2 / GeoLite2 City `location.accuracy_radius`; MaxMind: "the radius in kilometers
    /// around the specified location where the IP address is likely to be"). `None` for
    /// databases without it (DB-IP, ip-location-db) and for records without coordinates.
    pub accuracy_km: Option<u16>,
    /// Prefix length of the database network that holds the address, counted in the address
    /// family of the address that was looked up: an IPv4 address in an IPv6-structured database
    /// gets its IPv4 length (`/24`, not `/120`). Also set when the database has no data for the
    /// address: it is then the length of the empty network around it.
    pub prefix_len: u8,
}

impl Location {
    /// Whether the database said anything about this address (a continent or a country).
    pub fn is_known(&self) -> bool {
        self.continent.is_some() || self.country.is_some()
    }

    /// The continent code as text.
    pub fn continent_str(&self) -> Option<&str> {
        self.continent.as_ref().map(code_str)
    }

    /// The country code as text.
    pub fn country_str(&self) -> Option<&str> {
        self.country.as_ref().map(code_str)
    }
}

/// A two-letter code as text. The codes held by this module are ASCII upper case by construction.
pub fn code_str(code: &[u8; 2]) -> &str {
    std::str::from_utf8(code).unwrap_or("??")
}

/// The subdivision part of an ISO 3166-2 code: one to three ASCII letters or digits, upper case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subdivision {
    bytes: [u8; 3],
    len: u8,
}

impl Subdivision {
    /// Parses the part after the hyphen (`"CA"` of `"US-CA"`), in either case. `None` unless it
    /// is one to three ASCII letters or digits.
    pub fn new(code: &str) -> Option<Subdivision> {
        let b = code.as_bytes();
        if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let mut bytes = [0u8; 3];
        for (d, s) in bytes.iter_mut().zip(b) {
            *d = s.to_ascii_uppercase();
        }
        Some(Subdivision {
            bytes,
            len: b.len() as u8,
        })
    }

    /// Parses a full ISO 3166-2 code such as `"US-CA"` into its country and subdivision.
    pub fn parse_iso(code: &str) -> Option<([u8; 2], Subdivision)> {
        let (country, sub) = code.split_once('-')?;
        Some((super::continent::code2(country)?, Subdivision::new(sub)?))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

impl fmt::Display for Subdivision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Subdivision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdivision_codes() {
        assert_eq!(Subdivision::new("wa").unwrap().as_str(), "WA");
        assert_eq!(Subdivision::new("ENG").unwrap().to_string(), "ENG");
        assert_eq!(Subdivision::new("E").unwrap().as_str(), "E");
        assert!(Subdivision::new("").is_none());
        assert!(Subdivision::new("ABCD").is_none());
        assert!(Subdivision::new("A-B").is_none());
        let (c, s) = Subdivision::parse_iso("us-ca").unwrap();
        assert_eq!((&c, s.as_str()), (b"US", "CA"));
        assert!(Subdivision::parse_iso("USA-CA").is_none());
        assert!(Subdivision::parse_iso("US").is_none());
    }
}
