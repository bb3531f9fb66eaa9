//! The merge attempt's lock (`<queue>.attempt.lock`): held while an attempt runs and released
//! however it ends (a return, a panic unwinding, the process dying), so a reader can tell an
//! entry still `merging` from one whose attempt ended without its outcome being recorded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::MergeError;

/// `<queue>.attempt.lock`: held by the merge attempt while it runs.
pub(crate) fn attempt_lock_path(queue: &Path) -> PathBuf {
    let mut name = queue.as_os_str().to_owned();
    name.push(".attempt.lock");
    PathBuf::from(name)
}

/// Held while an attempt runs; released however the attempt ends (a return, a panic
/// unwinding, the process dying).
pub(crate) struct AttemptLock {
    _file: std::fs::File,
}

/// How long `take` waits for a holder that lets go at once (see [`crate::fsutil::lock_within`];
/// `attempt_running`'s probe is one) before it says the queue is busy. An attempt holds the
/// lock for as long as its gate runs.
const TAKE_WAIT: Duration = Duration::from_millis(250);

impl AttemptLock {
    /// Takes the lock, waiting up to `TAKE_WAIT` for a holder that lets go at once.
    pub(crate) fn take(queue: &Path) -> Result<AttemptLock, MergeError> {
        let path = attempt_lock_path(queue);
        let io = |source| MergeError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match crate::fsutil::lock_within(&file, TAKE_WAIT) {
            Ok(true) => Ok(AttemptLock { _file: file }),
            Ok(false) => Err(MergeError::Busy { path }),
            Err(source) => Err(io(source)),
        }
    }
}

/// True while some attempt holds the queue's attempt lock. When that cannot be told, an
/// attempt is taken to be running: an entry then stays `merging` rather than run twice.
pub(crate) fn attempt_running(queue: &Path) -> bool {
    let path = attempt_lock_path(queue);
    let file = match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        // No attempt has ever run here.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(_) => return true,
    };
    match file.try_lock() {
        // Dropping the file releases it at once.
        Ok(()) => false,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{EntryState, MergeQueue};

    fn q3() -> MergeQueue {
        let mut q = MergeQueue::default();
        for t in 1..=3 {
            q.push(t, "a", "batty/v1/a", "b0", &format!("t{t}"));
        }
        q
    }

    #[test]
    fn the_attempt_lock_tells_a_running_attempt_from_an_ended_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("merge.json");
        let mut q = q3();
        q.mark_merging(1).unwrap();
        q.save(&path).unwrap();
        assert!(!attempt_running(&path), "no attempt ever ran");
        let lock = AttemptLock::take(&path).unwrap();
        assert!(attempt_running(&path));
        assert!(matches!(
            AttemptLock::take(&path),
            Err(MergeError::Busy { .. })
        ));
        assert_eq!(
            MergeQueue::load(&path).unwrap().get(1).unwrap().state,
            EntryState::Merging
        );
        drop(lock);
        let loaded = MergeQueue::load(&path).unwrap();
        assert_eq!(loaded.get(1).unwrap().state, EntryState::Waiting);
        assert!(loaded.get(1).unwrap().interrupted);
    }

    #[test]
    fn a_holder_that_lets_go_at_once_does_not_make_the_queue_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("merge.json");
        // A second open of the lock file holding it, as a child forked by another thread
        // holds it until it execs.
        let other = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(attempt_lock_path(&path))
            .unwrap();
        other.lock().unwrap();
        let holder = std::thread::spawn(move || {
            // Lets go a moment later, well within the wait.
            std::thread::sleep(Duration::from_millis(20));
            drop(other);
        });
        let lock = AttemptLock::take(&path);
        assert!(lock.is_ok(), "{:?}", lock.err());
        holder.join().unwrap();
    }
}
