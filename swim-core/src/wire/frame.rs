//! The envelope around every datagram and stream frame: version, flags,
//! the cluster label, then either the messages and a checksum (plain) or
//! a nonce, the encrypted messages and a tag (sealed).
//!
//! ```text
//! +---------+-------+-----------------------+------------------------------+
//! | version | flags | [label len | label]   | plain:  messages... | crc32  |
//! |  (1)    |  (1)  |  if flags & LABELLED  | sealed: nonce | ciphertext | tag |
//! +---------+-------+-----------------------+------------------------------+
//! ```
//!
//! A sealed body's plaintext is the sender's name (a length byte, then
//! the name) followed by the messages. The header (version, flags, label)
//! and a byte naming the channel (datagram or frame, not sent) are its
//! associated data, so none of them can be changed in flight. The CRC-32 of a plain packet
//! covers every byte before it: TCP and UDP checksums are weak (16 bits,
//! and UDP's is optional over IPv4), and a flipped bit in a name would
//! otherwise become a member.

use core::fmt;

use super::{DecodeError, VERSION};

/// Flag: the body is sealed (AES-256-GCM).
pub const FLAG_SEALED: u8 = 0x01;
/// Flag: a cluster label follows the flags.
pub const FLAG_LABELLED: u8 = 0x02;
/// Bytes of the checksum after a plain body.
pub const CHECKSUM_LEN: usize = 4;
/// Bytes a seal adds to a plain header: a 12-byte nonce and a 16-byte tag.
pub const SEAL_LEN: usize = 12 + 16;

/// The most bytes the sender's name takes inside a sealed body: a length
/// byte and a name of [`MAX_NAME_LEN`](crate::util::name::MAX_NAME_LEN) bytes.
pub const MAX_SENDER_LEN: usize = 1 + super::MAX_NAME_LEN;

/// The most bytes an envelope with `label` adds to the messages: sealed,
/// by a member with the longest name.
pub const fn max_overhead(label: &Label) -> usize {
    2 + label.wire_len() + SEAL_LEN + MAX_SENDER_LEN
}

/// The longest cluster label, in bytes.
pub const MAX_LABEL_LEN: usize = 255;

/// A cluster label: members whose labels differ never accept each other's
/// packets, encrypted or not, so two clusters on one network never merge.
/// Empty (no label) by default; at most [`MAX_LABEL_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Label {
    len: u8,
    bytes: [u8; MAX_LABEL_LEN],
}

impl Label {
    /// No label.
    pub const EMPTY: Label = Label { len: 0, bytes: [0; MAX_LABEL_LEN] };

    /// A label of up to 255 bytes; `None` if it is longer.
    pub fn new(label: &str) -> Option<Self> {
        Self::from_bytes(label.as_bytes())
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        let len = u8::try_from(b.len()).ok()?;
        let mut bytes = [0; MAX_LABEL_LEN];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(Label { len, bytes })
    }

    /// The label's bytes (empty for none).
    pub fn as_bytes(&self) -> &[u8] {
        // `len` never exceeds the array: `from_bytes` checked it.
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Whether there is no label.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Header bytes the label takes in every packet.
    pub const fn wire_len(&self) -> usize {
        if self.len == 0 { 0 } else { 1 + self.len as usize }
    }
}

impl Default for Label {
    fn default() -> Self {
        Label::EMPTY
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Label({:?})", core::str::from_utf8(self.as_bytes()).unwrap_or("<bytes>"))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_bytes())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = <alloc::vec::Vec<u8>>::deserialize(d)?;
        Label::from_bytes(&bytes).ok_or_else(|| serde::de::Error::custom("label longer than 255 bytes"))
    }
}

/// Bytes a packet keeps before and after its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Header (and nonce) bytes before the messages.
    pub head: usize,
    /// Checksum or tag bytes after them.
    pub tail: usize,
}

impl Layout {
    /// A plain packet without a label.
    pub const PLAIN: Layout = Layout { head: 2, tail: CHECKSUM_LEN };

    /// A plain packet carrying `label`.
    pub const fn plain(label: &Label) -> Layout {
        Layout { head: 2 + label.wire_len(), tail: CHECKSUM_LEN }
    }

    #[cfg(any(test, fuzzing, feature = "internals"))]
    /// Bytes the envelope adds to the messages.
    pub const fn overhead(self) -> usize {
        self.head + self.tail
    }
}

/// Writes the header for `flags` and `label` into the first bytes of
/// `buf` (which the layout reserved) and returns its length.
pub(crate) fn write_header(buf: &mut [u8], flags: u8, label: &Label) -> usize {
    let flags = if label.is_empty() { flags } else { flags | FLAG_LABELLED };
    let mut n = 0;
    for b in [VERSION, flags] {
        if let Some(slot) = buf.get_mut(n) {
            *slot = b;
        }
        n += 1;
    }
    if !label.is_empty() {
        if let Some(slot) = buf.get_mut(n) {
            *slot = label.len;
        }
        n += 1;
        if let Some(dst) = buf.get_mut(n..n + label.as_bytes().len()) {
            dst.copy_from_slice(label.as_bytes());
        }
        n += label.as_bytes().len();
    }
    n
}

/// Appends the checksum of everything in `buf`.
pub(crate) fn append_checksum(buf: &mut alloc::vec::Vec<u8>) {
    let sum = crc32fast::hash(buf);
    buf.extend_from_slice(&sum.to_be_bytes());
}

#[cfg(any(test, fuzzing, feature = "internals"))]
/// Writes into `buf` (cleared first) a plain, unlabelled packet around
/// `messages`, already encoded: header, the bytes as given, checksum. For
/// tools and tests that build packets from raw message bytes; whether
/// they decode is the receiver's business.
pub fn plain_packet(messages: &[u8], buf: &mut alloc::vec::Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[VERSION, 0]);
    buf.extend_from_slice(messages);
    append_checksum(buf);
}

/// A packet's header, parsed and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// Whether the body is sealed.
    pub sealed: bool,
    /// The label (empty for none).
    pub label: &'a [u8],
    /// The header's bytes: the associated data of a sealed body.
    pub bytes: &'a [u8],
    /// Everything after the header.
    pub body: &'a [u8],
}

impl<'a> Header<'a> {
    /// Parses the header of a packet of at most `limit` bytes.
    pub fn parse(packet: &'a [u8], limit: usize) -> Result<Self, DecodeError> {
        if packet.len() > limit {
            return Err(DecodeError::Oversized);
        }
        let [version, rest @ ..] = packet else { return Err(DecodeError::Empty) };
        if *version != VERSION {
            return Err(DecodeError::Version);
        }
        let [flags, rest @ ..] = rest else { return Err(DecodeError::Truncated) };
        if flags & !(FLAG_SEALED | FLAG_LABELLED) != 0 {
            return Err(DecodeError::Malformed);
        }
        let (label, body) = if flags & FLAG_LABELLED != 0 {
            let [len, rest @ ..] = rest else { return Err(DecodeError::Truncated) };
            let len = usize::from(*len);
            if len == 0 {
                return Err(DecodeError::Malformed);
            }
            if rest.len() < len {
                return Err(DecodeError::Truncated);
            }
            rest.split_at(len)
        } else {
            (&[][..], rest)
        };
        let header_len = packet.len() - body.len();
        let bytes = packet.get(..header_len).ok_or(DecodeError::Truncated)?;
        Ok(Header { sealed: flags & FLAG_SEALED != 0, label, bytes, body })
    }

    /// The messages of a plain packet, its checksum verified.
    pub fn plain_body(&self) -> Result<&'a [u8], DecodeError> {
        if self.sealed {
            return Err(DecodeError::Sealed);
        }
        let Some(split) = self.body.len().checked_sub(CHECKSUM_LEN) else {
            return Err(DecodeError::Truncated);
        };
        let (msgs, sum) = self.body.split_at(split);
        let mut h = crc32fast::Hasher::new();
        h.update(self.bytes);
        h.update(msgs);
        if h.finalize().to_be_bytes() != sum {
            return Err(DecodeError::Checksum);
        }
        Ok(msgs)
    }
}
