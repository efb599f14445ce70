//! Tests of the memberlist wire format: hand-built byte vectors written
//! from reading memberlist 0.2.2 and go-msgpack 0.5.3, bytes recorded
//! from memberlist itself, round trips, truncation at every offset,
//! layers, limits, and arbitrary input.

use alloc::vec::Vec;

mod any_input;
#[cfg(feature = "encryption")]
mod encrypt;
mod framing;
mod layers;
mod msgpack;
mod recorded;
mod round_trip;
mod serf_dialect;
mod stream;
mod vectors;

/// Concatenates byte pieces: vectors read better written piece by piece
/// with a comment on each.
fn cat(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.concat()
}

/// Packs LZW codes, each `width` bits wide, least significant bit first,
/// as Go's `compress/lzw` writer does in `LSB` order (a partial last
/// byte is flushed zero-padded).
fn pack_codes(codes: &[u16], width: u32) -> Vec<u8> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for &code in codes {
        acc |= u32::from(code) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
    out
}

/// What Go's LZW writer (litWidth 8) emits for `input` when no byte pair
/// repeats, so every code is a literal: the clear code 256 (Go writes one
/// first), one literal per byte, then the end code 257, all 9 bits wide
/// (the width grows only once 512 codes exist).
fn lzw_literals(input: &[u8]) -> Vec<u8> {
    let mut codes = alloc::vec![256u16];
    codes.extend(input.iter().map(|&b| u16::from(b)));
    codes.push(257);
    pack_codes(&codes, 9)
}
