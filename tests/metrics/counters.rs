//! Metrics move with real events: queries over UDP and TCP, probes against a real HTTP server,
//! steered answers, reloads. Values are read from the Prometheus exposition the admin API serves
//! (`meridian::metrics::render`), as deltas, since the registry is shared by the process.

use std::time::Duration;

use crate::support::exposition::{registry_lock, sample};
use crate::support::target::tcp_listening;
use crate::support::*;
use hickory_proto::rr::RecordType;

#[test]
fn counters_move_with_queries_probes_answers_and_reloads() {
    let _registry = registry_lock();
    let (_listener, port) = tcp_listening("127.0.0.1");
    let extra = format!(
        r#"
[checks.alive]
kind = "tcp"
port = {port}
interval = "100ms"
timeout = "80ms"
jitter = "10ms"

[[region]]
name = "eu"
location = [50.0, 8.0]

[[pool]]
name = "eu"
region = "eu"
checks = ["alive"]
[[pool.endpoint]]
name = "m1"
address = "192.0.2.1"
check_address = "127.0.0.1"

[[service]]
name = "svc.example.com."
policy = "failover"
pools = ["eu"]
"#
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let q_udp = r#"meridian_dns_queries_total{zone="example.com.",qtype="A",rcode="NOERROR",transport="udp"}"#;
    let q_tcp = r#"meridian_dns_queries_total{zone="example.com.",qtype="AAAA",rcode="NOERROR",transport="tcp"}"#;
    let nx = r#"meridian_dns_queries_total{zone="example.com.",qtype="A",rcode="NXDOMAIN",transport="udp"}"#;
    let refused =
        r#"meridian_dns_queries_total{zone="none",qtype="MX",rcode="REFUSED",transport="udp"}"#;
    let answers = r#"meridian_policy_endpoint_answers_total{service="svc.example.com.",pool="eu",endpoint="m1"}"#;
    let ecs = r#"meridian_dns_ecs_queries_total{ecs="absent"}"#;
    let hit = r#"meridian_dns_kept_responses_total{result="hit"}"#;
    let miss = r#"meridian_dns_kept_responses_total{result="miss"}"#;
    let probes = r#"meridian_health_probes_total{endpoint="m1",check="alive",result="ok"}"#;
    let up = r#"meridian_health_endpoint_up{endpoint="m1",pool="eu"}"#;
    let before = meridian::metrics::render();

    for _ in 0..7 {
        assert_eq!(
            srv.udp(&query("www.example.com.", RecordType::A, None))
                .answers
                .len(),
            2
        );
    }
    for _ in 0..3 {
        srv.udp(&query("nope.example.com.", RecordType::A, None));
        srv.udp(&query("example.org.", RecordType::MX, None));
    }
    for _ in 0..2 {
        srv.tcp(&query("www.example.com.", RecordType::AAAA, None));
    }
    for _ in 0..5 {
        assert_eq!(
            srv.udp(&query("svc.example.com.", RecordType::A, None))
                .answers
                .len(),
            1
        );
    }
    // UDP workers hand their counts over when idle (their receive timeout is 200 ms), each on
    // its own: wait for every counter this test reads, whichever worker holds it.
    let mut after = String::new();
    wait_for(Duration::from_secs(5), "UDP counts flushed", || {
        after = meridian::metrics::render();
        let d = |s: &str| sample(&after, s) - sample(&before, s);
        d(q_udp) >= 12.0
            && d(nx) >= 3.0
            && d(refused) >= 3.0
            && d(answers) >= 5.0
            && d(hit) + d(miss) >= 7.0
            && d(ecs) >= 20.0
    });
    let delta = |s: &str| sample(&after, s) - sample(&before, s);
    assert_eq!(delta(q_udp), 12.0, "7 www + 5 svc A queries");
    assert_eq!(delta(nx), 3.0);
    assert_eq!(delta(refused), 3.0);
    assert_eq!(delta(q_tcp), 2.0);
    assert_eq!(delta(answers), 5.0);
    assert!(delta(ecs) >= 20.0);
    // Of the 7 www A queries (the only ones prepared: this zone's NXDOMAIN is not, the service's
    // answers never are), each worker kept the first it saw and answered the rest from it.
    assert_eq!(delta(hit) + delta(miss), 7.0);
    assert!((1.0..=2.0).contains(&delta(miss)), "{}", delta(miss));
    wait_for(
        Duration::from_secs(5),
        "probes counted and gauge set",
        || {
            let now = meridian::metrics::render();
            sample(&now, probes) - sample(&before, probes) >= 3.0 && sample(&now, up) == 1.0
        },
    );

    // Reloads: one good, one refused.
    let control = srv.server.as_ref().unwrap().control().clone();
    let ok = r#"meridian_config_reloads_total{result="ok"}"#;
    let err = r#"meridian_config_reloads_total{result="error"}"#;
    let gen_before = control.generation();
    let before = meridian::metrics::render();
    control.reload().unwrap();
    let text = std::fs::read_to_string(&srv.config_path).unwrap();
    std::fs::write(
        &srv.config_path,
        text.replace("policy = \"failover\"", "policy = \"bogus\""),
    )
    .unwrap();
    assert!(control.reload().is_err());
    wait_for(Duration::from_secs(5), "reload counters", || {
        let now = meridian::metrics::render();
        sample(&now, ok) - sample(&before, ok) == 1.0
            && sample(&now, err) - sample(&before, err) == 1.0
            && sample(&now, "meridian_config_generation") == (gen_before + 1) as f64
    });
    let now = meridian::metrics::render();
    assert!(sample(&now, "meridian_policy_table_rebuilds_total") >= 1.0);
    // Every metric family is described.
    for family in [
        "meridian_dns_queries_total",
        "meridian_dns_answer_duration_seconds",
        "meridian_health_probes_total",
        "meridian_policy_endpoint_answers_total",
        "meridian_config_reloads_total",
    ] {
        assert!(
            now.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
    }
}

#[test]
fn a_reload_sets_the_policy_gauges_of_its_services_at_once() {
    let _registry = registry_lock();
    // No checks: the health view changes only with overrides and reloads, so nothing but the
    // reload itself can set the gauges of the renamed service.
    let extra = |service: &str| {
        format!(
            "[[region]]\nname = \"eu\"\nlocation = [50.0, 8.0]\n\
             [[pool]]\nname = \"g1\"\nregion = \"eu\"\n\
             [[pool.endpoint]]\nname = \"g1a\"\naddress = \"192.0.2.1\"\n\
             [[pool]]\nname = \"g2\"\nregion = \"eu\"\n\
             [[pool.endpoint]]\nname = \"g2a\"\naddress = \"192.0.2.2\"\n\
             [[service]]\nname = \"{service}.example.com.\"\npolicy = \"failover\"\n\
             pools = [\"g1\", \"g2\"]\n"
        )
    };
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra("gauged"));
    let server = srv.server.as_ref().unwrap();
    server
        .monitor()
        .set_override(
            "g1a",
            Some(meridian::health::state::OverrideKind::Drain),
            None,
        )
        .unwrap();
    let degraded = |service: &str| {
        format!("meridian_policy_service_degraded{{service=\"{service}.example.com.\"}}")
    };
    wait_for(Duration::from_secs(3), "g1a drained: degraded", || {
        sample(&meridian::metrics::render(), &degraded("gauged")) == 1.0
    });

    // The service renamed: the reload's tables set its gauges (g1a stays drained).
    let text = std::fs::read_to_string(&srv.config_path).unwrap();
    std::fs::write(
        &srv.config_path,
        text.replace("gauged.example.com.", "renamed.example.com."),
    )
    .unwrap();
    let rebuilds = "meridian_policy_table_rebuilds_total";
    let before = sample(&meridian::metrics::render(), rebuilds);
    server.control().reload().expect("reload");
    let now = meridian::metrics::render();
    assert_eq!(sample(&now, &degraded("renamed")), 1.0);
    assert!(
        sample(&now, rebuilds) > before,
        "the reload's tables are counted"
    );
}
