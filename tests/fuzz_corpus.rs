//! The fuzz targets' kept inputs as regression tests: every file in `fuzz/regressions/<target>/`
//! (the seeds `fuzz/seeds.py` writes, and every crash input once its bug was fixed) goes
//! through the target's body, the very code the cargo-fuzz target runs (`fuzz/bodies/`, shared
//! by `#[path]`). A failing input is named with its panic.
//!
//! The answer target's world (zones from tests/fixtures, services of every policy) and the
//! zone and config targets' files live in a temporary folder per test.

#[path = "../fuzz/bodies/mod.rs"]
mod bodies;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const TARGETS: [&str; 5] = ["query", "answer", "zone", "config", "policy"];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The kept inputs of `target`, sorted by name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("regressions").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("read input"))
        })
        .collect();
    files.sort();
    assert!(
        files.iter().any(|(n, _)| n.starts_with("seed-")),
        "{target}: no seeds (run fuzz/seeds.py)"
    );
    files
}

/// Run every input of `target` through `body`; fail naming each input that panics.
fn run_all(target: &str, body: impl Fn(&[u8])) {
    let mut failed = Vec::new();
    let files = inputs(target);
    for (name, data) in &files {
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(data))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("fuzz/regressions/{target}/{name}: {msg}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs failed:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn every_target_has_kept_inputs_and_a_test() {
    let names = |dir: &str, strip: &str| -> BTreeSet<String> {
        std::fs::read_dir(fuzz_dir().join(dir))
            .unwrap()
            .map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                n.strip_suffix(strip).unwrap_or(&n).to_string()
            })
            .collect()
    };
    let targets: BTreeSet<String> = TARGETS.iter().map(|t| t.to_string()).collect();
    assert_eq!(names("fuzz_targets", ".rs"), targets, "fuzz/fuzz_targets/");
    assert_eq!(names("regressions", ""), targets, "fuzz/regressions/");
    assert_eq!(names("bodies", ".rs"), {
        let mut b = targets.clone();
        b.insert("mod".into());
        b
    });
}

#[test]
fn query() {
    run_all("query", bodies::query::run);
}

#[test]
fn answer() {
    let dir = tempfile::tempdir().unwrap();
    let world = bodies::answer::World::build(dir.path());
    run_all("answer", |data| bodies::answer::run_in(&world, data));
}

#[test]
fn zone() {
    let dir = tempfile::tempdir().unwrap();
    run_all("zone", |data| bodies::zone::run_in(dir.path(), data));
}

#[test]
fn config() {
    let dir = tempfile::tempdir().unwrap();
    bodies::config::write_files(dir.path());
    run_all("config", |data| bodies::config::run_in(dir.path(), data));
}

#[test]
fn policy() {
    run_all("policy", bodies::policy::run);
}

/// The bodies check something: a wrong answer from the code under test fails them. (A body
/// that could not fail would pass every kept input too.)
#[test]
fn bodies_fail_on_broken_invariants() {
    use meridian::dns::answer::{Peer, Transport, Work, respond};
    let fails = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();

    // A response with another ID than the query's, or cut short.
    let dir = tempfile::tempdir().unwrap();
    let world = bodies::answer::World::build(dir.path());
    let snap = world.snapshot(0);
    let seeds = inputs("answer");
    let (_, seed) = seeds
        .iter()
        .find(|(n, _)| n.ends_with("www.example.com-A"))
        .unwrap();
    let query = &seed[1..];
    let peer = Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1".parse().unwrap(),
        random: 1,
    };
    let mut out = vec![0; 4096];
    let o = respond(snap, query, peer, &mut Work::default(), &mut out).unwrap();
    let check = |r: &[u8]| bodies::answer::check_response(snap, query, Transport::Udp, &o, r);
    check(&out[..o.len]);
    let mut other_id = out[..o.len].to_vec();
    other_id[1] ^= 1;
    assert!(
        fails(&|| check(&other_id)),
        "a response with another ID passed"
    );
    assert!(fails(&|| check(&out[..o.len - 1])), "a cut response passed");

    // Tables built with every endpoint up, checked as if every endpoint were down.
    let w = bodies::policy::World::read(&mut bodies::Bytes::new(&[]));
    let up = w.read_state(&mut bodies::Bytes::new(&[2; 64]));
    let down = w.read_state(&mut bodies::Bytes::new(&[0; 64]));
    let tables = w.build(&up, None);
    bodies::policy::check_tables(&w, &up, &tables, &[]);
    assert!(
        fails(&|| bodies::policy::check_tables(&w, &down, &tables, &[])),
        "tables of healthy endpoints passed as tables of down ones"
    );
}
