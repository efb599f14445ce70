//! Speaking memberlist 0.2.2 on datagrams: swim's messages turned into
//! memberlist's on the way out and memberlist's into swim's on the way in,
//! at the packet boundary, so that the state machine runs unchanged.
//!
//! What maps, both ways: `ping` (its `Node` is the probe's target; ours
//! give where to answer, as memberlist's do), `indirectPingReq` (target
//! name and address; we always ask for nacks), `ackResp` (in serf's
//! dialect with a coordinate as its payload, as serf sends it; without one
//! otherwise), `nackResp`, `alive` (address, port and metadata; we
//! announce the version range memberlist 0.2.2 announces), `suspect` and
//! `dead` (a `dead` whose `From` is its `Node` is a leave, as in swim's
//! own format), and user messages (a message for one member,
//! [`Message::Direct`]: memberlist does not name their sender, so the
//! member at the datagram's source is taken for it). What swim sends that
//! memberlist has no word for (coordinates outside serf's acks, queries,
//! user events, padding) is left out of the datagram.

use alloc::vec::Vec;
use core::net::SocketAddr;

use super::Limits;
use super::error::{EncodeError, Error};
use super::gossip::{Alive, Dead, IpBytes, Suspect, Versions, ip_from_wire};
use super::heard::Heard;
use super::message::Message as Ml;
use super::packet::{Unpacked, encode_compound};
use super::probe::{Ack, IndirectPing, Nack, Ping};
use crate::wire::{DecodeError, MAX_MESSAGES, Message, Messages};

/// The versions our `alive` announces: memberlist 0.2.2's default range
/// (protocol 1 to 5, speaking 2) and no delegate protocol.
pub(crate) const VERSIONS: Versions =
    Versions { protocol_min: 1, protocol_max: 5, protocol_cur: 2, delegate_min: 0, delegate_max: 0, delegate_cur: 0 };

/// Which of memberlist's dialects: plain memberlist, or serf's layer on it
/// ([`Config::serf_wire`](crate::Config::serf_wire)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flavour {
    /// serf's: its version range, its tags in metadata, and serf's
    /// messages in memberlist's user messages.
    pub(crate) serf: bool,
}

impl Flavour {
    /// The versions every record we send announces.
    pub(crate) fn versions(self) -> Versions {
        if self.serf { super::serf::VERSIONS } else { VERSIONS }
    }

    /// Our metadata as this dialect carries it: `meta` itself, or (serf's)
    /// rewritten into `buf`, which is cleared first.
    pub(crate) fn meta_out<'a>(self, meta: &'a [u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
        if !self.serf {
            return meta;
        }
        buf.clear();
        super::serf::meta_to_serf(meta, buf);
        buf
    }

    /// A peer's metadata in our form, when this dialect writes it
    /// otherwise (serf's tags); `None` to take it as it is.
    pub(crate) fn meta_in(self, meta: &[u8]) -> Option<Vec<u8>> {
        if self.serf { super::serf::meta_from_serf(meta) } else { None }
    }
}

/// How a memberlist decoding error is counted: as the native format's
/// error of the same kind.
pub(crate) fn decode_error(e: Error) -> DecodeError {
    match e {
        Error::Truncated => DecodeError::Truncated,
        Error::Oversized => DecodeError::TooManyMessages,
        Error::UnknownType(_) | Error::UnexpectedType(_) => DecodeError::UnknownKind,
        Error::BadCrc => DecodeError::Checksum,
        Error::DecompressedTooLarge => DecodeError::Oversized,
        Error::Encrypted => DecodeError::Sealed,
        Error::UnknownEncryptionVersion(_) => DecodeError::Version,
        Error::Unauthenticated => DecodeError::Unauthenticated,
        Error::Malformed
        | Error::BadUtf8
        | Error::UnknownCompression(_)
        | Error::BadCompressedData
        | Error::TooDeep
        | Error::BadPadding => DecodeError::Malformed,
    }
}

/// Decodes a plain (decrypted) memberlist datagram into swim's messages:
/// its leaves are copied into `scratch`, which the messages borrow (with,
/// in serf's dialect, the alive members' tags rewritten in our encoding).
/// All or nothing: one leaf that does not decode rejects the datagram.
pub(crate) fn decode_packet<'b>(
    packet: &[u8],
    flavour: Flavour,
    heard: &mut Heard,
    scratch: &'b mut Vec<u8>,
    out: &mut Messages<'b>,
) -> Result<(), DecodeError> {
    let unpacked = Unpacked::parse(packet, &Limits::PACKET).map_err(decode_error)?;
    // Go drops a compound's parts cut off by the end of the datagram and
    // takes the rest; all or nothing here, as for our own format.
    if unpacked.truncated() > 0 {
        return Err(DecodeError::Truncated);
    }
    scratch.clear();
    let mut ranges = heapless::Vec::<(usize, usize), MAX_MESSAGES>::new();
    for leaf in unpacked.leaves() {
        let start = scratch.len();
        scratch.extend_from_slice(leaf);
        ranges.push((start, scratch.len())).map_err(|_| DecodeError::TooManyMessages)?;
    }
    drop(unpacked);
    // What serf's dialect rewrites for us goes after the leaves, before
    // anything borrows them: an alive's tags in our encoding, an ack's
    // coordinate in our fixed-point form. Plain memberlist rewrites none.
    let mut extras = heapless::Vec::<Extra, MAX_MESSAGES>::new();
    for &(start, end) in ranges.iter().filter(|_| flavour.serf) {
        let leaf = scratch.get(start..end).ok_or(DecodeError::Truncated)?;
        let extra = match Ml::decode(leaf).map_err(decode_error)? {
            Ml::Alive(a) => match a.meta.and_then(|m| flavour.meta_in(m)) {
                Some(m) => Extra::Rewritten(append(scratch, &m)),
                None => Extra::None,
            },
            Ml::User(body) => match filter_in(body) {
                Ok(Some(f)) => Extra::Rewritten(append(scratch, &f)),
                Ok(None) => Extra::None,
                Err(()) => Extra::Unreadable,
            },
            Ml::Ack(Ack { payload: Some(p), .. }) if !p.is_empty() => {
                let theirs = super::serf_ping::SerfCoordinate::decode(p);
                coordinate_in(theirs, scratch)
            }
            _ => Extra::None,
        };
        extras.push(extra).map_err(|_| DecodeError::TooManyMessages)?;
    }
    let scratch: &'b [u8] = scratch;
    // What is kept of the datagram (versions, serf query IDs) is kept once
    // all of it decoded.
    let mut learnt = Heard::default();
    let mut extras = extras.into_iter();
    for &(start, end) in &ranges {
        let extra = extras.next().unwrap_or(Extra::None);
        let leaf = scratch.get(start..end).ok_or(DecodeError::Truncated)?;
        let msg = Ml::decode(leaf).map_err(decode_error)?;
        if let Ml::Alive(a) = &msg
            && let Some(vsn) = a.vsn
        {
            learnt.note_versions(a.node, vsn);
        }
        let rewritten = match extra {
            Extra::Rewritten((a, b)) => scratch.get(a..b),
            Extra::Unreadable => continue,
            _ => None,
        };
        if let Some(native) = to_native(msg, flavour, rewritten, &mut learnt)? {
            out.push(native).map_err(|_| DecodeError::TooManyMessages)?;
        }
        if let Extra::Coordinate { vec: (a, b), height, error, adjustment } = extra {
            let vec = scratch.get(a..b).unwrap_or_default();
            out.push(Message::Coordinate { vec, height, error, adjustment })
                .map_err(|_| DecodeError::TooManyMessages)?;
        }
    }
    heard.absorb(learnt);
    Ok(())
}

/// What serf's dialect adds to one of a datagram's messages, held in the
/// decoding scratch as a range of it.
#[derive(Clone, Copy)]
enum Extra {
    None,
    /// An alive's metadata, or a serf query's filters, in our encoding.
    Rewritten((usize, usize)),
    /// A serf query whose filters we cannot read: not taken, as serf
    /// does not process it either.
    Unreadable,
    /// The coordinate in an ack's payload, as [`Message::Coordinate`]'s
    /// fields; an empty `vec` for one we cannot take (another
    /// dimensionality, absurd values, a payload that does not decode), so
    /// that it is counted as refused.
    Coordinate {
        vec: (usize, usize),
        height: u32,
        error: u8,
        adjustment: i32,
    },
}

/// Appends `bytes` to `scratch`, returning where they are.
fn append(scratch: &mut Vec<u8>, bytes: &[u8]) -> (usize, usize) {
    let at = scratch.len();
    scratch.extend_from_slice(bytes);
    (at, scratch.len())
}

/// The coordinate a serf agent put in its ack, in our form. A payload
/// that does not decode costs the coordinate, not the ack: memberlist
/// takes the ack whatever its payload, and serf only logs it.
fn coordinate_in(theirs: Result<super::serf_ping::SerfCoordinate, Error>, scratch: &mut Vec<u8>) -> Extra {
    use super::serf_ping::DIMENSIONS;
    use crate::protocol::coordinates::coordinate::Coordinate;
    let refused = Extra::Coordinate { vec: (0, 0), height: 0, error: 0, adjustment: 0 };
    let Ok(c) = theirs else { return refused };
    if c.dims != DIMENSIONS {
        return refused;
    }
    let Some(ours) = Coordinate::new(c.vec, c.height, c.error, c.adjustment) else { return refused };
    let mut buf = [0u8; 2 * DIMENSIONS];
    let Message::Coordinate { vec, height, error, adjustment } = ours.message(&mut buf) else {
        return refused;
    };
    Extra::Coordinate { vec: append(scratch, vec), height, error, adjustment }
}

/// The filters of the serf query in a user message's `body`, in our
/// encoding: `None` when it is no query or has none, `Err` when they do
/// not decode (or cannot be kept: names within one node filter that no
/// member could have).
fn filter_in(body: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    use super::serf::{SerfMessage, decode_filters};
    let Ok(SerfMessage::Query(q)) = SerfMessage::decode(body) else { return Ok(None) };
    if q.filters.is_empty() {
        return Ok(None);
    }
    let f = decode_filters(q.filters).map_err(drop)?;
    // A member must be named by every node filter: one list, their
    // intersection. One that names nobody selects nobody: the empty
    // name, which no member has, stands for it.
    let mut lists = f.nodes.into_iter();
    let mut nodes = lists.next().unwrap_or_default();
    for other in lists {
        nodes.retain(|n| other.contains(n));
        if nodes.is_empty() {
            nodes.push("");
        }
    }
    Ok(Some(crate::protocol::queries::filter::encode_parts(&nodes, &f.tags)))
}

/// Our coordinate among `msgs` (beside an ack) as serf's ack payload.
fn coordinate_out(msgs: &[Message<'_>]) -> Option<Vec<u8>> {
    use super::serf_ping::SerfCoordinate;
    use crate::protocol::coordinates::coordinate::Coordinate;
    let c = msgs.iter().find_map(|m| match *m {
        Message::Coordinate { vec, height, error, adjustment } => {
            Coordinate::from_wire(vec, height, error, adjustment).ok()
        }
        _ => None,
    })?;
    let serf = SerfCoordinate {
        vec: c.vec(),
        dims: super::serf_ping::DIMENSIONS,
        error: c.error(),
        adjustment: c.adjustment(),
        height: c.height(),
    };
    let mut out = Vec::new();
    serf.encode(&mut out);
    Some(out)
}

/// Swim's message for one of memberlist's (`rewritten`: an alive's
/// metadata or a serf query's filters in our encoding, if they were).
fn to_native<'a>(
    msg: Ml<'a>,
    flavour: Flavour,
    rewritten: Option<&'a [u8]>,
    heard: &mut Heard,
) -> Result<Option<Message<'a>>, DecodeError> {
    let addr = |ip: Option<&[u8]>, port: u16| {
        ip.and_then(ip_from_wire).map(|ip| SocketAddr::new(ip, port)).ok_or(DecodeError::Malformed)
    };
    Ok(Some(match msg {
        Ml::Ping(p) => Message::Ping { seq: p.seq_no, target: p.node },
        Ml::IndirectPing(p) => Message::PingReq { seq: p.seq_no, target: p.node, addr: addr(p.target, p.port)? },
        Ml::Ack(a) => Message::Ack { seq: a.seq_no },
        Ml::Nack(n) => Message::Nack { seq: n.seq_no },
        Ml::Alive(a) => Message::Alive {
            incarnation: a.incarnation,
            name: a.node,
            addr: addr(a.addr, a.port)?,
            meta: rewritten.or(a.meta).unwrap_or_default(),
        },
        Ml::Suspect(s) => Message::Suspect { incarnation: s.incarnation, name: s.node, from: s.from },
        Ml::Dead(d) => Message::Dead { incarnation: d.incarnation, name: d.node, from: d.from },
        Ml::User(payload) if flavour.serf => return serf_to_native(payload, rewritten.unwrap_or_default(), heard),
        // memberlist does not name a user message's sender: the member at
        // the datagram's source is taken for it (`from` left empty here).
        Ml::User(payload) => Message::Direct { from: "", payload },
    }))
}

/// A serf message in a memberlist user message, as ours: a user event
/// (serf names no sender: its name stands for one, so that an event is
/// told from another by time and name, as serf does); nothing for what
/// this slice does not take (a leave intent's `dead` follows it).
///
/// A query is taken with `filter`, its filters in our encoding (empty
/// for none), and its ID noted in `heard`, for the answers.
fn serf_to_native<'a>(
    payload: &'a [u8],
    filter: &'a [u8],
    heard: &mut Heard,
) -> Result<Option<Message<'a>>, DecodeError> {
    use super::serf::{QUERY_FLAG_ACK, SerfMessage};
    Ok(match SerfMessage::decode(payload).map_err(decode_error)? {
        SerfMessage::Query(q) => {
            let ip = ip_from_wire(q.addr).ok_or(DecodeError::Malformed)?;
            heard.note_query(q.ltime, q.source_node, q.id);
            Some(Message::Question {
                ltime: q.ltime,
                origin: q.source_node,
                addr: SocketAddr::new(ip, q.port),
                name: q.name,
                payload: q.payload,
                filter,
                ack: q.flags & QUERY_FLAG_ACK != 0,
                relay_factor: q.relay_factor,
                timeout_ms: u32::try_from(q.timeout_ns.max(0) / 1_000_000).unwrap_or(u32::MAX),
            })
        }
        SerfMessage::QueryResponse(r) => Some(Message::Response {
            ltime: r.ltime,
            from: r.from,
            ack: r.flags & QUERY_FLAG_ACK != 0,
            payload: r.payload,
            relay: None,
        }),
        // Ours to pass on to the origin, as our own relays are.
        SerfMessage::Relay(relay) => {
            let ip = ip_from_wire(relay.dest_ip).ok_or(DecodeError::Malformed)?;
            let r = relay.response;
            // The answer we pass on must carry its query's ID, and serf
            // names the origin here: kept as if we had heard the query.
            heard.note_query(r.ltime, relay.dest_name, r.id);
            Some(Message::Response {
                ltime: r.ltime,
                from: r.from,
                ack: r.flags & QUERY_FLAG_ACK != 0,
                payload: r.payload,
                relay: Some(SocketAddr::new(ip, relay.dest_port)),
            })
        }
        SerfMessage::UserEvent(e) => {
            Some(Message::User { ltime: e.ltime, from: e.name, name: e.name, payload: e.payload, coalesce: e.cc })
        }
        // serf's member clock: our leave intents must go past it.
        SerfMessage::Leave(l) => {
            heard.note_member_time(l.ltime);
            None
        }
        SerfMessage::Join(j) => {
            heard.note_member_time(j.ltime);
            None
        }
        SerfMessage::Other(_) => None,
    })
}

/// Appends what memberlist encodes for `msg` (nothing when it has no word
/// for it), each message ending where `ends` says.
fn encode_one<const N: usize>(
    msg: &Message<'_>,
    flavour: Flavour,
    heard: &Heard,
    me: Option<(&str, SocketAddr)>,
    ack_payload: Option<&[u8]>,
    out: &mut Vec<u8>,
    ends: &mut heapless::Vec<usize, N>,
) -> Result<(), EncodeError> {
    let ml = match *msg {
        Message::Ping { seq, target } => {
            // As memberlist 0.2.2 sends it: with where to answer, so that
            // the ack may be as large as the ping (a serf agent's carries
            // its coordinate).
            let ip = me.map(|(_, addr)| IpBytes::new(addr.ip()));
            let m = Ping {
                seq_no: seq,
                node: target,
                source_addr: ip.as_ref().map(IpBytes::as_slice).unwrap_or_default(),
                source_port: me.map_or(0, |(_, addr)| addr.port()),
                source_node: me.map_or("", |(name, _)| name),
            };
            Ml::Ping(m).encode(out)?;
            return ended(out, ends);
        }
        Message::PingReq { seq, target, addr } => {
            let ip = IpBytes::new(addr.ip());
            let m = IndirectPing {
                seq_no: seq,
                target: Some(ip.as_slice()),
                port: addr.port(),
                node: target,
                nack: true,
                ..IndirectPing::default()
            };
            Ml::IndirectPing(m).encode(out)?;
            return ended(out, ends);
        }
        Message::Ack { seq } => Ml::Ack(Ack { seq_no: seq, payload: ack_payload }),
        Message::Nack { seq } => Ml::Nack(Nack { seq_no: seq }),
        Message::Alive { incarnation, name, addr, meta } => {
            // A member's own versions, or memberlist refutes the alive.
            let vsn = heard.versions_of(name).unwrap_or_else(|| flavour.versions().to_vsn());
            let ip = IpBytes::new(addr.ip());
            let mut buf = Vec::new();
            let their_meta = flavour.meta_out(meta, &mut buf);
            let m = Alive {
                incarnation,
                node: name,
                addr: Some(ip.as_slice()),
                port: addr.port(),
                meta: Some(their_meta),
                vsn: Some(&vsn),
            };
            Ml::Alive(m).encode(out)?;
            return ended(out, ends);
        }
        Message::Suspect { incarnation, name, from } => Ml::Suspect(Suspect { incarnation, node: name, from }),
        Message::Dead { incarnation, name, from } => {
            Ml::Dead(Dead { incarnation, node: name, from }).encode(out)?;
            ended(out, ends)?;
            if flavour.serf && from == name {
                // serf tells a leave from a failure by the intent before
                // the `dead`: an intent newer than any it holds of the
                // member, so past serf's member clock as heard (and the
                // incarnation, which grows with every leave).
                let ltime = heard.next_member_time().max(u64::from(incarnation));
                let leave = super::serf::Leave { ltime, node: name, prune: false };
                let mut body = Vec::new();
                super::serf::SerfMessage::Leave(leave).encode(&mut body)?;
                Ml::User(&body).encode(out)?;
                ended(out, ends)?;
            }
            return Ok(());
        }
        Message::User { ltime, name, payload, coalesce, .. } if flavour.serf => {
            let event = super::serf::UserEvent { ltime, name, payload, cc: coalesce };
            let mut body = Vec::new();
            super::serf::SerfMessage::UserEvent(event).encode(&mut body)?;
            Ml::User(&body).encode(out)?;
            return ended(out, ends);
        }
        Message::Question { ltime, origin, addr, name, payload, filter, ack, relay_factor, timeout_ms }
            if flavour.serf =>
        {
            // A filter we cannot write is not sent: without it every
            // member would answer.
            let Some((nodes, tags)) = crate::protocol::queries::filter::decode_parts(filter) else {
                return Ok(());
            };
            let mut filters = Vec::new();
            if !(nodes.is_empty() && tags.is_empty()) {
                super::serf::encode_filters(&nodes, &tags, &mut filters)?;
            }
            let ip = IpBytes::new(addr.ip());
            let query = super::serf::Query {
                ltime,
                // Passed on as heard; ours, by their time and origin.
                id: heard.query_id(ltime, origin).unwrap_or_else(|| super::serf::our_query_id(ltime, origin)),
                addr: ip.as_slice(),
                port: addr.port(),
                source_node: origin,
                filters: &filters,
                flags: if ack { super::serf::QUERY_FLAG_ACK } else { 0 },
                relay_factor,
                timeout_ns: i64::from(timeout_ms) * 1_000_000,
                name,
                payload,
            };
            return serf_user(super::serf::SerfMessage::Query(query), out, ends);
        }
        Message::Response { ltime, from, ack, payload, relay } if flavour.serf => {
            let response = super::serf::QueryResponse {
                ltime,
                id: heard.latest_query_id(ltime).unwrap_or_default(),
                from,
                flags: if ack { super::serf::QUERY_FLAG_ACK } else { 0 },
                payload,
            };
            let Some(to) = relay else {
                return serf_user(super::serf::SerfMessage::QueryResponse(response), out, ends);
            };
            // For a relay to pass on: serf's relay names the origin's
            // address (its name only goes to serf's logs).
            let ip = IpBytes::new(to.ip());
            let relay = super::serf::Relay { dest_ip: ip.as_slice(), dest_port: to.port(), dest_name: "", response };
            return serf_user(super::serf::SerfMessage::Relay(relay), out, ends);
        }
        // serf reads every user message as its own: ours would be junk.
        Message::Direct { payload, .. } if !flavour.serf => Ml::User(payload),
        _ => return Ok(()),
    };
    ml.encode(out)?;
    ended(out, ends)
}

/// Appends a serf message as a memberlist user message.
fn serf_user<const N: usize>(
    msg: super::serf::SerfMessage<'_>,
    out: &mut Vec<u8>,
    ends: &mut heapless::Vec<usize, N>,
) -> Result<(), EncodeError> {
    let mut body = Vec::new();
    msg.encode(&mut body)?;
    Ml::User(&body).encode(out)?;
    ended(out, ends)
}

/// Notes that a message ends here.
fn ended<const N: usize>(out: &[u8], ends: &mut heapless::Vec<usize, N>) -> Result<(), EncodeError> {
    ends.push(out.len()).map_err(|_| EncodeError::TooManyParts)
}

/// [`encode_packet_from`] without naming where to answer our pings.
#[cfg(test)]
pub(crate) fn encode_packet(
    msgs: &[Message<'_>],
    flavour: Flavour,
    heard: &Heard,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode_packet_from(msgs, flavour, heard, None, out)
}

/// Appends swim's `msgs` as one memberlist datagram from `me` (our name
/// and address, which our pings give as memberlist's do): the message
/// alone, or a compound of them. Nothing is appended when memberlist has
/// a word for none of them.
pub(crate) fn encode_packet_from(
    msgs: &[Message<'_>],
    flavour: Flavour,
    heard: &Heard,
    me: Option<(&str, SocketAddr)>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut parts: Vec<u8> = Vec::new();
    let mut ends = heapless::Vec::<usize, MAX_MESSAGES>::new();
    // serf carries a coordinate in the ack's payload, not beside it.
    let ack_payload = if flavour.serf { coordinate_out(msgs) } else { None };
    for msg in msgs {
        encode_one(msg, flavour, heard, me, ack_payload.as_deref(), &mut parts, &mut ends)?;
    }
    match ends.len() {
        0 => Ok(()),
        1 => {
            out.extend_from_slice(&parts);
            Ok(())
        }
        _ => {
            let mut slices = Vec::with_capacity(ends.len());
            let mut start = 0;
            for &end in &ends {
                slices.push(parts.get(start..end).unwrap_or_default());
                start = end;
            }
            encode_compound(&slices, out)
        }
    }
}
