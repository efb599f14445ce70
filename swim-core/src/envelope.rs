//! Closing and opening the envelope of every packet we send and receive:
//! the cluster label, the checksum of plain packets, and (with the
//! `encryption` feature) sealing with the keyring.
//!
//! Invariants: what we send carries our label and is sealed exactly when a
//! key is installed and sealing is on; what we accept carries our label,
//! and is sealed whenever a key is installed and plaintext is refused.

use alloc::vec::Vec;

#[cfg(feature = "encryption")]
use crate::keyring::{Key, Keyring, KeyringError, KeyringOp, NONCE_LEN, TAG_LEN};
use crate::rng::Random;
use crate::wire::envelope::{self, Header, Label, Layout};
use crate::wire::{self, DecodeError, Messages, PacketWriter};

/// Our label, keys and migration mode.
#[derive(Debug)]
pub(crate) struct Envelope {
    label: Label,
    #[cfg(feature = "encryption")]
    keyring: Keyring,
    #[cfg(feature = "encryption")]
    seal_outgoing: bool,
    #[cfg(feature = "encryption")]
    accept_plaintext: bool,
}

impl Envelope {
    pub(crate) fn new(label: Label) -> Self {
        Envelope {
            label,
            #[cfg(feature = "encryption")]
            keyring: Keyring::default(),
            #[cfg(feature = "encryption")]
            seal_outgoing: true,
            #[cfg(feature = "encryption")]
            accept_plaintext: false,
        }
    }

    /// Whether what we send now is sealed.
    pub(crate) fn sealing(&self) -> bool {
        #[cfg(feature = "encryption")]
        {
            self.seal_outgoing && !self.keyring.is_empty()
        }
        #[cfg(not(feature = "encryption"))]
        {
            false
        }
    }

    /// Whether plaintext is refused.
    fn requires_seal(&self) -> bool {
        #[cfg(feature = "encryption")]
        {
            !self.accept_plaintext && !self.keyring.is_empty()
        }
        #[cfg(not(feature = "encryption"))]
        {
            false
        }
    }

    /// The room every packet we build keeps for its envelope.
    pub(crate) fn layout(&self) -> Layout {
        #[cfg(feature = "encryption")]
        if self.sealing() {
            return Layout { head: 2 + self.label.wire_len() + NONCE_LEN, tail: TAG_LEN };
        }
        Layout::plain(&self.label)
    }

    /// Writes the header, then the checksum or the seal, around the
    /// messages of `writer` (made with [`Envelope::layout`]).
    pub(crate) fn close(&self, writer: PacketWriter, rng: &mut dyn Random) -> Vec<u8> {
        let layout = writer.layout();
        let mut buf = writer.into_buffer();
        #[cfg(feature = "encryption")]
        if self.sealing() && layout == self.layout() {
            let head = envelope::write_header(&mut buf, envelope::FLAG_SEALED, &self.label);
            let mut nonce = [0u8; NONCE_LEN];
            let (a, b) = (rng.next_u64().to_le_bytes(), rng.next_u64().to_le_bytes());
            nonce[..8].copy_from_slice(&a);
            nonce[8..].copy_from_slice(&b[..NONCE_LEN - 8]);
            let body_at = head + NONCE_LEN;
            if let Some(n) = buf.get_mut(head..body_at) {
                n.copy_from_slice(&nonce);
            }
            let (aad, body) = buf.split_at_mut(head.min(body_at));
            let body = body.get_mut(NONCE_LEN..).unwrap_or_default();
            if let Some(tag) = self.keyring.seal(&nonce, aad, body) {
                buf.extend_from_slice(&tag);
                return buf;
            }
        }
        let _ = rng;
        let head = envelope::write_header(&mut buf, 0, &self.label);
        if head < layout.head {
            // Built for a seal that is no longer ours to make.
            buf.drain(head..layout.head);
        }
        envelope::append_checksum(&mut buf);
        buf
    }

    /// Checks a received packet of at most `limit` bytes and returns its
    /// messages: borrowed from `packet` when plain, decrypted into
    /// `scratch` when sealed. Changes nothing.
    pub(crate) fn open<'b>(
        &self,
        packet: &'b [u8],
        limit: usize,
        scratch: &'b mut Vec<u8>,
    ) -> Result<&'b [u8], DecodeError> {
        let h = Header::parse(packet, limit)?;
        // Most clusters have no label: settle that without a call to the
        // platform's memcmp, which costs tens of nanoseconds even on empty
        // slices (a vector-unit start-up) on a path taken by every packet.
        let ours = self.label.as_bytes();
        if h.label.len() != ours.len() || (!ours.is_empty() && h.label != ours) {
            return Err(DecodeError::Label);
        }
        if !h.sealed {
            if self.requires_seal() {
                return Err(DecodeError::Plaintext);
            }
            return h.plain_body();
        }
        self.open_sealed(&h, scratch)
    }

    /// [`Envelope::open`], then the messages decoded into `out`: the whole
    /// way from received bytes to messages, datagram or frame.
    pub(crate) fn decode<'b>(
        &self,
        packet: &'b [u8],
        limit: usize,
        scratch: &'b mut Vec<u8>,
        out: &mut Messages<'b>,
    ) -> Result<(), DecodeError> {
        wire::decode_body(self.open(packet, limit, scratch)?, out)
    }

    #[cfg(feature = "encryption")]
    fn open_sealed<'b>(&self, h: &Header<'b>, scratch: &'b mut Vec<u8>) -> Result<&'b [u8], DecodeError> {
        if self.keyring.is_empty() {
            return Err(DecodeError::Sealed);
        }
        if h.body.len() < NONCE_LEN + TAG_LEN {
            return Err(DecodeError::Truncated);
        }
        let (nonce, rest) = h.body.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        if self.keyring.open(nonce, h.bytes, ciphertext, tag, scratch) {
            Ok(scratch.as_slice())
        } else {
            Err(DecodeError::Unauthenticated)
        }
    }

    #[cfg(not(feature = "encryption"))]
    fn open_sealed<'b>(&self, _: &Header<'b>, _: &'b mut Vec<u8>) -> Result<&'b [u8], DecodeError> {
        Err(DecodeError::Sealed)
    }

    /// Applies a keyring change.
    #[cfg(feature = "encryption")]
    pub(crate) fn apply(&mut self, op: KeyringOp) -> Result<(), KeyringError> {
        match op {
            KeyringOp::Install(k) => self.keyring.install(k),
            KeyringOp::Use(k) => self.keyring.use_key(k),
            KeyringOp::Remove(k) => self.keyring.remove(k),
            KeyringOp::Mode { seal_outgoing, accept_plaintext } => {
                self.seal_outgoing = seal_outgoing;
                self.accept_plaintext = accept_plaintext;
                Ok(())
            }
        }
    }

    /// Installed keys, the primary first.
    #[cfg(feature = "encryption")]
    pub(crate) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.keyring.keys()
    }
}

#[cfg(all(test, feature = "encryption"))]
mod tests {
    use super::*;
    use crate::rng::tests::rng;
    use crate::wire::Message;

    fn writer(e: &Envelope) -> PacketWriter {
        PacketWriter::with_layout(1400, Vec::new(), e.layout())
    }

    fn packet(e: &Envelope) -> Vec<u8> {
        let mut w = writer(e);
        w.push(&Message::Ping { seq: 5, target: "b" }).unwrap();
        e.close(w, &mut rng(1))
    }

    fn opens(e: &Envelope, p: &[u8]) -> Result<usize, DecodeError> {
        let mut scratch = Vec::new();
        let mut out = Messages::new();
        e.decode(p, wire::MAX_DATAGRAM, &mut scratch, &mut out)?;
        Ok(out.len())
    }

    #[test]
    fn labels_keys_and_modes_decide_what_opens() {
        let plain = Envelope::new(Label::EMPTY);
        let labelled = Envelope::new(Label::new("blue").unwrap());
        let mut sealed = Envelope::new(Label::new("blue").unwrap());
        sealed.apply(KeyringOp::Install(Key::new([1; 32]))).unwrap();
        let mut other_key = Envelope::new(Label::new("blue").unwrap());
        other_key.apply(KeyringOp::Install(Key::new([2; 32]))).unwrap();

        assert_eq!(opens(&plain, &packet(&plain)), Ok(1));
        assert_eq!(opens(&labelled, &packet(&labelled)), Ok(1));
        assert_eq!(opens(&plain, &packet(&labelled)), Err(DecodeError::Label));
        assert_eq!(opens(&labelled, &packet(&plain)), Err(DecodeError::Label));
        assert_eq!(opens(&sealed, &packet(&sealed)), Ok(1));
        assert_eq!(opens(&other_key, &packet(&sealed)), Err(DecodeError::Unauthenticated));
        assert_eq!(opens(&labelled, &packet(&sealed)), Err(DecodeError::Sealed));
        assert_eq!(opens(&sealed, &packet(&labelled)), Err(DecodeError::Plaintext));

        // Migration: seal nothing and accept plaintext, then seal, then refuse.
        let mut migrating = Envelope::new(Label::new("blue").unwrap());
        migrating.apply(KeyringOp::Install(Key::new([1; 32]))).unwrap();
        migrating.apply(KeyringOp::Mode { seal_outgoing: false, accept_plaintext: true }).unwrap();
        assert_eq!(opens(&labelled, &packet(&migrating)), Ok(1));
        assert_eq!(opens(&migrating, &packet(&labelled)), Ok(1));
        assert_eq!(opens(&migrating, &packet(&sealed)), Ok(1));
        migrating.apply(KeyringOp::Mode { seal_outgoing: true, accept_plaintext: true }).unwrap();
        assert_eq!(opens(&sealed, &packet(&migrating)), Ok(1));
        assert_eq!(opens(&migrating, &packet(&labelled)), Ok(1));
        migrating.apply(KeyringOp::Mode { seal_outgoing: true, accept_plaintext: false }).unwrap();
        assert_eq!(opens(&migrating, &packet(&labelled)), Err(DecodeError::Plaintext));
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let plain = Envelope::new(Label::new("x").unwrap());
        let mut sealed = Envelope::new(Label::EMPTY);
        sealed.apply(KeyringOp::Install(Key::new([9; 32]))).unwrap();
        for e in [&plain, &sealed] {
            let p = packet(e);
            assert_eq!(opens(e, &p), Ok(1));
            for bit in 0..p.len() * 8 {
                let mut q = p.clone();
                q[bit / 8] ^= 1 << (bit % 8);
                assert!(opens(e, &q).is_err(), "bit {bit} of {} flipped was accepted", p.len());
            }
        }
    }

    #[test]
    fn sealing_costs_its_overhead_and_fits_the_budget() {
        let mut sealed = Envelope::new(Label::new("lab").unwrap());
        sealed.apply(KeyringOp::Install(Key::new([3; 32]))).unwrap();
        let mut w = PacketWriter::with_layout(600, Vec::new(), sealed.layout());
        while w.push(&Message::Ack { seq: 1_000_000 }).is_ok() {}
        let p = sealed.close(w, &mut rng(2));
        assert!(p.len() <= 600, "{}", p.len());
        assert_eq!(sealed.layout().overhead(), 2 + 4 + NONCE_LEN + TAG_LEN);
    }
}
