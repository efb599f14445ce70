//! Sans-IO SWIM + Lifeguard (WIP)
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod awareness;
mod broadcast;
pub mod config;
mod io;
pub mod member;
mod members;
pub mod name;
mod rng;
mod stats;
pub mod suspicion;
mod swim;
pub mod time;
mod timers;
pub mod wire;

pub use broadcast::retransmit_limit;
pub use config::{Config, ConfigError};
pub use io::{Action, Error, Event, Input};
pub use member::{MemberState, MemberView};
pub use members::{MemberKey, ProbeSelector, RoundRobin};
pub use name::{MAX_NAME_LEN, MemberName, NameError};
pub use rng::Random;
pub use stats::Stats;
pub use swim::{Identity, MAX_SEEDS, MAX_SYNC_PACKETS, Swim, push_pull_scale};
pub use time::{Duration, Instant};
