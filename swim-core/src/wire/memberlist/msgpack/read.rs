//! A bounded msgpack reader over a borrowed buffer.
//!
//! Every length read from the input is checked against the bytes that
//! remain before anything is taken, so a lying length costs nothing;
//! strings and byte fields borrow from the input, so reading allocates
//! nothing at all.

use crate::wire::memberlist::error::Error;

/// Marker bytes of the msgpack specification that the reader dispatches
/// on (fix ranges are matched inline).
pub(crate) mod marker {
    /// `nil`.
    pub(crate) const NIL: u8 = 0xc0;
    /// `false`.
    pub(crate) const FALSE: u8 = 0xc2;
    /// `true`.
    pub(crate) const TRUE: u8 = 0xc3;
    /// `bin8`, `bin16`, `bin32`.
    pub(crate) const BIN8: u8 = 0xc4;
    /// See [`BIN8`].
    pub(crate) const BIN16: u8 = 0xc5;
    /// See [`BIN8`].
    pub(crate) const BIN32: u8 = 0xc6;
    /// `float32`.
    pub(crate) const FLOAT32: u8 = 0xca;
    /// `float64`.
    pub(crate) const FLOAT64: u8 = 0xcb;
    /// `uint8` .. `uint64`.
    pub(crate) const UINT8: u8 = 0xcc;
    /// See [`UINT8`].
    pub(crate) const UINT16: u8 = 0xcd;
    /// See [`UINT8`].
    pub(crate) const UINT32: u8 = 0xce;
    /// See [`UINT8`].
    pub(crate) const UINT64: u8 = 0xcf;
    /// `int8` .. `int64`.
    pub(crate) const INT8: u8 = 0xd0;
    /// See [`INT8`].
    pub(crate) const INT16: u8 = 0xd1;
    /// See [`INT8`].
    pub(crate) const INT32: u8 = 0xd2;
    /// See [`INT8`].
    pub(crate) const INT64: u8 = 0xd3;
    /// `str8` (new spec), `str16`/`str32` (the old spec's `raw16`/`raw32`).
    pub(crate) const STR8: u8 = 0xd9;
    /// See [`STR8`].
    pub(crate) const STR16: u8 = 0xda;
    /// See [`STR8`].
    pub(crate) const STR32: u8 = 0xdb;
    /// `array16`, `array32`.
    pub(crate) const ARRAY16: u8 = 0xdc;
    /// See [`ARRAY16`].
    pub(crate) const ARRAY32: u8 = 0xdd;
    /// `map16`, `map32`.
    pub(crate) const MAP16: u8 = 0xde;
    /// See [`MAP16`].
    pub(crate) const MAP32: u8 = 0xdf;
}

use marker::*;

/// A cursor over msgpack bytes. Each method consumes one value (or one
/// header) or fails; after a failure the cursor position is unspecified
/// and the whole decode is abandoned.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes `n` raw bytes, or fails without consuming if fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or(Error::Truncated)?;
        self.buf = tail;
        Ok(head)
    }

    /// Takes exactly `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let (head, tail) = self.buf.split_first_chunk::<N>().ok_or(Error::Truncated)?;
        self.buf = tail;
        Ok(*head)
    }

    /// Takes one byte.
    pub(crate) fn byte(&mut self) -> Result<u8, Error> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    fn be16(&mut self) -> Result<u16, Error> {
        self.array().map(u16::from_be_bytes)
    }

    fn be32(&mut self) -> Result<u32, Error> {
        self.array().map(u32::from_be_bytes)
    }

    fn be64(&mut self) -> Result<u64, Error> {
        self.array().map(u64::from_be_bytes)
    }

    /// A 32-bit length as `usize` (lossless on every target we build for;
    /// a target where it is not gets `Truncated`, as no such buffer fits).
    fn len32(&mut self) -> Result<usize, Error> {
        usize::try_from(self.be32()?).map_err(|_| Error::Truncated)
    }

    /// Consumes a `nil` if one is next, telling whether it did. Go decodes
    /// `nil` into any field as that field's zero value.
    pub(crate) fn nil(&mut self) -> bool {
        if self.buf.first() == Some(&NIL) {
            self.buf = self.buf.get(1..).unwrap_or_default();
            true
        } else {
            false
        }
    }

    /// An integer of any msgpack width, as an `i128` so that the whole
    /// `u64` and `i64` ranges fit; fields narrow it with their own range.
    fn integer(&mut self) -> Result<i128, Error> {
        let b = self.byte()?;
        Ok(match b {
            0x00..=0x7f => i128::from(b),
            0xe0..=0xff => i128::from(b as i8),
            UINT8 => i128::from(self.byte()?),
            UINT16 => i128::from(self.be16()?),
            UINT32 => i128::from(self.be32()?),
            UINT64 => i128::from(self.be64()?),
            INT8 => i128::from(self.byte()? as i8),
            INT16 => i128::from(self.be16()? as i16),
            INT32 => i128::from(self.be32()? as i32),
            INT64 => i128::from(self.be64()? as i64),
            _ => return Err(Error::Malformed),
        })
    }

    /// An unsigned field of Go type `T` (`uint8`..`uint64`): any integer
    /// encoding whose value fits, `nil` as zero. A negative value or one
    /// out of range is malformed, as in the Go decoder.
    pub(crate) fn uint<T: TryFrom<i128> + Default>(&mut self) -> Result<T, Error> {
        if self.nil() {
            return Ok(T::default());
        }
        T::try_from(self.integer()?).map_err(|_| Error::Malformed)
    }

    /// A signed field (Go `int`, decoded as 64-bit): any integer encoding
    /// that fits `i64`, `nil` as zero.
    pub(crate) fn int(&mut self) -> Result<i64, Error> {
        if self.nil() {
            return Ok(0);
        }
        i64::try_from(self.integer()?).map_err(|_| Error::Malformed)
    }

    /// A `float64` field: a float of either width, or any integer (the Go
    /// decoder takes both); `nil` as zero.
    pub(crate) fn float(&mut self) -> Result<f64, Error> {
        if self.nil() {
            return Ok(0.0);
        }
        match self.buf.first() {
            Some(&FLOAT32) => {
                self.byte()?;
                Ok(f64::from(f32::from_bits(self.be32()?)))
            }
            Some(&FLOAT64) => {
                self.byte()?;
                Ok(f64::from_bits(self.be64()?))
            }
            _ => Ok(self.integer()? as f64),
        }
    }

    /// An array header: the number of elements, `None` for `nil` (a nil
    /// slice in Go), `Malformed` for anything else. A count that could
    /// not fit in what remains (every element takes a byte at least) is
    /// `Truncated` at once.
    pub(crate) fn array_len(&mut self) -> Result<Option<usize>, Error> {
        let b = self.byte()?;
        let n = match b {
            NIL => return Ok(None),
            0x90..=0x9f => usize::from(b & 0x0f),
            ARRAY16 => usize::from(self.be16()?),
            ARRAY32 => self.len32()?,
            _ => return Err(Error::Malformed),
        };
        if n > self.buf.len() {
            return Err(Error::Truncated);
        }
        Ok(Some(n))
    }

    /// A bool: `true`, `false`, or the fixints `1` and `0` (the Go decoder
    /// takes those too); `nil` as false.
    pub(crate) fn boolean(&mut self) -> Result<bool, Error> {
        match self.byte()? {
            FALSE | 0x00 | NIL => Ok(false),
            TRUE | 0x01 => Ok(true),
            _ => Err(Error::Malformed),
        }
    }

    /// The length of a str (any width) after its marker `b`, if `b` is a
    /// str marker.
    fn str_len(&mut self, b: u8) -> Result<Option<usize>, Error> {
        Ok(Some(match b {
            0xa0..=0xbf => usize::from(b & 0x1f),
            STR8 => usize::from(self.byte()?),
            STR16 => usize::from(self.be16()?),
            STR32 => self.len32()?,
            _ => return Ok(None),
        }))
    }

    /// The bytes of a `string` field: a str of any width (not bin, which
    /// Go's string decoding refuses); `nil` as empty.
    fn str_bytes(&mut self) -> Result<&'a [u8], Error> {
        if self.nil() {
            return Ok(&[]);
        }
        let b = self.byte()?;
        let len = self.str_len(b)?.ok_or(Error::Malformed)?;
        self.take(len)
    }

    /// A `string` field, as UTF-8.
    pub(crate) fn str(&mut self) -> Result<&'a str, Error> {
        core::str::from_utf8(self.str_bytes()?).map_err(|_| Error::BadUtf8)
    }

    /// A map key: the bytes of a str, compared with Go field names as
    /// bytes (so a key need not be UTF-8 to be skipped).
    pub(crate) fn key(&mut self) -> Result<&'a [u8], Error> {
        self.str_bytes()
    }

    /// A `[]byte` field: a str or bin of any width, or `nil` as `None`
    /// (Go keeps a nil slice nil, and re-encodes it as `nil`).
    pub(crate) fn bytes(&mut self) -> Result<Option<&'a [u8]>, Error> {
        if self.nil() {
            return Ok(None);
        }
        let b = self.byte()?;
        let len = match b {
            BIN8 => usize::from(self.byte()?),
            BIN16 => usize::from(self.be16()?),
            BIN32 => self.len32()?,
            _ => self.str_len(b)?.ok_or(Error::Malformed)?,
        };
        self.take(len).map(Some)
    }

    /// A `[]byte` field tagged `omitempty`: absence, `nil` and empty are
    /// the same value on the wire, so it is a plain slice.
    pub(crate) fn bytes_or_empty(&mut self) -> Result<&'a [u8], Error> {
        Ok(self.bytes()?.unwrap_or_default())
    }

    /// A map header: the number of entries, `None` for `nil` (a zero
    /// struct in Go), `Malformed` for anything else. A count that could
    /// not fit in what remains (every key and value takes a byte at
    /// least) is `Truncated` at once.
    fn map_len(&mut self) -> Result<Option<usize>, Error> {
        let b = self.byte()?;
        let n = match b {
            NIL => return Ok(None),
            0x80..=0x8f => usize::from(b & 0x0f),
            MAP16 => usize::from(self.be16()?),
            MAP32 => self.len32()?,
            _ => return Err(Error::Malformed),
        };
        if n.checked_mul(2).is_none_or(|need| need > self.buf.len()) {
            return Err(Error::Truncated);
        }
        Ok(Some(n))
    }

    /// Reads a Go struct encoded as a map. For each entry, `field` gets
    /// the key and this reader positioned at the value; it reads the value
    /// and returns `true`, or returns `false` (without reading) for a key
    /// it does not know, whose value is then skipped, as Go does. A later
    /// duplicate key overwrites an earlier one, as in Go.
    pub(crate) fn read_struct(
        &mut self,
        mut field: impl FnMut(&'a [u8], &mut Self) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let Some(n) = self.map_len()? else { return Ok(()) };
        for _ in 0..n {
            let key = self.key()?;
            if !field(key, self)? {
                self.skip()?;
            }
        }
        Ok(())
    }

    /// Skips one value of any type, containers included. Iterative, so
    /// nesting costs no stack: it counts the values still owed, and a
    /// count larger than the bytes left (every value takes one at least)
    /// fails at once.
    pub(crate) fn skip(&mut self) -> Result<(), Error> {
        let mut owed: usize = 1;
        while owed > 0 {
            owed -= 1;
            let b = self.byte()?;
            let (bytes, values) = match b {
                0x00..=0x7f | 0xe0..=0xff | NIL | FALSE | TRUE => (0, 0),
                0x80..=0x8f => (0, 2 * usize::from(b & 0x0f)),
                0x90..=0x9f => (0, usize::from(b & 0x0f)),
                0xa0..=0xbf => (usize::from(b & 0x1f), 0),
                BIN8 | STR8 => (usize::from(self.byte()?), 0),
                BIN16 | STR16 => (usize::from(self.be16()?), 0),
                BIN32 | STR32 => (self.len32()?, 0),
                // ext8/16/32: a length, a type byte, the data.
                0xc7 => (usize::from(self.byte()?) + 1, 0),
                0xc8 => (usize::from(self.be16()?) + 1, 0),
                0xc9 => (self.len32()?.checked_add(1).ok_or(Error::Truncated)?, 0),
                FLOAT32 => (4, 0),
                FLOAT64 => (8, 0),
                UINT8 | INT8 => (1, 0),
                UINT16 | INT16 => (2, 0),
                UINT32 | INT32 => (4, 0),
                UINT64 | INT64 => (8, 0),
                // fixext 1, 2, 4, 8, 16: a type byte and the data.
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                ARRAY16 => (0, usize::from(self.be16()?)),
                ARRAY32 => (0, self.len32()?),
                MAP16 => (0, 2 * usize::from(self.be16()?)),
                MAP32 => (0, self.len32()?.checked_mul(2).ok_or(Error::Truncated)?),
                // 0xc1 is reserved: the Go decoder refuses it too.
                _ => return Err(Error::Malformed),
            };
            self.take(bytes)?;
            owed = owed.checked_add(values).ok_or(Error::Truncated)?;
            if owed > self.buf.len() {
                return Err(Error::Truncated);
            }
        }
        Ok(())
    }
}
