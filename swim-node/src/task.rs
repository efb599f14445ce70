//! The node's task: one future that owns the state machine and moves
//! bytes and time between it and the runtime. It holds no protocol logic:
//! every decision is the core's, taken through the shared [`Driver`].
//!
//! The loop polls, in order, the command queue (API calls), the streams
//! (up to [`RECV_BATCH`] frames, accepts and ends, see
//! [`Streams`]), the socket (up to [`RECV_BATCH`] datagrams) and the
//! timer, and hands each to the driver; it yields to the runtime after
//! [`ROUNDS_BEFORE_YIELD`] busy rounds so one flooded node cannot starve
//! the others on its thread.

use core::future::Future;
use core::net::SocketAddr;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;

use async_channel::{Receiver, Sender};
use futures_lite::Stream;
use lapswim_core::Datagram;
use lapswim_core::{Driver, Event, Input, Instant, OwnedInput, StreamId, Swim, Transport};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::clock::Clock;
use crate::node::{IoStats, Member, NodeError, NodeEvent, NodeStats};
use crate::rejects::{RejectWarnings, hint};
use crate::runtime::{Runtime, Timer, UdpIo};
use crate::streams::{StreamInput, Streams};

/// Datagrams taken from the socket, and stream inputs from the streams,
/// per round before the other sources get a turn.
pub const RECV_BATCH: usize = 32;

/// Busy rounds before the task yields to the runtime.
pub const ROUNDS_BEFORE_YIELD: usize = 4;

/// A request from a [`Node`](crate::Node) handle.
#[derive(Debug)]
pub(crate) enum Command {
    Join {
        seeds: Vec<SocketAddr>,
        reply: Sender<Result<SocketAddr, NodeError>>,
    },
    Leave {
        reply: Sender<Result<(), NodeError>>,
    },
    Members {
        reply: Sender<Vec<Member>>,
    },
    Member {
        name: String,
        reply: Sender<Option<Member>>,
    },
    Stats {
        reply: Sender<NodeStats>,
    },
    #[cfg(feature = "encryption")]
    Keys {
        reply: Sender<Vec<lapswim_core::Key>>,
    },
    /// An input of the application's: boxed, as is [`Command::Ask`]'s, so
    /// that a command takes five words, not seventeen (see
    /// [`COMMAND_SIZE`]).
    User {
        input: Box<OwnedInput>,
        reply: Sender<Result<(), NodeError>>,
    },
    /// A query (the application's or an internal one): answered with its id.
    Ask {
        input: Box<OwnedInput>,
        reply: Sender<Result<Option<lapswim_core::QueryId>, NodeError>>,
    },
    Shutdown,
}

/// The most a [`Command`] may take: every node preallocates its command
/// queue ([`COMMAND_CAPACITY`](crate::node::COMMAND_CAPACITY) slots of it).
pub(crate) const COMMAND_SIZE: usize = 48;
const _: () = assert!(core::mem::size_of::<Command>() <= COMMAND_SIZE);

/// Callers waiting for the outcome of a join or a leave.
#[derive(Default)]
struct Waiters {
    join: Vec<Sender<Result<SocketAddr, NodeError>>>,
    leave: Vec<Sender<Result<(), NodeError>>>,
}

/// The event queue towards the application, with the count of what it
/// could not take.
struct EventSink {
    /// Unbounded underneath, so memory follows the backlog rather than the
    /// bound; `capacity` is enforced here (the task is the only sender).
    tx: Sender<NodeEvent>,
    capacity: usize,
    /// Dropped since the last delivered [`NodeEvent::Lagged`].
    missed: u64,
}

impl EventSink {
    fn push(&mut self, event: NodeEvent, io: &mut IoStats) {
        if self.tx.is_closed() {
            return;
        }
        // Room for the event, and for the notice of what was lost before it.
        let needed = if self.missed > 0 { 2 } else { 1 };
        if self.tx.len() + needed > self.capacity {
            self.drop_one(io);
            return;
        }
        if self.missed > 0 {
            let _ = self.tx.try_send(NodeEvent::Lagged { missed: self.missed });
            self.missed = 0;
        }
        let _ = self.tx.try_send(event);
    }

    fn drop_one(&mut self, io: &mut IoStats) {
        if self.missed == 0 {
            tracing::warn!("event consumer is behind; dropping events (counted in IoStats::events_dropped)");
        }
        self.missed += 1;
        io.events_dropped += 1;
    }
}

/// The runtime side of one input: what the driver's actions touch.
struct Io<'a, R: Runtime> {
    socket: &'a R::Socket,
    streams: &'a mut Streams<R>,
    stats: &'a mut IoStats,
    sink: &'a mut EventSink,
    waiters: &'a mut Waiters,
    at: std::time::Instant,
    timer: &'a mut Alarm<R>,
    /// Rejections go to the application only if it asked for them; the
    /// node asks for them always, to log them.
    forward_rejections: bool,
    warnings: &'a mut RejectWarnings,
}

/// The task's one timer, armed from the machine's [`Transport::set_timer`]
/// (the machine owns the deadline: [`Swim::deadline`]).
pub(crate) struct Alarm<R: Runtime> {
    timer: R::Timer,
    clock: Clock,
    /// Timer slack in ms (see `NodeBuilder::timer_slack`).
    slack: u64,
    armed: bool,
}

impl<R: Runtime> Alarm<R> {
    fn arm(&mut self, at: Instant) {
        self.timer.reset(self.clock.std(Clock::coarsen(at, self.slack)));
        self.armed = true;
    }
}

impl<R: Runtime> Transport for Io<'_, R> {
    fn send(&mut self, to: SocketAddr, packet: Datagram) -> Option<Datagram> {
        if !self.streams.allows(to) {
            self.stats.datagrams_filtered += 1;
            return recyclable(packet);
        }
        match self.socket.try_send_to(&packet, to) {
            Ok(_) => self.stats.datagrams_sent += 1,
            Err(e) => count_send_error(self.stats, to, &e),
        }
        recyclable(packet)
    }

    fn set_timer(&mut self, at: Instant) {
        self.timer.arm(at);
    }

    fn event(&mut self, event: Event) {
        if let Event::Rejected { from, stream, reason } = event {
            tracing::debug!(%from, ?stream, %reason, "rejected");
            if let (Some(hint), Some(suppressed)) = (hint(reason), self.warnings.note(Clock::read(), reason)) {
                tracing::warn!(%from, %reason, suppressed, "{hint}");
            }
            if !self.forward_rejections {
                return;
            }
        } else {
            tracing::debug!(?event, "membership event");
        }
        match &event {
            Event::JoinCompleted { seed } => {
                for w in self.waiters.join.drain(..) {
                    let _ = w.try_send(Ok(*seed));
                }
            }
            Event::JoinFailed => {
                for w in self.waiters.join.drain(..) {
                    let _ = w.try_send(Err(NodeError::JoinFailed));
                }
            }
            Event::LeaveCompleted => {
                for w in self.waiters.leave.drain(..) {
                    let _ = w.try_send(Ok(()));
                }
            }
            _ => {}
        }
        self.sink.push(NodeEvent::Protocol { at: self.at, event }, self.stats);
    }

    fn open_stream(&mut self, id: StreamId, to: SocketAddr) {
        // Refusals decided at once come back on the task's next round.
        self.streams.open(id, to);
    }

    fn send_frame(&mut self, id: StreamId, frame: Datagram) -> Option<Datagram> {
        self.streams.send_frame(id, frame.as_bytes());
        recyclable(frame)
    }

    fn close_stream(&mut self, id: StreamId) {
        self.streams.close(id);
    }
}

/// A sent buffer, if it is worth handing back to the core: one that holds
/// a datagram and no more. The core keeps up to 8 spare buffers for the
/// datagrams it writes, taking any of up to four datagrams' size; a stream
/// frame's buffer (one taken from the spares grows to twice a datagram's
/// as the frame starts) would stay among them for good, and every node's
/// spares grow to 8 of those: 15 KiB a node at 1,000 nodes.
fn recyclable(sent: Datagram) -> Option<Datagram> {
    let buf = sent.into_vec();
    (buf.capacity() <= Datagram::MAX_LEN).then(|| Datagram::from(buf))
}

fn count_send_error(stats: &mut IoStats, to: SocketAddr, e: &io::Error) {
    match e.kind() {
        io::ErrorKind::WouldBlock => stats.send_buffer_full += 1,
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset | io::ErrorKind::HostUnreachable => {
            stats.unreachable += 1;
        }
        _ if e.raw_os_error() == Some(EMSGSIZE) => stats.send_oversized += 1,
        _ => {
            stats.send_errors += 1;
            tracing::warn!(%to, error = %e, "send failed");
        }
    }
}

/// `EMSGSIZE` (message too long), which has no stable `io::ErrorKind`:
/// 90 on Linux, 40 on macOS and the BSDs.
const EMSGSIZE: i32 = if cfg!(target_os = "linux") { 90 } else { 40 };

/// The channels between a task and its handles.
pub(crate) struct Wiring {
    pub(crate) commands: Receiver<Command>,
    pub(crate) events: Sender<NodeEvent>,
    pub(crate) event_capacity: usize,
    pub(crate) done: Sender<()>,
}

/// The future a runtime spawns for one node.
pub(crate) struct Task<R: Runtime> {
    swim: Swim<Xoshiro256PlusPlus>,
    driver: Driver,
    socket: R::Socket,
    alarm: Alarm<R>,
    /// The reliable streams, and the peer filter datagrams go through too.
    streams: Streams<R>,
    /// Whether the application asked for [`Event::Rejected`].
    forward_rejections: bool,
    commands: Pin<Box<Receiver<Command>>>,
    sink: EventSink,
    waiters: Waiters,
    stats: IoStats,
    /// The rate of warnings about refused packets.
    warnings: RejectWarnings,
    buf: Box<[u8]>,
    /// Dropped when the task ends, which tells `shutdown` it has.
    _done: Sender<()>,
}

/// What a task runs on.
pub(crate) struct Parts<R: Runtime> {
    pub(crate) socket: R::Socket,
    pub(crate) timer: R::Timer,
    pub(crate) streams: Streams<R>,
    /// Whether the application's configuration asked for
    /// [`Event::Rejected`] (the node's machine always reports them).
    pub(crate) forward_rejections: bool,
}

impl<R: Runtime> Task<R> {
    pub(crate) fn new(
        swim: Swim<Xoshiro256PlusPlus>,
        driver: Driver,
        clock: Clock,
        slack: u64,
        parts: Parts<R>,
        wiring: Wiring,
    ) -> Self {
        let Parts { socket, timer, streams, forward_rejections } = parts;
        let Wiring { commands, events, event_capacity, done } = wiring;
        let mut task = Task {
            swim,
            driver,
            socket,
            alarm: Alarm { timer, clock, slack, armed: false },
            streams,
            forward_rejections,
            commands: Box::pin(commands),
            sink: EventSink { tx: events, capacity: event_capacity.max(2), missed: 0 },
            waiters: Waiters::default(),
            stats: IoStats::default(),
            warnings: RejectWarnings::default(),
            // One byte more than the core accepts, so an oversized datagram
            // is seen as such rather than silently cut to size.
            buf: vec![0; Datagram::MAX_LEN + 1].into_boxed_slice(),
            _done: done,
        };
        // Starts the protocol period: a lone node answers joiners and probes
        // whoever joins it.
        let _ = task.input(Input::Timeout);
        task
    }

    /// Runs one input through the driver (which arms the timer through
    /// [`Transport::set_timer`]).
    fn input(&mut self, input: Input<'_>) -> Result<(), lapswim_core::Error> {
        let at = Clock::read();
        let now = self.alarm.clock.core(at);
        let mut io = Io {
            socket: &self.socket,
            streams: &mut self.streams,
            stats: &mut self.stats,
            sink: &mut self.sink,
            waiters: &mut self.waiters,
            at,
            timer: &mut self.alarm,
            forward_rejections: self.forward_rejections,
            warnings: &mut self.warnings,
        };
        self.driver.handle(&mut self.swim, now, input, &mut io)
    }

    /// Carries out one command; `false` when the task must stop.
    fn command(&mut self, command: Command) -> bool {
        match command {
            Command::Join { seeds, reply } => match self.input(Input::Join { seeds: &seeds }) {
                Ok(()) => self.waiters.join.push(reply),
                Err(e) => {
                    let _ = reply.try_send(Err(NodeError::Protocol(e)));
                }
            },
            Command::Leave { reply } => {
                if self.swim.has_left() {
                    let _ = reply.try_send(Ok(()));
                } else {
                    match self.input(Input::Leave) {
                        // An ongoing leave: wait for the same completion.
                        Ok(()) | Err(lapswim_core::Error::Leaving) if !self.swim.has_left() => {
                            self.waiters.leave.push(reply);
                        }
                        Ok(()) => {
                            let _ = reply.try_send(Ok(()));
                        }
                        Err(e) => {
                            let _ = reply.try_send(Err(NodeError::Protocol(e)));
                        }
                    }
                }
            }
            Command::Members { reply } => {
                let _ = reply.try_send(self.swim.members().map(Member::from).collect());
            }
            Command::Member { name, reply } => {
                let _ = reply.try_send(self.swim.member(&name).map(Member::from));
            }
            Command::Stats { reply } => {
                let io = IoStats { streams: self.streams.stats(), ..self.stats };
                let _ = reply.try_send(NodeStats {
                    protocol: self.swim.stats(),
                    io,
                    event_time: self.swim.lamport_time(),
                    query_time: self.swim.query_time(),
                    queued_updates: self.swim.queued_updates(),
                    queued_broadcasts: self.swim.queued_broadcasts(),
                    open_queries: self.swim.open_queries(),
                });
            }
            #[cfg(feature = "encryption")]
            Command::Keys { reply } => {
                let _ = reply.try_send(self.swim.keys());
            }
            Command::User { input, reply } => {
                let result = self.input(input.as_input()).map_err(NodeError::Protocol);
                let _ = reply.try_send(result);
            }
            Command::Ask { input, reply } => {
                let before = self.swim.last_query();
                // A query opened by the input is the newest one numbered.
                let result = self
                    .input(input.as_input())
                    .map_err(NodeError::Protocol)
                    .map(|()| self.swim.last_query().filter(|id| Some(*id) != before));
                let _ = reply.try_send(result);
            }
            Command::Shutdown => return false,
        }
        true
    }

    fn datagram(&mut self, len: usize, from: SocketAddr) {
        if !self.streams.allows(from) {
            self.stats.datagrams_filtered += 1;
            return;
        }
        self.stats.datagrams_received += 1;
        // Moved out for the call, so the buffer and the state machine can be
        // borrowed apart.
        let buf = core::mem::take(&mut self.buf);
        // Bytes from the network are never an `Err`: a rejection comes
        // back as an event (logged in `Io::event`).
        let _ = self.input(Input::Packet { from, bytes: &buf[..len] });
        self.buf = buf;
    }

    fn stream_input(&mut self, input: StreamInput) {
        // Never an `Err`: a rejected frame comes back as an event.
        let _ = match &input {
            StreamInput::Accepted { id, from } => self.input(Input::StreamAccepted { id: *id, from: *from }),
            StreamInput::Frame { id, frame } => self.input(Input::StreamFrame { id: *id, frame }),
            StreamInput::Closed { id, end } => self.input(Input::StreamClosed { id: *id, end: *end }),
        };
    }

    fn recv_error(&mut self, e: &io::Error) {
        match e.kind() {
            // A peer's closed port, reported on some platforms at the next
            // receive; not an error of ours.
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => self.stats.unreachable += 1,
            _ => {
                self.stats.recv_errors += 1;
                tracing::warn!(error = %e, "receive failed");
            }
        }
    }

    /// One round over every source; whether anything was done.
    fn round(&mut self, cx: &mut Context<'_>) -> Option<bool> {
        let mut busy = false;
        loop {
            match self.commands.as_mut().poll_next(cx) {
                Poll::Ready(Some(c)) => {
                    busy = true;
                    if !self.command(c) {
                        return None;
                    }
                }
                // Every handle is gone: nobody can reach the node any more.
                Poll::Ready(None) => return None,
                Poll::Pending => break,
            }
        }
        for _ in 0..RECV_BATCH {
            match self.streams.poll_next(cx) {
                Poll::Ready(input) => {
                    busy = true;
                    self.stream_input(input);
                }
                Poll::Pending => break,
            }
        }
        for _ in 0..RECV_BATCH {
            match self.socket.poll_recv_from(cx, &mut self.buf) {
                Poll::Ready(Ok((len, from))) => {
                    busy = true;
                    self.datagram(len.min(self.buf.len()), from);
                }
                Poll::Ready(Err(e)) => {
                    busy = true;
                    self.recv_error(&e);
                }
                Poll::Pending => break,
            }
        }
        if self.alarm.armed && self.alarm.timer.poll_expired(cx).is_ready() {
            busy = true;
            self.alarm.armed = false;
            let _ = self.input(Input::Timeout);
            // Woken before the deadline (which the machine then keeps, with
            // no new `SetTimer`): wait for it again.
            if let (false, Some(at)) = (self.alarm.armed, self.swim.deadline()) {
                self.alarm.arm(at);
            }
        }
        Some(busy)
    }
}

impl<R: Runtime> Future for Task<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..ROUNDS_BEFORE_YIELD {
            match this.round(cx) {
                None => {
                    tracing::info!(node = %this.swim.local().name, "node stopped");
                    return Poll::Ready(());
                }
                // Every source returned Pending and registered the waker.
                Some(false) => return Poll::Pending,
                Some(true) => {}
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use lapswim_core::Datagram;

    use super::recyclable;

    #[test]
    fn only_buffers_of_a_datagrams_size_go_back_to_the_core() {
        let datagram = Datagram::from(vec![0; 1200]);
        assert_eq!(recyclable(datagram).map(|d| d.len()), Some(1200));
        // A small frame written in a spare datagram buffer, which grew to
        // twice a datagram's size as the frame began.
        let mut frame = Vec::with_capacity(1400);
        frame.reserve(Datagram::MAX_LEN);
        frame.extend_from_slice(&[0; 100]);
        assert!(recyclable(Datagram::from(frame)).is_none());
        // A table's frame.
        assert!(recyclable(Datagram::from(vec![0; 40_000])).is_none());
    }
}
