//! See `swim_core::fuzzing::stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_core::fuzzing::stream(data));
