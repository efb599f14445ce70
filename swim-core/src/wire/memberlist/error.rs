//! Why memberlist bytes were rejected, and why a value could not be
//! encoded.
//!
//! The two are apart on purpose: [`Error`] is junk (or a short read) from
//! a peer, which a caller counts and drops; [`EncodeError`] is a value the
//! caller built that memberlist's format cannot carry, which is a bug or a
//! misuse on our side.

use core::fmt;

/// Why memberlist bytes did not decode.
///
/// Decoding is a pure function of the input: on any of these nothing was
/// produced and no state anywhere was changed. The bytes should be
/// dropped (and counted), exactly as memberlist logs and drops them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub(crate) enum Error {
    /// The input ends inside a value. On a stream this can also mean that
    /// not all bytes have arrived yet.
    Truncated,
    /// A value has the wrong msgpack type for its field, a reserved
    /// marker (`0xc1`), an integer out of its field's range, or a struct
    /// that is not a msgpack map.
    Malformed,
    /// A string field is not UTF-8. Go would accept any bytes there; we
    /// hand out `&str`, so we refuse them.
    BadUtf8,
    /// A count beyond a [`Limits`](super::Limits) bound: too many messages
    /// in one packet, too many node states in one push-pull.
    Oversized,
    /// A message-type byte memberlist 0.2.2 does not define.
    UnknownType(u8),
    /// A message type memberlist defines, but not where it appeared (a
    /// push-pull inside a datagram, a CRC wrapper inside a compound, ...).
    UnexpectedType(u8),
    /// The CRC32 of a `hasCrcMsg` wrapper does not match: corrupted in
    /// flight.
    BadCrc,
    /// A `compress` message names an algorithm other than LZW (0).
    UnknownCompression(u8),
    /// The LZW stream of a `compress` message is invalid (a code beyond the
    /// table) or ends without its end-of-data code.
    BadCompressedData,
    /// Decompressing would exceed the configured cap: a compression bomb,
    /// or simply more than we accept. Decoding stopped at the cap.
    DecompressedTooLarge,
    /// Containers (compound, compressed) nested deeper than the limit.
    TooDeep,
    /// The bytes are encrypted and we have no key (or were built without
    /// the `encryption` feature).
    Encrypted,
    /// An encrypted payload names an encryption version other than 0 or 1.
    UnknownEncryptionVersion(u8),
    /// No key opens the encrypted payload: a wrong key, or tampered with
    /// (AES-GCM cannot tell the two apart).
    Unauthenticated,
    /// The PKCS#7 padding of a version-0 payload claims more bytes than the
    /// payload has (Go would panic on it).
    BadPadding,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("memberlist message truncated"),
            Error::Malformed => f.write_str("malformed memberlist field"),
            Error::BadUtf8 => f.write_str("memberlist string is not UTF-8"),
            Error::Oversized => f.write_str("memberlist count beyond the limit"),
            Error::UnknownType(t) => write!(f, "unknown memberlist message type {t}"),
            Error::UnexpectedType(t) => write!(f, "memberlist message type {t} not valid here"),
            Error::BadCrc => f.write_str("memberlist checksum mismatch"),
            Error::UnknownCompression(a) => write!(f, "unknown memberlist compression algorithm {a}"),
            Error::BadCompressedData => f.write_str("invalid LZW data"),
            Error::DecompressedTooLarge => f.write_str("decompressed memberlist message beyond the cap"),
            Error::TooDeep => f.write_str("memberlist containers nested too deep"),
            Error::Encrypted => f.write_str("encrypted memberlist message and no key"),
            Error::UnknownEncryptionVersion(v) => write!(f, "unknown memberlist encryption version {v}"),
            Error::Unauthenticated => f.write_str("no key authenticates the memberlist message"),
            Error::BadPadding => f.write_str("bad padding in a memberlist version-0 payload"),
        }
    }
}

impl core::error::Error for Error {}

/// Why a value could not be encoded in memberlist's format. Nothing was
/// appended to the output (encoders roll back what they wrote).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub(crate) enum EncodeError {
    /// A field or message longer than the format can say: msgpack's and
    /// an encrypted stream's 32-bit lengths (Go would silently truncate
    /// them), AES-GCM's 64 GiB.
    TooLong,
    /// A compound message with more than 255 parts or a part longer than
    /// 65 535 bytes (Go would silently wrap the count or length).
    TooManyParts,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLong => f.write_str("field too long for msgpack"),
            EncodeError::TooManyParts => f.write_str("compound message with too many or too long parts"),
        }
    }
}

impl core::error::Error for EncodeError {}
