//! Finding where each message of a memberlist stream ends
//! ([`message_len`]): streams carry no length prefix.

use alloc::string::String;
use alloc::vec::Vec;

use crate::wire::memberlist::Limits;
use crate::wire::memberlist::error::Error;
use crate::wire::memberlist::stream::message_len;

/// Every recorded stream (one message each: memberlist writes one per
/// connection and direction), plain, compressed or encrypted.
fn recorded_streams() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/memberlist");
    let manifest = std::fs::read_to_string(dir.join("manifest.txt")).unwrap();
    manifest
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            match (f.next(), f.next(), f.next()) {
                (Some("file"), Some(path), Some("stream")) => Some(path.into()),
                _ => None,
            }
        })
        .map(|p: String| {
            let bytes = std::fs::read(dir.join(&p)).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn a_recorded_stream_message_ends_where_memberlist_ended_it_and_not_before() {
    let streams = recorded_streams();
    assert!(streams.len() >= 30, "{} recorded streams", streams.len());
    for (path, bytes) in &streams {
        assert_eq!(message_len(bytes, &Limits::STREAM), Ok(Some(bytes.len())), "{path}");
        // Every shorter prefix waits for more; checking all of a large
        // push-pull is quadratic, so large ones are sampled.
        let step = (bytes.len() / 400).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            assert_eq!(message_len(&bytes[..cut], &Limits::STREAM), Ok(None), "{path} cut at {cut}");
        }
        // The next message's bytes do not move this one's end.
        let mut two = bytes.clone();
        two.extend_from_slice(bytes);
        assert_eq!(message_len(&two, &Limits::STREAM), Ok(Some(bytes.len())), "{path} twice");
    }
}

#[test]
fn junk_and_oversized_stream_messages_are_errors_at_once() {
    assert_eq!(message_len(&[0xff], &Limits::STREAM), Err(Error::UnknownType(0xff)));
    // An encrypted message announcing more than memberlist's 20 MiB.
    let sealed_too_long = [10, 0x01, 0x40, 0x00, 0x01];
    assert_eq!(message_len(&sealed_too_long, &Limits::STREAM), Err(Error::Oversized));
    // A datagram-only message type on a stream.
    assert!(matches!(message_len(&[7, 0, 0], &Limits::STREAM), Err(Error::UnexpectedType(7))));
}
