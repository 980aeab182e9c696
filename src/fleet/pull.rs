//! Pulling one peer: a task per peer that asks `{peer}/fleet/observations` every interval and
//! hands the fleet what came back.
//!
//! One request at a time per peer, the first at once, then every `interval` (a pull that takes
//! longer delays the next rather than overlapping it). Each is bounded in time (the interval, at
//! most [`MAX_TIMEOUT`]) and in size: a `Content-Length` over [`BODY_LIMIT`] is refused before
//! reading, and a body that grows past it is cut off there. Every outcome is a [`PullResult`]:
//! counted, kept as the peer's last result, and only `ok` touches the peer's data.

use std::time::Duration;

use reqwest::{Client, StatusCode, header};
use tokio_util::sync::CancellationToken;

use super::Fleet;
use super::wire::{self, Refusal};
use crate::health::clock;

/// Largest observations body read: some 20,000 endpoints with histograms.
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Longest a pull may take, whatever the interval.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of one pull: the `result` label of `meridian_fleet_pulls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PullResult {
    /// Accepted: the peer's data is replaced.
    Ok,
    /// A status other than 200 (and 401/403).
    HttpError,
    /// 401 or 403: the fleet tokens differ.
    Unauthorized,
    /// The body is over [`BODY_LIMIT`].
    TooLarge,
    /// Not an observations document (not JSON, wrong shape, a bad histogram).
    Garbage,
    /// Stamped longer than `max_age` ago, or not newer than the document kept.
    Stale,
    /// Stamped more than [`wire::MAX_AHEAD`] ahead of this host's clock.
    Future,
    /// The document carries this node's own name.
    OwnNode,
    /// A document version this build does not read.
    WrongVersion,
    /// No complete answer within the timeout.
    Timeout,
    /// No connection, or it broke (refused, reset, DNS, TLS).
    Unreachable,
}

impl PullResult {
    /// Every result, in label order.
    pub const ALL: [PullResult; 11] = [
        PullResult::Ok,
        PullResult::HttpError,
        PullResult::Unauthorized,
        PullResult::TooLarge,
        PullResult::Garbage,
        PullResult::Stale,
        PullResult::Future,
        PullResult::OwnNode,
        PullResult::WrongVersion,
        PullResult::Timeout,
        PullResult::Unreachable,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            PullResult::Ok => "ok",
            PullResult::HttpError => "http_error",
            PullResult::Unauthorized => "unauthorized",
            PullResult::TooLarge => "too_large",
            PullResult::Garbage => "garbage",
            PullResult::Stale => "stale",
            PullResult::Future => "future",
            PullResult::OwnNode => "self",
            PullResult::WrongVersion => "wrong_version",
            PullResult::Timeout => "timeout",
            PullResult::Unreachable => "unreachable",
        }
    }

    /// Position in [`PullResult::ALL`].
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl From<&Refusal> for PullResult {
    fn from(r: &Refusal) -> Self {
        match r {
            Refusal::Garbage(_) => PullResult::Garbage,
            Refusal::WrongVersion(_) => PullResult::WrongVersion,
            Refusal::Stale { .. } => PullResult::Stale,
            Refusal::Future { .. } => PullResult::Future,
            Refusal::OwnNode(_) => PullResult::OwnNode,
        }
    }
}

/// Pull the peer at `url` every interval until `cancel` fires. `task` tells this task's reports
/// from those of a task it replaced.
pub(super) async fn peer(fleet: Fleet, url: String, task: u64, cancel: CancellationToken) {
    let target = format!("{url}{}", wire::PATH);
    loop {
        let Some(settings) = fleet.settings() else {
            return;
        };
        let next = tokio::time::Instant::now() + settings.interval;
        let timeout = settings.interval.min(MAX_TIMEOUT);
        let outcome = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(timeout, fetch(fleet.client(), &target, settings.token.as_deref())) => r,
        };
        let outcome = match outcome {
            Err(_) => Err((PullResult::Timeout, format!("no answer within {timeout:?}"))),
            Ok(Err(failed)) => Err(failed),
            Ok(Ok(body)) => wire::check(
                &body,
                &settings.node,
                settings.max_age,
                clock::unix_now_ms(),
            )
            .map_err(|r| (PullResult::from(&r), r.to_string())),
        };
        fleet.report(task, outcome);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
    }
}

/// GET `target` with the token; the body, or why there is none to check.
async fn fetch(
    client: Option<&Client>,
    target: &str,
    token: Option<&str>,
) -> Result<Vec<u8>, (PullResult, String)> {
    let client = client.ok_or((
        PullResult::Unreachable,
        "no HTTP client (TLS setup failed at start)".to_string(),
    ))?;
    let mut req = client.get(target);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let mut response = req
        .send()
        .await
        .map_err(|e| (PullResult::Unreachable, reason(&e)))?;
    match response.status() {
        StatusCode::OK => {}
        s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
            return Err((PullResult::Unauthorized, format!("HTTP {s}")));
        }
        s => return Err((PullResult::HttpError, format!("HTTP {s}"))),
    }
    let too_large = || {
        (
            PullResult::TooLarge,
            format!("body over {BODY_LIMIT} bytes"),
        )
    };
    let declared = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| (PullResult::Unreachable, reason(&e)))?
    {
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The innermost cause of a failed request ("connection refused"), without the URL reqwest's
/// own message repeats.
fn reason(e: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = e;
    // Error chains are short; the bound only guards against a cyclic `source`.
    for _ in 0..32 {
        match innermost.source() {
            Some(next) => innermost = next,
            None => break,
        }
    }
    innermost.to_string()
}
