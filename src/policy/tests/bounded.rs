//! Spill bounded by capacity, through the table build: region policies and places.

use super::*;
use crate::policy::Demand;

/// Pool shares of a decision, by pool name.
fn shares(world: &World, t: &Tables, service: usize, client: usize) -> Vec<(String, f64)> {
    t.decision(service, client)
        .explanation
        .pools
        .iter()
        .filter(|p| p.share > 0.0)
        .map(|p| (world.pools[p.ranked.pool].name.clone(), p.share))
        .collect()
}

fn demand(by_region: [f64; 4]) -> Demand {
    Demand {
        cells: Vec::new(),
        unplaced: by_region.to_vec(),
        by_region: by_region.to_vec(),
    }
}

#[test]
fn geo_chains_fill_the_fallback_to_its_budget_then_go_on() {
    let mut w = World::new();
    w.services
        .push(service("geo", PolicyKind::Geo, &[EU, US, AP]));
    // eu 35, us 35, ap 20, sa 10 (sa has no pools: us, then the rest).
    w.demand = Some(demand([35.0, 35.0, 20.0, 10.0]));
    let t = w.build(None);
    let loads = t.loads(0);
    assert!((loads[0].baseline - 0.35).abs() < 1e-12, "{loads:?}");
    assert!((loads[1].baseline - 0.45).abs() < 1e-12, "{loads:?}");
    // ap lost: its chain is eu, then us. eu's budget 0.49 leaves 0.14 of ap's 0.20: 70%.
    w.set(AP, 0..4, Serving::Down);
    let t = w.build(Some(&t));
    let ap = shares(&w, &t, 0, AP);
    assert_eq!(ap[0].0, "eu");
    assert!((ap[0].1 - 0.7).abs() < 1e-12, "{ap:?}");
    assert_eq!(ap[1].0, "us");
    assert!((ap[1].1 - 0.3).abs() < 1e-12, "{ap:?}");
    let loads = t.loads(0);
    assert!((loads[0].load - 0.49).abs() < 1e-12, "{loads:?}");
    assert!(loads.iter().all(|l| !l.over()), "{loads:?}");
    // The explanation keeps what spill alone asked.
    let d = t.decision(0, AP);
    let eu = d
        .explanation
        .pools
        .iter()
        .find(|p| p.ranked.pool == EU)
        .unwrap();
    assert!((eu.asked - 1.0).abs() < 1e-12 && (eu.share - 0.7).abs() < 1e-12);
    // Unbounded, ap's traffic all goes to eu.
    w.services[0].spill_bounded = false;
    let t = w.build(None);
    assert_eq!(shares(&w, &t, 0, AP), vec![("eu".to_string(), 1.0)]);
    assert!(t.loads(0).is_empty());
}

#[test]
fn with_only_one_pool_left_everything_goes_there_whatever_its_budget() {
    let mut w = World::new();
    w.services
        .push(service("geo", PolicyKind::Geo, &[EU, US, AP]));
    w.demand = Some(demand([30.0, 30.0, 30.0, 10.0]));
    w.set(AP, 0..4, Serving::Drained);
    w.set(US, 0..4, Serving::Drained);
    let t = w.build(None);
    for client in 0..4 {
        assert_eq!(
            shares(&w, &t, 0, client),
            vec![("eu".to_string(), 1.0)],
            "client region {client}"
        );
    }
    assert!(t.loads(0)[0].over());
}

#[test]
fn without_demand_spill_is_per_place() {
    let mut w = World::new();
    w.services
        .push(service("geo", PolicyKind::Geo, &[EU, US, AP]));
    w.set(AP, 0..4, Serving::Down);
    let t = w.build(None);
    assert_eq!(shares(&w, &t, 0, AP), vec![("eu".to_string(), 1.0)]);
    assert!(t.loads(0).is_empty());
}

#[test]
fn latency_ranks_each_region_by_its_own_vantages_measurements() {
    let mut w = World::new();
    w.services
        .push(service("lat", PolicyKind::Latency, &[EU, US, AP]));
    // From this node (eu) every pool is as the distance model says.
    w.measure(EU, EU, 1.0);
    w.measure(EU, US, 63.0);
    w.measure(EU, AP, 103.0);
    let t = w.build(None);
    let names: Vec<String> = w.pools.iter().map(|p| p.name.clone()).collect();
    let leader = |t: &Tables, client: usize| {
        let d = t.decision(0, client);
        (
            names[d.explanation.leader.unwrap()].clone(),
            d.explanation.vantage,
        )
    };
    assert_eq!(leader(&t, AP), ("ap".to_string(), Some(EU)));
    // A fleet peer in ap measures its own pool congested (300 ms) and Virginia fine: ap's
    // clients follow ap's vantage; everyone else keeps this node's view.
    w.vantages = vec![AP];
    w.measure(AP, AP, 300.0);
    w.measure(AP, US, 150.0);
    w.measure(AP, EU, 250.0);
    let t = w.build(Some(&t));
    assert_eq!(leader(&t, AP), ("us".to_string(), Some(AP)));
    assert_eq!(leader(&t, EU), ("eu".to_string(), Some(EU)));
    assert_eq!(leader(&t, US), ("us".to_string(), Some(EU)));
    // By place too: a client at Singapore's own cell is in region ap only if its region says
    // so; its region decides the vantage.
    let cell = crate::policy::Cell::of(1.3, 103.8, 10.0);
    let at = |region: usize| {
        let d = t.decision_at(
            0,
            crate::policy::Place {
                region,
                cell: Some(cell),
            },
        );
        names[d.explanation.leader.unwrap()].clone()
    };
    assert_eq!(at(AP), "us");
    assert_eq!(at(EU), "ap");
    // Without the peer, back to one vantage.
    w.vantages.clear();
    let t = w.build(Some(&t));
    assert_eq!(leader(&t, AP), ("ap".to_string(), Some(EU)));
}

#[test]
fn latency_ranks_by_distance_a_pool_no_vantage_measures() {
    // Probe sharding: this node (eu) does not probe ap's pool and no peer measures it: ap's
    // clients still go to ap, by the distance model, and nothing panics.
    let mut w = World::new();
    w.services
        .push(service("lat", PolicyKind::Latency, &[EU, US, AP]));
    w.measure(EU, EU, 1.0);
    w.measure(EU, US, 63.0);
    let t = w.build(None);
    let names: Vec<String> = w.pools.iter().map(|p| p.name.clone()).collect();
    let leader = |t: &Tables, client: usize| {
        names[t.decision(0, client).explanation.leader.unwrap()].clone()
    };
    assert_eq!(leader(&t, AP), "ap");
    assert_eq!(leader(&t, EU), "eu");
    // Nothing measured at all: the same ranking as by distance.
    w.rtt.clear();
    let t = w.build(Some(&t));
    assert_eq!(
        (leader(&t, AP), leader(&t, EU), leader(&t, US)),
        ("ap".into(), "eu".into(), "us".into())
    );
}

#[test]
fn the_fingerprint_is_a_function_of_the_answers() {
    let mut w = World::new();
    w.services
        .push(service("geo", PolicyKind::Geo, &[EU, US, AP]));
    w.services
        .push(service("near", PolicyKind::Nearest, &[EU, US, AP]));
    let a = w.build(None);
    let b = w.build(None);
    assert_eq!(a.fingerprint(), b.fingerprint());
    // Built again on top of other tables (reused geometries): the same answers, the same digest.
    let c = w.build(Some(&a));
    assert_eq!(a.fingerprint(), c.fingerprint());
    // One endpoint down changes an answer, and the digest.
    w.set(EU, [0], Serving::Down);
    let d = w.build(Some(&a));
    assert_ne!(a.fingerprint(), d.fingerprint());
    w.set(EU, [0], Serving::Up);
    assert_eq!(w.build(Some(&d)).fingerprint(), a.fingerprint());
}
