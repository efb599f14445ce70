//! Stream messages: push-pull, user messages, ping/ack, errors, and
//! compressed streams.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::{cat, lzw_literals};
use crate::wire::memberlist::Limits;
use crate::wire::memberlist::compress::Compress;
use crate::wire::memberlist::error::Error;
use crate::wire::memberlist::message::Body;
use crate::wire::memberlist::probe::{Ack, Ping};
use crate::wire::memberlist::stream::{ErrResp, NodeStateType, PushNodeState, StreamBytes, StreamMessage, open_stream};

/// Checks both directions for one stream message and its bytes.
fn pin(msg: StreamMessage<'_>, bytes: &[u8]) {
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    assert_eq!(out, bytes, "encoding of {msg:?}");
    assert_eq!(StreamMessage::decode(bytes, &Limits::STREAM).unwrap(), msg);
}

pub(super) fn push_pull() -> Vec<u8> {
    cat(&[
        &[0x06], // pushPullMsg
        // pushPullHeader{Nodes: 1, UserStateLen: 2, Join: false}, keys
        // sorted: Join < Nodes < UserStateLen.
        &[0x83, 0xa4],
        b"Join",
        &[0xc2, 0xa5],
        b"Nodes",
        &[0x01, 0xac],
        b"UserStateLen",
        &[0x02],
        // pushNodeState, 7 fields: Addr < Incarnation < Meta < Name < Port
        // < State < Vsn.
        &[0x87, 0xa4],
        b"Addr",
        &[0xa4, 127, 0, 0, 1, 0xab],
        b"Incarnation",
        &[0x01, 0xa4],
        b"Meta",
        &[0xa0, 0xa4], // an empty, non-nil []byte: empty fixstr
        b"Name",
        &[0xa1, b'a', 0xa4],
        b"Port",
        &[0xcd, 0x1f, 0x0a, 0xa5],
        b"State",
        &[0x01, 0xa3], // StateSuspect, a Go int: fixint
        b"Vsn",
        &[0xa6, 1, 5, 2, 2, 5, 4],
        // The delegate's state, raw, UserStateLen bytes.
        b"us",
    ])
}

#[test]
fn push_pull_by_hand() {
    let node = PushNodeState {
        name: "a",
        addr: Some(&[127, 0, 0, 1]),
        port: 7946,
        meta: Some(&[]),
        incarnation: 1,
        state: NodeStateType::SUSPECT,
        vsn: Some(&[1, 5, 2, 2, 5, 4]),
    };
    pin(StreamMessage::PushPull { join: false, nodes: alloc::vec![node], user_state: b"us" }, &push_pull());
}

#[test]
fn user_message_by_hand() {
    // userMsg, userMsgHeader{UserMsgLen: 3}, then the three bytes.
    let bytes = cat(&[&[0x08, 0x81, 0xaa], b"UserMsgLen", &[0x03], b"abc"]);
    pin(StreamMessage::User(b"abc"), &bytes);
}

#[test]
fn error_response_by_hand() {
    let bytes = cat(&[&[0x0d, 0x81, 0xa5], b"Error", &[0xa4], b"oops"]);
    pin(StreamMessage::Err(ErrResp { error: "oops" }), &bytes);
}

#[test]
fn ping_and_ack_over_a_stream() {
    pin(StreamMessage::Ping(Ping { seq_no: 1, node: "b", ..Ping::default() }), &super::vectors::ping_plain());
    pin(StreamMessage::Ack(Ack { seq_no: 7, payload: None }), &super::vectors::ack_nil_payload());
}

#[test]
fn every_prefix_of_a_stream_message_fails() {
    let bytes = push_pull();
    for cut in 0..bytes.len() {
        let prefix = bytes.get(..cut).unwrap();
        assert!(StreamMessage::decode(prefix, &Limits::STREAM).is_err(), "cut at {cut}");
    }
}

#[test]
fn counts_are_checked_before_allocating() {
    // Nodes = 2^31 - 1 in a 30-byte message: refused before any record
    // is reserved.
    let huge = cat(&[
        &[0x06, 0x83, 0xa4],
        b"Join",
        &[0xc2, 0xa5],
        b"Nodes",
        &[0xce, 0x7f, 0xff, 0xff, 0xff, 0xac],
        b"UserStateLen",
        &[0x00],
    ]);
    assert_eq!(StreamMessage::decode(&huge, &Limits::STREAM), Err(Error::Oversized));
    // Under the limit but more than the bytes left.
    let many = cat(&[
        &[0x06, 0x83, 0xa4],
        b"Join",
        &[0xc2, 0xa5],
        b"Nodes",
        &[0xcd, 0x10, 0x00, 0xac],
        b"UserStateLen",
        &[0x00],
    ]);
    assert_eq!(StreamMessage::decode(&many, &Limits::STREAM), Err(Error::Truncated));
    // Negative counts: Go would panic making the slice.
    let negative = cat(&[&[0x06, 0x81, 0xa5], b"Nodes", &[0xff]]);
    assert_eq!(StreamMessage::decode(&negative, &Limits::STREAM), Err(Error::Malformed));
    // A user message longer than what came.
    let short = cat(&[&[0x08, 0x81, 0xaa], b"UserMsgLen", &[0xce, 0xff, 0xff, 0xff, 0xff], b"abc"]);
    assert_eq!(StreamMessage::decode(&short, &Limits::STREAM), Err(Error::Truncated));
    // Types that never travel alone on a stream.
    assert_eq!(StreamMessage::decode(&super::vectors::nack(), &Limits::STREAM), Err(Error::UnexpectedType(11)));
}

#[test]
fn compressed_streams_open() {
    let inner = cat(&[&[0x0d, 0x81, 0xa5], b"Error", &[0xa4], b"oops"]);
    let mut bytes = Vec::new();
    Compress { algo: 0, buf: Some(&lzw_literals(&inner)) }.encode(&mut bytes).unwrap();
    let opened = open_stream(&bytes, &Limits::STREAM).unwrap();
    assert!(matches!(opened, StreamBytes::Owned(_)));
    assert_eq!(
        StreamMessage::decode(opened.as_slice(), &Limits::STREAM).unwrap(),
        StreamMessage::Err(ErrResp { error: "oops" })
    );
    // Plain streams are borrowed as they are.
    let plain = push_pull();
    assert_eq!(open_stream(&plain, &Limits::STREAM).unwrap(), StreamBytes::Borrowed(&plain));
    // Encrypted ones need a key.
    assert_eq!(open_stream(&[0x0a, 0, 0, 0, 0], &Limits::STREAM), Err(Error::Encrypted));
    // An empty decompressed stream has no type byte (Go would panic).
    let mut empty = Vec::new();
    Compress { algo: 0, buf: Some(&lzw_literals(b"")) }.encode(&mut empty).unwrap();
    let opened = open_stream(&empty, &Limits::STREAM).unwrap();
    assert_eq!(StreamMessage::decode(opened.as_slice(), &Limits::STREAM), Err(Error::Truncated));
}

/// The owned fields of a generated [`PushNodeState`]: name, address,
/// port, metadata, incarnation, state.
type OwnedNodeState = (alloc::string::String, Option<Vec<u8>>, u16, Option<Vec<u8>>, u32, i64);

fn node_state() -> impl Strategy<Value = OwnedNodeState> {
    (
        proptest::string::string_regex("[a-z0-9-]{0,40}").unwrap(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..17)),
        any::<u16>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        any::<u32>(),
        any::<i64>(),
    )
}

proptest! {
    #[test]
    fn push_pull_round_trips(
        join in any::<bool>(),
        records in proptest::collection::vec(node_state(), 0..8),
        user_state in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let nodes: Vec<PushNodeState<'_>> = records
            .iter()
            .map(|(name, addr, port, meta, incarnation, state)| PushNodeState {
                name,
                addr: addr.as_deref(),
                port: *port,
                meta: meta.as_deref(),
                incarnation: *incarnation,
                state: NodeStateType(*state),
                vsn: Some(&[1, 5, 2, 0, 0, 0]),
            })
            .collect();
        let msg = StreamMessage::PushPull { join, nodes, user_state: &user_state };
        let mut out = Vec::new();
        msg.encode(&mut out).unwrap();
        prop_assert_eq!(StreamMessage::decode(&out, &Limits::STREAM).unwrap(), msg);
    }
}
