//! `<board>/.batty-ids`: where each task's file probably is, so a command about one task finds
//! its file without listing the task folder. A hint only: every use reads the file it names and
//! checks the id in it, and a wrong or missing hint falls back to the folder. Deleting the file
//! is always safe.
//!
//! Fixed-size records, one per id at offset `id * RECORD`: the file name, NUL-padded (record 0
//! is the header). One `pread` finds a name; creating or renaming a task writes one record.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const INDEX_FILE: &str = ".batty-ids";
const RECORD: usize = 64;
const MAGIC: &[u8] = b"batty-ids 1\n";
/// Ids past this are not recorded (they would make the file huge for no gain).
const MAX_ID: u64 = 4_000_000;

pub(crate) struct IdIndex {
    path: PathBuf,
}

impl IdIndex {
    pub fn new(board_dir: &Path) -> IdIndex {
        IdIndex {
            path: board_dir.join(INDEX_FILE),
        }
    }

    /// The file name recorded for `id`, if any.
    pub fn get(&self, id: u64) -> Option<String> {
        if id == 0 || id > MAX_ID {
            return None;
        }
        let file = std::fs::File::open(&self.path).ok()?;
        let mut header = [0u8; RECORD];
        file.read_exact_at(&mut header, 0).ok()?;
        if !header.starts_with(MAGIC) {
            return None;
        }
        let mut record = [0u8; RECORD];
        file.read_exact_at(&mut record, id * RECORD as u64).ok()?;
        let len = record.iter().position(|&b| b == 0).unwrap_or(RECORD);
        let name = std::str::from_utf8(&record[..len]).ok()?;
        valid_name(name).then(|| name.to_owned())
    }

    /// Records `name` for `id` (best effort: a hint that cannot be written is only a slower
    /// lookup next time).
    pub fn set(&self, id: u64, name: &str) {
        let Some(record) = record(id, name) else {
            return;
        };
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
        else {
            return;
        };
        let mut header = [0u8; RECORD];
        let fresh = file.read_exact_at(&mut header, 0).is_err() || !header.starts_with(MAGIC);
        if fresh && (file.set_len(0).is_err() || file.write_all_at(&header_record(), 0).is_err()) {
            return;
        }
        let _ = file.write_all_at(&record, id * RECORD as u64);
    }

    /// Replaces the whole index with `entries` (id, file name); the first name for an id wins.
    pub fn rebuild<'a>(&self, entries: impl IntoIterator<Item = (u64, &'a str)>) {
        let mut out = header_record().to_vec();
        for (id, name) in entries {
            let Some(rec) = record(id, name) else {
                continue;
            };
            let at = id as usize * RECORD;
            if out.len() < at + RECORD {
                out.resize(at + RECORD, 0);
            }
            if out[at] == 0 {
                out[at..at + RECORD].copy_from_slice(&rec);
            }
        }
        let _ = crate::fsutil::write_atomic(&self.path, &out);
    }
}

/// Tells the id index of the board in `board_dir` that task `id` is in the file `name` (for a
/// watcher that read a task file new to it), so the next change of that task finds its file
/// without listing the folder.
pub fn remember_file(board_dir: &Path, id: u64, name: &str) {
    IdIndex::new(board_dir).set(id, name);
}

fn header_record() -> [u8; RECORD] {
    let mut h = [0u8; RECORD];
    h[..MAGIC.len()].copy_from_slice(MAGIC);
    h
}

fn record(id: u64, name: &str) -> Option<[u8; RECORD]> {
    if id == 0 || id > MAX_ID || !valid_name(name) || name.len() >= RECORD {
        return None;
    }
    let mut rec = [0u8; RECORD];
    rec[..name.len()].copy_from_slice(name.as_bytes());
    Some(rec)
}

fn valid_name(name: &str) -> bool {
    name.ends_with(".md") && !name.starts_with('.') && !name.contains(['/', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_bad_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let index = IdIndex::new(dir.path());
        assert_eq!(index.get(3), None);
        index.set(3, "003-three.md");
        index.set(7, "007-seven.md");
        assert_eq!(index.get(3).as_deref(), Some("003-three.md"));
        assert_eq!(index.get(7).as_deref(), Some("007-seven.md"));
        assert_eq!(index.get(5), None);
        assert_eq!(index.get(8), None);
        index.set(9, &format!("{}.md", "x".repeat(70)));
        assert_eq!(index.get(9), None, "long names are not recorded");
        index.set(10, "../escape.md");
        assert_eq!(index.get(10), None);

        index.rebuild([(2, "002-b.md"), (2, "002-later.md"), (4, "004-d.md")]);
        assert_eq!(index.get(2).as_deref(), Some("002-b.md"));
        assert_eq!(index.get(3), None, "a rebuild replaces everything");
        std::fs::write(dir.path().join(INDEX_FILE), "garbage").unwrap();
        assert_eq!(index.get(2), None);
        index.set(2, "002-b.md");
        assert_eq!(index.get(2).as_deref(), Some("002-b.md"));
    }
}
