//! Routing and the request handlers of the admin API (see [`super`] for the table of routes).
//!
//! Every input is untrusted: paths, query strings and headers are checked and a bad one is
//! answered with a JSON `{"error": "..."}` and a 4xx status, never a panic.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::json;

use super::{Api, BODY_LIMIT, BODY_TIMEOUT, SIMULATE_BODY_LIMIT};
use crate::config::health::parse_duration;
use crate::health::state::OverrideKind;

/// Longest override expiry accepted (a year): beyond it an expiry is a mistake.
const MAX_EXPIRY: Duration = Duration::from_secs(366 * 24 * 3600);

/// Client networks `/simulate` takes from the GeoIP database by default: the largest this many.
const SIMULATE_NETWORKS: usize = 10_000;

pub(super) type Reply = Response<Full<Bytes>>;

/// An error answer: status and message.
#[derive(Debug)]
pub(super) struct Fail(pub StatusCode, pub String);

impl Fail {
    fn bad(msg: impl Into<String>) -> Fail {
        Fail(StatusCode::BAD_REQUEST, msg.into())
    }
}

pub(super) fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_reply(status: StatusCode, v: &impl Serialize) -> Reply {
    let (status, mut body) = match serde_json::to_vec_pretty(v) {
        Ok(body) => (status, body),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("cannot serialize the answer: {e}") })
                .to_string()
                .into_bytes(),
        ),
    };
    body.push(b'\n');
    reply(status, "application/json", body)
}

fn text_reply(status: StatusCode, text: impl Into<Bytes>) -> Reply {
    reply(status, "text/plain; charset=utf-8", text)
}

fn error_reply(Fail(status, msg): Fail) -> Reply {
    json_reply(status, &json!({ "error": msg }))
}

/// Answer one request.
pub(super) async fn handle(api: &Api, req: Request<Incoming>) -> Reply {
    match route(api, req).await {
        Ok(r) => r,
        Err(f) => error_reply(f),
    }
}

/// The routes, parsed from the path.
enum Route<'a> {
    Healthz,
    Readyz,
    Metrics,
    Status,
    Explain,
    Simulate,
    Reload,
    /// `/endpoints/{name}/{action}`, both still percent-encoded.
    Override(&'a str, &'a str),
    FleetObservations,
}

impl Route<'_> {
    fn parse(path: &str) -> Option<Route<'_>> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        Some(match segments.as_slice() {
            ["healthz"] => Route::Healthz,
            ["readyz"] => Route::Readyz,
            ["metrics"] => Route::Metrics,
            ["status"] => Route::Status,
            ["explain"] => Route::Explain,
            ["simulate"] => Route::Simulate,
            ["reload"] => Route::Reload,
            ["endpoints", name, action] => Route::Override(name, action),
            ["fleet", "observations"] => Route::FleetObservations,
            _ => return None,
        })
    }

    /// The methods the route takes, as an `Allow` header says them: `GET` reads, `POST`
    /// changes something or sends a body (`/simulate` takes both).
    fn methods(&self) -> &'static str {
        match self {
            Route::Reload | Route::Override(..) => "POST",
            Route::Simulate => "GET, POST",
            _ => "GET",
        }
    }

    /// Whether the route takes `method`.
    fn takes(&self, method: &Method) -> bool {
        self.methods().split(", ").any(|m| m == method.as_str())
    }

    /// Largest body the route reads for `method`.
    fn body_limit(&self, method: &Method) -> usize {
        match self {
            Route::Simulate if method == Method::POST => SIMULATE_BODY_LIMIT,
            _ => BODY_LIMIT,
        }
    }
}

async fn route(api: &Api, req: Request<Incoming>) -> Result<Reply, Fail> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let route = Route::parse(&path)
        .ok_or_else(|| Fail(StatusCode::NOT_FOUND, format!("no route {path}")))?;
    let methods = route.methods();
    if !route.takes(req.method()) {
        let mut r = error_reply(Fail(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "{path} takes {}, not {}",
                methods.replace(", ", " or "),
                req.method()
            ),
        ));
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(methods));
        return Ok(r);
    }
    let post = req.method() == Method::POST;
    let authorized = match route {
        Route::FleetObservations => super::fleet::authorize(api, &req),
        _ if post => authorize(api, &req),
        _ => Ok(()),
    };
    if let Err(f) = authorized {
        let challenge = f.0 == StatusCode::UNAUTHORIZED;
        let mut r = error_reply(f);
        if challenge {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return Ok(r);
    }
    let limit = route.body_limit(req.method());
    let body = read_body(req.into_body(), limit).await?;
    let params = parse_query(&query)?;
    // Every route but these takes no parameters.
    if !matches!(
        route,
        Route::Explain | Route::Simulate | Route::Override(..)
    ) {
        no_params(&params)?;
    }
    match route {
        Route::Healthz => Ok(text_reply(StatusCode::OK, "ok\n")),
        Route::Readyz => readyz(api),
        Route::Metrics => Ok(reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            crate::metrics::render(),
        )),
        Route::Status => Ok(json_reply(
            StatusCode::OK,
            &super::status::status(&api.control, &api.fleet, &api.secondaries),
        )),
        Route::Explain => explain(api, &params),
        Route::Simulate => simulate(api, &params, post.then_some(body)).await,
        Route::Reload => reload(api).await,
        Route::Override(name, action) => set_override(api, name, action, &params),
        Route::FleetObservations => super::fleet::serve(api).await,
    }
}

/// `POST`s (the calls that change something, and `/simulate` with a body) need the bearer token
/// when one is configured, else a loopback listener.
fn authorize(api: &Api, req: &Request<Incoming>) -> Result<(), Fail> {
    let Some(token) = &api.token else {
        return if api.loopback {
            Ok(())
        } else {
            // The configuration refuses this; refuse again rather than trust it.
            Err(Fail(
                StatusCode::FORBIDDEN,
                "no admin token configured on a public listener".into(),
            ))
        };
    };
    bearer(req, token)
}

/// The request carries `Authorization: Bearer TOKEN` with this `token`.
pub(super) fn bearer(req: &Request<Incoming>, token: &str) -> Result<(), Fail> {
    let unauthorized = |m: &str| Fail(StatusCode::UNAUTHORIZED, m.to_string());
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("a bearer token is required"))?;
    let given = given
        .as_bytes()
        .strip_prefix(b"Bearer ")
        .ok_or_else(|| unauthorized("a bearer token is required"))?;
    if constant_time_eq(given.trim_ascii(), token.as_bytes()) {
        Ok(())
    } else {
        Err(unauthorized("wrong bearer token"))
    }
}

/// Compare without an early exit on the first differing byte (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Read the body, bounded in size (`limit` bytes: a larger `Content-Length` is refused before
/// reading) and time.
async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Fail> {
    let too_large = || {
        Fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {limit} bytes"),
        )
    };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
        Err(_) => Err(Fail(
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time".into(),
        )),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => Err(Fail::bad(format!("request body: {e}"))),
        Ok(Ok(b)) => Ok(b.to_bytes()),
    }
}

/// Parameters that may be given more than once (`/simulate?down=a&down=b`).
const REPEATABLE: &[&str] = &["down"];

/// Query parameters, percent-decoded; a parameter given twice is an error (but those
/// [`REPEATABLE`]).
fn parse_query(q: &str) -> Result<Vec<(String, String)>, Fail> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k, true)?, decode(v, true)?);
        if !REPEATABLE.contains(&k.as_str()) && out.iter().any(|(o, _)| *o == k) {
            return Err(Fail::bad(format!("parameter {k:?} given twice")));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// Percent-decoding (and, in query strings, `+` as space); the result must be UTF-8.
fn decode(s: &str, plus_is_space: bool) -> Result<String, Fail> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Fail::bad(format!("bad percent-encoding in {s:?}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Fail::bad(format!("{s:?} is not UTF-8")))
}

fn no_params(params: &[(String, String)]) -> Result<(), Fail> {
    allow(params, &[])
}

/// Refuse parameters outside `known`.
fn allow(params: &[(String, String)], known: &[&str]) -> Result<(), Fail> {
    match params.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) if known.is_empty() => Err(Fail::bad(format!(
            "unknown parameter {k:?}: this route takes none"
        ))),
        Some((k, _)) => Err(Fail::bad(format!(
            "unknown parameter {k:?} (known: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn readyz(api: &Api) -> Result<Reply, Fail> {
    if api.control.ready() {
        return Ok(text_reply(StatusCode::OK, "ok\n"));
    }
    let pending: Vec<String> = api
        .control
        .monitor()
        .status()
        .into_iter()
        .filter(|s| s.health == crate::health::state::Health::Unknown)
        .map(|s| s.name)
        .collect();
    let shown = pending
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = pending.len().saturating_sub(10);
    Err(Fail(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "not ready: health checks have no first verdict yet ({} endpoint(s): {shown}{})",
            pending.len(),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
    ))
}

fn explain(api: &Api, params: &[(String, String)]) -> Result<Reply, Fail> {
    allow(params, &["name", "client", "ecs", "qtype", "format"])?;
    let name = param(params, "name").ok_or_else(|| Fail::bad("name is required"))?;
    if name.is_empty() || name.len() > 255 {
        return Err(Fail::bad("name must be 1 to 255 characters"));
    }
    let client = param(params, "client").ok_or_else(|| Fail::bad("client is required"))?;
    let client = IpAddr::from_str(client)
        .map_err(|_| Fail::bad(format!("client {client:?} is not an IP address")))?;
    let ecs_prefix = match param(params, "ecs") {
        None => None,
        Some(p) => {
            let max = if client.is_ipv4() { 32 } else { 128 };
            match p.parse::<u8>() {
                Ok(n) if n <= max => Some(n),
                _ => {
                    return Err(Fail::bad(format!(
                        "ecs {p:?} is not a prefix length 0..={max}"
                    )));
                }
            }
        }
    };
    let qtype = param(params, "qtype").unwrap_or("A");
    let qtype = RecordType::from_str(&qtype.to_ascii_uppercase())
        .map_err(|_| Fail::bad(format!("unknown query type {qtype:?}")))?;
    let text = match param(params, "format") {
        None | Some("json") => false,
        Some("text") => true,
        Some(f) => return Err(Fail::bad(format!("format {f:?}: json or text"))),
    };
    let req = crate::explain::Request {
        name: name.to_string(),
        client,
        qtype,
        ecs_prefix,
        random: 0,
    };
    let snap = api.control.snapshot();
    let report = crate::explain::report(&snap, &req).map_err(|e| Fail::bad(e.to_string()))?;
    if text {
        return Ok(text_reply(StatusCode::OK, report.to_text()));
    }
    Ok(json_reply(StatusCode::OK, &report))
}

/// `GET /simulate?service=NAME[&down=X]...[&networks=N][&format=text]`: `meridian simulate`
/// against the served snapshot and live health, over the GeoIP database's `N` largest networks
/// (default [`SIMULATE_NETWORKS`]). `POST /simulate?service=NAME[&down=X]...[&format=text]`
/// (`csv`: the body): over the networks of a networks CSV instead, as `meridian simulate
/// --networks FILE` reads it; a bad line is a 400 with its number. Runs on a blocking thread: it
/// walks the whole database or parses the whole CSV.
async fn simulate(
    api: &Api,
    params: &[(String, String)],
    csv: Option<Bytes>,
) -> Result<Reply, Fail> {
    use crate::simulate::{self as sim, SimulateError};
    match csv {
        Some(_) => allow(params, &["service", "down", "format"])?,
        None => allow(params, &["service", "down", "networks", "format"])?,
    }
    let service = param(params, "service").ok_or_else(|| Fail::bad("service is required"))?;
    let down: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "down")
        .map(|(_, v)| v.clone())
        .collect();
    let limit = match param(params, "networks") {
        None => SIMULATE_NETWORKS,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(Fail::bad(format!("networks {n:?} is not a positive count"))),
        },
    };
    let text = match param(params, "format") {
        None | Some("json") => false,
        Some("text") => true,
        Some(f) => return Err(Fail::bad(format!("format {f:?}: json or text"))),
    };
    let req = sim::Request {
        service: service.to_string(),
        down,
    };
    let failed = |e: SimulateError| match e {
        SimulateError::Geo(_) => Fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        e => Fail::bad(e.to_string()),
    };
    let control = api.control.clone();
    let report = tokio::task::spawn_blocking(move || {
        let posted = match csv {
            None => None,
            Some(body) => {
                let text = std::str::from_utf8(&body)
                    .map_err(|e| Fail::bad(format!("networks CSV: not UTF-8 ({e})")))?;
                let nets = sim::parse_networks(text)
                    .map_err(|(line, problem)| Fail::bad(format!("line {line}: {problem}")))?;
                if nets.is_empty() {
                    return Err(Fail::bad(
                        "the body holds no networks (a networks CSV: network[,weight] a line)",
                    ));
                }
                Some(nets)
            }
        };
        let snap = control.snapshot();
        let st = snap
            .steering
            .as_ref()
            .ok_or(SimulateError::NoServices)
            .map_err(failed)?;
        let nets = match posted {
            Some(nets) => nets,
            None => sim::database_networks(st, Some(limit)).map_err(failed)?,
        };
        let view = control.publisher().view_for(st);
        sim::report(st, &view, snap.tables.as_deref(), &req, &nets).map_err(failed)
    })
    .await
    .map_err(|e| Fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    if text {
        return Ok(text_reply(StatusCode::OK, report.to_text()));
    }
    Ok(json_reply(StatusCode::OK, &report))
}

async fn reload(api: &Api) -> Result<Reply, Fail> {
    let control = api.control.clone();
    // Parsing and loading zones is blocking file I/O: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || control.reload())
        .await
        .map_err(|e| Fail(StatusCode::INTERNAL_SERVER_ERROR, format!("reload: {e}")))?;
    match result {
        Ok(r) => Ok(json_reply(
            StatusCode::OK,
            &json!({"generation": r.generation, "needs_restart": r.needs_restart}),
        )),
        Err(errors) => {
            let generation = api.control.generation();
            Ok(json_reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({
                    "error": format!(
                        "configuration refused ({} problem(s)); generation {generation} keeps serving",
                        errors.0.len()
                    ),
                    "errors": errors.0.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                    "generation": generation,
                }),
            ))
        }
    }
}

fn set_override(
    api: &Api,
    name: &str,
    action: &str,
    params: &[(String, String)],
) -> Result<Reply, Fail> {
    allow(params, &["expires"])?;
    let name = decode(name, false)?;
    let kind = match action {
        "drain" => Some(OverrideKind::Drain),
        "force-up" => Some(OverrideKind::ForceUp),
        "force-down" => Some(OverrideKind::ForceDown),
        "undrain" | "clear" => None,
        _ => {
            return Err(Fail(
                StatusCode::NOT_FOUND,
                format!("no action {action:?}: drain, undrain, force-up, force-down or clear"),
            ));
        }
    };
    let ttl = match param(params, "expires") {
        None => None,
        Some(_) if kind.is_none() => {
            return Err(Fail::bad(format!("{action} takes no expiry")));
        }
        Some(s) => {
            let d = parse_duration(s).map_err(|e| Fail::bad(format!("expires: {e}")))?;
            if d.is_zero() || d > MAX_EXPIRY {
                return Err(Fail::bad(format!(
                    "expires: {s:?} must be above 0 and at most 366 days"
                )));
            }
            Some(d)
        }
    };
    let monitor = api.control.monitor();
    monitor
        .set_override(&name, kind, ttl)
        .map_err(|e| Fail(StatusCode::NOT_FOUND, e.to_string()))?;
    let now = crate::monitor::now();
    let status = monitor
        .status()
        .iter()
        .find(|s| s.name == name)
        .map(|s| super::status::endpoint_json(s, now));
    Ok(json_reply(
        StatusCode::OK,
        &OverrideReply {
            endpoint: &name,
            action,
            kind,
            expires_in_seconds: ttl.map(|t| t.as_secs_f64()),
            status,
        },
    ))
}

/// The answer to an override call: what was set, and the endpoint's state after it.
#[derive(Serialize)]
struct OverrideReply<'a> {
    endpoint: &'a str,
    action: &'a str,
    /// The override now in force (`null` after undrain/clear).
    #[serde(rename = "override")]
    kind: Option<OverrideKind>,
    expires_in_seconds: Option<f64>,
    status: Option<super::status::EndpointJson>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings() {
        let p = parse_query("name=www.example.com&client=2001%3adb8%3A%3A1&x=a+b").unwrap();
        assert_eq!(param(&p, "client"), Some("2001:db8::1"));
        assert_eq!(param(&p, "x"), Some("a b"));
        assert!(parse_query("a=1&a=2").is_err());
        assert!(parse_query("a=%zz").is_err());
        assert!(parse_query("a=%").is_err());
        assert!(parse_query("a=%+1").is_err());
        assert_eq!(decode("a+b%2B", false).unwrap(), "a+b+");
        assert!(parse_query("a=%ff").is_err(), "not UTF-8");
        assert!(parse_query("").unwrap().is_empty());
        assert!(allow(&p, &["name", "client"]).is_err());
    }

    #[test]
    fn token_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
