//! The wire codec: bytes in, borrowed [`Message`]s out, and back.
//!
//! This module knows bytes, not members. A plain datagram is
//!
//! ```text
//! +---------+-------+-----------+-----------+-----+--------+
//! | version | flags | message 1 | message 2 | ... | crc32  |
//! +---------+-------+-----------+-----------+-----+--------+
//! ```
//!
//! where `version` is [`VERSION`], the [`frame`] header may carry a
//! cluster label, and each message is a postcard-encoded [`Message`] (its
//! first varint is the message kind). Messages are self-delimiting, so a
//! compound packet needs no length table. A sealed packet carries a nonce,
//! the encrypted messages and a tag instead. `docs/protocol.md` specifies
//! every byte.
//!
//! Decoding never panics and never allocates: it checks the whole datagram
//! before the state machine sees any of it, so a packet is applied entirely
//! or not at all.

pub(crate) mod frame;
#[cfg(feature = "encryption")]
pub(crate) mod keyring;
mod message;
pub(crate) mod seal;

#[cfg(any(test, fuzzing, feature = "internals"))]
pub(crate) use frame::Header;
pub use frame::Label;
pub(crate) use frame::Layout;
pub use message::Message;

use alloc::vec::Vec;
use core::fmt;
use serde::Deserialize;

use crate::util::name::MAX_NAME_LEN;

/// The protocol version, the first byte of every datagram and frame.
pub const VERSION: u8 = 2;

/// The largest datagram the codec builds or accepts, in bytes.
pub const MAX_DATAGRAM: usize = 1500;

/// The smallest packet budget a [`Config`](crate::Config) may set.
pub const MIN_PACKET_BUDGET: usize = 512;

/// The most messages one datagram or frame may carry.
pub const MAX_MESSAGES: usize = 128;

/// The largest stream frame payload the codec builds or accepts, in bytes
/// (the 4-byte length prefix not included). Runtimes close a stream whose
/// peer announces a longer frame.
pub const MAX_FRAME: usize = 64 * 1024;

/// The largest application payload (broadcast or direct message) the wire
/// carries, in bytes.
pub const MAX_PAYLOAD: usize = 1024;

/// The largest application state a sync carries, in bytes: it must fit one
/// frame beside its header.
pub const MAX_APP_STATE: usize = MAX_FRAME - 64;

/// The largest metadata the wire carries for one member, in bytes.
pub const MAX_META_LEN: usize = 512;

/// The longest encoding of an alive update with a name of
/// [`MAX_NAME_LEN`] bytes and `meta_len` bytes of metadata.
pub const fn max_alive_len(meta_len: usize) -> usize {
    // kind, incarnation varint, name length + name, address (variant,
    // 16 bytes, port varint), metadata length + metadata.
    1 + 5 + 2 + MAX_NAME_LEN + 1 + 16 + 3 + 2 + meta_len
}

/// Why a datagram was rejected. A rejected datagram changes no state; it is
/// counted in [`Stats::rejected`](crate::Stats::rejected) by reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram has no bytes or no message.
    Empty,
    /// The version byte is not [`VERSION`].
    Version,
    /// The datagram is longer than [`MAX_DATAGRAM`] (a frame than
    /// [`MAX_FRAME`]).
    Oversized,
    /// A message ends before its last field.
    Truncated,
    /// A message kind this version does not know.
    UnknownKind,
    /// A field does not decode (bad varint, bad address, ...).
    Malformed,
    /// A name is not UTF-8.
    BadUtf8,
    /// A name is empty or longer than [`MAX_NAME_LEN`].
    BadName,
    /// Metadata is longer than [`MAX_META_LEN`], a payload than
    /// [`MAX_PAYLOAD`] or an application state than [`MAX_APP_STATE`].
    MetaTooLong,
    /// More than [`MAX_MESSAGES`] messages in one datagram.
    TooManyMessages,
    /// A plain packet whose checksum does not match: corrupted in flight.
    Checksum,
    /// The cluster label is not ours: another cluster's traffic.
    Label,
    /// A plain packet while we require encryption.
    Plaintext,
    /// No installed key opens the sealed packet: a wrong key, or tampered
    /// with (AES-GCM cannot tell the two apart).
    Unauthenticated,
    /// A sealed packet, and we hold no key (or were built without the
    /// `encryption` feature).
    Sealed,
    /// A sealed stream frame that names another sender than the stream's
    /// first sealed frame: the stream is closed.
    Sender,
}

impl DecodeError {
    /// Every reason, in counter order.
    pub const ALL: [DecodeError; 16] = [
        DecodeError::Empty,
        DecodeError::Version,
        DecodeError::Oversized,
        DecodeError::Truncated,
        DecodeError::UnknownKind,
        DecodeError::Malformed,
        DecodeError::BadUtf8,
        DecodeError::BadName,
        DecodeError::MetaTooLong,
        DecodeError::TooManyMessages,
        DecodeError::Checksum,
        DecodeError::Label,
        DecodeError::Plaintext,
        DecodeError::Unauthenticated,
        DecodeError::Sealed,
        DecodeError::Sender,
    ];

    /// A stable index into [`DecodeError::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            DecodeError::Empty => "empty datagram",
            DecodeError::Version => "unsupported protocol version",
            DecodeError::Oversized => "datagram larger than the protocol allows",
            DecodeError::Truncated => "message truncated",
            DecodeError::UnknownKind => "unknown message kind",
            DecodeError::Malformed => "malformed field",
            DecodeError::BadUtf8 => "name is not UTF-8",
            DecodeError::BadName => "name empty or too long",
            DecodeError::MetaTooLong => "metadata too long",
            DecodeError::TooManyMessages => "too many messages in one datagram",
            DecodeError::Checksum => "checksum mismatch",
            DecodeError::Label => "wrong cluster label",
            DecodeError::Plaintext => "plaintext while encryption is required",
            DecodeError::Unauthenticated => "no installed key authenticates the packet",
            DecodeError::Sealed => "sealed packet and no key to open it",
            DecodeError::Sender => "a stream frame sealed by another sender than the stream's first",
        };
        f.write_str(what)
    }
}

impl core::error::Error for DecodeError {}

/// The decoded messages of one datagram, borrowing from it.
pub type Messages<'a> = heapless::Vec<Message<'a>, MAX_MESSAGES>;

#[cfg(any(test, fuzzing, feature = "internals"))]
/// Decodes and checks a whole plain datagram (any label) into `out`
/// (cleared first).
///
/// On `Err`, `out` holds an unspecified prefix and must not be applied.
pub fn decode<'a>(bytes: &'a [u8], out: &mut Messages<'a>) -> Result<(), DecodeError> {
    out.clear();
    let body = Header::parse(bytes, MAX_DATAGRAM)?.plain_body()?;
    decode_body(body, out)
}

#[cfg(any(fuzzing, feature = "internals"))]
/// Decodes and checks a whole plain stream frame's payload into `out`
/// (cleared first): the datagram layout, up to [`MAX_FRAME`] bytes.
pub fn decode_frame<'a>(bytes: &'a [u8], out: &mut Messages<'a>) -> Result<(), DecodeError> {
    out.clear();
    let body = Header::parse(bytes, MAX_FRAME)?.plain_body()?;
    decode_body(body, out)
}

/// Decodes and checks the messages of an opened packet (its envelope
/// removed) into `out` (cleared first).
pub fn decode_body<'a>(mut rest: &'a [u8], out: &mut Messages<'a>) -> Result<(), DecodeError> {
    out.clear();
    if rest.is_empty() {
        return Err(DecodeError::Empty);
    }
    while let Some(&kind) = rest.first() {
        // Kinds are small varints; anything else is a kind we do not know,
        // which postcard would only report as a generic serde error.
        if kind >= Message::KINDS {
            return Err(DecodeError::UnknownKind);
        }
        let mut de = postcard::Deserializer::from_bytes(rest);
        let msg = Message::deserialize(&mut de).map_err(map_postcard)?;
        rest = de.finalize().map_err(map_postcard)?;
        // Pushed, then checked where it lies: one move of the message
        // fewer on every record of every datagram.
        match out.push(msg) {
            Ok(()) => {
                if let Some(msg) = out.last() {
                    check(msg)?;
                }
            }
            Err(msg) => {
                check(&msg)?;
                return Err(DecodeError::TooManyMessages);
            }
        }
    }
    Ok(())
}

fn check(msg: &Message<'_>) -> Result<(), DecodeError> {
    let name_ok = |n: &str| !n.is_empty() && n.len() <= MAX_NAME_LEN;
    let ok = match msg {
        Message::Ping { target, .. } | Message::PingReq { target, .. } | Message::Query { name: target } => {
            name_ok(target)
        }
        Message::Alive { name, meta, .. } => {
            if meta.len() > MAX_META_LEN {
                return Err(DecodeError::MetaTooLong);
            }
            name_ok(name)
        }
        Message::Suspect { name, from, .. } | Message::Dead { name, from, .. } => name_ok(name) && name_ok(from),
        Message::User { from, payload, .. } | Message::Direct { from, payload } => {
            if payload.len() > MAX_PAYLOAD {
                return Err(DecodeError::MetaTooLong);
            }
            name_ok(from)
        }
        Message::AppState { state } => {
            if state.len() > MAX_APP_STATE {
                return Err(DecodeError::MetaTooLong);
            }
            true
        }
        Message::Ack { .. }
        | Message::Padding { .. }
        | Message::Nack { .. }
        | Message::SyncRequest { .. }
        | Message::SyncReply
        | Message::SyncEnd => true,
    };
    if ok { Ok(()) } else { Err(DecodeError::BadName) }
}

fn map_postcard(e: postcard::Error) -> DecodeError {
    use postcard::Error as P;
    match e {
        P::DeserializeUnexpectedEnd => DecodeError::Truncated,
        P::DeserializeBadEnum => DecodeError::UnknownKind,
        P::DeserializeBadUtf8 | P::DeserializeBadChar => DecodeError::BadUtf8,
        _ => DecodeError::Malformed,
    }
}

/// An encoded datagram.
///
/// Its buffer can be handed back to the state machine with
/// [`Swim::recycle`](crate::Swim::recycle) once sent, so that a runtime that
/// does so sends without allocating.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Datagram(Vec<u8>);

impl Datagram {
    /// The longest datagram a member sends or accepts, in bytes: a
    /// runtime's receive buffer needs one byte more, to tell an oversized
    /// datagram from one cut to size.
    pub const MAX_LEN: usize = MAX_DATAGRAM;
    /// The longest stream frame payload a member sends or accepts, in bytes.
    pub const MAX_FRAME_LEN: usize = MAX_FRAME;
}

impl Datagram {
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The encoded length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is encoded (never the case for a sent datagram).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The buffer, for reuse or to keep.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Datagram {
    /// Wraps bytes (or an empty buffer to hand to
    /// [`Swim::recycle`](crate::Swim::recycle)).
    fn from(v: Vec<u8>) -> Self {
        Datagram(v)
    }
}

impl core::ops::Deref for Datagram {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Datagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Datagram({} bytes)", self.0.len())
    }
}

/// The message did not fit in what is left of the packet budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Builds one datagram of at most `budget` bytes (envelope included),
/// message by message.
#[derive(Debug)]
pub struct PacketWriter {
    buf: Vec<u8>,
    budget: usize,
    count: usize,
    layout: Layout,
}

impl PacketWriter {
    /// A writer for a plain, unlabelled datagram of `budget` bytes in all
    /// (clamped to [`MAX_DATAGRAM`]).
    pub fn new(budget: usize) -> Self {
        Self::with_buffer(budget, Vec::new())
    }

    #[cfg(any(test, fuzzing, feature = "internals"))]
    /// A writer for one plain, unlabelled stream frame: up to
    /// [`MAX_FRAME`] bytes.
    pub fn frame(buf: Vec<u8>) -> Self {
        Self::with_layout(MAX_FRAME, buf, Layout::PLAIN)
    }

    /// Like [`PacketWriter::new`], writing into `buf` (cleared first), so a
    /// buffer can be reused.
    pub fn with_buffer(budget: usize, buf: Vec<u8>) -> Self {
        Self::with_layout(budget.min(MAX_DATAGRAM), buf, Layout::PLAIN)
    }

    /// A writer of `budget` bytes in all that keeps room for `layout`'s
    /// envelope (see [`frame`]).
    pub fn with_layout(budget: usize, mut buf: Vec<u8>, layout: Layout) -> Self {
        buf.clear();
        buf.reserve(budget.min(MAX_DATAGRAM));
        buf.resize(layout.head, 0);
        PacketWriter { buf, budget, count: 0, layout }
    }

    /// Appends one message, or leaves the packet unchanged if it does not fit.
    pub fn push(&mut self, msg: &Message<'_>) -> Result<(), Full> {
        self.push_within(msg, usize::MAX).map(|_| ())
    }

    /// Appends one message if its encoding takes at most `room` bytes and
    /// fits in the budget, returning its length; otherwise leaves the packet
    /// unchanged.
    pub(crate) fn push_within(&mut self, msg: &Message<'_>, room: usize) -> Result<usize, Full> {
        if self.count >= MAX_MESSAGES {
            return Err(Full);
        }
        let start = self.buf.len();
        let limit = start.saturating_add(room).min(self.budget.saturating_sub(self.layout.tail));
        // Encoded in place and stopped at the limit: one pass, no sizing
        // pass first and no copy.
        match postcard::serialize_with_flavor(msg, Bounded { buf: &mut self.buf, limit }) {
            Ok(()) => {
                self.count += 1;
                Ok(self.buf.len() - start)
            }
            Err(_) => {
                self.buf.truncate(start);
                Err(Full)
            }
        }
    }

    /// Appends one already encoded message (see [`encode_message`]).
    pub fn push_encoded(&mut self, encoded: &[u8]) -> Result<(), Full> {
        if self.count >= MAX_MESSAGES || encoded.len() > self.remaining() {
            return Err(Full);
        }
        self.buf.extend_from_slice(encoded);
        self.count += 1;
        Ok(())
    }

    /// Bytes still free within the budget.
    pub fn remaining(&self) -> usize {
        self.budget.saturating_sub(self.buf.len() + self.layout.tail)
    }

    /// The bytes the closed packet will take: what is written, with the
    /// envelope's room.
    pub(crate) fn size(&self) -> usize {
        self.buf.len() + self.layout.tail
    }

    /// Lowers the budget to `total` bytes in all (never raises it): what is
    /// written stays, later messages must fit the lower budget.
    pub(crate) fn cap(&mut self, total: usize) {
        self.budget = self.budget.min(total);
    }

    #[cfg(any(test, fuzzing, feature = "internals"))]
    /// Messages written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether no message has been written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The layout this writer keeps room for.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    #[cfg(any(test, fuzzing, feature = "internals"))]
    /// The finished plain datagram: header and checksum written. A writer
    /// made for a label or a seal gets an unlabelled plain header here; the
    /// state machine closes those itself.
    pub fn finish(mut self) -> Datagram {
        let head = frame::write_header(&mut self.buf, 0, &Label::EMPTY);
        if head != self.layout.head {
            // Not a plain layout: move the messages up against the header.
            self.buf.drain(head..self.layout.head.max(head));
        }
        frame::append_checksum(&mut self.buf);
        Datagram(self.buf)
    }

    /// The raw buffer (room for the header, then the messages).
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

/// postcard output that appends to a buffer and fails rather than grow it
/// past `limit` bytes.
struct Bounded<'a> {
    buf: &'a mut Vec<u8>,
    limit: usize,
}

impl postcard::ser_flavors::Flavor for Bounded<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() > self.limit.saturating_sub(self.buf.len()) {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        if self.buf.len() >= self.limit {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.buf.push(byte);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Encodes one message on its own (no version byte), for queues that keep
/// updates ready to piggyback.
pub fn encode_message(msg: &Message<'_>) -> Vec<u8> {
    // Encoding into a Vec cannot run out of room.
    postcard::to_allocvec(msg).unwrap_or_default()
}

#[cfg(test)]
mod tests;
