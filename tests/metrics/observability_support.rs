//! Support for tests/metrics/observability.rs: the PromQL expressions of the dashboard and the alert
//! rules, and running promtool.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use regex::Regex;
use serde_json::Value;

pub const DASHBOARD: &str = "grafana/meridian.json";
pub const ALERTS: &str = "config/alerts.yml";
pub const UNIT: &str = "config/meridian.service";

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Run promtool with `args`, `stdin` fed to it; its output. Panics when promtool is missing.
pub fn promtool(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's `prometheus` package, which provides \
                 it (.ci/run does)"
            )
        });
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ------------------------------------------------------------------------------------------------
// Expressions

/// Every `targets[].expr` of the dashboard, at any depth (panels inside collapsed rows too), with
/// the panel title for messages.
pub fn dashboard_exprs(dash: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, title: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(o) => {
                let title = o.get("title").and_then(Value::as_str).unwrap_or(title);
                if let Some(Value::Array(targets)) = o.get("targets") {
                    for t in targets {
                        let expr = t["expr"].as_str().unwrap_or_else(|| {
                            panic!("panel {title:?}: a target without a PromQL expr")
                        });
                        out.push((title.to_string(), expr.to_string()));
                    }
                }
                for (k, v) in o {
                    if k != "targets" {
                        walk(v, title, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, title, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dash, "", &mut out);
    out
}

/// The `expr` of every rule in a Prometheus rules file, with the rule's name. A line reader for
/// the shapes config/alerts.yml uses (a plain one-line scalar, or a `|`/`>` block scalar); the
/// count is checked against the number of rules so a shape it cannot read fails loudly.
pub fn rule_exprs(yaml: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let (mut out, mut name, mut rules) = (Vec::new(), String::new(), 0);
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start().trim_start_matches("- ");
        if let Some(n) = t
            .strip_prefix("alert:")
            .or_else(|| t.strip_prefix("record:"))
        {
            name = n.trim().to_string();
            rules += 1;
        }
        if let Some(rest) = t.strip_prefix("expr:") {
            let rest = rest.trim();
            if rest.starts_with('|') || rest.starts_with('>') {
                let key_indent = indent(lines[i]);
                let folded = rest.starts_with('>');
                let mut body = Vec::new();
                while i + 1 < lines.len()
                    && (lines[i + 1].trim().is_empty() || indent(lines[i + 1]) > key_indent)
                {
                    i += 1;
                    body.push(lines[i].trim());
                }
                let expr = body.join(if folded { " " } else { "\n" });
                out.push((name.clone(), expr.trim().to_string()));
            } else {
                let unquoted = match rest.as_bytes().first() {
                    Some(b'"') | Some(b'\'') => {
                        assert!(
                            !rest[1..rest.len() - 1].contains(['\\', '"', '\'']),
                            "rule {name}: quoted expr with escapes; use a block scalar (expr: |)"
                        );
                        &rest[1..rest.len() - 1]
                    }
                    _ => rest,
                };
                out.push((name.clone(), unquoted.to_string()));
            }
        }
        i += 1;
    }
    assert_eq!(
        out.len(),
        rules,
        "every rule has one expr this reader found"
    );
    out
}

/// A dashboard expression as Prometheus would get it: `$__rate_interval` as 5m, the template
/// variables (all regex label matchers here) as `.*`.
pub fn concrete(expr: &str) -> String {
    let e = expr.replace("$__rate_interval", "5m");
    let var = Regex::new(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?").unwrap();
    let e = var.replace_all(&e, ".*").into_owned();
    assert!(!e.contains('$'), "unexpanded variable in {expr}");
    e
}

/// Every expression of the dashboard and the alert rules, concrete, labelled by where it is.
pub fn all_exprs() -> Vec<(String, String)> {
    let dash: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut all: Vec<(String, String)> = dashboard_exprs(&dash)
        .into_iter()
        .map(|(title, e)| (format!("{DASHBOARD} panel {title:?}"), concrete(&e)))
        .collect();
    all.extend(
        rule_exprs(&read(ALERTS))
            .into_iter()
            .map(|(name, e)| (format!("{ALERTS} rule {name}"), e)),
    );
    all
}

/// The `meridian_*` metric names an expression reads.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let re = Regex::new(r"\bmeridian_[a-z0-9_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

/// The text of a call's arguments: from `open` (just past its `(`) to the matching `)`.
pub fn call_args(expr: &str, open: usize) -> &str {
    let mut depth = 1;
    for (i, c) in expr[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &expr[open..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {expr}")
}
