//! See `lapswim_core::internals::fuzzing::decrypt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lapswim_core::internals::fuzzing::decrypt(data));
