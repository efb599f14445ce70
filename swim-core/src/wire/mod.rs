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
#[allow(
    dead_code,
    reason = "memberlist's wire format, not wired into the state machine yet; its tests exercise all of it"
)]
pub(crate) mod memberlist;
mod message;
pub(crate) mod seal;
mod writer;

#[cfg(any(test, fuzzing, feature = "internals"))]
pub(crate) use frame::Header;
pub use frame::Label;
pub(crate) use frame::Layout;
pub use message::Message;
pub use writer::{Datagram, Full, PacketWriter, encode_message};

use core::fmt;
use serde::Deserialize;

use crate::util::name::MAX_NAME_LEN;

/// The protocol version, the first byte of every datagram and frame.
pub const VERSION: u8 = 3;

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

/// The longest Euclidean part of a coordinate the wire carries, in bytes
/// (16 dimensions).
pub const MAX_COORDINATE_BYTES: usize = 32;

/// The largest metadata the wire carries for one member, in bytes.
pub const MAX_META_LEN: usize = 512;

/// The longest encoding of an alive update with a name of
/// [`MAX_NAME_LEN`] bytes and `meta_len` bytes of metadata.
pub const fn max_alive_len(meta_len: usize) -> usize {
    // kind, incarnation varint, name length + name, address (variant,
    // 16 bytes, port varint), metadata length + metadata.
    1 + 5 + 2 + MAX_NAME_LEN + 1 + 16 + 3 + 2 + meta_len
}

/// Why a datagram or frame was rejected. Never an `Err` of
/// [`Swim::handle`](crate::Swim::handle): a rejected datagram changes no
/// state (a rejected frame ends its stream, nothing else) and is counted
/// in [`Stats::rejected`](crate::Stats::rejected) by reason, and reported
/// as [`Event::Rejected`](crate::Event::Rejected) when the configuration
/// asks for it.
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

#[cfg(any(test, fuzzing, feature = "internals"))]
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
        Message::Direct { from, payload } => {
            if payload.len() > MAX_PAYLOAD {
                return Err(DecodeError::MetaTooLong);
            }
            name_ok(from)
        }
        Message::User { from, name, payload, .. } => {
            if name.len() + payload.len() > MAX_PAYLOAD {
                return Err(DecodeError::MetaTooLong);
            }
            name_ok(from)
        }
        Message::Question { origin, name, payload, filter, .. } => {
            if name.len() + payload.len() + filter.len() > MAX_PAYLOAD {
                return Err(DecodeError::MetaTooLong);
            }
            name_ok(origin)
        }
        Message::Response { from, payload, .. } => {
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
        // Room for twice the dimensions this version uses: a member with
        // another count is told apart (and counted) by the state machine,
        // not by dropping the datagram its probe rides on.
        Message::Coordinate { vec, .. } => {
            if vec.len() > MAX_COORDINATE_BYTES {
                return Err(DecodeError::Malformed);
            }
            true
        }
        Message::SyncDigest { buckets, .. } => {
            let count = buckets.len() / crate::protocol::summary::BUCKET_BYTES;
            if buckets.len() % crate::protocol::summary::BUCKET_BYTES != 0
                || !crate::protocol::summary::valid_count(count)
            {
                return Err(DecodeError::Malformed);
            }
            true
        }
        Message::SyncDiff { buckets, .. } => {
            if buckets.len() > crate::protocol::summary::MAX_DIFF_BYTES {
                return Err(DecodeError::Malformed);
            }
            true
        }
        Message::Ack { .. }
        | Message::Clocks { .. }
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

#[cfg(test)]
mod tests;
