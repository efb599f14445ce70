//! `--snapshot FILE`: what a restarted agent needs to find its cluster
//! again without `--join`, and to not take its past for news.
//!
//! The file holds the members, alive and failed (a failed member may be
//! back by the time we restart, and is one more address to try), our two
//! Lamport clocks, and whether we left gracefully. It is rewritten whole
//! (a copy, synced, then renamed over), so it is always compact and a
//! crash leaves either the old snapshot or the new one. A file damaged
//! all the same (a full disk, a hand edit) is reported and ignored: the
//! agent starts fresh rather than stopping.

use core::net::SocketAddr;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The snapshot's layout version; another is refused (and reported).
const VERSION: u32 = 1;

/// The largest snapshot file read: about 200 bytes a member at
/// [`MAX_MEMBERS`].
const MAX_BYTES: u64 = 32 << 20;

/// The most members a snapshot is read with: bounds what a damaged or
/// hostile file makes us hold.
const MAX_MEMBERS: usize = 100_000;

/// One member as the snapshot keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Kept {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    /// `alive`, `suspect`, `failed` or `left`.
    pub(crate) status: String,
}

/// The snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    version: u32,
    /// Whose snapshot this is: another member's is not rejoined from.
    pub(crate) name: String,
    pub(crate) members: Vec<Kept>,
    pub(crate) event_time: u64,
    pub(crate) query_time: u64,
    /// Whether the member left gracefully: it then does not rejoin unless
    /// told to (`--rejoin`).
    pub(crate) left: bool,
}

impl Snapshot {
    /// A snapshot of `name`.
    pub(crate) fn new(name: &str) -> Self {
        Snapshot { version: VERSION, name: name.into(), ..Snapshot::default() }
    }

    /// The addresses to rejoin through: every other member's that did not
    /// leave, alive ones first.
    pub(crate) fn seeds(&self) -> Vec<SocketAddr> {
        let mut members: Vec<&Kept> =
            self.members.iter().filter(|m| m.name != self.name && m.status != "left").collect();
        members.sort_by_key(|m| m.status != "alive");
        let mut seeds: Vec<SocketAddr> = Vec::new();
        for m in members {
            if !seeds.contains(&m.addr) {
                seeds.push(m.addr);
            }
        }
        seeds
    }
}

/// What reading the snapshot found.
#[derive(Debug)]
pub(crate) enum Found {
    /// No file: a first start.
    Nothing,
    /// A snapshot of ours.
    Snapshot(Snapshot),
    /// A file that is not a snapshot of ours, and why: it is ignored and
    /// replaced at the next write.
    Unusable(String),
}

/// Reads the snapshot at `path` for member `name`.
pub(crate) fn read(path: &Path, name: &str) -> Found {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Found::Nothing,
        Err(e) => return Found::Unusable(e.to_string()),
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_BYTES + 1).read_to_end(&mut bytes) {
        return Found::Unusable(e.to_string());
    }
    if bytes.len() as u64 > MAX_BYTES {
        return Found::Unusable(format!("larger than {MAX_BYTES} bytes"));
    }
    let snapshot: Snapshot = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => return Found::Unusable(format!("not a snapshot ({e})")),
    };
    if snapshot.version != VERSION {
        return Found::Unusable(format!("snapshot version {} (this agent reads {VERSION})", snapshot.version));
    }
    if snapshot.members.len() > MAX_MEMBERS {
        return Found::Unusable(format!("{} members, more than {MAX_MEMBERS}", snapshot.members.len()));
    }
    if snapshot.name != name {
        return Found::Unusable(format!("the snapshot of {:?}, not of {name:?}", snapshot.name));
    }
    Found::Snapshot(snapshot)
}

/// Writes the snapshot at `path`.
pub(crate) fn write(path: &Path, snapshot: &Snapshot) -> Result<(), String> {
    let bytes = serde_json::to_vec(snapshot).map_err(|e| e.to_string())?;
    write_atomically(path, &bytes)
}

/// Replaces `path` with `bytes` whole: a sibling copy, synced, renamed
/// over (atomic on one file system), then the directory synced so the
/// rename itself survives a power cut.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| format!("{}: not a file name", path.display()))?;
    // A name nobody can guess, created only if it does not exist: a link
    // planted at a predictable name would have the write land elsewhere.
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| format!("{}: no randomness for a temporary name: {e}", path.display()))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp-{:016x}", u64::from_le_bytes(nonce)));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("swim-snapshot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn kept(name: &str, port: u16, status: &str) -> Kept {
        Kept { name: name.into(), addr: SocketAddr::from(([127, 0, 0, 1], port)), status: status.into() }
    }

    #[test]
    fn a_snapshot_round_trips_and_seeds_skip_ourselves_and_the_departed() {
        let path = dir().join("round.snapshot");
        let mut s = Snapshot::new("a");
        s.members = vec![kept("a", 1, "alive"), kept("b", 2, "failed"), kept("c", 3, "alive"), kept("d", 4, "left")];
        s.event_time = 7;
        s.query_time = 3;
        write(&path, &s).unwrap();
        let Found::Snapshot(back) = read(&path, "a") else { panic!("read back") };
        assert_eq!(back, s);
        assert_eq!(back.seeds(), [SocketAddr::from(([127, 0, 0, 1], 3)), SocketAddr::from(([127, 0, 0, 1], 2))]);
        assert!(matches!(read(&path, "z"), Found::Unusable(e) if e.contains("\"a\"")));
        assert!(matches!(read(&dir().join("none"), "a"), Found::Nothing));
    }

    #[test]
    fn a_torn_or_corrupt_snapshot_is_reported_not_trusted() {
        let path = dir().join("torn.snapshot");
        let mut s = Snapshot::new("a");
        s.members = (0..50).map(|i| kept(&format!("m{i}"), i, "alive")).collect();
        let bytes = serde_json::to_vec(&s).unwrap();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(matches!(read(&path, "a"), Found::Unusable(_)), "cut at {cut}");
        }
        std::fs::write(&path, b"\xff\x00garbage").unwrap();
        assert!(matches!(read(&path, "a"), Found::Unusable(_)));
        std::fs::write(
            &path,
            br#"{"version": 99, "name": "a", "members": [], "event_time": 0, "query_time": 0, "left": false}"#,
        )
        .unwrap();
        assert!(matches!(read(&path, "a"), Found::Unusable(e) if e.contains("version 99")));
        // A write over the damaged file repairs it.
        write(&path, &s).unwrap();
        assert!(matches!(read(&path, "a"), Found::Snapshot(_)));
    }
}
