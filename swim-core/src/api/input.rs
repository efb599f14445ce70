//! What goes into the state machine: [`Input`], its owned twin, and the
//! names of streams.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::query::{QueryId, QueryOptions};
use super::tags::Tags;

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
    /// The deadline last reported with [`Action::SetTimer`](crate::Action::SetTimer) has passed (or
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
    /// With [`Config::memberlist_wire`](crate::Config::memberlist_wire),
    /// one whole memberlist message, as
    /// [`Config::memberlist_frame_len`](crate::Config::memberlist_frame_len)
    /// cuts them.
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
    /// Replace our metadata with `tags`' encoding (see [`Tags`]): spreads
    /// as an alive, like [`Input::SetMeta`]; refused with
    /// [`Error::MetaTooLong`](crate::Error::MetaTooLong) when it encodes
    /// to more than `max_meta_len` bytes.
    SetTags {
        /// The new tags (they replace all the old ones).
        tags: &'a Tags,
    },
    /// Send the named event `name` with `payload` to every member, stamped
    /// with our event Lamport time; each member reports it once as
    /// [`Event::User`](crate::Event::User), members that missed it are
    /// repaired by full-state syncs, and members that join later do not
    /// see it (unless `replay_events_on_join`).
    UserEvent {
        /// The event's name.
        name: &'a str,
        /// With `name`, at most `max_event_len` bytes, else
        /// [`Error::TooLarge`](crate::Error::TooLarge).
        payload: &'a [u8],
        /// Whether a consumer may coalesce events of this name (only the
        /// latest matters); carried to every member.
        coalesce: bool,
    },
    /// Ask every member `options.filter` selects, by gossip: each raises
    /// [`Event::Query`](crate::Event::Query) and may answer with
    /// [`Input::Respond`]; we report acks, answers and the end as
    /// [`Event::QueryAck`](crate::Event::QueryAck),
    /// [`Event::QueryResponse`](crate::Event::QueryResponse) and
    /// [`Event::QueryDone`](crate::Event::QueryDone). We are asked too,
    /// when the filter selects us. [`Swim::query`](crate::Swim::query)
    /// returns the query's id.
    Query {
        /// The query's name.
        name: &'a str,
        /// With `name` and the encoded filter, at most `max_query_len`
        /// bytes.
        payload: &'a [u8],
        /// Filter, timeout, acknowledgements, relays.
        options: &'a QueryOptions,
    },
    /// Answer the query `id` (from [`Event::Query`](crate::Event::Query))
    /// with `payload`, once and before its deadline, else
    /// [`Error::UnknownQuery`](crate::Error::UnknownQuery).
    Respond {
        /// The query answered.
        id: QueryId,
        /// At most `max_response_len` bytes.
        payload: &'a [u8],
    },
    /// Change every member's keyring through an internal query (`None`
    /// lists the keys): each member applies `op` to its own keyring and
    /// answers whether it could, and we report who did, who could not and
    /// why, and who stayed silent, as [`Event::Report`](crate::Event::Report).
    /// Needs a keyring of our own that seals what we send: a key never
    /// crosses the network in plaintext.
    #[cfg(feature = "encryption")]
    ClusterKeys {
        /// `Install`, `Use` or `Remove`; `None` lists every member's keys.
        op: Option<crate::wire::keyring::KeyringOp>,
    },
    /// Ask every member to acknowledge an internal ping (serf's
    /// reachability check): [`Event::Report`](crate::Event::Report) lists
    /// who did and who, alive in our table, did not.
    Reachability,
    /// Send `payload` to the member named `to`, reported there as
    /// [`Event::Message`](crate::Event::Message): in one datagram (best effort) or over a stream
    /// (reliable; [`Event::MessageFailed`](crate::Event::MessageFailed) if it could not be delivered).
    Message {
        /// The member's name.
        to: &'a str,
        /// At most `max_user_payload` bytes.
        payload: &'a [u8],
        /// Over a stream rather than a datagram.
        reliable: bool,
    },
    /// Changes the keyring or the migration mode (see [`KeyringOp`](crate::KeyringOp));
    /// refused changes leave it as it was.
    #[cfg(feature = "encryption")]
    Keyring(crate::wire::keyring::KeyringOp),
    /// Take the Lamport times a snapshot recorded before a restart (see
    /// [`Swim::lamport_time`](crate::Swim::lamport_time) and
    /// [`Swim::query_time`](crate::Swim::query_time)): events and queries
    /// stamped before them were seen by the previous run, so they are
    /// dropped as too old instead of being reported again, and what we
    /// stamp next is newer than anything we stamped then. Given before
    /// [`Input::Join`]; the clocks only ever move forward.
    Restore {
        /// The event clock recorded.
        events: u64,
        /// The query clock recorded.
        queries: u64,
    },
    /// Declare the failed member `name` departed (serf's force-leave): its
    /// record becomes left here, [`Event::Left`](crate::Event::Left) is
    /// reported, and the news spreads, so no member keeps trying to
    /// reconnect to it. With `prune`, every member also forgets it at
    /// once rather than after `dead_member_retention`, through an internal
    /// query whose [`Event::Report`](crate::Event::Report) (id from
    /// [`Swim::last_query`](crate::Swim::last_query)) lists who did.
    /// A failed member already reaped from the table but still retried
    /// (`reconnect_timeout`) is no longer retried. Refused with
    /// [`Error::UnknownMember`](crate::Error::UnknownMember) for a name
    /// neither in our table nor retried, and
    /// [`Error::NotFailed`](crate::Error::NotFailed) for a live member
    /// (it would refute) or ourselves.
    ForceLeave {
        /// The member's name.
        name: &'a str,
        /// Also have every member forget it now.
        prune: bool,
    },
}

/// A stream's handle. The state machine numbers the streams it opens; the
/// runtime numbers those it accepts, so the two never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum StreamId {
    /// Opened by the state machine with [`Action::OpenStream`](crate::Action::OpenStream).
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
    /// See [`Input::SetTags`].
    SetTags {
        /// The new tags.
        tags: Tags,
    },
    /// See [`Input::UserEvent`].
    UserEvent {
        /// The event's name.
        name: String,
        /// The payload.
        payload: Vec<u8>,
        /// Whether it may be coalesced.
        coalesce: bool,
    },
    /// See [`Input::Query`].
    Query {
        /// The query's name.
        name: String,
        /// The payload.
        payload: Vec<u8>,
        /// How it is asked.
        options: QueryOptions,
    },
    /// See [`Input::Respond`].
    Respond {
        /// The query answered.
        id: QueryId,
        /// The answer.
        payload: Vec<u8>,
    },
    /// See [`Input::ClusterKeys`].
    #[cfg(feature = "encryption")]
    ClusterKeys {
        /// The change, or `None` to list.
        op: Option<crate::wire::keyring::KeyringOp>,
    },
    /// See [`Input::Reachability`].
    Reachability,
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
    Keyring(crate::wire::keyring::KeyringOp),
    /// See [`Input::Restore`].
    Restore {
        /// The event clock recorded.
        events: u64,
        /// The query clock recorded.
        queries: u64,
    },
    /// See [`Input::ForceLeave`].
    ForceLeave {
        /// The member's name.
        name: String,
        /// Also have every member forget it now.
        prune: bool,
    },
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
            OwnedInput::SetTags { tags } => Input::SetTags { tags },
            OwnedInput::UserEvent { name, payload, coalesce } => {
                Input::UserEvent { name, payload, coalesce: *coalesce }
            }
            OwnedInput::Query { name, payload, options } => Input::Query { name, payload, options },
            OwnedInput::Respond { id, payload } => Input::Respond { id: *id, payload },
            #[cfg(feature = "encryption")]
            OwnedInput::ClusterKeys { op } => Input::ClusterKeys { op: *op },
            OwnedInput::Reachability => Input::Reachability,
            OwnedInput::Message { to, payload, reliable } => Input::Message { to, payload, reliable: *reliable },
            #[cfg(feature = "encryption")]
            OwnedInput::Keyring(op) => Input::Keyring(*op),
            OwnedInput::Restore { events, queries } => Input::Restore { events: *events, queries: *queries },
            OwnedInput::ForceLeave { name, prune } => Input::ForceLeave { name, prune: *prune },
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
            Input::SetTags { tags } => OwnedInput::SetTags { tags: tags.clone() },
            Input::UserEvent { name, payload, coalesce } => {
                OwnedInput::UserEvent { name: name.into(), payload: payload.to_vec(), coalesce }
            }
            Input::Query { name, payload, options } => {
                OwnedInput::Query { name: name.into(), payload: payload.to_vec(), options: options.clone() }
            }
            Input::Respond { id, payload } => OwnedInput::Respond { id, payload: payload.to_vec() },
            #[cfg(feature = "encryption")]
            Input::ClusterKeys { op } => OwnedInput::ClusterKeys { op },
            Input::Reachability => OwnedInput::Reachability,
            Input::Message { to, payload, reliable } => {
                OwnedInput::Message { to: to.into(), payload: payload.to_vec(), reliable }
            }
            #[cfg(feature = "encryption")]
            Input::Keyring(op) => OwnedInput::Keyring(op),
            Input::Restore { events, queries } => OwnedInput::Restore { events, queries },
            Input::ForceLeave { name, prune } => OwnedInput::ForceLeave { name: name.into(), prune },
        }
    }
}
