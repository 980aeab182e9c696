//! Meridian as a secondary, against real primaries on loopback started by the tests: a Knot
//! primary (AXFR first, then an edit served by IXFR and announced by NOTIFY), a restart with
//! the primary gone (the kept copy serves at once), a short SOA expire (the zone stops being
//! served), NOTIFY from a source that is not a primary (refused), and another Meridian as the
//! primary.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::support::knot_primary::{KnotPrimary, free_port};
use crate::support::*;

/// Every wait here is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

fn zone(origin: &str, serial: u32, timers: &str, www: &str) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 300\n\
         @ IN SOA ns1 hostmaster {serial} {timers}\n\
         @ IN NS ns1\n\
         ns1 IN A 192.0.2.53\n\
         www IN A {www}\n\
         mail IN MX 10 ns1\n\
         txt IN TXT \"kept \\\"as is\\\"\"\n"
    )
}

/// A Meridian configuration for secondary zone `origin` from `primaries`, listening on
/// `listen`, in `dir`.
fn secondary_config(
    dir: &Path,
    listen: &str,
    origin: &str,
    primaries: &[SocketAddr],
) -> std::path::PathBuf {
    let primaries: Vec<String> = primaries.iter().map(|p| format!("\"{p}\"")).collect();
    let toml = format!(
        "[dns]\nlisten = [\"{listen}\"]\nworkers = 1\n\n\
         [[zone]]\norigin = \"{origin}\"\nprimaries = [{}]\nfile = \"secondary/{origin}zone\"\n",
        primaries.join(", ")
    );
    let path = dir.join("meridian.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// The A records of `name` as `server` answers them over UDP, or the RCODE when not NOERROR.
fn a_of(server: SocketAddr, name: &str) -> Result<Vec<String>, ResponseCode> {
    let q = query(name, RecordType::A, None);
    let bytes = udp_raw_timeout(server, &q.to_vec().unwrap(), Duration::from_millis(300))
        .ok_or(ResponseCode::ServFail)?;
    let m = Message::from_vec(&bytes).unwrap();
    if m.metadata.response_code != ResponseCode::NoError {
        return Err(m.metadata.response_code);
    }
    Ok(m.answers.iter().map(|r| r.data.to_string()).collect())
}

/// The status of `srv`'s only secondary zone.
fn status(srv: &TestServer) -> meridian::secondary::ZoneStatus {
    srv.server().secondaries().status().remove(0)
}

#[test]
fn a_knot_primary_fills_the_zone_by_axfr_then_notify_brings_an_ixfr_and_a_restart_serves_the_kept_copy()
 {
    let origin = "knot-secondary.test.";
    let port = free_port();
    let meridian: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let timers = "3600 600 86400 300";
    let Some(knot) = KnotPrimary::start(origin, &zone(origin, 1, timers, "192.0.2.1"), meridian)
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = secondary_config(dir.path(), &meridian.to_string(), origin, &[knot.addr]);
    let srv = start_file(&config);
    let www = format!("www.{origin}");
    wait_for(LIMIT, "the zone transferred from Knot", || {
        a_of(srv.udp, &www).is_ok_and(|a| a == ["192.0.2.1"]) && status(&srv).serial.is_some()
    });
    let s = status(&srv);
    assert_eq!(
        (s.serial, s.last_result, s.serving),
        (Some(1), "axfr", true),
        "{s:?}"
    );
    // The kept copy is written (just after the status), a master file the ordinary loader reads.
    let kept = dir.path().join(format!("secondary/{origin}zone"));
    let kept_serial = || {
        meridian::zone::load_zone(&Name::from_ascii(origin).unwrap(), &kept)
            .ok()
            .map(|z| z.serial)
    };
    wait_for(LIMIT, "the kept copy written", || kept_serial() == Some(1));

    // An edit on Knot: its NOTIFY brings the change within a second, by IXFR.
    knot.edit(&zone(origin, 2, timers, "192.0.2.2"));
    let edited = Instant::now();
    let took = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            Duration::from_secs(1),
            "the edit served after Knot's NOTIFY",
            || {
                a_of(srv.udp, &www).is_ok_and(|a| a == ["192.0.2.2"])
                    && status(&srv).serial == Some(2)
            },
        )
    }));
    assert!(
        took.is_ok(),
        "status {:?}\nknotd log:\n{}",
        status(&srv),
        knot.log()
    );
    eprintln!("edit served {:?} after Knot's reload", edited.elapsed());
    let s = status(&srv);
    assert_eq!((s.serial, s.last_result), (Some(2), "ixfr"), "{s:?}");
    assert!(
        knot.log().contains("IXFR"),
        "Knot served an IXFR:\n{}",
        knot.log()
    );
    wait_for(LIMIT, "the kept copy to follow", || {
        kept_serial() == Some(2)
    });

    // Primary gone, Meridian restarted: the kept copy is served at once.
    drop(knot);
    srv.stop();
    let srv = start_file(&config);
    assert_eq!(a_of(srv.udp, &www), Ok(vec!["192.0.2.2".to_string()]));
    let m = srv.udp(&query(&format!("txt.{origin}"), RecordType::TXT, None));
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data.to_string(), "kept \"as is\"");
}

#[test]
fn the_zone_stops_being_served_when_its_soa_expire_passes_without_the_primary() {
    let origin = "expiring.test.";
    let port = free_port();
    let meridian: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // refresh 1 s, retry 1 s, expire 3 s.
    let Some(knot) =
        KnotPrimary::start(origin, &zone(origin, 7, "1 1 3 300", "192.0.2.7"), meridian)
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = secondary_config(dir.path(), &meridian.to_string(), origin, &[knot.addr]);
    let srv = start_file(&config);
    let www = format!("www.{origin}");
    wait_for(LIMIT, "the zone transferred", || {
        a_of(srv.udp, &www).is_ok()
    });
    // While the primary answers, refreshes keep it served past its expire time.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(a_of(srv.udp, &www), Ok(vec!["192.0.2.7".to_string()]));
    drop(knot);
    let stopped = Instant::now();
    wait_for(LIMIT, "the zone to expire", || {
        a_of(srv.udp, &www) == Err(ResponseCode::Refused) && !status(&srv).serving
    });
    assert!(
        stopped.elapsed() <= Duration::from_secs(5),
        "{:?}",
        stopped.elapsed()
    );
    let s = status(&srv);
    assert!(!s.serving && s.last_result == "failed", "{s:?}");
    // A reload reads the kept copy, but an expired zone stays out.
    srv.server().control().reload().unwrap();
    assert_eq!(a_of(srv.udp, &www), Err(ResponseCode::Refused));
}

/// A NOTIFY for `origin` sent from `from` to `to`; the response.
fn notify(from: &str, to: SocketAddr, origin: &str) -> Message {
    let sock = std::net::UdpSocket::bind(from).unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut m = Message::new(0x5151, MessageType::Query, OpCode::Notify);
    m.add_query(hickory_proto::op::Query::query(
        Name::from_ascii(origin).unwrap(),
        RecordType::SOA,
    ));
    sock.send_to(&m.to_vec().unwrap(), to).unwrap();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("an answer to NOTIFY");
    Message::from_vec(&buf[..n]).unwrap()
}

#[test]
fn notify_is_acknowledged_from_a_primary_and_refused_from_anyone_else() {
    // The primary is a loopback address with nothing behind it: the zone is never transferred,
    // which NOTIFY handling does not need.
    let origin = "notified.test.";
    let primary: SocketAddr = format!("127.0.0.3:{}", free_port()).parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = secondary_config(dir.path(), "127.0.0.1:0", origin, &[primary]);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[admin]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&config, text).unwrap();
    let srv = start_file(&config);
    // Not transferred: not served.
    assert_eq!(
        a_of(srv.udp, &format!("www.{origin}")),
        Err(ResponseCode::Refused)
    );
    // GET /status lists the zone, not serving yet.
    let (code, body) = crate::fleet_kit::http_get(&srv, "/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let zone = &status["secondaries"][0];
    assert_eq!(zone["origin"], origin, "{body}");
    assert_eq!(zone["serving"], false, "{body}");
    let ack = notify("127.0.0.3:0", srv.udp, origin);
    assert_eq!(ack.metadata.response_code, ResponseCode::NoError);
    assert_eq!(ack.metadata.message_type, MessageType::Response);
    assert_eq!(ack.metadata.op_code, OpCode::Notify);
    assert!(ack.metadata.authoritative);
    assert_eq!(ack.metadata.id, 0x5151);
    assert_eq!(ack.queries[0].name, Name::from_ascii(origin).unwrap());
    // The task woke (counted) and asked the primary again (which did not answer).
    let checks = || {
        crate::support::exposition::sample(
            &meridian::metrics::render(),
            &format!(r#"meridian_secondary_refresh_total{{zone="{origin}",result="failed"}}"#),
        )
    };
    // Each check waits out its 2 s query time against the silent primary; on a machine busy
    // with parallel builds the two take longer than LIMIT (seen once).
    wait_for(3 * LIMIT, "the NOTIFY counted and a check after it", || {
        crate::support::exposition::sample(
            &meridian::metrics::render(),
            &format!(r#"meridian_secondary_notifies_total{{zone="{origin}"}}"#),
        ) == 1.0
            && checks() >= 2.0
    });
    for (from, zone) in [("127.0.0.1:0", origin), ("127.0.0.3:0", "other.test.")] {
        let m = notify(from, srv.udp, zone);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::Refused,
            "{from} {zone}"
        );
        assert_eq!(m.metadata.op_code, OpCode::Notify);
    }
}

#[test]
fn a_meridian_instance_takes_the_zone_from_another_meridian_and_follows_its_notify_by_ixfr() {
    // The secondary's port is chosen first: the primary NOTIFYs it of every new version.
    let secondary: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let primary_config = dir.path().join("primary.toml");
    std::fs::write(
        &primary_config,
        format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[zone]]\norigin = \"example.com.\"\n\
             file = \"example.com.zone\"\n[zone.transfer]\nallow = [\"127.0.0.1/32\"]\nnotify = [\"{secondary}\"]\n"
        ),
    )
    .unwrap();
    let primary = start_file(&primary_config);
    let sdir = tempfile::tempdir().unwrap();
    let config = secondary_config(
        sdir.path(),
        &secondary.to_string(),
        "example.com.",
        &[primary.tcp],
    );
    // A service inside the secondary zone: accepted before the zone comes, answered after.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[[region]]\nname = \"eu\"\nlocation = [50.0, 8.0]\n\n[[pool]]\nname = \"eu\"\nregion = \"eu\"\n\
         [[pool.endpoint]]\nname = \"a\"\naddress = \"198.51.100.7\"\n\n\
         [[service]]\nname = \"svc.example.com.\"\npolicy = \"weighted\"\npools = [\"eu\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    let srv = start_file(&config);
    assert_eq!(
        a_of(srv.udp, "svc.example.com."),
        Err(ResponseCode::Refused)
    );
    // The status as the zone first comes: the primary's start NOTIFY, retried until the
    // secondary is up, may bring an SOA check ("current") a moment later.
    let mut first = None;
    wait_for(
        LIMIT,
        "the zone transferred from the Meridian primary",
        || {
            let s = status(&srv);
            let served =
                a_of(srv.udp, "www.example.com.").is_ok_and(|a| a.len() == 2) && s.serial.is_some();
            if s.serial.is_some() && first.is_none() {
                first = Some(s);
            }
            served
        },
    );
    let s = first.expect("a status with the zone's serial");
    assert_eq!(
        (s.serial, s.last_result),
        (Some(2026112701), "axfr"),
        "{s:?}"
    );
    // The same answers as the primary's, delegation and wildcard included.
    for (name, rtype) in [
        ("x.apps.example.com.", RecordType::A),
        ("host.sub.example.com.", RecordType::A),
        ("example.com.", RecordType::MX),
        ("nothing.example.com.", RecordType::A),
    ] {
        let q = query(name, rtype, Some(1232));
        let (a, b) = (primary.udp(&q), srv.udp(&q));
        assert_eq!(a.metadata.response_code, b.metadata.response_code, "{name}");
        assert_eq!(a.answers, b.answers, "{name}");
        assert_eq!(a.authorities, b.authorities, "{name}");
    }
    assert_eq!(
        a_of(srv.udp, "svc.example.com."),
        Ok(vec!["198.51.100.7".into()])
    );
    // An edit on the primary, reloaded: its NOTIFY brings the change, by IXFR from its journal.
    let edited = EXAMPLE_ZONE
        .replace("2026112701", "2026112702")
        .replace("192.0.2.11", "192.0.2.12");
    std::fs::write(dir.path().join("example.com.zone"), edited).unwrap();
    primary.server().control().reload().unwrap();
    let t0 = Instant::now();
    wait_for(
        Duration::from_secs(2),
        "the edit served after the primary's NOTIFY",
        || {
            a_of(srv.udp, "www.example.com.").is_ok_and(|a| a.contains(&"192.0.2.12".to_string()))
                && status(&srv).serial == Some(2026112702)
        },
    );
    eprintln!("edit served {:?} after the primary's reload", t0.elapsed());
    assert_eq!(status(&srv).last_result, "ixfr", "{:?}", status(&srv));
}

#[test]
fn a_reload_and_a_lost_kept_copy_keep_the_version_served() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let primary_config = dir.path().join("primary.toml");
    std::fs::write(
        &primary_config,
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[zone]]\norigin = \"example.com.\"\n\
         file = \"example.com.zone\"\n[zone.transfer]\nallow = [\"127.0.0.1/32\"]\n",
    )
    .unwrap();
    let primary = start_file(&primary_config);
    let sdir = tempfile::tempdir().unwrap();
    let config = secondary_config(sdir.path(), "127.0.0.1:0", "example.com.", &[primary.tcp]);
    let srv = start_file(&config);
    let kept = sdir.path().join("secondary/example.com.zone");
    wait_for(LIMIT, "the zone transferred and kept", || {
        a_of(srv.udp, "www.example.com.").is_ok_and(|a| a.len() == 2) && kept.is_file()
    });
    // A reload re-reads the kept copy: the same version.
    srv.server().control().reload().unwrap();
    assert_eq!(a_of(srv.udp, "www.example.com.").map(|a| a.len()), Ok(2));
    // The kept copy lost: a reload keeps serving the version held.
    std::fs::remove_file(&kept).unwrap();
    srv.server().control().reload().unwrap();
    assert_eq!(a_of(srv.udp, "www.example.com.").map(|a| a.len()), Ok(2));
    assert_eq!(srv.server().snapshot().catalog.zones().len(), 1);
}

/// A primary that answers every SOA query over UDP with `serial` and every TCP message with
/// `tcp_answer(request)`; runs until the test ends.
fn fake_primary(
    origin: &'static str,
    serial: u32,
    tcp_answer: fn(&Message) -> Vec<u8>,
) -> SocketAddr {
    use std::io::{Read, Write};
    // UDP and TCP on one port: a UDP port whose TCP twin is taken is tried again.
    let (udp, tcp) = loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(tcp) = std::net::TcpListener::bind(udp.local_addr().unwrap()) {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            r.metadata.authoritative = true;
            r.add_query(q.queries[0].clone());
            r.add_answer(hickory_proto::rr::Record::from_rdata(
                Name::from_ascii(origin).unwrap(),
                300,
                hickory_proto::rr::RData::SOA(hickory_proto::rr::rdata::SOA::new(
                    Name::from_ascii("ns1.").unwrap(),
                    Name::from_ascii("h.").unwrap(),
                    serial,
                    1,
                    1,
                    3600,
                    300,
                )),
            ));
            udp.send_to(&r.to_vec().unwrap(), from).unwrap();
        }
    });
    std::thread::spawn(move || {
        for s in tcp.incoming() {
            let Ok(mut s) = s else { continue };
            let mut len = [0u8; 2];
            if s.read_exact(&mut len).is_err() {
                continue;
            }
            let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
            if s.read_exact(&mut msg).is_err() {
                continue;
            }
            let answer = tcp_answer(&Message::from_vec(&msg).unwrap());
            let _ = s.write_all(&(answer.len() as u16).to_be_bytes());
            let _ = s.write_all(&answer);
        }
    });
    addr
}

/// The request answered REFUSED.
fn refused(q: &Message) -> Vec<u8> {
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.add_query(q.queries[0].clone());
    r.metadata.response_code = ResponseCode::Refused;
    r.to_vec().unwrap()
}

/// The request answered with a transfer that opens with the SOA and never closes it, and
/// records of another zone.
fn garbage(q: &Message) -> Vec<u8> {
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.add_query(q.queries[0].clone());
    r.add_answer(hickory_proto::rr::Record::from_rdata(
        Name::from_ascii("www.elsewhere.test.").unwrap(),
        300,
        hickory_proto::rr::RData::A("192.0.2.66".parse().unwrap()),
    ));
    r.to_vec().unwrap()
}

#[test]
fn a_refused_or_broken_transfer_leaves_the_kept_copy_serving() {
    let origin = "held.test.";
    for (answer, what) in [
        (refused as fn(&Message) -> Vec<u8>, "refused"),
        (garbage, "garbage"),
    ] {
        let primary = fake_primary(origin, 100, answer);
        let dir = tempfile::tempdir().unwrap();
        let config = secondary_config(dir.path(), "127.0.0.1:0", origin, &[primary]);
        std::fs::create_dir(dir.path().join("secondary")).unwrap();
        std::fs::write(
            dir.path().join(format!("secondary/{origin}zone")),
            zone(origin, 1, "1 1 3600 300", "192.0.2.1"),
        )
        .unwrap();
        let srv = start_file(&config);
        // Served from the kept copy at once.
        assert_eq!(
            a_of(srv.udp, &format!("www.{origin}")),
            Ok(vec!["192.0.2.1".into()])
        );
        // The primary says serial 100; its transfer fails; the kept data serves on.
        wait_for(LIMIT, "a failed check", || {
            status(&srv).last_result == "failed"
        });
        let s = status(&srv);
        assert_eq!((s.serial, s.serving), (Some(1), true), "{what}: {s:?}");
        assert!(s.detail.is_some(), "{what}: {s:?}");
        eprintln!("{what}: {}", s.detail.unwrap());
        assert_eq!(
            a_of(srv.udp, &format!("www.{origin}")),
            Ok(vec!["192.0.2.1".into()])
        );
    }
}

#[test]
fn with_a_tsig_key_the_zone_is_taken_signed_and_only_a_signed_notify_is_taken() {
    let origin = "signed-secondary.test.";
    let secret = "bWVyaWRpYW4gdHJhbnNmZXIga2V5LCAzMiBieXRlcw==";
    let port = free_port();
    let meridian: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let timers = "3600 600 86400 300";
    let Some(knot) = KnotPrimary::start_keyed(
        origin,
        &zone(origin, 1, timers, "192.0.2.1"),
        meridian,
        Some(("xfr.", secret)),
    ) else {
        return;
    };
    let keyed = |dir: &Path, secret: &str| {
        let config = secondary_config(dir, &meridian.to_string(), origin, &[knot.addr]);
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "key = \"xfr.\"\n\n[[tsig_key]]\nname = \"xfr.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{secret}\"\n"
        ));
        std::fs::write(&config, text).unwrap();
        config
    };
    // A wrong secret: Knot refuses, nothing is served, the check fails.
    let dir = tempfile::tempdir().unwrap();
    let wrong = start_file(&keyed(
        dir.path(),
        "d3Jvbmcgc2VjcmV0IG9mIDMyIGJ5dGVzLCB3cm9uZw==",
    ));
    let www = format!("www.{origin}");
    wait_for(LIMIT, "a failed check with the wrong secret", || {
        status(&wrong).last_result == "failed"
    });
    assert_eq!(a_of(wrong.udp, &www), Err(ResponseCode::Refused));
    eprintln!("wrong secret: {:?}", status(&wrong).detail);
    wrong.stop();
    // The right one: the zone comes, signed.
    let dir = tempfile::tempdir().unwrap();
    let srv = start_file(&keyed(dir.path(), secret));
    wait_for(LIMIT, "the zone transferred with TSIG", || {
        a_of(srv.udp, &www).is_ok_and(|a| a == ["192.0.2.1"]) && status(&srv).serial.is_some()
    });
    // Knot's NOTIFY is signed with the key: taken (the SOA refresh is an hour away), and the
    // edit comes by IXFR.
    knot.edit(&zone(origin, 2, timers, "192.0.2.2"));
    wait_for(
        Duration::from_secs(2),
        "the edit after Knot's signed NOTIFY",
        || a_of(srv.udp, &www).is_ok_and(|a| a == ["192.0.2.2"]) && status(&srv).serial == Some(2),
    );
    assert_eq!(status(&srv).last_result, "ixfr");
    // An unsigned NOTIFY, even from the primary's address, is NOTAUTH.
    let m = notify("127.0.0.1:0", srv.udp, origin);
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
}
