//! The one action loop: runs a state machine's input and carries out what
//! it emits (send and recycle, set the deadline, report events), for any
//! runtime.
//!
//! The simulator, the benchmarks, the adapters and the tests all drive
//! [`Swim`](crate::Swim) through a [`Driver`]; a runtime supplies only a
//! [`Transport`]: how to send a datagram, how to arm its one timer, where
//! events go.
//!
//! ```
//! use core::net::SocketAddr;
//! use rand_core::SeedableRng;
//! use rand_xoshiro::Xoshiro256PlusPlus;
//! use lapswim_core::Datagram;
//! use lapswim_core::{Config, Driver, Event, Identity, Input, Instant, MemberName, StreamId, Swim, Transport};
//!
//! #[derive(Default)]
//! struct Log { sent: usize, opened: usize, wake: Option<Instant>, events: Vec<Event> }
//!
//! impl Transport for Log {
//!     fn send(&mut self, _to: SocketAddr, packet: Datagram) -> Option<Datagram> {
//!         self.sent += 1; // socket.send_to(&packet, to) ...
//!         Some(packet) // ... then hand the buffer back for reuse
//!     }
//!     fn set_timer(&mut self, at: Instant) { self.wake = Some(at); }
//!     fn event(&mut self, event: Event) { self.events.push(event); }
//!     fn open_stream(&mut self, _id: StreamId, _to: SocketAddr) { self.opened += 1; /* connect ... */ }
//!     fn send_frame(&mut self, _id: StreamId, frame: Datagram) -> Option<Datagram> { Some(frame) }
//!     fn close_stream(&mut self, _id: StreamId) {}
//! }
//!
//! let me = Identity::new(MemberName::new("a").unwrap(), "127.0.0.1:7946".parse().unwrap());
//! let mut swim = Swim::new(Config::lan(), me, Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
//! let (mut driver, mut log) = (Driver::new(), Log::default());
//! let seed: SocketAddr = "127.0.0.1:7947".parse().unwrap();
//! driver.handle(&mut swim, Instant::ZERO, Input::Join { seeds: &[seed] }, &mut log).unwrap();
//! assert_eq!(log.opened, 1); // the join's full-state sync with the seed
//! assert_eq!(swim.deadline(), log.wake); // the one copy of the deadline
//! ```

use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::api::digest::Digest;
use crate::api::{Action, Error, Event, Input, StreamId};
use crate::util::time::Instant;
use crate::wire::Datagram;

/// A sans-IO member a [`Driver`] can run: [`Swim`](crate::Swim), or an application's
/// wrapper around it.
pub trait Machine {
    /// Handles one input, appending actions to `out`
    /// (see [`Swim::handle`](crate::Swim::handle)).
    fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Action>) -> Result<(), Error>;

    /// Takes back a sent datagram's buffer (see [`Swim::recycle`](crate::Swim::recycle)).
    fn recycle(&mut self, packet: Datagram);
}

/// What a runtime does with a state machine's actions.
pub trait Transport {
    /// Sends `packet` as one datagram to `to`. Return it afterwards to let
    /// the machine reuse its buffer, or keep it (to deliver it later, say).
    fn send(&mut self, to: SocketAddr, packet: Datagram) -> Option<Datagram>;

    /// The machine wants [`Input::Timeout`] at `at`; this replaces any
    /// earlier request.
    fn set_timer(&mut self, at: Instant);

    /// Something happened that the application may want to know.
    fn event(&mut self, event: Event);

    /// Connects stream `id` to `to` (see [`Action::OpenStream`]). A
    /// runtime without streams reports [`Input::StreamClosed`] with
    /// [`StreamEnd::Refused`](crate::StreamEnd::Refused) for it on its next turn.
    fn open_stream(&mut self, id: StreamId, to: SocketAddr);

    /// Sends one frame on stream `id` (see [`Action::SendFrame`]). Return
    /// the buffer to let the machine reuse it.
    fn send_frame(&mut self, id: StreamId, frame: Datagram) -> Option<Datagram>;

    /// Closes stream `id` after its frames (see [`Action::CloseStream`]).
    fn close_stream(&mut self, id: StreamId);
}

/// Actions a driver keeps room for between inputs; a burst beyond it is
/// given back.
const KEPT_CAPACITY: usize = 16;

#[cfg(feature = "trace")]
/// What a recorder sees of each input: the input, the digest after its
/// actions, and the actions (see `trace`, which implements it).
pub(crate) trait Tap {
    fn input(&mut self, at: Instant, input: Input<'_>, digest: u64, actions: &[Action]);
    fn flush(&mut self);
}

/// Runs inputs through a [`Machine`] and its actions through a
/// [`Transport`], keeping a [`Digest`] of every action (with the time of
/// its input). It keeps no deadline: the machine owns it
/// ([`Swim::deadline`](crate::Swim::deadline)) and reports each change through
/// [`Transport::set_timer`].
#[derive(Default)]
pub struct Driver {
    out: Vec<Action>,
    digest: Digest,
    /// Where each input is recorded, if anywhere (see `trace`).
    #[cfg(feature = "trace")]
    pub(crate) tap: Option<alloc::boxed::Box<dyn Tap + Send>>,
}

impl core::fmt::Debug for Driver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver").field("digest", &self.digest).finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver with an empty digest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hands `input` to `machine` at `now` and carries out every action it
    /// emits, in order. A refused input (`Err`) is returned after its
    /// actions (there are none but a changed deadline) are carried out.
    pub fn handle<M, T>(&mut self, machine: &mut M, now: Instant, input: Input<'_>, io: &mut T) -> Result<(), Error>
    where
        M: Machine + ?Sized,
        T: Transport + ?Sized,
    {
        let result = machine.handle(now, input, &mut self.out);
        if !self.out.is_empty() {
            self.digest.time(now);
        }
        for action in &self.out {
            self.digest.action(action);
        }
        #[cfg(feature = "trace")]
        if let Some(tap) = self.tap.as_mut() {
            tap.input(now, input, self.digest.value(), &self.out);
        }
        for action in self.out.drain(..) {
            match action {
                Action::Send { to, packet } => {
                    if let Some(buf) = io.send(to, packet) {
                        machine.recycle(buf);
                    }
                }
                Action::SetTimer(at) => io.set_timer(at),
                Action::Event(e) => io.event(e),
                Action::OpenStream { id, to } => io.open_stream(id, to),
                Action::SendFrame { id, frame } => {
                    if let Some(buf) = io.send_frame(id, frame) {
                        machine.recycle(buf);
                    }
                }
                Action::CloseStream { id } => io.close_stream(id),
            }
        }
        self.out.shrink_to(KEPT_CAPACITY);
        result
    }

    /// The digest of every action so far.
    pub fn digest(&self) -> Digest {
        self.digest
    }
}
