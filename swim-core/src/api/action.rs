//! What comes out of the state machine: [`Action`]s for the runtime.

use core::net::SocketAddr;

use super::event::Event;
use super::input::StreamId;
use crate::util::time::Instant;
use crate::wire::Datagram;

/// One output of the state machine, for the runtime to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send `packet` as one datagram to `to`. Handing the packet back with
    /// [`Swim::recycle`](crate::Swim::recycle) afterwards lets the next
    /// datagram reuse its buffer.
    Send {
        /// The destination.
        to: SocketAddr,
        /// The encoded datagram.
        packet: Datagram,
    },
    /// Call [`Swim::handle_timeout`](crate::Swim::handle_timeout) at `at`
    /// (replacing any earlier request).
    SetTimer(Instant),
    /// Something happened that the application may want to know.
    Event(Event),
    /// Connect a reliable stream to `to`, named `id` from now on. Frames
    /// for it may follow at once: the runtime sends them, in order, once
    /// connected, or reports [`Input::StreamClosed`](crate::Input::StreamClosed) if it cannot connect.
    OpenStream {
        /// The stream's handle (a [`StreamId::Outbound`]).
        id: StreamId,
        /// Where to connect.
        to: SocketAddr,
    },
    /// Send `frame` on stream `id`, behind a 4-byte big-endian length
    /// prefix (docs/protocol.md, "Streams").
    SendFrame {
        /// The stream.
        id: StreamId,
        /// The frame's payload, at most [`wire::MAX_FRAME`] bytes.
        ///
        /// [`wire::MAX_FRAME`]: crate::wire::MAX_FRAME
        frame: Datagram,
    },
    /// Close stream `id` once the frames sent on it have gone out. The
    /// state machine has forgotten it: nothing more is reported about it.
    CloseStream {
        /// The stream.
        id: StreamId,
    },
}
