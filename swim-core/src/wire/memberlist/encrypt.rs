//! memberlist's encryption (`security.go` of 0.2.2): AES-GCM with a 16,
//! 24 or 32-byte key, a 12-byte nonce and a 16-byte tag.
//!
//! ```text
//! payload:  | version (1) | nonce (12) | ciphertext | tag (16) |
//! ```
//!
//! Version 0 PKCS#7-pads the plaintext to a multiple of 16 bytes (1 to 16
//! bytes of padding, each holding the padding's length) before sealing;
//! version 1 does not pad. A datagram is the payload alone, sealed with
//! no additional data. A stream is `encryptMsg`, the payload's length as
//! a big-endian `u32`, then the payload, sealed with those first five
//! bytes as additional data.
//!
//! Sans-IO: the caller supplies each nonce (memberlist draws 12 random
//! bytes per message).

use alloc::vec::Vec;

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce, Tag};

use super::error::{EncodeError, Error};
use super::message::MessageType;

/// AES-192-GCM with a 96-bit nonce, which `aes-gcm` does not name.
type Aes192Gcm = AesGcm<Aes192, U12>;

/// The version byte's length.
const VERSION_LEN: usize = 1;
/// The nonce's length.
pub(crate) const NONCE_LEN: usize = 12;
/// The tag's length.
const TAG_LEN: usize = 16;
/// AES's block size, the padding unit of version 0.
const BLOCK: usize = 16;
/// The stream header: `encryptMsg` and a `u32` length.
const STREAM_HEADER_LEN: usize = 5;

/// The largest encrypted stream payload memberlist reads
/// (`maxPushStateBytes`, 20 MiB).
pub(crate) const MAX_STREAM_PAYLOAD: usize = 20 * 1024 * 1024;

/// An encryption version (`encryptionVersion`): memberlist uses 0 when
/// its protocol version is 1, else 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum EncryptionVersion {
    /// AES-GCM over a PKCS#7-padded plaintext.
    V0 = 0,
    /// AES-GCM, no padding.
    V1 = 1,
}

/// A key of the wrong length: memberlist takes 16, 24 or 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BadKeyLength;

/// One key of a memberlist keyring, ready to seal and open.
#[derive(Clone)]
pub(crate) enum Cipher {
    /// A 16-byte key.
    Aes128(Aes128Gcm),
    /// A 24-byte key.
    Aes192(Aes192Gcm),
    /// A 32-byte key.
    Aes256(Aes256Gcm),
}

impl core::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the key.
        f.write_str(match self {
            Cipher::Aes128(_) => "Cipher::Aes128",
            Cipher::Aes192(_) => "Cipher::Aes192",
            Cipher::Aes256(_) => "Cipher::Aes256",
        })
    }
}

impl Cipher {
    /// The cipher for `key`, chosen by its length as Go's `aes.NewCipher`
    /// does.
    pub(crate) fn new(key: &[u8]) -> Result<Self, BadKeyLength> {
        Ok(match key.len() {
            16 => Cipher::Aes128(Aes128Gcm::new_from_slice(key).map_err(|_| BadKeyLength)?),
            24 => Cipher::Aes192(Aes192Gcm::new_from_slice(key).map_err(|_| BadKeyLength)?),
            32 => Cipher::Aes256(Aes256Gcm::new_from_slice(key).map_err(|_| BadKeyLength)?),
            _ => return Err(BadKeyLength),
        })
    }

    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> Option<Tag> {
        let nonce = Nonce::from_slice(nonce);
        match self {
            Cipher::Aes128(c) => c.encrypt_in_place_detached(nonce, aad, buf),
            Cipher::Aes192(c) => c.encrypt_in_place_detached(nonce, aad, buf),
            Cipher::Aes256(c) => c.encrypt_in_place_detached(nonce, aad, buf),
        }
        .ok()
    }

    fn open_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
        let (nonce, tag) = (Nonce::from_slice(nonce), Tag::from_slice(tag));
        match self {
            Cipher::Aes128(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
            Cipher::Aes192(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
            Cipher::Aes256(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
        }
        .is_ok()
    }
}

/// The length of a payload sealing `len` plaintext bytes
/// (`encryptedLength`).
pub(crate) const fn encrypted_length(version: EncryptionVersion, len: usize) -> usize {
    let padding = match version {
        EncryptionVersion::V0 => BLOCK - len % BLOCK,
        EncryptionVersion::V1 => 0,
    };
    // Saturating: a length this large is refused by the callers anyway.
    len.saturating_add(VERSION_LEN + NONCE_LEN + padding + TAG_LEN)
}

/// Appends the payload sealing `msg` (see the module docs). `aad` is
/// empty for a datagram. Nothing is appended if sealing fails, which it
/// does only for plaintexts beyond AES-GCM's 64 GiB.
pub(crate) fn seal(
    version: EncryptionVersion,
    key: &Cipher,
    nonce: &[u8; NONCE_LEN],
    msg: &[u8],
    aad: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.reserve(encrypted_length(version, msg.len()));
    out.push(version as u8);
    out.extend_from_slice(nonce);
    let body = out.len();
    out.extend_from_slice(msg);
    if version == EncryptionVersion::V0 {
        let pad = BLOCK - msg.len() % BLOCK;
        out.resize(out.len() + pad, pad as u8);
    }
    let tag = out.get_mut(body..).and_then(|plain| key.seal_in_place(nonce, aad, plain));
    let Some(tag) = tag else {
        out.truncate(start);
        return Err(EncodeError::TooLong);
    };
    out.extend_from_slice(&tag);
    Ok(())
}

/// Opens a payload with the first key that authenticates it, as
/// `decryptPayload` does, and returns the plaintext (padding removed for
/// version 0). Allocates the payload's length once.
pub(crate) fn open(keys: &[Cipher], payload: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
    let (&v, rest) = payload.split_first().ok_or(Error::Truncated)?;
    let version = match v {
        0 => EncryptionVersion::V0,
        1 => EncryptionVersion::V1,
        _ => return Err(Error::UnknownEncryptionVersion(v)),
    };
    if payload.len() < encrypted_length(version, 0) {
        return Err(Error::Truncated);
    }
    let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>().ok_or(Error::Truncated)?;
    let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or(Error::Truncated)?;
    let mut plain = Vec::new();
    for key in keys {
        plain.clear();
        plain.extend_from_slice(ciphertext);
        if key.open_in_place(nonce, aad, &mut plain, tag) {
            if version == EncryptionVersion::V0 {
                unpad(&mut plain)?;
            }
            return Ok(plain);
        }
    }
    Err(Error::Unauthenticated)
}

/// Removes version 0's padding as Go's `pkcs7decode` does: the last byte
/// says how many bytes to drop, and the padding bytes themselves are not
/// checked (they were authenticated). Where Go would panic (an empty
/// plaintext, or a count beyond it) this is an error.
fn unpad(plain: &mut Vec<u8>) -> Result<(), Error> {
    let &last = plain.last().ok_or(Error::BadPadding)?;
    let keep = plain.len().checked_sub(usize::from(last)).ok_or(Error::BadPadding)?;
    plain.truncate(keep);
    Ok(())
}

/// Appends a sealed datagram: the payload alone, no additional data.
pub(crate) fn seal_packet(
    version: EncryptionVersion,
    key: &Cipher,
    nonce: &[u8; NONCE_LEN],
    msg: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    seal(version, key, nonce, msg, &[], out)
}

/// Opens a sealed datagram (`ingestPacket` with encryption on).
pub(crate) fn open_packet(keys: &[Cipher], packet: &[u8]) -> Result<Vec<u8>, Error> {
    open(keys, packet, &[])
}

/// Appends a sealed stream message (`encryptLocalState`): `encryptMsg`,
/// the payload length as a big-endian `u32`, the payload sealed with
/// those five bytes as additional data.
pub(crate) fn seal_stream(
    version: EncryptionVersion,
    key: &Cipher,
    nonce: &[u8; NONCE_LEN],
    msg: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let len = u32::try_from(encrypted_length(version, msg.len())).map_err(|_| EncodeError::TooLong)?;
    let mut header = [0u8; STREAM_HEADER_LEN];
    let (ty, len_bytes) = header.split_at_mut(1);
    ty.copy_from_slice(&[MessageType::Encrypt as u8]);
    len_bytes.copy_from_slice(&len.to_be_bytes());
    let start = out.len();
    out.extend_from_slice(&header);
    let result = seal(version, key, nonce, msg, &header, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Opens a sealed stream message (`decryptRemoteState`), returning the
/// plaintext (a message, type byte first, possibly compressed) and how
/// many bytes of `bytes` the sealed message took. A length over
/// `max_payload` (memberlist: [`MAX_STREAM_PAYLOAD`]) is refused before
/// anything is read or allocated; fewer bytes than it announces is
/// [`Error::Truncated`] (more may be on their way).
pub(crate) fn open_stream(keys: &[Cipher], bytes: &[u8], max_payload: usize) -> Result<(Vec<u8>, usize), Error> {
    let (header, rest) = bytes.split_first_chunk::<STREAM_HEADER_LEN>().ok_or(Error::Truncated)?;
    let [ty, a, b, c, d] = *header;
    if ty != MessageType::Encrypt as u8 {
        return Err(Error::UnexpectedType(ty));
    }
    let len = usize::try_from(u32::from_be_bytes([a, b, c, d])).map_err(|_| Error::Oversized)?;
    if len > max_payload {
        return Err(Error::Oversized);
    }
    let payload = rest.get(..len).ok_or(Error::Truncated)?;
    let plain = open(keys, payload, header)?;
    Ok((plain, STREAM_HEADER_LEN + len))
}
