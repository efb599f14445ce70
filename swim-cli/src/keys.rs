//! Keys for `swim agent`: base64 on the command line or in a keyring file
//! (one key per line, the first the primary; blank lines and `#` comments
//! ignored), how that file is read, and the steps that bring a running
//! node's keyring to what the file says.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lapswim_core::internals::MAX_KEYS;
use lapswim_core::{Key, KeyringOp};

/// The largest keyring file read, in bytes: eight keys with comments fit
/// many times over; a larger file is refused whole.
pub(crate) const MAX_FILE_BYTES: usize = 64 * 1024;

/// A key from its base64 text (32 bytes once decoded).
pub(crate) fn parse_key(text: &str) -> Result<Key, String> {
    let bytes = STANDARD.decode(text.trim()).map_err(|e| format!("a key is not base64: {e}"))?;
    Key::from_slice(&bytes).ok_or_else(|| format!("a key is 32 bytes, this one is {}", bytes.len()))
}

/// The keys a keyring file lists, the primary first: at least one, at most
/// [`MAX_KEYS`], each valid and listed once, or the whole file is refused.
pub(crate) fn parse_keyring(text: &str) -> Result<Vec<Key>, String> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_key(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if keys.contains(&key) {
            return Err(format!("line {}: key {:08x} is listed twice", i + 1, key.fingerprint()));
        }
        keys.push(key);
    }
    if keys.is_empty() {
        return Err("the keyring file lists no key".into());
    }
    if keys.len() > MAX_KEYS {
        return Err(format!("the keyring file lists {} keys, more than the {MAX_KEYS} a keyring holds", keys.len()));
    }
    Ok(keys)
}

/// What a read of the keyring file found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyringText {
    /// The file's content.
    pub(crate) text: String,
    /// Its permission bits (`0o640`...).
    pub(crate) mode: u32,
}

impl KeyringText {
    /// Whether users other than the file's owner may read or change it.
    pub(crate) fn exposed(&self) -> bool {
        self.mode & 0o077 != 0
    }
}

/// Reads a keyring file, which must be a regular file of at most
/// [`MAX_FILE_BYTES`]. It is opened without blocking, so a FIFO or a
/// device at the path is refused rather than waited on.
pub(crate) fn read_file(path: &Path) -> Result<KeyringText, String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO without a writer would block the open; a terminal must
        // not become the agent's.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read {shown}: {e}"))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "something else"
        };
        return Err(format!("{shown} is {what}, not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(format!("{shown} is larger than {} KiB", MAX_FILE_BYTES / 1024));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?;
    Ok(KeyringText { text, mode: meta.permissions().mode() & 0o777 })
}

/// The last reading acted upon, and a newer one waiting for the next poll
/// to confirm it: a reading is acted upon only once two polls in a row
/// agree, so a file written in two parts is not applied half-written.
#[derive(Debug)]
pub(crate) struct Settled<T> {
    current: T,
    pending: Option<T>,
}

impl<T: PartialEq> Settled<T> {
    /// Starts from a reading already acted upon.
    pub(crate) fn new(current: T) -> Self {
        Settled { current, pending: None }
    }

    /// Takes one poll's reading; returns it when it differs from the one
    /// last acted upon and the previous poll read the same.
    pub(crate) fn observe(&mut self, reading: T) -> Option<&T> {
        if reading == self.current {
            self.pending = None;
            return None;
        }
        if self.pending.as_ref() != Some(&reading) {
            self.pending = Some(reading);
            return None;
        }
        self.pending = None;
        self.current = reading;
        Some(&self.current)
    }
}

/// The changes that turn the `installed` keys into the `wanted` ones (each
/// the primary first, at most [`MAX_KEYS`], none twice), ordered so that
/// the keyring refuses none of them: remove the keys not wanted but the
/// primary; if the primary is not wanted, install the new primary, switch
/// to it and remove the old one; install the rest; switch to the new
/// primary. The other keys end in the order they were installed, not
/// necessarily the wanted order.
pub(crate) fn plan(installed: &[Key], wanted: &[Key]) -> Vec<KeyringOp> {
    let mut plan = Plan { keys: installed.to_vec(), ops: Vec::new() };
    for &k in installed.iter().skip(1) {
        if !wanted.contains(&k) {
            plan.push(KeyringOp::Remove(k));
        }
    }
    let Some(&primary) = wanted.first() else { return plan.ops };
    if let Some(&old) = installed.first()
        && !wanted.contains(&old)
    {
        // A full keyring has no room for the new primary beside the old:
        // the first wanted key already installed stands in for a moment.
        let full = plan.keys.len() >= MAX_KEYS && !plan.keys.contains(&primary);
        match wanted.iter().copied().find(|k| full && plan.keys.contains(k)) {
            Some(stand_in) => plan.push(KeyringOp::Use(stand_in)),
            None => {
                plan.install(primary);
                plan.push(KeyringOp::Use(primary));
            }
        }
        plan.push(KeyringOp::Remove(old));
    }
    for &k in wanted {
        plan.install(k);
    }
    if plan.keys.first() != Some(&primary) {
        plan.push(KeyringOp::Use(primary));
    }
    plan.ops
}

/// Operations planned so far, and the keys they leave, the primary first
/// (as the keyring orders them).
struct Plan {
    keys: Vec<Key>,
    ops: Vec<KeyringOp>,
}

impl Plan {
    fn install(&mut self, k: Key) {
        if !self.keys.contains(&k) {
            self.push(KeyringOp::Install(k));
        }
    }

    fn push(&mut self, op: KeyringOp) {
        match op {
            KeyringOp::Install(k) => self.keys.push(k),
            KeyringOp::Use(k) => {
                self.keys.retain(|&x| x != k);
                self.keys.insert(0, k);
            }
            KeyringOp::Remove(k) => self.keys.retain(|&x| x != k),
            // Mode changes and any later kinds leave the key list as it is.
            _ => {}
        }
        self.ops.push(op);
    }
}

/// Whether two keyrings hold the same keys with the same primary.
pub(crate) fn same_keyring(a: &[Key], b: &[Key]) -> bool {
    a.len() == b.len() && a.first() == b.first() && a.iter().all(|k| b.contains(k))
}

/// A fresh random key, base64 (`swim keygen`).
pub(crate) fn generate() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapswim_core::{Config, Identity, MemberName, Swim};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn k(b: u8) -> Key {
        Key::new([b; 32])
    }

    fn ks(bytes: &[u8]) -> Vec<Key> {
        bytes.iter().map(|&b| k(b)).collect()
    }

    fn file(keys: &[Key]) -> String {
        keys.iter().map(|k| STANDARD.encode(k.as_bytes()) + "\n").collect()
    }

    #[test]
    fn keyring_files_parse_and_reject_bad_keys() {
        let a = STANDARD.encode([1u8; 32]);
        let b = STANDARD.encode([2u8; 32]);
        assert_eq!(parse_keyring(&format!("# primary\n{a}\n\n  {b}  \n")), Ok(vec![k(1), k(2)]));
        assert!(parse_keyring("# nothing\n").is_err());
        assert!(parse_keyring("not base64!").is_err());
        assert!(parse_key(&STANDARD.encode([1u8; 16])).unwrap_err().contains("32 bytes"));
        assert_eq!(parse_key(&generate().unwrap()).map(|_| ()), Ok(()));
    }

    #[test]
    fn a_keyring_file_is_refused_whole_for_too_many_keys_a_repeat_or_one_bad_line() {
        let eight = ks(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(parse_keyring(&file(&eight)), Ok(eight.clone()));
        let nine = ks(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert!(parse_keyring(&file(&nine)).unwrap_err().contains("9 keys, more than the 8"));
        assert!(parse_keyring(&file(&ks(&[1, 2, 1]))).unwrap_err().contains("line 3: key"));
        let bad = file(&ks(&[1, 2])) + "AAAA\n";
        assert!(parse_keyring(&bad).unwrap_err().starts_with("line 3:"));
    }

    #[test]
    fn plans_follow_the_rotation_order() {
        use KeyringOp::{Install, Remove, Use};
        assert_eq!(plan(&ks(&[1]), &ks(&[1, 2])), [Install(k(2))]);
        assert_eq!(plan(&ks(&[1, 2]), &ks(&[2, 1])), [Use(k(2))]);
        assert_eq!(plan(&ks(&[2, 1]), &ks(&[2])), [Remove(k(1))]);
        assert_eq!(plan(&ks(&[1]), &ks(&[2])), [Install(k(2)), Use(k(2)), Remove(k(1))]);
        assert!(plan(&ks(&[1, 2]), &ks(&[1, 2])).is_empty());
        assert!(plan(&ks(&[1, 2, 3]), &ks(&[1, 3, 2])).is_empty(), "the order of the others is not a change");
        // Removals first, so the new keys find room.
        assert_eq!(
            plan(&ks(&[1, 2, 3, 4, 5, 6, 7, 8]), &ks(&[1, 9])),
            [2, 3, 4, 5, 6, 7, 8].map(|b| Remove(k(b))).into_iter().chain([Install(k(9))]).collect::<Vec<_>>()
        );
        // A full keyring whose primary goes: a kept key stands in.
        assert_eq!(
            plan(&ks(&[1, 2, 3, 4, 5, 6, 7, 8]), &ks(&[9, 2, 3, 4, 5, 6, 7, 8])),
            [Use(k(2)), Remove(k(1)), Install(k(9)), Use(k(9))]
        );
    }

    /// A node's keyring (lapswim-core's own rules: at most eight keys, the
    /// primary never removed) holding `keys`, the first the primary.
    fn keyring(keys: &[Key]) -> Swim<Xoshiro256PlusPlus> {
        let local = Identity::new(MemberName::new("a").unwrap(), "127.0.0.1:1".parse().unwrap());
        let mut swim = Swim::new(Config::lan(), local, Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
        for &k in keys {
            swim.keyring(KeyringOp::Install(k)).unwrap();
        }
        assert_eq!(swim.keys(), keys);
        swim
    }

    /// Up to `MAX_KEYS` distinct keys of ten, in random order; a full
    /// keyring half the time.
    fn some_keys(next: &mut impl FnMut() -> u64) -> Vec<Key> {
        let len = if next().is_multiple_of(2) { MAX_KEYS } else { 1 + (next() % MAX_KEYS as u64) as usize };
        let mut keys = Vec::new();
        while keys.len() < len {
            let key = k((next() % 10) as u8);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// Every plan between random keyrings is carried out by the node's
    /// keyring without a refusal and ends with the wanted keys; from any
    /// point along it, the plan back to the keys before does the same.
    #[test]
    fn no_plan_or_roll_back_is_ever_refused() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let (before, wanted) = (some_keys(&mut next), some_keys(&mut next));
            let ops = plan(&before, &wanted);
            for done in 0..=ops.len() {
                let mut node = keyring(&before);
                for &op in &ops[..done] {
                    node.keyring(op).unwrap_or_else(|e| panic!("{before:?} -> {wanted:?}: {op:?} refused: {e}"));
                }
                let target = if done == ops.len() { &wanted } else { &before };
                for op in plan(&node.keys(), target) {
                    node.keyring(op).unwrap_or_else(|e| panic!("back to {before:?} after {done} ops: {op:?}: {e}"));
                }
                assert!(same_keyring(&node.keys(), target), "{before:?} -> {wanted:?}: {:?}", node.keys());
            }
        }
    }

    #[test]
    fn a_reading_is_acted_upon_once_two_polls_agree() {
        let mut s = Settled::new("a");
        assert_eq!(s.observe("a"), None, "unchanged");
        // Written in two parts, each seen by one poll: neither applied.
        assert_eq!(s.observe("half"), None);
        assert_eq!(s.observe("whole"), None);
        assert_eq!(s.observe("whole"), Some(&"whole"));
        assert_eq!(s.observe("whole"), None, "acted upon once");
        // Changed and changed back between two polls: nothing to do.
        assert_eq!(s.observe("b"), None);
        assert_eq!(s.observe("whole"), None);
        assert_eq!(s.observe("b"), None);
        assert_eq!(s.observe("b"), Some(&"b"));
    }

    /// A fresh directory for one test's files.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("swim-keys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn only_regular_files_of_at_most_64_kib_are_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("read");
        let path = dir.join("keyring");
        let text = file(&ks(&[1]));
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_file(&path), Ok(KeyringText { text: text.clone(), mode: 0o600 }));
        assert!(!read_file(&path).unwrap().exposed());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(read_file(&path).unwrap().exposed());

        let padded = text.clone() + &"#".repeat(MAX_FILE_BYTES - text.len() - 1) + "\n";
        assert_eq!(padded.len(), MAX_FILE_BYTES);
        std::fs::write(&path, &padded).unwrap();
        assert_eq!(read_file(&path).map(|t| t.text.len()), Ok(MAX_FILE_BYTES));
        std::fs::write(&path, padded + "#").unwrap();
        assert!(read_file(&path).unwrap_err().contains("larger than 64 KiB"));
        std::fs::write(&path, b"\xff\n").unwrap();
        assert!(read_file(&path).unwrap_err().contains("not UTF-8"));

        assert!(read_file(&dir).unwrap_err().contains("is a directory, not a regular file"));
        assert!(read_file(Path::new("/dev/null")).unwrap_err().contains("is a device, not a regular file"));
        // A FIFO nobody writes to: refused at once, not waited on.
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(read_file(&fifo).unwrap_err().contains("is a FIFO, not a regular file"));
        assert!(read_file(&dir.join("missing")).unwrap_err().starts_with("cannot read"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
