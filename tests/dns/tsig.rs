//! TSIG (RFC 8945) on zone transfers and SOA queries, against a real server on loopback: kdig,
//! dig and Meridian's own client side (`wire::tsig::sign_query` and `Verifier`) transfer with
//! the key, every message verified; a wrong secret is answered NOTAUTH/BADSIG, an unknown key
//! NOTAUTH/BADKEY, a stale time NOTAUTH/BADTIME (signed); an unsigned request from outside
//! `allow` is REFUSED; a Knot secondary with the key transfers and refreshes the zone, one with
//! a wrong secret never gets it; configuration errors name their place.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use meridian::config::Config;
use meridian::wire::tsig::{Algorithm, Key, TsigError, Verifier, sign_query};

use crate::support::knot::{Knot, KnotKey, knotd};
use crate::support::*;

/// base64 of "meridian transfer key, 32 bytes" (32 bytes).
const SECRET: &str = "bWVyaWRpYW4gdHJhbnNmZXIga2V5LCAzMiBieXRlcw==";
/// base64 of another 32 bytes.
const WRONG: &str = "c29tZXRoaW5nIGVsc2UgZW50aXJlbHksIDMyIGJ5dGU=";
/// base64 of a 64-byte secret for the hmac-sha512 key.
const SECRET_512: &str =
    "c2l4dHktZm91ciBieXRlcyBvZiBzZWNyZXQgZm9yIHRoZSBobWFjLXNoYTUxMiBrZXkgb2YgbWVyaWRpYW4hIQ==";

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A zone of a few thousand records: its transfer takes several messages.
fn zone(serial: u32) -> String {
    let mut z = format!(
        "$ORIGIN signed.test.\n$TTL 600\n@ IN SOA ns1 hostmaster {serial} 1 1 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
    );
    for i in 0..3000u32 {
        z.push_str(&format!(
            "h{i} IN TXT \"host number {i} of the signed zone\"\n"
        ));
    }
    z
}

/// Records in `zone(_)` (the SOA once).
const RECORDS: usize = 3 + 3000;

/// A server for `signed.test.` with the keys `xfr.` (hmac-sha256), `other.` (hmac-sha512, not
/// in the zone's keys) and the zone's `[zone.transfer]` body `transfer`.
fn serve(transfer: &str, serial: u32) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z.zone"), zone(serial)).unwrap();
    std::fs::write(dir.path().join("other.key"), format!("{SECRET_512}\n")).unwrap();
    let toml = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
         [[tsig_key]]\nname = \"xfr.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n\n\
         [[tsig_key]]\nname = \"other.\"\nalgorithm = \"hmac-sha512\"\nsecret_file = \"other.key\"\n\n\
         [[zone]]\norigin = \"signed.test.\"\nfile = \"z.zone\"\n[zone.transfer]\n{transfer}\n"
    );
    let path = dir.path().join("meridian.toml");
    std::fs::write(&path, toml).unwrap();
    let mut s = start_file(&path);
    // Keep the folder (the zone file is reloaded from it) with the server.
    s.dir = dir;
    s
}

fn xfr_key() -> Key {
    Key::new("xfr.", Algorithm::HmacSha256, &b64(SECRET)).unwrap()
}

/// An AXFR query for signed.test., signed with `key` at `at`: the bytes and the MAC.
fn signed_axfr(key: &Key, at: u64) -> (Vec<u8>, meridian::wire::tsig::Mac) {
    let mut q = query("signed.test.", RecordType::AXFR, None)
        .to_vec()
        .unwrap();
    let mac = sign_query(key, &mut q, at);
    (q, mac)
}

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&format!("{from}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Send `q` on `s` and read messages until the transfer's closing SOA (or the first message
/// when it is an error): every message, raw.
fn exchange(s: &mut TcpStream, q: &[u8]) -> Vec<Vec<u8>> {
    write_framed(s, q);
    let mut out = Vec::new();
    let mut soas = 0;
    while let Some(bytes) = read_framed(s) {
        let m = Message::from_vec(&bytes).unwrap();
        soas += m
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        let done = m.metadata.response_code != ResponseCode::NoError || soas >= 2;
        out.push(bytes);
        if done {
            break;
        }
    }
    out
}

fn rcode(msg: &[u8]) -> u8 {
    msg[3] & 0xF
}

#[test]
fn a_zone_with_only_keys_transfers_to_a_signed_request_from_any_loopback_source() {
    let s = serve("keys = [\"xfr.\"]", 1);
    let key = xfr_key();
    for from in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        let (q, mac) = signed_axfr(&key, now());
        let messages = exchange(&mut connect_from(from, s.tcp), &q);
        assert!(messages.len() > 3, "{} messages", messages.len());
        // Every message signed, each over the previous one's MAC.
        let mut v = Verifier::new(&key, mac);
        let mut records = 0;
        for m in &messages {
            assert_eq!(rcode(m), 0);
            let len = v.verify(m, now()).unwrap();
            assert!(len < m.len(), "message not signed");
            records += Message::from_vec(m).unwrap().answers.len();
        }
        v.finish().unwrap();
        assert_eq!(records, RECORDS + 1);
        // Unsigned from the same source: REFUSED (no `allow`).
        let plain = query("signed.test.", RecordType::AXFR, None)
            .to_vec()
            .unwrap();
        let m = exchange(&mut connect_from(from, s.tcp), &plain);
        assert_eq!(rcode(&m[0]), 5, "REFUSED");
    }
}

/// Run a stock tool's AXFR of signed.test. with `-y`; its exit status and output.
fn stock(tool: &str, port: u16, y: &str, extra: &[&str]) -> Option<(bool, String)> {
    let port = port.to_string();
    let mut args = vec!["-y", y, "-t", "AXFR", "@127.0.0.1", "-p", &port];
    args.extend_from_slice(extra);
    args.push("signed.test.");
    let out = std::process::Command::new(tool).args(args).output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), text))
}

fn records(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .filter(|l| !l.contains("TSIG"))
        .count()
}

#[test]
fn kdig_and_dig_transfer_with_the_key_and_verify_every_message() {
    let s = serve("keys = [\"xfr.\", \"other.\"]", 1);
    let mut ran = 0;
    for (tool, y) in [
        ("kdig", format!("hmac-sha256:xfr.:{SECRET}")),
        ("dig", format!("hmac-sha512:other.:{SECRET_512}")),
    ] {
        let Some((ok, text)) = stock(tool, s.tcp.port(), &y, &[]) else {
            eprintln!("{tool} is not installed: skipped");
            continue;
        };
        ran += 1;
        assert!(ok, "{tool}: {text}");
        for bad in ["failed", "BADSIG", "BADKEY", "tsig verify", "NOTAUTH"] {
            assert!(!text.contains(bad), "{tool}: {bad}: {text}");
        }
        assert_eq!(records(&text), RECORDS + 1, "{tool}: {text}");
    }
    assert!(
        ran > 0,
        "neither kdig nor dig is installed (.ci/run installs them)"
    );
    // kdig from another loopback source too (no `allow`).
    if let Some((ok, text)) = stock(
        "kdig",
        s.tcp.port(),
        &format!("hmac-sha256:xfr.:{SECRET}"),
        &["-b", "127.0.0.9"],
    ) {
        assert!(ok, "{text}");
        assert_eq!(records(&text), RECORDS + 1, "{text}");
    }
}

#[test]
fn a_wrong_secret_an_unknown_key_a_stale_time_and_an_unsigned_stranger_are_refused() {
    let s = serve("allow = [\"192.0.2.0/24\"]\nkeys = [\"xfr.\"]", 1);
    let ask = |q: &[u8]| exchange(&mut connect_from("127.0.0.1", s.tcp), q);
    let key = xfr_key();
    // A wrong secret: NOTAUTH, BADSIG, an empty MAC.
    let wrong = Key::new("xfr.", Algorithm::HmacSha256, &b64(WRONG)).unwrap();
    let (q, mac) = signed_axfr(&wrong, now());
    let m = ask(&q);
    assert_eq!(m.len(), 1);
    assert_eq!(rcode(&m[0]), 9, "NOTAUTH");
    assert_eq!(
        Verifier::new(&key, mac).verify(&m[0], now()),
        Err(TsigError::Peer(16))
    );
    // An unknown key: BADKEY.
    let unknown = Key::new("nobody.", Algorithm::HmacSha256, &b64(SECRET)).unwrap();
    let (q, mac) = signed_axfr(&unknown, now());
    let m = ask(&q);
    assert_eq!(rcode(&m[0]), 9);
    assert_eq!(
        Verifier::new(&unknown, mac).verify(&m[0], now()),
        Err(TsigError::Peer(17))
    );
    // A clock 20 minutes off: BADTIME, signed, the server's time in Other Data.
    let (q, mac) = signed_axfr(&key, now() - 1200);
    let m = ask(&q);
    assert_eq!(rcode(&m[0]), 9);
    assert_eq!(
        Verifier::new(&key, mac).verify(&m[0], now()),
        Err(TsigError::Peer(18))
    );
    // Unsigned, from outside `allow`: REFUSED.
    let plain = query("signed.test.", RecordType::AXFR, None)
        .to_vec()
        .unwrap();
    assert_eq!(rcode(&ask(&plain)[0]), 5);
    // A good key that is not one of the zone's: REFUSED, and the answer is signed.
    let other = Key::new("other.", Algorithm::HmacSha512, &b64(SECRET_512)).unwrap();
    let (q, mac) = signed_axfr(&other, now());
    let m = ask(&q);
    assert_eq!(rcode(&m[0]), 5);
    let mut v = Verifier::new(&other, mac);
    assert!(v.verify(&m[0], now()).unwrap() < m[0].len());
    // kdig with the wrong secret sees the refusal.
    let y = format!("hmac-sha256:xfr.:{WRONG}");
    if let Some((_, text)) = stock("kdig", s.tcp.port(), &y, &[]) {
        assert!(
            text.contains("NOTAUTH") || text.contains("BADSIG"),
            "{text}"
        );
        assert_eq!(records(&text), 0, "{text}");
    }
    // Every error is counted.
    let metrics = meridian::metrics::render();
    for e in ["badsig", "badkey", "badtime"] {
        let line = format!("meridian_tsig_errors_total{{error=\"{e}\"}}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("result=\"badtsig\""), "{metrics}");
}

#[test]
fn signed_soa_queries_get_signed_answers_over_udp_and_tcp() {
    let s = serve("keys = [\"xfr.\"]", 7);
    let key = xfr_key();
    for payload in [None, Some(1232)] {
        let mut q = query("signed.test.", RecordType::SOA, payload)
            .to_vec()
            .unwrap();
        let mac = sign_query(&key, &mut q, now());
        for answer in [udp_raw(s.udp, &q).unwrap(), tcp_raw(s.tcp, &q)] {
            assert_eq!(rcode(&answer), 0);
            let len = Verifier::new(&key, mac).verify(&answer, now()).unwrap();
            assert!(len < answer.len(), "answer not signed");
            let m = Message::from_vec(&answer).unwrap();
            assert_eq!(m.answers.len(), 1);
            assert_eq!(m.edns.is_some(), payload.is_some());
        }
    }
    // A name outside the zone, signed: REFUSED, signed too.
    let mut q = query("example.org.", RecordType::SOA, None)
        .to_vec()
        .unwrap();
    let mac = sign_query(&key, &mut q, now());
    let answer = udp_raw(s.udp, &q).unwrap();
    assert_eq!(rcode(&answer), 5);
    Verifier::new(&key, mac).verify(&answer, now()).unwrap();
    // An unknown key: NOTAUTH, BADKEY, over both transports.
    let unknown = Key::new("nobody.", Algorithm::HmacSha256, &b64(SECRET)).unwrap();
    let mut q = query("signed.test.", RecordType::SOA, None)
        .to_vec()
        .unwrap();
    let mac = sign_query(&unknown, &mut q, now());
    for answer in [udp_raw(s.udp, &q).unwrap(), tcp_raw(s.tcp, &q)] {
        assert_eq!(rcode(&answer), 9);
        assert_eq!(
            Verifier::new(&unknown, mac).verify(&answer, now()),
            Err(TsigError::Peer(17))
        );
    }
    // kdig checks the signed answer itself.
    let port = s.udp.port().to_string();
    let y = format!("hmac-sha256:xfr.:{SECRET}");
    let args = ["-y", &y, "@127.0.0.1", "-p", &port, "signed.test.", "SOA"];
    if let Ok(out) = std::process::Command::new("kdig").args(args).output() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("NOERROR") && !text.contains("WARNING"),
            "{text}"
        );
    }
}

#[test]
fn a_knot_secondary_with_the_key_transfers_and_refreshes_and_one_with_a_wrong_secret_never_does() {
    let Some(knotd) = knotd() else {
        eprintln!("knotd is not installed: skipped");
        return;
    };
    // Keys only: the source does not matter, the key does.
    let s = serve("keys = [\"xfr.\"]", 1);
    let good = KnotKey {
        name: "xfr.",
        algorithm: "hmac-sha256",
        secret: SECRET,
    };
    let bad = KnotKey {
        secret: WRONG,
        ..good
    };
    let zones = [("signed.test.", s.tcp.port())];
    let knot = Knot::secondary(&knotd, &zones, Some(good));
    let refused = Knot::secondary(&knotd, &zones, Some(bad));
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(20), "Knot to serve serial 1", || {
            knot.serial("signed.test.") == Some(1)
        })
    }));
    assert!(served.is_ok(), "knotd log:\n{}", knot.log());
    let m = knot.ask("h2999.signed.test.", RecordType::TXT).unwrap();
    assert_eq!(m.answers.len(), 1, "{m:?}");
    // A new serial: Knot's signed SOA query (refresh 1 s in the SOA) finds it and transfers.
    std::fs::write(s.dir.path().join("z.zone"), zone(2)).unwrap();
    let (config, snapshot) = meridian::snapshot::load(&s.config_path).unwrap();
    s.server().reload(&config, snapshot);
    let refreshed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(20), "Knot to serve serial 2", || {
            knot.serial("signed.test.") == Some(2)
        })
    }));
    assert!(refreshed.is_ok(), "knotd log:\n{}", knot.log());
    // It learnt of serial 2 by its signed SOA query (it rejects an unsigned answer).
    let log = knot.log();
    assert!(log.contains("remote serial 2, zone is outdated"), "{log}");
    // The one with the wrong secret has nothing, and says why.
    assert!(
        refused.serial("signed.test.").is_none(),
        "{}",
        refused.log()
    );
    let said = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            Duration::from_secs(10),
            "the refused Knot to log why",
            || refused.log().contains("failed to verify TSIG"),
        )
    }));
    assert!(said.is_ok(), "{}", refused.log());
    assert!(refused.serial("signed.test.").is_none());
}

#[test]
fn tsig_configuration_errors_name_their_place_and_never_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z.zone"), zone(1)).unwrap();
    let path = dir.path().join("meridian.toml");
    let zone = "[[zone]]\norigin = \"signed.test.\"\nfile = \"z.zone\"\n[zone.transfer]\n";
    let parse = |text: &str| Config::parse(&path, text).map_err(|e| e.to_string());
    let at = |line: usize, col: usize| format!("{}:{line}:{col}: ", path.display());
    let key = |body: &str| format!("[[tsig_key]]\nname = \"xfr.\"\n{body}\n");
    // Unknown algorithm; bad base64 (the secret not quoted); no secret; two secrets.
    let e = parse(
        &(key("algorithm = \"hmac-md5\"\nsecret = \"c2VjcmV0\"") + zone + "keys = [\"xfr.\"]"),
    )
    .unwrap_err();
    assert!(
        e.contains(&format!(
            "{}tsig_key[0].algorithm: \"hmac-md5\" is not one of",
            at(3, 13)
        )),
        "{e}"
    );
    let e = parse(
        &(key("algorithm = \"hmac-sha256\"\nsecret = \"sekrit!!notb64\"")
            + zone
            + "keys = [\"xfr.\"]"),
    )
    .unwrap_err();
    assert!(
        e.contains(&format!(
            "{}tsig_key[0].secret: the secret is not valid base64",
            at(4, 10)
        )),
        "{e}"
    );
    assert!(!e.contains("sekrit"), "{e}");
    let e = parse(&(key("algorithm = \"hmac-sha256\"") + zone + "keys = [\"xfr.\"]")).unwrap_err();
    assert!(
        e.contains(&format!(
            "{}tsig_key[0]: one of secret, secret_env or secret_file is needed",
            at(2, 8)
        )),
        "{e}"
    );
    let e = parse(
        &(key(&format!(
            "algorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\nsecret_env = \"X\""
        )) + zone
            + "keys = [\"xfr.\"]"),
    )
    .unwrap_err();
    assert!(
        e.contains(&format!(
            "{}tsig_key[0].secret_env: set only one of",
            at(5, 14)
        )),
        "{e}"
    );
    assert!(!e.contains(SECRET), "{e}");
    // A variable that is not set; a file that is not there.
    let e = parse(
        &(key("algorithm = \"hmac-sha256\"\nsecret_env = \"MERIDIAN_TEST_TSIG_UNSET\"")
            + zone
            + "keys = [\"xfr.\"]"),
    )
    .unwrap_err();
    assert!(
        e.contains(&format!(
            "{}tsig_key[0].secret_env: environment variable MERIDIAN_TEST_TSIG_UNSET is not set",
            at(4, 14)
        )),
        "{e}"
    );
    let e = parse(
        &(key("algorithm = \"hmac-sha256\"\nsecret_file = \"missing.key\"")
            + zone
            + "keys = [\"xfr.\"]"),
    )
    .unwrap_err();
    assert!(
        e.contains(&format!(
            "{}tsig_key[0].secret_file: cannot read",
            at(4, 15)
        )),
        "{e}"
    );
    // A duplicate name (case and trailing dot aside); a zone naming an unknown key.
    let good = key(&format!(
        "algorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\""
    ));
    let twice = format!(
        "{good}[[tsig_key]]\nname = \"XFR\"\nalgorithm = \"hmac-sha512\"\nsecret = \"{SECRET}\"\n"
    );
    let e = parse(&(twice + zone + "keys = [\"xfr.\"]")).unwrap_err();
    assert!(
        e.contains(&format!(
            "{}tsig_key[1].name: key \"XFR\" is defined twice",
            at(6, 8)
        )),
        "{e}"
    );
    let e = parse(&(good.clone() + zone + "keys = [\"xfr.\", \"nokey.\"]")).unwrap_err();
    assert!(
        e.contains(&format!(
            "{}zone[0].transfer.keys[1]: key \"nokey.\" is not defined",
            at(9, 17)
        )),
        "{e}"
    );
    // Neither allow nor keys.
    let e = parse(&(good.clone() + zone)).unwrap_err();
    assert!(e.contains("zone[0].transfer.allow: at least one"), "{e}");
    // Valid: the keys are on the Config and the zone; the secret is in no Debug output.
    let c = Config::parse(&path, &(good + zone + "keys = [\"xfr\"]")).unwrap();
    assert_eq!(c.tsig_keys.len(), 1);
    assert_eq!(c.zones[0].transfer_keys, vec![0]);
    assert_eq!(c.zones[0].transfer.as_deref(), Some(&[][..]));
    let shown = format!("{c:?}");
    assert!(!shown.contains(SECRET) && shown.contains("xfr."), "{shown}");
    // secret_env and secret_file read the secret.
    let file = dir.path().join("k.key");
    std::fs::write(&file, SECRET).unwrap();
    let text = format!(
        "[[tsig_key]]\nname = \"f.\"\nalgorithm = \"hmac-sha1\"\nsecret_file = \"k.key\"\n{zone}keys = [\"f.\"]\n"
    );
    assert_eq!(Config::parse(&path, &text).unwrap().tsig_keys.len(), 1);
}
