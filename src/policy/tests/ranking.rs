//! Ranking per policy, latency scores, and hysteresis across builds.

use super::*;
use crate::policy::geometry::{estimated_rtt_ms, region_distance_km};
use crate::policy::rank::{RankReason, levels};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn failover_ranks_in_configured_order_for_every_client() {
    let mut w = World::new();
    w.services
        .push(service("www", PolicyKind::Failover, &[2, 0, 1]));
    let t = w.build(None);
    for client in [EU, US, AP, SA] {
        assert_eq!(order(&w, &t, 0, client), names(&["ap", "eu", "us"]));
        let reasons: Vec<RankReason> = t
            .decision(0, client)
            .explanation
            .pools
            .iter()
            .map(|p| p.ranked.reason)
            .collect();
        assert_eq!(reasons, vec![RankReason::Configured; 3]);
    }
}

#[test]
fn geo_ranks_client_region_then_fallback_chain_then_the_rest() {
    let mut w = World::new();
    w.pools.push(pool("eu2", EU, 2));
    w.services
        .push(service("www", PolicyKind::Geo, &[1, 2, 0, 3]));
    let t = w.build(None);
    // eu: both eu pools in configured order, then us (its fallback), then ap.
    assert_eq!(order(&w, &t, 0, EU), names(&["eu", "eu2", "us", "ap"]));
    // ap: its own pool, then eu's two (first in its chain), then us.
    assert_eq!(order(&w, &t, 0, AP), names(&["ap", "eu", "eu2", "us"]));
    // sa has no pools: its chain (us), then the rest in configured order.
    assert_eq!(order(&w, &t, 0, SA), names(&["us", "ap", "eu", "eu2"]));
    let d = t.decision(0, SA);
    let reasons: Vec<RankReason> = d
        .explanation
        .pools
        .iter()
        .map(|p| p.ranked.reason)
        .collect();
    assert_eq!(
        reasons,
        vec![
            RankReason::FallbackRegion { position: 0 },
            RankReason::OtherRegion,
            RankReason::OtherRegion,
            RankReason::OtherRegion
        ]
    );
    // The pools of one region form one spill level.
    let eu = t.decision(0, EU);
    assert_eq!(
        eu.explanation
            .pools
            .iter()
            .map(|p| p.level)
            .collect::<Vec<_>>(),
        vec![0, 0, 1, 2]
    );
    assert_eq!(
        eu.explanation.pools[0].ranked.reason,
        RankReason::ClientRegion
    );
}

#[test]
fn nearest_ranks_by_great_circle_distance_and_ties_keep_configured_order() {
    let mut w = World::new();
    w.pools.push(pool("us2", US, 2));
    w.services
        .push(service("www", PolicyKind::Nearest, &[2, 3, 0, 1]));
    let t = w.build(None);
    assert_eq!(order(&w, &t, 0, SA), names(&["us2", "us", "eu", "ap"]));
    assert_eq!(order(&w, &t, 0, EU), names(&["eu", "us2", "us", "ap"]));
    assert_eq!(order(&w, &t, 0, AP), names(&["ap", "eu", "us2", "us"]));
    let d = t.decision(0, SA);
    let km = region_distance_km(&w.regions[SA], &w.regions[US]);
    assert_eq!(d.explanation.pools[0].ranked.score, km);
    assert_eq!(d.explanation.pools[0].ranked.distance_km, km);
    assert!((7_000.0..8_000.0).contains(&km), "{km}");
    // Two healthy pools at the same distance share the traffic by capacity (4 : 2).
    let s = shares(&w, &t, 0, SA);
    assert!(
        close(s[0].1, 2.0 / 6.0, 1e-12) && close(s[1].1, 4.0 / 6.0, 1e-12),
        "{s:?}"
    );
}

#[test]
fn latency_at_the_node_scores_what_the_node_measured() {
    let mut w = World::new();
    let eu_us = estimated_rtt_ms(region_distance_km(&w.regions[EU], &w.regions[US]));
    // Seen from eu (the node), the local pool is slow and us is fast for its distance.
    w.measure(EU, 0, 100.0);
    w.measure(EU, 1, eu_us + 10.0);
    w.measure(EU, 2, 90.0); // faster than its model (about 103 ms): no excess
    w.services
        .push(service("www", PolicyKind::Latency, &[0, 1, 2]));
    let t = w.build(None);
    assert_eq!(order(&w, &t, 0, EU), names(&["us", "eu", "ap"]));
    let p = &t.decision(0, EU).explanation.pools;
    // At the node's own location, distance model + excess is the measurement itself.
    assert!(close(p[0].ranked.score, eu_us + 10.0, 1e-5), "{:?}", p[0]);
    assert!(close(p[1].ranked.score, 100.0, 1e-5));
    assert!(close(
        p[2].ranked.score,
        p[2].ranked.distance_km / 100.0,
        1e-9
    ));
    assert_eq!(p[1].endpoints[0].rtt_ms, Some(100.0));
}

#[test]
fn latency_mean_is_over_serving_endpoints_only() {
    let mut w = World::new();
    w.measure(EU, 0, 10.0);
    w.rtt.insert((EU, 0, 3), (500.0, 500.0));
    w.services
        .push(service("www", PolicyKind::Latency, &[0, 1]));
    let eu_score = |t: &Tables| {
        t.decision(0, EU)
            .explanation
            .pools
            .iter()
            .find(|p| p.ranked.pool == 0)
            .unwrap()
            .ranked
            .score
    };
    assert!(close(eu_score(&w.build(None)), (30.0 + 500.0) / 4.0, 1e-9));
    w.set(0, [3], Serving::Down);
    assert!(close(eu_score(&w.build(None)), 10.0, 1e-9));
}

#[test]
fn latency_estimates_other_regions_from_distance_plus_measured_excess() {
    let mut w = World::new();
    let model =
        |a: usize, b: usize| estimated_rtt_ms(region_distance_km(&w.regions[a], &w.regions[b]));
    let (eu_us, us_ap, eu_ap) = (model(EU, US), model(US, AP), model(EU, AP));
    w.measure(EU, 0, 50.0); // excess 50 over a model of 0 ms
    w.measure(EU, 1, eu_us + 4.0); // excess 4
    // ap is not measured: distance only.
    w.services
        .push(service("www", PolicyKind::Latency, &[0, 1, 2]));
    let t = w.build(None);
    let p = &t.decision(0, US).explanation.pools;
    assert_eq!(order(&w, &t, 0, US), names(&["us", "eu", "ap"]));
    // (Durations carry whole nanoseconds, hence the tolerance.)
    let RankReason::EstimatedRtt {
        distance_ms,
        excess_ms,
    } = p[0].ranked.reason
    else {
        panic!("{:?}", p[0])
    };
    assert!(distance_ms == 0.0 && close(excess_ms, 4.0, 1e-5));
    assert!(close(p[0].ranked.score, 4.0, 1e-5));
    assert!(close(p[1].ranked.score, eu_us + 50.0, 1e-5));
    assert_eq!(
        p[2].ranked.reason,
        RankReason::EstimatedRtt {
            distance_ms: us_ap,
            excess_ms: 0.0
        }
    );
    // A pool faster than its model has no negative excess.
    w.measure(EU, 2, eu_ap / 2.0);
    let t = w.build(None);
    let ap = t
        .decision(0, US)
        .explanation
        .pools
        .iter()
        .find(|p| p.ranked.pool == 2)
        .unwrap()
        .ranked;
    assert_eq!(
        ap.reason,
        RankReason::EstimatedRtt {
            distance_ms: us_ap,
            excess_ms: 0.0
        }
    );
}

#[test]
fn latency_without_any_measurement_is_the_distance_model() {
    let mut w = World::new();
    w.services
        .push(service("www", PolicyKind::Latency, &[2, 1, 0]));
    let t = w.build(None);
    assert_eq!(order(&w, &t, 0, SA), names(&["us", "eu", "ap"]));
    for p in &t.decision(0, SA).explanation.pools {
        assert!(close(p.ranked.score, p.ranked.distance_km / 100.0, 1e-9));
    }
}

#[test]
fn latency_reads_the_services_percentile() {
    let mut w = World::new();
    let eu_us = estimated_rtt_ms(region_distance_km(&w.regions[EU], &w.regions[US]));
    w.measure(EU, 0, 100.0); // p90 200
    for e in 0..4 {
        w.rtt.insert((EU, 1, e), (eu_us + 20.0, eu_us + 200.0));
    }
    w.services
        .push(service("p50", PolicyKind::Latency, &[0, 1]));
    w.services.push(ServiceDef {
        percentile: Percentile::P90,
        ..service("p90", PolicyKind::Latency, &[0, 1])
    });
    let t = w.build(None);
    assert_eq!(order(&w, &t, 0, EU), names(&["us", "eu"]));
    assert_eq!(order(&w, &t, 1, EU), names(&["eu", "us"]));
}

/// The excess (ms) `pool` was ranked with for clients of `client`.
fn excess_of(t: &Tables, client: usize, pool: usize) -> f64 {
    let p = t
        .decision(0, client)
        .explanation
        .pools
        .iter()
        .find(|p| p.ranked.pool == pool)
        .unwrap();
    match p.ranked.reason {
        RankReason::EstimatedRtt { excess_ms, .. } => excess_ms,
        r => panic!("{r:?}"),
    }
}

#[test]
fn hysteresis_keeps_the_published_excess_on_small_moves_and_publishes_big_ones() {
    let mut w = World::new();
    w.measure(EU, 0, 20.0);
    w.services
        .push(service("www", PolicyKind::Latency, &[0, 1]));
    let t1 = w.build(None);
    assert!(close(excess_of(&t1, EU, 0), 20.0, 1e-5));
    assert!(t1.decision(0, EU).explanation.hysteresis.is_empty());

    // 8 ms more: less than max(20 % of 20, 10 ms) → the published 20 stays.
    w.measure(EU, 0, 28.0);
    assert!(
        close(excess_of(&w.build(None), EU, 0), 28.0, 1e-5),
        "without history"
    );
    let t2 = w.build(Some(&t1));
    assert!(close(excess_of(&t2, EU, 0), 20.0, 1e-5));
    let h = t2.decision(0, US).explanation.hysteresis[0];
    assert!(
        !h.switched && h.pool == 0 && close(h.margin_ms, 10.0, 1e-9),
        "{h:?}"
    );
    // Every client place sees the same published excess.
    assert!(close(excess_of(&t2, US, 0), 20.0, 1e-5));

    // Still only 8 ms after another build: history carries on.
    let t3 = w.build(Some(&t2));
    assert!(close(excess_of(&t3, EU, 0), 20.0, 1e-5));

    // 15 ms > 10 ms → published, and the new value is the reference next time.
    w.measure(EU, 0, 35.0);
    let t4 = w.build(Some(&t3));
    assert!(close(excess_of(&t4, EU, 0), 35.0, 1e-5));
    assert!(t4.decision(0, EU).explanation.hysteresis[0].switched);
    w.measure(EU, 0, 28.0);
    assert!(close(excess_of(&w.build(Some(&t4)), EU, 0), 35.0, 1e-5));
}

#[test]
fn hysteresis_margin_scales_with_the_pools_round_trip() {
    let mut w = World::new();
    w.measure(EU, 0, 200.0);
    w.services
        .push(service("www", PolicyKind::Latency, &[0, 1]));
    let t1 = w.build(None);
    w.measure(EU, 0, 165.0); // 35 ms less: within 20 % of 200 = 40
    let t2 = w.build(Some(&t1));
    assert!(close(excess_of(&t2, EU, 0), 200.0, 1e-5));
    w.measure(EU, 0, 155.0); // 45 ms less
    assert!(close(excess_of(&w.build(Some(&t2)), EU, 0), 155.0, 1e-5));
}

#[test]
fn a_pool_without_measurement_keeps_its_published_excess_and_the_lead_moves_on() {
    let mut w = World::new();
    w.measure(EU, 0, 20.0);
    w.services
        .push(service("www", PolicyKind::Latency, &[0, 1]));
    let t1 = w.build(None);
    w.set(0, 0..4, Serving::Down);
    let t2 = w.build(Some(&t1));
    let d = t2.decision(0, EU);
    assert!(d.explanation.hysteresis.is_empty());
    assert_eq!(d.explanation.leader, Some(1));
    assert!(close(excess_of(&t2, EU, 0), 20.0, 1e-5));
    // eu stays ranked first but takes no traffic.
    assert_eq!(
        shares(&w, &t2, 0, EU),
        vec![("eu".into(), 0.0), ("us".into(), 1.0)]
    );
}

#[test]
fn hysteresis_matches_previous_tables_by_pool_name_across_renumbering() {
    let mut w = World::new();
    w.measure(EU, 0, 20.0);
    w.services
        .push(service("www", PolicyKind::Latency, &[0, 1]));
    let t1 = w.build(None);
    // A reload that adds a service in front and reorders the pools.
    let mut v = World::new();
    v.pools.swap(0, 1);
    v.measure(EU, 1, 26.0);
    v.services
        .push(service("other", PolicyKind::Failover, &[0]));
    v.services
        .push(service("www", PolicyKind::Latency, &[0, 1]));
    let t2 = v.build(Some(&t1));
    let h = t2.decision(1, EU).explanation.hysteresis[0];
    assert!(
        !h.switched && h.pool == 1 && close(h.previous_ms, 20.0, 1e-5),
        "{h:?}"
    );
}

#[test]
fn levels_group_equal_consecutive_scores() {
    let mut w = World::new();
    w.services
        .push(service("www", PolicyKind::Failover, &[0, 1, 2]));
    let t = w.build(None);
    let ranked: Vec<_> = t
        .decision(0, EU)
        .explanation
        .pools
        .iter()
        .map(|p| p.ranked)
        .collect();
    assert_eq!(levels(&ranked), vec![0, 1, 2]);
}
