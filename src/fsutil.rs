//! Small file-system helpers shared by the modules that persist state: atomic writes, and
//! taking a lock that may be held for a moment.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a temp file in the same folder and a rename, so a reader
/// (or a crash) never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (dir, tmp) = temp_beside(path);
    std::fs::create_dir_all(dir)?;
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// [`write_atomic`] without waiting for the disk: for a file rewritten from memory on every
/// change (a status snapshot), where a copy lost to a power failure is written again and the
/// fsync would cost each change a disk flush.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (_, tmp) = temp_beside(path);
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The folder of `path` (`.` for a bare name) and the temp file `.<name>.<pid>.tmp` in it.
fn temp_beside(path: &Path) -> (&Path, PathBuf) {
    let (dir, name) = folder_and_name(path);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    (dir, tmp)
}

/// The folder of `path` (`.` for a bare name) and its file name, for a temp file beside it.
pub(crate) fn folder_and_name(path: &Path) -> (&Path, String) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

/// Takes the exclusive lock on `file`, trying again for up to `grace` while it is held.
/// `Ok(false)`: still held when `grace` ran out. A lock is held for a moment by a reader's
/// peek, and by a child another thread of the holder forks while the file is open (it shares
/// the open file until it execs); neither must read as a holder.
pub(crate) fn lock_within(
    file: &std::fs::File,
    grace: std::time::Duration,
) -> std::io::Result<bool> {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + grace;
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(false);
                }
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(Duration::from_millis(32));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_atomic(&p, b"first version, longer").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replace_swaps_the_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("status.json");
        replace(&p, b"first version, longer").unwrap();
        replace(&p, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("gone/status.json");
        assert!(replace(&missing, b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
