//! TSIG against messages signed by real implementations (kdig, dig, knotd), and round trips.

use super::*;

/// The secret of every vector: base64 "bWVyaWRpYW4tdHNpZy10ZXN0LXZlY3Rvci1zZWNyZXQ=".
const SECRET: &[u8] = b"meridian-tsig-test-vector-secret";

/// An SOA query for example.com., captured by a UDP listener on loopback from
/// `kdig -y hmac-sha256:xfr.example.:bWVyaWRpYW4tdHNpZy10ZXN0LXZlY3Rvci1zZWNyZXQ= example.com. SOA`
/// (Knot DNS 3.2.6), signed at 1796290369.
const KDIG_SHA256: &str = "10bf01200001000000000001076578616d706c6503636f6d000006000103786672076578616d706c650000fa00ff00000000003d0b686d61632d7368613235360000006b113741012c00205573326d30f111ffe66a9a17e10a94c093532e93c6d7f9a05bd640bf1c9bb4ef10bf00000000";
const KDIG_TIME: u64 = 0x6b11_3741;

/// The same query from BIND's `dig -y hmac-sha512:Xfr.Example.:(the secret)` (BIND 9.18), with
/// an OPT (and a cookie) before the TSIG; dig sent the key name lowercased.
const DIG_SHA512: &str = "560301200001000000000002076578616d706c6503636f6d000006000100002904d000000000000c000a0008a6081f9f06f4421603786672076578616d706c650000fa00ff00000000005d0b686d61632d7368613531320000006b113743012c00409380fb1670b5fa61a30471a240d08ccba6054da3b6e83ccbe4620b366ba965128d741aa18605cb97a98f240c1f9fcb103cb7c04dc2d62fde97dc9981e976d3a3560300000000";
const DIG_TIME: u64 = 0x6b11_3743;

/// An AXFR through a TCP proxy on loopback between kdig (the query, signed with the hmac-sha256
/// key above) and knotd 3.2.6 as the primary of a 1,505-record zone (two signed responses):
/// each message with its 2-byte length, the query first.
const KNOT_AXFR: &[u8] = include_bytes!("knot-axfr.bin");

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key(alg: Algorithm) -> Key {
    Key::new("xfr.example.", alg, SECRET).unwrap()
}

fn ring(alg: Algorithm) -> KeyRing {
    KeyRing::new(vec![Key::new("other.", alg, b"x").unwrap(), key(alg)])
}

fn frames(mut b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while b.len() >= 2 {
        let n = u16::from_be_bytes([b[0], b[1]]) as usize;
        out.push(&b[2..2 + n]);
        b = &b[2 + n..];
    }
    out
}

#[test]
fn requests_signed_by_kdig_and_dig_verify() {
    for (msg, alg, time) in [
        (hex(KDIG_SHA256), Algorithm::HmacSha256, KDIG_TIME),
        (hex(DIG_SHA512), Algorithm::HmacSha512, DIG_TIME),
    ] {
        let signed = verify_request(&msg, &ring(alg), time + 10)
            .unwrap()
            .unwrap();
        assert_eq!(signed.key, 1);
        assert_eq!(signed.time_signed, time);
        assert_eq!(signed.fudge, 300);
        assert_eq!(signed.mac.as_bytes().len(), alg.mac_len());
        // The ordinary parser reads the message as it is, and cut to its length.
        let mut q = crate::wire::Query::default();
        crate::wire::parse_query(&msg, &mut q).unwrap();
        let mut cut = msg.clone();
        strip(&mut cut, &signed);
        assert_eq!(cut.len(), signed.len);
        crate::wire::parse_query(&cut, &mut q).unwrap();
        assert_eq!(q.qtype, crate::wire::TYPE_SOA);
    }
}

#[test]
fn a_tampered_byte_a_wrong_secret_an_unknown_key_and_a_wrong_time_fail() {
    let msg = hex(KDIG_SHA256);
    let keys = ring(Algorithm::HmacSha256);
    let error = |m: &[u8], keys: &KeyRing, now| verify_request(m, keys, now).unwrap_err().error;
    for i in [2, 3, 13, 22, 27] {
        let mut bad = msg.clone();
        bad[i] ^= 1;
        assert_eq!(error(&bad, &keys, KDIG_TIME), TsigError::BadSig, "byte {i}");
    }
    let mut bad = msg.clone();
    let last_mac_byte = msg.len() - 7;
    bad[last_mac_byte] ^= 0x80;
    assert_eq!(error(&bad, &keys, KDIG_TIME), TsigError::BadSig);
    let wrong = KeyRing::new(vec![
        Key::new("xfr.example.", Algorithm::HmacSha256, b"wrong").unwrap(),
    ]);
    assert_eq!(error(&msg, &wrong, KDIG_TIME), TsigError::BadSig);
    let other_alg = ring(Algorithm::HmacSha512);
    assert_eq!(error(&msg, &other_alg, KDIG_TIME), TsigError::BadKey);
    let unknown = KeyRing::new(vec![Key::new("b.", Algorithm::HmacSha256, SECRET).unwrap()]);
    assert_eq!(error(&msg, &unknown, KDIG_TIME), TsigError::BadKey);
    assert_eq!(error(&msg, &keys, KDIG_TIME + 301), TsigError::BadTime);
    assert_eq!(error(&msg, &keys, KDIG_TIME - 301), TsigError::BadTime);
    assert!(verify_request(&msg, &keys, KDIG_TIME + 300).is_ok());
    // Not last, or cut: FORMERR.
    let mut cut = msg.clone();
    cut.pop();
    assert_eq!(error(&cut, &keys, KDIG_TIME), TsigError::FormErr);
    // An unsigned message is not an error.
    let mut plain = msg[..msg.len() - 61].to_vec();
    plain[11] = 0;
    assert!(verify_request(&plain, &keys, KDIG_TIME).unwrap().is_none());
}

#[test]
fn a_knot_axfr_stream_verifies_message_by_message() {
    let all = frames(KNOT_AXFR);
    assert_eq!(all.len(), 3);
    let k = key(Algorithm::HmacSha256);
    let keys = KeyRing::new(vec![k.clone()]);
    let query = verify_request(all[0], &keys, KDIG_TIME - 1000).unwrap_err();
    assert_eq!(query.error, TsigError::BadTime, "captured at another time");
    let now = 1796290401;
    let signed = verify_request(all[0], &keys, now).unwrap().unwrap();
    let mut v = Verifier::new(&k, signed.mac);
    for m in &all[1..] {
        let len = v.verify(m, now).unwrap();
        assert!(len < m.len());
    }
    v.finish().unwrap();
    // Out of order, or a tampered byte: refused.
    let mut v = Verifier::new(&k, signed.mac);
    assert_eq!(v.verify(all[2], now), Err(TsigError::BadSig));
    let mut v = Verifier::new(&k, signed.mac);
    let mut bad = all[2].to_vec();
    bad[100] ^= 1;
    v.verify(all[1], now).unwrap();
    assert_eq!(v.verify(&bad, now), Err(TsigError::BadSig));
}

/// `msg` without its TSIG record (ARCOUNT decremented).
fn unsigned(msg: &[u8], len: usize) -> Vec<u8> {
    let mut m = msg[..len].to_vec();
    m[11] -= 1;
    m
}

#[test]
fn a_signed_stream_round_trips_and_unsigned_messages_between_are_covered() {
    for alg in Algorithm::ALL {
        let k = key(alg);
        let keys = KeyRing::new(vec![k.clone()]);
        let mut q = hex(KDIG_SHA256)[..29].to_vec();
        q[11] = 0;
        let now = 1_800_000_000;
        let qmac = sign_query(&k, &mut q, now);
        let signed = verify_request(&q, &keys, now + 5).unwrap().unwrap();
        assert_eq!(signed.mac, qmac);
        // Three responses, signed by the server: the client verifies each.
        let mut s = Signer::new(&k, &signed);
        let mut v = Verifier::new(&k, qmac);
        let mut out = vec![0u8; 512];
        for i in 0..3u8 {
            out[..29].copy_from_slice(&q[..29]);
            out[2] = 0x84;
            out[11] = 0;
            out[3] = i;
            let n = s.sign(&mut out, 29, now + i as u64).unwrap();
            assert_eq!(v.verify(&out[..n], now).unwrap(), 29);
        }
        v.finish().unwrap();
        // The client may see unsigned messages between signed ones, covered by the next MAC.
        let mut v = Verifier::new(&k, qmac);
        let mut s = Signer::new(&k, &signed);
        let mut msgs = Vec::new();
        for i in 0..4u8 {
            out[3] = i;
            out[11] = 0;
            let n = s.sign(&mut out, 29, now).unwrap();
            msgs.push(out[..n].to_vec());
        }
        v.verify(&msgs[0], now).unwrap();
        assert_eq!(v.verify(&unsigned(&msgs[1], 29), now).unwrap(), 29);
        assert!(v.finish().is_err(), "the last message must be signed");
        // The server signed message 2 over message 1's MAC, not over the unsigned bytes.
        assert_eq!(v.verify(&msgs[2], now), Err(TsigError::BadSig));
        // A first unsigned message is refused.
        let mut v = Verifier::new(&k, qmac);
        assert_eq!(
            v.verify(&unsigned(&msgs[0], 29), now),
            Err(TsigError::Unsigned)
        );
    }
}

#[test]
fn error_answers_carry_the_tsig_error_as_the_rfc_says() {
    let msg = hex(KDIG_SHA256);
    let k = key(Algorithm::HmacSha256);
    let keys = KeyRing::new(vec![k.clone()]);
    let mut out = [0u8; 512];
    // BADTIME: signed, the server's time in Other Data; the client verifies it and sees 18.
    let now = KDIG_TIME + 1000;
    let r = verify_request(&msg, &keys, now).unwrap_err();
    assert_eq!(r.error, TsigError::BadTime);
    let n = r.write_response(&msg, &keys, &mut out, now).unwrap();
    assert_eq!(out[3] & 0xF, 9, "NOTAUTH");
    assert_eq!(&out[n - 8..n - 6], &[0, 6], "other len");
    assert_eq!(&out[n - 4..n], &(now as u32).to_be_bytes());
    let request_mac = Mac::of(&msg[msg.len() - 6 - 32..msg.len() - 6]);
    let mut v = Verifier::new(&k, request_mac);
    assert_eq!(v.verify(&out[..n], now), Err(TsigError::Peer(18)));
    // BADSIG: an empty MAC, the error, NOTAUTH.
    let mut bad = msg.clone();
    bad[13] ^= 1;
    let r = verify_request(&bad, &keys, KDIG_TIME).unwrap_err();
    let n = r.write_response(&bad, &keys, &mut out, KDIG_TIME).unwrap();
    assert_eq!(out[3] & 0xF, 9);
    assert_eq!(&out[n - 8..n], &[0, 0, bad[0], bad[1], 0, 16, 0, 0]);
    let mut v = Verifier::new(&k, request_mac);
    assert_eq!(v.verify(&out[..n], KDIG_TIME), Err(TsigError::Peer(16)));
    // BADKEY: the same, error 17, the request's key name echoed.
    let other = KeyRing::new(vec![Key::new("b.", Algorithm::HmacSha256, SECRET).unwrap()]);
    let r = verify_request(&msg, &other, KDIG_TIME).unwrap_err();
    let n = r.write_response(&msg, &other, &mut out, KDIG_TIME).unwrap();
    assert_eq!(&out[n - 4..n - 2], &[0, 17]);
    assert_eq!(v.verify(&out[..n], KDIG_TIME), Err(TsigError::Peer(17)));
    // FORMERR: no TSIG.
    let r = verify_request(&msg[..msg.len() - 1], &keys, KDIG_TIME).unwrap_err();
    let n = r.write_response(&msg, &keys, &mut out, KDIG_TIME).unwrap();
    assert_eq!(out[3] & 0xF, 1);
    assert_eq!(out[11], 0);
    assert_eq!(n, 29);
}

/// A question whose name is a compression pointer is not echoed in the error answer: copied
/// into the answer, a pointer into the request's header points at the answer's own header, and
/// no client can read the answer (found by fuzzing the answer path with a signed NOTIFY).
#[test]
fn error_answers_echo_no_compressed_question() {
    let msg = hex(KDIG_SHA256);
    let keys = KeyRing::new(vec![key(Algorithm::HmacSha256)]);
    // The question name example.com. (13 bytes at 12) as a pointer to offset 0, where the
    // request's ID and first flag byte read as the name "A." (1, 'A', 0); in the answer that
    // byte has QR set (0x80, no label type at all).
    let mut m = vec![0x01, b'A', 0x00];
    m.extend_from_slice(&msg[3..12]);
    m.extend_from_slice(&[0xC0, 0x00]);
    m.extend_from_slice(&msg[25..]);
    let r = verify_request(&m, &keys, KDIG_TIME).unwrap_err();
    let mut out = [0u8; 512];
    let n = r.write_response(&m, &keys, &mut out, KDIG_TIME).unwrap();
    assert_eq!(&out[4..6], &[0, 0], "no question");
    assert!(
        !out[12..n].windows(2).any(|w| w == [0xC0, 0x00]),
        "{:02x?}",
        &out[..n]
    );
    // The same request with its name written out keeps its question.
    let r = verify_request(&msg[..msg.len() - 1], &keys, KDIG_TIME).unwrap_err();
    let n = r.write_response(&msg, &keys, &mut out, KDIG_TIME).unwrap();
    assert_eq!(&out[4..6], &[0, 1]);
    assert_eq!(&out[12..n], &msg[12..29]);
}

#[test]
fn keys_never_print_their_secret() {
    let k = Key::new("Xfr.", Algorithm::HmacSha256, b"very secret bytes").unwrap();
    let shown = format!("{k:?} {:?}", KeyRing::new(vec![k.clone()]));
    assert!(shown.contains("xfr.") && !shown.contains("very"), "{shown}");
    assert_eq!(k.name_wire(), b"\x03xfr\x00");
    assert!(Key::new("a..b", Algorithm::HmacSha256, b"").is_none());
    assert_eq!(
        Algorithm::from_name("HMAC-SHA512."),
        Some(Algorithm::HmacSha512)
    );
    assert_eq!(Algorithm::from_name("hmac-md5"), None);
}

/// Untrusted bytes never panic: every prefix and every single-byte change of the captured
/// messages, through the server side (and its error answers, into buffers large and small)
/// and the client side.
#[test]
fn cut_and_changed_messages_never_panic() {
    let k = key(Algorithm::HmacSha256);
    let keys = KeyRing::new(vec![k.clone()]);
    let knot = frames(KNOT_AXFR);
    let mut inputs = vec![hex(KDIG_SHA256), hex(DIG_SHA512), knot[0].to_vec()];
    inputs.push(knot[1][..600].to_vec());
    let mut big = [0u8; 512];
    let mut small = [0u8; 40];
    for msg in inputs {
        let mut variants: Vec<Vec<u8>> = (0..msg.len()).map(|n| msg[..n].to_vec()).collect();
        for i in 0..msg.len() {
            for x in [0x01, 0x40, 0xC0, 0xFF] {
                let mut m = msg.clone();
                m[i] ^= x;
                variants.push(m);
            }
        }
        for m in &variants {
            if let Err(r) = verify_request(m, &keys, KDIG_TIME) {
                let _ = r.write_response(m, &keys, &mut big, KDIG_TIME);
                let _ = r.write_response(m, &keys, &mut small, KDIG_TIME);
            }
            let mut v = Verifier::new(&k, Mac::of(&[7; 32]));
            let _ = v.verify(m, KDIG_TIME);
            let _ = v.verify(m, KDIG_TIME);
        }
    }
}
