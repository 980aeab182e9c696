//! Health-check scale: 10,000 TCP endpoints on loopback probed every second.
//!
//! `cargo bench --bench probe_scale` starts TCP listeners on 100 loopback addresses
//! (127.0.1.1 to 127.0.1.100) × 100 ports that accept and close, a Meridian health monitor
//! with one `tcp` check per endpoint (interval 1 s, jitter 1 s), runs it for a fixed time and
//! reports:
//! - the monitor's CPU per second of wall time (its own threads only, from
//!   /proc/self/task/*/stat, utime+stime), against the target of under half a core;
//! - memory per endpoint (RSS growth when the monitor starts, divided by the endpoint count)
//!   and latency state per probed endpoint (`LatencyWindow::heap_bytes` once a result is in),
//!   against 8 KiB;
//! - probes completed per second, and how many endpoints ended Up.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs a short smoke pass with
//! 200 endpoints for 2 s.

use std::time::{Duration, Instant};

use meridian::config::Config;
use meridian::health::latency::LatencyWindow;
use meridian::health::state::Health;
use meridian::monitor::Monitor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const MONITOR_THREAD: &str = "bench-monitor";

fn clock_ticks() -> f64 {
    // SAFETY: sysconf(3) takes a plain integer and touches no memory of ours.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// CPU seconds (user, system) of this process's threads whose name starts with `prefix`.
fn thread_cpu(prefix: &str) -> (f64, f64) {
    let mut user = 0u64;
    let mut sys = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 12 {
            user += f[11].parse::<u64>().unwrap_or(0);
            sys += f[12].parse::<u64>().unwrap_or(0);
        }
    }
    (user as f64 / clock_ticks(), sys as f64 / clock_ticks())
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    kb * 1024
}

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls get a pointer to a live, properly initialised rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (addrs, ports, seconds) = if full {
        (100u32, 100u16, 20u64)
    } else {
        (10, 20, 2)
    };
    let endpoints = addrs as usize * ports as usize;
    raise_nofile();

    // Targets: accept and close, on their own runtime and threads (not counted as monitor CPU).
    let targets = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-targets")
        .enable_all()
        .build()
        .unwrap();
    let mut base_port = 0u16;
    targets.block_on(async {
        // Find a run of free ports on the first address, then bind the same ports everywhere.
        'search: for start in (20000u16..60000).step_by(997) {
            let mut listeners = Vec::new();
            for a in 1..=addrs {
                for p in 0..ports {
                    match tokio::net::TcpListener::bind(format!("127.0.1.{a}:{}", start + p)).await
                    {
                        Ok(l) => listeners.push(l),
                        Err(_) => continue 'search,
                    }
                }
            }
            base_port = start;
            for l in listeners {
                tokio::spawn(async move {
                    while let Ok((s, _)) = l.accept().await {
                        drop(s);
                    }
                });
            }
            break;
        }
    });
    assert!(base_port != 0, "no free port range");

    let mut toml = String::from("[dns]\nlisten = [\"127.0.0.1:0\"]\n");
    for p in 0..ports {
        toml.push_str(&format!(
            "[checks.p{p}]\nkind = \"tcp\"\nport = {}\ninterval = \"1s\"\ntimeout = \"500ms\"\njitter = \"1s\"\n",
            base_port + p
        ));
    }
    for p in 0..ports {
        toml.push_str(&format!(
            "[[pool]]\nname = \"pool{p}\"\nchecks = [\"p{p}\"]\n"
        ));
        for a in 1..=addrs {
            toml.push_str(&format!(
                "[[pool.endpoint]]\nname = \"e{a}-{p}\"\naddress = \"192.0.2.1\"\ncheck_address = \"127.0.1.{a}\"\n"
            ));
        }
    }
    let config =
        Config::parse(std::path::Path::new("bench.toml"), &toml).unwrap_or_else(|e| panic!("{e}"));

    let monitor_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(MONITOR_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let rss0 = rss_bytes();
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let monitor = {
        let _g = monitor_rt.enter();
        Monitor::start(&config, cancel.clone(), &tracker)
    };
    // Warm up: every endpoint gets its first verdict.
    let t0 = Instant::now();
    while !monitor.ready() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss1 = rss_bytes();
    let (u0, s0) = thread_cpu(MONITOR_THREAD);
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let wall = w0.elapsed().as_secs_f64();
    let (u1, s1) = thread_cpu(MONITOR_THREAD);
    let status = monitor.status();
    let up = status.iter().filter(|s| s.health == Health::Up).count();
    let probes: u64 = status
        .iter()
        .map(|s| s.latency.samples + s.latency.lost)
        .sum();
    cancel.cancel();
    monitor_rt.shutdown_timeout(Duration::from_secs(1));
    targets.shutdown_background();

    let cpu = (u1 - u0) + (s1 - s0);
    println!("endpoints                 {endpoints}");
    println!(
        "ready after               {:.2} s",
        t0.elapsed().as_secs_f64() - wall
    );
    println!("measured for              {wall:.1} s");
    println!(
        "monitor CPU per wall s    {:.3} cores (user {:.3}, system {:.3})  target < 0.5",
        cpu / wall,
        (u1 - u0) / wall,
        (s1 - s0) / wall
    );
    println!(
        "CPU per probe             {:.1} µs",
        cpu / (endpoints as f64 * wall) * 1e6
    );
    println!(
        "memory per endpoint       {:.0} bytes (RSS growth {} KiB)",
        (rss1 - rss0) as f64 / endpoints as f64,
        (rss1 - rss0) / 1024
    );
    // A probed endpoint's window (the slices come with its first result).
    let mut window = LatencyWindow::new(Instant::now());
    window.record(None, Instant::now());
    println!(
        "latency state / endpoint  {} bytes  target < 8192",
        window.heap_bytes()
    );
    println!("probes recorded in window {probes} (all endpoints)");
    println!("endpoints up              {up} / {endpoints}");
    assert_eq!(
        up, endpoints,
        "every target accepts: all endpoints must be up"
    );
}
