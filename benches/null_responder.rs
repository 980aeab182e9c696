//! A do-nothing UDP "DNS server": the reference point of the dnsperf benchmark.
//!
//! It receives each datagram into a preallocated 4096-byte buffer, sets the QR bit and sends
//! the same bytes back. No parsing, no lookup, no allocation per packet, so what it costs is
//! what the kernel's loopback path and one `recv_from`/`send_to` pair per query cost here.
//! `benches/dnsperf.sh` compares real servers against it.
//!
//! With `--mmsg` (Linux only) it does the same with `recvmmsg`/`sendmmsg` in batches of up to
//! 32, the way gdnsd, Knot and NSD read their UDP sockets: the one-by-one loop is no ceiling
//! for those, since batching saves system calls per datagram once queries queue up.
//!
//! Usage: `null_responder 127.0.0.1:5391 [--mmsg]` (std only, no dependencies).

use std::net::UdpSocket;
use std::process::ExitCode;

const BUF_LEN: usize = 4096;
const DNS_HEADER_LEN: usize = 12;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(addr), mode) = (args.next(), args.next()) else {
        eprintln!("usage: null_responder ADDR:PORT [--mmsg]");
        return ExitCode::from(64);
    };
    let socket = match UdpSocket::bind(&addr) {
        Ok(socket) => socket,
        Err(err) => {
            eprintln!("null_responder: cannot bind {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match mode.as_deref() {
        None => serve_one_by_one(&socket),
        #[cfg(target_os = "linux")]
        Some("--mmsg") => mmsg::serve(&socket),
        Some(other) => {
            eprintln!("null_responder: unknown option {other}");
            ExitCode::from(64)
        }
    }
}

fn serve_one_by_one(socket: &UdpSocket) -> ExitCode {
    let mut buf = [0u8; BUF_LEN];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(err) => {
                eprintln!("null_responder: recv_from: {err}");
                continue;
            }
        };
        // Anything shorter than a DNS header is dropped, as a server would.
        if len < DNS_HEADER_LEN {
            continue;
        }
        buf[2] |= 0x80; // QR: this is a response.
        if let Err(err) = socket.send_to(&buf[..len], peer) {
            eprintln!("null_responder: send_to {peer}: {err}");
        }
    }
}

/// Batched receive and send through glibc's `recvmmsg`/`sendmmsg`, declared here so that the
/// program stays dependency-free. The layouts are those of glibc's `<sys/socket.h>`.
#[cfg(target_os = "linux")]
mod mmsg {
    use super::{BUF_LEN, DNS_HEADER_LEN};
    use std::ffi::{c_int, c_uint, c_void};
    use std::io;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::process::ExitCode;
    use std::ptr;

    const BATCH: usize = 32;
    const MSG_WAITFORONE: c_int = 0x10000;

    #[repr(C)]
    struct IoVec {
        base: *mut c_void,
        len: usize,
    }

    #[repr(C)]
    struct MsgHdr {
        name: *mut c_void,
        namelen: u32,
        iov: *mut IoVec,
        iovlen: usize,
        control: *mut c_void,
        controllen: usize,
        flags: c_int,
    }

    #[repr(C)]
    struct MMsgHdr {
        hdr: MsgHdr,
        len: c_uint,
    }

    /// Room for any socket address (`struct sockaddr_storage`).
    #[repr(C, align(8))]
    struct SockAddrStorage([u8; 128]);

    unsafe extern "C" {
        fn recvmmsg(
            fd: c_int,
            msgs: *mut MMsgHdr,
            vlen: c_uint,
            flags: c_int,
            timeout: *mut c_void,
        ) -> c_int;
        fn sendmmsg(fd: c_int, msgs: *mut MMsgHdr, vlen: c_uint, flags: c_int) -> c_int;
    }

    /// A zeroed, never-freed array of `BATCH` values, as one raw pointer: the kernel and this loop
    /// share these buffers for the life of the process, so they are only ever touched through it.
    fn leak_array<T>(make: impl FnMut(usize) -> T) -> *mut T {
        Box::leak((0..BATCH).map(make).collect::<Vec<T>>().into_boxed_slice()).as_mut_ptr()
    }

    pub fn serve(socket: &UdpSocket) -> ExitCode {
        let fd = socket.as_raw_fd();
        let bufs = leak_array(|_| [0u8; BUF_LEN]);
        let addrs = leak_array(|_| SockAddrStorage([0; 128]));
        let iovs = leak_array(|i| IoVec {
            // SAFETY: i < BATCH, so the pointer stays inside the leaked array.
            base: unsafe { bufs.add(i) }.cast(),
            len: BUF_LEN,
        });
        let header = |i: usize| MsgHdr {
            // SAFETY: i < BATCH, so the pointer stays inside the leaked array.
            name: unsafe { addrs.add(i) }.cast(),
            namelen: 128,
            // SAFETY: as above.
            iov: unsafe { iovs.add(i) },
            iovlen: 1,
            control: ptr::null_mut(),
            controllen: 0,
            flags: 0,
        };
        let msgs = leak_array(|i| MMsgHdr {
            hdr: header(i),
            len: 0,
        });
        // Replies are gathered here, so that a short datagram in the batch is skipped, not echoed.
        let out = leak_array(|i| MMsgHdr {
            hdr: header(i),
            len: 0,
        });
        loop {
            for i in 0..BATCH {
                // SAFETY: i < BATCH: both pointers stay inside their leaked, live arrays.
                unsafe {
                    (*msgs.add(i)).hdr.namelen = 128;
                    (*iovs.add(i)).len = BUF_LEN;
                }
            }
            // SAFETY: `msgs` holds BATCH headers pointing at live leaked buffers.
            let n = unsafe { recvmmsg(fd, msgs, BATCH as c_uint, MSG_WAITFORONE, ptr::null_mut()) };
            if n < 0 {
                eprintln!("null_responder: recvmmsg: {}", io::Error::last_os_error());
                continue;
            }
            let mut replies = 0;
            for i in 0..n as usize {
                // SAFETY: i < n <= BATCH and replies <= i: every pointer is inside its array.
                unsafe {
                    let len = (*msgs.add(i)).len as usize;
                    if len < DNS_HEADER_LEN {
                        continue;
                    }
                    (*bufs.add(i))[2] |= 0x80; // QR: this is a response.
                    (*iovs.add(i)).len = len;
                    let reply = &mut (*out.add(replies)).hdr;
                    reply.name = (*msgs.add(i)).hdr.name;
                    reply.namelen = (*msgs.add(i)).hdr.namelen;
                    reply.iov = iovs.add(i);
                }
                replies += 1;
            }
            let mut sent = 0;
            while sent < replies {
                // SAFETY: the first `replies` headers of `out` were filled above.
                let m = unsafe { sendmmsg(fd, out.add(sent), (replies - sent) as c_uint, 0) };
                if m <= 0 {
                    eprintln!("null_responder: sendmmsg: {}", io::Error::last_os_error());
                    break;
                }
                sent += m as usize;
            }
        }
    }
}
