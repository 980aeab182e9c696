//! Where each country is: `geo-data/country-centroids.csv`, compiled into the binary.
//!
//! One row per ISO 3166-1 alpha-2 code (and `XK`): the country's area-weighted centroid and a
//! radius that says how spread out the country is about it (about sqrt(area / π) for a compact
//! country, more for a long or scattered one). `geo-data/centroids.py` generates the file from
//! Natural Earth's 1:10m country polygons; `geo-data/README.md` gives the method, the sources and
//! their licences. Registry pseudo-codes with no territory (`AP`, `EU`) have no row, nor do
//! subdivisions.
//!
//! # Budget
//! The text is parsed once, the first time the table is used, into a 676-entry array indexed by
//! the two letters; [`GeoDb::open`](super::GeoDb::open) forces that, so a query never pays for
//! it. [`country_centroid`] is then an atomic load (the [`LazyLock`] check) and an array index:
//! no allocation, lock or I/O.

use std::sync::LazyLock;

/// The compiled-in table.
const CSV: &str = include_str!("../../geo-data/country-centroids.csv");

/// The header line the file must start with.
const HEADER: &str = "code,latitude,longitude,radius_km,name";

/// Half the Earth's circumference, in km: no two points are farther apart.
const MAX_RADIUS_KM: f64 = 20_016.0;

/// A country's centroid and radius, as `geo-data/country-centroids.csv` gives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Centroid {
    /// Latitude of the area-weighted centroid, degrees north (−90 to 90).
    pub lat: f64,
    /// Longitude of the area-weighted centroid, degrees east (−180 to 180).
    pub lon: f64,
    /// How far from the centroid the country reaches, in km: the radius of a spherical cap as
    /// concentrated about its centre as the country's area is about the centroid.
    pub radius_km: f64,
    /// The country's English name.
    pub name: &'static str,
}

/// Centroids indexed by [`slot`].
type Table = [Option<Centroid>; 676];

static TABLE: LazyLock<Box<Table>> = LazyLock::new(|| {
    // The file is part of the source: `compiled_table_parses` and tests/geo.rs check it, so a
    // failure here is a build defect, not a run-time condition.
    parse(CSV).unwrap_or_else(|e| panic!("geo-data/country-centroids.csv (compiled in): {e}"))
});

/// Parses the compiled-in table now, if that has not happened yet.
/// [`GeoDb::open`](super::GeoDb::open) calls it, so that no query pays for the parse; callers
/// that build [`Location`](super::Location)s by other means can call it at load time too.
pub fn load() {
    LazyLock::force(&TABLE);
}

/// The centroid of `country`, an upper-case ISO 3166-1 alpha-2 code; `None` for a code with no
/// row (pseudo-codes such as `AP`, unknown codes, anything not two upper-case letters). No
/// allocation, lock or I/O.
pub fn country_centroid(country: [u8; 2]) -> Option<Centroid> {
    TABLE[slot(country)?]
}

/// Every row of the table, by code.
pub fn countries() -> impl Iterator<Item = ([u8; 2], Centroid)> {
    TABLE.iter().enumerate().filter_map(|(i, c)| {
        // `i` < 676, so both letters are in A..=Z.
        let code = [b'A' + (i / 26) as u8, b'A' + (i % 26) as u8];
        c.map(|c| (code, c))
    })
}

/// Index of an upper-case two-letter code in the 26 × 26 table.
fn slot(code: [u8; 2]) -> Option<usize> {
    code.iter()
        .all(u8::is_ascii_uppercase)
        .then(|| usize::from(code[0] - b'A') * 26 + usize::from(code[1] - b'A'))
}

/// What is wrong with a line of the centroid file (line numbers from 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum CentroidError {
    /// The first line is not [`HEADER`].
    #[error("line 1: expected the header {HEADER:?}")]
    Header,
    /// A line with fewer than five columns.
    #[error("line {line}: expected five columns: {HEADER}")]
    Columns {
        /// The line.
        line: usize,
    },
    /// The code is not two upper-case ASCII letters.
    #[error("line {line}: {code:?} is not an upper-case two-letter code")]
    Code {
        /// The line.
        line: usize,
        /// The code as written.
        code: String,
    },
    /// A code given twice.
    #[error("line {line}: {code} has a row already")]
    Duplicate {
        /// The line.
        line: usize,
        /// The code.
        code: String,
    },
    /// A number that does not parse, or is out of its column's range.
    #[error("line {line}: {column} {text:?} is not a number in {range}")]
    Number {
        /// The line.
        line: usize,
        /// `latitude`, `longitude` or `radius_km`.
        column: &'static str,
        /// The text as written.
        text: String,
        /// The allowed range.
        range: &'static str,
    },
    /// An empty name.
    #[error("line {line}: the name is empty")]
    Name {
        /// The line.
        line: usize,
    },
}

/// Parses the centroid file: [`HEADER`], then `code,latitude,longitude,radius_km,name` rows. The
/// name is the rest of the line, in double quotes when it holds a comma (it never holds one).
fn parse(text: &'static str) -> Result<Box<Table>, CentroidError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    if lines.next().map(|(_, l)| l.trim_end()) != Some(HEADER) {
        return Err(CentroidError::Header);
    }
    let mut table: Box<Table> = vec![None; 676]
        .into_boxed_slice()
        .try_into()
        .expect("676 entries");
    for (line, l) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let mut cols = l.trim_end().splitn(5, ',');
        let mut col = || cols.next().ok_or(CentroidError::Columns { line });
        let (code, lat, lon, radius, name) = (col()?, col()?, col()?, col()?, col()?);
        let bad_code = || CentroidError::Code {
            line,
            code: code.into(),
        };
        let code2: [u8; 2] = code.as_bytes().try_into().map_err(|_| bad_code())?;
        let i = slot(code2).ok_or_else(bad_code)?;
        let number = |column, text: &str, range, ok: fn(f64) -> bool| {
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && ok(*v))
                .ok_or_else(|| CentroidError::Number {
                    line,
                    column,
                    text: text.into(),
                    range,
                })
        };
        let lat = number("latitude", lat, "[-90, 90]", |v| {
            (-90.0..=90.0).contains(&v)
        })?;
        let lon = number("longitude", lon, "[-180, 180]", |v| {
            (-180.0..=180.0).contains(&v)
        })?;
        let radius_km = number("radius_km", radius, "(0, 20016]", |v| {
            v > 0.0 && v <= MAX_RADIUS_KM
        })?;
        let name = name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or(name);
        if name.is_empty() {
            return Err(CentroidError::Name { line });
        }
        if table[i].is_some() {
            return Err(CentroidError::Duplicate {
                line,
                code: code.into(),
            });
        }
        table[i] = Some(Centroid {
            lat,
            lon,
            radius_km,
            name,
        });
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_table_parses() {
        let table = parse(CSV).unwrap();
        assert!(table.iter().flatten().count() >= 249);
        assert_eq!(countries().count(), table.iter().flatten().count());
    }

    #[test]
    fn lookups() {
        let fr = country_centroid(*b"FR").unwrap();
        assert_eq!(fr.name, "France");
        assert!(
            (46.0..47.0).contains(&fr.lat) && (2.0..3.0).contains(&fr.lon),
            "{fr:?}"
        );
        // Quoted because of its comma.
        assert_eq!(
            country_centroid(*b"FM").unwrap().name,
            "Micronesia, Federated States of"
        );
        assert!(country_centroid(*b"XK").is_some());
        for no_row in [*b"AP", *b"EU", *b"ZZ", *b"fr", *b"F1", [0xC3, 0x89]] {
            assert_eq!(country_centroid(no_row), None, "{no_row:?}");
        }
        let (code, first) = countries().next().unwrap();
        assert_eq!((&code, first.name), (b"AD", "Andorra"));
    }

    #[test]
    fn bad_files_are_refused() {
        let ok = "code,latitude,longitude,radius_km,name\nFR,46.5,2.5,449.4,France\n";
        assert!(parse(ok).unwrap()[slot(*b"FR").unwrap()].is_some());
        let cases: [(&'static str, CentroidError); 8] = [
            ("code,lat,lon\nFR,1,2,3,x\n", CentroidError::Header),
            (
                "code,latitude,longitude,radius_km,name\nFR,46.5,2.5,449.4\n",
                CentroidError::Columns { line: 2 },
            ),
            (
                "code,latitude,longitude,radius_km,name\nfr,46.5,2.5,449.4,France\n",
                CentroidError::Code {
                    line: 2,
                    code: "fr".into(),
                },
            ),
            (
                "code,latitude,longitude,radius_km,name\nFRA,46.5,2.5,449.4,France\n",
                CentroidError::Code {
                    line: 2,
                    code: "FRA".into(),
                },
            ),
            (
                "code,latitude,longitude,radius_km,name\nFR,91,2.5,449.4,France\n",
                CentroidError::Number {
                    line: 2,
                    column: "latitude",
                    text: "91".into(),
                    range: "[-90, 90]",
                },
            ),
            (
                "code,latitude,longitude,radius_km,name\n\nFR,46,NaN,449.4,France\n",
                CentroidError::Number {
                    line: 3,
                    column: "longitude",
                    text: "NaN".into(),
                    range: "[-180, 180]",
                },
            ),
            (
                "code,latitude,longitude,radius_km,name\nFR,46,2,0,France\n",
                CentroidError::Number {
                    line: 2,
                    column: "radius_km",
                    text: "0".into(),
                    range: "(0, 20016]",
                },
            ),
            (
                "code,latitude,longitude,radius_km,name\nFR,46,2,1,France\nFR,46,2,1,France\n",
                CentroidError::Duplicate {
                    line: 3,
                    code: "FR".into(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).err(), Some(want), "{text}");
        }
        assert_eq!(
            parse("code,latitude,longitude,radius_km,name\nFR,46,2,1,\"\"\n").err(),
            Some(CentroidError::Name { line: 2 })
        );
    }
}
