//! Fuzz target `answer`: see fuzz/bodies/answer.rs for what it feeds and what it holds the code to.
#![no_main]

#[path = "../bodies/mod.rs"]
mod bodies;

// The world (zones, services, three health states, their decision tables) is built before
// fuzzing starts: seconds that must not count against the first input.
libfuzzer_sys::fuzz_target!(
    init: {
        bodies::answer::World::shared();
    },
    |data: &[u8]| bodies::answer::run(data)
);
