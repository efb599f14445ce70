//! What goes into the state machine and what comes out of it.

use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;

use crate::config::ConfigError;
use crate::name::MemberName;
use crate::time::Instant;
use crate::wire::{Datagram, DecodeError};

/// One input to [`Swim::handle`](crate::Swim::handle).
///
/// Borrowed, so a datagram is handled where it was received; its owned
/// twin, [`OwnedInput`], is what a trace records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A datagram arrived from `from`.
    Packet {
        /// The sender's address as the socket reported it.
        from: SocketAddr,
        /// The datagram; decoded messages borrow from it.
        bytes: &'a [u8],
    },
    /// The deadline last reported with [`Action::SetTimer`] has passed (or
    /// any other wake-up; waking early does nothing).
    Timeout,
    /// Join a cluster through these seed addresses.
    Join {
        /// Members to contact; every one is asked for its member table.
        seeds: &'a [SocketAddr],
    },
    /// Leave the cluster gracefully.
    Leave,
}

/// An [`Input`] that owns its data, to keep, record or send elsewhere and
/// hand back to the state machine later with [`OwnedInput::as_input`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum OwnedInput {
    /// See [`Input::Packet`].
    Packet {
        /// The sender's address.
        from: SocketAddr,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// See [`Input::Timeout`].
    Timeout,
    /// See [`Input::Join`].
    Join {
        /// Members to contact.
        seeds: Vec<SocketAddr>,
    },
    /// See [`Input::Leave`].
    Leave,
}

impl OwnedInput {
    /// The input, borrowing from `self`.
    pub fn as_input(&self) -> Input<'_> {
        match self {
            OwnedInput::Packet { from, bytes } => Input::Packet { from: *from, bytes },
            OwnedInput::Timeout => Input::Timeout,
            OwnedInput::Join { seeds } => Input::Join { seeds },
            OwnedInput::Leave => Input::Leave,
        }
    }
}

impl From<Input<'_>> for OwnedInput {
    fn from(input: Input<'_>) -> Self {
        match input {
            Input::Packet { from, bytes } => OwnedInput::Packet { from, bytes: bytes.to_vec() },
            Input::Timeout => OwnedInput::Timeout,
            Input::Join { seeds } => OwnedInput::Join { seeds: seeds.to_vec() },
            Input::Leave => OwnedInput::Leave,
        }
    }
}

/// One output of the state machine, for the runtime to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send `packet` as one datagram to `to`. Handing the packet back with
    /// [`Swim::recycle`](crate::Swim::recycle) afterwards lets the next
    /// datagram reuse its buffer.
    Send {
        /// The destination.
        to: SocketAddr,
        /// The encoded datagram.
        packet: Datagram,
    },
    /// Call [`Swim::handle_timeout`](crate::Swim::handle_timeout) at `at`
    /// (replacing any earlier request).
    SetTimer(Instant),
    /// Something happened that the application may want to know.
    Event(Event),
}

/// A change in membership, or in our own life cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Event {
    /// A member was added (or came back after being dead or gone).
    Joined {
        /// Its name.
        name: MemberName,
        /// Its address.
        addr: SocketAddr,
    },
    /// A member is suspected of having failed.
    Suspected {
        /// Its name.
        name: MemberName,
        /// The incarnation suspected.
        incarnation: u32,
        /// Whether our own failed probe raised it (rather than gossip).
        local: bool,
    },
    /// A suspected member refuted the suspicion.
    Alive {
        /// Its name.
        name: MemberName,
        /// Its new incarnation.
        incarnation: u32,
    },
    /// A member was declared dead.
    Failed {
        /// Its name.
        name: MemberName,
        /// The incarnation declared dead.
        incarnation: u32,
        /// Whether our own suspicion timeout declared it (rather than gossip).
        local: bool,
    },
    /// A member left gracefully.
    Left {
        /// Its name.
        name: MemberName,
    },
    /// A member's address or metadata changed.
    Updated {
        /// Its name.
        name: MemberName,
        /// Its (possibly new) address.
        addr: SocketAddr,
    },
    /// A seed answered our join: we now have its member table.
    JoinCompleted {
        /// The seed that answered first.
        seed: SocketAddr,
    },
    /// No seed answered within `join_attempts` tries.
    JoinFailed,
    /// Our leave has been announced; the member now ignores all input.
    LeaveCompleted,
}

/// Why a call was refused. Refusals change no state (a rejected datagram
/// is only counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    Config(ConfigError),
    /// Metadata longer than `max_meta_len`.
    MetaTooLong,
    /// `join` with no seed.
    NoSeeds,
    /// The member is leaving or has left; it takes no more commands.
    Leaving,
    /// A datagram was rejected (and counted in the stats).
    Rejected(DecodeError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "invalid configuration: {e}"),
            Error::MetaTooLong => f.write_str("metadata longer than max_meta_len"),
            Error::NoSeeds => f.write_str("join needs at least one seed"),
            Error::Leaving => f.write_str("the member is leaving or has left"),
            Error::Rejected(e) => write!(f, "datagram rejected: {e}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}
