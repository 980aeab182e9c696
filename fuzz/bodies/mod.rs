//! The bodies of Meridian's fuzz targets, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/`) and by `tests/fuzz_corpus.rs`, which runs every input kept in
//! `fuzz/regressions/<target>/` through the same code under `cargo test`.
//!
//! Each body takes arbitrary bytes and returns nothing: it panics only when an invariant of the
//! code under test breaks (a panic inside that code, or a check here). The checks say what they
//! hold the code to, so a failing input reads as a bug report.
//!
//! - [`query`]: the query parser (`wire::parse_query` and its fast path `parse_plain`), against
//!   hickory-proto's decoder, and parse → encode (hickory) → parse.
//! - [`answer`]: the whole answer path the UDP worker and the TCP task run on one message,
//!   against a snapshot assembled once from the test fixtures and a configuration with services.
//! - [`zone`]: the master-file reader through `zone::load_zone`, and the kept-copy writer's
//!   round trip (read → write → read gives the same records).
//! - [`config`]: the configuration loader from text (`Config::parse`), its file:line:column
//!   errors and the compiled model's indexes.
//! - [`policy`]: decision tables over arbitrary regions, pools, services, health and latency.

#![allow(dead_code)] // each fuzz target links the bodies of the others too

pub mod answer;
pub mod config;
pub mod policy;
pub mod query;
pub mod zone;

use std::path::{Path, PathBuf};

/// The repository's root, where `tests/fixtures` is: the crate that includes these bodies is
/// either the main one or `fuzz/`.
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("tests/fixtures").is_dir() {
        here.to_path_buf()
    } else {
        here.parent().expect("fuzz/ has a parent").to_path_buf()
    }
}

/// A folder of the fuzzing process's own for the files the zone and config bodies write,
/// created on first use under the system's temporary folder (fuzz/run.sh points `TMPDIR` at
/// a folder it removes afterwards; tests pass a `tempfile` folder to the bodies instead).
pub fn process_scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("meridian-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    })
}

/// Reads numbers off the front of a fuzz input; past its end every read gives 0, so any input
/// describes some world.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        (self.u32() as u64) << 32 | self.u32() as u64
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.u8() as usize % n
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A value in `lo..=hi` in 256 steps.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.u8() as f64 / 255.0
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Whatever is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}
