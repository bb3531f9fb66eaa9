//! Whether a disk the merge writes to is (nearly) full: a failure then is the disk's, not the
//! task's, and its message should say so.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Bytes free to an unprivileged writer and the size of the filesystem holding `path` (or its
/// nearest existing folder); `None` when that cannot be asked.
fn space(path: &Path) -> Option<(u64, u64)> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let c_path = CString::new(existing.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(3) fills the zeroed struct it is given; the path is a valid C string
    // that outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
    if rc != 0 {
        return None;
    }
    let block = st.f_frsize as u64;
    Some((st.f_bavail as u64 * block, st.f_blocks as u64 * block))
}

/// Less than 64 MiB free, or less than 2% of a small filesystem: too little for git to write a
/// checkout or for a gate to build, so a failure there is taken as the disk's.
fn nearly_full(free: u64, total: u64) -> bool {
    free < (64 << 20).min(total / 50)
}

/// The first of `paths` on a nearly full disk, with the bytes free there.
pub(crate) fn full(paths: &[&Path]) -> Option<(PathBuf, u64)> {
    paths.iter().find_map(|p| {
        let (free, total) = space(p)?;
        nearly_full(free, total).then(|| (p.to_path_buf(), free))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_is_little_room_for_the_disk_it_is() {
        const MIB: u64 = 1 << 20;
        assert!(nearly_full(0, MIB));
        assert!(nearly_full(10 * 1024, MIB), "under 2% of a small tmpfs");
        assert!(!nearly_full(900 * 1024, MIB));
        assert!(nearly_full(63 * MIB, 1 << 40), "under 64 MiB of a big disk");
        assert!(!nearly_full(65 * MIB, 1 << 40));
        // A path not made yet is asked about through its folder.
        let dir = tempfile::tempdir().unwrap();
        assert!(space(&dir.path().join("not/yet")).is_some());
    }
}
