//! A script of datagrams, wake-ups, joins and leaves against one member.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_core::fuzzing::state_machine(data));
