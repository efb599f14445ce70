//! Queries: what the application asks the cluster, and how it hears back.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::util::name::MemberName;
use crate::util::time::Duration;

/// A query open on this member: one it asked (returned by
/// [`Swim::query`](crate::Swim::query)) or one it was asked (in
/// [`Event::Query`](crate::Event::Query), to answer with
/// [`Input::Respond`](crate::Input::Respond)). Ids are this member's own:
/// another member knows the same query by another id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QueryId(pub(crate) u64);

impl QueryId {
    /// The id as a number (ids count up from 1 on each member).
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id numbered `n` (as [`QueryId::get`] returned it), for a
    /// runtime that carried an id through text.
    pub fn from_raw(n: u64) -> Self {
        QueryId(n)
    }
}

impl fmt::Display for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which members a query asks. Every member passes a query on whether it
/// matches or not; only those that match raise it and answer. An empty
/// filter selects every member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct QueryFilter {
    /// Only these members (by name), when not empty.
    pub nodes: Vec<MemberName>,
    /// Only members whose tag `key` (empty when missing) matches the
    /// regular expression (unanchored, as serf's filters), for every pair.
    pub tags: Vec<(String, String)>,
}

impl QueryFilter {
    /// Every member.
    pub fn all() -> Self {
        QueryFilter::default()
    }

    /// This filter, also requiring the member to be `name` or one of the
    /// names added before.
    #[must_use]
    pub fn node(mut self, name: MemberName) -> Self {
        self.nodes.push(name);
        self
    }

    /// This filter, also requiring tag `key` to match `regex`.
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, regex: impl Into<String>) -> Self {
        self.tags.push((key.into(), regex.into()));
        self
    }
}

/// How a query is asked. The default asks everyone, waits serf's default
/// time, requests no acknowledgements and uses no relays.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct QueryOptions {
    /// Which members answer.
    pub filter: QueryFilter,
    /// How long to wait for answers; `None`: `gossip_interval` ×
    /// `query_timeout_mult` × ceil(log10(n + 1)).
    pub timeout: Option<Duration>,
    /// Whether each member that raises the query acknowledges it at once
    /// ([`Event::QueryAck`](crate::Event::QueryAck)).
    pub request_ack: bool,
    /// Each answer also travels through this many random members, for
    /// paths that work one way only (at most 5).
    pub relay_factor: u8,
}

impl QueryOptions {
    /// This with `filter`.
    #[must_use]
    pub fn with_filter(mut self, filter: QueryFilter) -> Self {
        self.filter = filter;
        self
    }

    /// This with a timeout of `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// This with acknowledgements requested (or not).
    #[must_use]
    pub fn with_ack(mut self, request_ack: bool) -> Self {
        self.request_ack = request_ack;
        self
    }

    /// This with answers relayed through `k` members.
    #[must_use]
    pub fn with_relay_factor(mut self, k: u8) -> Self {
        self.relay_factor = k;
        self
    }
}

/// What a cluster-wide operation (a key change, a key listing, a
/// reachability check) found, member by member; reported with
/// [`Event::Report`](crate::Event::Report) when its query is done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct QueryReport {
    /// Members that carried it out (or, for reachability, acknowledged).
    pub acked: Vec<MemberName>,
    /// Members that answered they could not, with their reason.
    pub failed: Vec<(MemberName, String)>,
    /// Members alive when it was asked that did not answer in time.
    pub silent: Vec<MemberName>,
    /// For a key listing: each key installed anywhere, by its
    /// fingerprint (never the key itself), and how many members hold it.
    pub keys: Vec<(u32, usize)>,
    /// For a key listing: each member's primary key, by fingerprint.
    pub primary: Vec<(MemberName, u32)>,
}
