//! The observations document: what `GET /fleet/observations` serves and a peer's puller parses,
//! one shape for both.
//!
//! A peer's body is untrusted until [`check`] has read it: JSON of the right shape, version
//! [`VERSION`], stamped within `max_age` of this host's clock and at most [`MAX_AHEAD`] ahead of
//! it, from another node, every endpoint named once, latencies finite, every histogram a
//! deflated V2 HDR histogram of the latency windows' exact shape. What comes out is a
//! [`Received`], in the types the engine reads ([`Observation`]). Fields this version does not
//! know are ignored, so a peer may add some without a new version.
//!
//! Histograms are the endpoint's latency window merged over its live slices
//! ([`LatencyWindow::merged_histogram`]): values in units of [`UNIT`] (10 µs), bounds
//! `1..=MAX_UNITS`, [`SIGNIFICANT_DIGITS`] significant digits, `u16` counters; serialised with
//! hdrhistogram's V2 deflate format, then base64 (standard alphabet, padded).
//!
//! [`LatencyWindow::merged_histogram`]: crate::health::latency::LatencyWindow::merged_histogram

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use super::view::{Observation, PeerOverride};
use crate::health::latency::{MAX_UNITS, SIGNIFICANT_DIGITS, UNIT};
use crate::health::state::{Health, OverrideKind, Serving};

/// The document version this build serves and accepts.
pub const VERSION: u64 = 1;
/// Where the admin listener serves it, below a peer's base URL.
pub const PATH: &str = "/fleet/observations";
/// How far ahead of this host's clock a document may be stamped (clock skew allowed).
pub const MAX_AHEAD: Duration = Duration::from_secs(5);
/// Longest base64 histogram accepted (ours take well under 1 KiB).
pub const MAX_HISTOGRAM_TEXT: usize = 64 * 1024;
/// Longest node, vantage or endpoint name accepted.
pub const MAX_NAME: usize = 255;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// [`VERSION`].
    pub version: u64,
    /// The sender's `[node] name`.
    pub node: String,
    /// The sender's vantage: its `[node] region`.
    pub vantage: String,
    /// When the sender wrote the document, Unix milliseconds on its clock.
    pub sent_unix_ms: u64,
    /// The sender's configuration generation, for people reading the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_generation: Option<u64>,
    /// One entry per endpoint the sender probes.
    pub endpoints: Vec<EndpointObservation>,
}

/// What the sender sees of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointObservation {
    pub name: String,
    /// What the sender's answers do with it: "up", "down" or "drained".
    #[serde(with = "ServingDef")]
    pub serving: Serving,
    /// The sender's verdict from its probes: "unknown", "up" or "down".
    #[serde(with = "HealthDef")]
    pub health: Health,
    /// When that verdict last changed, Unix milliseconds.
    pub since_unix_ms: u64,
    /// The manual override in force on the sender, if any.
    #[serde(rename = "override")]
    pub override_: Option<OverrideObservation>,
    /// The sender probes it now and has a verdict from its probes (false: probe sharding
    /// gives it to other instances; its health is then no vote). `true` when absent: senders
    /// from before probe sharding probe everything.
    #[serde(default = "yes")]
    pub probed: bool,
    /// Median probe RTT over the sender's latency window, milliseconds.
    pub p50_ms: Option<f64>,
    /// 90th percentile probe RTT, milliseconds.
    pub p90_ms: Option<f64>,
    /// Probes that answered inside the window.
    pub samples: u64,
    /// Probes lost or failed inside the window.
    pub lost: u64,
    /// The window's RTTs (see the module docs); `null` when not sent.
    pub histogram: Option<String>,
}

/// A manual override as it travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideObservation {
    /// "drain", "force-up" or "force-down".
    pub kind: OverrideKind,
    /// When it was set, Unix milliseconds: across instances the newest wins.
    pub set_unix_ms: u64,
    /// When it ends, Unix milliseconds; `null` = until cleared.
    pub expires_unix_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Serving", rename_all = "lowercase")]
enum ServingDef {
    Up,
    Down,
    Drained,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Health", rename_all = "lowercase")]
enum HealthDef {
    Unknown,
    Up,
    Down,
}

/// A peer's document, checked: what the puller keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub node: String,
    pub vantage: String,
    pub sent_unix_ms: u64,
    /// By endpoint name.
    pub endpoints: HashMap<String, Observation>,
}

/// Why a peer's document was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// Not JSON, or not of the document's shape, or a value out of its range.
    #[error("not an observations document: {0}")]
    Garbage(String),
    /// A version this build does not read.
    #[error("version {0}, this build reads {VERSION}")]
    WrongVersion(u64),
    /// Stamped longer than `max_age` ago.
    #[error("sent {age_ms} ms ago, older than max_age")]
    Stale { age_ms: u64 },
    /// Stamped more than [`MAX_AHEAD`] in the future.
    #[error("sent {ahead_ms} ms in the future of this host's clock")]
    Future { ahead_ms: u64 },
    /// The document is this node's own (a peer URL that points back here, or two nodes with one
    /// name).
    #[error("the document is from node {0:?}, this node's own name")]
    OwnNode(String),
}

/// Read a peer's `body` at `now_unix_ms` (this host's clock), for the node named `own_node`,
/// whose peers' data stays fresh for `max_age`.
pub fn check(
    body: &[u8],
    own_node: &str,
    max_age: Duration,
    now_unix_ms: u64,
) -> Result<Received, Refusal> {
    let garbage = |m: String| Refusal::Garbage(m);
    // The version first: a document of another version may have another shape.
    #[derive(Deserialize)]
    struct Version {
        version: u64,
    }
    let v: Version = serde_json::from_slice(body).map_err(|e| garbage(e.to_string()))?;
    if v.version != VERSION {
        return Err(Refusal::WrongVersion(v.version));
    }
    let doc: Observations = serde_json::from_slice(body).map_err(|e| garbage(e.to_string()))?;
    for (what, name) in [("node", &doc.node), ("vantage", &doc.vantage)] {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(garbage(format!("{what} must be 1 to {MAX_NAME} bytes")));
        }
    }
    let ahead = doc.sent_unix_ms.saturating_sub(now_unix_ms);
    if ahead > millis(MAX_AHEAD) {
        return Err(Refusal::Future { ahead_ms: ahead });
    }
    let age = now_unix_ms.saturating_sub(doc.sent_unix_ms);
    if age > millis(max_age) {
        return Err(Refusal::Stale { age_ms: age });
    }
    if doc.node == own_node {
        return Err(Refusal::OwnNode(doc.node));
    }
    let mut endpoints = HashMap::with_capacity(doc.endpoints.len());
    for e in doc.endpoints {
        if e.name.is_empty() || e.name.len() > MAX_NAME {
            return Err(garbage(format!(
                "endpoint names must be 1 to {MAX_NAME} bytes"
            )));
        }
        let at = |m: &str| garbage(format!("endpoint {:?}: {m}", e.name));
        let p50 = latency(e.p50_ms).ok_or_else(|| at("p50_ms is not a latency"))?;
        let p90 = latency(e.p90_ms).ok_or_else(|| at("p90_ms is not a latency"))?;
        let histogram = match &e.histogram {
            None => None,
            Some(text) => Some(decode_histogram(text).map_err(|m| at(&m))?),
        };
        let observation = Observation {
            serving: e.serving,
            health: e.health,
            since_unix_ms: e.since_unix_ms,
            overridden: e.override_.map(|o| PeerOverride {
                kind: o.kind,
                set_unix_ms: o.set_unix_ms,
                expires_unix_ms: o.expires_unix_ms,
            }),
            probed: e.probed,
            p50,
            p90,
            samples: e.samples,
            lost: e.lost,
            histogram,
        };
        if endpoints.insert(e.name.clone(), observation).is_some() {
            return Err(at("listed twice"));
        }
    }
    Ok(Received {
        node: doc.node,
        vantage: doc.vantage,
        sent_unix_ms: doc.sent_unix_ms,
        endpoints,
    })
}

fn yes() -> bool {
    true
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds as a latency: `Some(None)` for none, `None` when not a finite, non-negative
/// number of at most an hour.
fn latency(ms: Option<f64>) -> Option<Option<Duration>> {
    match ms {
        None => Some(None),
        Some(v) if v.is_finite() && (0.0..=3_600_000.0).contains(&v) => {
            Some(Some(Duration::from_secs_f64(v / 1000.0)))
        }
        Some(_) => None,
    }
}

/// A latency for the document: milliseconds.
pub fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1000.0)
}

/// A latency window's histogram as the document carries it.
pub fn encode_histogram(h: &Histogram<u16>) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail, and our histograms' counts fit the format.
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => STANDARD.encode(bytes),
        Err(e) => unreachable!("serializing a histogram into memory: {e:?}"),
    }
}

/// Header of an uncompressed V2 histogram: cookie, payload length, normalizing offset, digits,
/// lowest and highest trackable values, integer-to-double ratio.
const V2_HEADER: usize = 40;
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// Longest V2 payload accepted: a varint (at most 9 bytes) per counter of our shape is far less.
const MAX_PAYLOAD: u32 = 64 * 1024;

/// A histogram from the document, checked to be of the latency windows' shape before it is
/// decoded (hdrhistogram's decoder allocates whatever the header asks for).
pub fn decode_histogram(text: &str) -> Result<Histogram<u16>, String> {
    if text.len() > MAX_HISTOGRAM_TEXT {
        return Err(format!("histogram over {MAX_HISTOGRAM_TEXT} bytes"));
    }
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let header = |at: usize| -> Option<[u8; 4]> { bytes.get(at..at + 4)?.try_into().ok() };
    if header(0).map(u32::from_be_bytes) != Some(V2_DEFLATE_COOKIE) {
        return Err("histogram is not a V2 deflate histogram".into());
    }
    let mut inner = [0u8; V2_HEADER];
    flate2::read::ZlibDecoder::new(bytes.get(8..).unwrap_or_default())
        .read_exact(&mut inner)
        .map_err(|e| format!("histogram does not inflate: {e}"))?;
    let be32 = |at: usize| u32::from_be_bytes(inner[at..at + 4].try_into().expect("4 bytes"));
    let be64 = |at: usize| u64::from_be_bytes(inner[at..at + 8].try_into().expect("8 bytes"));
    let shape_ok = be32(0) == V2_COOKIE
        && be32(4) <= MAX_PAYLOAD
        && be32(12) == u32::from(SIGNIFICANT_DIGITS)
        && be64(16) == 1
        && be64(24) == MAX_UNITS;
    if !shape_ok {
        return Err(format!(
            "histogram is not of the latency windows' shape (1..={MAX_UNITS} in {UNIT:?} units, \
             {SIGNIFICANT_DIGITS} digit)"
        ));
    }
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::latency::LatencyWindow;

    const NOW: u64 = 1_764_000_000_000;
    const MAX_AGE: Duration = Duration::from_secs(10);

    fn histogram() -> Histogram<u16> {
        let t0 = std::time::Instant::now();
        let mut w = LatencyWindow::new(t0);
        for ms in [10, 12, 30] {
            w.record(Some(Duration::from_millis(ms)), t0);
        }
        w.merged_histogram(t0)
    }

    fn doc() -> Observations {
        Observations {
            version: VERSION,
            node: "us-1".into(),
            vantage: "us".into(),
            sent_unix_ms: NOW - 100,
            config_generation: Some(3),
            endpoints: vec![EndpointObservation {
                name: "eu-web-1".into(),
                serving: Serving::Drained,
                health: Health::Up,
                since_unix_ms: NOW - 60_000,
                override_: Some(OverrideObservation {
                    kind: OverrideKind::Drain,
                    set_unix_ms: NOW - 5_000,
                    expires_unix_ms: None,
                }),
                probed: true,
                p50_ms: Some(12.5),
                p90_ms: Some(30.0),
                samples: 3,
                lost: 1,
                histogram: Some(encode_histogram(&histogram())),
            }],
        }
    }

    fn run(d: &Observations) -> Result<Received, Refusal> {
        check(&serde_json::to_vec(d).unwrap(), "eu-1", MAX_AGE, NOW)
    }

    #[test]
    fn a_good_document_round_trips() {
        let r = run(&doc()).unwrap();
        assert_eq!((r.node.as_str(), r.vantage.as_str()), ("us-1", "us"));
        let o = &r.endpoints["eu-web-1"];
        assert_eq!(o.serving, Serving::Drained);
        assert_eq!(o.overridden.unwrap().kind, OverrideKind::Drain);
        assert_eq!(o.p50, Some(Duration::from_micros(12_500)));
        assert_eq!(o.histogram.as_ref().unwrap().len(), 3);
        assert_eq!(*o.histogram.as_ref().unwrap(), histogram());
        // The document's text: the names the README gives.
        let v: serde_json::Value = serde_json::to_value(doc()).unwrap();
        assert_eq!(v["endpoints"][0]["serving"], "drained");
        assert_eq!(v["endpoints"][0]["override"]["kind"], "drain");
        assert_eq!(v["endpoints"][0]["health"], "up");
        assert_eq!(v["endpoints"][0]["probed"], true);
    }

    #[test]
    fn probed_travels_and_defaults_to_true_when_absent() {
        let mut d = doc();
        d.endpoints[0].probed = false;
        assert!(!run(&d).unwrap().endpoints["eu-web-1"].probed);
        // A document from a build before probe sharding has no "probed": it probes everything.
        let mut v = serde_json::to_value(doc()).unwrap();
        v["endpoints"][0].as_object_mut().unwrap().remove("probed");
        let body = serde_json::to_vec(&v).unwrap();
        let r = check(&body, "eu-1", MAX_AGE, NOW).unwrap();
        assert!(r.endpoints["eu-web-1"].probed);
    }

    #[test]
    fn bad_documents_are_refused_with_their_reason() {
        let refused = |d: Observations| run(&d).unwrap_err();
        assert!(matches!(
            check(b"<html>", "eu-1", MAX_AGE, NOW),
            Err(Refusal::Garbage(_))
        ));
        assert!(matches!(
            check(br#"{"version": 1}"#, "eu-1", MAX_AGE, NOW),
            Err(Refusal::Garbage(_))
        ));
        assert_eq!(
            check(br#"{"version": 2, "whatever": []}"#, "eu-1", MAX_AGE, NOW),
            Err(Refusal::WrongVersion(2))
        );
        let mut d = doc();
        d.sent_unix_ms = NOW - 10_001;
        assert_eq!(refused(d), Refusal::Stale { age_ms: 10_001 });
        let mut d = doc();
        d.sent_unix_ms = NOW + 5_001;
        assert_eq!(refused(d), Refusal::Future { ahead_ms: 5_001 });
        let mut d = doc();
        d.sent_unix_ms = NOW + 5_000;
        assert!(run(&d).is_ok(), "5 s ahead is clock skew");
        let mut d = doc();
        d.node = "eu-1".into();
        assert_eq!(refused(d), Refusal::OwnNode("eu-1".into()));
        let mut d = doc();
        d.endpoints.push(d.endpoints[0].clone());
        assert!(matches!(refused(d), Refusal::Garbage(m) if m.contains("listed twice")));
        let mut d = doc();
        d.endpoints[0].p90_ms = Some(-1.0);
        assert!(matches!(refused(d), Refusal::Garbage(m) if m.contains("p90_ms")));
        let mut d = doc();
        d.vantage = String::new();
        assert!(matches!(refused(d), Refusal::Garbage(_)));
    }

    #[test]
    fn histograms_of_another_shape_or_broken_are_refused() {
        let mut d = doc();
        d.endpoints[0].histogram = Some("not base64!".into());
        assert!(matches!(run(&d), Err(Refusal::Garbage(m)) if m.contains("base64")));
        // A histogram of another shape (3 digits): its header is refused before decoding.
        let mut other = Histogram::<u16>::new_with_bounds(1, 1_000_000, 3).unwrap();
        other.record(5).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&other, &mut bytes)
            .unwrap();
        d.endpoints[0].histogram = Some(STANDARD.encode(&bytes));
        assert!(matches!(run(&d), Err(Refusal::Garbage(m)) if m.contains("shape")));
        // Ours, cut short.
        let good = STANDARD.decode(encode_histogram(&histogram())).unwrap();
        for cut in [4, 12, good.len() / 2] {
            d.endpoints[0].histogram = Some(STANDARD.encode(&good[..cut]));
            assert!(matches!(run(&d), Err(Refusal::Garbage(_))), "cut at {cut}");
        }
        // An uncompressed V2 histogram is not what the document carries.
        let mut plain = Vec::new();
        hdrhistogram::serialization::V2Serializer::new()
            .serialize(&histogram(), &mut plain)
            .unwrap();
        d.endpoints[0].histogram = Some(STANDARD.encode(&plain));
        assert!(matches!(run(&d), Err(Refusal::Garbage(_))));
    }
}
