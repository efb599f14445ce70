//! `compressMsg`: a msgpack `compress{Algo, Buf}` whose `Buf` is the
//! wrapped message compressed with Go's `compress/lzw` (LSB bit order,
//! 8-bit literals, the GIF flavour). Decoding only.
//!
//! LZW expands up to about 2 700 times (a 12-bit code can stand for
//! 4 096 bytes), so a 1 KiB datagram could claim megabytes: output is
//! produced in chunks and decoding stops with
//! [`Error::DecompressedTooLarge`] as soon as a cap would be passed, the
//! buffer never growing past the cap.

use alloc::vec::Vec;

use weezl::{BitOrder, LzwStatus, decode::Decoder};

use super::error::{EncodeError, Error};
use super::message::{Body, MessageType};
use super::msgpack::read::Reader;
use super::msgpack::write;

/// `lzwAlgo`, the only `compressionType` memberlist 0.2.2 defines.
pub(crate) const LZW_ALGO: u8 = 0;

/// `lzwLitWidth` in memberlist's `util.go`: literals are whole bytes.
const LZW_LIT_WIDTH: u8 = 8;

/// Output is produced this many bytes at a time, on the stack.
const CHUNK: usize = 4096;

/// `compress`: the wrapper of a compressed message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Compress<'a> {
    /// `Algo`: the algorithm; only [`LZW_ALGO`] is known.
    pub(crate) algo: u8,
    /// `Buf`: the compressed bytes (`None` is Go's nil).
    pub(crate) buf: Option<&'a [u8]>,
}

impl<'a> Body<'a> for Compress<'a> {
    const TYPE: MessageType = MessageType::Compress;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = Compress::default();
        r.read_struct(|key, r| {
            match key {
                b"Algo" => m.algo = r.uint()?,
                b"Buf" => m.buf = r.bytes()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::map_header(out, 2);
        write::key(out, "Algo");
        write::uint(out, self.algo.into());
        write::key(out, "Buf");
        write::opt_raw(out, self.buf)
    }
}

impl Compress<'_> {
    /// Appends the decompressed message to `out`, which may then hold at
    /// most `cap` bytes in all (what it held before counts: one cap spans
    /// every compressed layer of a packet).
    ///
    /// Like Go's reader, the stream must end with its end-of-data code;
    /// bytes after it are ignored. On error `out` is left as it was.
    pub(crate) fn decompress_into(&self, out: &mut Vec<u8>, cap: usize) -> Result<(), Error> {
        if self.algo != LZW_ALGO {
            return Err(Error::UnknownCompression(self.algo));
        }
        let start = out.len();
        let result = lzw_decode(self.buf.unwrap_or_default(), out, cap);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

/// Decodes an LZW stream, appending to `out` without letting it exceed
/// `cap` bytes.
fn lzw_decode(mut input: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), Error> {
    let mut decoder = Decoder::new(BitOrder::Lsb, LZW_LIT_WIDTH);
    let mut chunk = [0u8; CHUNK];
    loop {
        let res = decoder.decode_bytes(input, &mut chunk);
        input = input.get(res.consumed_in..).unwrap_or_default();
        let produced = chunk.get(..res.consumed_out).unwrap_or_default();
        if out.len().saturating_add(produced.len()) > cap {
            return Err(Error::DecompressedTooLarge);
        }
        grow_within(out, produced.len(), cap);
        out.extend_from_slice(produced);
        match res.status {
            Ok(LzwStatus::Done) => return Ok(()),
            // Out of input before the end code: Go's reader reports an
            // unexpected EOF.
            Ok(LzwStatus::NoProgress) => return Err(Error::BadCompressedData),
            Ok(LzwStatus::Ok) if res.consumed_in == 0 && res.consumed_out == 0 => {
                return Err(Error::BadCompressedData);
            }
            Ok(LzwStatus::Ok) => {}
            Err(_) => return Err(Error::BadCompressedData),
        }
    }
}

/// Reserves room for `more` bytes, doubling as `Vec` would but never
/// asking for more than `cap` in all, so the cap bounds the allocation
/// itself and not only the length.
fn grow_within(out: &mut Vec<u8>, more: usize, cap: usize) {
    let need = out.len().saturating_add(more);
    if need <= out.capacity() {
        return;
    }
    let target = out.capacity().saturating_mul(2).max(need).min(cap.max(need));
    out.reserve_exact(target - out.len());
}
