//! What a node needs from an async runtime: a UDP socket it can poll, a
//! timer it can re-arm, TCP for reliable streams (a listener, accepted and
//! connected connections, and sleeps for their time limits), and a way to
//! spawn tasks.
//!
//! `lapswim-tokio` and `lapswim-smol` implement these in a few lines each; the
//! loops that use them (the node's task, the stream tasks of
//! [`streams`](crate::streams)) are written once.

use core::future::Future;
use core::net::SocketAddr;
use core::task::{Context, Poll};
use core::time::Duration;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::time::Instant;

use futures_lite::{AsyncRead, AsyncWrite};

/// An async runtime a node can run on. Cheap to clone: the node's tasks
/// each keep a copy, to spawn and to sleep.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The runtime's registered UDP socket.
    type Socket: UdpIo;
    /// The runtime's re-armable timer.
    type Timer: Timer;
    /// The runtime's registered TCP listener.
    type Listener: Send + Sync + 'static;
    /// One TCP connection, accepted or connected, as a byte stream. Its
    /// `poll_close` must shut the sending direction down (the peer reads
    /// the end of the stream), not only flush: that is how a stream is
    /// closed after its last frame.
    type Connection: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Registers a bound, non-blocking standard socket with the runtime.
    /// Must be called where the runtime can register sockets (for tokio,
    /// inside a runtime context).
    fn udp(&self, socket: UdpSocket) -> io::Result<Self::Socket>;

    /// A timer that fires at `at`.
    fn timer(&self, at: Instant) -> Self::Timer;

    /// Runs `task` in the background until it completes.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F);

    /// Registers a bound, listening, non-blocking standard TCP listener
    /// with the runtime (where [`Runtime::udp`] may be called).
    fn tcp_listener(&self, listener: TcpListener) -> io::Result<Self::Listener>;

    /// The next connection `listener` accepts, with the peer's address.
    /// Connections should have `TCP_NODELAY` set: frames are small and
    /// often answered.
    fn accept<'a>(
        &'a self,
        listener: &'a Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Connection, SocketAddr)>> + Send + 'a;

    /// Connects to `to` (with `TCP_NODELAY` set, as for
    /// [`Runtime::accept`]). Called from a task of this runtime; may take
    /// as long as the OS lets it (the caller bounds it with a sleep).
    fn connect(&self, to: SocketAddr) -> impl Future<Output = io::Result<Self::Connection>> + Send + '_;

    /// Completes after `duration`. Called from a task of this runtime.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + '_;
}

/// A UDP socket as the node's loop uses it: polled receives, and sends
/// that never wait (a full send buffer drops the datagram, as the network
/// might; the protocol is built for loss).
pub trait UdpIo: Send + Unpin + 'static {
    /// Receives one datagram into `buf`, or registers `cx` to be woken when
    /// one may have arrived.
    fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>>;

    /// Sends one datagram now, or fails (`WouldBlock` when the buffer is full).
    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize>;
}

/// A one-shot timer that can be moved to a new instant.
pub trait Timer: Send + Unpin + 'static {
    /// Moves the timer to fire at `at` (armed again if it had fired).
    fn reset(&mut self, at: Instant);

    /// Ready once the instant has passed; registers `cx` otherwise.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}
