//! The admin HTTP API: status, explain, metrics, overrides and reload for operators.
//!
//! Operators run Meridian for months; this is how they look inside it and steer it without a
//! restart. It is a plain HTTP/1.1 server on hyper, separate from DNS serving (nothing here is on
//! the query path), in the shape of tokio's mini-redis: one listener, one task per connection,
//! a connection cap, and the server's one shutdown path (the cancellation token; open
//! connections finish their request and close).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /healthz` | 200 `ok` while the process runs |
//! | `GET /readyz` | 200 once every health check has a first verdict, else 503 and why |
//! | `GET /metrics` | Prometheus text exposition ([`crate::metrics::render`]) |
//! | `GET /status` | JSON: generation, reloads, zones, services, endpoints, decisions ([`status`]) |
//! | `GET /explain?name=&client=[&ecs=][&qtype=][&format=text]` | `meridian explain` against live health, as JSON |
//! | `GET /simulate?service=[&down=]...[&networks=10000][&format=text]` | `meridian simulate` against live health over the GeoIP database's largest networks, as JSON |
//! | `POST /simulate?service=[&down=]...[&format=text]` | the same over the networks of the body, a networks CSV as `meridian simulate --networks` reads (at most [`SIMULATE_BODY_LIMIT`]); a bad line is a 400 `line N: problem` |
//! | `POST /reload` | [`Control::reload`]: 200 with the generation, or 422 with every error |
//! | `POST /endpoints/{name}/{drain,undrain,force-up,force-down,clear}[?expires=30m]` | overrides |
//! | `GET /fleet/observations` | this instance's health observations for its fleet peers ([`crate::fleet::wire`]); 404 without `[fleet]` |
//!
//! Limits: [`MAX_CONNECTIONS`] open connections (more are closed at once), request headers
//! within [`HEADER_TIMEOUT`] and [`BODY_LIMIT`]-sized bodies ([`SIMULATE_BODY_LIMIT`] for a
//! simulation's networks) within [`BODY_TIMEOUT`].
//!
//! Security: `POST`s (`/simulate`'s too) need `Authorization: Bearer TOKEN` when `[admin]` has a
//! token (compared in constant time). Without one they are allowed only because the listener is loopback: the
//! configuration refuses a public address without a token, and the server checks again.
//! `GET`s are open: they change nothing. `GET /fleet/observations` is the exception: with a
//! fleet token (`[fleet] token`) it needs `Authorization: Bearer FLEET-TOKEN` (compared in
//! constant time), else 401, counted in `meridian_fleet_observation_requests_total`.
//!
//! Layer 9 of ARCHITECTURE.md: uses only modules of lower layers.

pub mod fleet;
mod routes;
pub mod status;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::admin::{Admin, is_loopback};
use crate::control::Control;
use crate::fleet::Fleet;
use crate::secondary::Secondaries;

/// Most admin connections open at once; further ones are closed on accept.
pub const MAX_CONNECTIONS: usize = 64;
/// Largest request body read (only `POST /simulate` uses its body; larger ones get 413).
pub const BODY_LIMIT: usize = 64 * 1024;
/// Largest networks CSV `POST /simulate` reads: about a million networks.
pub const SIMULATE_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Request headers (and the next request on a kept-alive connection) must arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A request body must arrive within this.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time an open connection gets to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Largest read buffer, which bounds the request head.
const MAX_BUF: usize = 64 * 1024;

/// What every request handler shares.
pub(crate) struct Api {
    pub control: Control,
    /// The fleet's pulling: its settings (token, node, vantage) and its peers for `/status`.
    pub fleet: Fleet,
    /// The secondary zones' tasks, for `/status`.
    pub secondaries: Secondaries,
    /// Bearer token for mutating calls.
    pub token: Option<String>,
    /// The listener is loopback-only: without a token, mutating calls are allowed.
    pub loopback: bool,
}

/// Bind the admin listener (synchronously, so that a taken port fails start-up at once).
/// Must run inside a tokio runtime.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    TcpListener::from_std(l)
}

/// Serve the admin API on `listener` until `cancel` fires; connections run on `tracker`.
pub async fn serve(
    listener: TcpListener,
    control: Control,
    fleet: Fleet,
    secondaries: Secondaries,
    settings: Admin,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let loopback = listener.local_addr().is_ok_and(|a| is_loopback(&a));
    let api = Arc::new(Api {
        control,
        fleet,
        secondaries,
        token: settings.token,
        loopback,
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("admin API: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("admin API: {MAX_CONNECTIONS} connections open, closing a new one");
            continue;
        };
        tracker.spawn(connection(stream, Arc::clone(&api), cancel.clone(), permit));
    }
}

/// One HTTP/1.1 connection, possibly several requests (keep-alive).
async fn connection(
    stream: TcpStream,
    api: Arc<Api>,
    cancel: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let service = service_fn(move |req| {
        let api = Arc::clone(&api);
        async move { Ok::<_, Infallible>(routes::handle(&api, req).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_BUF);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!("admin API connection: {e}");
            }
        }
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}
