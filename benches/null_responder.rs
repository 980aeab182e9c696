//! A do-nothing UDP "DNS server": the ceiling for the dnsperf benchmark.
//!
//! It receives each datagram into one preallocated buffer, sets the QR bit and
//! sends the same bytes back. No parsing, no lookup, no allocation per packet,
//! so whatever it achieves is what the kernel's loopback path and one
//! `recv_from`/`send_to` pair per query cost on this machine. `benches/dnsperf.sh`
//! compares real servers against it.
//!
//! Usage: `null_responder 127.0.0.1:5391` (std only, no dependencies).

use std::net::UdpSocket;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: null_responder ADDR:PORT");
        return ExitCode::from(64);
    };
    let socket = match UdpSocket::bind(&addr) {
        Ok(socket) => socket,
        Err(err) => {
            eprintln!("null_responder: cannot bind {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut buf = [0u8; 4096];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(err) => {
                eprintln!("null_responder: recv_from: {err}");
                continue;
            }
        };
        // Anything shorter than a DNS header is dropped, as a server would.
        if len < 12 {
            continue;
        }
        buf[2] |= 0x80; // QR: this is a response.
        if let Err(err) = socket.send_to(&buf[..len], peer) {
            eprintln!("null_responder: send_to {peer}: {err}");
        }
    }
}
