//! See `lapswim_sim::fuzzing::scenario`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lapswim_sim::fuzzing::scenario(data));
