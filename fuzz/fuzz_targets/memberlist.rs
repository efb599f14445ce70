//! See `lapswim_core::internals::fuzzing::memberlist`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lapswim_core::internals::fuzzing::memberlist(data));
