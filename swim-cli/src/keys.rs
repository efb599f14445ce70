//! Keys for `swim agent`: base64 on the command line or in a keyring file
//! (one key per line, the first the primary; blank lines and `#` comments
//! ignored), and the steps that bring a running node's keyring to what
//! the file says.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use swim_core::{Key, KeyringOp};

/// A key from its base64 text (32 bytes once decoded).
pub(crate) fn parse_key(text: &str) -> Result<Key, String> {
    let bytes = STANDARD.decode(text.trim()).map_err(|e| format!("a key is not base64: {e}"))?;
    Key::from_slice(&bytes).ok_or_else(|| format!("a key is 32 bytes, this one is {}", bytes.len()))
}

/// The keys a keyring file lists, the primary first.
pub(crate) fn parse_keyring(text: &str) -> Result<Vec<Key>, String> {
    let keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_key)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err("the keyring file lists no key".into());
    }
    Ok(keys)
}

/// A keyring file's text.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// What one keyring change does to the list of keys, the primary first.
pub(crate) fn apply(keys: &mut Vec<Key>, op: KeyringOp) {
    match op {
        KeyringOp::Install(k) if !keys.contains(&k) => keys.push(k),
        KeyringOp::Use(k) => {
            keys.retain(|&x| x != k);
            keys.insert(0, k);
        }
        KeyringOp::Remove(k) => keys.retain(|&x| x != k),
        _ => {}
    }
}

/// The changes that turn keyring `from` into `to`, in a safe order: new
/// keys first, then the primary, then removals (never the primary).
pub(crate) fn steps(from: &[Key], to: &[Key]) -> Vec<KeyringOp> {
    let mut ops: Vec<KeyringOp> = to.iter().filter(|k| !from.contains(k)).map(|&k| KeyringOp::Install(k)).collect();
    if let Some(&primary) = to.first()
        && from.first() != Some(&primary)
    {
        ops.push(KeyringOp::Use(primary));
    }
    ops.extend(from.iter().filter(|k| !to.contains(k)).map(|&k| KeyringOp::Remove(k)));
    ops
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

    fn k(b: u8) -> Key {
        Key::new([b; 32])
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
    fn steps_follow_the_rotation_order() {
        assert_eq!(steps(&[k(1)], &[k(1), k(2)]), [KeyringOp::Install(k(2))]);
        assert_eq!(steps(&[k(1), k(2)], &[k(2), k(1)]), [KeyringOp::Use(k(2))]);
        assert_eq!(steps(&[k(2), k(1)], &[k(2)]), [KeyringOp::Remove(k(1))]);
        assert_eq!(steps(&[k(1)], &[k(2)]), [KeyringOp::Install(k(2)), KeyringOp::Use(k(2)), KeyringOp::Remove(k(1))]);
        assert!(steps(&[k(1), k(2)], &[k(1), k(2)]).is_empty());
    }

    #[test]
    fn applying_the_steps_gives_the_wanted_keyring() {
        for (from, to) in
            [(vec![k(1)], vec![k(2)]), (vec![k(1), k(2)], vec![k(2), k(3)]), (vec![k(3)], vec![k(3), k(1)])]
        {
            let mut keys = from.clone();
            for op in steps(&from, &to) {
                apply(&mut keys, op);
            }
            assert_eq!(keys, to);
        }
    }
}
