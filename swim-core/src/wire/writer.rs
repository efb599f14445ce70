//! Encoding: datagram buffers, the writer that packs messages into one
//! datagram within its budget, and single messages for the queues.

use alloc::vec::Vec;
use core::fmt;

use super::*;

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
    pub(super) buf: Vec<u8>,
    budget: usize,
    count: usize,
    pub(super) layout: Layout,
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
