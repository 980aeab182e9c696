use super::*;

fn limiter(rate: u32, burst: u32, v4: u8, v6: u8, exempt: &[&str]) -> RateLimiter {
    let s = RrlSettings {
        rate,
        burst,
        slip: 2,
        ipv4_prefix: v4,
        ipv6_prefix: v6,
        table_size: 4096,
        exempt: exempt.iter().map(|n| n.parse().unwrap()).collect(),
    };
    RateLimiter::new(&s, [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210])
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Responses passed out of `n` asked at `at`.
fn passed(l: &RateLimiter, client: &str, class: Class, at: u64, n: usize) -> usize {
    let p = l.prefix(ip(client)).unwrap();
    (0..n).filter(|_| l.take(p, class, Tick(at))).count()
}

#[test]
fn burst_at_once_then_rate_a_second() {
    let l = limiter(100, 300, 24, 56, &[]);
    let t0 = 1_000_000;
    assert_eq!(passed(&l, "192.0.2.1", Class::Positive, t0, 1000), 300);
    // Half a second (125 ticks of 4 ms) refills 50.
    assert_eq!(passed(&l, "192.0.2.1", Class::Positive, t0 + 125, 1000), 50);
    // Every tick adds 0.4 of a token: 10 ticks, 4 responses.
    assert_eq!(passed(&l, "192.0.2.1", Class::Positive, t0 + 135, 1000), 4);
    // Ten quiet seconds fill the bucket to the burst, not beyond.
    assert_eq!(
        passed(&l, "192.0.2.1", Class::Positive, t0 + 2635, 1000),
        300
    );
    // A steady client at the rate is never limited: one response every 10 ms for 10 s (with
    // room for one more, as the 4 ms ticks make the gaps 8 and 12 ms).
    let l = limiter(100, 2, 24, 56, &[]);
    let p = l.prefix(ip("198.51.100.7")).unwrap();
    let mut at = 0u64;
    for i in 0..1000 {
        // 10 ms is 2.5 ticks: alternate 2 and 3.
        at += 2 + (i % 2);
        assert!(l.take(p, Class::Positive, Tick(5_000 + at)), "response {i}");
    }
}

#[test]
fn prefixes_classes_and_exemptions() {
    let l = limiter(10, 10, 24, 56, &["192.0.2.128/25", "2001:db8:1::/48"]);
    let t = 77;
    // One /24: .1 drains what .2 would get; another /24 is untouched.
    assert_eq!(passed(&l, "198.51.100.1", Class::Positive, t, 7), 7);
    assert_eq!(passed(&l, "198.51.100.2", Class::Positive, t, 20), 3);
    assert_eq!(passed(&l, "198.51.101.2", Class::Positive, t, 20), 10);
    // Each class has its own bucket.
    for c in Class::ALL.into_iter().skip(1) {
        assert_eq!(passed(&l, "198.51.100.3", c, t, 20), 10, "{c:?}");
    }
    // IPv6 by /56; an IPv4-mapped address counts as IPv4.
    assert_eq!(passed(&l, "2001:db8:0:1::1", Class::NxDomain, t, 6), 6);
    assert_eq!(passed(&l, "2001:db8:0:ff::2", Class::NxDomain, t, 20), 4);
    assert_eq!(passed(&l, "2001:db8:0:100::2", Class::NxDomain, t, 20), 10);
    assert_eq!(passed(&l, "::ffff:198.51.100.9", Class::Positive, t, 20), 0);
    // Exempt prefixes are never counted.
    assert!(l.prefix(ip("192.0.2.200")).is_none());
    assert!(l.prefix(ip("192.0.2.1")).is_some());
    assert!(l.prefix(ip("2001:db8:1:2::3")).is_none());
    assert!(l.prefix(ip("2001:db8:2::3")).is_some());
    // /32 keeps neighbours apart.
    let l = limiter(10, 10, 32, 128, &[]);
    assert_eq!(passed(&l, "127.0.0.2", Class::Positive, t, 20), 10);
    assert_eq!(passed(&l, "127.0.0.3", Class::Positive, t, 20), 10);
}

#[test]
fn a_stamp_from_a_worker_a_tick_ahead_adds_nothing() {
    let l = limiter(250, 5, 24, 56, &[]);
    let p = l.prefix(ip("203.0.113.1")).unwrap();
    let passed_at =
        |at: u64, n: usize| (0..n).filter(|_| l.take(p, Class::Error, Tick(at))).count();
    assert_eq!(passed_at(10_001, 10), 5);
    // Another worker read its clock a tick earlier: no time has passed, nothing refills (a
    // wrapped difference would otherwise look like an hour).
    assert_eq!(passed_at(10_000, 10), 0);
    // Time goes on from the later stamp: one tick adds one token at 250 a second.
    assert_eq!(passed_at(10_002, 10), 1);
    // Across the stamp's wrap (2^22 ticks, 4.7 hours) a full bucket is still found.
    assert_eq!(passed_at(10_002 + (1 << 22) + 2000, 10), 5);
}

#[test]
fn workers_racing_on_one_bucket_never_pass_more_than_it_holds() {
    let l = std::sync::Arc::new(limiter(1, 20_000, 24, 56, &[]));
    let p = l.prefix(ip("192.0.2.9")).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let l = std::sync::Arc::clone(&l);
            std::thread::spawn(move || {
                (0..10_000)
                    .filter(|_| l.take(p, Class::Large, Tick(42)))
                    .count()
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(total <= 20_000, "{total}");
    assert!(total >= 19_000, "{total}: contention cost more than a few");
}

#[test]
fn every_slip_th_limited_response_slips() {
    let l = limiter(1, 1, 24, 56, &[]);
    let actions: Vec<Action> = (1..=6).map(|n| l.limited(n)).collect();
    use Action::*;
    assert_eq!(actions, [Drop, Slip, Drop, Slip, Drop, Slip]);
    let mut s = l.settings().clone();
    s.slip = 0;
    let none = RateLimiter::new(&s, [1, 2]);
    assert!((1..10).all(|n| none.limited(n) == Drop));
    s.slip = 1;
    let all = RateLimiter::new(&s, [1, 2]);
    assert!((1..10).all(|n| all.limited(n) == Slip));
}

fn outcome(rcode: Rcode, qtype: u16, len: usize) -> Outcome {
    Outcome {
        len,
        rcode,
        truncated: false,
        zone: None,
        qtype,
        ecs: false,
    }
}

#[test]
fn classes_of_responses() {
    let mut hdr = [0u8; 12];
    hdr[7] = 1; // one answer
    let none = [0u8; 12];
    assert_eq!(
        Class::of(&outcome(Rcode::NoError, 1, 60), &hdr),
        Class::Positive
    );
    assert_eq!(
        Class::of(&outcome(Rcode::NoError, 1, 60), &none),
        Class::Empty
    );
    assert_eq!(
        Class::of(&outcome(Rcode::NxDomain, 1, 60), &none),
        Class::NxDomain
    );
    assert_eq!(
        Class::of(&outcome(Rcode::Refused, 1, 30), &none),
        Class::Error
    );
    assert_eq!(
        Class::of(&outcome(Rcode::FormErr, 0, 12), &none),
        Class::Error
    );
    assert_eq!(
        Class::of(&outcome(Rcode::NoError, 16, 1024), &hdr),
        Class::Large
    );
    assert_eq!(
        Class::of(&outcome(Rcode::NoError, 255, 2000), &hdr),
        Class::Any
    );
}

/// A response: the question www.example. A, one A record (owner a pointer to the question), and
/// an OPT with a cookie option; then what a slip leaves.
#[test]
fn a_slipped_response_keeps_the_question_and_the_opt() {
    let mut m = vec![0xab, 0xcd, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 1];
    m.extend_from_slice(b"\x03www\x07example\x00\x00\x01\x00\x01");
    let question_end = m.len();
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1]);
    let opt = [
        0u8, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    m.extend_from_slice(&opt);
    let len = m.len();
    m.resize(len + 40, 0xee);
    let n = slip(&mut m, len);
    assert_eq!(n, question_end + opt.len());
    assert_eq!(&m[..2], &[0xab, 0xcd]);
    assert_eq!(m[2], 0x84 | 0x02, "QR, AA kept; TC set");
    assert_eq!(&m[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&m[question_end..n], &opt);
    // Without an OPT: the question alone.
    let mut plain = m[..question_end].to_vec();
    plain[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    plain.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1]);
    plain[7] = 1;
    let len = plain.len();
    assert_eq!(slip(&mut plain, len), question_end);
    assert_eq!(&plain[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    // A header-only error response stays one.
    let mut formerr = vec![0, 1, 0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(slip(&mut formerr, 12), 12);
    assert_eq!(formerr[2], 0x82);
}
