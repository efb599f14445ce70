//! Helpers shared by the cluster property tests.

#![allow(dead_code, unreachable_pub, reason = "each test file uses its own part")]

pub mod schedule;
