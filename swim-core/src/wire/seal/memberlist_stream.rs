//! The envelope of stream frames in memberlist 0.2.2's format
//! ([`Config::memberlist_wire`](crate::Config::memberlist_wire)): our
//! frames become memberlist's stream messages (a sync's frames are
//! gathered into one push-pull), sealed as memberlist seals a stream
//! (`encryptMsg`, version 1) when we seal; memberlist's messages are
//! opened with our keys and decompressed.

use alloc::vec::Vec;

use super::Envelope;
use crate::api::StreamId;
use crate::wire::memberlist::Limits;
use crate::wire::memberlist::dialect::decode_error;
use crate::wire::memberlist::message::MessageType;
use crate::wire::memberlist::stream::{StreamMessage, open_stream};
use crate::wire::memberlist::stream_dialect::{Written, encode_frame};
use crate::wire::{self, DecodeError, Messages, PacketWriter};

impl Envelope {
    /// Our frame for stream `id` (made with [`Envelope::layout`]), as it
    /// goes on the wire: in our format, or in memberlist's when datagrams
    /// are. Empty when there is nothing to send yet (a sync's frame
    /// before its last) or at all (nothing memberlist has a word for).
    pub(crate) fn close_frame(&mut self, id: StreamId, writer: PacketWriter) -> Vec<u8> {
        if !self.memberlist {
            return self.close(writer, super::Channel::Frame);
        }
        let layout = writer.layout();
        let buf = writer.into_buffer();
        let mut msgs = Messages::new();
        let mut draft = self.drafts.remove(&id);
        let mut plain = Vec::new();
        // Our own writer made the frame, and every message we write
        // encodes in memberlist's format: neither fails.
        let written = match wire::decode_body(buf.get(layout.head..).unwrap_or_default(), &mut msgs) {
            Ok(()) => {
                encode_frame(&msgs, self.flavour, &self.heard, &mut draft, &mut plain).unwrap_or(Written::Nothing)
            }
            Err(_) => Written::Nothing,
        };
        if written == Written::Pending
            && let Some(d) = draft
        {
            self.drafts.insert(id, d);
        }
        if written != Written::Message {
            return Vec::new();
        }
        self.seal_memberlist(plain, super::Channel::Frame)
    }

    /// Ends a batch of [`Envelope::close_frame`] calls: a sync's frames
    /// are all queued at once, so no draft outlives the batch.
    pub(crate) fn end_frames(&mut self) {
        debug_assert!(self.drafts.is_empty(), "a sync's frames were queued without their end");
        self.drafts.clear();
    }

    /// A memberlist stream message (one whole message, as
    /// [`Config::memberlist_frame_len`](crate::Config::memberlist_frame_len)
    /// cuts them), opened with our keys when it is sealed and
    /// decompressed into `scratch`, which the message borrows. Refused
    /// when it is plain and we refuse plaintext. Changes nothing.
    pub(crate) fn decode_memberlist_stream<'b>(
        &self,
        frame: &[u8],
        scratch: &'b mut Vec<u8>,
    ) -> Result<StreamMessage<'b>, DecodeError> {
        let (&first, _) = frame.split_first().ok_or(DecodeError::Empty)?;
        let opened;
        let plain = if first == MessageType::Encrypt as u8 {
            opened = self.open_memberlist_stream(frame)?;
            opened.as_slice()
        } else if self.requires_seal() {
            return Err(DecodeError::Plaintext);
        } else {
            frame
        };
        let limits = Limits::STREAM;
        let message = open_stream(plain, &limits).map_err(decode_error)?;
        scratch.clear();
        scratch.extend_from_slice(message.as_slice());
        let scratch: &'b [u8] = scratch;
        StreamMessage::decode(scratch, &limits).map_err(decode_error)
    }

    #[cfg(feature = "encryption")]
    fn open_memberlist_stream(&self, frame: &[u8]) -> Result<Vec<u8>, DecodeError> {
        use wire::memberlist::encrypt::{MAX_STREAM_PAYLOAD, open_stream};
        if self.ciphers.is_empty() {
            return Err(DecodeError::Sealed);
        }
        open_stream(&self.ciphers, frame, MAX_STREAM_PAYLOAD).map(|(plain, _)| plain).map_err(decode_error)
    }

    #[cfg(not(feature = "encryption"))]
    fn open_memberlist_stream(&self, _: &[u8]) -> Result<Vec<u8>, DecodeError> {
        Err(DecodeError::Sealed)
    }
}
