//! What a node needs from an async runtime: a UDP socket it can poll, a
//! timer it can re-arm, and a way to spawn the node's task.
//!
//! `swim-tokio` and `swim-smol` implement these in a few lines each; the
//! loop that uses them (the node's task) is written once. Reliable streams
//! (TCP) will join as further associated types beside the socket, handled
//! by the same loop, without changing what is here.

use core::future::Future;
use core::net::SocketAddr;
use core::task::{Context, Poll};
use std::io;
use std::net::UdpSocket;
use std::time::Instant;

/// An async runtime a node can run on.
pub trait Runtime: Send + Sync + 'static {
    /// The runtime's registered UDP socket.
    type Socket: UdpIo;
    /// The runtime's re-armable timer.
    type Timer: Timer;

    /// Registers a bound, non-blocking standard socket with the runtime.
    /// Must be called where the runtime can register sockets (for tokio,
    /// inside a runtime context).
    fn udp(&self, socket: UdpSocket) -> io::Result<Self::Socket>;

    /// A timer that fires at `at`.
    fn timer(&self, at: Instant) -> Self::Timer;

    /// Runs `task` in the background until it completes.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F);
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
