//! Arbitrary and mutated input: decoders never panic, stay within their
//! limits, and whatever decodes re-encodes to something that decodes to
//! the same values.
//!
//! The allocations decoding makes are the leaf list, the push-pull
//! records, the decompressed bytes and a decrypted copy; the first three
//! are checked against their limits here (the capacity of each, not only
//! its length), the last is the size of the input.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::{lzw_literals, stream, vectors};
use crate::wire::memberlist::Limits;
use crate::wire::memberlist::compress::Compress;
use crate::wire::memberlist::message::{Body, Message};
use crate::wire::memberlist::packet::{Unpacked, encode_compound};
use crate::wire::memberlist::stream::{StreamMessage, open_stream};

/// Small limits, so that random input reaches them.
const TIGHT: Limits = Limits { max_inflated: 2048, max_messages: 16, max_depth: 3, max_nodes: 64 };

/// Decodes `bytes` every way there is and checks the invariants.
fn check(bytes: &[u8]) {
    for limits in [Limits::PACKET, TIGHT] {
        if let Ok(unpacked) = Unpacked::parse(bytes, &limits) {
            assert!(unpacked.len() <= limits.max_messages);
            assert!(unpacked.inflated_capacity() <= limits.max_inflated, "{}", unpacked.inflated_capacity());
            for msg in unpacked.messages().flatten() {
                let mut out = Vec::new();
                msg.encode(&mut out).unwrap();
                assert_eq!(Message::decode(&out).unwrap(), msg);
            }
        }
    }
    for limits in [Limits::STREAM, TIGHT] {
        if let Ok(opened) = open_stream(bytes, &limits) {
            assert!(opened.as_slice().len() <= limits.max_inflated.max(bytes.len()));
            if let Ok(msg) = StreamMessage::decode(opened.as_slice(), &limits) {
                if let StreamMessage::PushPull { nodes, .. } = &msg {
                    assert!(nodes.len() <= limits.max_nodes);
                    assert!(nodes.capacity() <= limits.max_nodes);
                }
                let mut out = Vec::new();
                msg.encode(&mut out).unwrap();
                assert_eq!(StreamMessage::decode(&out, &limits).unwrap(), msg);
            }
        }
    }
    #[cfg(feature = "encryption")]
    {
        use crate::wire::memberlist::encrypt::{Cipher, MAX_STREAM_PAYLOAD, open_packet, open_stream};
        let keys = [Cipher::new(&[7; 16]).unwrap()];
        let _ = open_packet(&keys, bytes);
        let _ = open_stream(&keys, bytes, MAX_STREAM_PAYLOAD);
    }
}

/// Valid inputs of every kind, for the mutation test to start from.
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = alloc::vec![
        vectors::ping_plain(),
        vectors::ping_with_source(),
        vectors::indirect_ping(),
        vectors::ack_nil_payload(),
        vectors::nack(),
        vectors::suspect(),
        vectors::alive(),
        vectors::dead(),
        stream::push_pull(),
    ];
    let mut compound = Vec::new();
    encode_compound(&[&vectors::alive(), &vectors::nack(), &vectors::dead()], &mut compound).unwrap();
    let mut compressed = Vec::new();
    Compress { algo: 0, buf: Some(&lzw_literals(&vectors::nack())) }.encode(&mut compressed).unwrap();
    seeds.push(compound);
    seeds.push(compressed);
    seeds
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn arbitrary_bodies_behind_every_type_byte_never_panic(
        ty in 0u8..16,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = alloc::vec![ty];
        bytes.extend_from_slice(&body);
        check(&bytes);
    }

    #[test]
    fn mutated_valid_input_never_panics(
        seed in 0usize..11,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut bytes = seeds().swap_remove(seed);
        for (at, x) in flips {
            let len = bytes.len();
            if let Some(b) = bytes.get_mut(at % len) {
                *b ^= x;
            }
        }
        let keep = bytes.len() - cut % (bytes.len() / 4 + 1);
        bytes.truncate(keep);
        check(&bytes);
    }
}

#[test]
fn every_seed_is_valid() {
    for (i, seed) in seeds().iter().enumerate() {
        let ok = Unpacked::parse(seed, &Limits::PACKET).is_ok_and(|u| u.decode_all().is_ok())
            || StreamMessage::decode(seed, &Limits::STREAM).is_ok();
        assert!(ok, "seed {i}");
        check(seed);
    }
}
