//! What memberlist 0.2.2 sends over a stream (TCP): the push-pull state
//! exchange (`pushPullHeader`, then one `pushNodeState` per node, then the
//! delegate's raw state), a user message (`userMsgHeader`, then its raw
//! bytes), the fallback ping and its ack, and `errResp` (`net.go`:
//! `sendLocalState`, `readRemoteState`, `sendUserMsg`, `readStream`).
//!
//! Streams have no framing of their own: one message per connection and
//! direction, msgpack values back to back, then raw bytes whose length
//! the header gave. Here a stream's bytes come in whole, so
//! [`Error::Truncated`] can also mean "not all bytes yet".

use alloc::vec::Vec;

use super::Limits;
use super::compress::Compress;
use super::error::{EncodeError, Error};
use super::message::{Body, MessageType};
use super::msgpack::read::Reader;
use super::msgpack::write;
use super::probe::{Ack, Ping};

/// `pushPullHeader`: what follows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PushPullHeader {
    /// `Nodes`: how many `pushNodeState` records follow (a Go `int`).
    pub(crate) nodes: u32,
    /// `UserStateLen`: how many raw bytes of delegate state follow them.
    pub(crate) user_state_len: u32,
    /// `Join`: a join, or a periodic anti-entropy exchange.
    pub(crate) join: bool,
}

/// Reads a Go `int` that counts something: negative is malformed (Go
/// would panic making a slice of that length), beyond `u32` oversized.
fn count(r: &mut Reader<'_>) -> Result<u32, Error> {
    let n = r.int()?;
    if n < 0 {
        return Err(Error::Malformed);
    }
    u32::try_from(n).map_err(|_| Error::Oversized)
}

impl<'a> Body<'a> for PushPullHeader {
    const TYPE: MessageType = MessageType::PushPull;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = PushPullHeader::default();
        r.read_struct(|key, r| {
            match key {
                b"Nodes" => m.nodes = count(r)?,
                b"UserStateLen" => m.user_state_len = count(r)?,
                b"Join" => m.join = r.boolean()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::map_header(out, 3);
        write::key(out, "Join");
        write::boolean(out, self.join);
        write::key(out, "Nodes");
        write::uint(out, self.nodes.into());
        write::key(out, "UserStateLen");
        write::uint(out, self.user_state_len.into());
        Ok(())
    }
}

/// memberlist's `NodeStateType`, a Go `int` on the wire. Kept as the
/// number: an unknown state is memberlist's to ignore, not a decoding
/// error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NodeStateType(pub(crate) i64);

impl NodeStateType {
    /// `StateAlive`.
    pub(crate) const ALIVE: Self = NodeStateType(0);
    /// `StateSuspect`.
    pub(crate) const SUSPECT: Self = NodeStateType(1);
    /// `StateDead`.
    pub(crate) const DEAD: Self = NodeStateType(2);
    /// `StateLeft`: a member that left gracefully (a `dead` whose `Node`
    /// is its `From`). The leave itself is gossiped as a `dead` message;
    /// push-pulls then carry the record in this state.
    pub(crate) const LEFT: Self = NodeStateType(3);
}

/// `pushNodeState`: one member's record in a push-pull exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PushNodeState<'a> {
    /// `Name`.
    pub(crate) name: &'a str,
    /// `Addr`: the IP, 4 or 16 bytes; `None` is Go's nil.
    pub(crate) addr: Option<&'a [u8]>,
    /// `Port`.
    pub(crate) port: u16,
    /// `Meta`; `None` is Go's nil.
    pub(crate) meta: Option<&'a [u8]>,
    /// `Incarnation`.
    pub(crate) incarnation: u32,
    /// `State`.
    pub(crate) state: NodeStateType,
    /// `Vsn`: six version bytes (see
    /// [`Versions`](super::gossip::Versions)); `None` is Go's nil.
    pub(crate) vsn: Option<&'a [u8]>,
}

impl<'a> PushNodeState<'a> {
    /// Reads one record.
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = PushNodeState::default();
        r.read_struct(|key, r| {
            match key {
                b"Name" => m.name = r.str()?,
                b"Addr" => m.addr = r.bytes()?,
                b"Port" => m.port = r.uint()?,
                b"Meta" => m.meta = r.bytes()?,
                b"Incarnation" => m.incarnation = r.uint()?,
                b"State" => m.state = NodeStateType(r.int()?),
                b"Vsn" => m.vsn = r.bytes()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    /// Appends the record, keys sorted as Go writes them.
    pub(crate) fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::map_header(out, 7);
        write::key(out, "Addr");
        write::opt_raw(out, self.addr)?;
        write::key(out, "Incarnation");
        write::uint(out, self.incarnation.into());
        write::key(out, "Meta");
        write::opt_raw(out, self.meta)?;
        write::key(out, "Name");
        write::raw(out, self.name.as_bytes())?;
        write::key(out, "Port");
        write::uint(out, self.port.into());
        write::key(out, "State");
        write::int(out, self.state.0);
        write::key(out, "Vsn");
        write::opt_raw(out, self.vsn)
    }
}

/// `userMsgHeader`: the length of the raw user message that follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct UserMsgHeader {
    /// `UserMsgLen` (a Go `int`).
    pub(crate) user_msg_len: u32,
}

impl<'a> Body<'a> for UserMsgHeader {
    const TYPE: MessageType = MessageType::User;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = UserMsgHeader::default();
        r.read_struct(|key, r| {
            match key {
                b"UserMsgLen" => m.user_msg_len = count(r)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::map_header(out, 1);
        write::key(out, "UserMsgLen");
        write::uint(out, self.user_msg_len.into());
        Ok(())
    }
}

/// `errResp`: the text of an error the stream's peer hit reading our
/// request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrResp<'a> {
    /// `Error`.
    pub(crate) error: &'a str,
}

impl<'a> Body<'a> for ErrResp<'a> {
    const TYPE: MessageType = MessageType::Err;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = ErrResp::default();
        r.read_struct(|key, r| {
            match key {
                b"Error" => m.error = r.str()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::map_header(out, 1);
        write::key(out, "Error");
        write::raw(out, self.error.as_bytes())
    }
}

/// One stream message, borrowing from the (opened) stream bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamMessage<'a> {
    /// `pushPullMsg`: a member table and the delegate's state.
    PushPull {
        /// The header's `Join`.
        join: bool,
        /// The records, as many as the header's `Nodes`.
        nodes: Vec<PushNodeState<'a>>,
        /// The delegate's state, the header's `UserStateLen` bytes.
        user_state: &'a [u8],
    },
    /// `userMsg`: the header's `UserMsgLen` raw bytes.
    User(&'a [u8]),
    /// `pingMsg`: the fallback (TCP) ping.
    Ping(Ping<'a>),
    /// `ackRespMsg`: the answer to it.
    Ack(Ack<'a>),
    /// `errMsg`.
    Err(ErrResp<'a>),
}

impl<'a> StreamMessage<'a> {
    /// Decodes a plain stream message (type byte first; see
    /// [`open_stream`] for compressed ones). Bytes after it are ignored,
    /// as memberlist reads one message per connection.
    ///
    /// A push-pull's node count is checked against what is left of the
    /// input and [`Limits::max_nodes`] before anything is allocated.
    pub(crate) fn decode(bytes: &'a [u8], limits: &Limits) -> Result<Self, Error> {
        Self::decode_prefix(bytes, limits).map(|(m, _)| m)
    }

    /// [`StreamMessage::decode`], with how many bytes the message took.
    pub(crate) fn decode_prefix(bytes: &'a [u8], limits: &Limits) -> Result<(Self, usize), Error> {
        let (&t, body) = bytes.split_first().ok_or(Error::Truncated)?;
        let Some(ty) = MessageType::from_byte(t) else { return Err(Error::UnknownType(t)) };
        let mut r = Reader::new(body);
        let m = match ty {
            MessageType::PushPull => {
                let header = PushPullHeader::read(&mut r)?;
                let n = usize::try_from(header.nodes).map_err(|_| Error::Oversized)?;
                if n > limits.max_nodes {
                    return Err(Error::Oversized);
                }
                // Every record takes a byte at least (an empty map).
                if n > r.rest().len() {
                    return Err(Error::Truncated);
                }
                let mut nodes = Vec::new();
                nodes.try_reserve_exact(n).map_err(|_| Error::Oversized)?;
                for _ in 0..n {
                    nodes.push(PushNodeState::read(&mut r)?);
                }
                let len = usize::try_from(header.user_state_len).map_err(|_| Error::Truncated)?;
                let user_state = r.take(len)?;
                StreamMessage::PushPull { join: header.join, nodes, user_state }
            }
            MessageType::User => {
                let header = UserMsgHeader::read(&mut r)?;
                let len = usize::try_from(header.user_msg_len).map_err(|_| Error::Truncated)?;
                StreamMessage::User(r.take(len)?)
            }
            MessageType::Ping => StreamMessage::Ping(Ping::read(&mut r)?),
            MessageType::AckResp => StreamMessage::Ack(Ack::read(&mut r)?),
            MessageType::Err => StreamMessage::Err(ErrResp::read(&mut r)?),
            _ => return Err(Error::UnexpectedType(t)),
        };
        Ok((m, bytes.len() - r.rest().len()))
    }

    /// Appends the message as memberlist writes it (uncompressed,
    /// unencrypted). On error nothing is appended.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::atomically(out, |out| match self {
            StreamMessage::PushPull { join, nodes, user_state } => {
                let header = PushPullHeader {
                    nodes: u32::try_from(nodes.len()).map_err(|_| EncodeError::TooLong)?,
                    user_state_len: u32::try_from(user_state.len()).map_err(|_| EncodeError::TooLong)?,
                    join: *join,
                };
                header.encode(out)?;
                for node in nodes {
                    node.write(out)?;
                }
                out.extend_from_slice(user_state);
                Ok(())
            }
            StreamMessage::User(payload) => {
                let len = u32::try_from(payload.len()).map_err(|_| EncodeError::TooLong)?;
                UserMsgHeader { user_msg_len: len }.encode(out)?;
                out.extend_from_slice(payload);
                Ok(())
            }
            StreamMessage::Ping(m) => m.encode(out),
            StreamMessage::Ack(m) => m.encode(out),
            StreamMessage::Err(m) => m.encode(out),
        })
    }
}

/// A stream's message bytes once compression is undone: borrowed when the
/// stream was plain, owned when it was decompressed (or decrypted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamBytes<'a> {
    /// The stream's own bytes.
    Borrowed(&'a [u8]),
    /// Bytes produced from them.
    Owned(Vec<u8>),
}

impl StreamBytes<'_> {
    /// The message bytes, type byte first.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            StreamBytes::Borrowed(b) => b,
            StreamBytes::Owned(v) => v,
        }
    }
}

/// Undoes a stream's compression, as memberlist's `readStream` does: a
/// `compressMsg` first byte is followed by one `compress` value whose
/// decompressed bytes (at most [`Limits::max_inflated`]) are the message,
/// type byte first. An `encryptMsg` first byte is [`Error::Encrypted`]:
/// open it first (`encrypt::open_stream`, with the `encryption` feature).
pub(crate) fn open_stream<'a>(bytes: &'a [u8], limits: &Limits) -> Result<StreamBytes<'a>, Error> {
    let (&t, body) = bytes.split_first().ok_or(Error::Truncated)?;
    if t == MessageType::Encrypt as u8 {
        return Err(Error::Encrypted);
    }
    if t != MessageType::Compress as u8 {
        return Ok(StreamBytes::Borrowed(bytes));
    }
    let mut out = Vec::new();
    Compress::decode(body)?.decompress_into(&mut out, limits.max_inflated)?;
    Ok(StreamBytes::Owned(out))
}

/// How many bytes the first whole message of a memberlist stream takes,
/// read from what has arrived so far (`bytes`): `None` while it is still
/// incomplete. memberlist streams carry no length prefix, so a runtime
/// reading one finds each message's end here: an encrypted message by
/// its length header (up to [`MAX_STREAM_PAYLOAD`](super::encrypt) bytes,
/// 20 MiB), a compressed one by its wrapper, a plain one by decoding it
/// (within `limits`). Anything else is an error: the stream is junk.
pub(crate) fn message_len(bytes: &[u8], limits: &Limits) -> Result<Option<usize>, Error> {
    use super::message::Body;
    /// memberlist's bound on an encrypted stream message.
    const MAX_SEALED: usize = 20 * 1024 * 1024;
    let incomplete = |r: Result<usize, Error>| match r {
        Ok(n) => Ok(Some(n)),
        Err(Error::Truncated) => Ok(None),
        Err(e) => Err(e),
    };
    let Some((&t, body)) = bytes.split_first() else { return Ok(None) };
    if t == MessageType::Encrypt as u8 {
        let Some(len) = body.first_chunk::<4>() else { return Ok(None) };
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| Error::Oversized)?;
        if len > MAX_SEALED {
            return Err(Error::Oversized);
        }
        let whole = 5 + len;
        return Ok((bytes.len() >= whole).then_some(whole));
    }
    if t == MessageType::Compress as u8 {
        let mut r = Reader::new(body);
        return incomplete(super::compress::Compress::read(&mut r).map(|_| bytes.len() - r.rest().len()));
    }
    incomplete(StreamMessage::decode_prefix(bytes, limits).map(|(_, n)| n))
}
