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

use crate::broadcast::BroadcastQueue;
use crate::envelope::{Channel, Envelope};
use crate::io::{Action, Event, StreamId};
use crate::wire::{Datagram, Layout, MAX_FRAME, Message, PacketWriter};

/// The most recycled buffers kept: enough for one call's burst of sends
/// in the steady state, small enough not to matter.
pub(crate) const MAX_SPARE_BUFFERS: usize = 8;

/// Room kept for queued items between calls. A table sync queues up to
/// 64 datagrams at once; keeping that room on every member of a large
/// cluster would cost more than reallocating on the rare burst.
pub(crate) const KEPT_CAPACITY: usize = 16;

/// Whether a datagram may carry queued membership updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piggyback {
    /// Fill the rest of the budget from the update queue.
    Fill,
    /// Send exactly what was written (sync tables, query answers).
    None,
}

enum Queued {
    Datagram { to: SocketAddr, writer: PacketWriter, piggyback: Piggyback },
    Event(Event),
    Open { id: StreamId, to: SocketAddr },
    Frame { id: StreamId, writer: PacketWriter },
    Close { id: StreamId },
}

/// The queues piggybacked datagrams are filled from.
pub(crate) struct Piggybacks<'a> {
    /// Membership updates.
    pub(crate) members: &'a mut BroadcastQueue,
    /// Application broadcasts.
    pub(crate) user: &'a mut BroadcastQueue,
    /// Transmissions each update gets.
    pub(crate) limit: u32,
    /// Bytes of each datagram kept for broadcasts before membership.
    pub(crate) user_reserve: usize,
    /// Where members' records are encoded from.
    pub(crate) records: &'a dyn crate::broadcast::Records,
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
        }
    }

    /// Sets the room every packet keeps for its envelope (when the label
    /// or the keyring changes; nothing is queued then).
    pub(crate) fn set_layout(&mut self, layout: Layout) {
        self.layout = layout;
    }

    /// An empty datagram over a recycled buffer when there is one.
    pub(crate) fn writer(&mut self) -> PacketWriter {
        PacketWriter::with_layout(self.budget, self.spare.pop().unwrap_or_default(), self.layout)
    }

    /// Queues a written datagram for `to`.
    pub(crate) fn push(&mut self, to: SocketAddr, writer: PacketWriter, piggyback: Piggyback) {
        self.queued.push(Queued::Datagram { to, writer, piggyback });
    }

    /// Queues a datagram of `msgs` (each a few dozen bytes: they always
    /// fit) for `to`.
    pub(crate) fn send(&mut self, to: SocketAddr, msgs: &[Message<'_>], piggyback: Piggyback) {
        let mut w = self.writer();
        for m in msgs {
            let _ = w.push(m);
        }
        self.push(to, w, piggyback);
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
        let mut w = self.frame_writer();
        for m in msgs {
            let _ = w.push(m);
        }
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
        for q in queued.drain(..) {
            match q {
                Queued::Event(e) => out.push(Action::Event(e)),
                Queued::Datagram { to, mut writer, piggyback } => {
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
                    if writer.is_empty() {
                        self.recycle(writer.into_buffer());
                        continue;
                    }
                    let packet = Datagram::from(envelope.close(writer, Channel::Datagram));
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
                    let frame = Datagram::from(envelope.close(writer, Channel::Frame));
                    self.frames_sent += 1;
                    self.frame_bytes_sent += frame.len() as u64;
                    out.push(Action::SendFrame { id, frame });
                }
                Queued::Close { id } => out.push(Action::CloseStream { id }),
            }
        }
        queued.shrink_to(KEPT_CAPACITY);
        self.queued = queued;
    }
}
