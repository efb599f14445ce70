//! The runtime-neutral half of running [`lapswim_core::Swim`] over real
//! sockets, shared by `lapswim-tokio` and `lapswim-smol`.
//!
//! A node is one task that owns the state machine, a UDP socket, a timer
//! and the node's reliable streams, and moves bytes and time between them
//! through the core's [`Driver`](lapswim_core::Driver); applications talk to
//! it through a cloneable [`Node`] handle. A runtime supplies only what
//! [`Runtime`] asks: register a socket and a TCP listener, make a timer,
//! connect, sleep, spawn a task.
//!
//! Guarantees: the task never panics on network input, survives every
//! socket error (counted in [`IoStats`]), never blocks on a slow event
//! consumer (events it cannot queue are counted and announced by
//! [`NodeEvent::Lagged`]) and recycles every sent buffer of a datagram's
//! size (a stream frame's larger one is freed).
//!
//! Rejected packets are counted by reason in the core's stats and logged
//! at debug; those refused for a key or cluster label mismatch (wrong
//! key, no key, unsealed, another label) are also logged as warnings, at
//! most one per [`REJECT_WARN_INTERVAL`] and reason, each with a
//! `suppressed` count of those refused since the last one.
//!
//! # Streams
//!
//! Beside its datagrams the core uses reliable streams (full-state syncs,
//! reliable messages): TCP connections carrying frames, each a 4-byte
//! big-endian length and that many payload bytes. The node listens for
//! them on the same port as its UDP socket (with port 0, TCP is bound
//! first and UDP takes the port it got). Each connection runs in a task
//! of its own; the node task opens, writes and closes them as the core
//! asks and hands back what they read and how they end (see
//! [`streams`]). Their limits, each a [`NodeBuilder`] setter:
//!
//! | limit | default | beyond it |
//! |---|---|---|
//! | connect timeout | 5 s | the stream ends `TimedOut` |
//! | idle timeout (no whole frame read) | 10 s | the stream ends `TimedOut` |
//! | frame size | [`Datagram::MAX_FRAME_LEN`](lapswim_core::Datagram::MAX_FRAME_LEN) (64 KiB) | the stream ends `Failed`, unread |
//! | open streams | 64 | an accepted connection is closed at once, an open ends `Refused` |
//! | bytes waiting to be written, per stream | 1 MiB | the stream ends `Failed` |
//!
//! Frames read wait for the node task in a bounded queue, so a busy node
//! stops its connections reading rather than buffering. Everything is
//! counted in [`IoStats::streams`]. For partition tests on one host,
//! [`NodeBuilder::peer_filter`] cuts a node off from chosen peers, for
//! datagrams and streams alike.
//!
//! # Features
//!
//! Both off by default; each turns on lapswim-core's feature of the same
//! name, and lapswim-tokio and lapswim-smol forward them.
//!
//! - `encryption`: AES-256-GCM sealing with a keyring: `NodeBuilder::keys`,
//!   `NodeBuilder::encryption_mode`, `Node::keyring`, `Node::keys`, and the
//!   `Key` and `KeyringOp` re-exports.
//! - `trace`: recording the node's inputs for `swim replay`:
//!   `NodeBuilder::record` (implies `encryption`).

mod clock;
mod node;
mod rejects;
pub mod runtime;
pub mod streams;
mod task;

pub use clock::Clock;
pub use lapswim_core::{Config, Event, Label, MemberName, MemberState, StreamEnd, StreamId};
#[cfg(feature = "encryption")]
pub use lapswim_core::{Key, KeyringOp};
pub use node::{
    DEFAULT_EVENT_CAPACITY, DEFAULT_TIMER_SLACK_DIVISOR, Events, IoStats, Member, Node, NodeBuilder, NodeError,
    NodeEvent, NodeStats, StartError,
};
pub use rejects::REJECT_WARN_INTERVAL;
pub use runtime::{Runtime, Timer, UdpIo};
pub use streams::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_STREAMS, DEFAULT_STREAM_BUFFER, Framing,
    MEMBERLIST_MAX_MESSAGE, PeerFilter, StreamInput, StreamLimits, StreamStats, Streams,
};
pub use task::{RECV_BATCH, ROUNDS_BEFORE_YIELD};
