//! What the state machine tells the application: [`Event`]s.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::input::StreamId;
use super::query::{QueryId, QueryReport};
use crate::util::name::MemberName;
use crate::wire::DecodeError;

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
    /// A named user event ([`Input::UserEvent`](crate::Input::UserEvent)),
    /// reported once per member (ours too).
    User {
        /// Who sent it.
        from: MemberName,
        /// Its time on the event Lamport clock.
        ltime: u64,
        /// Its name.
        name: String,
        /// What it carries.
        payload: Vec<u8>,
        /// Whether events of this name may be coalesced.
        coalesce: bool,
    },
    /// A query for us ([`Input::Query`](crate::Input::Query), ours or
    /// another member's): answer it with
    /// [`Input::Respond`](crate::Input::Respond) before its deadline, or
    /// not at all.
    Query {
        /// Our id for it.
        id: QueryId,
        /// Who asks.
        from: MemberName,
        /// Its time on the asker's query Lamport clock (serf's
        /// `SERF_QUERY_LTIME`).
        ltime: u64,
        /// The query's name.
        name: String,
        /// What it carries.
        payload: Vec<u8>,
    },
    /// `from` acknowledged our query `id` (at most once per member).
    QueryAck {
        /// Our query.
        id: QueryId,
        /// Who acknowledged.
        from: MemberName,
    },
    /// `from` answered our query `id` (at most once per member).
    QueryResponse {
        /// Our query.
        id: QueryId,
        /// Who answered.
        from: MemberName,
        /// The answer.
        payload: Vec<u8>,
    },
    /// Our query `id` reached its deadline: nothing more is reported for
    /// it. Every query we ask ends with exactly one.
    QueryDone {
        /// Our query.
        id: QueryId,
    },
    /// Another live process claims our name at `other` (docs/protocol.md,
    /// "Name conflicts"). First reported with `won: None` when found; then
    /// once more when settled: `Some(true)`, the name stays ours;
    /// `Some(false)`, we gave it up and stopped (a
    /// [`Event::LeaveCompleted`] follows: the member ignores all input, and
    /// the process should restart under another name).
    NameConflict {
        /// Where the other process answers under our name.
        other: SocketAddr,
        /// `None` while being settled; then whether we keep the name.
        won: Option<bool>,
    },
    /// What an internal query ([`Input::ClusterKeys`](crate::Input::ClusterKeys),
    /// [`Input::Reachability`](crate::Input::Reachability)) found, just
    /// before its [`Event::QueryDone`].
    Report {
        /// Our query.
        id: QueryId,
        /// Member by member.
        report: QueryReport,
    },
    /// A message sent to us alone ([`Input::Message`](crate::Input::Message)).
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
        /// The state it set with [`Input::SetAppState`](crate::Input::SetAppState).
        state: Vec<u8>,
    },
}
