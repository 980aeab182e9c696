//! Fuzz target `config`: see fuzz/bodies/config.rs for what it feeds and what it holds the code to.
#![no_main]

#[path = "../bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::config::run(data));
