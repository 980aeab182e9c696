//! Distances between regions, and the round-trip model used where nothing is measured.
//!
//! `nearest` ranks pools by great-circle distance, and `latency` falls back to a distance-based
//! estimate for client regions that have no vantage point. Both need the same two small formulas,
//! kept here so that ranking and `explain` agree to the last digit.
//!
//! # The round-trip model
//! Light in fibre covers about 200 km per millisecond, so a round trip costs 1 ms per 100 km of
//! fibre path. Real paths are longer than the great circle and cross routers, which roughly
//! doubles that again; but the measured excess (see [`crate::policy::rank`]) captures what is
//! specific to an endpoint, and the plain 1 ms per 100 km of great-circle distance
//! ([`KM_PER_RTT_MS`]) is what ranks unmeasured regions consistently with measured ones.

use crate::config::model::Region;

/// Mean Earth radius used by the haversine formula.
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// Kilometres of great-circle distance per millisecond of estimated round-trip time.
pub const KM_PER_RTT_MS: f64 = 100.0;

/// Great-circle distance in kilometres between two points given in degrees (haversine).
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// Great-circle distance in kilometres between two regions.
pub fn region_distance_km(a: &Region, b: &Region) -> f64 {
    distance_km(a.lat, a.lon, b.lat, b.lon)
}

/// Estimated round-trip time in milliseconds over `km` of great-circle distance.
pub fn estimated_rtt_ms(km: f64) -> f64 {
    km / KM_PER_RTT_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_point_is_zero_and_distance_is_symmetric() {
        assert_eq!(distance_km(50.1, 8.7, 50.1, 8.7), 0.0);
        let ab = distance_km(50.1, 8.7, 40.7, -74.0);
        let ba = distance_km(40.7, -74.0, 50.1, 8.7);
        assert!((ab - ba).abs() < 1e-9);
    }

    #[test]
    fn known_distances() {
        // A quarter of the equator.
        let q = distance_km(0.0, 0.0, 0.0, 90.0);
        assert!((q - std::f64::consts::PI * EARTH_RADIUS_KM / 2.0).abs() < 1e-6);
        // Antipodes: half the circumference.
        let h = distance_km(0.0, 0.0, 0.0, 180.0);
        assert!((h - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
        // London – New York is about 5,570 km.
        let lny = distance_km(51.5074, -0.1278, 40.7128, -74.0060);
        assert!((lny - 5570.0).abs() < 15.0, "{lny}");
        assert!((estimated_rtt_ms(lny) - 55.7).abs() < 0.2);
    }
}
