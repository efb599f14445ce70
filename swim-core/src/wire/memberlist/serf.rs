//! serf 0.9.4's layer on memberlist's format (`github.com/hashicorp/serf`
//! at `v0.9.4`, `serf/messages.go`): what serf carries inside memberlist's
//! user messages (a serf type byte, then a msgpack struct), its tags in a
//! member's metadata, and the version range serf announces.
//!
//! Covered so far: user events (`messageUserEvent`), leave intents
//! (`messageLeave`), queries without filters (`messageQuery`) and their
//! answers (`messageQueryResponse`), answers relayed (`messageRelay`),
//! and tags; key requests and answers
//! in [`serf_keys`](super::serf_keys), coordinates in acks in
//! [`serf_ping`](super::serf_ping). Join intents are read
//! for their time; serf's push-pull state is in
//! [`serf_state`](super::serf_state).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::error::{EncodeError, Error};
use super::gossip::Versions;
use super::msgpack::read::Reader;
use super::msgpack::write;

/// The versions a serf 0.9.4 agent announces with its defaults: memberlist
/// protocol 1 to 5 speaking 2 (serf maps its protocol 4 to it), serf's own
/// protocol 2 to 5 speaking 4 as the delegate's.
pub(crate) const VERSIONS: Versions =
    Versions { protocol_min: 1, protocol_max: 5, protocol_cur: 2, delegate_min: 2, delegate_max: 5, delegate_cur: 4 };

/// The first byte of serf's tag encoding in a member's metadata.
pub(crate) const TAG_MAGIC: u8 = 255;

/// serf's message types, the first byte of a memberlist user message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SerfType {
    /// `messageLeaveType`.
    Leave = 0,
    /// `messageJoinType`.
    Join = 1,
    /// `messagePushPullType`: serf's state in a push-pull.
    PushPull = 2,
    /// `messageUserEventType`.
    UserEvent = 3,
    /// `messageQueryType`.
    Query = 4,
    /// `messageQueryResponseType`.
    QueryResponse = 5,
    /// `messageConflictResponseType`.
    ConflictResponse = 6,
    /// `messageKeyRequestType`.
    KeyRequest = 7,
    /// `messageKeyResponseType`.
    KeyResponse = 8,
    /// `messageRelayType`.
    Relay = 9,
}

/// A serf message, as far as this slice reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SerfMessage<'a> {
    /// A user event.
    UserEvent(UserEvent<'a>),
    /// A member's intent to leave.
    Leave(Leave<'a>),
    /// A member's intent to join (we read its time only).
    Join(Join<'a>),
    /// A query.
    Query(Query<'a>),
    /// An answer to a query, or its acknowledgement.
    QueryResponse(QueryResponse<'a>),
    /// An answer to pass on to the query's origin (`messageRelay`, with an
    /// answer inside: the only message serf relays).
    Relay(Relay<'a>),
    /// A type this slice does not take yet.
    Other(SerfType),
}

/// `queryFlagAck`: members acknowledge the query at once.
pub(crate) const QUERY_FLAG_ACK: u32 = 1;

/// `messageQuery`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Query<'a> {
    /// `LTime`: the query clock's time.
    pub(crate) ltime: u64,
    /// `ID`: chosen by the origin; answers carry it back.
    pub(crate) id: u32,
    /// `Addr`: where answers go (4 or 16 bytes).
    pub(crate) addr: &'a [u8],
    /// `Port`.
    pub(crate) port: u16,
    /// `SourceNode`: the origin's name.
    pub(crate) source_node: &'a str,
    /// `Filters`: the msgpack list of filters as it came (see
    /// [`decode_filters`]); empty for none.
    pub(crate) filters: &'a [u8],
    /// `Flags`: [`QUERY_FLAG_ACK`], and `queryFlagNoBroadcast` (2).
    pub(crate) flags: u32,
    /// `RelayFactor`: how many members relay each answer too.
    pub(crate) relay_factor: u8,
    /// `Timeout`: Go's `time.Duration`, in nanoseconds.
    pub(crate) timeout_ns: i64,
    /// `Name`.
    pub(crate) name: &'a str,
    /// `Payload`.
    pub(crate) payload: &'a [u8],
}

/// `messageQueryResponse`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueryResponse<'a> {
    /// `LTime`: the query's.
    pub(crate) ltime: u64,
    /// `ID`: the query's.
    pub(crate) id: u32,
    /// `From`: who answers.
    pub(crate) from: &'a str,
    /// `Flags`: [`QUERY_FLAG_ACK`] for an acknowledgement.
    pub(crate) flags: u32,
    /// `Payload`.
    pub(crate) payload: &'a [u8],
}

/// `messageRelay`: `relayHeader` (where to), then the relayed message
/// with its own type byte (here always an answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Relay<'a> {
    /// `DestAddr.IP`: 4 or 16 bytes.
    pub(crate) dest_ip: &'a [u8],
    /// `DestAddr.Port`.
    pub(crate) dest_port: u16,
    /// `DestName`: the origin's name (serf's memberlist only logs it).
    pub(crate) dest_name: &'a str,
    /// The answer to pass on.
    pub(crate) response: QueryResponse<'a>,
}

/// `filterNodeType`: a filter naming the members that are to answer.
const FILTER_NODES: u8 = 0;
/// `filterTagType`: a filter on one tag, by regular expression.
const FILTER_TAG: u8 = 1;

/// A query's filters, read: every member named by each node filter (a
/// member must be in all of them), and each tag with the expression its
/// value must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filters<'a> {
    /// Node filters, each a list of names.
    pub(crate) nodes: Vec<Vec<&'a str>>,
    /// Tag filters: the tag, then the expression.
    pub(crate) tags: Vec<(&'a str, &'a str)>,
}

/// Past this many filters, or names in one, a query is no serf agent's:
/// refused rather than read on.
const MAX_FILTER_ITEMS: usize = 4096;

/// Reads a query's `Filters`: a list of byte strings, each a filter type
/// and then the filter in msgpack. A filter of another type is an error,
/// as it is to serf (which then does not process the query).
pub(crate) fn decode_filters(raw: &[u8]) -> Result<Filters<'_>, Error> {
    let mut out = Filters::default();
    if raw.is_empty() {
        return Ok(out);
    }
    let mut r = Reader::new(raw);
    let n = r.array_len()?.unwrap_or(0);
    if n > MAX_FILTER_ITEMS {
        return Err(Error::Oversized);
    }
    for _ in 0..n {
        let filter = r.bytes_or_empty()?;
        let (&t, body) = filter.split_first().ok_or(Error::Truncated)?;
        let mut f = Reader::new(body);
        match t {
            FILTER_NODES => {
                let len = f.array_len()?.unwrap_or(0);
                if len > MAX_FILTER_ITEMS {
                    return Err(Error::Oversized);
                }
                let mut names = Vec::with_capacity(len);
                for _ in 0..len {
                    names.push(f.str()?);
                }
                out.nodes.push(names);
            }
            FILTER_TAG => {
                let (mut tag, mut expr) = ("", "");
                f.read_struct(|key, f| {
                    match key {
                        b"Tag" => tag = f.str()?,
                        b"Expr" => expr = f.str()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                out.tags.push((tag, expr));
            }
            other => return Err(Error::UnknownType(other)),
        }
    }
    Ok(out)
}

/// Appends `Filters` as serf writes them: the node filter first (when
/// there are names), then one filter per tag.
pub(crate) fn encode_filters(nodes: &[&str], tags: &[(&str, &str)], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    write::atomically(out, |out| {
        write::array_header(out, usize::from(!nodes.is_empty()) + tags.len());
        let mut filter = Vec::new();
        if !nodes.is_empty() {
            filter.push(FILTER_NODES);
            write::array_header(&mut filter, nodes.len());
            for n in nodes {
                write::raw(&mut filter, n.as_bytes())?;
            }
            write::raw(out, &filter)?;
        }
        for (tag, expr) in tags {
            filter.clear();
            filter.push(FILTER_TAG);
            write::map_header(&mut filter, 2);
            write::key(&mut filter, "Expr");
            write::raw(&mut filter, expr.as_bytes())?;
            write::key(&mut filter, "Tag");
            write::raw(&mut filter, tag.as_bytes())?;
            write::raw(out, &filter)?;
        }
        Ok(())
    })
}

impl<'a> QueryResponse<'a> {
    /// Reads the struct (after its type byte).
    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = QueryResponse::default();
        r.read_struct(|key, r| {
            match key {
                b"LTime" => m.ltime = r.uint()?,
                b"ID" => m.id = r.uint()?,
                b"From" => m.from = r.str()?,
                b"Flags" => m.flags = r.uint()?,
                b"Payload" => m.payload = r.bytes_or_empty()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }
}

/// The ID our queries carry: a hash of their time and origin (FNV-1a),
/// the same every time, so that it needs no keeping.
pub(crate) fn our_query_id(ltime: u64, origin: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in ltime.to_be_bytes().iter().chain(origin.as_bytes()) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// `messageUserEvent`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct UserEvent<'a> {
    /// `LTime`: the event clock's time.
    pub(crate) ltime: u64,
    /// `Name`.
    pub(crate) name: &'a str,
    /// `Payload`; nil reads as empty.
    pub(crate) payload: &'a [u8],
    /// `CC`: whether events of this name may be coalesced.
    pub(crate) cc: bool,
}

/// `messageJoin`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Join<'a> {
    /// `LTime`: serf's member clock.
    pub(crate) ltime: u64,
    /// `Node`: who joins.
    pub(crate) node: &'a str,
}

/// `messageLeave`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Leave<'a> {
    /// `LTime`: serf's member clock.
    pub(crate) ltime: u64,
    /// `Node`: who leaves.
    pub(crate) node: &'a str,
    /// `Prune`: whether it is also to be forgotten.
    pub(crate) prune: bool,
}

impl<'a> SerfMessage<'a> {
    /// Decodes the payload of a memberlist user message as serf's.
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, Error> {
        let (&t, body) = bytes.split_first().ok_or(Error::Truncated)?;
        let mut r = Reader::new(body);
        Ok(match t {
            3 => {
                let mut m = UserEvent::default();
                r.read_struct(|key, r| {
                    match key {
                        b"LTime" => m.ltime = r.uint()?,
                        b"Name" => m.name = r.str()?,
                        b"Payload" => m.payload = r.bytes_or_empty()?,
                        b"CC" => m.cc = r.boolean()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                SerfMessage::UserEvent(m)
            }
            0 => {
                let mut m = Leave::default();
                r.read_struct(|key, r| {
                    match key {
                        b"LTime" => m.ltime = r.uint()?,
                        b"Node" => m.node = r.str()?,
                        b"Prune" => m.prune = r.boolean()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                SerfMessage::Leave(m)
            }
            4 => {
                let mut m = Query::default();
                r.read_struct(|key, r| {
                    match key {
                        b"LTime" => m.ltime = r.uint()?,
                        b"ID" => m.id = r.uint()?,
                        b"Addr" => m.addr = r.bytes_or_empty()?,
                        b"Port" => m.port = r.uint()?,
                        b"SourceNode" => m.source_node = r.str()?,
                        b"Filters" => {
                            // Kept as it came, read when the query is taken.
                            let before = r.rest();
                            r.skip()?;
                            let raw = before.get(..before.len() - r.rest().len()).unwrap_or_default();
                            // An empty list (or nil) is no filter.
                            m.filters = if matches!(raw, [0x90] | [0xc0]) { &[] } else { raw };
                        }
                        b"Flags" => m.flags = r.uint()?,
                        b"RelayFactor" => m.relay_factor = r.uint()?,
                        b"Timeout" => m.timeout_ns = r.int()?,
                        b"Name" => m.name = r.str()?,
                        b"Payload" => m.payload = r.bytes_or_empty()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                SerfMessage::Query(m)
            }
            5 => SerfMessage::QueryResponse(QueryResponse::read(&mut r)?),
            9 => {
                let mut m = Relay::default();
                r.read_struct(|key, r| {
                    match key {
                        b"DestAddr" => r.read_struct(|key, r| {
                            match key {
                                b"IP" => m.dest_ip = r.bytes_or_empty()?,
                                b"Port" => m.dest_port = r.uint()?,
                                _ => return Ok(false),
                            }
                            Ok(true)
                        })?,
                        b"DestName" => m.dest_name = r.str()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                match r.byte()? {
                    5 => {
                        m.response = QueryResponse::read(&mut r)?;
                        SerfMessage::Relay(m)
                    }
                    // Serf relays nothing else.
                    _ => SerfMessage::Other(SerfType::Relay),
                }
            }
            1 => {
                let mut m = Join::default();
                r.read_struct(|key, r| {
                    match key {
                        b"LTime" => m.ltime = r.uint()?,
                        b"Node" => m.node = r.str()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                SerfMessage::Join(m)
            }
            2 => SerfMessage::Other(SerfType::PushPull),
            6 => SerfMessage::Other(SerfType::ConflictResponse),
            7 => SerfMessage::Other(SerfType::KeyRequest),
            8 => SerfMessage::Other(SerfType::KeyResponse),
            _ => return Err(Error::UnknownType(t)),
        })
    }

    /// Appends the message as serf encodes it (type byte, then the struct,
    /// keys in the order Go writes them). On error nothing is appended.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::atomically(out, |out| match self {
            SerfMessage::UserEvent(m) => {
                out.push(SerfType::UserEvent as u8);
                write::map_header(out, 4);
                write::key(out, "CC");
                write::boolean(out, m.cc);
                write::key(out, "LTime");
                write::uint(out, m.ltime);
                write::key(out, "Name");
                write::raw(out, m.name.as_bytes())?;
                write::key(out, "Payload");
                write::raw(out, m.payload)
            }
            SerfMessage::Join(m) => {
                out.push(SerfType::Join as u8);
                write::map_header(out, 2);
                write::key(out, "LTime");
                write::uint(out, m.ltime);
                write::key(out, "Node");
                write::raw(out, m.node.as_bytes())
            }
            SerfMessage::Leave(m) => {
                out.push(SerfType::Leave as u8);
                write::map_header(out, 3);
                write::key(out, "LTime");
                write::uint(out, m.ltime);
                write::key(out, "Node");
                write::raw(out, m.node.as_bytes())?;
                write::key(out, "Prune");
                write::boolean(out, m.prune);
                Ok(())
            }
            SerfMessage::Query(m) => {
                out.push(SerfType::Query as u8);
                write::map_header(out, 11);
                write::key(out, "Addr");
                write::raw(out, m.addr)?;
                write::key(out, "Filters");
                if m.filters.is_empty() {
                    // No filter: Go writes a nil list.
                    write::nil(out);
                } else {
                    out.extend_from_slice(m.filters);
                }
                write::key(out, "Flags");
                write::uint(out, m.flags.into());
                write::key(out, "ID");
                write::uint(out, m.id.into());
                write::key(out, "LTime");
                write::uint(out, m.ltime);
                write::key(out, "Name");
                write::raw(out, m.name.as_bytes())?;
                write::key(out, "Payload");
                write::raw(out, m.payload)?;
                write::key(out, "Port");
                write::uint(out, m.port.into());
                write::key(out, "RelayFactor");
                write::uint(out, m.relay_factor.into());
                write::key(out, "SourceNode");
                write::raw(out, m.source_node.as_bytes())?;
                write::key(out, "Timeout");
                write::int(out, m.timeout_ns);
                Ok(())
            }
            SerfMessage::Relay(m) => {
                out.push(SerfType::Relay as u8);
                write::map_header(out, 2);
                write::key(out, "DestAddr");
                write::map_header(out, 3);
                write::key(out, "IP");
                write::raw(out, m.dest_ip)?;
                write::key(out, "Port");
                write::uint(out, m.dest_port.into());
                write::key(out, "Zone");
                write::raw(out, b"")?;
                write::key(out, "DestName");
                write::raw(out, m.dest_name.as_bytes())?;
                SerfMessage::QueryResponse(m.response).encode(out)
            }
            SerfMessage::QueryResponse(m) => {
                out.push(SerfType::QueryResponse as u8);
                write::map_header(out, 5);
                write::key(out, "Flags");
                write::uint(out, m.flags.into());
                write::key(out, "From");
                write::raw(out, m.from.as_bytes())?;
                write::key(out, "ID");
                write::uint(out, m.id.into());
                write::key(out, "LTime");
                write::uint(out, m.ltime);
                write::key(out, "Payload");
                write::raw(out, m.payload)
            }
            SerfMessage::Other(_) => Err(EncodeError::TooLong),
        })
    }
}

/// serf's tags (`encodeTags`, protocol 3 and later): [`TAG_MAGIC`], then a
/// msgpack map of strings.
pub(crate) fn encode_tags<'a>(tags: impl ExactSizeIterator<Item = (&'a str, &'a str)>, out: &mut Vec<u8>) {
    out.push(TAG_MAGIC);
    write::map_header(out, tags.len());
    for (k, v) in tags {
        // A tag is at most the metadata's size: far below msgpack's limits.
        let _ = write::raw(out, k.as_bytes());
        let _ = write::raw(out, v.as_bytes());
    }
}

/// Our metadata in serf's form: tags (ours, [`Tags`](crate::Tags)) in
/// serf's tag encoding, anything else as it is. Appended to `out`.
pub(crate) fn meta_to_serf(meta: &[u8], out: &mut Vec<u8>) {
    match crate::api::tags::Tags::decode(meta) {
        Some(tags) => {
            let pairs: Vec<(&str, &str)> = tags.iter().collect();
            encode_tags(pairs.into_iter(), out);
        }
        None => out.extend_from_slice(meta),
    }
}

/// serf's metadata in our form: serf's tags as ours, or `None` when it is
/// not in serf's tag encoding (then it is taken as it is).
pub(crate) fn meta_from_serf(meta: &[u8]) -> Option<Vec<u8>> {
    let tags = decode_tags(meta)?;
    let mut ours = crate::api::tags::Tags::new();
    for (k, v) in tags {
        ours.insert(k, v);
    }
    Some(ours.encode())
}

/// serf's tags from a member's metadata, or `None` when the metadata is
/// not in serf's tag encoding (serf then reads it as the `role` tag).
pub(crate) fn decode_tags(meta: &[u8]) -> Option<BTreeMap<String, String>> {
    let (&TAG_MAGIC, body) = meta.split_first()? else { return None };
    let mut tags = BTreeMap::new();
    let mut r = Reader::new(body);
    r.read_struct(|key, r| {
        let key = core::str::from_utf8(key).map_err(|_| Error::BadUtf8)?;
        tags.insert(String::from(key), String::from(r.str()?));
        Ok(true)
    })
    .ok()?;
    Some(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes go-msgpack 0.5.3 (Debian's, which serf 0.9.4 builds with)
    /// writes for serf's `messageUserEvent` of `serf event -coalesce deploy
    /// v1` at time 2, and for serf's tags `{"role": "web"}`.
    #[test]
    fn a_user_event_and_tags_as_serf_writes_them() {
        let ev = SerfMessage::UserEvent(UserEvent { ltime: 2, name: "deploy", payload: b"v1", cc: true });
        let mut out = Vec::new();
        ev.encode(&mut out).unwrap();
        let mut want = alloc::vec![3, 0x84, 0xa2, b'C', b'C', 0xc3, 0xa5];
        want.extend_from_slice(b"LTime");
        want.push(2);
        want.push(0xa4);
        want.extend_from_slice(b"Name");
        want.push(0xa6);
        want.extend_from_slice(b"deploy");
        want.push(0xa7);
        want.extend_from_slice(b"Payload");
        want.extend_from_slice(&[0xa2, b'v', b'1']);
        assert_eq!(out, want);
        assert_eq!(SerfMessage::decode(&out), Ok(ev));

        let mut tags = Vec::new();
        encode_tags([("role", "web")].into_iter(), &mut tags);
        assert_eq!(tags, [255, 0x81, 0xa4, b'r', b'o', b'l', b'e', 0xa3, b'w', b'e', b'b']);
        let back = decode_tags(&tags).unwrap();
        assert_eq!(back.get("role").map(String::as_str), Some("web"));
        assert_eq!(decode_tags(b"web"), None);
        assert_eq!(decode_tags(&[255, 0x81, 0xa4]), None);
    }

    #[test]
    fn a_leave_round_trips_and_other_types_are_named() {
        let leave = SerfMessage::Leave(Leave { ltime: 9, node: "a", prune: false });
        let mut out = Vec::new();
        leave.encode(&mut out).unwrap();
        assert_eq!(SerfMessage::decode(&out), Ok(leave));
        assert_eq!(SerfMessage::decode(&[1, 0x80]), Ok(SerfMessage::Join(Join::default())));
        let join = SerfMessage::Join(Join { ltime: 4, node: "b" });
        let mut out = Vec::new();
        join.encode(&mut out).unwrap();
        assert_eq!(SerfMessage::decode(&out), Ok(join));
        assert_eq!(SerfMessage::decode(&[42]), Err(Error::UnknownType(42)));
        assert_eq!(SerfMessage::decode(&[]), Err(Error::Truncated));
    }
}
