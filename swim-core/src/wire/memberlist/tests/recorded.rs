//! memberlist's own bytes: datagrams and streams that real memberlist
//! nodes wrote, recorded by `interop/memberlist-recorder` (a Go program
//! run against the library) into `tests/data/memberlist/`, with a
//! `manifest.txt` naming each file, its transport, the sender's key and
//! the kinds of message the recorder found in it.
//!
//! Every recording is taken apart with our codec down to message bodies:
//! opened with the manifest's key, CRC checked and stripped, decompressed,
//! compounds split, each message decoded, push-pull headers, node states
//! and user state read. Nothing may fail, every compound part must be
//! whole, the kinds we find must be the recorder's, and together the
//! recordings must hold every kind the manifest expects.
//!
//! Then each layer is encoded again with our writers and compared with
//! Go's bytes: message bodies, compounds, CRC headers, the `compress`
//! wrapper (around Go's own LZW bytes), whole stream messages, and the
//! encrypted layers, sealed again with the nonce the recording carries
//! (AES-GCM is deterministic given key and nonce; memberlist draws the
//! nonce at random, so only that choice is not ours to reproduce). The
//! one layer that cannot be compared is the LZW data itself: we decompress
//! but never compress.
//!
//! The committed recordings come from Debian's memberlist 0.2.2, which
//! builds against go-msgpack 0.5.5 (memberlist's `go.mod` names 0.5.3).
//!
//! `SWIM_MEMBERLIST_RECORDINGS=<dir>` checks a fresh recording in the
//! same layout as well (CI records one from the Go library installed on
//! the machine).

use alloc::borrow::ToOwned;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use std::path::{Path, PathBuf};

use crate::wire::memberlist::Limits;
use crate::wire::memberlist::compress::Compress;
use crate::wire::memberlist::gossip::{IpBytes, Versions, ip_from_wire};
use crate::wire::memberlist::message::{Body, Message, MessageType};
use crate::wire::memberlist::packet::{Compound, Unpacked, encode_compound, encode_with_crc, strip_crc};
use crate::wire::memberlist::stream::{NodeStateType, StreamMessage, open_stream};

/// The recordings committed with the crate.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/memberlist");

/// The variable naming a fresh recording directory.
const FRESH_VAR: &str = "SWIM_MEMBERLIST_RECORDINGS";

/// Kinds every recording set must hold, whatever its manifest says.
const REQUIRED: &[&str] = &[
    "ping",
    "indirect-ping",
    "ack",
    "ack-payload",
    "nack",
    "suspect",
    "alive",
    "meta",
    "dead",
    "leave",
    "user",
    "compound",
    "crc",
    "lzw",
    "aes-v0",
    "aes-v1",
    "push-pull-join",
    "push-pull-sync",
    "user-state",
    "state-alive",
    "state-dead",
    "state-left",
    "stream-user",
    "stream-ping",
    "stream-ack",
    "err",
    "large",
];

/// A stream message this long (opened and decompressed) is `large`: it
/// took Go's LZW writer past a full code table.
const LARGE_MESSAGE: usize = 8192;

/// Kinds that only encrypted recordings hold.
const ENCRYPTED_KINDS: &[&str] = &["aes-v0", "aes-v1"];

#[test]
fn committed_recordings_decode_and_reencode() {
    check_dir(Path::new(COMMITTED));
}

#[test]
fn fresh_recordings_decode_and_reencode() {
    let Some(dir) = std::env::var_os(FRESH_VAR) else {
        std::eprintln!("{FRESH_VAR} not set: no fresh recording to check");
        return;
    };
    check_dir(Path::new(&dir));
}

/// One line of the manifest.
struct Entry {
    path: String,
    stream: bool,
    key: Option<Vec<u8>>,
    kinds: BTreeSet<String>,
}

fn check_dir(dir: &Path) {
    let manifest = std::fs::read_to_string(dir.join("manifest.txt"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("manifest.txt").display()));
    let (entries, expect) = parse_manifest(&manifest);
    assert!(!entries.is_empty(), "{}: no recordings listed", dir.display());

    let listed: BTreeSet<PathBuf> = entries.iter().map(|e| dir.join(&e.path)).collect();
    for file in bin_files(dir) {
        assert!(listed.contains(&file), "{} is not in the manifest", file.display());
    }

    let mut failures = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let (mut checked, mut skipped) = (0, 0);
    for entry in &entries {
        let path = dir.join(&entry.path);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let result =
            if entry.stream { stream(&bytes, entry.key.as_deref()) } else { datagram(&bytes, entry.key.as_deref()) };
        match result {
            Ok(Some(kinds)) => {
                checked += 1;
                if kinds != entry.kinds {
                    failures.push(format!("{}: we found {kinds:?}, the recorder {:?}", entry.path, entry.kinds));
                }
                for kind in kinds {
                    *counts.entry(kind).or_default() += 1;
                }
            }
            Ok(None) => skipped += 1,
            Err(e) => failures.push(format!("{}: {e}", entry.path)),
        }
    }

    let mut wanted: BTreeSet<String> = expect;
    wanted.extend(REQUIRED.iter().map(|k| (*k).to_owned()));
    if !cfg!(feature = "encryption") {
        for k in ENCRYPTED_KINDS {
            wanted.remove(*k);
        }
    }
    for kind in &wanted {
        if !counts.contains_key(kind) {
            failures.push(format!("no recording holds {kind}"));
        }
    }
    let table: String = counts.iter().map(|(kind, n)| format!("\n  {kind:16} {n}")).collect();
    std::eprintln!("{}: {checked} recordings checked, {skipped} encrypted ones skipped{table}", dir.display());
    assert!(failures.is_empty(), "{}:\n{}", dir.display(), failures.join("\n"));
}

fn parse_manifest(text: &str) -> (Vec<Entry>, BTreeSet<String>) {
    let (mut entries, mut expect) = (Vec::new(), BTreeSet::new());
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("file") => {
                let (Some(path), Some(transport), Some(key), Some(kinds)) =
                    (words.next(), words.next(), words.next(), words.next())
                else {
                    panic!("manifest line {line:?}: want `file PATH TRANSPORT key=.. kinds=..`")
                };
                let key = key.strip_prefix("key=").unwrap_or_else(|| panic!("manifest line {line:?}: no key="));
                let kinds = kinds.strip_prefix("kinds=").unwrap_or_else(|| panic!("manifest line {line:?}: no kinds="));
                entries.push(Entry {
                    path: path.to_owned(),
                    stream: match transport {
                        "stream" => true,
                        "datagram" => false,
                        other => panic!("manifest line {line:?}: transport {other:?}"),
                    },
                    key: (key != "-").then(|| hex(key)),
                    kinds: kinds.split(',').filter(|k| !k.is_empty()).map(str::to_owned).collect(),
                });
            }
            Some("expect") => expect.extend(words.map(str::to_owned)),
            Some(w) if w.starts_with('#') => {}
            None => {}
            Some(other) => panic!("manifest: unknown line {other:?}"),
        }
    }
    (entries, expect)
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s:?}");
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex key")).collect()
}

/// Every `.bin` file under `dir`, one level of subdirectories deep.
fn bin_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = alloc::vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = e.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "bin") {
                out.push(path);
            }
        }
    }
    out
}

/// Fails with `what` unless `ours` equals Go's `theirs`.
fn same(what: &str, ours: &[u8], theirs: &[u8]) -> Result<(), String> {
    if ours == theirs { Ok(()) } else { Err(format!("{what}: we encode\n  {ours:02x?}\nGo wrote\n  {theirs:02x?}")) }
}

/// Opens an encrypted datagram and seals the plaintext again with its
/// nonce. `None` without the `encryption` feature.
#[cfg(feature = "encryption")]
fn open_datagram(bytes: &[u8], key: &[u8], kinds: &mut BTreeSet<String>) -> Result<Option<Vec<u8>>, String> {
    use crate::wire::memberlist::encrypt::{Cipher, open_packet, seal_packet};
    let cipher = Cipher::new(key).map_err(|_| "bad key length".to_owned())?;
    let plain = open_packet(core::slice::from_ref(&cipher), bytes).map_err(|e| format!("open: {e}"))?;
    let version = encryption_version(bytes.first().copied(), kinds)?;
    let nonce: [u8; 12] = bytes.get(1..13).and_then(|n| n.try_into().ok()).ok_or("no nonce")?;
    let mut again = Vec::new();
    seal_packet(version, &cipher, &nonce, &plain, &mut again).map_err(|e| format!("seal: {e}"))?;
    same("sealed datagram", &again, bytes)?;
    Ok(Some(plain))
}

#[cfg(not(feature = "encryption"))]
fn open_datagram(_: &[u8], _: &[u8], _: &mut BTreeSet<String>) -> Result<Option<Vec<u8>>, String> {
    Ok(None)
}

#[cfg(feature = "encryption")]
fn encryption_version(
    byte: Option<u8>,
    kinds: &mut BTreeSet<String>,
) -> Result<crate::wire::memberlist::encrypt::EncryptionVersion, String> {
    use crate::wire::memberlist::encrypt::EncryptionVersion;
    let (version, kind) = match byte {
        Some(0) => (EncryptionVersion::V0, "aes-v0"),
        Some(1) => (EncryptionVersion::V1, "aes-v1"),
        other => return Err(format!("encryption version {other:?}")),
    };
    kinds.insert(kind.to_owned());
    Ok(version)
}

/// Takes a recorded datagram apart; the kinds it holds, or `None` if it
/// is encrypted and this build cannot open it.
fn datagram(bytes: &[u8], key: Option<&[u8]>) -> Result<Option<BTreeSet<String>>, String> {
    let mut kinds = BTreeSet::new();
    let plain = match key {
        Some(key) => match open_datagram(bytes, key, &mut kinds)? {
            Some(plain) => plain,
            None => return Ok(None),
        },
        None => bytes.to_vec(),
    };
    let body = strip_crc(&plain).map_err(|e| format!("crc: {e}"))?;
    if body.len() != plain.len() {
        kinds.insert("crc".to_owned());
        let mut again = Vec::new();
        encode_with_crc(body, &mut again);
        same("crc header", &again, &plain)?;
    }
    let mut leaves = Vec::new();
    command(body, 0, &mut kinds, &mut leaves)?;

    // The one-pass unpacker must find the same messages.
    let unpacked = Unpacked::parse(&plain, &Limits::PACKET).map_err(|e| format!("unpack: {e}"))?;
    if unpacked.truncated() != 0 {
        return Err(format!("{} truncated compound parts", unpacked.truncated()));
    }
    let messages = unpacked.decode_all().map_err(|e| format!("unpacked message: {e}"))?;
    let walked = leaves.iter().map(|leaf| Message::decode(leaf)).collect::<Result<Vec<_>, _>>();
    if walked.as_ref().ok() != Some(&messages) {
        return Err(format!("the unpacker found {messages:?}, the walk {walked:?}"));
    }
    Ok(Some(kinds))
}

/// Takes one datagram command apart: a compound, a compressed layer or a
/// message, collecting the leaf messages' bytes.
fn command(bytes: &[u8], depth: u8, kinds: &mut BTreeSet<String>, leaves: &mut Vec<Vec<u8>>) -> Result<(), String> {
    if depth > 4 {
        return Err("nested too deep".into());
    }
    let (&ty, body) = bytes.split_first().ok_or("empty command")?;
    match MessageType::from_byte(ty) {
        Some(MessageType::Compound) => {
            kinds.insert("compound".to_owned());
            let compound = Compound::parse(body).map_err(|e| format!("compound: {e}"))?;
            if compound.truncated() != 0 {
                return Err(format!("{} truncated compound parts", compound.truncated()));
            }
            let parts: Vec<&[u8]> = compound.parts().collect();
            let mut again = Vec::new();
            encode_compound(&parts, &mut again).map_err(|e| format!("compound: {e}"))?;
            same("compound", &again, bytes)?;
            for part in parts {
                command(part, depth + 1, kinds, leaves)?;
            }
            Ok(())
        }
        Some(MessageType::Compress) => {
            kinds.insert("lzw".to_owned());
            let inner = inflate(bytes, body, &Limits::PACKET)?;
            command(&inner, depth + 1, kinds, leaves)
        }
        _ => {
            let message = Message::decode(bytes).map_err(|e| format!("message {ty}: {e}"))?;
            kinds.insert(message_kind(&message).to_owned());
            match message {
                Message::Ack(ack) if ack.payload.is_some_and(|p| !p.is_empty()) => {
                    kinds.insert("ack-payload".to_owned());
                }
                Message::Alive(alive) if alive.meta.is_some_and(|m| !m.is_empty()) => {
                    kinds.insert("meta".to_owned());
                }
                Message::Dead(dead) if dead.node == dead.from => {
                    kinds.insert("leave".to_owned());
                }
                _ => {}
            }
            match message {
                Message::Ping(p) => optional_ip(p.source_addr)?,
                Message::IndirectPing(p) => {
                    ip(p.target)?;
                    optional_ip(p.source_addr)?;
                }
                Message::Alive(a) => {
                    ip(a.addr)?;
                    versions(a.vsn)?;
                }
                _ => {}
            }
            let mut again = Vec::new();
            message.encode(&mut again).map_err(|e| format!("encode: {e}"))?;
            same("message", &again, bytes)?;
            leaves.push(bytes.to_vec());
            Ok(())
        }
    }
}

/// Checks that an address field holds an IP in the form we send ours
/// (4 bytes for IPv4, 16 for IPv6), as Go sends its own.
fn ip(addr: Option<&[u8]>) -> Result<(), String> {
    let addr = addr.ok_or("no address")?;
    let ip = ip_from_wire(addr).ok_or_else(|| format!("address {addr:02x?}"))?;
    same("address", IpBytes::new(ip).as_slice(), addr)
}

/// Like [`ip`], for an `omitempty` field.
fn optional_ip(addr: &[u8]) -> Result<(), String> {
    if addr.is_empty() { Ok(()) } else { ip(Some(addr)) }
}

/// Checks a `Vsn` field: six versions, within memberlist's protocol
/// range (1 to 5), encoded back to the same bytes.
fn versions(vsn: Option<&[u8]>) -> Result<(), String> {
    let vsn = vsn.ok_or("no versions")?;
    let v = Versions::from_vsn(vsn).ok_or_else(|| format!("versions {vsn:?}"))?;
    let in_range = |p: u8| (1..=5).contains(&p);
    if vsn.len() != 6 || !in_range(v.protocol_min) || !in_range(v.protocol_max) || !in_range(v.protocol_cur) {
        return Err(format!("versions {vsn:?}"));
    }
    same("versions", &v.to_vsn(), vsn)
}

fn message_kind(m: &Message<'_>) -> &'static str {
    match m {
        Message::Ping(_) => "ping",
        Message::IndirectPing(_) => "indirect-ping",
        Message::Ack(_) => "ack",
        Message::Nack(_) => "nack",
        Message::Suspect(_) => "suspect",
        Message::Alive(_) => "alive",
        Message::Dead(_) => "dead",
        Message::User(_) => "user",
    }
}

/// Decodes a `compress` wrapper (`bytes` is the whole command, `body`
/// what follows its type byte), checks that it encodes back to Go's
/// bytes, and decompresses it.
fn inflate(bytes: &[u8], body: &[u8], limits: &Limits) -> Result<Vec<u8>, String> {
    let compress = Compress::decode(body).map_err(|e| format!("compress: {e}"))?;
    let mut again = Vec::new();
    compress.encode(&mut again).map_err(|e| format!("compress: {e}"))?;
    same("compress wrapper", &again, bytes)?;
    let mut inner = Vec::new();
    compress.decompress_into(&mut inner, limits.max_inflated).map_err(|e| format!("decompress: {e}"))?;
    Ok(inner)
}

/// Opens an encrypted stream and seals the plaintext again with its
/// nonce. `None` without the `encryption` feature.
#[cfg(feature = "encryption")]
fn open_encrypted_stream(bytes: &[u8], key: &[u8], kinds: &mut BTreeSet<String>) -> Result<Option<Vec<u8>>, String> {
    use crate::wire::memberlist::encrypt::{Cipher, MAX_STREAM_PAYLOAD, open_stream, seal_stream};
    let cipher = Cipher::new(key).map_err(|_| "bad key length".to_owned())?;
    let (plain, used) = open_stream(core::slice::from_ref(&cipher), bytes, MAX_STREAM_PAYLOAD)
        .map_err(|e| format!("open stream: {e}"))?;
    if used != bytes.len() {
        return Err(format!("the sealed message takes {used} of the stream's {} bytes", bytes.len()));
    }
    let version = encryption_version(bytes.get(5).copied(), kinds)?;
    let nonce: [u8; 12] = bytes.get(6..18).and_then(|n| n.try_into().ok()).ok_or("no nonce")?;
    let mut again = Vec::new();
    seal_stream(version, &cipher, &nonce, &plain, &mut again).map_err(|e| format!("seal: {e}"))?;
    same("sealed stream", &again, bytes)?;
    Ok(Some(plain))
}

#[cfg(not(feature = "encryption"))]
fn open_encrypted_stream(_: &[u8], _: &[u8], _: &mut BTreeSet<String>) -> Result<Option<Vec<u8>>, String> {
    Ok(None)
}

/// Takes one direction of a recorded stream apart; the kinds it holds,
/// or `None` if it is encrypted and this build cannot open it.
fn stream(bytes: &[u8], key: Option<&[u8]>) -> Result<Option<BTreeSet<String>>, String> {
    let mut kinds = BTreeSet::new();
    let plain = if bytes.first() == Some(&(MessageType::Encrypt as u8)) {
        let key = key.ok_or("an encrypted stream and no key")?;
        match open_encrypted_stream(bytes, key, &mut kinds)? {
            Some(plain) => plain,
            None => return Ok(None),
        }
    } else {
        bytes.to_vec()
    };
    let opened = open_stream(&plain, &Limits::STREAM).map_err(|e| format!("open: {e}"))?;
    if let Some((&ty, body)) = plain.split_first()
        && ty == MessageType::Compress as u8
    {
        kinds.insert("lzw".to_owned());
        // Go writes the wrapper and nothing after it.
        let inner = inflate(&plain, body, &Limits::STREAM)?;
        if inner != opened.as_slice() {
            return Err("open_stream and the wrapper decompress differently".into());
        }
    }
    let message = opened.as_slice();
    if message.len() >= LARGE_MESSAGE {
        kinds.insert("large".to_owned());
    }
    let decoded = StreamMessage::decode(message, &Limits::STREAM).map_err(|e| format!("stream message: {e}"))?;
    match &decoded {
        StreamMessage::PushPull { join, nodes, user_state } => {
            kinds.insert(if *join { "push-pull-join" } else { "push-pull-sync" }.to_owned());
            for node in nodes {
                let state = match node.state {
                    NodeStateType::ALIVE => "state-alive",
                    NodeStateType::SUSPECT => "state-suspect",
                    NodeStateType::DEAD => "state-dead",
                    NodeStateType::LEFT => "state-left",
                    other => return Err(format!("node state {other:?}")),
                };
                kinds.insert(state.to_owned());
                ip(node.addr)?;
                versions(node.vsn)?;
                if node.meta.is_some_and(|m| !m.is_empty()) {
                    kinds.insert("meta".to_owned());
                }
            }
            if !user_state.is_empty() {
                kinds.insert("user-state".to_owned());
            }
        }
        StreamMessage::User(_) => {
            kinds.insert("stream-user".to_owned());
        }
        StreamMessage::Ping(_) => {
            kinds.insert("stream-ping".to_owned());
        }
        StreamMessage::Ack(_) => {
            kinds.insert("stream-ack".to_owned());
        }
        StreamMessage::Err(_) => {
            kinds.insert("err".to_owned());
        }
    }
    let mut again = Vec::new();
    decoded.encode(&mut again).map_err(|e| format!("encode: {e}"))?;
    same("stream message", &again, message)?;
    Ok(Some(kinds))
}
