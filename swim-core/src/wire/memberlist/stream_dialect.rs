//! Speaking memberlist 0.2.2 on streams: swim's stream frames turned into
//! memberlist's stream messages on the way out, and memberlist's into
//! swim's messages on the way in, so that the state machine's syncs,
//! fallback pings and reliable messages run unchanged.
//!
//! What maps:
//! - a whole-table sync, in swim's format frames headed by
//!   `SyncRequest`/`SyncReply` and ended by `SyncEnd`, is one push-pull
//!   in memberlist's: the frames are gathered in a [`Draft`] until the end,
//!   every record becomes a `pushNodeState` (a leave is memberlist's
//!   `StateLeft`) and our application state is its user state (in serf's
//!   dialect, serf's state instead: our clocks and recent events);
//! - a fallback ping and its ack are memberlist's stream ping and ack;
//! - a reliable message for one member is memberlist's stream user message.
//!
//! memberlist keeps no event clock, no recent user events and no
//! suspicion's accuser in its push-pull: those parts of our sync are left
//! out (serf's state carries the first two). A sync by difference has no counterpart: a node speaking
//! memberlist's format always syncs whole tables.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::dialect::Flavour;
use super::error::EncodeError;
use super::gossip::{IpBytes, ip_from_wire};
use super::heard::Heard;
use super::message::Body;
use super::probe::{Ack, Ping};
use super::stream::{NodeStateType, PushNodeState, PushPullHeader, StreamMessage};
use crate::wire::{DecodeError, Message};

/// A push-pull being put together from the frames of one of our syncs:
/// memberlist sends a table as one message, we as frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Draft {
    /// The push-pull's `Join`: set by a join's request; `false` in a reply
    /// (memberlist's initiator never reads it).
    join: bool,
    /// The records so far, each encoded as a `pushNodeState`.
    nodes: Vec<u8>,
    /// How many records `nodes` holds.
    count: u32,
    /// Our application state: the push-pull's user state (in serf's
    /// dialect, serf's state is written there instead).
    user_state: Vec<u8>,
    /// serf's dialect: our event and query clocks, from the sync.
    clocks: (u64, u64),
    /// serf's dialect: the recent events the sync carries: time, name,
    /// payload.
    events: Vec<(u64, String, Vec<u8>)>,
}

/// What one of our frames became on a memberlist stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// A whole stream message was appended.
    Message,
    /// Part of a push-pull, kept in the draft until its last frame.
    Pending,
    /// Nothing: memberlist has no word for what the frame carries.
    Nothing,
}

/// Appends the stream message our frame `msgs` stands for, or gathers it
/// into `draft` when it is a sync's and not its last frame. On error
/// nothing is appended.
pub(crate) fn encode_frame(
    msgs: &[Message<'_>],
    flavour: Flavour,
    heard: &Heard,
    draft: &mut Option<Draft>,
    out: &mut Vec<u8>,
) -> Result<Written, EncodeError> {
    let Some((head, rest)) = msgs.split_first() else { return Ok(Written::Nothing) };
    let one = match *head {
        Message::SyncRequest { join } => return gather(draft, join, (flavour, heard), rest, out),
        Message::SyncReply => return gather(draft, false, (flavour, heard), rest, out),
        Message::Ping { seq, target } => StreamMessage::Ping(Ping { seq_no: seq, node: target, ..Ping::default() }),
        Message::Ack { seq } => StreamMessage::Ack(Ack { seq_no: seq, payload: None }),
        // serf reads every user message as its own: ours would be junk.
        Message::Direct { payload, .. } if !flavour.serf => StreamMessage::User(payload),
        _ => return Ok(Written::Nothing),
    };
    one.encode(out)?;
    Ok(Written::Message)
}

impl Draft {
    fn new(join: bool) -> Self {
        Draft { join, ..Draft::default() }
    }
}

/// Adds a sync frame's records to the draft; at [`Message::SyncEnd`],
/// appends the whole push-pull and empties `slot`.
fn gather(
    slot: &mut Option<Draft>,
    join: bool,
    (flavour, heard): (Flavour, &Heard),
    msgs: &[Message<'_>],
    out: &mut Vec<u8>,
) -> Result<Written, EncodeError> {
    let ours = flavour.versions().to_vsn();
    let mut meta_buf = Vec::new();
    let d = slot.get_or_insert_with(|| Draft::new(join));
    let mut ended = false;
    for msg in msgs {
        let (name, incarnation, state, alive) = match *msg {
            Message::Alive { incarnation, name, addr, meta } => {
                (name, incarnation, NodeStateType::ALIVE, Some((addr, meta)))
            }
            Message::Suspect { incarnation, name, .. } => (name, incarnation, NodeStateType::SUSPECT, None),
            Message::Dead { incarnation, name, from } if from == name => (name, incarnation, NodeStateType::LEFT, None),
            Message::Dead { incarnation, name, .. } => (name, incarnation, NodeStateType::DEAD, None),
            // serf's push-pull state is its own format: ours is not sent.
            Message::AppState { .. } if flavour.serf => continue,
            Message::AppState { state } => {
                d.user_state.clear();
                d.user_state.extend_from_slice(state);
                continue;
            }
            Message::SyncEnd => {
                ended = true;
                continue;
            }
            // Event clocks and recent events: memberlist keeps none, serf
            // keeps its own in its state.
            Message::Clocks { events, queries } if flavour.serf => {
                d.clocks = (events, queries);
                continue;
            }
            Message::User { ltime, name, payload, .. } if flavour.serf => {
                d.events.push((ltime, String::from(name), payload.to_vec()));
                continue;
            }
            _ => continue,
        };
        let ip = alive.map(|(addr, _): (SocketAddr, &[u8])| IpBytes::new(addr.ip()));
        let meta = alive.map(|(_, meta)| flavour.meta_out(meta, &mut meta_buf));
        // Every record carries versions: memberlist checks each one's
        // against the cluster's range, and reads a missing one as 0.
        // A member's own versions, or memberlist refutes the record.
        let vsn = heard.versions_of(name).unwrap_or(ours);
        let node = PushNodeState {
            name,
            addr: ip.as_ref().map(IpBytes::as_slice),
            port: alive.map_or(0, |(addr, _)| addr.port()),
            meta,
            incarnation,
            state,
            vsn: Some(&vsn),
        };
        node.write(&mut d.nodes)?;
        d.count = d.count.checked_add(1).ok_or(EncodeError::TooLong)?;
    }
    if !ended {
        return Ok(Written::Pending);
    }
    if flavour.serf {
        d.user_state = serf_state(d, heard)?;
    }
    let user_state_len = u32::try_from(d.user_state.len()).map_err(|_| EncodeError::TooLong)?;
    PushPullHeader { nodes: d.count, user_state_len, join: d.join }.encode(out)?;
    out.extend_from_slice(&d.nodes);
    out.extend_from_slice(&d.user_state);
    *slot = None;
    Ok(Written::Message)
}

/// serf's push-pull state for a draft: our clocks and the recent events
/// our sync carries, grouped by time as serf's ring is.
fn serf_state(d: &mut Draft, heard: &Heard) -> Result<Vec<u8>, EncodeError> {
    use super::serf_state::{PushPullState, StateEvent};
    d.events.sort_by_key(|e| e.0);
    let state = PushPullState {
        ltime: heard.next_member_time(),
        event_ltime: d.clocks.0,
        query_ltime: d.clocks.1,
        events: d.events.iter().map(|(ltime, name, payload)| StateEvent { ltime: *ltime, name, payload }).collect(),
    };
    let mut out = Vec::new();
    state.encode(&mut out)?;
    Ok(out)
}

/// A `pushNodeState` as one of our sync's records, or `None` for a state
/// memberlist itself would ignore. A suspicion or a death in the peer's
/// table is taken as `accuser`'s (memberlist names none; it names itself
/// when it merges one), so that it is a suspicion here, as in our own
/// syncs.
///
/// `meta` is the record's metadata rewritten in our encoding, if it was
/// (see [`Flavour::meta_in`]).
pub(crate) fn record_of<'a>(
    n: &PushNodeState<'a>,
    meta: Option<&'a [u8]>,
    accuser: &'a str,
) -> Result<Option<Message<'a>>, DecodeError> {
    let (incarnation, name) = (n.incarnation, n.name);
    Ok(Some(match n.state {
        NodeStateType::ALIVE => {
            let ip = n.addr.and_then(ip_from_wire).ok_or(DecodeError::Malformed)?;
            let meta = meta.or(n.meta).unwrap_or_default();
            Message::Alive { incarnation, name, addr: SocketAddr::new(ip, n.port), meta }
        }
        NodeStateType::SUSPECT => Message::Suspect { incarnation, name, from: accuser },
        NodeStateType::DEAD => Message::Dead { incarnation, name, from: accuser },
        NodeStateType::LEFT => Message::Dead { incarnation, name, from: name },
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::memberlist::Limits;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_sync_in_frames_is_one_push_pull_with_every_record_and_the_app_state() {
        let mut draft = None;
        let mut out = Vec::new();
        let first = [
            Message::SyncRequest { join: true },
            Message::Alive { incarnation: 3, name: "a", addr: addr(7946), meta: b"m" },
            Message::AppState { state: b"state" },
        ];
        assert_eq!(
            encode_frame(&first, Flavour::default(), &Heard::default(), &mut draft, &mut out),
            Ok(Written::Pending)
        );
        assert!(out.is_empty());
        let last = [
            Message::SyncRequest { join: true },
            Message::Suspect { incarnation: 1, name: "b", from: "a" },
            Message::Dead { incarnation: 2, name: "c", from: "a" },
            Message::Dead { incarnation: 4, name: "d", from: "d" },
            Message::Clocks { events: 9, queries: 9 },
            Message::SyncEnd,
        ];
        assert_eq!(
            encode_frame(&last, Flavour::default(), &Heard::default(), &mut draft, &mut out),
            Ok(Written::Message)
        );
        assert_eq!(draft, None);
        let StreamMessage::PushPull { join, nodes, user_state } = StreamMessage::decode(&out, &Limits::STREAM).unwrap()
        else {
            panic!("not a push-pull")
        };
        assert!(join);
        assert_eq!(user_state, b"state");
        let states: Vec<_> = nodes.iter().map(|n| (n.name, n.state, n.incarnation)).collect();
        assert_eq!(
            states,
            [
                ("a", NodeStateType::ALIVE, 3),
                ("b", NodeStateType::SUSPECT, 1),
                ("c", NodeStateType::DEAD, 2),
                ("d", NodeStateType::LEFT, 4)
            ]
        );
        assert_eq!(nodes[0].addr, Some(&[127, 0, 0, 1][..]));
        assert_eq!((nodes[0].port, nodes[0].meta), (7946, Some(&b"m"[..])));
        assert!(nodes.iter().all(|n| n.vsn == Some(&Flavour::default().versions().to_vsn()[..])));
        // And back: the same records, a death taken as the accuser's.
        let back: Vec<_> = nodes.iter().map(|n| record_of(n, None, "me").unwrap().unwrap()).collect();
        assert_eq!(
            back,
            [
                Message::Alive { incarnation: 3, name: "a", addr: addr(7946), meta: b"m" },
                Message::Suspect { incarnation: 1, name: "b", from: "me" },
                Message::Dead { incarnation: 2, name: "c", from: "me" },
                Message::Dead { incarnation: 4, name: "d", from: "d" },
            ]
        );
    }

    #[test]
    fn pings_acks_and_reliable_messages_are_memberlists_stream_messages() {
        let mut out = Vec::new();
        let ping = [Message::Ping { seq: 7, target: "b" }, Message::Suspect { incarnation: 1, name: "b", from: "a" }];
        assert_eq!(
            encode_frame(&ping, Flavour::default(), &Heard::default(), &mut None, &mut out),
            Ok(Written::Message)
        );
        let StreamMessage::Ping(p) = StreamMessage::decode(&out, &Limits::STREAM).unwrap() else {
            panic!()
        };
        assert_eq!((p.seq_no, p.node), (7, "b"));
        out.clear();
        assert_eq!(
            encode_frame(&[Message::Ack { seq: 7 }], Flavour::default(), &Heard::default(), &mut None, &mut out),
            Ok(Written::Message)
        );
        assert_eq!(
            StreamMessage::decode(&out, &Limits::STREAM),
            Ok(StreamMessage::Ack(Ack { seq_no: 7, payload: None }))
        );
        out.clear();
        let direct = [Message::Direct { from: "a", payload: b"hi" }];
        assert_eq!(
            encode_frame(&direct, Flavour::default(), &Heard::default(), &mut None, &mut out),
            Ok(Written::Message)
        );
        assert_eq!(StreamMessage::decode(&out, &Limits::STREAM), Ok(StreamMessage::User(b"hi")));
        out.clear();
        assert_eq!(
            encode_frame(&[Message::Query { name: "b" }], Flavour::default(), &Heard::default(), &mut None, &mut out),
            Ok(Written::Nothing)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn an_alive_without_an_address_is_malformed_and_an_unknown_state_ignored() {
        let n = PushNodeState { name: "x", state: NodeStateType::ALIVE, ..PushNodeState::default() };
        assert_eq!(record_of(&n, None, "me"), Err(DecodeError::Malformed));
        let n = PushNodeState { name: "x", state: NodeStateType(9), ..PushNodeState::default() };
        assert_eq!(record_of(&n, None, "me"), Ok(None));
    }
}
