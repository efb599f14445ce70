//! Stream messages in memberlist 0.2.2's format
//! ([`Config::memberlist_wire`](crate::Config::memberlist_wire)): each is
//! decoded whole, then handed to the stream logic as the frames of our
//! own format it stands for (a push-pull as a whole-table sync), so that
//! syncs, joins and fallback pings run as they do between swim nodes.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use super::Swim;
use crate::api::{Event, StreamId};
use crate::protocol::streams::Purpose;
use crate::util::name::MemberName;
use crate::util::time::Instant;
use crate::wire::memberlist::dialect::Flavour;
use crate::wire::memberlist::heard::Heard;
use crate::wire::memberlist::stream::{NodeStateType, PushNodeState, StreamMessage};
use crate::wire::memberlist::stream_dialect::record_of;
use crate::wire::{DecodeError, MAX_MESSAGES, Message, Messages};

impl<R: Rng> Swim<R> {
    /// One whole memberlist stream message on stream `id`. One that does
    /// not decode, or that is not what the stream is for, fails the
    /// stream, is counted and changes nothing else.
    pub(super) fn open_memberlist_frame(&mut self, now: Instant, id: StreamId, frame: &[u8], scratch: &mut Vec<u8>) {
        let Some(s) = self.streams.get(id) else { return };
        let (peer, purpose) = (s.peer, s.purpose.clone());
        let me = self.membership.local().name.clone();
        let flavour = self.envelope.flavour();
        let mut metas = Vec::new();
        let decoded = self.envelope.decode_memberlist_stream(frame, scratch).and_then(|m| {
            let mut learnt = Heard::default();
            if let StreamMessage::PushPull { nodes, .. } = &m {
                for n in nodes.iter().filter(|n| n.state == NodeStateType::ALIVE) {
                    learnt.note_versions(n.name, n.vsn.unwrap_or_default());
                }
            }
            let native = native(m, flavour, me.as_str(), &mut metas, &mut learnt)?;
            // Kept once the whole message decoded.
            self.envelope.heard_mut().absorb(learnt);
            Ok(native)
        });
        let message = match decoded {
            Ok(m) => m,
            Err(e) => {
                self.reject(peer, Some(id), e);
                self.fail_stream(now, id);
                return;
            }
        };
        match message {
            Native::Table { join, records, user_state, serf } => {
                let head = match purpose {
                    Purpose::Accepted | Purpose::SyncIn { .. } => Message::SyncRequest { join },
                    Purpose::SyncOut { .. } => Message::SyncReply,
                    _ => return self.fail_stream(now, id),
                };
                self.name_memberlist_peer(id, peer, &records);
                // The table, then serf's clocks and recent events (as ours
                // follow our records), in as many frames as they take.
                if !self.feed_frames(now, id, &head, &records) || !self.feed_frames(now, id, &head, &serf) {
                    return;
                }
                let mut last = Messages::new();
                let _ = last.push(head.clone());
                if !user_state.is_empty() {
                    let _ = last.push(Message::AppState { state: user_state });
                }
                let _ = last.push(Message::SyncEnd);
                self.on_frame(now, id, &last);
            }
            Native::One(m) => {
                let mut msgs = Messages::new();
                let _ = msgs.push(m);
                self.on_frame(now, id, &msgs);
            }
            // A user message is a stream of its own, opened to us; serf
            // sends none (its messages travel in datagrams).
            Native::Reliable(payload) if purpose == Purpose::Accepted && !flavour.serf => {
                self.memberlist_reliable(peer, payload);
                self.close_stream(now, id);
            }
            Native::Reliable(_) => self.fail_stream(now, id),
            Native::Error => self.fail_stream(now, id),
        }
    }

    /// Hands `msgs` to the stream logic as frames headed by `head`: our
    /// frames hold a bounded number of messages, so as many as it takes,
    /// as our own syncs send them. `false` once the stream is gone.
    fn feed_frames(&mut self, now: Instant, id: StreamId, head: &Message<'_>, msgs: &[Message<'_>]) -> bool {
        for chunk in msgs.chunks(MAX_MESSAGES - 1) {
            let mut frame = Messages::new();
            let _ = frame.push(head.clone());
            for m in chunk {
                let _ = frame.push(m.clone());
            }
            self.on_frame(now, id, &frame);
            if self.streams.get(id).is_none() {
                return false;
            }
        }
        true
    }

    /// A push-pull does not say whose table it is: on a sync we opened it
    /// is the member at the address we connected to; on one opened to us,
    /// the only alive record at the connection's IP, if only one is.
    fn name_memberlist_peer(&mut self, id: StreamId, peer: SocketAddr, records: &[Message<'_>]) {
        let Some(s) = self.streams.get_mut(id) else { return };
        if s.peer_name.is_some() {
            return;
        }
        let outbound = matches!(id, StreamId::Outbound(_));
        let mut alive = records.iter().filter_map(|m| match *m {
            Message::Alive { name, addr, .. } if addr == peer || (!outbound && addr.ip() == peer.ip()) => Some(name),
            _ => None,
        });
        if let (Some(name), None) = (alive.next(), alive.next()) {
            s.peer_name = MemberName::new(name).ok();
        }
    }

    /// A reliable user message: memberlist names no sender, and its
    /// connection comes from a port of its own, so the message is credited
    /// to the one live member at that IP; with none or several there (a
    /// cluster on one host), it is dropped and counted as rejected.
    fn memberlist_reliable(&mut self, peer: SocketAddr, payload: &[u8]) {
        let me = self.membership.local().name.clone();
        let mut at_ip = self
            .membership
            .table
            .iter()
            .filter(|(_, m)| m.state.is_live() && m.addr.get().ip() == peer.ip() && m.name != me)
            .map(|(_, m)| m.name.clone());
        let found = (at_ip.next(), at_ip.next());
        drop(at_ip);
        match found {
            (Some(from), None) => {
                self.outbox.event(Event::Message { from, payload: payload.to_vec(), reliable: true });
            }
            _ => self.reject(peer, None, DecodeError::Sender),
        }
    }
}

/// A memberlist stream message, in our terms.
enum Native<'a> {
    /// A push-pull: the peer's table and its application state; in
    /// serf's dialect, serf's state as our clocks and recent events.
    Table { join: bool, records: Vec<Message<'a>>, user_state: &'a [u8], serf: Vec<Message<'a>> },
    /// A message our frames carry alone (a ping or an ack).
    One(Message<'a>),
    /// A reliable user message.
    Reliable(&'a [u8]),
    /// memberlist's error reply.
    Error,
}

/// `msg` in our terms, every record converted before any is applied
/// (`metas` keeps the metadata rewritten in our encoding; `learnt`, serf's
/// member clock).
fn native<'a>(
    msg: StreamMessage<'a>,
    flavour: Flavour,
    me: &'a str,
    metas: &'a mut Vec<u8>,
    learnt: &mut Heard,
) -> Result<Native<'a>, DecodeError> {
    Ok(match msg {
        // serf's push-pull state is its own format: not our application
        // state. One that does not decode is left out, as serf leaves it
        // (the table is taken all the same).
        StreamMessage::PushPull { join, nodes, user_state } if flavour.serf => {
            let records = records(&nodes, flavour, me, metas)?;
            let mut serf = Vec::new();
            if let Ok(state) = crate::wire::memberlist::serf_state::PushPullState::decode(user_state) {
                // Past every intent the sender saw, as serf witnesses it.
                learnt.note_member_time(state.ltime.saturating_sub(1));
                serf.try_reserve_exact(state.events.len() + 1).map_err(|_| DecodeError::Oversized)?;
                serf.push(Message::Clocks { events: state.event_ltime, queries: state.query_ltime });
                for e in state.events {
                    // serf names no sender: the name stands for it.
                    let (ltime, name, payload) = (e.ltime, e.name, e.payload);
                    serf.push(Message::User { ltime, from: name, name, payload, coalesce: false });
                }
            }
            Native::Table { join, records, user_state: &[], serf }
        }
        StreamMessage::PushPull { join, nodes, user_state } => {
            Native::Table { join, records: records(&nodes, flavour, me, metas)?, user_state, serf: Vec::new() }
        }
        // memberlist's ping names the member it is for, or nobody (then
        // whoever listens answers).
        StreamMessage::Ping(p) => {
            Native::One(Message::Ping { seq: p.seq_no, target: if p.node.is_empty() { me } else { p.node } })
        }
        StreamMessage::Ack(a) => Native::One(Message::Ack { seq: a.seq_no }),
        StreamMessage::User(payload) => Native::Reliable(payload),
        StreamMessage::Err(_) => Native::Error,
    })
}

fn records<'a>(
    nodes: &[PushNodeState<'a>],
    flavour: Flavour,
    me: &'a str,
    metas: &'a mut Vec<u8>,
) -> Result<Vec<Message<'a>>, DecodeError> {
    // Rewritten metadata first, into one buffer the records then borrow.
    let mut ranges = Vec::new();
    ranges.try_reserve_exact(nodes.len()).map_err(|_| DecodeError::Oversized)?;
    for n in nodes {
        let rewritten = n.meta.and_then(|m| flavour.meta_in(m));
        ranges.push(rewritten.map(|m| {
            let at = metas.len();
            metas.extend_from_slice(&m);
            (at, metas.len())
        }));
    }
    let metas: &'a [u8] = metas;
    let mut out = Vec::new();
    out.try_reserve_exact(nodes.len()).map_err(|_| DecodeError::Oversized)?;
    for (n, range) in nodes.iter().zip(ranges) {
        let meta = range.and_then(|(a, b)| metas.get(a..b));
        if let Some(m) = record_of(n, meta, me)? {
            out.push(m);
        }
    }
    Ok(out)
}
