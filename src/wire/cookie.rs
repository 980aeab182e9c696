//! DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018).
//!
//! A client puts an 8-byte client cookie in a COOKIE option (EDNS option 10); the server answers
//! with the client cookie and a server cookie that only it can make, and the client sends both
//! from then on. A query that carries a server cookie this server made for that client address
//! recently cannot come from a spoofed source, so the rate limiter lets it through.
//!
//! The server cookie is RFC 9018's, so that every server of an anycast set sharing the secret
//! validates the others' cookies: version 1, three reserved bytes, a 32-bit timestamp (Unix
//! seconds, serial arithmetic) and SipHash-2-4 over `client cookie | version | reserved |
//! timestamp | client address`, keyed by a 16-byte secret. It is valid from 5 minutes in the
//! future to 1 hour in the past; one older than half an hour is replaced by a fresh one.
//!
//! Pure: the secrets, the client's address and the time are arguments; nothing allocates.

use std::net::IpAddr;

/// EDNS option code of COOKIE (RFC 7873 §4).
pub const OPT_COOKIE: u16 = 10;
/// Length of a client cookie.
pub const CLIENT_LEN: usize = 8;
/// Length of the server cookies this server makes (RFC 9018 §4).
pub const SERVER_LEN: usize = 16;
/// Longest server cookie a client may send back (RFC 7873 §4).
pub const MAX_SERVER_LEN: usize = 32;
/// Shortest server cookie (RFC 7873 §4).
const MIN_SERVER_LEN: usize = 8;
/// The server cookie version of RFC 9018.
const VERSION: u8 = 1;
/// A server cookie is valid at most this long after its timestamp (RFC 9018 §4.3).
const MAX_AGE: i64 = 3600;
/// ... and at most this long before it (clocks of an anycast set differ a little).
const MAX_AHEAD: i64 = 300;
/// A valid server cookie older than this is replaced by a fresh one in the answer.
const RENEW_AFTER: i64 = 1800;

/// The COOKIE option of a query; after [`check`], the one to send back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cookie {
    pub client: [u8; CLIENT_LEN],
    /// The server cookie is `server[..server_len]`; `server_len` is 0 for a client cookie alone.
    pub server: [u8; MAX_SERVER_LEN],
    pub server_len: u8,
}

impl Cookie {
    /// Read a COOKIE option's data: a client cookie alone (8 bytes), or with a server cookie
    /// of 8 to 32 bytes. Any other length is malformed (answered FORMERR, RFC 7873 §5.2.2).
    pub fn parse(data: &[u8]) -> Option<Cookie> {
        let server = data.get(CLIENT_LEN..)?;
        if !server.is_empty() && !(MIN_SERVER_LEN..=MAX_SERVER_LEN).contains(&server.len()) {
            return None;
        }
        let mut c = Cookie {
            client: data[..CLIENT_LEN].try_into().ok()?,
            server: [0; MAX_SERVER_LEN],
            server_len: server.len() as u8,
        };
        c.server[..server.len()].copy_from_slice(server);
        Some(c)
    }

    /// The server cookie (empty for a client cookie alone).
    pub fn server(&self) -> &[u8] {
        &self.server[..self.server_len as usize]
    }

    /// Length of the option's data on the wire.
    pub fn wire_len(&self) -> usize {
        CLIENT_LEN + self.server_len as usize
    }
}

/// A server secret: the SipHash-2-4 key.
pub type Secret = [u8; 16];

/// The server's secrets: the one that makes cookies now, and the one before it, still accepted
/// until the next change so that cookies handed out just before a change stay valid.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secrets {
    pub current: Secret,
    pub previous: Option<Secret>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

/// What a query's COOKIE option was worth.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// A client cookie alone: the client learns a server cookie from the answer.
    ClientOnly,
    /// A server cookie made here (with the current or previous secret) for this client address,
    /// within its lifetime.
    Valid,
    /// A server cookie that does not validate: another secret or address, expired, from the
    /// future, or not of RFC 9018's form.
    Invalid,
}

/// Check `cookie`, received from `client` at `now` (Unix seconds), against `secrets`, and turn
/// it into the cookie to send back: the client cookie with the received server cookie when that
/// validated with the current secret, is less than half an hour old and has no reserved bits
/// set; otherwise with a fresh server cookie.
pub fn check(secrets: &Secrets, cookie: &mut Cookie, client: IpAddr, now: u64) -> Verdict {
    let now = now as u32;
    let verdict = match cookie.server() {
        [] => Verdict::ClientOnly,
        s if s.len() == SERVER_LEN && s[0] == VERSION => {
            let stamp = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
            // Serial arithmetic (RFC 1982): how long ago the cookie was made.
            let age = now.wrapping_sub(stamp) as i32 as i64;
            let fresh = (-MAX_AHEAD..=MAX_AGE).contains(&age);
            let head: [u8; 8] = s[..8].try_into().expect("8 bytes");
            let made_by = |secret: &Secret| hash(secret, &cookie.client, &head, client) == s[8..];
            if !fresh {
                Verdict::Invalid
            } else if made_by(&secrets.current) {
                if age < RENEW_AFTER && s[1..4] == [0, 0, 0] {
                    return Verdict::Valid; // sent back as it came
                }
                Verdict::Valid
            } else if secrets.previous.as_ref().is_some_and(made_by) {
                Verdict::Valid
            } else {
                Verdict::Invalid
            }
        }
        _ => Verdict::Invalid,
    };
    let fresh = server_cookie(&secrets.current, &cookie.client, client, now);
    cookie.server[..SERVER_LEN].copy_from_slice(&fresh);
    cookie.server_len = SERVER_LEN as u8;
    verdict
}

/// The RFC 9018 server cookie for `client_cookie` from `client` at `now`, made with `secret`.
pub fn server_cookie(
    secret: &Secret,
    client_cookie: &[u8; CLIENT_LEN],
    client: IpAddr,
    now: u32,
) -> [u8; SERVER_LEN] {
    let mut out = [0u8; SERVER_LEN];
    out[0] = VERSION;
    out[4..8].copy_from_slice(&now.to_be_bytes());
    let head: [u8; 8] = out[..8].try_into().expect("8 bytes");
    out[8..].copy_from_slice(&hash(secret, client_cookie, &head, client));
    out
}

/// The Hash field: SipHash-2-4 of `client cookie | version | reserved | timestamp | address`
/// (4 bytes for IPv4, 16 for IPv6), as the 8 bytes of the result in little-endian order.
fn hash(secret: &Secret, client_cookie: &[u8; 8], head: &[u8; 8], client: IpAddr) -> [u8; 8] {
    let mut input = [0u8; 32];
    input[..8].copy_from_slice(client_cookie);
    input[8..16].copy_from_slice(head);
    let len = match client.to_canonical() {
        IpAddr::V4(a) => {
            input[16..20].copy_from_slice(&a.octets());
            20
        }
        IpAddr::V6(a) => {
            input[16..32].copy_from_slice(&a.octets());
            32
        }
    };
    siphash24(secret, &input[..len]).to_le_bytes()
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of `data` under `key`.
pub fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    let k1 = u64::from_le_bytes(key[8..].try_into().expect("8 bytes"));
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let round = |v: &mut [u64; 4]| {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    };
    let compress = |v: &mut [u64; 4], m: u64| {
        v[3] ^= m;
        round(v);
        round(v);
        v[0] ^= m;
    };
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        compress(&mut v, u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let mut last = [0u8; 8];
    let rest = words.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = data.len() as u8;
    compress(&mut v, u64::from_le_bytes(last));
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn secret(s: &str) -> Secret {
        hex(s).try_into().unwrap()
    }

    /// The reference implementation's vectors: key 00..0f, messages 00, 00 01, ... of every
    /// length up to 15 (the first, last and one whole-word case of its table).
    #[test]
    fn siphash_reference_vectors() {
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let msg: Vec<u8> = (0..64).collect();
        assert_eq!(siphash24(&key, &msg[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(&key, &msg[..8]), 0x93f5_f579_9a93_2462);
        assert_eq!(siphash24(&key, &msg[..15]), 0xa129_ca61_49be_45e5);
    }

    fn run(secrets: &Secrets, sent: &str, client: &str, now: u64) -> (Verdict, String) {
        let mut c = Cookie::parse(&hex(sent)).unwrap();
        let v = check(secrets, &mut c, client.parse().unwrap(), now);
        let back: String = c
            .client
            .iter()
            .chain(c.server())
            .map(|b| format!("{b:02x}"))
            .collect();
        (v, back)
    }

    /// RFC 9018 Appendix A, every example: the cookie a query carries judged, the one sent back
    /// made byte for byte.
    #[test]
    fn rfc9018_appendix_a() {
        let one = Secrets {
            current: secret("e5e973e5a6b2a43f48e7dc849e37bfcf"),
            previous: None,
        };
        // A.1: a client cookie alone.
        assert_eq!(
            run(&one, "2464c4abcf10c957", "198.51.100.100", 1559731985),
            (
                Verdict::ClientOnly,
                "2464c4abcf10c957010000005cf79f111f8130c3eee29480".into()
            )
        );
        // A.2: 40 minutes later the same cookie is valid, and renewed.
        assert_eq!(
            run(
                &one,
                "2464c4abcf10c957010000005cf79f111f8130c3eee29480",
                "198.51.100.100",
                1559734385
            ),
            (
                Verdict::Valid,
                "2464c4abcf10c957010000005cf7a871d4a564a1442aca77".into()
            )
        );
        // A.3: reserved bytes set, taken into the hash. The example's query comes 1h52m after
        // its cookie was made, past the hour RFC 9018 §4.3 gives a cookie (the appendix calls
        // it valid nonetheless): invalid then, and a fresh cookie (reserved zero) goes back...
        let a3 = "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5";
        assert_eq!(
            run(&one, a3, "203.0.113.203", 1559734700),
            (
                Verdict::Invalid,
                "fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e".into()
            )
        );
        // ... while within the hour it validates, reserved bytes and all (and is renewed).
        let (v, back) = run(&one, a3, "203.0.113.203", 1559727985 + 60);
        assert_eq!(v, Verdict::Valid);
        assert_ne!(&back[16..], &a3[16..]);
        // A.4: IPv6, made with the previous secret: valid, renewed with the current one.
        let rolled = Secrets {
            current: secret("445536bcd2513298075a5d379663c962"),
            previous: Some(secret("dd3bdf9344b678b185a6f5cb60fca715")),
        };
        assert_eq!(
            run(
                &rolled,
                "22681ab97d52c298010000005cf7c57926556bd0934c72f8",
                "2001:db8:220:1:59de:d0f4:8769:82b8",
                1559741961
            ),
            (
                Verdict::Valid,
                "22681ab97d52c298010000005cf7c609a6bb79d16625507a".into()
            )
        );
        // Without the previous secret the same cookie no longer validates.
        let forgotten = Secrets {
            previous: None,
            ..rolled
        };
        let (v, _) = run(
            &forgotten,
            "22681ab97d52c298010000005cf7c57926556bd0934c72f8",
            "2001:db8:220:1:59de:d0f4:8769:82b8",
            1559741961,
        );
        assert_eq!(v, Verdict::Invalid);
    }

    #[test]
    fn young_cookies_come_back_unchanged_and_bad_ones_do_not_validate() {
        let s = Secrets {
            current: secret("000102030405060708090a0b0c0d0e0f"),
            previous: None,
        };
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let cc = [7u8; 8];
        let made = server_cookie(&s.current, &cc, client, 1_000_000);
        let mut sent = [0u8; 24];
        sent[..8].copy_from_slice(&cc);
        sent[8..].copy_from_slice(&made);
        let judge = |bytes: &[u8], from: IpAddr, now: u64| {
            let mut c = Cookie::parse(bytes).unwrap();
            let v = check(&s, &mut c, from, now);
            (v, c)
        };
        // Ten minutes on: valid, and the same cookie goes back.
        let (v, c) = judge(&sent, client, 1_000_600);
        assert_eq!(v, Verdict::Valid);
        assert_eq!(c.server(), &made);
        // From another address, after an hour and a second, or 6 minutes before it was made.
        for (from, now) in [
            ("192.0.2.8".parse().unwrap(), 1_000_001),
            (client, 1_003_601),
            (client, 1_000_000 - 301),
        ] {
            let (v, c) = judge(&sent, from, now);
            assert_eq!(v, Verdict::Invalid, "{from} at {now}");
            assert_eq!(c.server_len as usize, SERVER_LEN);
            assert_ne!(c.server(), &made);
        }
        // A hash bit flipped; another version; a server cookie of another length.
        let mut bad = sent;
        bad[23] ^= 1;
        assert_eq!(judge(&bad, client, 1_000_001).0, Verdict::Invalid);
        let mut bad = sent;
        bad[8] = 2;
        assert_eq!(judge(&bad, client, 1_000_001).0, Verdict::Invalid);
        assert_eq!(judge(&sent[..20], client, 1_000_001).0, Verdict::Invalid);
    }

    #[test]
    fn option_lengths() {
        for len in [0, 1, 7, 9, 15, 41, 48] {
            assert!(Cookie::parse(&[1; 48][..len]).is_none(), "{len}");
        }
        for len in [8, 16, 24, 40] {
            let c = Cookie::parse(&[1; 48][..len]).unwrap();
            assert_eq!(c.wire_len(), len);
        }
    }
}
