//! Closing and opening the envelope of every packet we send and receive:
//! the cluster label, the checksum of plain packets, and (with the
//! `encryption` feature) sealing with the keyring.
//!
//! Invariants: what we send carries our label and is sealed exactly when a
//! key is installed and sealing is on; what we accept carries our label,
//! and is sealed whenever a key is installed and plaintext is refused; no
//! two packets we seal share a nonce (a fixed prefix, its last eight bytes
//! XORed with a counter of the packets sealed); what we seal names us as
//! its sender and binds the channel it travels on.
//!
//! A sealed packet's associated data is its header followed by one byte
//! that is not sent, [`Channel::domain`]: a datagram does not open as a
//! stream frame, nor a frame as a datagram. Its plaintext starts with the
//! sender's name (a length byte, then the name), authenticated with the
//! messages after it.

mod memberlist_stream;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::api::StreamId;
use crate::util::name::MemberName;
use crate::wire::frame::{Header, Label, Layout};
#[cfg(feature = "encryption")]
use crate::wire::keyring::{Key, Keyring, KeyringError, KeyringOp, NONCE_LEN, TAG_LEN};
use crate::wire::memberlist::stream_dialect::Draft;
use crate::wire::{self, DecodeError, Messages, PacketWriter};

/// What a packet travels as: bound into every seal, so a sealed packet
/// opens only on the channel it was sealed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Channel {
    /// A datagram.
    Datagram,
    /// A frame on a stream.
    Frame,
}

#[cfg(feature = "encryption")]
impl Channel {
    /// The byte appended to the associated data (never sent).
    pub(crate) const fn domain(self) -> u8 {
        match self {
            Channel::Datagram => 0x01,
            Channel::Frame => 0x02,
        }
    }
}

/// The longest header: version, flags, label length and label.
#[cfg(feature = "encryption")]
const MAX_HEADER: usize = 2 + 1 + crate::wire::frame::MAX_LABEL_LEN;

/// A received packet, opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Opened<'b> {
    /// The sender's name, sealed inside; `None` for a plain packet.
    pub(crate) sender: Option<&'b str>,
    /// The messages' bytes.
    pub(crate) messages: &'b [u8],
}

/// Our label, name, keys and migration mode.
#[derive(Debug)]
pub(crate) struct Envelope {
    label: Label,
    /// Our name, the first field of everything we seal.
    #[cfg(feature = "encryption")]
    sender: MemberName,
    #[cfg(feature = "encryption")]
    keyring: Keyring,
    #[cfg(feature = "encryption")]
    seal_outgoing: bool,
    #[cfg(feature = "encryption")]
    accept_plaintext: bool,
    /// The nonce of our next seal is this prefix with its last eight bytes
    /// XORed with `sealed`.
    #[cfg(feature = "encryption")]
    nonce_prefix: [u8; NONCE_LEN],
    /// Packets sealed so far: a nonce repeats only after 2^64 seals.
    #[cfg(feature = "encryption")]
    sealed: u64,
    /// Datagrams and stream frames in memberlist 0.2.2's format rather than ours
    /// ([`Config::memberlist_wire`](crate::Config::memberlist_wire)).
    memberlist: bool,
    /// Plain memberlist, or serf's layer on it.
    flavour: wire::memberlist::dialect::Flavour,
    /// Our name and address, which our pings in memberlist's format give
    /// as memberlist's do.
    source: Option<(MemberName, core::net::SocketAddr)>,
    /// Members' versions and serf's query IDs, as heard.
    heard: wire::memberlist::heard::Heard,
    /// The keyring's keys as memberlist ciphers, the primary first, while
    /// datagrams are in memberlist's format (empty otherwise): kept beside
    /// the keyring, so that no datagram pays for a key schedule.
    #[cfg(feature = "encryption")]
    ciphers: Vec<wire::memberlist::encrypt::Cipher>,
    /// Push-pulls being gathered from a sync's frames, by stream, while
    /// frames are closed ([`Envelope::close_frame`]); empty between.
    drafts: BTreeMap<StreamId, Draft>,
}

/// Where a received packet came from, as far as its envelope tells.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin<'b> {
    /// The sender a sealed packet in our format names.
    pub(crate) sender: Option<&'b str>,
    /// Whether one of our keys opened it.
    pub(crate) sealed: bool,
}

impl Envelope {
    /// An envelope with `label` for member `sender`, no key, and nonces
    /// from `nonce_prefix`.
    pub(crate) fn new(label: Label, sender: &MemberName, nonce_prefix: [u8; 12]) -> Self {
        #[cfg(not(feature = "encryption"))]
        let _ = (sender, nonce_prefix);
        Envelope {
            label,
            #[cfg(feature = "encryption")]
            sender: sender.clone(),
            #[cfg(feature = "encryption")]
            keyring: Keyring::default(),
            #[cfg(feature = "encryption")]
            seal_outgoing: true,
            #[cfg(feature = "encryption")]
            accept_plaintext: false,
            #[cfg(feature = "encryption")]
            nonce_prefix,
            #[cfg(feature = "encryption")]
            sealed: 0,
            memberlist: false,
            flavour: wire::memberlist::dialect::Flavour::default(),
            source: None,
            heard: wire::memberlist::heard::Heard::new(sender.as_str()),
            #[cfg(feature = "encryption")]
            ciphers: Vec::new(),
            drafts: BTreeMap::new(),
        }
    }

    /// Datagrams and stream frames in memberlist 0.2.2's format from now
    /// on (`true`, with serf's layer on it when `serf`), or in ours.
    pub(crate) fn set_memberlist(&mut self, on: bool, serf: bool, me: (&MemberName, core::net::SocketAddr)) {
        self.memberlist = on;
        self.source = on.then(|| (me.0.clone(), me.1));
        self.flavour = wire::memberlist::dialect::Flavour { serf: on && serf };
        #[cfg(feature = "encryption")]
        self.refresh_ciphers();
    }

    /// Rebuilds [`Envelope::ciphers`] from the keyring: every key is 32
    /// bytes, which memberlist takes as AES-256.
    #[cfg(feature = "encryption")]
    fn refresh_ciphers(&mut self) {
        self.ciphers.clear();
        if self.memberlist {
            let ciphers = self.keyring.keys().filter_map(|k| wire::memberlist::encrypt::Cipher::new(k.as_bytes()).ok());
            self.ciphers.extend(ciphers);
        }
    }

    /// Plain memberlist's dialect or serf's (when in memberlist's format).
    pub(crate) fn flavour(&self) -> wire::memberlist::dialect::Flavour {
        self.flavour
    }

    /// What was heard in memberlist's format, to be added to.
    pub(crate) fn heard_mut(&mut self) -> &mut wire::memberlist::heard::Heard {
        &mut self.heard
    }

    /// Whether datagrams are in memberlist's format.
    pub(crate) fn is_memberlist(&self) -> bool {
        self.memberlist
    }

    /// Seals from now on with nonces from `prefix`. The counter runs on,
    /// so setting a prefix twice still repeats no nonce.
    #[cfg(feature = "encryption")]
    pub(crate) fn set_nonce_prefix(&mut self, prefix: [u8; NONCE_LEN]) {
        self.nonce_prefix = prefix;
    }

    /// The prefix of our nonces.
    #[cfg(feature = "trace")]
    pub(crate) fn nonce_prefix(&self) -> [u8; NONCE_LEN] {
        self.nonce_prefix
    }

    /// The nonce of the next seal, which it uses up.
    #[cfg(feature = "encryption")]
    fn next_nonce(&mut self) -> [u8; NONCE_LEN] {
        let mut nonce = self.nonce_prefix;
        for (b, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(self.sealed.to_be_bytes()) {
            *b ^= c;
        }
        self.sealed = self.sealed.wrapping_add(1);
        nonce
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
        // A memberlist datagram is built anew from the messages (see
        // `close`): ours need room for nothing else.
        #[cfg(feature = "encryption")]
        if self.sealing() && !self.memberlist {
            let sender = 1 + self.sender.as_str().len();
            return Layout { head: 2 + self.label.wire_len() + NONCE_LEN + sender, tail: TAG_LEN };
        }
        Layout::plain(&self.label)
    }

    /// Writes the header, then the checksum or the seal, around the
    /// messages of `writer` (made with [`Envelope::layout`]), to travel on
    /// `channel`.
    pub(crate) fn close(&mut self, writer: PacketWriter, channel: Channel) -> Vec<u8> {
        let layout = writer.layout();
        let mut buf = writer.into_buffer();
        if self.memberlist && channel == Channel::Datagram {
            return self.close_memberlist(buf.get(layout.head..).unwrap_or_default());
        }
        #[cfg(feature = "encryption")]
        if self.sealing() && layout == self.layout() {
            let head = crate::wire::frame::write_header(&mut buf, crate::wire::frame::FLAG_SEALED, &self.label);
            let nonce = self.next_nonce();
            let body_at = head + NONCE_LEN;
            if let Some(n) = buf.get_mut(head..body_at) {
                n.copy_from_slice(&nonce);
            }
            let name = self.sender.as_str().as_bytes();
            if let Some(len) = buf.get_mut(body_at) {
                // A member name is at most 128 bytes.
                *len = name.len() as u8;
            }
            if let Some(n) = buf.get_mut(body_at + 1..body_at + 1 + name.len()) {
                n.copy_from_slice(name);
            }
            let mut aad = [0; MAX_HEADER + 1];
            let aad = associated_data(buf.get(..head).unwrap_or_default(), channel, &mut aad);
            let body = buf.get_mut(body_at..).unwrap_or_default();
            if let Some(tag) = self.keyring.seal(&nonce, aad, body) {
                buf.extend_from_slice(&tag);
                return buf;
            }
        }
        let _ = channel;
        let head = crate::wire::frame::write_header(&mut buf, 0, &self.label);
        if head < layout.head {
            // Built for a seal that is no longer ours to make.
            buf.drain(head..layout.head);
        }
        crate::wire::frame::append_checksum(&mut buf);
        buf
    }

    /// Our messages (`body`, in our format) as a memberlist datagram,
    /// sealed as memberlist seals (version 1) when we seal; empty when
    /// memberlist has a word for none of them.
    fn close_memberlist(&mut self, body: &[u8]) -> Vec<u8> {
        let mut msgs = Messages::new();
        let mut plain = Vec::new();
        // Our own writer made `body`, and every message we write
        // encodes in memberlist's format: neither fails.
        if wire::decode_body(body, &mut msgs).is_err()
            || {
                let me = self.source.as_ref().map(|(name, addr)| (name.as_str(), *addr));
                wire::memberlist::dialect::encode_packet_from(&msgs, self.flavour, &self.heard, me, &mut plain).is_err()
            }
            || plain.is_empty()
        {
            return Vec::new();
        }
        self.seal_memberlist(plain, Channel::Datagram)
    }

    /// `plain`, a memberlist datagram or stream message, sealed as
    /// memberlist seals it on `channel` (version 1, with our primary key)
    /// when we seal; as it is otherwise. Empty if sealing fails.
    fn seal_memberlist(&mut self, plain: Vec<u8>, channel: Channel) -> Vec<u8> {
        #[cfg(feature = "encryption")]
        if self.sealing() {
            use wire::memberlist::encrypt::{EncryptionVersion, seal_packet, seal_stream};
            let nonce = self.next_nonce();
            let mut sealed = Vec::new();
            let seal = match channel {
                Channel::Datagram => seal_packet,
                Channel::Frame => seal_stream,
            };
            let primary = self.ciphers.first();
            let ok = primary.is_some_and(|c| seal(EncryptionVersion::V1, c, &nonce, &plain, &mut sealed).is_ok());
            return if ok { sealed } else { Vec::new() };
        }
        let _ = channel;
        plain
    }

    /// A memberlist datagram's messages, in our format, into `out`:
    /// opened with our keys when we have any (a datagram no key opens is
    /// tried as plaintext only while plaintext is accepted). Returns
    /// whether a key opened it.
    fn decode_memberlist<'b>(
        &mut self,
        packet: &'b [u8],
        limit: usize,
        scratch: &'b mut Vec<u8>,
        out: &mut Messages<'b>,
    ) -> Result<bool, DecodeError> {
        use wire::memberlist::dialect::decode_packet;
        if packet.is_empty() {
            return Err(DecodeError::Empty);
        }
        if packet.len() > limit {
            return Err(DecodeError::Oversized);
        }
        #[cfg(feature = "encryption")]
        if !self.ciphers.is_empty() {
            use wire::memberlist::dialect::decode_error;
            match wire::memberlist::encrypt::open_packet(&self.ciphers, packet) {
                Ok(plain) => return decode_packet(&plain, self.flavour, &mut self.heard, scratch, out).map(|()| true),
                Err(e) if self.requires_seal() => return Err(decode_error(e)),
                Err(_) => {}
            }
        }
        decode_packet(packet, self.flavour, &mut self.heard, scratch, out).map(|()| false)
    }

    /// Checks a received packet of at most `limit` bytes that came on
    /// `channel` and returns its messages (and, sealed, its sender):
    /// borrowed from `packet` when plain, decrypted into `scratch` when
    /// sealed. Changes nothing.
    pub(crate) fn open<'b>(
        &self,
        packet: &'b [u8],
        limit: usize,
        channel: Channel,
        scratch: &'b mut Vec<u8>,
    ) -> Result<Opened<'b>, DecodeError> {
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
            return Ok(Opened { sender: None, messages: h.plain_body()? });
        }
        self.open_sealed(&h, channel, scratch)
    }

    /// [`Envelope::open`], then the messages decoded into `out`: the whole
    /// way from received bytes to messages, datagram or frame. Returns
    /// whether the packet was sealed, and the sender named inside a sealed
    /// packet of ours (memberlist's name none). The one thing it keeps: in
    /// memberlist's format, the versions and serf query IDs heard (to say
    /// them back).
    pub(crate) fn decode<'b>(
        &mut self,
        packet: &'b [u8],
        limit: usize,
        channel: Channel,
        scratch: &'b mut Vec<u8>,
        out: &mut Messages<'b>,
    ) -> Result<Origin<'b>, DecodeError> {
        if self.memberlist && channel == Channel::Datagram {
            let sealed = self.decode_memberlist(packet, limit, scratch, out)?;
            return Ok(Origin { sender: None, sealed });
        }
        let opened = self.open(packet, limit, channel, scratch)?;
        wire::decode_body(opened.messages, out)?;
        Ok(Origin { sender: opened.sender, sealed: opened.sender.is_some() })
    }

    #[cfg(feature = "encryption")]
    fn open_sealed<'b>(
        &self,
        h: &Header<'b>,
        channel: Channel,
        scratch: &'b mut Vec<u8>,
    ) -> Result<Opened<'b>, DecodeError> {
        if self.keyring.is_empty() {
            return Err(DecodeError::Sealed);
        }
        if h.body.len() < NONCE_LEN + TAG_LEN {
            return Err(DecodeError::Truncated);
        }
        let (nonce, rest) = h.body.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut aad = [0; MAX_HEADER + 1];
        let aad = associated_data(h.bytes, channel, &mut aad);
        if !self.keyring.open(nonce, aad, ciphertext, tag, scratch) {
            return Err(DecodeError::Unauthenticated);
        }
        let [len, rest @ ..] = scratch.as_slice() else { return Err(DecodeError::Truncated) };
        let len = usize::from(*len);
        if len == 0 || len > crate::util::name::MAX_NAME_LEN {
            return Err(DecodeError::BadName);
        }
        let (Some(name), Some(messages)) = (rest.get(..len), rest.get(len..)) else {
            return Err(DecodeError::Truncated);
        };
        let sender = core::str::from_utf8(name).map_err(|_| DecodeError::BadUtf8)?;
        Ok(Opened { sender: Some(sender), messages })
    }

    #[cfg(not(feature = "encryption"))]
    fn open_sealed<'b>(&self, _: &Header<'b>, _: Channel, _: &'b mut Vec<u8>) -> Result<Opened<'b>, DecodeError> {
        Err(DecodeError::Sealed)
    }

    /// Applies a keyring change.
    #[cfg(feature = "encryption")]
    pub(crate) fn apply(&mut self, op: KeyringOp) -> Result<(), KeyringError> {
        let result = match op {
            KeyringOp::Install(k) => self.keyring.install(k),
            KeyringOp::Use(k) => self.keyring.use_key(k),
            KeyringOp::Remove(k) => self.keyring.remove(k),
            KeyringOp::Mode { seal_outgoing, accept_plaintext } => {
                self.seal_outgoing = seal_outgoing;
                self.accept_plaintext = accept_plaintext;
                Ok(())
            }
        };
        self.refresh_ciphers();
        result
    }

    /// Installed keys, the primary first.
    #[cfg(feature = "encryption")]
    pub(crate) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.keyring.keys()
    }
}

/// The associated data of a sealed packet: its header, then the domain
/// byte of `channel`, written into `buf`.
#[cfg(feature = "encryption")]
fn associated_data<'a>(header: &[u8], channel: Channel, buf: &'a mut [u8; MAX_HEADER + 1]) -> &'a [u8] {
    // The header was parsed within MAX_HEADER bytes; `n` only guards it.
    let n = header.len().min(MAX_HEADER);
    let (head, tail) = buf.split_at_mut(n);
    head.copy_from_slice(header.get(..n).unwrap_or_default());
    if let Some(b) = tail.first_mut() {
        *b = channel.domain();
    }
    buf.get(..=n).unwrap_or_default()
}

#[cfg(all(test, feature = "encryption"))]
mod tests {
    use super::*;
    use crate::wire::Message;

    /// An envelope for member "a", nonces from a zero prefix.
    fn env(label: Label) -> Envelope {
        Envelope::new(label, &MemberName::new("a").unwrap(), [0; 12])
    }

    fn writer(e: &Envelope) -> PacketWriter {
        PacketWriter::with_layout(1400, Vec::new(), e.layout())
    }

    fn packet(e: &mut Envelope) -> Vec<u8> {
        let mut w = writer(e);
        w.push(&Message::Ping { seq: 5, target: "b" }).unwrap();
        e.close(w, Channel::Datagram)
    }

    fn opens(e: &Envelope, p: &[u8]) -> Result<usize, DecodeError> {
        opens_on(e, p, Channel::Datagram)
    }

    fn opens_on(e: &Envelope, p: &[u8], channel: Channel) -> Result<usize, DecodeError> {
        let mut scratch = Vec::new();
        let mut out = Messages::new();
        // `decode` in our format: open, then the messages.
        let opened = e.open(p, wire::MAX_FRAME, channel, &mut scratch)?;
        wire::decode_body(opened.messages, &mut out)?;
        Ok(out.len())
    }

    #[test]
    fn labels_keys_and_modes_decide_what_opens() {
        let mut plain = env(Label::EMPTY);
        let mut labelled = env(Label::new("blue").unwrap());
        let mut sealed = env(Label::new("blue").unwrap());
        sealed.apply(KeyringOp::Install(Key::new([1; 32]))).unwrap();
        let mut other_key = env(Label::new("blue").unwrap());
        other_key.apply(KeyringOp::Install(Key::new([2; 32]))).unwrap();
        let (from_plain, from_labelled) = (packet(&mut plain), packet(&mut labelled));
        let from_sealed = packet(&mut sealed);

        assert_eq!(opens(&plain, &from_plain), Ok(1));
        assert_eq!(opens(&labelled, &from_labelled), Ok(1));
        assert_eq!(opens(&plain, &from_labelled), Err(DecodeError::Label));
        assert_eq!(opens(&labelled, &from_plain), Err(DecodeError::Label));
        assert_eq!(opens(&sealed, &from_sealed), Ok(1));
        assert_eq!(opens(&other_key, &from_sealed), Err(DecodeError::Unauthenticated));
        assert_eq!(opens(&labelled, &from_sealed), Err(DecodeError::Sealed));
        assert_eq!(opens(&sealed, &from_labelled), Err(DecodeError::Plaintext));

        // Migration: seal nothing and accept plaintext, then seal, then refuse.
        let mut migrating = env(Label::new("blue").unwrap());
        migrating.apply(KeyringOp::Install(Key::new([1; 32]))).unwrap();
        migrating.apply(KeyringOp::Mode { seal_outgoing: false, accept_plaintext: true }).unwrap();
        assert_eq!(opens(&labelled, &packet(&mut migrating)), Ok(1));
        assert_eq!(opens(&migrating, &from_labelled), Ok(1));
        assert_eq!(opens(&migrating, &from_sealed), Ok(1));
        migrating.apply(KeyringOp::Mode { seal_outgoing: true, accept_plaintext: true }).unwrap();
        assert_eq!(opens(&sealed, &packet(&mut migrating)), Ok(1));
        assert_eq!(opens(&migrating, &from_labelled), Ok(1));
        migrating.apply(KeyringOp::Mode { seal_outgoing: true, accept_plaintext: false }).unwrap();
        assert_eq!(opens(&migrating, &from_labelled), Err(DecodeError::Plaintext));
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let mut plain = env(Label::new("x").unwrap());
        let mut sealed = env(Label::EMPTY);
        sealed.apply(KeyringOp::Install(Key::new([9; 32]))).unwrap();
        for e in [&mut plain, &mut sealed] {
            let p = packet(e);
            assert_eq!(opens(e, &p), Ok(1));
            for bit in 0..p.len() * 8 {
                let mut q = p.clone();
                q[bit / 8] ^= 1 << (bit % 8);
                assert!(opens(e, &q).is_err(), "bit {bit} of {} flipped was accepted", p.len());
            }
        }
    }

    /// A sealed datagram does not open as a frame, nor a frame as a
    /// datagram; a plain packet travels either way.
    #[test]
    fn a_seal_binds_its_channel() {
        let mut sealed = env(Label::EMPTY);
        sealed.apply(KeyringOp::Install(Key::new([5; 32]))).unwrap();
        let mut w = writer(&sealed);
        w.push(&Message::Ping { seq: 5, target: "b" }).unwrap();
        let frame = sealed.close(w, Channel::Frame);
        let datagram = packet(&mut sealed);
        assert_eq!(opens_on(&sealed, &datagram, Channel::Datagram), Ok(1));
        assert_eq!(opens_on(&sealed, &frame, Channel::Frame), Ok(1));
        assert_eq!(opens_on(&sealed, &datagram, Channel::Frame), Err(DecodeError::Unauthenticated));
        assert_eq!(opens_on(&sealed, &frame, Channel::Datagram), Err(DecodeError::Unauthenticated));
        let mut plain = env(Label::EMPTY);
        let p = packet(&mut plain);
        assert_eq!(opens_on(&plain, &p, Channel::Frame), Ok(1));
    }

    /// A sealed packet names its sender inside; a plain one names nobody.
    #[test]
    fn a_seal_carries_its_sender() {
        let mut sealed = Envelope::new(Label::EMPTY, &MemberName::new("node-7").unwrap(), [3; 12]);
        sealed.apply(KeyringOp::Install(Key::new([5; 32]))).unwrap();
        let p = packet(&mut sealed);
        assert!(!p.windows(6).any(|w| w == b"node-7"), "the name is encrypted");
        let mut scratch = Vec::new();
        let opened = sealed.open(&p, wire::MAX_DATAGRAM, Channel::Datagram, &mut scratch).unwrap();
        assert_eq!(opened.sender, Some("node-7"));
        assert_eq!(opened.messages, [0, 5, 1, b'b']);
        let mut plain = env(Label::EMPTY);
        let p = packet(&mut plain);
        let opened = plain.open(&p, wire::MAX_DATAGRAM, Channel::Datagram, &mut scratch).unwrap();
        assert_eq!(opened.sender, None);
    }

    /// The nonce of a sealed packet: the 12 bytes after its header.
    fn nonce_of(e: &Envelope, p: &[u8]) -> [u8; NONCE_LEN] {
        let head = 2 + e.label.wire_len();
        p[head..head + NONCE_LEN].try_into().unwrap()
    }

    #[test]
    fn nonces_are_the_prefix_and_a_counter_and_never_repeat() {
        let mut e = Envelope::new(Label::EMPTY, &MemberName::new("a").unwrap(), [0xa5; 12]);
        e.apply(KeyringOp::Install(Key::new([4; 32]))).unwrap();
        let first = packet(&mut e);
        assert_eq!(nonce_of(&e, &first), [0xa5; 12], "the first nonce is the prefix itself");
        let second = packet(&mut e);
        let mut want = [0xa5; 12];
        want[11] ^= 1;
        assert_eq!(nonce_of(&e, &second), want);
        let mut seen = std::collections::BTreeSet::new();
        seen.insert(nonce_of(&e, &first));
        seen.insert(nonce_of(&e, &second));
        for i in 2..5000 {
            let p = packet(&mut e);
            assert!(seen.insert(nonce_of(&e, &p)), "nonce {i} repeated");
        }
        // A new prefix does not restart the count.
        e.set_nonce_prefix([0; 12]);
        let p = packet(&mut e);
        assert_eq!(nonce_of(&e, &p)[4..], 5000u64.to_be_bytes());
    }

    #[test]
    fn sealing_costs_its_overhead_and_fits_the_budget() {
        let mut sealed = env(Label::new("lab").unwrap());
        sealed.apply(KeyringOp::Install(Key::new([3; 32]))).unwrap();
        let mut w = PacketWriter::with_layout(600, Vec::new(), sealed.layout());
        while w.push(&Message::Ack { seq: 1_000_000 }).is_ok() {}
        let p = sealed.close(w, Channel::Frame);
        assert!(p.len() <= 600, "{}", p.len());
        assert_eq!(sealed.layout().overhead(), 2 + 4 + NONCE_LEN + 1 + 1 + TAG_LEN, "label, nonce, sender a, tag");
    }
}
