//! The one way out: every datagram and event any component wants sent or
//! reported is queued here while an input is handled, then flushed into
//! the caller's actions in order.
//!
//! Invariants:
//! - datagrams leave in the order they were queued; piggybacked updates are
//!   packed at flush time, so a datagram queued early in a call also
//!   carries updates that the rest of the call produced;
//! - no datagram leaves empty, and none exceeds the packet budget;
//! - between calls it holds nothing but recycled buffers (at most
//!   [`MAX_SPARE_BUFFERS`]), so the steady state does not allocate.
//!
//! Sealing, recording and tracing of outgoing traffic belong at
//! [`Outbox::flush`], the single choke point.

use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::api::{Action, Event, StreamId};
use crate::protocol::retransmit::RetransmitQueue;
use crate::wire::seal::{Channel, Envelope};
use crate::wire::{Datagram, Layout, MAX_FRAME, Message, PacketWriter};

/// The most recycled buffers kept: enough for one call's burst of sends
/// in the steady state, small enough not to matter.
pub(crate) const MAX_SPARE_BUFFERS: usize = 8;

/// Room kept for queued items between calls. A table sync queues up to
/// 64 datagrams at once; keeping that room on every member of a large
/// cluster would cost more than reallocating on the rare burst.
pub(crate) const KEPT_CAPACITY: usize = 16;

/// The most padding one datagram carries: a datagram's whole size.
const MAX_FRAME_PAD: usize = crate::wire::MAX_DATAGRAM;

/// Whether a datagram may carry queued membership updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piggyback {
    /// Fill the rest of the budget from the update queue.
    Fill,
    /// Send exactly what was written (sync tables, query answers).
    None,
}

/// How a datagram queued while a received datagram is handled counts
/// against the bytes that datagram brought ([`Outbox::begin_reply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// The answer: counted when queued, so it is served first.
    Answer,
    /// Work the datagram caused beside the answer (a check of a death it
    /// reported, a ping to a name it introduced): served from what the
    /// answers left, in order, or not sent.
    Aside,
    /// Not counted: sent on a timer, or bounded by a rate of its own.
    Free,
}

/// What a received datagram may still draw.
#[derive(Clone, Copy, Debug)]
struct Reply {
    /// Bytes left for answers, asides and their piggybacked updates.
    left: usize,
    /// Bytes of the asides queued so far, taken from `left` at the flush.
    asides: usize,
}

enum Queued {
    Datagram { to: SocketAddr, writer: PacketWriter, piggyback: Piggyback, class: Class },
    Event(Event),
    Open { id: StreamId, to: SocketAddr },
    Frame { id: StreamId, writer: PacketWriter },
    Close { id: StreamId },
}

/// The queues piggybacked datagrams are filled from.
pub(crate) struct Piggybacks<'a> {
    /// Membership updates.
    pub(crate) members: &'a mut RetransmitQueue,
    /// Application broadcasts.
    pub(crate) user: &'a mut RetransmitQueue,
    /// Transmissions each update gets.
    pub(crate) limit: u32,
    /// Bytes of each datagram kept for broadcasts before membership.
    pub(crate) user_reserve: usize,
    /// Where members' records are encoded from.
    pub(crate) records: &'a dyn crate::protocol::retransmit::Records,
}

/// Datagrams and events waiting for the end of the current input.
pub(crate) struct Outbox {
    queued: Vec<Queued>,
    spare: Vec<Vec<u8>>,
    budget: usize,
    layout: Layout,
    /// Datagrams sent.
    pub(crate) packets_sent: u64,
    /// Bytes sent in datagrams.
    pub(crate) bytes_sent: u64,
    /// Stream frames sent.
    pub(crate) frames_sent: u64,
    /// Bytes sent in stream frames.
    pub(crate) frame_bytes_sent: u64,
    /// Datagrams not sent because the datagram they answered had no bytes
    /// left for them.
    pub(crate) replies_dropped: u64,
    /// Set while a received datagram is handled.
    reply: Option<Reply>,
}

impl Outbox {
    pub(crate) fn new(budget: usize) -> Self {
        Outbox {
            queued: Vec::new(),
            spare: Vec::new(),
            budget,
            layout: Layout::PLAIN,
            packets_sent: 0,
            bytes_sent: 0,
            frames_sent: 0,
            frame_bytes_sent: 0,
            replies_dropped: 0,
            reply: None,
        }
    }

    /// A datagram of `bytes` bytes arrived: until the next flush,
    /// everything sent because of it (answers first, then asides, then
    /// their piggybacked updates) takes at most `bytes` bytes in all, so a
    /// forged source draws no more traffic than it sent.
    pub(crate) fn begin_reply(&mut self, bytes: usize) {
        self.reply = Some(Reply { left: bytes, asides: 0 });
    }

    /// Whether a received datagram is being handled (its reply budget is
    /// open).
    pub(crate) fn in_reply(&self) -> bool {
        self.reply.is_some()
    }

    /// Sets `bytes` aside from the current reply for something sent later
    /// on its behalf (a relayed probe's ack or nack).
    pub(crate) fn reserve(&mut self, bytes: usize) {
        if let Some(r) = &mut self.reply {
            r.left = r.left.saturating_sub(bytes);
        }
    }

    /// The bytes a datagram of `msgs` alone takes, envelope included.
    /// Measured on the stack: it runs for every ping-req received.
    pub(crate) fn size_of(&self, msgs: &[Message<'_>]) -> usize {
        let mut scratch = [0u8; crate::wire::MAX_DATAGRAM];
        let body: usize = msgs.iter().map(|m| postcard::to_slice(m, &mut scratch).map_or(0, |b| b.len())).sum();
        self.layout.head + body + self.layout.tail
    }

    /// `w` with each of `msgs` that fits.
    fn written(mut w: PacketWriter, msgs: &[Message<'_>]) -> PacketWriter {
        for m in msgs {
            let _ = w.push(m);
        }
        w
    }

    /// Sets the room every packet keeps for its envelope (when the label
    /// or the keyring changes; nothing is queued then).
    pub(crate) fn set_layout(&mut self, layout: Layout) {
        self.layout = layout;
    }

    /// An empty datagram over a recycled buffer when there is one; while a
    /// received datagram is handled, no larger than what it has left.
    pub(crate) fn writer(&mut self) -> PacketWriter {
        let mut w = self.full_writer();
        if let Some(r) = self.reply {
            w.cap(r.left);
        }
        w
    }

    fn full_writer(&mut self) -> PacketWriter {
        PacketWriter::with_layout(self.budget, self.spare.pop().unwrap_or_default(), self.layout)
    }

    /// Queues a written datagram for `to`: while a received datagram is
    /// handled, as its answer.
    pub(crate) fn push(&mut self, to: SocketAddr, writer: PacketWriter, piggyback: Piggyback) {
        let class = match &mut self.reply {
            Some(r) => {
                if !writer.is_empty() {
                    r.left = r.left.saturating_sub(writer.size());
                }
                Class::Answer
            }
            None => Class::Free,
        };
        self.queued.push(Queued::Datagram { to, writer, piggyback, class });
    }

    /// Queues a datagram of `msgs` for `to` (each message that fits; while
    /// a received datagram is handled, as its answer).
    pub(crate) fn send(&mut self, to: SocketAddr, msgs: &[Message<'_>], piggyback: Piggyback) {
        let w = Self::written(self.writer(), msgs);
        self.push(to, w, piggyback);
    }

    /// Queues a datagram of `msgs` for `to` that is at least `room` bytes
    /// long (within the budget): padded so that the receiver, which
    /// answers with at most the bytes it got, has room for an answer of
    /// `room` bytes.
    pub(crate) fn send_padded(&mut self, to: SocketAddr, msgs: &[Message<'_>], room: usize, piggyback: Piggyback) {
        let mut w = Self::written(self.writer(), msgs);
        let short = room.min(self.budget).saturating_sub(w.size());
        if short > 0 {
            // A padding message is its kind, its length (a varint) and the
            // bytes: take one or two bytes off for the framing.
            let len = if short <= 129 { short.saturating_sub(2) } else { (short - 3).max(128) };
            let zeros = [0u8; MAX_FRAME_PAD];
            let len = len.min(zeros.len());
            let _ = w.push(&Message::Padding { bytes: zeros.get(..len).unwrap_or_default() });
        }
        self.push(to, w, piggyback);
    }

    /// The room an answer of `msgs` needs, built by another member: its
    /// own size, and the sender's name a sealed envelope carries, which
    /// may be longer than ours.
    pub(crate) fn answer_room(&self, msgs: &[Message<'_>]) -> usize {
        let sealed = self.layout.tail != Layout::PLAIN.tail;
        self.size_of(msgs) + if sealed { 1 + crate::util::name::MAX_NAME_LEN } else { 0 }
    }

    /// Queues a datagram of `msgs` for `to` that the datagram being handled
    /// caused beside its answer: sent only if the answers leave room for
    /// it (outside a received datagram, always).
    pub(crate) fn send_aside(&mut self, to: SocketAddr, msgs: &[Message<'_>]) {
        let w = Self::written(self.full_writer(), msgs);
        let class = match &mut self.reply {
            Some(r) => {
                r.asides += w.size();
                Class::Aside
            }
            None => Class::Free,
        };
        self.queued.push(Queued::Datagram { to, writer: w, piggyback: Piggyback::None, class });
    }

    /// [`Outbox::send_aside`] if the datagram being handled has room for
    /// it beside the answers and asides so far (outside one, always);
    /// whether it was queued.
    pub(crate) fn send_aside_if_room(&mut self, to: SocketAddr, msgs: &[Message<'_>]) -> bool {
        if let Some(r) = self.reply
            && self.size_of(msgs) + r.asides > r.left
        {
            return false;
        }
        self.send_aside(to, msgs);
        true
    }

    /// Queues a datagram of `msgs` for `to` that is not an answer to what
    /// is being handled: its rate has a bound of its own.
    pub(crate) fn send_free(&mut self, to: SocketAddr, msgs: &[Message<'_>], piggyback: Piggyback) {
        let w = Self::written(self.full_writer(), msgs);
        self.queued.push(Queued::Datagram { to, writer: w, piggyback, class: Class::Free });
    }

    /// An empty stream frame.
    pub(crate) fn frame_writer(&mut self) -> PacketWriter {
        PacketWriter::with_layout(MAX_FRAME, self.spare.pop().unwrap_or_default(), self.layout)
    }

    /// Asks the runtime to connect stream `id` to `to`.
    pub(crate) fn open(&mut self, id: StreamId, to: SocketAddr) {
        self.queued.push(Queued::Open { id, to });
    }

    /// Queues a written frame for stream `id` (an empty one is not sent).
    pub(crate) fn frame(&mut self, id: StreamId, writer: PacketWriter) {
        self.queued.push(Queued::Frame { id, writer });
    }

    /// Queues a frame of `msgs` for stream `id`.
    pub(crate) fn send_frame(&mut self, id: StreamId, msgs: &[Message<'_>]) {
        let w = Self::written(self.frame_writer(), msgs);
        self.frame(id, w);
    }

    /// Asks the runtime to close stream `id` after its frames.
    pub(crate) fn close(&mut self, id: StreamId) {
        self.queued.push(Queued::Close { id });
    }

    /// Queues an event.
    pub(crate) fn event(&mut self, e: Event) {
        self.queued.push(Queued::Event(e));
    }

    /// Takes back a sent datagram's buffer.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        // Frame-sized buffers are not kept: they would pin far more memory
        // than the datagrams they would serve.
        if self.spare.len() < MAX_SPARE_BUFFERS && (self.budget..=4 * self.budget).contains(&buf.capacity()) {
            self.spare.push(buf);
        }
    }

    /// Packs piggybacked updates (each counted as one transmission, up to
    /// `limit`), closes every packet in `envelope` and appends everything
    /// queued to `out`, in order.
    pub(crate) fn flush(&mut self, queues: Piggybacks<'_>, envelope: &mut Envelope, out: &mut Vec<Action>) {
        let Piggybacks { members, user, limit, user_reserve, records } = queues;
        let mut queued = core::mem::take(&mut self.queued);
        let mut reply = self.reply.take();
        if let Some(r) = &mut reply {
            // Asides get what the answers left, in the order they came.
            for q in &mut queued {
                if let Queued::Datagram { writer, class: class @ Class::Aside, .. } = q {
                    if writer.size() <= r.left {
                        r.left -= writer.size();
                        *class = Class::Answer;
                    } else {
                        let w = core::mem::replace(writer, PacketWriter::new(0));
                        self.recycle(w.into_buffer());
                        self.replies_dropped += 1;
                    }
                }
            }
        }
        for q in queued.drain(..) {
            match q {
                Queued::Event(e) => out.push(Action::Event(e)),
                Queued::Datagram { to, mut writer, piggyback, class } => {
                    let size = writer.size();
                    if let (Some(r), Class::Answer | Class::Aside) = (&reply, class) {
                        writer.cap(size + r.left);
                    }
                    if piggyback == Piggyback::Fill {
                        // Broadcasts first, up to their reserve; membership
                        // next; broadcasts again in whatever room is left.
                        if !user.is_empty() {
                            user.fill_upto(&mut writer, limit, user_reserve, true, records);
                        }
                        members.fill(&mut writer, limit, records);
                        if !user.is_empty() {
                            user.fill_upto(&mut writer, limit, usize::MAX, false, records);
                        }
                    }
                    if let (Some(r), Class::Answer | Class::Aside) = (&mut reply, class) {
                        r.left = r.left.saturating_sub(writer.size() - size);
                    }
                    if writer.is_empty() {
                        self.recycle(writer.into_buffer());
                        continue;
                    }
                    let packet = Datagram::from(envelope.close(writer, Channel::Datagram));
                    if packet.is_empty() {
                        // Nothing memberlist's format has a word for.
                        continue;
                    }
                    // Memberlist's format spells out field names: the same
                    // messages take more bytes than in ours.
                    debug_assert!(
                        packet.len() <= self.budget || envelope.is_memberlist(),
                        "a datagram of {} bytes, budget {}",
                        packet.len(),
                        self.budget
                    );
                    self.packets_sent += 1;
                    self.bytes_sent += packet.len() as u64;
                    out.push(Action::Send { to, packet });
                }
                Queued::Open { id, to } => out.push(Action::OpenStream { id, to }),
                Queued::Frame { id, writer } => {
                    if writer.is_empty() {
                        self.recycle(writer.into_buffer());
                        continue;
                    }
                    let frame = Datagram::from(envelope.close_frame(id, writer));
                    if frame.is_empty() {
                        // A sync's frame gathered for memberlist's
                        // push-pull, or nothing memberlist has a word for.
                        continue;
                    }
                    self.frames_sent += 1;
                    self.frame_bytes_sent += frame.len() as u64;
                    out.push(Action::SendFrame { id, frame });
                }
                Queued::Close { id } => out.push(Action::CloseStream { id }),
            }
        }
        envelope.end_frames();
        queued.shrink_to(KEPT_CAPACITY);
        debug_assert!(self.queued.is_empty(), "nothing was queued while flushing");
        self.queued = queued;
    }
}
