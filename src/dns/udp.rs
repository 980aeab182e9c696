//! UDP serving: one OS thread per worker, each with its own SO_REUSEPORT socket.
//!
//! The kernel spreads datagrams over the sockets; a worker owns its receive buffer, its response
//! buffer and its parsed [`Query`] for its whole life, and reads the current [`Snapshot`]
//! through an `arc_swap::Cache` (one atomic load per datagram; the `Arc` is only re-cloned after
//! a reload). Steady state per datagram: `recvfrom`, [`respond`], `sendto`; no allocation, no
//! lock, no task. Workers poll a stop flag between datagrams (a short receive timeout bounds how
//! long shutdown waits for an idle socket).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::{ArcSwap, Cache};
use socket2::{Domain, Protocol, Socket, Type};

use super::answer::{MAX_MESSAGE, Snapshot, Transport, respond};
use super::wire::Query;

/// How often an idle worker looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Bind a UDP socket that other workers can share through SO_REUSEPORT.
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
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
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || serve(&socket, &snapshot, &stop))
}

/// The worker loop. Public so that tests and benchmarks can drive it on a thread of their own.
pub fn serve(socket: &UdpSocket, snapshot: &Arc<ArcSwap<Snapshot>>, stop: &AtomicBool) {
    let mut cache = Cache::new(Arc::clone(snapshot));
    let mut query = Query::default();
    let mut rx = vec![0u8; MAX_MESSAGE];
    let mut tx = vec![0u8; MAX_MESSAGE];
    while !stop.load(Ordering::Relaxed) {
        let (len, peer) = match socket.recv_from(&mut rx) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => continue, // ICMP errors surfacing as ECONNREFUSED etc.: nothing to do
        };
        let snap = cache.load();
        if let Some(out) = respond(snap, &rx[..len], Transport::Udp, &mut query, &mut tx) {
            // A full send queue or an unreachable peer is the peer's problem, not ours.
            let _ = socket.send_to(&tx[..out.len], peer);
        }
    }
}
