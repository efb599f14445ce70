//! Datagram layers: CRC, compound, compression, and the limits on them.

use alloc::vec::Vec;

use super::{cat, lzw_literals, vectors};
use crate::wire::memberlist::Limits;
use crate::wire::memberlist::compress::Compress;
use crate::wire::memberlist::error::{EncodeError, Error};
use crate::wire::memberlist::message::{Body, Message};
use crate::wire::memberlist::packet::{Compound, Unpacked, encode_compound, encode_with_crc, strip_crc};
use crate::wire::memberlist::probe::Nack;

fn compound(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_compound(parts, &mut out).unwrap();
    out
}

/// A `compressMsg` around `lzw`, as Go's `compressPayload` frames it.
fn compressed(lzw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Compress { algo: 0, buf: Some(lzw) }.encode(&mut out).unwrap();
    out
}

#[test]
fn crc_wrapper_by_hand() {
    // CRC32-IEEE("123456789") is the standard check value 0xcbf43926.
    let mut out = Vec::new();
    encode_with_crc(b"123456789", &mut out);
    assert_eq!(out, cat(&[&[0x0c, 0xcb, 0xf4, 0x39, 0x26], b"123456789"]));
    assert_eq!(strip_crc(&out), Ok(&b"123456789"[..]));
    let mut bad = out.clone();
    if let Some(last) = bad.last_mut() {
        *last ^= 1;
    }
    assert_eq!(strip_crc(&bad), Err(Error::BadCrc));
    // Under five bytes, a leading 12 is not a CRC header (Go's rule): it
    // is left for the command dispatch to reject.
    assert_eq!(strip_crc(&[0x0c, 1, 2, 3]), Ok(&[0x0c, 1, 2, 3][..]));
}

#[test]
fn compound_by_hand() {
    let nack = vectors::nack();
    let bytes = cat(&[
        &[0x07, 0x02],                         // compoundMsg, 2 parts
        &[0x00, nack.len() as u8, 0x00, 0x03], // big-endian u16 lengths
        &nack,
        &[0x08, b'h', b'i'], // a user message
    ]);
    assert_eq!(compound(&[&nack, b"\x08hi"]), bytes);
    let unpacked = Unpacked::parse(&bytes, &Limits::PACKET).unwrap();
    let msgs = unpacked.decode_all().unwrap();
    assert_eq!(msgs, [Message::Nack(Nack { seq_no: 70_000 }), Message::User(b"hi")]);
    assert_eq!(unpacked.truncated(), 0);
}

#[test]
fn compound_limits_on_encoding() {
    let parts: Vec<&[u8]> = alloc::vec![b"\x08"; 256];
    let mut out = alloc::vec![0xaa];
    assert_eq!(encode_compound(&parts, &mut out), Err(EncodeError::TooManyParts));
    let big = alloc::vec![0u8; 65_536];
    assert_eq!(encode_compound(&[b"\x08", &big], &mut out), Err(EncodeError::TooManyParts));
    assert_eq!(out, [0xaa], "nothing appended on failure");
    // 255 parts is fine, and the table is 2 bytes per part (Go wraps
    // `numParts*2` in a byte for more than 127).
    let bytes = compound(&parts[..255]);
    let c = Compound::parse(bytes.get(1..).unwrap()).unwrap();
    assert_eq!(c.parts().count(), 255);
    assert_eq!(c.truncated(), 0);
}

#[test]
fn a_truncated_compound_keeps_the_parts_that_fit() {
    let bytes = compound(&[&vectors::nack(), &vectors::dead(), b"\x08xyz"]);
    for cut in 0..bytes.len() {
        let prefix = bytes.get(..cut).unwrap();
        match Unpacked::parse(prefix, &Limits::PACKET) {
            // Cut inside the count or the length table.
            Err(e) => assert_eq!(e, Error::Truncated),
            // Cut inside the parts: Go handles those that fit and counts
            // the rest as truncated. Never all three.
            Ok(u) => {
                assert!(u.truncated() > 0, "cut at {cut}");
                assert_eq!(u.len() + u.truncated(), 3);
                assert!(u.decode_all().is_ok());
            }
        }
    }
}

#[test]
fn each_part_decodes_on_its_own() {
    // An empty part (Go would panic on it), an unknown type, a push-pull
    // (streams only) and a good message: only the last decodes.
    let bytes = compound(&[b"", b"\x63", b"\x06", &vectors::nack()]);
    let unpacked = Unpacked::parse(&bytes, &Limits::PACKET).unwrap();
    let results: Vec<_> = unpacked.messages().collect();
    assert_eq!(
        results,
        [
            Err(Error::Truncated),
            Err(Error::UnknownType(0x63)),
            Err(Error::UnexpectedType(6)),
            Ok(Message::Nack(Nack { seq_no: 70_000 })),
        ]
    );
    assert!(unpacked.decode_all().is_err());
}

#[test]
fn lzw_of_one_byte_by_hand() {
    // Go's lzw writer, LSB, litWidth 8, on "a": clear (256), 'a' (97),
    // end (257), 9 bits each, least significant first:
    // 256 | 97 << 9 | 257 << 18 = 0x0404_c300, little-endian in 4 bytes.
    let lzw = [0x00, 0xc3, 0x04, 0x04];
    assert_eq!(lzw_literals(b"a"), lzw);
    let mut out = Vec::new();
    Compress { algo: 0, buf: Some(&lzw) }.decompress_into(&mut out, 100).unwrap();
    assert_eq!(out, b"a");
    // The compress struct as Go encodes it: keys "Algo" < "Buf", the
    // compressionType 0 a fixint, the buffer a raw string.
    let bytes = cat(&[&[0x09, 0x82, 0xa4], b"Algo", &[0x00, 0xa3], b"Buf", &[0xa4], &lzw]);
    assert_eq!(compressed(&lzw), bytes);
    assert_eq!(Compress::decode(bytes.get(1..).unwrap()).unwrap(), Compress { algo: 0, buf: Some(&lzw) });
}

#[test]
fn a_compressed_message_unpacks() {
    // A nack's bytes have no repeated pair, so Go's writer emits literals.
    let inner = vectors::nack();
    let bytes = compressed(&lzw_literals(&inner));
    let unpacked = Unpacked::parse(&bytes, &Limits::PACKET).unwrap();
    assert_eq!(unpacked.decode_all().unwrap(), [Message::Nack(Nack { seq_no: 70_000 })]);
    // Within a CRC wrapper, as memberlist sends it to protocol-5 peers
    // with compression on: compress first, then the CRC.
    let mut with_crc = Vec::new();
    encode_with_crc(&bytes, &mut with_crc);
    let unpacked = Unpacked::parse(&with_crc, &Limits::PACKET).unwrap();
    assert_eq!(unpacked.len(), 1);
}

#[test]
fn a_compressed_compound_unpacks_with_weezl_output_too() {
    let inner = compound(&[&vectors::suspect(), &vectors::alive(), &vectors::dead(), &vectors::suspect()]);
    let lzw = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 8).encode(&inner).unwrap();
    let bytes = compressed(&lzw);
    let unpacked = Unpacked::parse(&bytes, &Limits::PACKET).unwrap();
    assert_eq!(unpacked.len(), 4);
    assert!(unpacked.decode_all().is_ok());
}

#[test]
fn bad_compressed_data_is_refused() {
    let mut out = Vec::new();
    // Unknown algorithm.
    assert_eq!(
        Compress { algo: 1, buf: Some(&[0x00, 0xc3, 0x04, 0x04]) }.decompress_into(&mut out, 100),
        Err(Error::UnknownCompression(1))
    );
    // No end code: clear, 'a', then nothing (Go: unexpected EOF).
    let no_end = super::pack_codes(&[256, 97], 9);
    assert_eq!(Compress { algo: 0, buf: Some(&no_end) }.decompress_into(&mut out, 100), Err(Error::BadCompressedData));
    // A code beyond the table: clear, then 300 (only 258 exists next).
    let bad_code = super::pack_codes(&[256, 300, 257], 9);
    assert_eq!(
        Compress { algo: 0, buf: Some(&bad_code) }.decompress_into(&mut out, 100),
        Err(Error::BadCompressedData)
    );
    assert!(out.is_empty());
}

#[test]
fn a_compression_bomb_is_rejected_within_the_cap() {
    // 4 MiB of zeros compresses to a few KiB: 1 000 times over the
    // datagram cap.
    let zeros = alloc::vec![0u8; 4 << 20];
    let lzw = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 8).encode(&zeros).unwrap();
    assert!(lzw.len() < 64 * 1024, "the bomb fits a datagram: {} bytes", lzw.len());
    let bytes = compressed(&lzw);
    assert_eq!(Unpacked::parse(&bytes, &Limits::PACKET).unwrap_err(), Error::DecompressedTooLarge);
    // The buffer never grew past the cap on the way.
    let mut out = Vec::new();
    let cap = 10_000;
    assert_eq!(Compress { algo: 0, buf: Some(&lzw) }.decompress_into(&mut out, cap), Err(Error::DecompressedTooLarge));
    assert!(out.is_empty() && out.capacity() <= cap, "capacity {}", out.capacity());
}

#[test]
fn the_cap_spans_nested_layers() {
    // Two compressed layers of 40 KiB each inside one compound: each is
    // under the 64 KiB cap, together they are not.
    let part = compound(&[&alloc::vec![0x08u8; 40 * 1024]]);
    let lzw = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 8).encode(&part).unwrap();
    let one = compressed(&lzw);
    assert_eq!(Unpacked::parse(&one, &Limits::PACKET).unwrap().len(), 1);
    let two = compound(&[&one, &one]);
    assert_eq!(Unpacked::parse(&two, &Limits::PACKET).unwrap_err(), Error::DecompressedTooLarge);
}

#[test]
fn nesting_and_message_counts_are_bounded() {
    let mut bytes = vectors::nack();
    for _ in 0..4 {
        bytes = compound(&[&bytes]);
    }
    assert_eq!(Unpacked::parse(&bytes, &Limits::PACKET).unwrap().len(), 1);
    let deeper = compound(&[&bytes]);
    assert_eq!(Unpacked::parse(&deeper, &Limits::PACKET).unwrap_err(), Error::TooDeep);

    let four = compound(&[b"\x08", b"\x08", b"\x08", b"\x08"]);
    let limits = Limits { max_messages: 3, ..Limits::PACKET };
    assert_eq!(Unpacked::parse(&four, &limits).unwrap_err(), Error::Oversized);
}
