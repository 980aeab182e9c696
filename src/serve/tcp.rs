//! DNS over TCP (RFC 7766): length-prefixed messages, pipelining, and the limits that keep a
//! slow or stuck client from holding more than its share.
//!
//! One tokio task per connection (a task waiting on a slow client holds no thread). Queries on a
//! connection are answered in order by the same [`respond`] as UDP, with the full 64 KiB size
//! limit, and never rate limited: a TCP client's address is not forged. Limits (`[dns] tcp_*`,
//! [`TcpSettings`]), each counted in `meridian_tcp_connections_{refused,closed}_total`:
//!
//! - past `tcp_max_connections` open, or `tcp_max_connections_per_client` from one address, a
//!   new connection is accepted and closed at once, so the listen queue never fills with
//!   clients that wait in vain;
//! - a connection on which no message starts for `tcp_idle_timeout_secs` is closed (idle);
//! - a message whose first byte arrived must be complete within `tcp_io_timeout_ms` (a client
//!   that sends a byte at a time is closed: read_timeout), and each write of answers must be
//!   taken by the client within it too (a client that does not read: write_timeout);
//! - after `tcp_max_queries` answers the connection is closed (max_queries);
//! - answers to pipelined queries already read are written out together, at most
//!   `tcp_max_in_flight` of them at a time; queries read ahead sit in an 8 KiB buffer.
//!
//! Memory per connection: the two 8 KiB buffers until its first whole message, then the largest
//! message it sent and one 64 KiB response buffer. So a client that never completes a message
//! costs 16 KiB and a slot until a timeout.
//!
//! A zone transfer (AXFR or IXFR of a zone whose `[zone.transfer] allow` holds the client, or
//! signed with one of its `keys`, see [`crate::dns::xfr`]) is streamed instead: each message is
//! written to the socket as it is built (and signed, when the request was), in the one
//! response buffer, so a transfer holds one message in memory; a client that stops reading it
//! for the idle timeout is closed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::shield::Defence;
pub use crate::config::tcp::TcpSettings;
use crate::dns::answer::Work;
use crate::dns::answer::{Peer, Transport, respond};
use crate::dns::xfr::{self, Request};
use crate::metrics::{Tally, TcpClose};
use crate::policy::pick::Rng;
use crate::snapshot::Snapshot;
use crate::wire::MAX_MESSAGE;

thread_local! {
    /// The TCP counters of this runtime thread (see [`crate::metrics::Tally`]): the connections
    /// a thread runs share them, and no lock is taken; each is only borrowed between awaits.
    static TALLY: RefCell<Option<Tally>> = const { RefCell::new(None) };
}

/// Run `f` on this thread's TCP tally.
fn with_tally<R>(f: impl FnOnce(&mut Tally) -> R) -> R {
    TALLY.with(|t| f(t.borrow_mut().get_or_insert_with(Tally::new)))
}

/// Open connections per client address, for `tcp_max_connections_per_client`. Taken on accept
/// and given back when a connection ends (the accept loop and the ends take the lock, never a
/// query).
#[derive(Default)]
struct Clients(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`Clients`], given back on drop.
struct ClientSlot {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Clients {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.0.lock().expect("clients lock");
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        crate::metrics::tcp().open.increment(1.0);
        Some(ClientSlot {
            clients: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        // Here, not at the end of the connection's task: a task dropped unfinished (its runtime
        // shut down) still gives its place back.
        crate::metrics::tcp().open.decrement(1.0);
        let mut open = self.clients.0.lock().expect("clients lock");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Accept connections until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    snapshot: Arc<ArcSwap<Snapshot>>,
    defence: Arc<ArcSwap<Defence>>,
    limits: TcpSettings,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let counters = crate::metrics::tcp();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(Clients::default());
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            // EMFILE and friends: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            counters.refused[0].increment(1);
            drop(stream); // over the cap: close at once
            continue;
        };
        let client = peer.ip().to_canonical();
        let Some(slot) = clients.take(client, limits.max_connections_per_client) else {
            counters.refused[1].increment(1);
            drop(stream);
            continue;
        };
        let (snapshot, defence, cancel) =
            (Arc::clone(&snapshot), Arc::clone(&defence), cancel.clone());
        tracker.spawn(async move {
            let why = connection(stream, client, &snapshot, &defence, &limits, &cancel).await;
            counters.closed[why as usize].increment(1);
            drop(slot);
            drop(permit);
        });
    }
}

/// Run `f` for at most `limit`, unless `cancel` fires first: `Err(on_timeout)` on the timeout,
/// `Err(Shutdown)` on cancellation, `Err(Error)` (or `Client` for an early end of stream) on an
/// I/O error.
async fn bounded<T>(
    cancel: &CancellationToken,
    limit: Duration,
    on_timeout: TcpClose,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, TcpClose> {
    tokio::select! {
        _ = cancel.cancelled() => Err(TcpClose::Shutdown),
        r = tokio::time::timeout(limit, f) => match r {
            Err(_) => Err(on_timeout),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(TcpClose::Client),
            Ok(Err(_)) => Err(TcpClose::Error),
        },
    }
}

/// Read one length-prefixed message into `msg` (grown to fit); its length.
async fn read_message(
    rd: &mut BufReader<OwnedReadHalf>,
    msg: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let len = rd.read_u16().await? as usize;
    if msg.len() < len {
        msg.resize(len, 0);
    }
    rd.read_exact(&mut msg[..len]).await?;
    Ok(len)
}

/// Serve one connection until a limit, the client or shutdown ends it; why it ended.
async fn connection(
    stream: TcpStream,
    client: IpAddr,
    snapshot: &ArcSwap<Snapshot>,
    defence: &ArcSwap<Defence>,
    limits: &TcpSettings,
    cancel: &CancellationToken,
) -> TcpClose {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::new(wr);
    let why =
        match answer_queries(&mut rd, &mut wr, client, snapshot, defence, limits, cancel).await {
            Ok(why) | Err(why) => why,
        };
    // Whatever is still buffered goes out, within the I/O timeout, unless the client is gone.
    if matches!(
        why,
        TcpClose::MaxQueries | TcpClose::Shutdown | TcpClose::Client
    ) {
        let io = limits.io_timeout;
        let _ = tokio::time::timeout(io, async {
            wr.flush().await?;
            wr.shutdown().await
        })
        .await;
    }
    why
}

/// The loop of one connection: wait for a message, read it, answer it.
async fn answer_queries(
    rd: &mut BufReader<OwnedReadHalf>,
    wr: &mut BufWriter<OwnedWriteHalf>,
    client: IpAddr,
    snapshot: &ArcSwap<Snapshot>,
    defence: &ArcSwap<Defence>,
    limits: &TcpSettings,
    cancel: &CancellationToken,
) -> Result<TcpClose, TcpClose> {
    let mut rng = Rng::new(super::seed());
    let mut work = Work::default();
    // Allocated with the first whole message: a client that never sends one costs nothing more.
    let mut msg = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let (idle, io) = (limits.idle_timeout, limits.io_timeout);
    let (mut answered, mut held) = (0u32, 0u32);
    loop {
        // Idle until the next message starts.
        let started = bounded(cancel, idle, TcpClose::Idle, async {
            Ok(!rd.fill_buf().await?.is_empty())
        })
        .await?;
        if !started {
            return Ok(TcpClose::Client);
        }
        let len = bounded(
            cancel,
            io,
            TcpClose::ReadTimeout,
            read_message(rd, &mut msg),
        )
        .await?;
        if out.is_empty() {
            out = vec![0u8; MAX_MESSAGE + 2];
        }
        let snap = snapshot.load();
        work.now = crate::wire::unix_now();
        work.cookies = defence.load().cookies;
        match xfr::request(&snap, &msg[..len], client, work.now, &mut work.query) {
            Some(Request::Serve(mut transfer)) => {
                let kind = transfer.kind().as_str();
                crate::metrics::count_transfer(&transfer.zone().origin, kind, "served");
                // Answers to earlier queries go first.
                bounded(cancel, io, TcpClose::WriteTimeout, wr.flush()).await?;
                held = 0;
                loop {
                    if transfer.signed() {
                        transfer.set_now(crate::wire::unix_now());
                    }
                    let Some(n) = transfer.next_message(&mut out[2..]) else {
                        break;
                    };
                    out[..2].copy_from_slice(&(n as u16).to_be_bytes());
                    // A client that stops reading for the idle timeout cuts the transfer short.
                    let write = wr.write_all(&out[..2 + n]);
                    bounded(cancel, idle, TcpClose::WriteTimeout, write).await?;
                }
                bounded(cancel, io, TcpClose::WriteTimeout, wr.flush()).await?;
                continue;
            }
            Some(Request::Refused(zone, kind)) => {
                crate::metrics::count_transfer(&zone.origin, kind.as_str(), "refused");
            }
            // Answered NOTAUTH by `respond`, which counts the TSIG error.
            Some(Request::BadTsig(zone, kind, _)) => {
                crate::metrics::count_transfer(&zone.origin, kind.as_str(), "badtsig");
            }
            None => {}
        }
        let peer = Peer {
            transport: Transport::Tcp,
            addr: client,
            random: rng.next_u64(),
        };
        let started = with_tally(Tally::sample_latency);
        let t0 = started.then(std::time::Instant::now);
        let answer = respond(&snap, &msg[..len], peer, &mut work, &mut out[2..]);
        if let Some(e) = work.tsig_error {
            crate::metrics::count_tsig_error(e);
        }
        with_tally(|tally| {
            if let Some(t0) = t0 {
                tally.record_latency(Transport::Tcp, t0.elapsed());
            }
            if let Some(v) = work.cookie {
                tally.cookie(v);
            }
            match &answer {
                Some(o) => tally.record(&snap, o, work.steered.as_ref(), Transport::Tcp),
                None => tally.dropped(),
            }
        });
        if let Some(o) = answer {
            out[..2].copy_from_slice(&(o.len as u16).to_be_bytes());
            let write = wr.write_all(&out[..2 + o.len]);
            bounded(cancel, io, TcpClose::WriteTimeout, write).await?;
            answered += 1;
            held += 1;
        }
        if answered >= limits.max_queries {
            return Ok(TcpClose::MaxQueries);
        }
        // Pipelined answers go out together: when no further query is read already, or when
        // `max_in_flight` of them wait.
        if rd.buffer().is_empty() || held >= limits.max_in_flight {
            with_tally(Tally::flush_if_pending);
            bounded(cancel, io, TcpClose::WriteTimeout, wr.flush()).await?;
            held = 0;
        }
    }
}
