//! HashiCorp memberlist's wire format, version **0.2.2** (the Go module
//! `github.com/hashicorp/memberlist` at tag `v0.2.2`, encoding with
//! `github.com/hashicorp/go-msgpack` 0.5.3): the first slice of speaking
//! to memberlist (and so Consul and Nomad agents) on the wire.
//!
//! # Covered
//!
//! - The message-type bytes ([`message::MessageType`]), numbered as memberlist's.
//! - Datagram messages, typed and borrowed from the input: `ping`,
//!   `indirectPingReq`, `ackResp`, `nackResp`, `suspect`, `alive`, `dead`
//!   and user messages ([`message::Message`]), each with a decoder and an encoder
//!   whose bytes equal Go's for the same values (the rules are in
//!   `msgpack`).
//! - Datagram layers ([`packet`]): the `hasCrcMsg` CRC32 wrapper,
//!   `compoundMsg` (both ways) and `compressMsg` (decoding only: Go's LZW,
//!   LSB, 8-bit literals, with a hard cap on the output that rejects
//!   compression bombs).
//! - Stream messages ([`stream`]): the push-pull header and node states
//!   with the delegate state after them, user messages, the fallback ping
//!   and ack, error responses, and compressed streams.
//! - With the `encryption` feature, `encrypt`: AES-GCM encryption versions
//!   0 (padded) and 1, for datagrams and for streams (`encryptMsg` with its
//!   length as additional data), 16, 24 and 32-byte keys.
//!
//! [`dialect`] and [`stream_dialect`] translate between these messages
//! and swim's own, so that a node with
//! [`Config::memberlist_wire`](crate::Config::memberlist_wire) speaks
//! memberlist's protocol on datagrams and streams.
//!
//! All of it is checked against memberlist itself: datagrams and streams
//! that real memberlist 0.2.2 nodes wrote (`interop/memberlist-recorder`,
//! with and without compression, both encryption versions) are committed
//! under `tests/data/memberlist/`, and a test decodes every one and
//! encodes each layer back to Go's bytes.
//!
//! Decoding never panics and is bounded: every length is checked against
//! the bytes left before anything is taken; fields borrow; the only
//! allocations are the leaf list ([`Limits::max_messages`]), the push-pull
//! records ([`Limits::max_nodes`]), the decompressed bytes
//! ([`Limits::max_inflated`]) and a decrypted copy of the input.
//!
//! # Not yet
//!
//! - Compressing (we decode compressed messages but never send them;
//!   memberlist sends them only with `EnableCompression`).
//! - Cluster labels (`hasLabelMsg`): they arrived in memberlist 0.3.0, so
//!   0.2.2 has none.
//! - Structs sent as msgpack arrays (Go decodes them; no memberlist sends
//!   them), strings that are not UTF-8 (Go takes any bytes).
//!
//! # Where we differ from Go on bad input
//!
//! Where Go 0.2.2 panics or misreads, we return an error: an empty
//! compound part or empty decompressed stream (Go indexes byte 0), a
//! compound of more than 127 parts (Go computes the length table's size
//! in a byte), negative counts in a push-pull header (Go makes a slice of
//! that length), version-0 padding longer than the plaintext. Nesting is
//! bounded ([`Limits::max_depth`]) where Go recurses freely.

pub(crate) mod compress;
pub(crate) mod dialect;
#[cfg(feature = "encryption")]
pub(crate) mod encrypt;
pub(crate) mod error;
pub(crate) mod gossip;
pub(crate) mod heard;
pub(crate) mod message;
pub(crate) mod msgpack;
pub(crate) mod packet;
pub(crate) mod probe;
pub(crate) mod serf;
pub(crate) mod serf_keys;
pub(crate) mod serf_ping;
pub(crate) mod serf_state;
pub(crate) mod stream;
pub(crate) mod stream_dialect;

/// Bounds on the work and memory that decoding one datagram or stream
/// message may take. Every bound is checked before the allocation it
/// guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The most bytes all compressed layers of one input may decompress
    /// to, together. Passing it is [`error::Error::DecompressedTooLarge`].
    pub(crate) max_inflated: usize,
    /// The most leaf messages one datagram may hold (compounds nest, so
    /// 255 per compound is no bound). Passing it is [`error::Error::Oversized`].
    pub(crate) max_messages: usize,
    /// The most compound and compressed layers nested in one another.
    /// Memberlist sends at most a compound inside a compressed layer.
    pub(crate) max_depth: u8,
    /// The most node states one push-pull may carry.
    pub(crate) max_nodes: usize,
}

impl Limits {
    /// For datagrams: 64 KiB decompressed (the largest UDP payload
    /// memberlist reads), 1 024 messages, 4 layers.
    pub(crate) const PACKET: Limits =
        Limits { max_inflated: 64 * 1024, max_messages: 1024, max_depth: 4, max_nodes: 0 };

    /// For streams: 20 MiB decompressed (memberlist's
    /// `maxPushStateBytes`), 65 536 node states.
    pub(crate) const STREAM: Limits =
        Limits { max_inflated: 20 * 1024 * 1024, max_messages: 1, max_depth: 1, max_nodes: 65_536 };
}

#[cfg(test)]
mod tests;
