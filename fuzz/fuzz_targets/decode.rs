//! Arbitrary bytes as a datagram: no panic, and a round trip by value.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_core::fuzzing::decode(data));
