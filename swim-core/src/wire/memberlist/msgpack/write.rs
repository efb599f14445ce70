//! A msgpack writer that picks, for every value, the encoding go-msgpack
//! 0.5.3 picks with a zero `MsgpackHandle`, so that our bytes equal Go's.

use alloc::vec::Vec;

use super::read::marker::*;
use crate::wire::memberlist::error::EncodeError;

/// Writes an unsigned integer in its smallest encoding, as the Go codec
/// does for every `uint*` field (and for non-negative `int`s).
pub(crate) fn uint(out: &mut Vec<u8>, v: u64) {
    if v <= 0x7f {
        out.push(v as u8);
    } else if let Ok(v) = u8::try_from(v) {
        out.extend_from_slice(&[UINT8, v]);
    } else if let Ok(v) = u16::try_from(v) {
        out.push(UINT16);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(v) {
        out.push(UINT32);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(UINT64);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Writes a Go `int`: a non-negative value as [`uint`] does (the codec
/// sends it through the same path), a negative one in the smallest
/// signed encoding.
pub(crate) fn int(out: &mut Vec<u8>, v: i64) {
    if let Ok(u) = u64::try_from(v) {
        return uint(out, u);
    }
    if v >= -32 {
        out.push(v as u8);
    } else if let Ok(v) = i8::try_from(v) {
        out.extend_from_slice(&[INT8, v as u8]);
    } else if let Ok(v) = i16::try_from(v) {
        out.push(INT16);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        out.push(INT32);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(INT64);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Writes a bool.
pub(crate) fn boolean(out: &mut Vec<u8>, v: bool) {
    out.push(if v { TRUE } else { FALSE });
}

/// Writes `nil`.
pub(crate) fn nil(out: &mut Vec<u8>) {
    out.push(NIL);
}

/// Writes a string or byte slice as the old spec's raw: fixstr under 32
/// bytes, else `str16`, else `str32`. Never `str8`: the codec only uses it
/// with `WriteExt` on, which memberlist leaves off.
pub(crate) fn raw(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), EncodeError> {
    let len = bytes.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(STR16);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        let len = u32::try_from(len).map_err(|_| EncodeError::TooLong)?;
        out.push(STR32);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// Writes a `[]byte` field that Go may hold nil: `None` is `nil`.
pub(crate) fn opt_raw(out: &mut Vec<u8>, bytes: Option<&[u8]>) -> Result<(), EncodeError> {
    match bytes {
        Some(b) => raw(out, b),
        None => {
            nil(out);
            Ok(())
        }
    }
}

/// Writes a `float64`, always in its full width, as the Go codec does.
pub(crate) fn float64(out: &mut Vec<u8>, v: f64) {
    out.push(FLOAT64);
    out.extend_from_slice(&v.to_bits().to_be_bytes());
}

/// Writes an array header for `n` elements: fixarray under 16, else
/// `array16`, else `array32`.
pub(crate) fn array_header(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(ARRAY16);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(ARRAY32);
        out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    }
}

/// Writes a map header for `n` entries: fixmap under 16, else `map16`,
/// else `map32`. Our structs have at most eight fields, so only fixmap
/// is ever used; the rest keeps the function total.
pub(crate) fn map_header(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x80 | n as u8);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(MAP16);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(MAP32);
        out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    }
}

/// Writes a struct field name as a map key. Field names are short ASCII,
/// so this is always a fixstr.
pub(crate) fn key(out: &mut Vec<u8>, name: &str) {
    // A name is a Go identifier of our own, never input: under 32 bytes.
    debug_assert!(name.len() < 32, "field names are short");
    out.push(0xa0 | (name.len() & 0x1f) as u8);
    out.extend_from_slice(name.as_bytes());
}

/// Runs `write` on `out`, and on failure removes whatever it appended,
/// so that a failed encode leaves the buffer as it was.
pub(crate) fn atomically(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write(out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}
