//! HTTP and HTTPS prober.
//!
//! An [`HttpProber`] is built once per (check, target) from an [`HttpSpec`] and a [`Target`]: it
//! checks the spec (method, path, headers, regex), builds its `reqwest::Client` and request, and
//! is then reused for every attempt. [`probe`] is the one-off form used by [`super::run`].
//!
//! One attempt:
//! - The TCP connection always goes to the target address and port (default 80/443). The name in
//!   the URL, and so the `Host` header and the TLS SNI, is the spec's `host` when given (with the
//!   port appended to `Host` when it is not the scheme's default, as HTTP requires); reqwest's
//!   `resolve` override maps that name to the target, so no DNS lookup happens. A `host` that is
//!   an IP address is sent as the `Host` header only (TLS sends no SNI for addresses).
//! - No reuse between attempts: the client keeps no idle connections
//!   (`pool_max_idle_per_host(0)`) and TLS session resumption is off, so every attempt measures a
//!   fresh connect and a full handshake, and a dead server cannot hide behind a kept-alive
//!   connection.
//! - One deadline, `start + timeout`, bounds connect, TLS, request, headers and body together:
//!   a server that accepts and never answers costs exactly `timeout`.
//! - The status is judged against the expected ranges (default 200-299). The body is read only
//!   when a body match is configured, and then at most [`BODY_LIMIT`] bytes of it.
//! - A 3xx is judged as it is unless `follow_redirects` (then up to [`MAX_REDIRECTS`] hops, each
//!   hop to the spec's `host` still going to the target). Proxy settings from the environment are
//!   ignored.
//!
//! TLS is rustls with the ring provider, configured here and handed to reqwest ready-made
//! (`tls_backend_preconfigured`): left to itself, reqwest's `rustls-no-provider` build panics
//! unless a process-wide default provider is installed, and loads the system CA store again for
//! every client, even plain-HTTP ones. Here two configs are built once per process and shared by
//! every client: one verifying against the system CA bundle (`SSL_CERT_FILE`, else the usual
//! distribution paths), and one for `verify_tls = false` that accepts any certificate but still
//! checks the handshake signatures.

use std::error::Error as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use regex::bytes::Regex;
use reqwest::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Response, Url, redirect};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::time::timeout_at;

use super::net::{Attempt, io_reason};
use super::{HttpSpec, ProbeResult, StatusRange, Target};

/// Bytes of the body searched by a body match; the rest is never read.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Redirect hops followed when `follow_redirects` is on.
pub const MAX_REDIRECTS: usize = 5;
/// CA bundles tried, in order, when `SSL_CERT_FILE` is not set (Debian/Ubuntu/Alpine/Arch,
/// Fedora/RHEL, openSUSE, BSD/macOS).
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Why an [`HttpSpec`] cannot be probed; found when the prober is built, before any attempt.
#[derive(Debug, thiserror::Error)]
pub enum HttpSpecError {
    #[error("invalid HTTP method {0:?}")]
    Method(String),
    #[error("path {0:?} must start with '/'")]
    Path(String),
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("invalid header {name:?}: {value:?}")]
    Header { name: String, value: String },
    #[error("invalid body regex: {0}")]
    Regex(#[from] regex::Error),
    #[error("TLS verification needs CA certificates and none were found (set SSL_CERT_FILE)")]
    NoCaCertificates,
    #[error("cannot build HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// A ready-to-run HTTP(S) probe of one target: client, request and judge, built once.
#[derive(Debug)]
pub struct HttpProber {
    client: Client,
    method: Method,
    url: Url,
    headers: HeaderMap,
    expect: Vec<StatusRange>,
    /// `expect` as shown in reasons: "200-299", "200, 301-302".
    expect_text: String,
    body_contains: Option<String>,
    body_regex: Option<Regex>,
}

impl HttpProber {
    /// Checks `spec` against `target` and builds the client. Method names are upper-cased.
    pub fn new(spec: &HttpSpec, target: &Target) -> Result<Self, HttpSpecError> {
        let method = Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| HttpSpecError::Method(spec.method.clone()))?;
        if !spec.path.starts_with('/') {
            return Err(HttpSpecError::Path(spec.path.clone()));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &spec.headers {
            let bad = || HttpSpecError::Header {
                name: name.clone(),
                value: value.clone(),
            };
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            headers.append(n, HeaderValue::from_str(value).map_err(|_| bad())?);
        }
        let scheme = if spec.tls { "https" } else { "http" };
        let port = target.port.unwrap_or(if spec.tls { 443 } else { 80 });
        let addr = SocketAddr::new(target.address, port);
        // A host name goes in the URL (Host and SNI follow it) and is resolved to the target; an
        // address, or no host, puts the target itself in the URL.
        let host_ip = spec.host.as_deref().and_then(|h| h.parse::<IpAddr>().ok());
        let name = spec.host.as_deref().filter(|_| host_ip.is_none());
        let authority = match name {
            Some(n) => n.to_string(),
            None => bracketed(target.address),
        };
        let text = format!("{scheme}://{authority}:{port}{}", spec.path);
        let url = Url::parse(&text).map_err(|e| HttpSpecError::Url {
            url: text.clone(),
            reason: e.to_string(),
        })?;
        if let Some(ip) = host_ip.filter(|ip| *ip != target.address) {
            let default = port == if spec.tls { 443 } else { 80 };
            let host = if default {
                bracketed(ip)
            } else {
                format!("{}:{port}", bracketed(ip))
            };
            let bad = || HttpSpecError::Header {
                name: "Host".into(),
                value: host.clone(),
            };
            headers
                .entry(HOST)
                .or_insert(HeaderValue::from_str(&host).map_err(|_| bad())?);
        }
        let tls = tls_configs();
        let tls = match (spec.verify_tls, &tls.verified) {
            (false, _) => tls.insecure.clone(),
            (true, Some(c)) => c.clone(),
            (true, None) if spec.tls => return Err(HttpSpecError::NoCaCertificates),
            // Plain HTTP without CA certificates: only a redirect to https would verify, and fail.
            (true, None) => tls.empty.clone(),
        };
        let policy = if spec.follow_redirects {
            redirect::Policy::limited(MAX_REDIRECTS)
        } else {
            redirect::Policy::none()
        };
        let mut builder = Client::builder()
            .tls_backend_preconfigured(tls)
            .pool_max_idle_per_host(0)
            .redirect(policy)
            .no_proxy()
            .user_agent(concat!("meridian-health/", env!("CARGO_PKG_VERSION")));
        // Key the override by the URL's normalised host (lower case, punycode), which is what
        // reqwest looks up.
        if let (Some(_), Some(h)) = (name, url.host_str()) {
            builder = builder.resolve(h, addr);
        }
        let client = builder.build().map_err(HttpSpecError::Client)?;
        let expect = if spec.expect_status.is_empty() {
            vec![StatusRange {
                low: 200,
                high: 299,
            }]
        } else {
            spec.expect_status.clone()
        };
        let expect_text = expect.iter().map(range_text).collect::<Vec<_>>().join(", ");
        Ok(HttpProber {
            client,
            method,
            url,
            headers,
            expect,
            expect_text,
            body_contains: spec.body_contains.clone(),
            body_regex: spec.body_regex.as_deref().map(Regex::new).transpose()?,
        })
    }

    /// The URL requested (its host is the spec's `host` when that is a name).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// One attempt, bounded by `timeout` from start to verdict.
    pub async fn probe(&self, timeout: Duration) -> ProbeResult {
        let a = Attempt::start(timeout);
        let request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone())
            .send();
        let response = match timeout_at(a.deadline, request).await {
            Err(_) => return a.timed_out("waiting for response"),
            Ok(Err(e)) => return a.done(false, error_reason(&e)),
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        if !self
            .expect
            .iter()
            .any(|r| (r.low..=r.high).contains(&status))
        {
            return a.done(
                false,
                format!("status {status} not in {}", self.expect_text),
            );
        }
        if self.body_contains.is_none() && self.body_regex.is_none() {
            return a.done(true, format!("HTTP {status}"));
        }
        let (body, cut) = match timeout_at(a.deadline, read_prefix(response)).await {
            Err(_) => return a.timed_out("reading body"),
            Ok(Err(e)) => return a.done(false, format!("reading body: {}", error_reason(&e))),
            Ok(Ok(b)) => b,
        };
        let within = if cut { " (first 64 KiB)" } else { "" };
        if let Some(needle) = &self.body_contains
            && !String::from_utf8_lossy(&body).contains(needle.as_str())
        {
            return a.done(false, format!("body does not contain {needle:?}{within}"));
        }
        if let Some(re) = &self.body_regex
            && !re.is_match(&body)
        {
            return a.done(
                false,
                format!("body does not match /{}/{within}", re.as_str()),
            );
        }
        a.done(true, format!("HTTP {status}"))
    }
}

/// One attempt of `spec` against `target`, bounded by `timeout`, with a one-off
/// [`HttpProber`]; a spec that cannot be built fails with the reason and a zero rtt. Schedulers
/// should keep an [`HttpProber`] instead: building the client costs more than a probe.
pub async fn probe(s: &HttpSpec, t: &Target, timeout: Duration) -> ProbeResult {
    match HttpProber::new(s, t) {
        Ok(p) => p.probe(timeout).await,
        Err(e) => ProbeResult {
            ok: false,
            rtt: Duration::ZERO,
            detail: e.to_string(),
        },
    }
}

/// A general-purpose client sharing the probers' TLS setup (ring, system CA bundle), for other
/// HTTP clients of the health subsystem such as webhooks: verifies certificates, keeps
/// connections pooled, follows no redirects, honours proxy settings from the environment.
pub fn plain_client() -> Result<Client, HttpSpecError> {
    let tls = tls_configs();
    Client::builder()
        .tls_backend_preconfigured(tls.verified.clone().unwrap_or_else(|| tls.empty.clone()))
        .redirect(redirect::Policy::none())
        .user_agent(concat!("meridian/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(HttpSpecError::Client)
}

/// Reads at most [`BODY_LIMIT`] bytes of the body; true when the body was longer (or exactly
/// that long) and the rest was left unread.
async fn read_prefix(mut response: Response) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    // Ends at the body's end or at the limit; the caller's deadline bounds a stalled body.
    while let Some(chunk) = response.chunk().await? {
        let room = BODY_LIMIT - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// A short reason for a failed request: the TLS or I/O cause when there is one ("connection
/// refused", "certificate verify failed: ..."), else the innermost error's message (reqwest's own
/// outer message repeats the URL, which the reader knows).
fn error_reason(e: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = e;
    let mut next = e.source();
    // Error chains are short and finite; the bound only guards against a cyclic `source`.
    for _ in 0..32 {
        let Some(err) = next else { break };
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return tls_reason(t);
        }
        innermost = err;
        next = err.source();
        // An I/O error wrapping another error (often another I/O error, then a TLS error) hides
        // it from `source`: look inside. A bare one is the cause.
        if let Some(io) = err.downcast_ref::<io::Error>() {
            match io.get_ref() {
                Some(inner) => next = Some(inner),
                None => return io_reason(io),
            }
        }
    }
    innermost.to_string().replace('\n', " ")
}

/// "certificate verify failed: ..." for certificate problems, "TLS error: ..." for the rest.
fn tls_reason(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => format!("certificate verify failed: {c}"),
        other => format!("TLS error: {other}"),
    }
}

/// An address as it appears in a URL authority: IPv6 in brackets.
fn bracketed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// "200-299", or "204" for a single code.
fn range_text(r: &StatusRange) -> String {
    if r.low == r.high {
        r.low.to_string()
    } else {
        format!("{}-{}", r.low, r.high)
    }
}

/// The process-wide TLS client configs, built on first use and cloned into each client.
struct TlsConfigs {
    /// Verifies against the system CA bundle; `None` when no CA certificate was found.
    verified: Option<ClientConfig>,
    /// Verifies against an empty root store (every certificate fails): plain-HTTP clients when
    /// no CA bundle exists.
    empty: ClientConfig,
    /// Accepts any certificate (`verify_tls = false`).
    insecure: ClientConfig,
}

fn tls_configs() -> &'static TlsConfigs {
    static CONFIGS: OnceLock<TlsConfigs> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let base = || {
            ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
        };
        let finish = |mut c: ClientConfig| {
            c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            c.resumption = rustls::client::Resumption::disabled();
            c
        };
        let roots = system_roots();
        let verified = (!roots.is_empty())
            .then(|| finish(base().with_root_certificates(roots).with_no_client_auth()));
        let empty = finish(
            base()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
        );
        let any = AcceptAnyCertificate(provider.signature_verification_algorithms);
        let insecure = finish(
            base()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(any))
                .with_no_client_auth(),
        );
        TlsConfigs {
            verified,
            empty,
            insecure,
        }
    })
}

/// CA certificates from `SSL_CERT_FILE`, else from the first bundle in [`CA_BUNDLES`] that
/// holds any; empty when none does.
fn system_roots() -> RootCertStore {
    let env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    for path in env.into_iter().chain(CA_BUNDLES.iter().map(PathBuf::from)) {
        let Ok(certs) = CertificateDer::pem_file_iter(&path) else {
            continue;
        };
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(certs.filter_map(Result::ok));
        if !roots.is_empty() {
            return roots;
        }
    }
    RootCertStore::empty()
}

/// Accepts any certificate chain and name, but checks that the server holds the key of the
/// certificate it presented (the handshake signature).
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
