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
//! use swim_core::{Action, Config, Identity, Input, Instant, MemberName, Swim};
//!
//! let addr: SocketAddr = "127.0.0.1:7946".parse().unwrap();
//! let me = Identity::new(MemberName::new("node-a").unwrap(), addr);
//! let mut swim = Swim::new(Config::lan(), me, Xoshiro256PlusPlus::seed_from_u64(7)).unwrap();
//!
//! // Reused, with datagrams recycled: the steady state does not allocate.
//! let mut out = Vec::new();
//! let mut wake_at = None;
//! let seed: SocketAddr = "127.0.0.1:7947".parse().unwrap();
//! swim.handle(Instant::from_millis(0), Input::Join { seeds: &[seed] }, &mut out).unwrap();
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
//! //   a datagram: swim.handle(now, Input::Packet { from, bytes }, &mut out)
//! //   the deadline: swim.handle(now, Input::Timeout, &mut out)
//! //   a stream accepted, a frame read, a stream ended:
//! //     Input::StreamAccepted { id, from }, Input::StreamFrame { id, frame },
//! //     Input::StreamClosed { id, end }
//! assert!(wake_at.is_some());
//! ```
//!
//! [`Driver`] is this loop written once: give it a [`Transport`] (send a
//! datagram, arm the timer, take an event) and it does the rest, keeping
//! the deadline and a [`Digest`] of everything emitted.
//!
//! # Structure
//!
//! `Swim` composes parts that each own their state: the failure detector
//! ([`detector`]), membership (the table, our own record, suspicions,
//! the merge by [`member::precedes`], failed members kept for reconnect
//! attempts), dissemination (the update and broadcast queues and gossip),
//! the life cycle (join, full-state sync over streams, reconnects, leave),
//! the book of open streams, and user data (the Lamport clock and
//! broadcast deduplication). Everything they want done leaves through one
//! outbox, flushed once per input.
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
//! - **Never panics** on any input or call order. A bad datagram is
//!   rejected with a typed [`wire::DecodeError`], counted in [`Stats`], and
//!   changes no state; misuse of the API is an [`Error`].
//! - **Bounded memory** under any input: member table, update queue,
//!   relays, names, metadata and datagrams all have limits in [`Config`] or
//!   [`wire`].
//! - `#![no_std]` with `alloc`; `#![forbid(unsafe_code)]`.
//!
//! # Features
//!
//! - `serde`: `Serialize` for [`Config`], [`Event`], [`Stats`] and the
//!   time types.
//! - `encryption`: AES-256-GCM sealing of every datagram and frame with a
//!   keyring ([`Input::Keyring`]); without it a sealed packet is rejected
//!   as [`wire::DecodeError::Sealed`].
//!
//! The minimum supported Rust version is 1.88.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod awareness;
mod broadcast;
pub mod config;
pub mod detector;
pub mod digest;
mod dissemination;
pub mod driver;
mod envelope;
#[doc(hidden)]
pub mod fuzzing;
mod io;
#[cfg(feature = "encryption")]
pub mod keyring;
mod lifecycle;
pub mod member;
mod members;
mod membership;
pub mod name;
mod outbox;
mod paged;
mod rng;
mod rtt;
mod stats;
mod streams;
pub mod suspicion;
mod swim;
pub mod time;
mod timers;
mod topology;
#[cfg(feature = "trace")]
pub mod trace;
mod user;
pub mod wire;

pub use broadcast::retransmit_limit;
pub use config::{Config, ConfigError};
pub use digest::Digest;
pub use driver::{Driver, Machine, Transport};
pub use io::{Action, Error, Event, Input, OwnedInput, StreamEnd, StreamId};
#[cfg(feature = "encryption")]
pub use keyring::{Key, KeyringError, KeyringOp};
pub use lifecycle::{EARLY_SYNC_PERIODS, EARLY_SYNCS, MAX_SEEDS, push_pull_scale};
pub use member::{INCARNATION_WINDOW, MemberState, MemberView};
pub use members::{MemberKey, ProbeSelector, RoundRobin};
pub use name::{MAX_NAME_LEN, MemberName, NameError};
pub use rng::Random;
pub use stats::Stats;
pub use swim::{Identity, Swim};
pub use time::{Duration, Instant};
pub use topology::{DEFAULT_FAR_EVERY, Distance, Topology};
pub use wire::Label;
