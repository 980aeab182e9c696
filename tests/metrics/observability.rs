//! The operations artefacts, checked with the real tools: the Prometheus exposition of a running
//! server passes `promtool check metrics`; every PromQL expression in grafana/meridian.json and
//! config/alerts.yml passes `promtool check rules` (wrapped as recording rules) and names only
//! metrics the running server exports; config/alerts.yml passes `promtool check rules` as it is;
//! the dashboard keeps its fixed uid, its datasource variable and `$__rate_interval`; the systemd
//! unit passes `systemd-analyze verify`.
//!
//! promtool comes from Debian's `prometheus` package, which .ci/run installs, so a missing
//! promtool fails these tests instead of skipping them.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use super::observability_support::*;
use crate::support::exposition::{registry_lock, sample};
use crate::support::target::{closed_port, tcp_listening};
use crate::support::*;
use hickory_proto::rr::RecordType;
use regex::Regex;
use serde_json::Value;

// ------------------------------------------------------------------------------------------------
// (a) + (c): a running server's exposition

/// A server with a geo database, two regions, a pool whose check passes and one whose check
/// fails, fed queries over UDP and TCP and reloaded once, pulling the observations of a fleet
/// peer (a second server), so that every metric family and the labelled series of both probe
/// results, both transitions and degraded answers exist. Returns the exposition text.
fn exposition_of_a_busy_server() -> String {
    let _registry = registry_lock();
    let peer = start(
        &[("example.com.", EXAMPLE_ZONE)],
        &format!(
            "[node]\nname = \"peer\"\nregion = \"r1\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             {REGIONS}[fleet]\ninterval = \"100ms\"\n"
        ),
    );
    let peer_url = format!("http://{}", peer.server().admin_addr().unwrap());
    // A primary for the busy server's secondary zone.
    let primary_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        primary_dir.path().join("z.zone"),
        "$TTL 300\n@ IN SOA ns1 hostmaster 7 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n",
    )
    .unwrap();
    std::fs::write(
        primary_dir.path().join("primary.toml"),
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n[[zone]]\norigin = \"secondary.test.\"\n\
         file = \"z.zone\"\n[zone.transfer]\nallow = [\"127.0.0.1/32\"]\n",
    )
    .unwrap();
    let primary = start_file(&primary_dir.path().join("primary.toml"));
    let (alive, alive_port) = tcp_listening("127.0.0.1");
    // A port closed again at once, on an address other tests do not bind: connections to it
    // are refused.
    let dead_port = closed_port("127.0.0.2");
    // A copy of the RFC 4592 zone, changed before the reload; a UDP port that never answers
    // NOTIFY.
    let zone_dir = tempfile::tempdir().unwrap();
    let rfc4592 = zone_dir.path().join("rfc4592.zone");
    std::fs::copy(fixture("rfc4592.zone"), &rfc4592).unwrap();
    let silent_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = silent_socket.local_addr().unwrap().port();
    let extra = format!(
        r#"
[geo]
database = "{db}"
default_region = "us"

[checks.alive]
kind = "tcp"
port = {alive_port}
interval = "100ms"
timeout = "80ms"
jitter = "10ms"
rise = 1
fall = 1

[checks.dead]
kind = "tcp"
port = {dead_port}
interval = "100ms"
timeout = "80ms"
jitter = "10ms"
rise = 1
fall = 1

[[region]]
name = "eu"
location = [50.0, 8.0]
continents = ["EU"]

[[region]]
name = "us"
location = [39.0, -77.5]
continents = ["NA"]
fallback = ["eu"]

[[pool]]
name = "eu"
region = "eu"
checks = ["alive"]
[[pool.endpoint]]
name = "m1"
address = "192.0.2.1"
check_address = "127.0.0.1"

[[pool]]
name = "us"
region = "us"
checks = ["dead"]
[[pool.endpoint]]
name = "u1"
address = "198.51.100.1"
check_address = "127.0.0.2"

[[service]]
name = "svc.example.com."
policy = "geo"
pools = ["eu", "us"]

[node]
name = "busy"
region = "eu"

[fleet]
peers = ["{peer_url}"]
interval = "100ms"

[[zone]]
origin = "example."
file = "{rfc4592}"
[zone.transfer]
allow = ["127.0.0.1/32"]
notify = ["127.0.0.1:{silent}"]

[[zone]]
origin = "secondary.test."
primaries = ["{primary_addr}"]
file = "{kept}"
"#,
        primary_addr = primary.tcp,
        kept = primary_dir
            .path()
            .join("kept/secondary.test.zone")
            .display(),
        db = repo("geo-data/test/GeoIP2-City-Test.mmdb").display(),
        rfc4592 = rfc4592.display(),
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let control = srv.server.as_ref().unwrap().control().clone();
    let _ = &silent_socket; // NOTIFY to it is sent and never answered
    let generation = control.generation();

    // The us endpoint goes down; clients (127.0.0.1 is placed in the default region, us) then
    // get eu's endpoint from a degraded decision.
    let down = r#"meridian_health_transitions_total{endpoint="u1",to="down"}"#;
    wait_for(Duration::from_secs(10), "u1 marked down", || {
        sample(&meridian::metrics::render(), down) >= 1.0
    });
    // Tables are rebuilt within ~20 ms of the change.
    wait_for(Duration::from_secs(10), "tables rebuilt without u1", || {
        let m = srv.udp(&query("svc.example.com.", RecordType::A, None));
        m.answers
            .iter()
            .map(|a| a.data.to_string())
            .collect::<Vec<_>>()
            == ["192.0.2.1"]
    });
    for _ in 0..70 {
        let m = srv.udp(&query("svc.example.com.", RecordType::A, None));
        let addrs: Vec<String> = m.answers.iter().map(|a| a.data.to_string()).collect();
        assert_eq!(addrs, ["192.0.2.1"], "eu's endpoint while us is down");
    }
    for _ in 0..3 {
        srv.udp(&query("www.example.com.", RecordType::A, Some(1232)));
        srv.udp(&query("nope.example.com.", RecordType::A, None));
        srv.udp(&query("example.org.", RecordType::MX, None));
        srv.tcp(&query("www.example.com.", RecordType::AAAA, None));
        srv.tcp(&query("svc.example.com.", RecordType::A, None));
    }
    // A zone transfer, served, and one refused (example.com. has no [zone.transfer]).
    let axfr = |zone: &str| {
        let q = query(zone, RecordType::AXFR, None);
        let mut s = std::net::TcpStream::connect(srv.tcp).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        write_framed(&mut s, &q.to_vec().unwrap());
        // Messages until the closing SOA, or the one REFUSED answer.
        let mut soas = 0;
        loop {
            let bytes = read_framed(&mut s).expect("a transfer message");
            let m = hickory_proto::op::Message::from_vec(&bytes).unwrap();
            soas += m
                .answers
                .iter()
                .filter(|r| r.record_type() == RecordType::SOA)
                .count();
            if soas >= 2 || m.metadata.response_code != hickory_proto::op::ResponseCode::NoError {
                return m.metadata.response_code;
            }
        }
    };
    assert_eq!(axfr("example."), hickory_proto::op::ResponseCode::NoError);
    assert_eq!(
        axfr("example.com."),
        hickory_proto::op::ResponseCode::Refused
    );
    // A query signed with a key the server does not know: NOTAUTH, counted as BADKEY.
    let stranger = meridian::wire::tsig::Key::new(
        "stranger.",
        meridian::wire::tsig::Algorithm::HmacSha256,
        b"not a key of this server",
    )
    .unwrap();
    let mut signed = query("example.com.", RecordType::SOA, None)
        .to_vec()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    meridian::wire::tsig::sign_query(&stranger, &mut signed, now);
    assert_eq!(udp_raw(srv.udp, &signed).unwrap()[3] & 0xF, 9, "NOTAUTH");
    // The reload changes example. without raising its serial: reported, and a new version.
    let mut z = std::fs::read_to_string(&rfc4592).unwrap();
    z.push_str("added.example. 300 IN TXT \"a change without a raised serial\"\n");
    std::fs::write(&rfc4592, z).unwrap();
    control.reload().unwrap();

    let spill =
        r#"meridian_policy_degraded_answers_total{service="svc.example.com.",kind="spill"}"#;
    let mut text = String::new();
    wait_for(
        Duration::from_secs(10),
        "queries, probes, gauges and the reload in the exposition",
        || {
            text = meridian::metrics::render();
            let has = |s: &str| sample(&text, s) > 0.0;
            has(spill)
                && has(r#"meridian_health_probes_total{endpoint="u1",check="dead",result="fail"}"#)
                && has(r#"meridian_health_probes_total{endpoint="m1",check="alive",result="ok"}"#)
                && has(r#"meridian_health_endpoint_up{endpoint="m1",pool="eu"}"#)
                && has(r#"meridian_policy_service_degraded{service="svc.example.com."}"#)
                && has("meridian_geo_database_build_timestamp_seconds")
                && has(r#"meridian_secondary_serial{zone="secondary.test."}"#)
                && has(r#"meridian_config_reloads_total{result="ok"}"#)
                && sample(&text, "meridian_config_generation") == (generation + 1) as f64
                && has(
                    r#"meridian_dns_queries_total{zone="example.com.",qtype="AAAA",rcode="NOERROR",transport="tcp"}"#,
                )
                && has(&format!(
                    r#"meridian_fleet_peer_fresh{{peer="{peer_url}",node="peer",vantage="r1"}}"#
                ))
                && has(&format!(
                    r#"meridian_fleet_pulls_total{{peer="{peer_url}",result="ok"}}"#
                ))
                && text.contains(&format!(
                    r#"meridian_fleet_peer_age_seconds{{peer="{peer_url}"}}"#
                ))
                && has(r#"meridian_fleet_observation_requests_total{result="ok"}"#)
                && has(
                    r#"meridian_xfr_requests_total{zone="example.",kind="axfr",result="served"}"#,
                )
                && has(
                    r#"meridian_xfr_requests_total{zone="example.com.",kind="axfr",result="refused"}"#,
                )
                && has(r#"meridian_tsig_errors_total{error="badkey"}"#)
                && has(r#"meridian_zone_serial_not_raised_total{zone="example."}"#)
                && has(r#"meridian_notify_total{zone="example.",result="sent"}"#)
        },
    );
    drop(srv);
    drop(peer);
    drop(alive);
    text
}

/// Metric families in an exposition (`# TYPE name type`), by name.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').expect("# TYPE name type");
            (name.to_string(), kind.trim().to_string())
        })
        .collect()
}

#[test]
fn exposition_passes_promtool_and_exports_every_metric_the_dashboard_and_alerts_read() {
    let text = exposition_of_a_busy_server();

    // (a) promtool check metrics: exit 0 and nothing printed. It parses the text format (a
    // malformed line is an error) and lints every family (HELP present, counters end in _total,
    // base units, no camelCase, no reserved suffixes, ...); any lint about our metrics fails the
    // test, since each is a naming or description problem we should fix rather than accept.
    let out = promtool(&["check", "metrics"], Some(&text));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && printed.trim().is_empty(),
        "promtool check metrics:\n{}\n--- exposition ---\n{text}",
        show(&out)
    );

    // (c) every metric an expression reads is exported, under that name and type.
    let exported = families(&text);
    assert!(
        exported.keys().all(|n| n.starts_with("meridian_")),
        "only meridian_ metrics: {exported:?}"
    );
    let known = |name: &str| -> bool {
        if exported.contains_key(name) {
            return true;
        }
        ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .and_then(|base| exported.get(base))
                .is_some_and(|kind| kind == "histogram")
        })
    };
    let mut used = BTreeSet::new();
    let mut unknown = Vec::new();
    for (place, expr) in all_exprs() {
        let names = metric_names(&expr);
        assert!(
            !names.is_empty(),
            "{place}: reads no meridian_ metric: {expr}"
        );
        for n in names {
            if !known(&n) {
                unknown.push(format!("{place}: {n}"));
            }
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s).filter(|b| exported.contains_key(*b)))
                .unwrap_or(&n)
                .to_string();
            used.insert(base);
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics Meridian does not export:\n{}\nexported: {:?}",
        unknown.join("\n"),
        exported.keys().collect::<Vec<_>>()
    );
    // And the other way: every exported family is on the dashboard or in an alert, so a new
    // metric gets a graph.
    let unused: Vec<_> = exported.keys().filter(|n| !used.contains(*n)).collect();
    assert!(
        unused.is_empty(),
        "exported but neither graphed nor alerted on: {unused:?}"
    );
}

// ------------------------------------------------------------------------------------------------
// (b), (d): promtool check rules

#[test]
fn every_dashboard_and_alert_expression_is_valid_promql() {
    let exprs = all_exprs();
    assert!(exprs.len() >= 25, "found only {} expressions", exprs.len());
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, (_, e))| serde_json::json!({"record": format!("meridian_check:expr_{i}"), "expr": e}))
        .collect();
    // JSON is YAML: no quoting questions.
    let file = serde_json::json!({"groups": [{"name": "dashboard_and_alerts", "rules": rules}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("expressions.yml");
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let out = promtool(
        &[
            "check",
            "rules",
            "--lint=all",
            "--lint-fatal",
            path.to_str().unwrap(),
        ],
        None,
    );
    let index: Vec<String> = exprs
        .iter()
        .enumerate()
        .map(|(i, (place, e))| format!("expr_{i}: {place}: {e}"))
        .collect();
    assert!(
        out.status.success(),
        "promtool check rules on the wrapped expressions:\n{}\n{}",
        show(&out),
        index.join("\n")
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{}",
        show(&out)
    );
}

#[test]
fn alert_rules_file_passes_promtool_as_is() {
    let out = promtool(
        &[
            "check",
            "rules",
            "--lint=all",
            "--lint-fatal",
            repo(ALERTS).to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", show(&out));
    let alerts = read(ALERTS);
    for name in [
        "MeridianEndpointDown",
        "MeridianRegionFailingOver",
        "MeridianServiceAllDown",
        "MeridianReloadFailed",
        "MeridianGeoDatabaseStale",
    ] {
        assert!(
            alerts.contains(&format!("- alert: {name}\n")),
            "{ALERTS}: no alert {name}"
        );
    }
    let n = rule_exprs(&alerts).len();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("SUCCESS: {n} rules found")),
        "{}",
        show(&out)
    );
    // Every alert tells the on-call person what happened and what to look at.
    let rules = alerts.split("- alert: ").skip(1);
    for rule in rules {
        let name = rule.lines().next().unwrap();
        for key in ["summary:", "description:", "severity:"] {
            assert!(rule.contains(key), "{ALERTS}: {name} has no {key}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// (e): the dashboard's shape, and its provisioning

#[test]
fn dashboard_has_fixed_uid_datasource_variable_and_rate_interval_everywhere() {
    let dash: Value = serde_json::from_str(&read(DASHBOARD)).expect("dashboard JSON parses");
    assert_eq!(dash["uid"], "meridian-overview");
    assert!(
        dash["schemaVersion"].as_u64().unwrap() >= 36,
        "Grafana 10+ schema"
    );

    let vars = dash["templating"]["list"].as_array().unwrap();
    let ds = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a `datasource` variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");

    // Rows: Traffic, Steering, Health, Operations, Fleet, Defences, Dependency faults, in that
    // order.
    let panels = dash["panels"].as_array().unwrap();
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            "Traffic",
            "Steering",
            "Health",
            "Operations",
            "Fleet",
            "Defences",
            "Dependency faults"
        ]
    );
    assert!(
        panels.iter().any(|p| p["type"] == "state-timeline"
            && metric_names(p["targets"][0]["expr"].as_str().unwrap())
                .contains("meridian_health_endpoint_up")),
        "endpoint state is a state timeline"
    );
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap();
        // Every query goes to the datasource the variable picks, never a hard-coded one.
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {title:?}");
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {title:?}");
        }
    }

    let range_fn = Regex::new(r"\b(rate|irate|increase)\s*\(").unwrap();
    let range = Regex::new(r"\[[^\]]*\]").unwrap();
    for (title, expr) in dashboard_exprs(&dash) {
        // Every range selector (hence every rate/increase window) is $__rate_interval.
        for r in range.find_iter(&expr) {
            assert_eq!(
                r.as_str(),
                "[$__rate_interval]",
                "panel {title:?}: hard-coded range in {expr}"
            );
        }
        for m in range_fn.find_iter(&expr) {
            let args = call_args(&expr, m.end());
            assert!(
                args.contains("[$__rate_interval]"),
                "panel {title:?}: {}) without $__rate_interval in {expr}",
                m.as_str()
            );
        }
    }

    let provisioning = read("grafana/provisioning/dashboards/meridian.yaml");
    assert!(provisioning.contains("type: file") && provisioning.contains("path: "));
    let datasource = read("grafana/provisioning/datasources/prometheus.yaml");
    assert!(datasource.contains("type: prometheus"));
    assert!(datasource.contains("url: http://localhost:9090"));
}

// ------------------------------------------------------------------------------------------------
// The systemd unit

#[test]
fn systemd_unit_is_hardened_and_verifies() {
    let unit = read(UNIT);
    for line in [
        "ExecStart=/usr/bin/meridian serve --config /etc/meridian/meridian.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "Restart=on-failure",
        "User=meridian",
        "StateDirectory=meridian",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "LimitNOFILE=65536",
    ] {
        assert!(unit.lines().any(|l| l == line), "{UNIT}: missing {line}");
    }
    assert!(unit.lines().any(|l| l.starts_with("TimeoutStopSec=")));

    let found = Command::new("systemd-analyze").arg("--version").output();
    if found.is_err() {
        println!("systemd-analyze is not installed: skipping `systemd-analyze verify` of {UNIT}");
        return;
    }
    // verify checks that ExecStart's program exists: point it at the binary cargo built.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meridian.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/meridian", env!("CARGO_BIN_EXE_meridian")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let printed =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && printed.trim().is_empty(),
        "systemd-analyze verify {UNIT}:\n{}",
        show(&out)
    );
}
