//! The `meridian` command: `serve`, `check`, `explain`, `simulate`, `override`, `--version`. Logic lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use meridian::config::Config;
use meridian::server::Server;
use tokio::signal::unix::{SignalKind, signal};

/// Exit status for configuration errors (as linkerd and sysexits' EX_USAGE).
const EXIT_CONFIG: u8 = 64;
/// How long open TCP connections get to finish on shutdown.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(
    name = "meridian",
    version,
    about = "Geo- and latency-aware authoritative DNS traffic director"
)]
struct Cli {
    /// Log format: "text" (human) or "json" (one object per line).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS until SIGTERM or SIGINT; SIGHUP reloads configuration and zones.
    Serve {
        /// Configuration file.
        #[arg(long, short, default_value = "config/meridian.toml")]
        config: PathBuf,
    },
    /// Set or clear an endpoint's manual override in the state file (`health.state_file`);
    /// a running server applies it on SIGHUP.
    Override {
        /// Configuration file.
        #[arg(long, short, default_value = "config/meridian.toml")]
        config: PathBuf,
        /// Endpoint name.
        endpoint: String,
        /// drain (withdrawn from answers, still probed), force-up, force-down, or clear.
        #[arg(value_parser = ["drain", "force-up", "force-down", "clear"])]
        action: String,
        /// Expire after this long, e.g. "30m", "2h" (default: until cleared).
        #[arg(long = "for")]
        duration: Option<String>,
    },
    /// Explain how NAME is answered for CLIENT-IP: location, region, every candidate with its
    /// health, latency, score and share, and the answer with its TTL and ECS scope. Runs the
    /// server's code against the configuration (health as at start-up: every endpoint up), or,
    /// with --server, asks a running server's admin API (its live health).
    Explain {
        /// Configuration file.
        #[arg(long, short, default_value = "config/meridian.toml")]
        config: PathBuf,
        /// The name asked, e.g. www.example.com.
        name: String,
        /// The client's address.
        client: std::net::IpAddr,
        /// Query type.
        #[arg(long, default_value = "A")]
        qtype: String,
        /// Present the client as an EDNS Client Subnet of this prefix length.
        #[arg(long)]
        ecs: Option<u8>,
        /// Admin API of a running server, e.g. http://127.0.0.1:9353: explain with its live
        /// health instead of loading the configuration.
        #[arg(long)]
        server: Option<String>,
    },
    /// Routing quality of a service: for every client network, the pools it is answered by
    /// and their expected RTT against the nearest pool that serves; with --down, what taking
    /// pools, regions or endpoints down would move (every endpoint up otherwise).
    Simulate {
        /// Configuration file.
        #[arg(long, short, default_value = "config/meridian.toml")]
        config: PathBuf,
        /// The service's name, e.g. www.example.com.
        #[arg(long)]
        service: String,
        /// CSV of client networks, `network,weight` a line (weight optional: the address
        /// count); default: every network of the configured GeoIP database.
        #[arg(long)]
        networks: Option<PathBuf>,
        /// With the database's networks: only the N largest (by address count).
        #[arg(long)]
        limit: Option<usize>,
        /// Take a pool, a region (all its pools) or an endpoint down; repeatable.
        #[arg(long)]
        down: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load and validate the configuration and every zone; print every problem found.
    Check {
        /// Configuration file.
        #[arg(long, short, default_value = "config/meridian.toml")]
        config: PathBuf,
    },
}

/// Probes hold sockets: lift the soft open-file limit to the hard one (thousands of checks).
fn raise_open_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    raise_open_file_limit();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    match cli.command {
        Command::Check { config } => match meridian::snapshot::load(&config) {
            Ok((_, snap)) => {
                for z in snap.catalog.zones() {
                    println!(
                        "zone {} serial {}: {} records",
                        z.origin, z.serial, z.record_count
                    );
                }
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{}: {} problem(s)", config.display(), errors.0.len());
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Explain {
            config,
            name,
            client,
            qtype,
            ecs,
            server,
        } => {
            let qtype: hickory_proto::rr::RecordType =
                match std::str::FromStr::from_str(&qtype.to_ascii_uppercase()) {
                    Ok(t) => t,
                    Err(_) => {
                        eprintln!("unknown query type {qtype}");
                        return ExitCode::from(EXIT_CONFIG);
                    }
                };
            if let Some(server) = server {
                return match explain_remote(&server, &name, client, qtype, ecs) {
                    Ok(text) => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        ExitCode::FAILURE
                    }
                };
            }
            let snap = match meridian::snapshot::load(&config) {
                Ok((_, snap)) => snap,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let req = meridian::explain::Request {
                name,
                client,
                qtype,
                ecs_prefix: ecs,
                random: 0,
            };
            match meridian::explain::explain(&snap, &req) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Simulate {
            config,
            service,
            networks,
            limit,
            down,
            json,
        } => {
            let snap = match meridian::snapshot::load(&config) {
                Ok((_, snap)) => snap,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            match simulate(&snap, service, networks.as_deref(), limit, down, json) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(EXIT_CONFIG)
                }
            }
        }
        Command::Override {
            config,
            endpoint,
            action,
            duration,
        } => match set_override(&config, &endpoint, &action, duration.as_deref()) {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Serve { config } => {
            let (cfg, snap) = match meridian::snapshot::load(&config) {
                Ok(x) => x,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(cfg.workers.clamp(1, 4))
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(serve(cfg, snap)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// What a URL fails to parse with (`url::ParseError`, which reqwest does not re-export).
type UrlError = <reqwest::Url as std::str::FromStr>::Err;

/// Why `explain --server` printed no report.
#[derive(Debug, thiserror::Error)]
enum RemoteExplainError {
    /// `--server` and `/explain` do not make a URL.
    #[error("--server {server:?}: {source}")]
    Url {
        server: String,
        #[source]
        source: UrlError,
    },
    /// No runtime for the request.
    #[error("tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// No HTTP client (no CA certificates, ...).
    #[error(transparent)]
    Client(#[from] meridian::health::probe::http::HttpSpecError),
    /// The request failed or its body could not be read.
    #[error("{server}: {source}")]
    Http {
        server: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status; `message` is its `{"error": ...}` or the body.
    #[error("{server}: {status}: {message}")]
    Refused {
        server: String,
        status: reqwest::StatusCode,
        message: String,
    },
}

/// Why `meridian override` wrote nothing.
#[derive(Debug, thiserror::Error)]
enum OverrideCommandError {
    /// The configuration does not load.
    #[error(transparent)]
    Config(#[from] meridian::config::ConfigErrors),
    /// The configuration has no state file to write to.
    #[error("no health.state_file is configured: overrides need one")]
    NoStateFile,
    /// The configuration has no endpoint of that name.
    #[error("no endpoint {endpoint:?} in {}", config.display())]
    UnknownEndpoint { endpoint: String, config: PathBuf },
    /// The duration argument does not parse.
    #[error(transparent)]
    Duration(#[from] meridian::config::health::DurationError),
    /// The state file cannot be read or written.
    #[error(transparent)]
    StateFile(#[from] meridian::health::overrides::StateFileError),
}

/// `explain --server`: the text report from a running server's admin API (`GET /explain`).
fn explain_remote(
    server: &str,
    name: &str,
    client: std::net::IpAddr,
    qtype: hickory_proto::rr::RecordType,
    ecs: Option<u8>,
) -> Result<String, RemoteExplainError> {
    let base = if server.ends_with('/') {
        server.to_string()
    } else {
        format!("{server}/")
    };
    let mut url = reqwest::Url::parse(&base)
        .and_then(|u| u.join("explain"))
        .map_err(|source| RemoteExplainError::Url {
            server: server.to_string(),
            source,
        })?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("name", name)
            .append_pair("client", &client.to_string())
            .append_pair("qtype", &qtype.to_string())
            .append_pair("format", "text");
        if let Some(p) = ecs {
            q.append_pair("ecs", &p.to_string());
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RemoteExplainError::Runtime)?;
    let http_err = |source| RemoteExplainError::Http {
        server: server.to_string(),
        source,
    };
    rt.block_on(async {
        let http = meridian::health::probe::http::plain_client()?;
        let response = http
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(http_err)?;
        let status = response.status();
        let body = response.text().await.map_err(http_err)?;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
            .unwrap_or(body);
        Err(RemoteExplainError::Refused {
            server: server.to_string(),
            status,
            message,
        })
    })
}

/// `meridian simulate`: the report as text or JSON (every endpoint up but those `down` names).
fn simulate(
    snap: &meridian::snapshot::Snapshot,
    service: String,
    networks: Option<&std::path::Path>,
    limit: Option<usize>,
    down: Vec<String>,
    json: bool,
) -> Result<String, meridian::simulate::SimulateError> {
    use meridian::simulate::{self as sim, SimulateError};
    let st = snap.steering.as_ref().ok_or(SimulateError::NoServices)?;
    let nets = match networks {
        Some(path) => sim::read_networks(path)?,
        None => sim::database_networks(st, limit)?,
    };
    let view = meridian::snapshot::steering::HealthView::default();
    let req = sim::Request { service, down };
    let report = sim::report(st, &view, snap.tables.as_deref(), &req, &nets)?;
    Ok(match json {
        true => serde_json::to_string_pretty(&report).expect("a report serializes") + "\n",
        false => report.to_text(),
    })
}

fn set_override(
    config: &std::path::Path,
    endpoint: &str,
    action: &str,
    duration: Option<&str>,
) -> Result<String, OverrideCommandError> {
    use meridian::health::state::OverrideKind;
    let cfg = Config::load(config)?;
    let path = cfg
        .state_file
        .as_ref()
        .ok_or(OverrideCommandError::NoStateFile)?;
    if !cfg
        .pools
        .iter()
        .flat_map(|p| p.endpoints.iter())
        .any(|e| e.name == endpoint)
    {
        return Err(OverrideCommandError::UnknownEndpoint {
            endpoint: endpoint.to_string(),
            config: config.to_path_buf(),
        });
    }
    let kind = match action {
        "drain" => Some(OverrideKind::Drain),
        "force-up" => Some(OverrideKind::ForceUp),
        "force-down" => Some(OverrideKind::ForceDown),
        _ => None,
    };
    let ttl = duration
        .map(meridian::config::health::parse_duration)
        .transpose()?;
    meridian::health::overrides::edit(path, endpoint, kind, ttl)?;
    Ok(format!(
        "{endpoint}: {action} written to {}; send SIGHUP to the server to apply it",
        path.display()
    ))
}

async fn serve(cfg: Config, snap: meridian::snapshot::Snapshot) -> std::io::Result<()> {
    // Handlers first: a signal that arrives once the sockets answer must never hit the default
    // action (which would end the process without a drain).
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let server = Server::start(&cfg, snap)?;
    for (u, t) in server.udp_addrs().iter().zip(server.tcp_addrs()) {
        tracing::info!(udp = %u, tcp = %t, workers = cfg.workers, "listening");
    }
    for z in server.snapshot().catalog.zones() {
        tracing::info!(zone = %z.origin, serial = z.serial, records = z.record_count, "zone loaded");
    }
    // Say once when every health check has its first verdict.
    let monitor = server.monitor().clone();
    tokio::spawn(async move {
        let mut changes = monitor.subscribe();
        while !monitor.ready() {
            if changes.changed().await.is_err() {
                return;
            }
        }
        tracing::info!(
            endpoints = monitor.status().len(),
            "ready: every health check has a verdict"
        );
    });
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let control = server.control().clone();
                // Parsing and loading zones is blocking file I/O: keep it off the async workers.
                let _ = tokio::task::spawn_blocking(move || control.reload()).await;
            }
        }
    }
    tracing::info!("shutting down");
    server.shutdown(GRACE).await;
    tracing::info!("stopped");
    Ok(())
}
