//! Run a [`lapswim_core`] member on smol: UDP datagrams through an
//! [`smol::Async`] socket, reliable streams over [`smol::net::TcpStream`]s,
//! the core's one deadline on an
//! [`smol::Timer`], the task on smol's global executor. Everything else
//! (the action loop, the clock, the handle) is the runtime-neutral
//! [`lapswim_node`], re-exported here.
//!
//! Features `encryption` (sealing with a keyring) and `trace` (recording
//! a node for `swim replay`) turn on lapswim-node's, off by default.
//!
//! ```no_run
//! use lapswim_smol::{NodeBuilder, NodeEvent};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let node = lapswim_smol::start(NodeBuilder::new("a", "127.0.0.1:0".parse()?))?;
//!     node.join(&["127.0.0.1:7946".parse()?]).await?;
//!     let events = node.events();
//!     while let Some(NodeEvent::Protocol { event, .. }) = events.next().await {
//!         println!("{event:?}");
//!     }
//!     Ok(())
//! })
//! # }
//! ```

use core::future::Future;
use core::net::SocketAddr;
use core::task::{Context, Poll};
use core::time::Duration;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

pub use lapswim_node::{
    Config, Event, Events, IoStats, Label, Member, MemberName, MemberState, Node, NodeBuilder, NodeError, NodeEvent,
    NodeStats, PeerFilter, StartError, StreamEnd, StreamId, StreamLimits, StreamStats,
};
#[cfg(feature = "encryption")]
pub use lapswim_node::{Key, KeyringOp};
use smol::{Async, Executor};

/// The smol [`Runtime`](lapswim_node::Runtime): sockets on the async-io
/// reactor, tasks on an executor of the caller's or on smol's global one
/// (its threads start on first use; `SMOL_THREADS` sets how many).
#[derive(Clone, Debug, Default)]
pub struct Smol {
    executor: Option<Arc<Executor<'static>>>,
}

impl Smol {
    /// Tasks go to `executor`; the caller runs it (say
    /// `smol::block_on(executor.run(...))`, which keeps the nodes, the
    /// reactor and the caller on one thread).
    pub fn on(executor: Arc<Executor<'static>>) -> Self {
        Smol { executor: Some(executor) }
    }
}

/// Starts a node on smol's global executor. Works from any thread, inside
/// or outside an async context.
pub fn start(builder: NodeBuilder) -> Result<Node, StartError> {
    builder.start(&Smol::default())
}

/// Starts a node whose task runs on `executor`.
pub fn start_on(executor: &Arc<Executor<'static>>, builder: NodeBuilder) -> Result<Node, StartError> {
    builder.start(&Smol::on(Arc::clone(executor)))
}

impl lapswim_node::Runtime for Smol {
    type Socket = Socket;
    type Timer = Timer;
    type Listener = smol::net::TcpListener;
    // Rather than `Async<TcpStream>`, whose close only flushes: this one
    // shuts the sending side down, as a stream's close must.
    type Connection = smol::net::TcpStream;

    fn udp(&self, socket: UdpSocket) -> io::Result<Socket> {
        Async::new(socket).map(Socket)
    }

    fn timer(&self, at: Instant) -> Timer {
        Timer(smol::Timer::at(at))
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        match &self.executor {
            Some(ex) => ex.spawn(task).detach(),
            None => smol::spawn(task).detach(),
        }
    }

    fn tcp_listener(&self, listener: TcpListener) -> io::Result<Self::Listener> {
        smol::net::TcpListener::try_from(listener)
    }

    async fn accept<'a>(&'a self, listener: &'a Self::Listener) -> io::Result<(Self::Connection, SocketAddr)> {
        let (stream, from) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, from))
    }

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Connection> {
        let stream = smol::net::TcpStream::connect(to).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn sleep(&self, duration: Duration) {
        smol::Timer::after(duration).await;
    }
}

/// A UDP socket registered with async-io's reactor.
#[derive(Debug)]
pub struct Socket(Async<UdpSocket>);

impl lapswim_node::UdpIo for Socket {
    fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        loop {
            // Readiness first: a receive tried on every poll of the task
            // would mostly fail with `WouldBlock`, one syscall each.
            match self.0.poll_readable(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            match self.0.get_ref().recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }

    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        // The socket is non-blocking: a full buffer is `WouldBlock`.
        self.0.get_ref().send_to(buf, to)
    }
}

/// An async-io timer, re-armed in place.
#[derive(Debug)]
pub struct Timer(smol::Timer);

impl lapswim_node::Timer for Timer {
    fn reset(&mut self, at: Instant) {
        self.0.set_at(at);
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        use core::pin::Pin;
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}
