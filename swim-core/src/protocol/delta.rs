//! The three halves of a periodic sync by difference (docs/protocol.md
//! §6.5), on one stream:
//!
//! 1. the member that opens it sends its alive, its application state,
//!    its clocks and a [`Summary`] of its table ([`send_summary`]);
//! 2. the peer merges them, sums its own table in as many buckets, and
//!    answers with its alive, application state and clocks, a
//!    [`Message::SyncDiff`] naming the buckets that differ and its
//!    records in them, or its whole table when most differ
//!    ([`send_answer`]);
//! 3. the opener merges those and sends its own records in the same
//!    buckets, leaving out those the answer carried already, or its whole
//!    table ([`send_rest`]). When nothing differs there is no third half:
//!    two members whose tables agree exchange a summary and a bitmap.
//!
//! Kept events travel the same way: both sides send theirs only when the
//! hashes of what they keep differ.

use alloc::collections::BTreeSet;
use core::iter::once;

use crate::api::StreamId;
use crate::protocol::lifecycle::{head, send_frames};
use crate::protocol::membership::Membership;
use crate::protocol::outbox::Outbox;
use crate::protocol::streams::Asked;
use crate::protocol::summary::{self, BUCKET_BYTES, Summary, bucket_count, claim_of, name_hash, record_hash};
use crate::protocol::table::record::{Claim, MemberState};
use crate::protocol::user::UserData;
use crate::wire::Message;

/// Our table, ourselves included, summed in `count` buckets.
pub(crate) fn summary_of(count: usize, membership: &Membership) -> Summary {
    let me = (membership.local().name.as_str(), Claim::new(MemberState::Alive, membership.incarnation()));
    let summary = Summary::fold(count, membership.table.sums(), once(me));
    debug_assert_eq!(
        summary,
        Summary::of(count, once(me).chain(membership.table.iter().map(|(_, m)| (m.name.as_str(), m.claim())))),
        "the table's kept sums drifted from its records"
    );
    summary
}

/// Our alive, application state (when we have one) and clocks (when
/// either has moved): what each of the first two halves starts with.
fn preamble<'a>(membership: &'a Membership, user: &'a UserData, query_clock: u64) -> impl Iterator<Item = Message<'a>> {
    let app = (!user.app_state.is_empty()).then_some(Message::AppState { state: &user.app_state });
    once(membership.self_alive()).chain(app).chain(user.clocks(query_clock))
}

/// The first half, on stream `id`: our summary in as many buckets as our
/// table calls for, which are returned.
pub(crate) fn send_summary(
    id: StreamId,
    membership: &Membership,
    (user, query_clock): (&UserData, u64),
    outbox: &mut Outbox,
) -> usize {
    let count = bucket_count(membership.table.len() + 1);
    let buckets = summary_of(count, membership).to_bytes();
    let digest = Message::SyncDigest { buckets: &buckets, events: user.recent_hash() };
    send_frames(id, head(Some(false)), preamble(membership, user, query_clock).chain(once(digest)), outbox);
    count
}

/// The second half, on stream `id`, answering the peer's summary
/// (`theirs`, and the hash of its kept events): what we asked the peer
/// for, `None` (and nothing sent) when `theirs` is not a summary.
pub(crate) fn send_answer(
    id: StreamId,
    (theirs, their_events): (&[u8], u32),
    membership: &Membership,
    (user, query_clock): (&UserData, u64),
    outbox: &mut Outbox,
) -> Option<Asked> {
    let count = theirs.len() / BUCKET_BYTES;
    if !summary::valid_count(count) {
        return None;
    }
    let diff = summary_of(count, membership).diff(theirs)?;
    let whole = diff.mostly();
    let asked = Asked { events: whole || user.recent_hash() != their_events, whole, diff };
    let bitmap = Message::SyncDiff { buckets: asked.diff.as_bytes(), events: asked.events, whole };
    let msgs = preamble(membership, user, query_clock)
        .chain(once(bitmap))
        .chain(records_asked(membership, &asked))
        .chain(events_asked(user, &asked));
    send_frames(id, head(None), msgs, outbox);
    Some(asked)
}

/// The third half, on stream `id`: our records (ourselves included) in
/// the buckets `asked` names, or all of them, but for those whose claim
/// the answer carried (`seen`: their [`record_hash`]es); our kept events
/// if asked.
pub(crate) fn send_rest(
    id: StreamId,
    asked: &Asked,
    seen: &BTreeSet<u64>,
    membership: &Membership,
    user: &UserData,
    outbox: &mut Outbox,
) {
    let own = asked.wants(membership.local().name.as_str()).then(|| membership.self_alive());
    let unseen = own
        .into_iter()
        .chain(records_asked(membership, asked))
        .filter(|msg| claim_of(msg).is_none_or(|(name, claim)| !seen.contains(&record_hash(name_hash(name), claim))));
    send_frames(id, head(Some(false)), unseen.chain(events_asked(user, asked)), outbox);
}

/// The records of the table (not ours) that `asked` names.
fn records_asked<'a>(membership: &'a Membership, asked: &'a Asked) -> impl Iterator<Item = Message<'a>> {
    // Agreeing tables, the usual case, ask for nothing: no pass over ours.
    let some = asked.whole || asked.diff.differing() > 0;
    some.then(|| membership.table.iter())
        .into_iter()
        .flatten()
        .filter(|(_, m)| asked.wants(m.name.as_str()))
        .map(|(id, m)| membership.record(id, m))
}

/// The kept events, if `asked` wants them.
fn events_asked<'a>(user: &'a UserData, asked: &Asked) -> impl Iterator<Item = Message<'a>> {
    asked.events.then(|| user.recent_messages()).into_iter().flatten()
}
