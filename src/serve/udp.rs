//! UDP serving: one OS thread per worker, each with its own SO_REUSEPORT socket.
//!
//! The kernel spreads datagrams over the sockets; a worker owns its receive buffers, its
//! response buffers and its parsed query ([`crate::dns::answer::Work`]) for its whole life, and reads the current
//! [`Snapshot`] through an `arc_swap::Cache` (one atomic load per batch; the `Arc` is only
//! re-cloned after a reload). Datagrams are read with `recvmmsg` and answered with `sendmmsg`
//! in batches of up to [`BATCH`]: under load one pair of system calls serves many queries, and
//! when idle a batch is a single datagram (`MSG_WAITFORONE`), so latency does not suffer.
//!
//! Steady state per datagram: [`crate::dns::answer::respond`] into a preallocated buffer; no allocation, no lock, no
//! task. Workers poll a stop flag between batches (a short receive timeout bounds how long
//! shutdown waits for an idle socket).
//!
//! A socket bound to a wildcard address (`0.0.0.0` or `::`) answers every datagram from the
//! address it was sent to, IPv4 and IPv6 alike, as Knot and NSD do: [`bind`] turns on
//! `IP_PKTINFO` / `IPV6_RECVPKTINFO`, each receive slot of the batch has a control buffer for the
//! destination the kernel reports, and each reply carries it back as `IP_PKTINFO` /
//! `IPV6_PKTINFO` from a control buffer of its send slot (see `pktinfo.rs`). The
//! buffers are part of the batch, allocated once; a datagram that came without the control
//! message is answered without one. A socket bound to one address has no control buffers and no
//! control messages at all: its per-datagram work is unchanged.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::{ArcSwap, Cache};
use socket2::{Domain, Protocol, Socket, Type};

use super::pktinfo::{self, CONTROL_LEN, Control, Family};
use super::shield::Defence;
use crate::dns::answer::Work;
use crate::dns::answer::{Peer, Transport, respond_after, try_prepared};
use crate::dns::cache::ResponseCache;
use crate::dns::rrl::{self, Action, Class, Tick};
use crate::policy::pick::Rng;
use crate::snapshot::Snapshot;
use crate::wire::cookie::Verdict;

/// How often an idle worker looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);
/// Datagrams read and answered per `recvmmsg`/`sendmmsg` pair.
pub const BATCH: usize = 32;
/// Receive buffer per datagram: a query is small; anything longer is cut and dropped.
const RX_LEN: usize = 4096;
/// Response buffer per datagram: the largest UDP response the server may send.
const TX_LEN: usize = 4096;

/// Bind a UDP socket that other workers can share through SO_REUSEPORT. On a wildcard address
/// the socket also reports each datagram's destination (before it is bound, so that no datagram
/// arrives without it), for [`serve`] to answer from.
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if let Some(family) = Family::of_wildcard(addr) {
        pktinfo::enable(&socket, family)?;
    }
    socket.set_reuse_port(true)?;
    // A larger receive queue absorbs bursts; the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    socket.set_read_timeout(Some(STOP_POLL))?;
    Ok(socket.into())
}

/// Start one worker thread on `socket`.
pub fn spawn_worker(
    name: String,
    socket: UdpSocket,
    snapshot: Arc<ArcSwap<Snapshot>>,
    defence: Arc<ArcSwap<Defence>>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || serve(&socket, &snapshot, &defence, &stop))
}

/// Now on the coarse monotonic clock (a read of the kernel's last tick, no hardware counter),
/// in the rate limiter's ticks.
fn coarse_now() -> Tick {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; the clock id is a constant the kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    Tick((ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000) / rrl::TICK_MS)
}

/// Buffers and kernel message headers for one batch, allocated once per worker.
///
/// The `mmsghdr`s point into `rx`, `tx`, `iov_*`, `addrs` and `ctl_*`, which live in boxed
/// slices that never move or resize after construction.
struct Batch {
    rx: Box<[[u8; RX_LEN]]>,
    tx: Box<[[u8; TX_LEN]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    iov_rx: Box<[libc::iovec]>,
    iov_tx: Box<[libc::iovec]>,
    hdr_rx: Box<[libc::mmsghdr]>,
    hdr_tx: Box<[libc::mmsghdr]>,
    /// Wildcard sockets only (else empty): the destination of received datagram `i`, as the
    /// kernel reports it, and the source for response `out`.
    ctl_rx: Box<[Control]>,
    ctl_tx: Box<[Control]>,
}

/// Kernel structs for which all-zero bytes are a valid value, to start the batch's headers from.
///
/// # Safety
/// Implement only for C structs made of integers, raw pointers and arrays of those.
unsafe trait Zeroed: Sized {
    fn zeroed() -> Self {
        // SAFETY: implementors are types for which all-zero is a valid value (see the trait).
        unsafe { std::mem::zeroed() }
    }
}
// SAFETY: an address family, an alignment integer and byte padding.
unsafe impl Zeroed for libc::sockaddr_storage {}
// SAFETY: a raw pointer and a length.
unsafe impl Zeroed for libc::iovec {}
// SAFETY: a msghdr (raw pointers, lengths, flags) and a length.
unsafe impl Zeroed for libc::mmsghdr {}

impl Batch {
    /// Buffers for a socket bound to a wildcard address of that family, or (`None`) to a
    /// specific address.
    fn new(wildcard: Option<Family>) -> Box<Batch> {
        let controls = |c: Control| match wildcard {
            Some(_) => vec![c; BATCH].into_boxed_slice(),
            None => Box::default(),
        };
        let mut b = Box::new(Batch {
            rx: vec![[0u8; RX_LEN]; BATCH].into_boxed_slice(),
            tx: vec![[0u8; TX_LEN]; BATCH].into_boxed_slice(),
            addrs: (0..BATCH).map(|_| Zeroed::zeroed()).collect(),
            iov_rx: (0..BATCH).map(|_| Zeroed::zeroed()).collect(),
            iov_tx: (0..BATCH).map(|_| Zeroed::zeroed()).collect(),
            hdr_rx: (0..BATCH).map(|_| Zeroed::zeroed()).collect(),
            hdr_tx: (0..BATCH).map(|_| Zeroed::zeroed()).collect(),
            ctl_rx: controls(Control::EMPTY),
            ctl_tx: controls(wildcard.map_or(Control::EMPTY, Control::reply)),
        });
        for i in 0..BATCH {
            b.iov_rx[i] = libc::iovec {
                iov_base: b.rx[i].as_mut_ptr().cast(),
                iov_len: RX_LEN,
            };
            b.iov_tx[i] = libc::iovec {
                iov_base: b.tx[i].as_mut_ptr().cast(),
                iov_len: 0,
            };
            let addr: *mut libc::sockaddr_storage = &mut b.addrs[i];
            let iov: *mut libc::iovec = &mut b.iov_rx[i];
            let h = &mut b.hdr_rx[i].msg_hdr;
            h.msg_name = addr.cast();
            h.msg_namelen = ADDR_LEN;
            h.msg_iov = iov;
            h.msg_iovlen = 1;
            // Response `i` always goes out of tx[i] through iov_tx[i]; only its length and
            // destination change per datagram.
            let iov: *mut libc::iovec = &mut b.iov_tx[i];
            let t = &mut b.hdr_tx[i].msg_hdr;
            t.msg_iov = iov;
            t.msg_iovlen = 1;
            if wildcard.is_some() {
                // The kernel writes the destination here on receive; a response carries its
                // source from here (its length set per datagram, 0 for none).
                b.hdr_rx[i].msg_hdr.msg_control = b.ctl_rx[i].as_mut_ptr();
                b.hdr_rx[i].msg_hdr.msg_controllen = CONTROL_LEN as _;
                b.hdr_tx[i].msg_hdr.msg_control = b.ctl_tx[i].as_mut_ptr();
            }
        }
        b
    }
}

const ADDR_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// A raw system call with up to five arguments, returning the kernel's result (negative errno
/// on failure). Inline on x86-64: no trip through glibc's variadic `syscall()` per batch.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn syscall5(nr: libc::c_long, a: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a valid system call and arguments; `syscall` clobbers only
    // rcx and r11 besides the return register, and touches no stack.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
unsafe fn syscall5(nr: libc::c_long, a: [usize; 5]) -> isize {
    // SAFETY: as above; glibc's generic wrapper.
    unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) as isize }
}

/// The worker loop. Public so that tests and benchmarks can drive it on a thread of their own.
///
/// A socket bound to a wildcard address answers each datagram from its destination address
/// (made with [`bind`], or any other socket: the option is turned on here too, for datagrams
/// from then on). `defence` is the shield's ([`super::shield::Shield::published`]).
pub fn serve(
    socket: &UdpSocket,
    snapshot: &Arc<ArcSwap<Snapshot>>,
    defence: &Arc<ArcSwap<Defence>>,
    stop: &AtomicBool,
) {
    let fd = socket.as_raw_fd();
    let wildcard = socket.local_addr().ok().and_then(Family::of_wildcard);
    if let Some(family) = wildcard
        && let Err(e) = pktinfo::enable(socket, family)
    {
        tracing::warn!(error = %e, "no IP_PKTINFO: replies leave from the kernel's choice");
    }
    let mut cache = Cache::new(Arc::clone(snapshot));
    let mut defences = Cache::new(Arc::clone(defence));
    let mut seen: *const Defence = std::ptr::null();
    // Limited responses so far: every `slip`th of them slips.
    let mut limited = 0u32;
    let mut work = Work::default();
    let mut rng = Rng::new(super::seed());
    let mut tally = crate::metrics::Tally::new();
    let mut responses = ResponseCache::new();
    let mut b = Batch::new(wildcard);
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: hdr_rx holds BATCH valid headers pointing at live buffers owned by `b`.
        // A raw system call skips glibc's thread-cancellation bookkeeping around it (no thread
        // here is ever cancelled), a measurable share of the per-query user time.
        let n = unsafe {
            syscall5(
                libc::SYS_recvmmsg,
                [
                    fd as usize,
                    b.hdr_rx.as_mut_ptr() as usize,
                    BATCH,
                    libc::MSG_WAITFORONE as usize,
                    0, // no timeout: the socket's receive timeout bounds the wait
                ],
            )
        };
        if n <= 0 {
            // Timeout (stop poll), EINTR, or an ICMP error surfacing: nothing to answer; a good
            // moment to hand the counters over.
            tally.flush_if_pending();
            continue;
        }
        let n = (n as usize).min(BATCH);
        let snap = cache.load();
        // The clock is read only when a signed query needs it (see `Work::now`): a clock read
        // per batch costs more than a whole query when batches are small.
        work.now = 0;
        let defence = defences.load();
        // The secrets are copied only when the shield changed (a rotation, a reload): each
        // published `Defence` is a new allocation made while the cache held the one before.
        if !std::ptr::eq(Arc::as_ptr(defence), seen) {
            seen = Arc::as_ptr(defence);
            work.cookies = defence.cookies;
        }
        let limiter = defence.rrl.as_deref();
        let mut tick = None;
        tally.follow(snap);
        responses.follow(snap);
        let mut out = 0;
        for i in 0..n {
            let h = &mut b.hdr_rx[i];
            let len = (h.msg_len as usize).min(RX_LEN);
            let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let namelen = h.msg_hdr.msg_namelen;
            // Ready for the next receive (the kernel overwrites these).
            h.msg_hdr.msg_namelen = ADDR_LEN;
            h.msg_hdr.msg_flags = 0;
            let controllen = match wildcard {
                Some(_) => {
                    #[allow(clippy::unnecessary_cast)] // a size_t on glibc, a socklen_t on musl
                    let l = h.msg_hdr.msg_controllen as usize;
                    h.msg_hdr.msg_controllen = CONTROL_LEN as _;
                    l
                }
                None => 0,
            };
            if truncated {
                tally.dropped();
                continue; // longer than any query we answer over UDP
            }
            let started = tally.sample_latency().then(std::time::Instant::now);
            // A bug must cost one datagram, never the worker: a dead SO_REUSEPORT socket would
            // keep receiving its share of queries and answer none. (No cost unless it unwinds.)
            let (rx, tx) = (&b.rx[i][..len], &mut b.tx[out]);
            let addr = &b.addrs[i];
            let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // Most queries: the response to the same bytes last time, or else a prepared
                // response (kept for next time); neither needs a Peer or a random draw.
                let miss = match responses.answer(rx, tx) {
                    Ok(o) => {
                        tally.kept(true);
                        return Some((o, false));
                    }
                    Err(miss) => miss,
                };
                let found = match try_prepared(snap, rx, Transport::Udp, &mut work.query.qname, tx)
                {
                    Ok(o) => {
                        if miss.is_some_and(|m| responses.insert(m, rx, &tx[..o.len], &o)) {
                            tally.kept(false);
                        }
                        return Some((o, false));
                    }
                    Err(found) => found,
                };
                let peer = Peer {
                    transport: Transport::Udp,
                    addr: peer_ip(addr),
                    random: rng.next_u64(),
                };
                respond_after(snap, rx, peer, &mut work, tx, found).map(|o| (o, true))
            }));
            let Some((mut o, general)) = answered.unwrap_or_else(|_| {
                tracing::error!(peer = %peer_ip(addr), "answer engine panicked; datagram dropped");
                None
            }) else {
                tally.dropped();
                continue;
            };
            if general && let Some(v) = work.cookie {
                tally.cookie(v);
            }
            // Rate limiting: not for a valid server cookie (the source is not forged) nor an
            // exempt prefix.
            let mut action = Action::Pass;
            if let Some(l) = limiter
                && !(general && work.cookie == Some(Verdict::Valid))
                && let Some(prefix) = l.prefix(peer_ip(addr))
            {
                let class = Class::of(&o, &b.tx[out][..o.len]);
                if !l.take(prefix, class, *tick.get_or_insert_with(coarse_now)) {
                    limited = limited.wrapping_add(1);
                    action = l.limited(limited);
                    tally.limited(class, action);
                }
            }
            match action {
                Action::Pass => {
                    if let Some(t0) = started {
                        tally.record_latency(Transport::Udp, t0.elapsed());
                    }
                    let steered = if general { work.steered.as_ref() } else { None };
                    tally.count(&o, steered, Transport::Udp);
                    if general && let Some(e) = work.tsig_error {
                        crate::metrics::count_tsig_error(e); // rare: a signed query that failed
                    }
                }
                Action::Drop => continue,
                Action::Slip => o.len = rrl::slip(&mut b.tx[out], o.len),
            }
            b.iov_tx[out].iov_len = o.len;
            let t = &mut b.hdr_tx[out].msg_hdr;
            t.msg_name = (&mut b.addrs[i] as *mut libc::sockaddr_storage).cast();
            t.msg_namelen = namelen;
            if let Some(family) = wildcard {
                // From the address the query went to (response `out` answers datagram `i`).
                let received = b.ctl_rx[i].received(controllen);
                t.msg_controllen = if pktinfo::answer_from(family, received, &mut b.ctl_tx[out]) {
                    family.reply_len() as _
                } else {
                    0
                };
            }
            out += 1;
        }
        let mut sent = 0;
        while sent < out {
            // SAFETY: the first `out` tx headers were filled above and point at live buffers.
            let r = unsafe {
                syscall5(
                    libc::SYS_sendmmsg,
                    [
                        fd as usize,
                        b.hdr_tx[sent..].as_mut_ptr() as usize,
                        out - sent,
                        0,
                        0,
                    ],
                )
            };
            if r <= 0 {
                // A full send queue or an unreachable peer: skip that datagram, keep the rest.
                sent += 1;
            } else {
                sent += r as usize;
            }
        }
    }
}

/// The source address of a received datagram.
fn peer_ip(ss: &libc::sockaddr_storage) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET; storage is large and aligned enough.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for AF_INET6 and sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
        }
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}
