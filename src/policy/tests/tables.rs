//! Decision tables: graded spill, weighted and standby, fallbacks, TTL, and the draw.

use super::*;
use crate::policy::{Answer, Tier};
use crate::policy::{EndpointRef, MAX_ANSWERS, Rng};

/// A: 10 endpoints in eu, B: 10 and C: 5 in us. Service 0 is `geo` over them, service 1
/// `failover`. Four of A's endpoints are down.
fn spill_world() -> World {
    let mut w = World::new();
    w.pools = vec![pool("a", EU, 10), pool("b", US, 10), pool("c", US, 5)];
    w.services.push(service("geo", PolicyKind::Geo, &[0, 1, 2]));
    w.services
        .push(service("failover", PolicyKind::Failover, &[0, 1, 2]));
    w.set(0, 0..4, Serving::Down);
    w
}

#[test]
fn graded_spill_keeps_healthy_fraction_times_overprovisioning() {
    let w = spill_world();
    let t = w.build(None);
    // geo: b and c are one level (both in eu's fallback region) and split the rest 10 : 5.
    let s = shares(&w, &t, 0, EU);
    assert_eq!(
        s.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert!(close(s[0].1, 0.84, 1e-12), "{s:?}");
    assert!(close(s[1].1, 0.16 * 10.0 / 15.0, 1e-12), "{s:?}");
    assert!(close(s[2].1, 0.16 * 5.0 / 15.0, 1e-12), "{s:?}");
    let d = t.decision(0, EU);
    assert!(d.degraded);
    assert_eq!(d.ttl, 5);
    let a = &d.explanation.pools[0];
    assert!(
        close(a.healthy_fraction, 0.6, 1e-12)
            && close(a.keep, 0.84, 1e-12)
            && close(a.spare, 6.0 * 0.84, 1e-12)
    );
    let Answer::Endpoints(choices) = &d.answer else {
        panic!("{:?}", d.answer)
    };
    assert_eq!(choices.len(), 3);
    assert_eq!(
        choices[0].threshold,
        (0.84f64 * 4_294_967_296.0).round() as u32
    );
    assert_eq!(
        choices[0]
            .endpoints
            .iter()
            .map(|e| e.endpoint)
            .collect::<Vec<_>>(),
        vec![4, 5, 6, 7, 8, 9]
    );
    assert_eq!(choices[0].cumulative, vec![1, 2, 3, 4, 5, 6]);
    // failover: strict priority levels, b alone takes the spill.
    let s = shares(&w, &t, 1, EU);
    assert!(
        close(s[0].1, 0.84, 1e-12) && close(s[1].1, 0.16, 1e-12) && s[2].1 == 0.0,
        "{s:?}"
    );
}

#[test]
fn draws_follow_the_spill_shares() {
    let w = spill_world();
    let t = w.build(None);
    let d = t.decision(0, EU);
    let mut rng = Rng::new(2024);
    let mut out = [EndpointRef::default(); MAX_ANSWERS];
    let draws = 20_000;
    let mut per_pool = [0usize; 3];
    for _ in 0..draws {
        let n = d.pick(rng.next_u64(), 2, &mut out);
        assert_eq!(n, 2);
        assert_eq!(out[0].pool, out[1].pool, "one answer comes from one pool");
        assert!(
            out[..n].iter().all(|e| !(e.pool == 0 && e.endpoint < 4)),
            "down endpoints are never answered"
        );
        per_pool[out[0].pool as usize] += 1;
    }
    let expected = [0.84, 0.16 * 10.0 / 15.0, 0.16 * 5.0 / 15.0];
    for (got, want) in per_pool.iter().zip(expected) {
        let p = *got as f64 / draws as f64;
        assert!(close(p, want, 0.02), "{per_pool:?}");
    }
}

#[test]
fn healthy_service_answers_its_best_pool_with_the_normal_ttl() {
    let mut w = World::new();
    w.services.push(service("www", PolicyKind::Geo, &[0, 1, 2]));
    let t = w.build(None);
    let d = t.decision(0, EU);
    assert!(!d.degraded);
    assert_eq!(
        (
            d.ttl,
            d.answers,
            d.explanation.tier,
            d.explanation.withdrawn
        ),
        (30, 2, Tier::Primary, 0)
    );
    assert_eq!(
        shares(&w, &t, 0, EU)
            .iter()
            .map(|s| s.1)
            .collect::<Vec<_>>(),
        vec![1.0, 0.0, 0.0]
    );
    let mut out = [EndpointRef::default(); MAX_ANSWERS];
    assert_eq!(d.pick(7, 2, &mut out), 2);
    assert!(out[0].pool == 0 && out[1].pool == 0 && out[0].endpoint != out[1].endpoint);
    assert_eq!(d.pick(7, 9, &mut out), 4, "no more than the pool has");
}

#[test]
fn ttl_drops_whenever_the_service_is_degraded() {
    let mut w = World::new();
    w.services.push(service("www", PolicyKind::Geo, &[0, 1]));
    // No pool in sa: its chain answers, and that is not degraded.
    let d = w.build(None).decision(0, SA).clone();
    assert!(!d.degraded && d.ttl == 30);
    // One drained endpoint: no spill (0.75 × 1.4 ≥ 1), but withdrawn → degraded.
    w.set(0, [2], Serving::Drained);
    let t = w.build(None);
    let d = t.decision(0, EU);
    assert_eq!(shares(&w, &t, 0, EU)[0].1, 1.0);
    assert!(d.degraded && d.ttl == 5 && d.explanation.withdrawn == 1);
    // It is a property of the service: other regions run degraded too.
    assert!(t.decision(0, US).degraded);
    // A withdrawn endpoint of a pool the service does not use changes nothing.
    let mut w = World::new();
    w.services.push(service("www", PolicyKind::Geo, &[0, 1]));
    w.set(2, [0], Serving::Down);
    assert!(!w.build(None).decision(0, EU).degraded);
}

#[test]
fn weighted_multiplies_pool_and_endpoint_weights_and_keeps_standby_aside() {
    let mut w = World::new();
    w.pools[0].weight = 3;
    for (e, weight) in [1, 1, 2, 0].into_iter().enumerate() {
        std::sync::Arc::make_mut(&mut w.pools[0].endpoints)[e].weight = weight;
    }
    w.pools[2].weight = 0;
    w.services
        .push(service("www", PolicyKind::Weighted, &[0, 1, 2]));
    let t = w.build(None);
    let d = t.decision(0, AP);
    assert!(!d.degraded);
    let Answer::Endpoints(choices) = &d.answer else {
        panic!()
    };
    assert_eq!(choices.len(), 1);
    let refs: Vec<(u32, u32)> = choices[0]
        .endpoints
        .iter()
        .map(|e| (e.pool, e.endpoint))
        .collect();
    assert_eq!(
        refs,
        vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)]
    );
    assert_eq!(choices[0].cumulative, vec![3, 6, 12, 13, 14, 15, 16]);
    assert_eq!(
        shares(&w, &t, 0, AP)
            .iter()
            .map(|s| s.1)
            .collect::<Vec<_>>(),
        vec![12.0 / 16.0, 4.0 / 16.0, 0.0]
    );
    // Draw frequencies of the first answer follow the weights.
    let mut rng = Rng::new(3);
    let mut out = [EndpointRef::default(); MAX_ANSWERS];
    let mut heavy = 0;
    for _ in 0..20_000 {
        d.pick(rng.next_u64(), 1, &mut out);
        heavy += (out[0]
            == EndpointRef {
                pool: 0,
                endpoint: 2,
            }) as usize;
    }
    assert!(close(heavy as f64 / 20_000.0, 6.0 / 16.0, 0.02), "{heavy}");

    // Every positive-weight endpoint down: standby serves, weighted by max(1, w) products.
    w.set(0, 0..3, Serving::Down);
    w.set(1, 0..4, Serving::Down);
    let d = w.build(None).decision(0, EU).clone();
    assert_eq!(d.explanation.tier, Tier::Standby);
    assert!(d.degraded && d.ttl == 5);
    let Answer::Endpoints(choices) = &d.answer else {
        panic!()
    };
    let refs: Vec<(u32, u32)> = choices[0]
        .endpoints
        .iter()
        .map(|e| (e.pool, e.endpoint))
        .collect();
    assert_eq!(refs, vec![(0, 3), (2, 0), (2, 1), (2, 2), (2, 3)]);
    assert_eq!(choices[0].cumulative, vec![3, 4, 5, 6, 7]);
}

#[test]
fn standby_endpoints_of_ranked_policies_wait_for_the_whole_service() {
    let mut w = World::new();
    std::sync::Arc::make_mut(&mut w.pools[0].endpoints)[3].weight = 0;
    w.services
        .push(service("www", PolicyKind::Failover, &[0, 1]));
    let only = |t: &Tables| {
        let Answer::Endpoints(c) = &t.decision(0, EU).answer else {
            panic!()
        };
        c.iter()
            .flat_map(|c| c.endpoints.iter().map(|e| (e.pool, e.endpoint)))
            .collect::<Vec<_>>()
    };
    assert_eq!(only(&w.build(None)), vec![(0, 0), (0, 1), (0, 2)]);
    // eu's weighted endpoints down: us serves, the standby still waits.
    w.set(0, 0..3, Serving::Down);
    assert_eq!(only(&w.build(None)), vec![(1, 0), (1, 1), (1, 2), (1, 3)]);
    // us down as well: the standby answers.
    w.set(1, 0..4, Serving::Down);
    let t = w.build(None);
    assert_eq!(only(&t), vec![(0, 3)]);
    assert_eq!(t.decision(0, EU).explanation.tier, Tier::Standby);
}

#[test]
fn all_down_answers_the_fallback() {
    let mut w = World::new();
    w.set(0, 0..4, Serving::Down);
    w.set(1, 0..4, Serving::Drained);
    std::sync::Arc::make_mut(&mut w.pools[1].endpoints)[0].weight = 5;
    w.services
        .push(service("all", PolicyKind::Latency, &[0, 1]));
    let addresses = Fallback::Addresses {
        ipv4: vec![Ipv4Addr::new(192, 0, 2, 1)],
        ipv6: vec![],
    };
    w.services.push(ServiceDef {
        fallback: addresses.clone(),
        ..service("addr", PolicyKind::Geo, &[0, 1])
    });
    w.services.push(ServiceDef {
        fallback: Fallback::Cname("backup.example.net.".into()),
        ..service("cname", PolicyKind::Weighted, &[0, 1])
    });
    let t = w.build(None);
    for s in 0..3 {
        for r in 0..4 {
            let d = t.decision(s, r);
            assert_eq!(d.explanation.tier, Tier::Fallback);
            assert!(d.degraded && d.ttl == 5);
        }
    }
    // Fail open: every endpoint, with its weight, health ignored.
    let d = t.decision(0, EU);
    let Answer::Endpoints(choices) = &d.answer else {
        panic!()
    };
    assert_eq!(choices.len(), 1);
    assert_eq!(choices[0].endpoints.len(), 8);
    assert_eq!(choices[0].cumulative, vec![1, 2, 3, 4, 9, 10, 11, 12]);
    let mut out = [EndpointRef::default(); MAX_ANSWERS];
    assert_eq!(d.pick(11, 2, &mut out), 2);
    assert_eq!(
        t.decision(1, US).answer,
        Answer::Addresses {
            ipv4: vec![Ipv4Addr::new(192, 0, 2, 1)],
            ipv6: vec![]
        }
    );
    assert_eq!(
        t.decision(2, AP).answer,
        Answer::Cname("backup.example.net.".into())
    );
    assert_eq!(t.decision(2, AP).pick(11, 2, &mut out), 0);
}

#[test]
fn the_same_inputs_build_the_same_tables() {
    let mut w = spill_world();
    w.measure(EU, 1, 80.0);
    w.services
        .push(service("lat", PolicyKind::Latency, &[0, 1, 2]));
    w.services
        .push(service("near", PolicyKind::Nearest, &[0, 1, 2]));
    w.services
        .push(service("wrr", PolicyKind::Weighted, &[0, 1, 2]));
    assert_eq!(w.build(None), w.build(None));
    let t = w.build(None);
    assert_eq!(w.build(Some(&t)), w.build(Some(&t)));
    assert_eq!((t.services(), t.regions()), (5, 4));
}

#[test]
fn tables_tell_which_answers_depend_on_the_client_region() {
    let mut w = World::new();
    w.services.push(service("geo", PolicyKind::Geo, &[0, 1, 2]));
    w.services
        .push(service("failover", PolicyKind::Failover, &[0, 1, 2]));
    w.services
        .push(service("wrr", PolicyKind::Weighted, &[0, 1, 2]));
    w.services.push(service("one", PolicyKind::Nearest, &[1]));
    let t = w.build(None);
    let varies: Vec<bool> = (0..4).map(|s| t.varies_by_region(s)).collect();
    assert_eq!(varies, vec![true, false, false, false]);
}

/// Property: over random worlds (policies, weights, health, fallbacks), every decision draws
/// distinct endpoints, never more than asked, never nothing when it answers with endpoints, only
/// serving ones unless it fails open, and one pool's endpoints per answer for ranked policies.
#[test]
fn random_worlds_always_answer_sensibly() {
    let mut rng = Rng::new(99);
    let mut out = [EndpointRef::default(); MAX_ANSWERS];
    let policies = [
        PolicyKind::Failover,
        PolicyKind::Weighted,
        PolicyKind::Geo,
        PolicyKind::Latency,
        PolicyKind::Nearest,
    ];
    for round in 0..300 {
        let mut w = World::new();
        w.pools = (0..1 + rng.next_u64() % 5)
            .map(|i| {
                pool(
                    &format!("p{i}"),
                    (rng.next_u64() % 4) as usize,
                    1 + (rng.next_u64() % 9) as usize,
                )
            })
            .collect();
        for (p, def) in w.pools.iter_mut().enumerate() {
            def.weight = (rng.next_u64() % 3) as u32;
            for (e, ep) in std::sync::Arc::make_mut(&mut def.endpoints)
                .iter_mut()
                .enumerate()
            {
                ep.weight = (rng.next_u64() % 4) as u32;
                ep.capacity = (rng.next_u64() % 3) as u32;
                let roll = rng.next_u64() % 10;
                let serving = if roll < 2 {
                    Serving::Down
                } else if roll < 3 {
                    Serving::Drained
                } else {
                    Serving::Up
                };
                w.health.insert((p, e), serving);
                w.rtt
                    .insert((EU, p, e), (1.0 + (rng.next_u64() % 200) as f64, 300.0));
            }
        }
        let n = w.pools.len();
        for (i, &policy) in policies.iter().enumerate() {
            let mut s = service(&format!("s{i}"), policy, &(0..n).rev().collect::<Vec<_>>());
            if rng.next_u64().is_multiple_of(3) {
                s.fallback = Fallback::Cname("x.example.".into());
            }
            w.services.push(s);
        }
        let t = w.build(None);
        // (Geometries take a moment to build: check determinism on every tenth world.)
        if round % 10 == 0 {
            assert_eq!(t, w.build(None), "round {round}");
        }
        for (s, &policy) in policies.iter().enumerate() {
            for r in 0..4 {
                let d = t.decision(s, r);
                let tier = d.explanation.tier;
                if tier != Tier::Fallback && policy != PolicyKind::Weighted {
                    let sum: f64 = d.explanation.pools.iter().map(|p| p.share).sum();
                    assert!(close(sum, 1.0, 1e-9), "round {round}: {:?}", d.explanation);
                }
                assert_eq!(d.degraded, d.ttl == 5);
                if !matches!(d.answer, Answer::Endpoints(_)) {
                    assert_eq!(tier, Tier::Fallback);
                    continue;
                }
                for _ in 0..20 {
                    let want = (rng.next_u64() % 10) as usize;
                    let got = d.pick(rng.next_u64(), want, &mut out);
                    assert!(got <= want.min(MAX_ANSWERS));
                    assert!(
                        want == 0 || got >= 1,
                        "round {round}: empty answer {:?}",
                        d.explanation
                    );
                    for (i, e) in out[..got].iter().enumerate() {
                        assert!(!out[..i].contains(e), "duplicate");
                        let serving = w.health[&(e.pool as usize, e.endpoint as usize)];
                        assert!(tier == Tier::Fallback || serving == Serving::Up);
                        if tier != Tier::Fallback && policy != PolicyKind::Weighted {
                            assert_eq!(e.pool, out[0].pool);
                        }
                    }
                }
            }
        }
    }
}
