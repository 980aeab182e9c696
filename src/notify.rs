//! NOTIFY (RFC 1996) to a zone's secondaries whenever it gets a new serial.
//!
//! One task follows the publisher's version counter (a `watch`); on each change it reads the
//! served snapshot and, for every zone with `[zone.transfer] notify` targets whose serial is not
//! the one last announced (at start: every such zone), starts one sender per target. A sender
//! sends a NOTIFY over UDP (opcode NOTIFY, AA, the zone's SOA as question and answer) and waits
//! for the acknowledgement (same ID, QR, opcode NOTIFY, from the target's address): after 1, 2,
//! 4, 8 and 16 seconds without one it sends again, and gives up after the fifth try. A newer
//! serial for the same zone and target replaces a sender still trying. Every datagram and
//! outcome is counted (`meridian_notify_total{zone, result}`: sent, acked, refused, unanswered)
//! and the last outcome per zone and target is kept for `/status`. A zone with TSIG `keys` signs
//! its NOTIFY with the first and wants the acknowledgement signed with it (RFC 8945).
//!
//! Layer 6 of ARCHITECTURE.md: reads the served snapshot; the publisher's version counter comes
//! in as a `watch` receiver.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::snapshot::Snapshot;
use crate::wire::tsig::{Key, Verifier, sign_query};
use crate::wire::{CLASS_IN, TYPE_SOA};

/// Tries per NOTIFY before giving up.
pub const TRIES: u32 = 5;

/// Wait for the acknowledgement of the first try; doubled at each try.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);

/// The last outcome of notifying one target of one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    pub zone: String,
    pub target: SocketAddr,
    /// The serial announced.
    pub serial: u32,
    /// "sending", "acked", "refused" (an answer with an error RCODE) or "unanswered".
    pub result: &'static str,
    /// Tries so far.
    pub tries: u32,
    /// Unix time (ms) of the last change.
    pub at_unix_ms: u64,
}

/// Handle to the NOTIFY task's state; clones share it.
#[derive(Clone, Default)]
pub struct Notifier {
    status: Arc<Mutex<HashMap<(String, SocketAddr), TargetStatus>>>,
}

impl Notifier {
    /// Every target's last outcome, by zone then target.
    pub fn status(&self) -> Vec<TargetStatus> {
        let mut all: Vec<TargetStatus> = self
            .status
            .lock()
            .expect("notify status lock")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| (&a.zone, a.target).cmp(&(&b.zone, b.target)));
        all
    }

    fn set(&self, s: TargetStatus) {
        self.status
            .lock()
            .expect("notify status lock")
            .insert((s.zone.clone(), s.target), s);
    }

    /// Start the task: follow `versions`, announce `snapshot`'s zones' serials.
    pub fn start(
        &self,
        snapshot: Arc<ArcSwap<Snapshot>>,
        versions: watch::Receiver<u64>,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) {
        tracker.spawn(run(self.clone(), snapshot, versions, cancel));
    }
}

/// The serial a sender announces, and its task.
type Sender = (u32, JoinHandle<()>);

async fn run(
    notifier: Notifier,
    snapshot: Arc<ArcSwap<Snapshot>>,
    mut versions: watch::Receiver<u64>,
    cancel: CancellationToken,
) {
    // (apex, target) → (serial announced, its sender).
    let mut senders: HashMap<(Box<[u8]>, SocketAddr), Sender> = HashMap::new();
    loop {
        versions.borrow_and_update();
        let snap = snapshot.load_full();
        for zone in snap.catalog.zones() {
            let Some(settings) = &zone.replica.settings else {
                continue;
            };
            for &target in settings.notify.iter() {
                let key = (Box::<[u8]>::from(zone.apex()), target);
                if senders.get(&key).is_some_and(|(s, _)| *s == zone.serial) {
                    continue;
                }
                if let Some((_, old)) = senders.remove(&key) {
                    old.abort();
                }
                let message = notify_message(zone);
                // Signed with the zone's first transfer key, when it has keys: a secondary that
                // takes the zone by key usually wants NOTIFY signed by it too.
                let tsig = zone
                    .transfer_keys
                    .first()
                    .and_then(|&k| snap.tsig_keys.get(k))
                    .cloned();
                let task = tokio::spawn(send(
                    notifier.clone(),
                    zone.origin.clone(),
                    zone.serial,
                    target,
                    (message, tsig),
                    cancel.clone(),
                ));
                senders.insert(key, (zone.serial, task));
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = versions.changed() => if changed.is_err() { break },
        }
    }
    for (_, (_, task)) in senders {
        task.abort();
    }
}

/// A NOTIFY for `zone` (ID zero; set per try): opcode NOTIFY, AA, the apex SOA as question and
/// as the one answer record (RFC 1996 §3.7).
pub fn notify_message(zone: &crate::zone::Zone) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&((4u16 << 11) | 0x0400).to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
    m.extend_from_slice(zone.apex());
    m.extend_from_slice(&TYPE_SOA.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    m.extend_from_slice(&[0xC0, 0x0C]);
    m.extend_from_slice(zone.soa_record());
    m
}

/// What came back for one NOTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// NOERROR.
    Acked,
    /// An acknowledgement with this error RCODE.
    Refused(u8),
}

/// Whether `reply` acknowledges the NOTIFY with ID `id`: a response (QR) with opcode NOTIFY and
/// that ID; its RCODE says how.
pub fn ack_of(reply: &[u8], id: u16) -> Option<Ack> {
    if reply.len() < 12 || u16::from_be_bytes([reply[0], reply[1]]) != id {
        return None;
    }
    let flags = u16::from_be_bytes([reply[2], reply[3]]);
    if flags & 0x8000 == 0 || (flags >> 11) & 0xF != 4 {
        return None;
    }
    match (flags & 0xF) as u8 {
        0 => Some(Ack::Acked),
        rcode => Some(Ack::Refused(rcode)),
    }
}

async fn send(
    notifier: Notifier,
    zone: String,
    serial: u32,
    target: SocketAddr,
    (base, key): (Vec<u8>, Option<Key>),
    cancel: CancellationToken,
) {
    let status = |result, tries| TargetStatus {
        zone: zone.clone(),
        target,
        serial,
        result,
        tries,
        at_unix_ms: crate::health::clock::unix_now_ms(),
    };
    let count = |result: &'static str| {
        metrics::counter!("meridian_notify_total", "zone" => zone.clone(), "result" => result)
            .increment(1)
    };
    let local: SocketAddr = if target.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(zone = %zone, %target, "NOTIFY not sent: cannot open a socket: {e}");
            count("unanswered");
            notifier.set(status("unanswered", 0));
            return;
        }
    };
    let mut wait = FIRST_WAIT;
    let mut buf = vec![0u8; 4096];
    for attempt in 1..=TRIES {
        let id = crate::wire::random_id();
        let mut message = base.clone();
        message[..2].copy_from_slice(&id.to_be_bytes());
        let now = crate::health::clock::unix_now();
        let mut verifier = key
            .as_ref()
            .map(|k| Verifier::new(k, sign_query(k, &mut message, now)));
        count("sent");
        notifier.set(status("sending", attempt));
        if let Err(e) = socket.send_to(&message, target).await {
            tracing::debug!(zone = %zone, %target, "NOTIFY send failed: {e}");
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let received = tokio::select! {
                _ = cancel.cancelled() => return,
                r = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)) => r,
            };
            match received {
                Err(_) => break, // this try timed out
                Ok(Err(_)) => continue,
                Ok(Ok((len, from))) => {
                    if from.ip().to_canonical() != target.ip().to_canonical() {
                        continue;
                    }
                    let reply = &buf[..len];
                    if ack_of(reply, id).is_none() {
                        continue;
                    }
                    // A NOTIFY signed with a key wants its acknowledgement signed with it.
                    if let Some(v) = verifier.as_mut() {
                        let now = crate::health::clock::unix_now();
                        if let Err(e) = v.verify(reply, now).and_then(|_| v.finish()) {
                            tracing::warn!(zone = %zone, %target, "NOTIFY acknowledgement refused: TSIG {e:?}");
                            count("refused");
                            notifier.set(status("refused", attempt));
                            return;
                        }
                    }
                    match ack_of(reply, id) {
                        None => continue,
                        Some(Ack::Acked) => {
                            count("acked");
                            notifier.set(status("acked", attempt));
                            tracing::debug!(zone = %zone, %target, serial, "NOTIFY acknowledged");
                            return;
                        }
                        Some(Ack::Refused(rcode)) => {
                            count("refused");
                            notifier.set(status("refused", attempt));
                            tracing::warn!(zone = %zone, %target, serial, rcode, "NOTIFY refused by the secondary");
                            return;
                        }
                    }
                }
            }
        }
        wait *= 2;
    }
    count("unanswered");
    notifier.set(status("unanswered", TRIES));
    tracing::warn!(zone = %zone, %target, serial, "NOTIFY unanswered after {TRIES} tries");
}
