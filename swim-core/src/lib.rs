//! A sans-IO implementation of SWIM cluster membership (Das, Gupta and
//! Motivala, 2002) with the extensions of HashiCorp's memberlist and the
//! Lifeguard paper (Dadgar et al., 2018).
//!
//! [`Swim`] is a pure state machine. It never reads a clock, opens a
//! socket, spawns a thread or draws from a global random generator: time
//! comes in as `now`, datagrams come in as byte slices, randomness comes
//! from the generator you inject, and everything it wants done comes out as
//! [`Action`]s. Embed it in any event loop, drive it from a simulator, or
//! step it by hand in a test.
//!
//! # The run loop
//!
//! ```
//! use core::net::SocketAddr;
//! use rand_xoshiro::Xoshiro256PlusPlus;
//! use rand_core::SeedableRng;
//! use lapswim_core::{Action, Config, Identity, Input, Instant, MemberName, Swim};
//!
//! # fn main() -> Result<(), Box<dyn core::error::Error>> {
//! let addr: SocketAddr = "127.0.0.1:7946".parse()?;
//! let me = Identity::new(MemberName::new("node-a")?, addr);
//! let mut swim = Swim::new(Config::lan(), me, Xoshiro256PlusPlus::seed_from_u64(7))?;
//!
//! // Reused, with datagrams recycled: the steady state does not allocate.
//! let mut out = Vec::new();
//! let mut wake_at = None;
//! let seed: SocketAddr = "127.0.0.1:7947".parse()?;
//! swim.handle(Instant::from_millis(0), Input::Join { seeds: &[seed] }, &mut out)?;
//! // Junk from anyone is counted and changes nothing; it is never an `Err`,
//! // so `?` on every call is safe.
//! swim.handle(Instant::from_millis(1), Input::Packet { from: seed, bytes: b"junk" }, &mut out)?;
//! assert_eq!(swim.stats().rejected_total(), 1);
//! for action in out.drain(..) {
//!     match action {
//!         Action::Send { to, packet } => {
//!             // socket.send_to(&packet, to), then hand the buffer back:
//!             let _ = to;
//!             swim.recycle(packet);
//!         }
//!         Action::SetTimer(at) => wake_at = Some(at), // replaces any earlier deadline
//!         Action::Event(event) => println!("{event:?}"),
//!         // The join's full-state sync runs over a reliable stream:
//!         Action::OpenStream { id, to } => { /* connect TCP to `to`, call it `id` */ }
//!         Action::SendFrame { id, frame } => { /* write a 4-byte length, then `frame` */ }
//!         Action::CloseStream { id } => { /* flush, then shut the connection down */ }
//!         _ => {} // `Action` is non-exhaustive: later versions may add kinds
//!     }
//! }
//! // ...then, whichever comes first:
//! //   a datagram: swim.handle(now, Input::Packet { from, bytes }, &mut out)?
//! //   the deadline: swim.handle(now, Input::Timeout, &mut out)?
//! //   a stream accepted, a frame read, a stream ended:
//! //     Input::StreamAccepted { id, from }, Input::StreamFrame { id, frame },
//! //     Input::StreamClosed { id, end }
//! assert!(wake_at.is_some());
//! # Ok(())
//! # }
//! ```
//!
//! [`Driver`] is this loop written once: give it a [`Transport`] (send a
//! datagram, arm the timer, take an event) and it does the rest, keeping
//! the deadline and a [`Digest`] of everything emitted.
//!
//! # Structure
//!
//! `Swim` composes parts that each own their state: the failure detector,
//! membership (the table, our own record, suspicions, the merge, failed
//! members kept for reconnect attempts), dissemination (the update and
//! broadcast queues and gossip), the life cycle (join, full-state sync over
//! streams, reconnects, leave), the book of open streams, and user data
//! (the Lamport clock and broadcast deduplication). Everything they want
//! done leaves through one outbox, flushed once per input.
//!
//! The source is laid out in layers, each using only those below it:
//! `util` (time, names, the generator's interface, timers), `wire` (the
//! codec, framing, sealing, the keyring), `api` (inputs, actions, events,
//! errors, configuration, counters, the driver), `protocol` (the parts
//! above), `machine` (`Swim`, which composes them) and `trace` (recording
//! and replay).
//!
//! # Streams
//!
//! Full-state syncs (on join, every push-pull interval, and to retry
//! failed members), fallback pings and reliable messages need a reliable,
//! ordered byte stream. The state machine asks for one with
//! [`Action::OpenStream`], writes frames with [`Action::SendFrame`] and
//! hangs up with [`Action::CloseStream`]; the runtime reports
//! [`Input::StreamAccepted`], [`Input::StreamFrame`] and
//! [`Input::StreamClosed`]. A runtime without streams reports every open
//! as [`StreamEnd::Refused`]: joins then fail, and everything else works
//! on datagrams alone.
//!
//! # Guarantees
//!
//! - **Deterministic**: the same [`Config`], generator seed and sequence of
//!   `(now, input)` give the same actions, byte for byte.
//! - **One door, one deadline**: every input goes through [`Swim::handle`];
//!   the state machine keeps its own timers and reports only the earliest
//!   as [`Action::SetTimer`]. Waking early does nothing.
//! - **Never panics** on any input or call order. Bytes from the network
//!   are never an `Err`: a bad datagram or frame is rejected for a typed
//!   [`DecodeError`], counted in [`Stats::rejected`], optionally reported as
//!   [`Event::Rejected`], and changes no state. An [`Error`] means misuse
//!   of the API only, so a run loop can use `?` on every call.
//! - **Bounded memory** under any input: member table, update queue,
//!   relays, names, metadata and datagrams all have limits in [`Config`] or
//!   the wire format ([`Datagram::MAX_LEN`], [`Datagram::MAX_FRAME_LEN`]).
//! - `#![no_std]` with `alloc`; `#![forbid(unsafe_code)]`.
//!
//! # Features
//!
//! - `serde`: `Serialize` for [`Config`], [`Event`], [`Stats`] and the
//!   time types.
//! - `encryption`: AES-256-GCM sealing of every datagram and frame with a
//!   keyring ([`Input::Keyring`]); without it a sealed packet is rejected
//!   as [`DecodeError::Sealed`].
//! - `trace`: recording a member's inputs and replaying them ([`trace`];
//!   implies `serde` and `encryption`).
//!
//! The minimum supported Rust version is 1.88.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(any(test, fuzzing, feature = "internals")),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]
// Items of the private layers are `pub` so that the doc-hidden `internals`
// module can re-export them for the simulator, the benchmarks and the
// fuzz targets; without that feature nothing outside reaches them.
#![cfg_attr(not(feature = "internals"), allow(unreachable_pub, reason = "re-exported by `internals` only"))]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod api;
#[cfg(any(fuzzing, feature = "internals"))]
pub(crate) mod fuzzing;
mod machine;
mod protocol;
#[cfg(feature = "trace")]
pub mod trace;
mod util;
mod wire;

pub use api::{
    Action, Config, ConfigError, Digest, Driver, Error, Event, Identity, Input, Machine, OwnedInput, QueryFilter,
    QueryId, QueryOptions, QueryReport, Stats, StreamEnd, StreamId, Tags, Transport,
};
pub use machine::Swim;
pub use protocol::coordinates::coordinate::Coordinate;
pub use protocol::table::record::{MemberState, MemberView};
pub use protocol::table::topology::Topology;
pub use protocol::table::{MemberKey, ProbeSelector, RoundRobin};
pub use util::name::{MemberName, NameError};
pub use util::time::{Duration, Instant};
#[cfg(feature = "encryption")]
pub use wire::keyring::{Key, KeyringError, KeyringOp};
pub use wire::{Datagram, DecodeError, Label};

/// The crate's inner parts, for the simulator, the benchmarks and the fuzz
/// targets of this workspace: the codec, protocol formulas and constants,
/// trace internals and the fuzz entry points. Not part of the public API:
/// anything here may change in any release.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    /// The fuzz targets' entry points.
    pub mod fuzzing {
        pub use crate::fuzzing::*;
    }
    pub use crate::protocol::detector::{NACK_PERCENT, nack_wait};
    pub use crate::protocol::lifecycle::{EARLY_SYNC_PERIODS, EARLY_SYNCS, MAX_SEEDS, push_pull_scale};
    pub use crate::protocol::membership::suspicion::{suspicion_min, suspicion_timeout};
    pub use crate::protocol::retransmit::retransmit_limit;
    pub use crate::protocol::table::record::{Claim, INCARNATION_WINDOW, newer, precedes};
    pub use crate::protocol::table::topology::DEFAULT_FAR_EVERY;
    pub use crate::util::name::MAX_NAME_LEN;
    pub use crate::util::rng::Random;
    #[cfg(feature = "encryption")]
    pub use crate::wire::keyring::{MAX_KEYS, NONCE_LEN, TAG_LEN};

    /// Reading and writing whole traces.
    #[cfg(feature = "trace")]
    pub mod trace {
        pub use crate::trace::writer::to_bytes;
    }

    /// The codec and the framing.
    pub mod wire {
        pub use crate::wire::frame::*;
        pub use crate::wire::*;
    }
}
