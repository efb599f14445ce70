//! Run a [`lapswim_core`] member on tokio: UDP datagrams through a
//! [`tokio::net::UdpSocket`], reliable streams over
//! [`tokio::net::TcpStream`]s, the core's one deadline on a
//! [`tokio::time::Sleep`]. Everything else (the action loop, the clock,
//! the handle) is the runtime-neutral [`lapswim_node`], re-exported here.
//!
//! Features `encryption` (sealing with a keyring) and `trace` (recording
//! a node for `swim replay`) turn on lapswim-node's, off by default.
//!
//! ```no_run
//! use lapswim_tokio::{NodeBuilder, NodeEvent};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = lapswim_tokio::start(NodeBuilder::new("a", "127.0.0.1:0".parse()?))?;
//! node.join(&["127.0.0.1:7946".parse()?]).await?;
//! let events = node.events();
//! while let Some(NodeEvent::Protocol { event, .. }) = events.next().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```

use core::future::Future;
use core::net::SocketAddr;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::time::Instant;

pub use lapswim_node::{
    Config, Event, Events, IoStats, Label, Member, MemberName, MemberState, Node, NodeBuilder, NodeError, NodeEvent,
    NodeStats, PeerFilter, StartError, StreamEnd, StreamId, StreamLimits, StreamStats,
};
#[cfg(feature = "encryption")]
pub use lapswim_node::{Key, KeyringOp};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// The tokio [`Runtime`](lapswim_node::Runtime): sockets and timers of the
/// current tokio runtime, tasks spawned on it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

/// Starts a node on the current tokio runtime.
///
/// Must be called from within a tokio runtime (with the `net` and `time`
/// drivers enabled), as `tokio::spawn` must.
pub fn start(builder: NodeBuilder) -> Result<Node, StartError> {
    builder.start(&Tokio)
}

impl lapswim_node::Runtime for Tokio {
    type Socket = Socket;
    type Timer = Timer;
    type Listener = tokio::net::TcpListener;
    type Connection = Compat<tokio::net::TcpStream>;

    fn udp(&self, socket: UdpSocket) -> io::Result<Socket> {
        tokio::net::UdpSocket::from_std(socket).map(Socket)
    }

    fn timer(&self, at: Instant) -> Timer {
        Timer(Box::pin(tokio::time::sleep_until(at.into())))
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        drop(tokio::spawn(task));
    }

    fn tcp_listener(&self, listener: TcpListener) -> io::Result<Self::Listener> {
        tokio::net::TcpListener::from_std(listener)
    }

    async fn accept<'a>(&'a self, listener: &'a Self::Listener) -> io::Result<(Self::Connection, SocketAddr)> {
        let (stream, from) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((stream.compat(), from))
    }

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Connection> {
        let stream = tokio::net::TcpStream::connect(to).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream.compat())
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + '_ {
        tokio::time::sleep(duration)
    }
}

/// A tokio UDP socket.
#[derive(Debug)]
pub struct Socket(tokio::net::UdpSocket);

impl lapswim_node::UdpIo for Socket {
    fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut read = tokio::io::ReadBuf::new(buf);
        self.0.poll_recv_from(cx, &mut read).map_ok(|from| (read.filled().len(), from))
    }

    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.0.try_send_to(buf, to)
    }
}

/// A tokio sleep, re-armed in place.
#[derive(Debug)]
pub struct Timer(Pin<Box<tokio::time::Sleep>>);

impl lapswim_node::Timer for Timer {
    fn reset(&mut self, at: Instant) {
        self.0.as_mut().reset(at.into());
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}
