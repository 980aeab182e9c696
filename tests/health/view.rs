//! The health view the monitor keeps and the publisher builds tables from: indexed by the ids of
//! the configuration the monitor last reconciled and stamped with its layout; read by name for
//! a model of another layout, so that a snapshot is never paired with another reload's ids.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use meridian::config::Config;
use meridian::config::model::EndpointId;
use meridian::health::state::{OverrideKind, Serving};
use tokio::time::Instant;

use crate::support::monitor::{TestMonitor, at, config, id_in, pool};
use crate::support::steering::{Client, one};
use crate::support::target::{Switch, switch_check};
use crate::support::*;

#[tokio::test(start_paused = true)]
async fn the_view_follows_the_ids_of_the_configuration_last_reconciled() {
    let (a, b) = (Switch::start().await, Switch::start().await);
    b.set_up(false);
    let checks = switch_check("ca", a.addr, "1s", "") + &switch_check("cb", b.addr, "1s", "");
    let first = config(&pool(&checks, &[("a", "ca"), ("b", "cb")]));
    // The same endpoints and checks, declared the other way round: their ids swap.
    let second = config(&pool(&checks, &[("b", "cb"), ("a", "ca")]));
    assert_eq!(
        [id_in(&second, "b"), id_in(&second, "a")],
        [EndpointId(0), EndpointId(1)]
    );
    let m = TestMonitor::start(&first);
    let t0 = Instant::now();
    at(t0, 0.5).await;
    let serving = |view: &meridian::snapshot::steering::HealthView| {
        [EndpointId(0), EndpointId(1)].map(|id| view.get(id).serving)
    };
    let view = m.monitor.view();
    assert_eq!((view.layout(), view.len()), (first.model.layout, 2));
    assert_eq!(serving(&view), [Serving::Up, Serving::Down]);
    let since = m.status("a").since;

    m.monitor.reconcile(&second);
    let view = m.monitor.view();
    assert_eq!(view.layout(), second.model.layout, "published by reconcile");
    assert_eq!(serving(&view), [Serving::Down, Serving::Up]);
    assert_eq!(m.status("a").since, since, "a's state survived the reload");
    // A view for the first configuration's model, asked for by name, is still right for it.
    let by_name = m.monitor.view_of(&first.model);
    assert_eq!(by_name.layout(), first.model.layout);
    assert_eq!(serving(&by_name), [Serving::Up, Serving::Down]);

    // Results land in the new slots: a fails at 1, 2 and 3 (fall 3).
    a.set_up(false);
    at(t0, 3.5).await;
    assert_eq!(serving(&m.monitor.view()), [Serving::Down, Serving::Down]);
}

#[tokio::test(start_paused = true)]
async fn a_reload_of_the_same_endpoints_keeps_each_and_restarts_only_a_changed_one() {
    use meridian::health::state::Health;
    let (a, b) = (Switch::start().await, Switch::start().await);
    let checks = |a_interval: &str| {
        switch_check("ca", a.addr, a_interval, "") + &switch_check("cb", b.addr, "1s", "")
    };
    let text = |a_interval: &str| pool(&checks(a_interval), &[("a", "ca"), ("b", "cb")]);
    let m = TestMonitor::start(&config(&text("1s")));
    let t0 = Instant::now();
    at(t0, 1.5).await; // probes at 0 and 1: up (rise 2)
    assert_eq!([m.health("a"), m.health("b")], [Health::Up, Health::Up]);
    let (a_since, b_since) = (m.status("a").since, m.status("b").since);

    // The same file compiled again (a reload that changed nothing): every endpoint is where it
    // was, and keeps its state and its probers; the view is published for the new ids.
    let again = config(&text("1s"));
    m.monitor.reconcile(&again);
    assert_eq!(m.monitor.view().layout(), again.model.layout);
    assert_eq!([m.health("a"), m.health("b")], [Health::Up, Health::Up]);
    assert_eq!(
        [m.status("a").since, m.status("b").since],
        [a_since, b_since]
    );
    // b's probers still report into it: it fails at 2, 3 and 4 (fall 3).
    b.set_up(false);
    at(t0, 4.5).await;
    assert_eq!(m.health("b"), Health::Down);
    let b_since = m.status("b").since;

    // a's check changed, nothing else: a starts afresh, b keeps its state.
    let changed = config(&text("2s"));
    m.monitor.reconcile(&changed);
    assert_eq!(m.health("a"), Health::Unknown, "a's health restarted");
    assert!(m.status("a").since > a_since);
    assert_eq!(
        (m.health("b"), m.status("b").since),
        (Health::Down, b_since)
    );
    let view = m.monitor.view();
    assert_eq!(view.layout(), changed.model.layout);
    assert_eq!(view.get(id_in(&changed, "b")).serving, Serving::Down);
    // a's new probers report (every 2 s from now): up again after two.
    at(t0, 7.0).await;
    assert_eq!(m.health("a"), Health::Up);
}

/// Two pools of one endpoint each, in the order given, and a failover service over
/// `first` (endpoint a, 192.0.2.1) then `second` (endpoint b, 198.51.100.1).
fn failover(pools_first_then_second: bool) -> String {
    let first = "[[pool]]\nname = \"first\"\nregion = \"r1\"\n\
                 [[pool.endpoint]]\nname = \"a\"\naddress = \"192.0.2.1\"\n";
    let second = "[[pool]]\nname = \"second\"\nregion = \"r2\"\n\
                  [[pool.endpoint]]\nname = \"b\"\naddress = \"198.51.100.1\"\n";
    let (p, q) = if pools_first_then_second {
        (first, second)
    } else {
        (second, first)
    };
    format!(
        "{REGIONS}{p}{q}[[service]]\nname = \"fo.example.com.\"\npolicy = \"failover\"\n\
         pools = [\"first\", \"second\"]\nfailover_ttl = 5\n"
    )
}

#[test]
fn the_publisher_reads_a_view_by_id_only_against_a_model_of_its_layout() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &failover(true));
    let server = srv.server();
    let (monitor, publisher) = (server.monitor(), server.control().publisher());
    let mut c = Client::new(&srv);
    let mut answer = || one(&c.udp("fo.example.com.", RecordType::A, None));
    assert_eq!(answer(), "192.0.2.1");
    monitor
        .set_override("a", Some(OverrideKind::ForceDown), None)
        .unwrap();
    wait_for(Duration::from_secs(3), "failover to b", || {
        answer() == "198.51.100.1"
    });

    // The monitor reconciles the file's configuration (a is 0, b is 1) while the snapshot
    // served is of the same endpoints compiled with the pools the other way round (b is 0, a
    // is 1): the monitor's view and the snapshot's model are of different layouts.
    let file = Config::load(&srv.config_path).unwrap();
    let text = std::fs::read_to_string(&srv.config_path)
        .unwrap()
        .replace(&failover(true), &failover(false));
    let swapped = Config::parse(&srv.config_path, &text).unwrap();
    assert_eq!(
        [id_in(&file, "a"), id_in(&swapped, "a")],
        [EndpointId(0), EndpointId(1)]
    );
    server.reload(&file, meridian::snapshot::assemble(&swapped).unwrap());
    assert_eq!(monitor.view().layout(), file.model.layout);
    let snap = server.snapshot();
    let st = snap.steering.as_ref().unwrap();
    assert_eq!(st.model.layout, swapped.model.layout);
    // The publisher's view for the served model is by name: a down, b up, at the model's ids.
    // (Read by id, the monitor's view would say b down and a up, and answer a.)
    let view = publisher.view_for(st);
    assert_eq!(view.layout(), swapped.model.layout);
    assert_eq!(
        [
            view.get(EndpointId(0)).serving,
            view.get(EndpointId(1)).serving
        ],
        [Serving::Up, Serving::Down]
    );
    assert_eq!(answer(), "198.51.100.1", "tables built at publish");
    publisher.refresh_tables().expect("services: a rebuild");
    assert_eq!(answer(), "198.51.100.1", "tables rebuilt");

    // Once monitor and snapshot agree, the publisher just loads the monitor's view.
    server.reload(&swapped, meridian::snapshot::assemble(&swapped).unwrap());
    let snap = server.snapshot();
    let st = snap.steering.as_ref().unwrap();
    assert!(Arc::ptr_eq(&publisher.view_for(st), &monitor.view()));
    assert_eq!(answer(), "198.51.100.1");
}

#[test]
fn tables_are_rebuilt_from_a_new_view_and_not_again_from_the_same_one() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &failover(true));
    let server = srv.server();
    let (monitor, publisher) = (server.monitor(), server.control().publisher());
    let tables = || Arc::as_ptr(server.snapshot().tables.as_ref().expect("tables"));
    let mut c = Client::new(&srv);
    let mut answer = || one(&c.udp("fo.example.com.", RecordType::A, None));
    assert_eq!(answer(), "192.0.2.1");

    // No checks, so the view changes only with overrides and reloads. Tables built from the
    // monitor's view as published: asked again, the publisher keeps them (and the snapshot).
    publisher.refresh_tables().expect("services");
    let (built, snapshot) = (tables(), Arc::as_ptr(&server.snapshot()));
    publisher.refresh_tables().expect("services");
    assert_eq!(tables(), built, "rebuilt from the same view");
    assert_eq!(Arc::as_ptr(&server.snapshot()), snapshot);

    // A new view (a drained): new tables, by the rebuild task or by this call.
    monitor
        .set_override("a", Some(OverrideKind::Drain), None)
        .unwrap();
    publisher.refresh_tables().expect("services");
    assert_ne!(tables(), built, "not rebuilt from a new view");
    assert_eq!(answer(), "198.51.100.1");

    // A reload builds its tables once, from the view its reconcile published; the rebuild that
    // view's version sets off finds them built from it.
    server.control().reload().expect("reload");
    let built = tables();
    publisher.refresh_tables().expect("services");
    assert_eq!(tables(), built);
    assert_eq!(
        answer(),
        "198.51.100.1",
        "a stays drained across the reload"
    );
}
