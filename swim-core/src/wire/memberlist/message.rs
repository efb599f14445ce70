//! Message types, the [`Body`] trait every msgpack-encoded message
//! implements, and [`Message`], one datagram-borne message.

use alloc::vec::Vec;

use super::error::{EncodeError, Error};
use super::gossip::{Alive, Dead, Suspect};
use super::msgpack::read::Reader;
use super::msgpack::write;
use super::probe::{Ack, IndirectPing, Nack, Ping};

/// The first byte of every memberlist message, numbered exactly as the
/// `messageType` constants of memberlist 0.2.2 (`net.go`, an `iota`
/// list in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum MessageType {
    /// `pingMsg`: a direct probe.
    Ping = 0,
    /// `indirectPingMsg`: a request to probe on our behalf.
    IndirectPing = 1,
    /// `ackRespMsg`: the answer to a ping.
    AckResp = 2,
    /// `suspectMsg`: gossip that a node is suspected.
    Suspect = 3,
    /// `aliveMsg`: gossip that a node is alive (and joins).
    Alive = 4,
    /// `deadMsg`: gossip that a node is dead (or left).
    Dead = 5,
    /// `pushPullMsg`: a full-state exchange, on streams only.
    PushPull = 6,
    /// `compoundMsg`: several messages in one datagram.
    Compound = 7,
    /// `userMsg`: application bytes.
    User = 8,
    /// `compressMsg`: an LZW-compressed message.
    Compress = 9,
    /// `encryptMsg`: an encrypted stream payload (datagrams carry no type
    /// byte before their ciphertext).
    Encrypt = 10,
    /// `nackRespMsg`: an indirect probe that got no answer.
    NackResp = 11,
    /// `hasCrcMsg`: a CRC32 before the rest of a datagram.
    HasCrc = 12,
    /// `errMsg`: a stream peer's error text.
    Err = 13,
}

impl MessageType {
    /// The type a byte names, if memberlist 0.2.2 defines it.
    pub(crate) const fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => MessageType::Ping,
            1 => MessageType::IndirectPing,
            2 => MessageType::AckResp,
            3 => MessageType::Suspect,
            4 => MessageType::Alive,
            5 => MessageType::Dead,
            6 => MessageType::PushPull,
            7 => MessageType::Compound,
            8 => MessageType::User,
            9 => MessageType::Compress,
            10 => MessageType::Encrypt,
            11 => MessageType::NackResp,
            12 => MessageType::HasCrc,
            13 => MessageType::Err,
            _ => return None,
        })
    }
}

/// A message whose body is one msgpack-encoded Go struct.
pub(crate) trait Body<'a>: Sized {
    /// The type byte that precedes the body.
    const TYPE: MessageType;

    /// Reads the struct from `r`. Values borrow from the input.
    fn read(r: &mut Reader<'a>) -> Result<Self, Error>;

    /// Appends the struct's msgpack encoding, byte for byte as Go's codec
    /// writes it (keys sorted by Go field name, smallest integers).
    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// Decodes a body that follows its type byte. Bytes after the struct
    /// are ignored, as the Go decoder reads one value and stops.
    fn decode(body: &'a [u8]) -> Result<Self, Error> {
        Self::read(&mut Reader::new(body))
    }

    /// Appends the type byte and the body, as memberlist's `encode(msgType,
    /// in)` does. On error nothing is appended.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::atomically(out, |out| {
            out.push(Self::TYPE as u8);
            self.write(out)
        })
    }
}

/// One message of those a datagram carries (after its CRC, compound and
/// compression layers are taken off), borrowing from the bytes it was
/// decoded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Message<'a> {
    /// `pingMsg`.
    Ping(Ping<'a>),
    /// `indirectPingMsg`.
    IndirectPing(IndirectPing<'a>),
    /// `ackRespMsg`.
    Ack(Ack<'a>),
    /// `nackRespMsg`.
    Nack(Nack),
    /// `suspectMsg`.
    Suspect(Suspect<'a>),
    /// `aliveMsg`.
    Alive(Alive<'a>),
    /// `deadMsg`.
    Dead(Dead<'a>),
    /// `userMsg`: everything after the type byte is the application's.
    User(&'a [u8]),
}

impl<'a> Message<'a> {
    /// Decodes one message: a type byte, then its body. A container type
    /// (compound, compressed, CRC) is [`Error::UnexpectedType`] here:
    /// [`Unpacked`](super::packet::Unpacked) takes containers apart.
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, Error> {
        let (&t, body) = bytes.split_first().ok_or(Error::Truncated)?;
        let Some(ty) = MessageType::from_byte(t) else { return Err(Error::UnknownType(t)) };
        Ok(match ty {
            MessageType::Ping => Message::Ping(Ping::decode(body)?),
            MessageType::IndirectPing => Message::IndirectPing(IndirectPing::decode(body)?),
            MessageType::AckResp => Message::Ack(Ack::decode(body)?),
            MessageType::NackResp => Message::Nack(Nack::decode(body)?),
            MessageType::Suspect => Message::Suspect(Suspect::decode(body)?),
            MessageType::Alive => Message::Alive(Alive::decode(body)?),
            MessageType::Dead => Message::Dead(Dead::decode(body)?),
            MessageType::User => Message::User(body),
            MessageType::PushPull
            | MessageType::Compound
            | MessageType::Compress
            | MessageType::Encrypt
            | MessageType::HasCrc
            | MessageType::Err => return Err(Error::UnexpectedType(t)),
        })
    }

    /// Appends the message (type byte and body) as Go encodes it. On error
    /// nothing is appended.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Message::Ping(m) => m.encode(out),
            Message::IndirectPing(m) => m.encode(out),
            Message::Ack(m) => m.encode(out),
            Message::Nack(m) => m.encode(out),
            Message::Suspect(m) => m.encode(out),
            Message::Alive(m) => m.encode(out),
            Message::Dead(m) => m.encode(out),
            Message::User(payload) => {
                out.push(MessageType::User as u8);
                out.extend_from_slice(payload);
                Ok(())
            }
        }
    }

    /// The message's type byte.
    pub(crate) fn message_type(&self) -> MessageType {
        match self {
            Message::Ping(_) => MessageType::Ping,
            Message::IndirectPing(_) => MessageType::IndirectPing,
            Message::Ack(_) => MessageType::AckResp,
            Message::Nack(_) => MessageType::NackResp,
            Message::Suspect(_) => MessageType::Suspect,
            Message::Alive(_) => MessageType::Alive,
            Message::Dead(_) => MessageType::Dead,
            Message::User(_) => MessageType::User,
        }
    }
}
