//! A deterministic, single-threaded network simulator for `lapswim-core`, and
//! the benchmark scenarios S1–S5.
//!
//! Every run is a pure function of its seed and arguments: the virtual clock
//! advances from event to event (same-millisecond events run in the order
//! they were scheduled), node `i` draws randomness from `mix(seed, i + 1)`
//! and the network from `mix(seed, 0)`.
//!
//! ```
//! use lapswim_sim::net::{Command, Flow, NetConfig, Sim};
//! use lapswim_core::{Config, Event};
//!
//! let mut sim = Sim::new(3, Config::lan(), NetConfig::default()).unwrap();
//! sim.schedule(0, Command::Join { node: 1, seeds: vec![0] });
//! sim.schedule(0, Command::Join { node: 2, seeds: vec![0] });
//! let mut joined = 0;
//! sim.run_until(10_000, &mut |_t, _node, e: &Event| {
//!     if matches!(e, Event::Joined { .. }) { joined += 1; }
//!     Flow::Continue
//! });
//! assert_eq!(joined, 6); // every node sees the two others
//! ```

mod addr;
pub mod chart;
mod clock;
mod command;
#[cfg(feature = "scenarios")]
pub mod coords;
#[cfg(feature = "scenarios")]
#[doc(hidden)]
pub mod flood;
pub mod fuzzing;
pub mod geo;
#[cfg(feature = "scenarios")]
pub mod gray;
pub mod heap;
#[cfg(feature = "scenarios")]
pub mod memory;
pub mod net;
#[cfg(feature = "scenarios")]
pub mod oneway;
pub mod process;
#[cfg(feature = "scenarios")]
pub mod regions;
#[cfg(feature = "scenarios")]
pub mod resilience;
#[cfg(feature = "scenarios")]
pub mod scenario;
#[cfg(feature = "scenarios")]
pub mod serf;
#[cfg(feature = "scenarios")]
pub mod spread;
#[cfg(feature = "scenarios")]
pub mod steady;
pub mod views;
