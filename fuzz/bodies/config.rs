//! The configuration loader on arbitrary text: `Config::parse`, what `meridian check`, start-up
//! and every reload run, as if the text were the file `meridian.toml` in a scratch folder.
//!
//! Two keys make the loader read a file: `secret_file` (a TSIG key) and `[geo] demand`. The
//! folder holds one of each (`xfr.key`, `demand.txt`) and a few empty zone files; an input whose value for either key
//! names anything but a plain file name in the folder is skipped, so the fuzzer never reads
//! /dev/zero or the machine's files. (Other paths, zone files and the GeoIP database, are only
//! checked for existence by the loader.)
//!
//! Held to:
//! - no panic, whatever the text;
//! - every error is about the configuration file, at a line and column the text has (1-based;
//!   the column at most one past the line's end), or about a file it names in the folder;
//! - a configuration that loads has a compiled model whose indexes hold: pools' regions,
//!   services' pools, regions' fallbacks, the node's region, endpoint ids 0.. in pool order,
//!   transfer keys, each service's pools distinct; and its decision tables, every endpoint up, pass the policy body's checks.

use std::path::Path;

use meridian::config::{Config, ConfigError};
use meridian::policy::{PolicyInputs, Serving, build_tables};

pub fn run(data: &[u8]) {
    let dir = super::process_scratch();
    static FILES: std::sync::Once = std::sync::Once::new();
    FILES.call_once(|| write_files(dir));
    run_in(dir, data)
}

/// The files the configuration may name, in `dir`.
pub fn write_files(dir: &Path) {
    std::fs::write(
        dir.join("xfr.key"),
        "bWVyaWRpYW4gdHJhbnNmZXIga2V5LCAzMiBieXRlcw==\n",
    )
    .expect("key file");
    std::fs::write(
        dir.join("demand.txt"),
        "network,weight\n127.0.0.0/8,10\n10.0.0.0/8,2.5\n2001:db8::/32\n",
    )
    .expect("demand file");
    // Zone files are only checked for existence: the seeds name these.
    for zone in ["example.com.zone", "full.zone", "rfc4592.zone"] {
        std::fs::write(dir.join(zone), "").expect("zone file");
    }
}

/// [`run`] with the configuration in `dir` (which holds what [`write_files`] writes).
pub fn run_in(dir: &Path, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if reads_outside(text) {
        return;
    }
    let path = dir.join("meridian.toml");
    match Config::parse(&path, text) {
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error without errors");
            for e in &errors.0 {
                check_error(&path, dir, text, e);
            }
            let _ = errors.to_string();
        }
        Ok(config) => check_config(&config),
    }
}

/// Whether a `secret_file` or `demand` value is anything but a plain name in the folder.
fn reads_outside(text: &str) -> bool {
    fn walk(v: &toml::Value) -> bool {
        match v {
            toml::Value::Table(t) => t.iter().any(|(k, v)| {
                let file_key = k == "secret_file" || k == "demand";
                (file_key && !v.as_str().is_none_or(plain_name)) || walk(v)
            }),
            toml::Value::Array(a) => a.iter().any(walk),
            _ => false,
        }
    }
    fn plain_name(s: &str) -> bool {
        matches!(s, "database" | "none")
            || (!s.is_empty()
                && !s.starts_with('.')
                && !s.contains(['/', '\\', '\0'])
                && s.len() < 64)
    }
    match toml::from_str::<toml::Table>(text) {
        Ok(t) => walk(&toml::Value::Table(t)),
        // The loader fails on the same text before it reads any file.
        Err(_) => false,
    }
}

fn check_error(path: &Path, dir: &Path, text: &str, e: &ConfigError) {
    match e {
        ConfigError::At {
            file, line, column, ..
        } => {
            assert_eq!(file, path, "{e}");
            let lines: Vec<&str> = text.split('\n').collect();
            assert!(
                (1..=lines.len()).contains(line),
                "{e}: line out of the text"
            );
            let width = lines[line - 1].chars().count();
            assert!(
                (1..=width + 1).contains(column),
                "{e}: column past the line"
            );
        }
        ConfigError::Io { file, .. } => {
            assert!(file.starts_with(dir), "{e}: a file outside the folder")
        }
        ConfigError::Zone(z) => assert!(z.file.starts_with(dir), "{e}"),
    }
}

/// The compiled model's indexes, and its tables with every endpoint up.
fn check_config(config: &Config) {
    let m = &config.model;
    let mut next = 0;
    for p in &m.pools {
        assert!(p.region < m.regions.len(), "pool {} region", p.name);
        for e in p.endpoints.iter() {
            assert_eq!(e.id.index(), next, "endpoint {} id", e.name);
            next += 1;
        }
    }
    for r in &m.regions {
        assert!(r.fallback.iter().all(|&f| f < m.regions.len()), "{r:?}");
    }
    for s in &m.services {
        assert!(!s.pools.is_empty(), "service {} without pools", s.name);
        for &p in &s.pools {
            assert!(p < m.pools.len(), "service {} pool {p}", s.name);
            assert!(!m.pools[p].endpoints.is_empty(), "pool without endpoints");
        }
        assert!((1..=8).contains(&s.answers), "service {} answers", s.name);
        let mut seen = std::collections::HashSet::new();
        assert!(
            s.pools.iter().all(|p| seen.insert(p)),
            "service {} lists a pool twice: {:?}",
            s.name,
            s.pools
        );
    }
    if let Some(r) = m.node_region {
        assert!(r < m.regions.len(), "node region");
    }
    for z in &config.zones {
        assert!(
            z.transfer_keys.iter().all(|&k| k < config.tsig_keys.len()),
            "zone {} keys",
            z.origin
        );
    }
    if m.services.is_empty() {
        return;
    }
    let serving = |_: usize, _: usize| Serving::Up;
    let inputs = PolicyInputs {
        regions: &m.regions,
        pools: &m.pools,
        services: &m.services,
        serving: &serving,
        rtt: &|_, _, _, _| None,
        node_region: m.node_region.unwrap_or(0),
        vantages: &[],
        demand: None,
    };
    let tables = build_tables(&inputs, None);
    let world = super::policy::World {
        regions: m.regions.clone(),
        pools: m.pools.clone(),
        services: m.services.clone(),
        node_region: m.node_region.unwrap_or(0),
        vantages: Vec::new(),
        demand: None,
    };
    let state = super::policy::State {
        serving: m
            .pools
            .iter()
            .map(|p| vec![Serving::Up; p.endpoints.len()])
            .collect(),
        rtt: Vec::new(),
    };
    super::policy::check_tables(&world, &state, &tables, &[]);
}
