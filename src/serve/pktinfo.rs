//! Answering from the queried address on UDP sockets bound to a wildcard address.
//!
//! A socket bound to `0.0.0.0` or `::` receives datagrams sent to any local address, but a
//! reply sent without more ado leaves from the source address the kernel picks for the route
//! back, which need not be the address the client asked (a query to 127.0.0.2 is answered from
//! 127.0.0.1); a client with a connected socket, as most resolvers use, discards it. As Knot,
//! NSD and gdnsd do, such sockets turn on `IP_PKTINFO` / `IPV6_RECVPKTINFO` ([`enable`]): every
//! datagram then arrives with its destination address in a control message, and the reply
//! carries that address back as `IP_PKTINFO` / `IPV6_PKTINFO` ([`answer_from`]), which makes
//! the kernel send it from there.
//!
//! The UDP worker owns one [`Control`] buffer per received and per sent datagram of a batch, for
//! its life: nothing here allocates. Received control bytes are treated as untrusted; every
//! length is checked against the buffer before anything is read.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

use libc::{c_int, cmsghdr, in_pktinfo, in6_pktinfo};

/// The address family of a wildcard-bound socket: which control messages it receives and sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    /// `Some` when `addr` is a wildcard (unspecified) address, which needs control messages.
    pub(super) fn of_wildcard(addr: SocketAddr) -> Option<Family> {
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Some(Family::V4),
            IpAddr::V6(ip) if ip.is_unspecified() => Some(Family::V6),
            _ => None,
        }
    }

    /// Level and type of the control message holding the packet info, received and sent.
    fn message(self) -> (c_int, c_int) {
        match self {
            Family::V4 => (libc::IPPROTO_IP, libc::IP_PKTINFO),
            Family::V6 => (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO),
        }
    }

    /// Size of the packet info itself.
    const fn info_len(self) -> usize {
        match self {
            Family::V4 => size_of::<in_pktinfo>(),
            Family::V6 => size_of::<in6_pktinfo>(),
        }
    }

    /// Control bytes a reply carries (`CMSG_SPACE` of the packet info).
    pub(super) const fn reply_len(self) -> usize {
        align(DATA + self.info_len())
    }
}

/// `CMSG_ALIGN`: control messages start on `size_t` boundaries.
const fn align(len: usize) -> usize {
    let a = size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

/// Offset of a control message's data from its header (`CMSG_LEN(0)`).
const DATA: usize = align(size_of::<cmsghdr>());

/// Room for the one control message a datagram carries, of either family (`CMSG_SPACE`).
pub(super) const CONTROL_LEN: usize = max(Family::V4.reply_len(), Family::V6.reply_len());

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// A control-message buffer, aligned for `cmsghdr` as the kernel expects.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Control {
    _align: [cmsghdr; 0],
    bytes: [u8; CONTROL_LEN],
}

impl Control {
    /// A receive buffer: the kernel fills it.
    pub(super) const EMPTY: Control = Control {
        _align: [],
        bytes: [0; CONTROL_LEN],
    };

    /// A reply's buffer for `family`: the header written once; [`answer_from`] fills the data.
    pub(super) fn reply(family: Family) -> Control {
        let mut c = Control::EMPTY;
        let (level, kind) = family.message();
        // SAFETY: zero is valid for cmsghdr's integer fields (and its private padding on some
        // targets); every field that matters is set below.
        let mut h: cmsghdr = unsafe { std::mem::zeroed() };
        h.cmsg_len = (DATA + family.info_len()) as _;
        h.cmsg_level = level;
        h.cmsg_type = kind;
        write(&mut c.bytes, h);
        c
    }

    /// The buffer, for a `msghdr`'s `msg_control`.
    pub(super) fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.bytes.as_mut_ptr().cast()
    }

    /// The first `len` bytes, as the kernel reported writing them (clamped to the buffer).
    pub(super) fn received(&self, len: usize) -> &[u8] {
        &self.bytes[..len.min(CONTROL_LEN)]
    }
}

/// Ask the kernel for every datagram's destination address on `socket`, bound (or to be bound)
/// to a wildcard address of `family`. Setting it twice is harmless.
pub(super) fn enable(socket: &impl AsFd, family: Family) -> io::Result<()> {
    let (level, name) = match family {
        Family::V4 => (libc::IPPROTO_IP, libc::IP_PKTINFO),
        Family::V6 => (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO),
    };
    let on: c_int = 1;
    // SAFETY: the descriptor is open for the duration of the borrow; the option value points at
    // a live c_int and its length says so.
    let r = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            level,
            name,
            (&on as *const c_int).cast(),
            size_of::<c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Fill `reply` (made by [`Control::reply`] for `family`) so that the answer leaves from the
/// address the query was sent to, as `received` (the query's control bytes) says: IPv4 with
/// that address as `ipi_spec_dst` and no interface, IPv6 with that address and the receiving
/// interface. False when `received` holds no packet info: the answer goes without one.
pub(super) fn answer_from(family: Family, received: &[u8], reply: &mut Control) -> bool {
    let Some(data) = find(received, family.message()) else {
        return false;
    };
    match family {
        Family::V4 => {
            let Some(got) = read::<in_pktinfo>(data) else {
                return false;
            };
            let info = in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: got.ipi_addr,
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            write(&mut reply.bytes[DATA..], info);
        }
        Family::V6 => {
            let Some(got) = read::<in6_pktinfo>(data) else {
                return false;
            };
            write(&mut reply.bytes[DATA..], got);
        }
    }
    true
}

/// The data of the first control message of the given level and type in `control`.
#[allow(clippy::unnecessary_cast)] // cmsg_len is a size_t on glibc, a socklen_t on musl
fn find(mut control: &[u8], (level, kind): (c_int, c_int)) -> Option<&[u8]> {
    // Each round consumes at least one header's worth of bytes, so this ends.
    while let Some(h) = read::<cmsghdr>(control) {
        let len = h.cmsg_len as usize;
        if len < DATA || len > control.len() {
            return None; // malformed or cut short (MSG_CTRUNC)
        }
        if h.cmsg_level == level && h.cmsg_type == kind {
            return Some(&control[DATA..len]);
        }
        control = control.get(align(len)..).unwrap_or(&[]);
    }
    None
}

/// C structs copied to and from control bytes.
///
/// # Safety
/// Implement only for `Copy` types made of integers and arrays of integers, without padding
/// bytes: every bit pattern is then a valid value, and every byte of a value is initialised.
unsafe trait Plain: Copy {}
// SAFETY: integers only: size_t and two ints (16 bytes, no padding) on 64-bit Linux; on other
// targets, any padding is an explicit private integer field.
unsafe impl Plain for cmsghdr {}
// SAFETY: three 4-byte integers (an int and two in_addr), no padding.
unsafe impl Plain for in_pktinfo {}
// SAFETY: a 16-byte array (in6_addr, 4-aligned) and a 4-byte integer, no padding.
unsafe impl Plain for in6_pktinfo {}

/// A `T` from the start of `bytes`, if they are long enough.
fn read<T: Plain>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: at least size_of::<T>() bytes are readable; read_unaligned needs no alignment;
    // any bit pattern is a valid T (Plain).
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// Write `value` at the start of `bytes` (callers pass constant sizes that fit).
fn write<T: Plain>(bytes: &mut [u8], value: T) {
    assert!(bytes.len() >= size_of::<T>());
    // SAFETY: at least size_of::<T>() bytes are writable; write_unaligned needs no alignment;
    // a Plain value has no padding, so every byte written is initialised.
    unsafe { bytes.as_mut_ptr().cast::<T>().write_unaligned(value) }
}

#[cfg(test)]
#[allow(clippy::unnecessary_cast)] // as in `find`
mod tests {
    use super::*;

    fn v4(octets: [u8; 4]) -> libc::in_addr {
        libc::in_addr {
            s_addr: u32::from_ne_bytes(octets),
        }
    }

    /// Control bytes as the kernel writes them: one message of the given level and type.
    fn message<T: Plain>(level: c_int, kind: c_int, info: T) -> Control {
        let mut c = Control::reply(Family::V4);
        let mut h = read::<cmsghdr>(&c.bytes).unwrap();
        h.cmsg_len = (DATA + size_of::<T>()) as _;
        h.cmsg_level = level;
        h.cmsg_type = kind;
        write(&mut c.bytes, h);
        write(&mut c.bytes[DATA..], info);
        c
    }

    #[test]
    fn sizes_are_cmsg_space() {
        // SAFETY: CMSG_SPACE and CMSG_LEN are arithmetic on their argument.
        unsafe {
            assert_eq!(
                Family::V4.reply_len(),
                libc::CMSG_SPACE(size_of::<in_pktinfo>() as u32) as usize
            );
            assert_eq!(
                Family::V6.reply_len(),
                libc::CMSG_SPACE(size_of::<in6_pktinfo>() as u32) as usize
            );
            assert_eq!(DATA, libc::CMSG_LEN(0) as usize);
        }
    }

    #[test]
    fn ipv4_reply_leaves_from_the_destination() {
        let got = in_pktinfo {
            ipi_ifindex: 1,
            ipi_spec_dst: v4([127, 0, 0, 9]),
            ipi_addr: v4([127, 0, 0, 2]),
        };
        let rx = message(libc::IPPROTO_IP, libc::IP_PKTINFO, got);
        let mut tx = Control::reply(Family::V4);
        let len = DATA + size_of::<in_pktinfo>();
        assert!(answer_from(Family::V4, rx.received(len), &mut tx));
        let h = read::<cmsghdr>(&tx.bytes).unwrap();
        assert_eq!(
            (h.cmsg_level, h.cmsg_type),
            (libc::IPPROTO_IP, libc::IP_PKTINFO)
        );
        assert_eq!(h.cmsg_len as usize, len);
        let sent = read::<in_pktinfo>(&tx.bytes[DATA..]).unwrap();
        assert_eq!(sent.ipi_ifindex, 0);
        assert_eq!(sent.ipi_spec_dst.s_addr, got.ipi_addr.s_addr);
    }

    #[test]
    fn ipv6_reply_carries_address_and_interface() {
        let mut addr = libc::in6_addr { s6_addr: [0; 16] };
        addr.s6_addr[15] = 1;
        let got = in6_pktinfo {
            ipi6_addr: addr,
            ipi6_ifindex: 3,
        };
        let rx = message(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, got);
        let mut tx = Control::reply(Family::V6);
        assert!(answer_from(Family::V6, rx.received(CONTROL_LEN), &mut tx));
        let h = read::<cmsghdr>(&tx.bytes).unwrap();
        assert_eq!(
            (h.cmsg_level, h.cmsg_type),
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
        );
        assert_eq!(h.cmsg_len as usize, DATA + size_of::<in6_pktinfo>());
        let sent = read::<in6_pktinfo>(&tx.bytes[DATA..]).unwrap();
        assert_eq!(sent.ipi6_addr.s6_addr, addr.s6_addr);
        assert_eq!(sent.ipi6_ifindex, 3);
    }

    #[test]
    fn no_usable_packet_info_means_no_reply_control() {
        let info = in_pktinfo {
            ipi_ifindex: 1,
            ipi_spec_dst: v4([127, 0, 0, 2]),
            ipi_addr: v4([127, 0, 0, 2]),
        };
        let mut tx = Control::reply(Family::V4);
        // Nothing received.
        assert!(!answer_from(Family::V4, &[], &mut tx));
        // Another message type only.
        let other = message(libc::IPPROTO_IP, libc::IP_TTL, info);
        assert!(!answer_from(
            Family::V4,
            other.received(CONTROL_LEN),
            &mut tx
        ));
        // The other family's message.
        let good = message(libc::IPPROTO_IP, libc::IP_PKTINFO, info);
        assert!(!answer_from(
            Family::V6,
            good.received(CONTROL_LEN),
            &mut tx
        ));
        // Cut short: a length past the bytes received.
        assert!(!answer_from(Family::V4, good.received(DATA + 4), &mut tx));
        // A length shorter than a header.
        let mut bad = good;
        let mut h = read::<cmsghdr>(&bad.bytes).unwrap();
        h.cmsg_len = 1;
        write(&mut bad.bytes, h);
        assert!(!answer_from(Family::V4, bad.received(CONTROL_LEN), &mut tx));
        // A message too short for the packet info.
        h.cmsg_len = (DATA + 4) as _;
        write(&mut bad.bytes, h);
        assert!(!answer_from(Family::V4, bad.received(CONTROL_LEN), &mut tx));
    }
}
