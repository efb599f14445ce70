//! See `swim_core::internals::fuzzing::decrypt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_core::internals::fuzzing::decrypt(data));
