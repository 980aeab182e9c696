//! One truth for every answer path.
//!
//! The general path (`respond_general` over a catalog with nothing prepared) is the oracle; the
//! prepared responses, the general path's copies of prepared sections and a UDP worker's kept
//! responses are caches of it and must never differ from it. Worlds, names and queries are
//! generated (see `paths_support`), not listed: for every node of every zone (owners, empty
//! non-terminals, services), children, siblings and `*` names of each, and names outside,
//! across qtypes, query shapes (no EDNS, EDNS, DO, cookie, ECS v4/v6/source 0, NSID), odd
//! payload sizes, mixed case, and both transports, the bytes must be equal whichever path
//! answers, with the same random draw.
//!
//! In process, every world is checked under several health states. Over real sockets, a real
//! server is asked every case over UDP (twice: the second may come from the kept responses) and
//! TCP, before and after reloads that add, remove and rename services and zones and change
//! static records, and after health changes; its answers must be the oracle's for the
//! snapshot it serves *now*.

use std::net::{IpAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::paths_support::*;
use crate::support::{TestServer, start_file, wait_for};
use meridian::config::Config;
use meridian::dns::answer::Transport;
use meridian::dns::cache::ResponseCache;
use meridian::snapshot::Snapshot;

/// Seeds of the in-process worlds: 0..16 cover every combination of the zone features.
const WORLDS: u64 = 16;

fn compile(path: &std::path::Path) -> Snapshot {
    let config = Config::load(path).unwrap_or_else(|e| panic!("config: {e}"));
    meridian::snapshot::assemble(&config).unwrap_or_else(|e| panic!("compile: {e}"))
}

/// Health states for a world: all up, all down, and a random mix.
fn health_states(r: &mut Rng) -> Vec<Vec<Vec<bool>>> {
    let shape = World::endpoint_names();
    let fill = |f: &mut dyn FnMut() -> bool| -> Vec<Vec<bool>> {
        shape
            .iter()
            .map(|pool| pool.iter().map(|_| f()).collect())
            .collect()
    };
    let percent = 20 + r.below(60);
    let mut seed = Rng(r.next());
    vec![
        fill(&mut || false),
        fill(&mut || true),
        fill(&mut || seed.chance(percent)),
    ]
}

#[test]
fn every_answer_path_gives_the_general_paths_bytes() {
    let started = Instant::now();
    let mut cases = 0u64;
    let mut kept_hits = 0u64;
    let mut prepared_hits = 0u64;
    for seed in 0..WORLDS {
        let world = World::generate(seed, Features::from_bits(seed));
        let dir = tempfile::tempdir().unwrap();
        let path = world.write(dir.path(), "\"127.0.0.1:0\"");
        let fast = compile(&path);
        assert!(fast.catalog.prepares(), "nothing prepared");
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9));
        let names = question_names(&fast, &[]);
        for down in health_states(&mut r) {
            let fast = with_health(&fast, &|p, e| down[p][e]);
            let truth = oracle_snapshot(&path, &fast);
            let mut cache = ResponseCache::new();
            for name in &names {
                for &qtype in QTYPES {
                    // Four of the shapes, drawn: every shape meets every name over the worlds.
                    for _ in 0..4 {
                        let shape = *r.pick(SHAPES);
                        let case = Case::draw(&mut r, name, qtype, shape);
                        let pkt = case.packet();
                        let addr: IpAddr = *r.pick(&[
                            "127.0.0.1".parse().unwrap(),
                            "10.9.9.9".parse().unwrap(),
                            "::1".parse().unwrap(),
                        ]);
                        let random = r.next();
                        for t in [Transport::Udp, Transport::Tcp] {
                            let want = oracle(&truth, &pkt, t, addr, random);
                            let got = served(&fast, &pkt, t, addr, random);
                            check(&world, &case, t, "served", &want, &got);
                            cases += 1;
                            let mut q = meridian::wire::Query::default();
                            let mut out = vec![0u8; 65535];
                            if meridian::dns::answer::respond_prepared(
                                &fast,
                                &pkt,
                                t,
                                &mut q.qname,
                                &mut out,
                            )
                            .is_some()
                            {
                                prepared_hits += 1;
                            }
                        }
                        if let Some(k) = kept(&mut cache, &fast, &pkt) {
                            check(
                                &world,
                                &case,
                                Transport::Udp,
                                "kept",
                                &oracle(&truth, &pkt, Transport::Udp, addr, random),
                                &Some(k),
                            );
                            kept_hits += 1;
                        }
                    }
                }
            }
        }
    }
    // The comparison is between different paths only if the fast ones were really taken.
    assert!(
        prepared_hits > cases / 20,
        "prepared path taken {prepared_hits} of {cases} times"
    );
    assert!(
        kept_hits > cases / 40,
        "kept responses hit {kept_hits} times of {cases}"
    );
    report(&format!(
        "answer paths: {cases} cases in {WORLDS} generated worlds agree with the general path \
         ({prepared_hits} took a prepared response, {kept_hits} came from kept responses) in {:.1?}",
        started.elapsed()
    ));
}

fn check(world: &World, case: &Case, t: Transport, path: &str, want: &Reply, got: &Reply) {
    if want == got {
        return;
    }
    let show = |r: &Reply| r.as_deref().map_or("(no response)".into(), hex);
    panic!(
        "{path} path differs from the general path in world {} ({:?}) for {} type {} {:?} \
         payload {} over {t:?}\nquery:\n{}\ngeneral:\n{}\n{path}:\n{}",
        world.origin,
        world.features,
        text(&case.name),
        case.qtype,
        case.shape,
        case.payload,
        hex(&case.packet()),
        show(want),
        show(got)
    );
}

/// Clients that ask a running server: one UDP socket, one TCP connection (opened again when
/// the server closes it after `[dns] tcp_max_queries`).
struct Client {
    udp: UdpSocket,
    tcp: TcpStream,
    tcp_addr: std::net::SocketAddr,
    /// Queries asked on the current TCP connection.
    on_tcp: u32,
}

/// The server's `tcp_max_queries` (the default).
const TCP_MAX_QUERIES: u32 = 1000;

impl Client {
    fn new(srv: &TestServer) -> Client {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.connect(srv.udp).unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Client {
            udp,
            tcp: Self::connect(srv.tcp),
            tcp_addr: srv.tcp,
            on_tcp: 0,
        }
    }

    fn connect(addr: std::net::SocketAddr) -> TcpStream {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        tcp
    }

    fn ask(&mut self, t: Transport, pkt: &[u8]) -> Reply {
        use std::io::{Read, Write};
        match t {
            Transport::Udp => {
                self.udp.send(pkt).unwrap();
                let mut buf = vec![0u8; 65535];
                loop {
                    let n = self.udp.recv(&mut buf).ok()?;
                    if buf[..2] == pkt[..2] {
                        return Some(buf[..n].to_vec()); // else a late reply to an earlier query
                    }
                }
            }
            Transport::Tcp => {
                if self.on_tcp == TCP_MAX_QUERIES {
                    self.tcp = Self::connect(self.tcp_addr);
                    self.on_tcp = 0;
                }
                self.on_tcp += 1;
                let mut framed = (pkt.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(pkt);
                self.tcp.write_all(&framed).unwrap();
                let mut len = [0u8; 2];
                self.tcp.read_exact(&mut len).ok()?;
                let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                self.tcp.read_exact(&mut buf).ok()?;
                Some(buf)
            }
        }
    }
}

/// Randoms the oracle tries for a served answer: the server draws its own, so a served answer
/// is right when it is the oracle's for one of them, in any order of its answer records. Here
/// an answer holds at most 3 of at most 5 endpoints weighted 1 to 3: each possible set has a
/// chance of well over 1/1000 per draw, so 8192 draws miss one with odds below 1 in 3,000.
/// The search stops at the first draw that agrees (most agree at once).
fn draws() -> Vec<u64> {
    let mut r = Rng(0xD1CE);
    (0..8192).map(|_| r.next()).collect()
}

/// Ask `srv` every case and hold each answer to the oracle for the snapshot it serves now.
/// Returns the number of exchanges.
fn served_agrees(
    srv: &TestServer,
    path: &std::path::Path,
    world: &World,
    names: &[Vec<u8>],
    r: &mut Rng,
    phase: &str,
) -> u64 {
    let live = srv.server().snapshot();
    let oracle_snap = oracle_snapshot(path, &live);
    let draws = draws();
    let mut client = Client::new(srv);
    let addr: IpAddr = "127.0.0.1".parse().unwrap();
    let mut exchanges = 0;
    for name in names {
        for &qtype in &[1u16, 28, 5, 15, 16, 255, 43, 666] {
            for _ in 0..3 {
                let shape = *r.pick(SHAPES);
                let case = Case::draw(r, name, qtype, shape);
                let pkt = case.packet();
                for t in [Transport::Udp, Transport::Udp, Transport::Tcp] {
                    let got = client.ask(t, &pkt);
                    exchanges += 1;
                    let got_sorted = got.as_deref().map(answers_sorted);
                    let agrees = |random: u64| {
                        oracle(&oracle_snap, &pkt, t, addr, random).map(|m| answers_sorted(&m))
                            == got_sorted
                    };
                    if !draws.iter().any(|&d| agrees(d)) {
                        let want = oracle(&oracle_snap, &pkt, t, addr, draws[0]);
                        check(world, &case, t, &format!("served ({phase})"), &want, &got);
                    }
                }
            }
        }
    }
    exchanges
}

/// The world of the first reproduction: no wildcard, no delegation.
fn plain_world() -> World {
    World::generate(100, Features::from_bits(0))
}

#[test]
fn served_answers_agree_through_reloads_and_health_changes() {
    let started = Instant::now();
    let mut exchanges = 0;
    for mut world in [plain_world(), World::generate(101, Features::from_bits(15))] {
        let dir = tempfile::tempdir().unwrap();
        world.payload = 1232;
        let path = world.write(dir.path(), "\"127.0.0.1:0\"");
        let srv = start_file(&path);
        let mut r = Rng(7);
        let before = question_names(&srv.server().snapshot(), &[]);
        exchanges += served_agrees(&srv, &path, &world, &before, &mut r, "start");

        // Reload: a service removed, one renamed, one added where the kept responses hold an
        // NXDOMAIN, a zone added and the child zone removed, a static record changed.
        let mut next = world.clone();
        next.services
            .retain(|s| s.name != "svc-a" && s.name != "svc.kid");
        for s in &mut next.services {
            if s.name == "svc-b.newent" {
                s.name = "svc-b2.newent".into();
            }
        }
        let body = world.services[0].body.clone();
        next.services.push(ServiceSpec {
            name: "nothere".into(),
            body: body.clone(),
        });
        next.zones.truncate(1);
        next.zones[0].1 = next.zones[0]
            .1
            .replace("www 300 A 192.0.2.100", "www 300 A 192.0.2.150");
        next.zones.push((
            "new.example.".into(),
            format!(
                "$ORIGIN new.example.\n@ 300 SOA ns1 h 1 2 3 4 60\n@ 300 NS ns1\n\
                 ns1 300 A 192.0.2.9\ngslb 300 CNAME nothere.{}\n",
                world.origin
            ),
        ));
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "zone") {
                std::fs::remove_file(f).unwrap();
            }
        }
        next.write(dir.path(), "\"127.0.0.1:0\"");
        let old = srv.server().snapshot();
        srv.server()
            .control()
            .reload()
            .unwrap_or_else(|e| panic!("reload: {e}"));
        assert!(!Arc::ptr_eq(&old.catalog, &srv.server().snapshot().catalog));
        let mut names = question_names(&srv.server().snapshot(), &[]);
        names.extend(before.iter().cloned());
        names.sort();
        names.dedup();
        exchanges += served_agrees(&srv, &path, &next, &names, &mut r, "after reload");

        // Health: drain every endpoint but one of each pool, then every endpoint.
        let endpoints = World::endpoint_names();
        for (round, all) in [(1, false), (2, true)] {
            let tables = srv.server().snapshot().tables.clone().unwrap();
            for pool in &endpoints {
                for (i, e) in pool.iter().enumerate() {
                    if all || i > 0 {
                        srv.server()
                            .monitor()
                            .set_override(
                                e,
                                Some(meridian::health::state::OverrideKind::Drain),
                                None,
                            )
                            .unwrap();
                    }
                }
            }
            wait_for(
                Duration::from_secs(10),
                "tables rebuilt after drains",
                || !Arc::ptr_eq(&tables, srv.server().snapshot().tables.as_ref().unwrap()),
            );
            // Every drain is in by now: the rebuild waits 20 ms for more changes, then reads all.
            std::thread::sleep(Duration::from_millis(300));
            exchanges += served_agrees(
                &srv,
                &path,
                &next,
                &names,
                &mut r,
                &format!("after health change {round}"),
            );
        }
    }
    report(&format!(
        "answer paths: {exchanges} exchanges with a running server agree with the general path, \
         across reloads and health changes, in {:.1?}",
        started.elapsed()
    ));
}

/// The first reproduction: a zone with only SOA, NS and two A records, a service with
/// one endpoint. Every query shape, over UDP and TCP, gets the endpoint (before the fix, every
/// shape but ECS and cookie queries got NXDOMAIN from the prepared path).
#[test]
fn a_service_in_a_zone_without_wildcards_or_cuts_answers_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plain.zone"),
        "$ORIGIN plain.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n\
         @ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n",
    )
    .unwrap();
    let path = dir.path().join("meridian.toml");
    std::fs::write(
        &path,
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\
         [[zone]]\norigin = \"plain.test.\"\nfile = \"plain.zone\"\n\
         [[region]]\nname = \"eu\"\nlocation = [50.1, 8.7]\n\
         [[pool]]\nname = \"eu\"\nregion = \"eu\"\n\
         [[pool.endpoint]]\nname = \"eu-1\"\naddress = \"192.0.2.10\"\n\
         [[service]]\nname = \"svc.plain.test.\"\npolicy = \"failover\"\npools = [\"eu\"]\n",
    )
    .unwrap();
    let srv = start_file(&path);
    let mut client = Client::new(&srv);
    let mut r = Rng(1);
    for shape in SHAPES {
        for t in [Transport::Udp, Transport::Udp, Transport::Tcp] {
            let mut case = Case::draw(&mut r, &wire("svc.plain.test."), 1, *shape);
            case.payload = 1232;
            let reply = client.ask(t, &case.packet()).expect("an answer");
            let rcode = reply[3] & 0xF;
            let answers = u16::from_be_bytes([reply[6], reply[7]]);
            assert_eq!(
                (rcode, answers),
                (0, 1),
                "{shape:?} over {t:?}: rcode {rcode}, {answers} answers\n{}",
                hex(&reply)
            );
            assert!(
                reply.windows(4).any(|w| w == [192, 0, 2, 10]),
                "{shape:?} over {t:?}: the endpoint's address is missing\n{}",
                hex(&reply)
            );
        }
    }
}

/// NSID (RFC 5001): with `[node] nsid = true`, a query that asks gets `[node] name`, on every
/// path and transport; a query that does not ask gets no NSID; with `nsid` off, nobody does.
#[test]
fn nsid_names_the_instance_only_when_asked_and_enabled() {
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    for enabled in [true, false] {
        let mut world = plain_world();
        world.nsid = enabled;
        let dir = tempfile::tempdir().unwrap();
        let path = world.write(dir.path(), "\"127.0.0.1:0\"");
        let srv = start_file(&path);
        let mut client = Client::new(&srv);
        let mut r = Rng(3);
        let names = [
            "www.w100.test.",
            "svc-a.w100.test.",
            "nothere.w100.test.",
            "example.org.",
        ];
        for name in names {
            for shape in [Shape::Nsid, Shape::Edns, Shape::Cookie] {
                for t in [Transport::Udp, Transport::Tcp] {
                    let case = Case::draw(&mut r, &wire(name), 1, shape);
                    let reply = client.ask(t, &case.packet()).expect("an answer");
                    let msg = Message::from_vec(&reply).expect("a valid message");
                    let nsid = msg
                        .edns
                        .as_ref()
                        .expect("an OPT record")
                        .option(EdnsCode::NSID)
                        .cloned();
                    let want = (enabled && shape == Shape::Nsid)
                        .then(|| format!("node-{}", world.origin).into_bytes());
                    let got = nsid.map(|o| match o {
                        EdnsOption::NSID(p) => p.as_ref().to_vec(),
                        other => panic!("NSID parsed as {other:?}"),
                    });
                    assert_eq!(got, want, "{name} {shape:?} over {t:?}, nsid = {enabled}");
                }
            }
        }
    }
}

/// A service's name exists in its zone: an ancestor that holds nothing is NODATA (not
/// NXDOMAIN, RFC 8020), a wildcard above the service does not cover names below it (RFC 4592),
/// and a CNAME onto the service ends there (NOERROR, the CNAME alone).
#[test]
fn service_names_exist_in_their_zone() {
    let world = World::generate(102, Features::from_bits(1)); // with `*.wild`
    let dir = tempfile::tempdir().unwrap();
    let path = world.write(dir.path(), "\"127.0.0.1:0\"");
    let srv = start_file(&path);
    let mut client = Client::new(&srv);
    let mut r = Rng(5);
    let o = &world.origin;
    // (name, qtype, rcode, answers, authority records)
    let expect: &[(String, u16, u8, u16, u16)] = &[
        (format!("newent.{o}"), 1, 0, 0, 1), // above svc-b.newent: an empty non-terminal
        (format!("x.svc-b.newent.{o}"), 1, 3, 0, 1),
        (format!("x.svc-w.wild.{o}"), 1, 3, 0, 1), // not the wildcard's: svc-w.wild exists
        (format!("y.wild.{o}"), 1, 0, 1, 0),       // the wildcard still answers beside it
        (format!("csvc.{o}"), 1, 0, 1, 0),         // CNAME onto svc-a: the CNAME alone
        (format!("cnewent.{o}"), 28, 0, 1, 0),
    ];
    for (name, qtype, rcode, an, ns) in expect {
        for shape in [Shape::NoEdns, Shape::Edns, Shape::EcsV4] {
            for t in [Transport::Udp, Transport::Tcp] {
                let case = Case::draw(&mut r, &wire(name), *qtype, shape);
                let reply = client.ask(t, &case.packet()).expect("an answer");
                let got = (
                    reply[3] & 0xF,
                    u16::from_be_bytes([reply[6], reply[7]]),
                    u16::from_be_bytes([reply[8], reply[9]]),
                );
                assert_eq!(
                    got,
                    (*rcode, *an, *ns),
                    "{name} type {qtype} {shape:?} over {t:?}: (rcode, answers, authority)\n{}",
                    hex(&reply)
                );
            }
        }
    }
}
