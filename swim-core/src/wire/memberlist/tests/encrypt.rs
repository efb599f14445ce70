//! memberlist's AES-GCM layer, against the published GCM test vectors
//! (McGrew and Viega, test cases 1 and 2: AES-128, zero key, zero nonce).

use alloc::vec::Vec;

use super::cat;
use crate::wire::memberlist::encrypt::{
    BadKeyLength, Cipher, EncryptionVersion, MAX_STREAM_PAYLOAD, encrypted_length, open, open_packet, open_stream,
    seal_packet, seal_stream,
};
use crate::wire::memberlist::error::Error;

const ZERO_NONCE: [u8; 12] = [0; 12];
/// GCM test case 1: the tag of an empty plaintext.
const TC1_TAG: [u8; 16] =
    [0x58, 0xe2, 0xfc, 0xce, 0xfa, 0x7e, 0x30, 0x61, 0x36, 0x7f, 0x1d, 0x57, 0xa4, 0xe7, 0x45, 0x5a];
/// GCM test case 2: 16 zero bytes encrypt to this, with this tag.
const TC2_CT: [u8; 16] =
    [0x03, 0x88, 0xda, 0xce, 0x60, 0xb6, 0xa3, 0x92, 0xf3, 0x28, 0xc2, 0xb9, 0x71, 0xb2, 0xfe, 0x78];
const TC2_TAG: [u8; 16] =
    [0xab, 0x6e, 0x47, 0xd4, 0x2c, 0xec, 0x13, 0xbd, 0xf5, 0x3a, 0x67, 0xb2, 0x12, 0x57, 0xbd, 0xdf];

fn zero_key() -> Cipher {
    Cipher::new(&[0; 16]).unwrap()
}

#[test]
fn version_1_datagram_by_hand() {
    // version 1, the nonce, no ciphertext for an empty message, the tag.
    let expected = cat(&[&[0x01], &ZERO_NONCE, &TC1_TAG]);
    let mut out = Vec::new();
    seal_packet(EncryptionVersion::V1, &zero_key(), &ZERO_NONCE, b"", &mut out).unwrap();
    assert_eq!(out, expected);
    assert_eq!(open_packet(&[zero_key()], &expected).unwrap(), b"");
    // 16 zero bytes: test case 2, unpadded.
    let expected = cat(&[&[0x01], &ZERO_NONCE, &TC2_CT, &TC2_TAG]);
    out.clear();
    seal_packet(EncryptionVersion::V1, &zero_key(), &ZERO_NONCE, &[0; 16], &mut out).unwrap();
    assert_eq!(out, expected);
}

#[test]
fn version_0_pads_to_the_block() {
    // An empty message gains a full block of 16 bytes of 0x10.
    let mut out = Vec::new();
    seal_packet(EncryptionVersion::V0, &zero_key(), &ZERO_NONCE, b"", &mut out).unwrap();
    assert_eq!(out.len(), encrypted_length(EncryptionVersion::V0, 0));
    assert_eq!(out.len(), 1 + 12 + 16 + 16);
    assert_eq!(open_packet(&[zero_key()], &out).unwrap(), b"");
    for len in [1usize, 15, 16, 17, 100] {
        let msg = alloc::vec![0x42u8; len];
        out.clear();
        seal_packet(EncryptionVersion::V0, &zero_key(), &ZERO_NONCE, &msg, &mut out).unwrap();
        assert_eq!(out.len(), encrypted_length(EncryptionVersion::V0, len));
        // Version, nonce and tag around a whole number of blocks.
        assert_eq!((out.len() - 1 - 12 - 16) % 16, 0);
        assert_eq!(open_packet(&[zero_key()], &out).unwrap(), msg);
    }
    // Go's pkcs7decode trusts the last byte: test case 2's plaintext ends
    // in 0, so nothing is removed.
    let tc2 = cat(&[&[0x00], &ZERO_NONCE, &TC2_CT, &TC2_TAG]);
    assert_eq!(open_packet(&[zero_key()], &tc2).unwrap(), [0; 16]);
}

#[test]
fn padding_beyond_the_plaintext_is_refused() {
    // Seal 16 bytes ending in 0xff as version 1, then relabel the payload
    // version 0 (the version byte is not authenticated, in Go either):
    // the padding would claim 255 of 16 bytes, where Go panics.
    let mut msg = [0u8; 16];
    msg[15] = 0xff;
    let mut out = Vec::new();
    seal_packet(EncryptionVersion::V1, &zero_key(), &ZERO_NONCE, &msg, &mut out).unwrap();
    out[0] = 0;
    assert_eq!(open_packet(&[zero_key()], &out), Err(Error::BadPadding));
}

#[test]
fn keys_are_tried_in_order_and_any_size_works() {
    let k16 = Cipher::new(&[1; 16]).unwrap();
    let k24 = Cipher::new(&[2; 24]).unwrap();
    let k32 = Cipher::new(&[3; 32]).unwrap();
    assert_eq!(Cipher::new(&[0; 20]).unwrap_err(), BadKeyLength);
    for key in [&k16, &k24, &k32] {
        let mut out = Vec::new();
        seal_packet(EncryptionVersion::V1, key, &[9; 12], b"hello", &mut out).unwrap();
        let keyring = [k16.clone(), k24.clone(), k32.clone()];
        assert_eq!(open_packet(&keyring, &out).unwrap(), b"hello");
        assert_eq!(open_packet(&[zero_key()], &out), Err(Error::Unauthenticated));
    }
}

#[test]
fn bad_payloads() {
    assert_eq!(open(&[zero_key()], &[], &[]), Err(Error::Truncated));
    assert_eq!(open(&[zero_key()], &[2; 40], &[]), Err(Error::UnknownEncryptionVersion(2)));
    // Version 1 needs 29 bytes at least, version 0 needs 45.
    assert_eq!(open(&[zero_key()], &[1; 28], &[]), Err(Error::Truncated));
    assert_eq!(open(&[zero_key()], &[0; 44], &[]), Err(Error::Truncated));
    let mut out = Vec::new();
    seal_packet(EncryptionVersion::V1, &zero_key(), &ZERO_NONCE, b"abc", &mut out).unwrap();
    for cut in 0..out.len() {
        assert!(open_packet(&[zero_key()], out.get(..cut).unwrap()).is_err(), "cut at {cut}");
    }
    for i in 1..out.len() {
        let mut flipped = out.clone();
        flipped[i] ^= 0x80;
        assert_eq!(open_packet(&[zero_key()], &flipped), Err(Error::Unauthenticated), "flip at {i}");
    }
}

#[test]
fn streams_authenticate_their_header() {
    let msg = super::stream::push_pull();
    let mut out = Vec::new();
    seal_stream(EncryptionVersion::V1, &zero_key(), &ZERO_NONCE, &msg, &mut out).unwrap();
    // encryptMsg, then the payload's length, big-endian.
    let len = encrypted_length(EncryptionVersion::V1, msg.len());
    assert_eq!(out.get(..5).unwrap(), cat(&[&[0x0a], &(len as u32).to_be_bytes()]));
    assert_eq!(out.len(), 5 + len);
    // The same payload sealed as a datagram differs: the header is
    // additional data.
    let mut packet = Vec::new();
    seal_packet(EncryptionVersion::V1, &zero_key(), &ZERO_NONCE, &msg, &mut packet).unwrap();
    assert_ne!(packet.get(13..), out.get(18..));
    let (plain, used) = open_stream(&[zero_key()], &out, MAX_STREAM_PAYLOAD).unwrap();
    assert_eq!((plain, used), (msg.clone(), out.len()));
    // Trailing bytes are not the message's.
    out.extend_from_slice(b"next");
    assert_eq!(open_stream(&[zero_key()], &out, MAX_STREAM_PAYLOAD).unwrap().1, 5 + len);
    for cut in 0..5 + len {
        assert_eq!(open_stream(&[zero_key()], out.get(..cut).unwrap(), MAX_STREAM_PAYLOAD), Err(Error::Truncated));
    }
    // Over the limit: refused from the header alone.
    assert_eq!(open_stream(&[zero_key()], &[0x0a, 0x01, 0x40, 0x00, 0x01], MAX_STREAM_PAYLOAD), Err(Error::Oversized));
    assert_eq!(open_stream(&[zero_key()], &out, 10), Err(Error::Oversized));
}
