//! DNS over TCP (RFC 7766): length-prefixed messages, pipelining, idle timeout, connection cap.
//!
//! One tokio task per connection. Queries on a connection are answered in order by the same
//! [`respond`] as UDP, with the full 64 KiB size limit; responses to pipelined queries are
//! written together and flushed when no further query is already buffered. A connection is
//! closed when it sits idle past the timeout, when a message is incomplete for that long, or on
//! shutdown. Past the connection cap new connections are accepted and closed at once, so the
//! listen queue never fills with clients that wait in vain.
//!
//! A zone transfer (AXFR or IXFR of a zone whose `[zone.transfer] allow` holds the client, or
//! signed with one of its `keys`, see [`crate::dns::xfr`]) is streamed instead: each message is
//! written to the socket as it is built (and signed, when the request was), in the one
//! response buffer, so a transfer holds one message in memory.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dns::answer::Work;
use crate::dns::answer::{Peer, Transport, respond};
use crate::dns::xfr::{self, Request};
use crate::metrics::Tally;
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

/// Limits applied to every TCP connection.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Accept connections until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    snapshot: Arc<ArcSwap<Snapshot>>,
    limits: TcpLimits,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _peer)) = accepted else {
            // EMFILE and friends: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream); // over the cap: close at once
            continue;
        };
        let (snapshot, cancel) = (Arc::clone(&snapshot), cancel.clone());
        tracker.spawn(async move {
            let _ = connection(stream, &snapshot, limits.idle_timeout, &cancel).await;
            drop(permit);
        });
    }
}

async fn connection(
    stream: TcpStream,
    snapshot: &ArcSwap<Snapshot>,
    idle: Duration,
    cancel: &CancellationToken,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let client = stream
        .peer_addr()
        .map_or(std::net::IpAddr::from([0u8; 4]), |a| a.ip());
    let mut rng = Rng::new(super::seed());

    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::new(wr);
    let mut work = Work::default();
    let mut msg = vec![0u8; MAX_MESSAGE];
    let mut out = vec![0u8; MAX_MESSAGE + 2];
    loop {
        let len = tokio::select! {
            _ = cancel.cancelled() => break,
            r = tokio::time::timeout(idle, rd.read_u16()) => match r {
                Ok(Ok(n)) => n as usize,
                _ => break, // idle timeout, EOF or error
            },
        };
        match tokio::time::timeout(idle, rd.read_exact(&mut msg[..len])).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        let snap = snapshot.load();
        work.now = crate::wire::unix_now();
        match xfr::request(&snap, &msg[..len], client, work.now, &mut work.query) {
            Some(Request::Serve(mut transfer)) => {
                let kind = transfer.kind().as_str();
                crate::metrics::count_transfer(&transfer.zone().origin, kind, "served");
                wr.flush().await?; // answers to earlier queries go first
                loop {
                    if transfer.signed() {
                        transfer.set_now(crate::wire::unix_now());
                    }
                    let Some(n) = transfer.next_message(&mut out[2..]) else {
                        break;
                    };
                    out[..2].copy_from_slice(&(n as u16).to_be_bytes());
                    // A client that stops reading for the idle timeout, or shutdown, cuts the
                    // transfer short and closes the connection.
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        w = tokio::time::timeout(idle, wr.write_all(&out[..2 + n])) => match w {
                            Ok(w) => w?,
                            Err(_) => return Ok(()),
                        },
                    }
                }
                wr.flush().await?;
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
        let answered = respond(&snap, &msg[..len], peer, &mut work, &mut out[2..]);
        if let Some(e) = work.tsig_error {
            crate::metrics::count_tsig_error(e);
        }
        with_tally(|tally| {
            if let Some(t0) = t0 {
                tally.record_latency(Transport::Tcp, t0.elapsed());
            }
            match &answered {
                Some(o) => tally.record(&snap, o, work.steered.as_ref(), Transport::Tcp),
                None => tally.dropped(),
            }
        });
        if let Some(o) = answered {
            out[..2].copy_from_slice(&(o.len as u16).to_be_bytes());
            wr.write_all(&out[..2 + o.len]).await?;
        }
        if rd.buffer().is_empty() {
            with_tally(Tally::flush_if_pending);
            wr.flush().await?;
        }
    }
    wr.flush().await?;
    wr.shutdown().await
}
