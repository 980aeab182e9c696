//! Country → continent, for databases that carry only a country code (the flat `country_code`
//! schema of ip-location-db) and for validating the country and continent codes of a region map.
//!
//! The assignment follows GeoNames, as MaxMind's GeoIP2 databases do (so Cyprus and Russia are in
//! `EU`, Turkey, Georgia, Armenia and Azerbaijan in `AS`, the US Minor Outlying Islands in `OC`).
//! Besides the 249 ISO 3166-1 alpha-2 codes the table knows `XK` (Kosovo, user-assigned but used
//! by every geolocation vendor) and the registry pseudo-codes `EU` (Europe) and `AP`
//! (Asia/Pacific) that some databases still return for address space without a country.

/// The seven continent codes used by GeoIP2, GeoNames and DB-IP.
pub const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// Per continent, its countries: space-separated two-letter codes, sorted within each line.
const TABLE: [(&str, &str); 7] = [
    (
        "AF",
        "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS LY MA \
         MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW",
    ),
    ("AN", "AQ BV GS HM TF"),
    (
        "AS",
        "AE AF AM AP AZ BD BH BN BT CC CN CX GE HK ID IL IN IO IQ IR JO JP KG KH KP KR KW KZ LA \
         LB LK MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TL TM TR TW UZ VN YE",
    ),
    (
        "EU",
        "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES EU FI FO FR GB GG GI GR HR HU IE IM IS IT \
         JE LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK",
    ),
    (
        "NA",
        "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX \
         NI PA PM PR SV SX TC TT US VC VG VI",
    ),
    (
        "OC",
        "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV UM VU WF WS",
    ),
    ("SA", "AR BO BR CL CO EC FK GF GY PE PY SR UY VE"),
];

/// The continent of `country` (an upper-case two-letter code), or `None` for an unknown code.
///
/// A scan of a few hundred bytes of static text: no allocation. Callers on the query path only
/// reach it for databases without a continent field.
pub fn continent_of(country: [u8; 2]) -> Option<[u8; 2]> {
    TABLE.iter().find_map(|(continent, countries)| {
        countries
            .as_bytes()
            .chunks(3)
            .any(|c| c[..2] == country)
            .then(|| {
                continent
                    .as_bytes()
                    .try_into()
                    .expect("two-letter continent")
            })
    })
}

/// Whether `code` is one of [`CONTINENTS`].
pub fn is_continent(code: [u8; 2]) -> bool {
    CONTINENTS.iter().any(|c| c.as_bytes() == code)
}

/// Parses a two-letter code (either case) into its upper-case bytes.
pub(crate) fn code2(s: &str) -> Option<[u8; 2]> {
    match s.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<(&'static str, &'static str)> {
        TABLE
            .iter()
            .flat_map(|(k, cs)| cs.split(' ').map(move |c| (*k, c)))
            .collect()
    }

    #[test]
    fn table_is_well_formed_and_complete() {
        let all = all();
        for (_, cs) in TABLE {
            let v: Vec<&str> = cs.split(' ').collect();
            assert!(v.windows(2).all(|w| w[0] < w[1]), "unsorted line: {cs}");
            assert!(v.iter().all(|c| code2(c).is_some() && c.len() == 2));
        }
        let mut codes: Vec<&str> = all.iter().map(|(_, c)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "a country is listed twice");
        // 249 ISO 3166-1 codes + XK + EU + AP.
        assert_eq!(codes.len(), 252);
    }

    #[test]
    fn lookups() {
        assert_eq!(continent_of(*b"US"), Some(*b"NA"));
        assert_eq!(continent_of(*b"GB"), Some(*b"EU"));
        assert_eq!(continent_of(*b"JP"), Some(*b"AS"));
        assert_eq!(continent_of(*b"BR"), Some(*b"SA"));
        assert_eq!(continent_of(*b"AU"), Some(*b"OC"));
        assert_eq!(continent_of(*b"ZA"), Some(*b"AF"));
        assert_eq!(continent_of(*b"AQ"), Some(*b"AN"));
        assert_eq!(continent_of(*b"ZZ"), None);
        assert!(is_continent(*b"OC") && !is_continent(*b"XX"));
        assert_eq!(code2("us"), Some(*b"US"));
        assert_eq!(code2("U1"), None);
        assert_eq!(code2("USA"), None);
    }
}
