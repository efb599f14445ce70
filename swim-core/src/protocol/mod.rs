//! The protocol's parts, each owning its state. From the bottom up: the
//! member table, the retransmit queue (membership updates and user
//! broadcasts waiting to ride on datagrams), the outbox that packs them,
//! dissemination (gossip), the failure detector, membership (merge,
//! suspicion, admission), the life cycle (join, syncs, leave), and beside
//! them the book of streams and the user data. A part uses only those
//! below it; the state machine ([`crate::machine`]) composes them all.

pub(crate) mod coordinates;
pub(crate) mod delta;
pub(crate) mod detector;
pub(crate) mod dissemination;
pub(crate) mod lamport;
pub(crate) mod lifecycle;
pub(crate) mod membership;
pub(crate) mod outbox;
pub(crate) mod queries;
pub(crate) mod retransmit;
pub(crate) mod streams;
pub(crate) mod summary;
pub(crate) mod table;
pub(crate) mod user;
