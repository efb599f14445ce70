//! The runtime-neutral half of running [`swim_core::Swim`] over real
//! sockets, shared by `swim-tokio` and `swim-smol`.
//!
//! A node is one task that owns the state machine, a UDP socket and a
//! timer, and moves bytes and time between them through the core's
//! [`Driver`](swim_core::Driver); applications talk to it through a
//! cloneable [`Node`] handle. A runtime supplies only what
//! [`Runtime`] asks: register a socket, make a timer, spawn a task.
//!
//! Guarantees: the task never panics on network input, survives every
//! socket error (counted in [`IoStats`]), never blocks on a slow event
//! consumer (events it cannot queue are counted and announced by
//! [`NodeEvent::Lagged`]) and recycles every sent buffer.

mod clock;
pub mod cluster;
mod node;
pub mod runtime;
mod task;
pub mod testing;

pub use clock::Clock;
pub use node::{
    DEFAULT_EVENT_CAPACITY, DEFAULT_TIMER_SLACK_DIVISOR, Events, IoStats, Member, Node, NodeBuilder, NodeError,
    NodeEvent, NodeStats, StartError,
};
pub use runtime::{Runtime, Timer, UdpIo};
pub use swim_core::{Config, Event, MemberName, MemberState};
pub use task::{RECV_BATCH, ROUNDS_BEFORE_YIELD};
