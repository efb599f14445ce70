//! Reliable streams over TCP, runtime-neutral: the connections behind the
//! core's [`StreamId`]s.
//!
//! [`Streams`] is the node task's end of them. The task calls
//! [`Streams::open`], [`Streams::send_frame`] and [`Streams::close`] as the
//! core asks, and polls [`Streams::poll_next`] as one more source of input
//! beside its socket and timer. Each connection runs in a task of its own
//! (spawned on the [`Runtime`]), reading and writing at once:
//!
//! - frames go from the node task to the connection over a bounded queue of
//!   its own, at most [`StreamLimits::buffer`] bytes (a frame that does not
//!   fit fails the stream: a reliable stream cannot drop one);
//! - frames and the connection's end come back over one bounded channel
//!   shared by every connection, so a node that is behind stops the
//!   connections reading rather than buffering without bound;
//! - a frame on the wire is a 4-byte big-endian length, then that many
//!   payload bytes; a length over [`StreamLimits::max_frame`] fails the
//!   stream without reading on.
//!
//! What the node task learns is a [`StreamInput`], ready to hand to the
//! core: a connection accepted (numbered with a fresh
//! [`StreamId::Inbound`]), a frame, or the end of a stream, reported once
//! and never for a stream the core has closed itself.

use core::future::{Future, poll_fn};
use core::net::SocketAddr;
use core::pin::{Pin, pin};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::Arc;

use async_channel::{Receiver, Sender, TrySendError};
use futures_lite::future::{or, pending};
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt, AsyncWriteExt, Stream};
use lapswim_core::Datagram;
use lapswim_core::{StreamEnd, StreamId};

use crate::runtime::Runtime;

/// How long a connect may take before the stream ends with
/// [`StreamEnd::TimedOut`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a stream may go without a whole frame read before it ends with
/// [`StreamEnd::TimedOut`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many streams may be open at once, both directions together.
pub const DEFAULT_MAX_STREAMS: usize = 64;

/// How many bytes (frames and their prefixes) may wait to be written on
/// one stream: 1 MiB.
pub const DEFAULT_STREAM_BUFFER: usize = 1 << 20;

/// Frames that may wait to be written on one stream, whatever their size.
const FRAME_QUEUE: usize = 256;

/// Messages from the connections that may wait for the node task: as
/// many as it takes in one round ([`RECV_BATCH`](crate::RECV_BATCH)).
/// Every node preallocates the queue (32 take 2 KiB).
const EVENT_QUEUE: usize = 32;

/// Queued frames written together, up to about this many bytes.
const COALESCE: usize = 64 * 1024;

/// The pause after an accept error that is not about one connection (out
/// of file descriptors, say), before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The length prefix of a frame, in bytes.
const PREFIX: usize = 4;

/// The longest memberlist stream message read, in bytes: memberlist's
/// own bound on a push-pull (`maxPushStateBytes`, 20 MiB).
pub const MEMBERLIST_MAX_MESSAGE: usize = 20 * 1024 * 1024;

/// Bytes read from a memberlist stream at a time.
const MEMBERLIST_READ: usize = 64 * 1024;

/// How frames are cut out of a stream's bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// swim's own: every frame is prefixed with its length, four bytes
    /// big-endian, and at most [`StreamLimits::max_frame`] long.
    #[default]
    LengthPrefixed,
    /// memberlist's, for a node with
    /// [`Config::memberlist_wire`](lapswim_core::Config::memberlist_wire):
    /// messages back to back with no prefix, each found by decoding it
    /// ([`Config::memberlist_frame_len`](lapswim_core::Config::memberlist_frame_len)),
    /// each at most [`MEMBERLIST_MAX_MESSAGE`] long.
    Memberlist,
}

/// Decides which peers a node may talk to: `true` lets the address through.
/// See [`NodeBuilder::peer_filter`](crate::NodeBuilder::peer_filter).
pub type PeerFilter = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// The limits one node's streams keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// How long a connect may take ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// How long a stream may go without a whole frame read
    /// ([`DEFAULT_IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
    /// The longest frame payload read, in bytes ([`Datagram::MAX_FRAME_LEN`]); a peer
    /// announcing a longer one fails the stream. It does not bound the
    /// frames sent, which the core keeps within [`Datagram::MAX_FRAME_LEN`].
    pub max_frame: usize,
    /// How many streams may be open at once ([`DEFAULT_MAX_STREAMS`]),
    /// both directions together. A stream closed by the core no longer
    /// counts, though its connection may stay a while (at most the idle
    /// timeout) to finish writing and see the peer close.
    pub max_streams: usize,
    /// How many bytes may wait to be written on one stream
    /// ([`DEFAULT_STREAM_BUFFER`]); one frame is always taken when none
    /// waits.
    pub buffer: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_frame: Datagram::MAX_FRAME_LEN,
            max_streams: DEFAULT_MAX_STREAMS,
            buffer: DEFAULT_STREAM_BUFFER,
        }
    }
}

/// What one node's streams have counted since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStats {
    /// Outbound streams started (a connect was tried).
    pub opened: u64,
    /// Inbound connections taken as streams.
    pub accepted: u64,
    /// Streams refused for the cap ([`StreamLimits::max_streams`]): opens
    /// reported back as [`StreamEnd::Refused`], accepted connections
    /// closed at once.
    pub over_cap: u64,
    /// Streams refused by the peer filter: opens reported back as
    /// [`StreamEnd::Refused`], accepted connections closed at once.
    pub filtered: u64,
    /// Connects that failed ([`StreamEnd::Refused`]).
    pub refused: u64,
    /// Connects or idle streams that ran out of time
    /// ([`StreamEnd::TimedOut`]).
    pub timed_out: u64,
    /// Streams that broke, met an oversized frame or could not queue a
    /// frame ([`StreamEnd::Failed`]).
    pub failed: u64,
    /// Frames written.
    pub frames_sent: u64,
    /// Frames read.
    pub frames_received: u64,
    /// Bytes written, length prefixes included.
    pub bytes_sent: u64,
    /// Bytes of whole frames read, length prefixes included.
    pub bytes_received: u64,
    /// Accept errors of the listener (each followed by a short pause when
    /// not about one connection).
    pub accept_errors: u64,
}

/// What happened on the streams, for the core (see
/// [`Input`](lapswim_core::Input)'s stream variants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamInput {
    /// A connection was accepted and named `id` (a fresh
    /// [`StreamId::Inbound`]).
    Accepted {
        /// The new stream.
        id: StreamId,
        /// The peer's address as the connection reported it.
        from: SocketAddr,
    },
    /// A whole frame arrived on `id`.
    Frame {
        /// The stream.
        id: StreamId,
        /// The frame's payload, without its length prefix.
        frame: Vec<u8>,
    },
    /// Stream `id` ended; it is forgotten here.
    Closed {
        /// The stream.
        id: StreamId,
        /// How it ended.
        end: StreamEnd,
    },
}

impl StreamInput {
    /// The stream it is about.
    pub fn id(&self) -> StreamId {
        match self {
            StreamInput::Accepted { id, .. } | StreamInput::Frame { id, .. } | StreamInput::Closed { id, .. } => *id,
        }
    }
}

/// From the listener and the connections to the node task. `serial` tells
/// one connection from a later one of the same id. The connection is
/// boxed: every node preallocates [`EVENT_QUEUE`] of these, and a runtime's
/// connection takes more than a frame's handle.
enum Msg<C> {
    Accepted { conn: Box<C>, from: SocketAddr },
    Frame { id: StreamId, serial: u64, frame: Vec<u8> },
    End { id: StreamId, serial: u64, end: StreamEnd },
}

/// Counters the connection tasks keep.
#[derive(Default)]
struct Shared {
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    accept_errors: AtomicU64,
}

/// The node task's hold on one open stream.
struct Entry {
    serial: u64,
    /// The address connected to, or the one the connection came from.
    peer: SocketAddr,
    /// Frames to write; dropping it (with the entry) closes the stream
    /// after them.
    frames: Sender<Vec<u8>>,
    /// Bytes in `frames` and not yet written.
    queued: Arc<AtomicUsize>,
    /// Sent on to end the connection at once, unwritten frames and all.
    kill: Sender<()>,
}

/// One node's reliable streams: the connections, the listener's accepted
/// ones, and what they report.
///
/// Dropping it ends the listener and every connection at once.
pub struct Streams<R: Runtime> {
    runtime: R,
    limits: StreamLimits,
    framing: Framing,
    filter: Option<PeerFilter>,
    open: BTreeMap<StreamId, Entry>,
    next_inbound: u64,
    next_serial: u64,
    /// Outcomes decided here, without a connection (the cap, the filter, a
    /// full queue), delivered before anything else.
    ready: VecDeque<StreamInput>,
    rx: Pin<Box<Receiver<Msg<R::Connection>>>>,
    tx: Sender<Msg<R::Connection>>,
    /// Never sent on: dropped with `self`, it stops every task.
    _stop: Sender<()>,
    stop: Receiver<()>,
    shared: Arc<Shared>,
    stats: StreamStats,
}

// Nothing in it is ever pinned through it (the receivers are boxed or only
// cloned), so the node task that holds it can be moved between polls.
impl<R: Runtime> Unpin for Streams<R> {}

impl<R: Runtime> core::fmt::Debug for Streams<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Streams")
            .field("limits", &self.limits)
            .field("open", &self.open.keys().collect::<Vec<_>>())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Streams<R> {
    /// Streams on `runtime` within `limits`, talking only to the peers
    /// `filter` lets through (all when `None`). Accepts nothing until
    /// [`Streams::listen`].
    pub fn new(runtime: R, limits: StreamLimits, filter: Option<PeerFilter>) -> Self {
        let (tx, rx) = async_channel::bounded(EVENT_QUEUE);
        let (stop_tx, stop) = async_channel::bounded(1);
        Streams {
            runtime,
            limits,
            framing: Framing::LengthPrefixed,
            filter,
            open: BTreeMap::new(),
            next_inbound: 0,
            next_serial: 0,
            ready: VecDeque::new(),
            rx: Box::pin(rx),
            tx,
            _stop: stop_tx,
            stop,
            shared: Arc::default(),
            stats: StreamStats::default(),
        }
    }

    /// Cuts frames as `framing` says on every stream opened or accepted
    /// from now on ([`Framing::LengthPrefixed`] until then).
    pub fn set_framing(&mut self, framing: Framing) {
        self.framing = framing;
    }

    /// How frames are cut (see [`Streams::set_framing`]).
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Accepts connections on `listener` in a task of its own, each
    /// reported by [`Streams::poll_next`] as [`StreamInput::Accepted`]
    /// (unless over the cap or refused by the filter).
    pub fn listen(&mut self, listener: R::Listener) {
        self.listen_with(listener, ());
    }

    /// [`Streams::listen`], dropping `guard` once the listener is closed.
    pub(crate) fn listen_with<G: Send + 'static>(&mut self, listener: R::Listener, guard: G) {
        let task = accept_loop(self.runtime.clone(), listener, self.tx.clone(), Arc::clone(&self.shared));
        let stop = self.stop.clone();
        self.runtime.spawn(async move {
            or(task, async {
                let _ = stop.recv().await;
            })
            .await;
            drop(guard);
        });
    }

    /// The limits kept.
    pub fn limits(&self) -> StreamLimits {
        self.limits
    }

    /// How many streams are open (counted against
    /// [`StreamLimits::max_streams`]).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no stream is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> StreamStats {
        StreamStats {
            frames_sent: self.shared.frames_sent.load(Ordering::Relaxed),
            bytes_sent: self.shared.bytes_sent.load(Ordering::Relaxed),
            accept_errors: self.shared.accept_errors.load(Ordering::Relaxed),
            ..self.stats
        }
    }

    /// The address stream `id` was opened to or accepted from (for an
    /// accepted one, the peer's ephemeral port), while it is open.
    pub fn peer(&self, id: StreamId) -> Option<SocketAddr> {
        self.open.get(&id).map(|e| e.peer)
    }

    /// Whether the filter lets `addr` through.
    pub fn allows(&self, addr: SocketAddr) -> bool {
        self.filter.as_ref().is_none_or(|f| f(addr))
    }

    /// Connects stream `id` to `to`. Frames may be sent on it at once; they
    /// are written once connected. A peer the filter refuses, or an open
    /// beyond the cap, is reported as [`StreamEnd::Refused`] by the next
    /// [`Streams::poll_next`].
    pub fn open(&mut self, id: StreamId, to: SocketAddr) {
        if !self.allows(to) {
            self.stats.filtered += 1;
            self.ready.push_back(StreamInput::Closed { id, end: StreamEnd::Refused });
            return;
        }
        if self.open.len() >= self.limits.max_streams {
            self.stats.over_cap += 1;
            tracing::debug!(?id, %to, "stream cap reached; open refused");
            self.ready.push_back(StreamInput::Closed { id, end: StreamEnd::Refused });
            return;
        }
        self.stats.opened += 1;
        let entry = self.spawn(id, to, Target::Connect(to));
        if self.open.insert(id, entry).is_some() {
            tracing::warn!(?id, "stream opened again while open; the earlier connection is closed");
        }
    }

    /// Queues `frame` (the payload; the length prefix, when the framing
    /// has one, is added here) on
    /// stream `id`. Unknown or closed streams take nothing. A frame that
    /// does not fit the stream's buffer fails the stream: it is ended at
    /// once and reported as [`StreamEnd::Failed`] by the next
    /// [`Streams::poll_next`].
    pub fn send_frame(&mut self, id: StreamId, frame: &[u8]) {
        let Some(entry) = self.open.get(&id) else {
            tracing::debug!(?id, "frame for a stream that is not open; dropped");
            return;
        };
        let prefixed = self.framing == Framing::LengthPrefixed;
        let len = frame.len() + if prefixed { PREFIX } else { 0 };
        let Ok(prefix) = u32::try_from(frame.len()) else {
            return self.fail(id);
        };
        let queued = entry.queued.load(Ordering::Relaxed);
        if queued > 0 && queued + len > self.limits.buffer {
            tracing::debug!(?id, queued, "stream buffer full; stream failed");
            return self.fail(id);
        }
        let mut buf = Vec::with_capacity(len);
        if prefixed {
            buf.extend_from_slice(&prefix.to_be_bytes());
        }
        buf.extend_from_slice(frame);
        entry.queued.fetch_add(len, Ordering::Relaxed);
        match entry.frames.try_send(buf) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::debug!(?id, "stream queue full; stream failed");
                self.fail(id);
            }
            // The connection has ended; its report is on the way.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Closes stream `id` once its queued frames are written; nothing more
    /// is reported about it.
    pub fn close(&mut self, id: StreamId) {
        // Dropping the entry's sender lets the connection drain and shut down.
        self.open.remove(&id);
        self.ready.retain(|input| input.id() != id);
    }

    /// Ends stream `id` now and reports it failed.
    fn fail(&mut self, id: StreamId) {
        if let Some(entry) = self.open.remove(&id) {
            let _ = entry.kill.try_send(());
        }
        self.stats.failed += 1;
        self.ready.push_back(StreamInput::Closed { id, end: StreamEnd::Failed });
    }

    /// The next thing that happened on the streams, or `Pending` with `cx`
    /// registered.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<StreamInput> {
        if let Some(input) = self.ready.pop_front() {
            return Poll::Ready(input);
        }
        // Messages with nothing to report (stale ones, refused connections)
        // are taken a queue's worth at a time, then the caller gets a turn.
        for _ in 0..EVENT_QUEUE {
            let Poll::Ready(Some(msg)) = self.rx.as_mut().poll_next(cx) else {
                // Never `None`: `self` holds a sender.
                return Poll::Pending;
            };
            if let Some(input) = self.message(msg) {
                return Poll::Ready(input);
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The next thing that happened on the streams.
    pub async fn next(&mut self) -> StreamInput {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    fn message(&mut self, msg: Msg<R::Connection>) -> Option<StreamInput> {
        match msg {
            Msg::Accepted { conn, from } => {
                if !self.allows(from) {
                    self.stats.filtered += 1;
                    tracing::debug!(%from, "connection from a filtered peer closed");
                    return None;
                }
                if self.open.len() >= self.limits.max_streams {
                    self.stats.over_cap += 1;
                    tracing::debug!(%from, "stream cap reached; connection closed");
                    return None;
                }
                let id = StreamId::Inbound(self.next_inbound);
                self.next_inbound += 1;
                self.stats.accepted += 1;
                let entry = self.spawn(id, from, Target::Accepted(*conn));
                self.open.insert(id, entry);
                Some(StreamInput::Accepted { id, from })
            }
            Msg::Frame { id, serial, frame } => {
                self.stats.frames_received += 1;
                self.stats.bytes_received += (frame.len() + PREFIX) as u64;
                self.is_current(id, serial).then_some(StreamInput::Frame { id, frame })
            }
            Msg::End { id, serial, end } => {
                match end {
                    StreamEnd::Refused | StreamEnd::NotListening => self.stats.refused += 1,
                    StreamEnd::TimedOut => self.stats.timed_out += 1,
                    StreamEnd::Closed => {}
                    _ => self.stats.failed += 1,
                }
                if !self.is_current(id, serial) {
                    return None;
                }
                self.open.remove(&id);
                Some(StreamInput::Closed { id, end })
            }
        }
    }

    /// Whether `serial` is the connection the core knows as `id`.
    fn is_current(&self, id: StreamId, serial: u64) -> bool {
        self.open.get(&id).is_some_and(|e| e.serial == serial)
    }

    fn spawn(&mut self, id: StreamId, peer: SocketAddr, target: Target<R::Connection>) -> Entry {
        let serial = self.next_serial;
        self.next_serial += 1;
        let (frames, frames_rx) = async_channel::bounded(FRAME_QUEUE);
        let (kill, kill_rx) = async_channel::bounded(1);
        let queued = Arc::new(AtomicUsize::new(0));
        let conn = Connection {
            runtime: self.runtime.clone(),
            id,
            serial,
            limits: self.limits,
            framing: self.framing,
            events: self.tx.clone(),
            shared: Arc::clone(&self.shared),
            queued: Arc::clone(&queued),
        };
        let stop = self.stop.clone();
        self.runtime.spawn(async move {
            let killed = async {
                // Only an explicit kill: a dropped sender is a graceful close.
                if kill_rx.recv().await.is_err() {
                    pending::<()>().await;
                }
            };
            let stopped = async {
                let _ = stop.recv().await;
            };
            or(conn.run(target, frames_rx), or(killed, stopped)).await;
        });
        Entry { serial, peer, frames, queued, kill }
    }
}

/// Accepts until the node task has gone.
async fn accept_loop<R: Runtime>(
    runtime: R,
    listener: R::Listener,
    tx: Sender<Msg<R::Connection>>,
    shared: Arc<Shared>,
) {
    loop {
        match runtime.accept(&listener).await {
            Ok((conn, from)) => {
                if tx.send(Msg::Accepted { conn: Box::new(conn), from }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                shared.accept_errors.fetch_add(1, Ordering::Relaxed);
                let one = matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset);
                if !one {
                    tracing::warn!(error = %e, "accept failed");
                    runtime.sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// Where a connection comes from.
enum Target<C> {
    Connect(SocketAddr),
    Accepted(C),
}

/// What finished first on a connection.
enum First {
    Read(StreamEnd),
    Write(io::Result<()>),
}

/// One connection's task.
struct Connection<R: Runtime> {
    runtime: R,
    id: StreamId,
    serial: u64,
    limits: StreamLimits,
    framing: Framing,
    events: Sender<Msg<R::Connection>>,
    shared: Arc<Shared>,
    queued: Arc<AtomicUsize>,
}

impl<R: Runtime> Connection<R> {
    async fn run(self, target: Target<R::Connection>, frames: Receiver<Vec<u8>>) {
        let conn = match target {
            Target::Accepted(conn) => conn,
            Target::Connect(to) => match self.connect(to).await {
                Ok(conn) => conn,
                Err(end) => return self.report(end).await,
            },
        };
        let (mut r, mut w) = futures_lite::io::split(conn);
        let mut reader = pin!(self.read_frames(&mut r));
        let mut writer = pin!(self.write_frames(&mut w, &frames));
        let first = or(async { First::Read(reader.as_mut().await) }, async { First::Write(writer.as_mut().await) });
        match first.await {
            First::Read(end) => {
                self.report(end).await;
                if end == StreamEnd::Closed {
                    // The peer has finished sending; what the core had
                    // queued still goes out, then our side shuts down.
                    let _ = self.timeout(self.limits.idle_timeout, writer).await;
                }
            }
            First::Write(Err(e)) => {
                tracing::debug!(id = ?self.id, error = %e, "stream write failed");
                self.report(StreamEnd::Failed).await;
            }
            First::Write(Ok(())) => {
                // Closed here and shut down: read on until the peer closes
                // too (for a while), so the close is a clean one rather than
                // a reset that could cost the peer our last frames. What is
                // read is stale and dropped by the node task.
                let _ = self.timeout(self.limits.idle_timeout, reader).await;
            }
        }
    }

    async fn connect(&self, to: SocketAddr) -> Result<R::Connection, StreamEnd> {
        match self.timeout(self.limits.connect_timeout, self.runtime.connect(to)).await {
            Some(Ok(conn)) => Ok(conn),
            None => Err(StreamEnd::TimedOut),
            Some(Err(e)) if e.kind() == io::ErrorKind::TimedOut => Err(StreamEnd::TimedOut),
            // The host answered: nothing listens there.
            Some(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Err(StreamEnd::NotListening),
            Some(Err(e)) => {
                tracing::debug!(id = ?self.id, %to, error = %e, "connect failed");
                Err(StreamEnd::Refused)
            }
        }
    }

    async fn report(&self, end: StreamEnd) {
        let _ = self.events.send(Msg::End { id: self.id, serial: self.serial, end }).await;
    }

    /// `f`'s output, or `None` if `after` passes first.
    async fn timeout<F: Future>(&self, after: Duration, f: F) -> Option<F::Output> {
        or(async { Some(f.await) }, async {
            self.runtime.sleep(after).await;
            None
        })
        .await
    }

    /// Reads frames and hands them to the node task until the stream ends.
    async fn read_frames(&self, r: &mut ReadHalf<R::Connection>) -> StreamEnd {
        if self.framing == Framing::Memberlist {
            return self.read_messages(r).await;
        }
        loop {
            let frame = match self.timeout(self.limits.idle_timeout, read_frame(r, self.limits.max_frame)).await {
                None => return StreamEnd::TimedOut,
                Some(Ok(Some(frame))) => frame,
                Some(Ok(None)) => return StreamEnd::Closed,
                Some(Err(end)) => return end,
            };
            if self.events.send(Msg::Frame { id: self.id, serial: self.serial, frame }).await.is_err() {
                // The node task has gone: nobody to tell.
                return StreamEnd::Closed;
            }
        }
    }

    /// [`Connection::read_frames`] for memberlist's streams: bytes are
    /// gathered until they hold a whole message, which is handed on as it
    /// came.
    async fn read_messages(&self, r: &mut ReadHalf<R::Connection>) -> StreamEnd {
        let mut buf = Vec::new();
        let mut chunk = vec![0; MEMBERLIST_READ];
        loop {
            loop {
                match lapswim_core::Config::memberlist_frame_len(&buf) {
                    Ok(Some(n)) => {
                        let rest = buf.split_off(n.min(buf.len()));
                        let frame = core::mem::replace(&mut buf, rest);
                        if self.events.send(Msg::Frame { id: self.id, serial: self.serial, frame }).await.is_err() {
                            return StreamEnd::Closed;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(id = ?self.id, error = %e, "not a memberlist stream message");
                        return StreamEnd::Failed;
                    }
                }
            }
            // A sealed message of the largest size adds a five-byte header.
            if buf.len() > MEMBERLIST_MAX_MESSAGE + 5 {
                tracing::debug!(id = ?self.id, len = buf.len(), "memberlist stream message over its bound");
                return StreamEnd::Failed;
            }
            let read = loop {
                match self.timeout(self.limits.idle_timeout, r.read(&mut chunk)).await {
                    Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            match read {
                None => return StreamEnd::TimedOut,
                Some(Ok(0)) if buf.is_empty() => return StreamEnd::Closed,
                Some(Ok(0)) | Some(Err(_)) => return StreamEnd::Failed,
                Some(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Writes queued frames, coalesced, until the queue is closed and
    /// empty; then shuts the sending side down.
    async fn write_frames(&self, w: &mut WriteHalf<R::Connection>, frames: &Receiver<Vec<u8>>) -> io::Result<()> {
        loop {
            let Ok(mut batch) = frames.recv().await else {
                w.close().await?;
                return Ok(());
            };
            let mut count = 1;
            while batch.len() < COALESCE {
                let Ok(more) = frames.try_recv() else { break };
                batch.extend_from_slice(&more);
                count += 1;
            }
            w.write_all(&batch).await?;
            w.flush().await?;
            self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            self.shared.frames_sent.fetch_add(count, Ordering::Relaxed);
            self.shared.bytes_sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
    }
}

/// Reads one frame: `Ok(None)` at a clean end (before a prefix), the
/// stream's end for a broken connection or an oversized announced length.
async fn read_frame<C: futures_lite::AsyncRead + Unpin>(
    r: &mut C,
    max_frame: usize,
) -> Result<Option<Vec<u8>>, StreamEnd> {
    let mut prefix = [0u8; PREFIX];
    let mut filled = 0;
    while filled < PREFIX {
        match r.read(&mut prefix[filled..]).await {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(StreamEnd::Failed),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(StreamEnd::Failed),
        }
    }
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if len > max_frame {
        tracing::debug!(len, max_frame, "peer announced an oversized frame");
        return Err(StreamEnd::Failed);
    }
    let mut frame = vec![0; len];
    r.read_exact(&mut frame).await.map_err(|_| StreamEnd::Failed)?;
    Ok(Some(frame))
}
