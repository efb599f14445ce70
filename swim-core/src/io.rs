//! What goes into the state machine and what comes out of it.

use alloc::string::String;
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
    /// The runtime accepted a stream connection from `from` and named it
    /// `id` (a [`StreamId::Inbound`] it has not used for another open
    /// stream).
    StreamAccepted {
        /// The runtime's handle on the stream.
        id: StreamId,
        /// The peer's address as the connection reported it.
        from: SocketAddr,
    },
    /// One whole frame arrived on stream `id` (the payload, without the
    /// length prefix the runtime reads it by; see [`wire::MAX_FRAME`]).
    ///
    /// [`wire::MAX_FRAME`]: crate::wire::MAX_FRAME
    StreamFrame {
        /// The stream.
        id: StreamId,
        /// The frame's payload.
        frame: &'a [u8],
    },
    /// Stream `id` ended: the peer closed it, or it failed. The state
    /// machine forgets the stream; the runtime must not report it again.
    StreamClosed {
        /// The stream.
        id: StreamId,
        /// How it ended.
        end: StreamEnd,
    },
    /// Replace our metadata (at most `max_meta_len` bytes): the
    /// incarnation goes up and the change spreads as an alive update.
    SetMeta {
        /// The new metadata.
        meta: &'a [u8],
    },
    /// Replace the application state sent in every full-state sync
    /// (at most `max_app_state_len` bytes).
    SetAppState {
        /// The new state.
        state: &'a [u8],
    },
    /// Broadcast `payload` to every member, stamped with our Lamport time;
    /// each member reports it once as [`Event::User`].
    Broadcast {
        /// At most `max_user_payload` bytes.
        payload: &'a [u8],
    },
    /// Send `payload` to the member named `to`, reported there as
    /// [`Event::Message`]: in one datagram (best effort) or over a stream
    /// (reliable; [`Event::MessageFailed`] if it could not be delivered).
    Message {
        /// The member's name.
        to: &'a str,
        /// At most `max_user_payload` bytes.
        payload: &'a [u8],
        /// Over a stream rather than a datagram.
        reliable: bool,
    },
    /// Changes the keyring or the migration mode (see
    /// [`keyring`](crate::keyring)); refused changes leave it as it was.
    #[cfg(feature = "encryption")]
    Keyring(crate::keyring::KeyringOp),
}

/// A stream's handle. The state machine numbers the streams it opens; the
/// runtime numbers those it accepts, so the two never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StreamId {
    /// Opened by the state machine with [`Action::OpenStream`].
    Outbound(u64),
    /// Accepted by the runtime and reported with [`Input::StreamAccepted`].
    Inbound(u64),
}

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum StreamEnd {
    /// The peer closed it after its last frame.
    Closed,
    /// The connection could not be made (refused, unreachable, no room).
    Refused,
    /// The peer's host answered that nothing listens at the address (a TCP
    /// reset to the connection attempt, `ECONNREFUSED`): the process that
    /// was there is gone. A runtime reports this only for that answer, as
    /// the state machine takes it as evidence of a crash.
    NotListening,
    /// Connecting, or waiting for the next frame, took too long.
    TimedOut,
    /// The connection broke, or the peer sent a frame over the limit.
    Failed,
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
    /// See [`Input::StreamAccepted`].
    StreamAccepted {
        /// The stream.
        id: StreamId,
        /// The peer.
        from: SocketAddr,
    },
    /// See [`Input::StreamFrame`].
    StreamFrame {
        /// The stream.
        id: StreamId,
        /// The frame's payload.
        frame: Vec<u8>,
    },
    /// See [`Input::StreamClosed`].
    StreamClosed {
        /// The stream.
        id: StreamId,
        /// How it ended.
        end: StreamEnd,
    },
    /// See [`Input::SetMeta`].
    SetMeta {
        /// The new metadata.
        meta: Vec<u8>,
    },
    /// See [`Input::SetAppState`].
    SetAppState {
        /// The new state.
        state: Vec<u8>,
    },
    /// See [`Input::Broadcast`].
    Broadcast {
        /// The payload.
        payload: Vec<u8>,
    },
    /// See [`Input::Message`].
    Message {
        /// The member's name.
        to: String,
        /// The payload.
        payload: Vec<u8>,
        /// Over a stream.
        reliable: bool,
    },
    /// See [`Input::Keyring`].
    #[cfg(feature = "encryption")]
    Keyring(crate::keyring::KeyringOp),
}

impl OwnedInput {
    /// The input, borrowing from `self`.
    pub fn as_input(&self) -> Input<'_> {
        match self {
            OwnedInput::Packet { from, bytes } => Input::Packet { from: *from, bytes },
            OwnedInput::Timeout => Input::Timeout,
            OwnedInput::Join { seeds } => Input::Join { seeds },
            OwnedInput::Leave => Input::Leave,
            OwnedInput::StreamAccepted { id, from } => Input::StreamAccepted { id: *id, from: *from },
            OwnedInput::StreamFrame { id, frame } => Input::StreamFrame { id: *id, frame },
            OwnedInput::StreamClosed { id, end } => Input::StreamClosed { id: *id, end: *end },
            OwnedInput::SetMeta { meta } => Input::SetMeta { meta },
            OwnedInput::SetAppState { state } => Input::SetAppState { state },
            OwnedInput::Broadcast { payload } => Input::Broadcast { payload },
            OwnedInput::Message { to, payload, reliable } => Input::Message { to, payload, reliable: *reliable },
            #[cfg(feature = "encryption")]
            OwnedInput::Keyring(op) => Input::Keyring(*op),
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
            Input::StreamAccepted { id, from } => OwnedInput::StreamAccepted { id, from },
            Input::StreamFrame { id, frame } => OwnedInput::StreamFrame { id, frame: frame.to_vec() },
            Input::StreamClosed { id, end } => OwnedInput::StreamClosed { id, end },
            Input::SetMeta { meta } => OwnedInput::SetMeta { meta: meta.to_vec() },
            Input::SetAppState { state } => OwnedInput::SetAppState { state: state.to_vec() },
            Input::Broadcast { payload } => OwnedInput::Broadcast { payload: payload.to_vec() },
            Input::Message { to, payload, reliable } => {
                OwnedInput::Message { to: to.into(), payload: payload.to_vec(), reliable }
            }
            #[cfg(feature = "encryption")]
            Input::Keyring(op) => OwnedInput::Keyring(op),
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
    /// Connect a reliable stream to `to`, named `id` from now on. Frames
    /// for it may follow at once: the runtime sends them, in order, once
    /// connected, or reports [`Input::StreamClosed`] if it cannot connect.
    OpenStream {
        /// The stream's handle (a [`StreamId::Outbound`]).
        id: StreamId,
        /// Where to connect.
        to: SocketAddr,
    },
    /// Send `frame` on stream `id`, behind a 4-byte big-endian length
    /// prefix (docs/protocol.md, "Streams").
    SendFrame {
        /// The stream.
        id: StreamId,
        /// The frame's payload, at most [`wire::MAX_FRAME`] bytes.
        ///
        /// [`wire::MAX_FRAME`]: crate::wire::MAX_FRAME
        frame: Datagram,
    },
    /// Close stream `id` once the frames sent on it have gone out. The
    /// state machine has forgotten it: nothing more is reported about it.
    CloseStream {
        /// The stream.
        id: StreamId,
    },
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
    /// An application broadcast, reported once per member.
    User {
        /// Who broadcast it.
        from: MemberName,
        /// Its Lamport time.
        ltime: u64,
        /// What it carries.
        payload: Vec<u8>,
    },
    /// A message sent to us alone ([`Input::Message`]).
    Message {
        /// The sender's name, as it gave it.
        from: MemberName,
        /// What it carries.
        payload: Vec<u8>,
        /// Whether it came over a stream.
        reliable: bool,
    },
    /// A reliable message could not be delivered.
    MessageFailed {
        /// The member it was for.
        to: MemberName,
    },
    /// A datagram or stream frame was rejected, unread (only with
    /// [`Config::report_rejections`](crate::Config::report_rejections)).
    /// It changed nothing; it is counted in
    /// [`Stats::rejected`](crate::Stats::rejected) either way. A rejected
    /// frame also ends its stream.
    Rejected {
        /// Where it came from: the datagram's source, or the stream's peer.
        from: SocketAddr,
        /// The stream it arrived on; `None` for a datagram.
        stream: Option<StreamId>,
        /// Why.
        reason: DecodeError,
    },
    /// A peer's application state, from a full-state sync.
    AppState {
        /// The peer's name.
        from: MemberName,
        /// Whether the sync was the peer's join or ours.
        join: bool,
        /// The state it set with [`Input::SetAppState`].
        state: Vec<u8>,
    },
}

/// Why a call was refused: misuse of the API, never bytes from the
/// network (a rejected datagram or frame is counted in
/// [`Stats::rejected`](crate::Stats::rejected) and the call returns `Ok`).
///
/// Every refusal leaves the member as it was: no protocol state changes,
/// nothing is sent; only the latest time seen advances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// [`Swim::new`](crate::Swim::new): the configuration is invalid. No
    /// member was built.
    Config(ConfigError),
    /// Metadata longer than `max_meta_len` (at [`Swim::new`](crate::Swim::new)
    /// or [`Input::SetMeta`]). The metadata in force is unchanged.
    MetaTooLong,
    /// [`Input::Join`] with no seed. No join was started.
    NoSeeds,
    /// The member is leaving or has left; it takes no more commands. The
    /// command was ignored.
    Leaving,
    /// [`Input::Message`] to a name that is not a live member. Nothing was
    /// queued or sent.
    UnknownMember,
    /// A payload or state larger than its configured limit. Nothing was
    /// queued, sent or stored.
    TooLarge,
    /// Every stream slot (`max_streams`) is in use. No stream was opened;
    /// the message was not sent.
    Busy,
    /// A keyring change was refused. The keyring is unchanged.
    #[cfg(feature = "encryption")]
    Keyring(crate::keyring::KeyringError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "invalid configuration: {e}"),
            Error::MetaTooLong => f.write_str("metadata longer than max_meta_len"),
            Error::NoSeeds => f.write_str("join needs at least one seed"),
            Error::Leaving => f.write_str("the member is leaving or has left"),
            Error::UnknownMember => f.write_str("no live member of that name"),
            Error::TooLarge => f.write_str("payload larger than its configured limit"),
            Error::Busy => f.write_str("every stream slot is in use"),
            #[cfg(feature = "encryption")]
            Error::Keyring(e) => write!(f, "keyring change refused: {e}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}
