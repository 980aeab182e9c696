//! The alert rules of config/alerts.yml under Prometheus's own rule unit tests: `promtool test
//! rules` runs tests/alerts/*.yml (input series, then for each alert the times it must fire and
//! must not: before and after its `for:` duration, cleared again, and series that look alike but
//! must not alert), comparing the labels and the rendered annotations of every firing alert.
//!
//! Every alert of config/alerts.yml must have a firing case and a non-firing case there, and the
//! test files must test the rule file itself (not a copy): a new alert without tests fails here.
//! promtool comes from Debian's `prometheus` package, which .ci/run installs; a missing promtool
//! fails the test rather than skipping it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The alert names of config/alerts.yml, in file order.
fn alerts() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("config/alerts.yml")).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// The rule test files, sorted.
fn test_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/alerts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

/// Per alert name: (firing cases, non-firing cases) in the test files. A case is an
/// `alertname:` line followed by its `exp_alerts:` line, `[]` for "must not fire".
fn cases(files: &[PathBuf]) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut name: Option<String> = None;
        for line in text.lines().map(str::trim) {
            if let Some(n) = line.strip_prefix("alertname:") {
                name = Some(n.trim().to_string());
            } else if let Some(exp) = line.strip_prefix("exp_alerts:") {
                let n = name
                    .take()
                    .unwrap_or_else(|| panic!("{}: exp_alerts without alertname", f.display()));
                let e = out.entry(n).or_default();
                if exp.trim() == "[]" {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
        }
    }
    out
}

#[test]
fn every_alert_is_tested_by_promtool_firing_and_not() {
    let alerts = alerts();
    assert!(alerts.len() >= 14, "found only {} alerts", alerts.len());
    let files = test_files();
    assert!(!files.is_empty(), "no tests/alerts/*.yml");

    // Each file tests the rule file itself.
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let rules: Vec<&str> = text
            .split("rule_files:")
            .nth(1)
            .unwrap_or_else(|| panic!("{}: no rule_files", f.display()))
            .lines()
            .skip(1)
            .take_while(|l| l.trim_start().starts_with('-'))
            .map(|l| l.trim().trim_start_matches('-').trim())
            .collect();
        assert_eq!(
            rules,
            ["../../config/alerts.yml"],
            "{}: must test config/alerts.yml itself",
            f.display()
        );
    }

    // Every alert has both kinds of case; no case names an alert that does not exist.
    let cases = cases(&files);
    let mut missing = Vec::new();
    for a in &alerts {
        match cases.get(a) {
            Some(&(firing, quiet)) if firing > 0 && quiet > 0 => {}
            Some(&(firing, quiet)) => {
                missing.push(format!("{a}: {firing} firing, {quiet} non-firing cases"))
            }
            None => missing.push(format!("{a}: no case")),
        }
    }
    assert!(
        missing.is_empty(),
        "alerts of config/alerts.yml without a firing and a non-firing case in \
         tests/alerts/*.yml:\n{}",
        missing.join("\n")
    );
    let unknown: Vec<&String> = cases.keys().filter(|n| !alerts.contains(n)).collect();
    assert!(
        unknown.is_empty(),
        "cases of alerts that do not exist: {unknown:?}"
    );

    // And promtool runs them all.
    let out = Command::new("promtool")
        .current_dir(root())
        .args(["test", "rules"])
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's `prometheus` package, which provides \
                 it (.ci/run does)"
            )
        });
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool test rules:\n{printed}");
    assert_eq!(
        printed.matches("SUCCESS").count(),
        files.len(),
        "promtool test rules:\n{printed}"
    );
}
