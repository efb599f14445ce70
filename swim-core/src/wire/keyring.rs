//! The keyring: AES-256-GCM keys, one primary.
//!
//! The primary key seals everything we send; every installed key is tried
//! to open what we receive, so a cluster can change keys while running:
//!
//! 1. install the new key on every member ([`KeyringOp::Install`]);
//! 2. make it the primary on every member ([`KeyringOp::Use`]);
//! 3. remove the old key from every member ([`KeyringOp::Remove`]).
//!
//! Between steps every member can open what every other sends, so no
//! packet is lost to the change. docs/security.md walks through it.
//!
//! Nonces are the sealing member's 12-byte prefix (from the operating
//! system, see `Swim::set_nonce_prefix`) with its last eight bytes XORed
//! with a count of the packets it sealed: unique within a member, and
//! across members but for a negligible chance (docs/security.md §3.2).

use alloc::vec::Vec;
use core::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

/// The most keys a keyring holds: rotation needs two, and every key is
/// tried on every packet that fails to open.
pub const MAX_KEYS: usize = 8;

/// Bytes of nonce before every sealed body.
pub const NONCE_LEN: usize = 12;

/// Bytes of authentication tag after every sealed body.
pub const TAG_LEN: usize = 16;

/// A 256-bit AES-GCM key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

impl Key {
    /// A key from its 32 bytes.
    pub const fn new(bytes: [u8; 32]) -> Self {
        Key(bytes)
    }

    /// A key from a slice, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Key)
    }

    /// The key's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short, non-secret name for the key (FNV-1a of its bytes), for
    /// logs and listings.
    pub fn fingerprint(&self) -> u32 {
        let mut h = crate::util::fnv::Fnv::default();
        h.write(b"swim-key");
        h.write(&self.0);
        let v = h.value();
        (v ^ (v >> 32)) as u32
    }
}

impl fmt::Debug for Key {
    /// Never the key itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:08x})", self.fingerprint())
    }
}

/// A change to the keyring, given to the state machine as
/// [`Input::Keyring`](crate::Input::Keyring).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum KeyringOp {
    /// Adds a key that may open received packets. The first key installed
    /// becomes the primary.
    Install(#[cfg_attr(feature = "serde", serde(with = "key_bytes"))] Key),
    /// Makes an installed key the primary: it seals from now on.
    Use(#[cfg_attr(feature = "serde", serde(with = "key_bytes"))] Key),
    /// Removes an installed key; the primary cannot be removed.
    Remove(#[cfg_attr(feature = "serde", serde(with = "key_bytes"))] Key),
    /// Migration: whether to seal what we send, and whether to accept
    /// plaintext. Switching a running cluster on goes install keys (seal
    /// nothing, accept plaintext) → seal everywhere → refuse plaintext
    /// everywhere (memberlist's `GossipVerifyOutgoing` and
    /// `GossipVerifyIncoming`).
    Mode {
        /// Seal outgoing datagrams and frames (when a key is installed).
        seal_outgoing: bool,
        /// Accept plaintext even though a key is installed.
        accept_plaintext: bool,
    },
}

#[cfg(feature = "serde")]
mod key_bytes {
    use super::Key;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(k: &Key, s: S) -> Result<S::Ok, S::Error> {
        k.0.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        <[u8; 32]>::deserialize(d).map(Key)
    }
}

/// Why a keyring change was refused; the keyring is left as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum KeyringError {
    /// [`MAX_KEYS`] keys are installed already.
    Full,
    /// The key is not installed.
    UnknownKey,
    /// The primary key cannot be removed: make another primary first.
    Primary,
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyringError::Full => "the keyring is full",
            KeyringError::UnknownKey => "no such key is installed",
            KeyringError::Primary => "the primary key cannot be removed",
        })
    }
}

impl core::error::Error for KeyringError {}

struct Entry {
    key: Key,
    cipher: Aes256Gcm,
}

/// Installed keys, the primary first.
#[derive(Default)]
pub(crate) struct Keyring {
    keys: Vec<Entry>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|e| e.key)).finish()
    }
}

impl Keyring {
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Installed keys, the primary first.
    pub(crate) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.keys.iter().map(|e| e.key)
    }

    pub(crate) fn install(&mut self, key: Key) -> Result<(), KeyringError> {
        if self.keys.iter().any(|e| e.key == key) {
            return Ok(());
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyringError::Full);
        }
        let cipher = Aes256Gcm::new((&key.0).into());
        self.keys.push(Entry { key, cipher });
        Ok(())
    }

    pub(crate) fn use_key(&mut self, key: Key) -> Result<(), KeyringError> {
        let i = self.keys.iter().position(|e| e.key == key).ok_or(KeyringError::UnknownKey)?;
        if let Some(front) = self.keys.get_mut(..=i) {
            front.rotate_right(1);
        }
        Ok(())
    }

    pub(crate) fn remove(&mut self, key: Key) -> Result<(), KeyringError> {
        match self.keys.iter().position(|e| e.key == key) {
            None => Err(KeyringError::UnknownKey),
            Some(0) => Err(KeyringError::Primary),
            Some(i) => {
                self.keys.remove(i);
                Ok(())
            }
        }
    }

    /// Encrypts `body` in place with the primary key and returns the tag.
    pub(crate) fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], body: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        let primary = self.keys.first()?;
        let tag = primary.cipher.encrypt_in_place_detached(Nonce::from_slice(nonce), aad, body).ok()?;
        Some(tag.into())
    }

    /// Decrypts `ciphertext` into `out` with the first key that
    /// authenticates it; `out` holds the plaintext on success.
    pub(crate) fn open(&self, nonce: &[u8], aad: &[u8], ciphertext: &[u8], tag: &[u8], out: &mut Vec<u8>) -> bool {
        if nonce.len() != NONCE_LEN || tag.len() != TAG_LEN {
            return false;
        }
        let (nonce, tag) = (Nonce::from_slice(nonce), Tag::from_slice(tag));
        for e in &self.keys {
            // A failed attempt leaves garbage behind: start afresh each time.
            out.clear();
            out.extend_from_slice(ciphertext);
            if e.cipher.decrypt_in_place_detached(nonce, aad, out, tag).is_ok() {
                return true;
            }
        }
        out.clear();
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(b: u8) -> Key {
        Key::new([b; 32])
    }

    #[test]
    fn rotation_keeps_one_primary_and_refuses_to_remove_it() {
        let mut r = Keyring::default();
        assert_eq!(r.use_key(k(1)), Err(KeyringError::UnknownKey));
        r.install(k(1)).unwrap();
        r.install(k(2)).unwrap();
        r.install(k(2)).unwrap();
        assert_eq!(r.keys().collect::<Vec<_>>(), [k(1), k(2)]);
        assert_eq!(r.remove(k(1)), Err(KeyringError::Primary));
        r.use_key(k(2)).unwrap();
        assert_eq!(r.keys().collect::<Vec<_>>(), [k(2), k(1)]);
        r.remove(k(1)).unwrap();
        assert_eq!(r.keys().collect::<Vec<_>>(), [k(2)]);
        for i in 0..MAX_KEYS as u8 - 1 {
            r.install(k(10 + i)).unwrap();
        }
        assert_eq!(r.install(k(99)), Err(KeyringError::Full));
    }

    #[test]
    fn any_installed_key_opens_and_no_other_does() {
        let (mut a, mut b) = (Keyring::default(), Keyring::default());
        a.install(k(1)).unwrap();
        b.install(k(2)).unwrap();
        let nonce = [7u8; NONCE_LEN];
        let mut body = *b"hello";
        let tag = a.seal(&nonce, b"aad", &mut body).unwrap();
        let mut out = Vec::new();
        assert!(!b.open(&nonce, b"aad", &body, &tag, &mut out));
        b.install(k(1)).unwrap();
        assert!(b.open(&nonce, b"aad", &body, &tag, &mut out));
        assert_eq!(out, b"hello");
        assert!(!b.open(&nonce, b"AAD", &body, &tag, &mut out), "the associated data is authenticated");
    }
}
