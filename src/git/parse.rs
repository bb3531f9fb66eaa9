//! What git prints, turned into plain values: `status -z`, `worktree list --porcelain` (with
//! and without `-z`) and `diff --numstat -z`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `(XY, path)` for each entry of `git status --porcelain=v1 -z`; a rename or copy gives its
/// new path (its source follows as a separate field, which is skipped).
pub(super) fn status_z(out: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut entries = out.split('\0').filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        let code = entry.get(..2).unwrap_or(entry);
        let path = entry.get(3..).unwrap_or_default();
        files.push((code.to_owned(), path.to_owned()));
        if code.starts_with('R') || code.starts_with('C') {
            entries.next();
        }
    }
    files
}

/// One entry of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeEntry {
    pub path: PathBuf,
    /// Short branch name; `None` when detached or bare.
    pub branch: Option<String>,
    /// The folder is gone (`git worktree prune` drops it).
    pub prunable: bool,
}

/// Entries of `git worktree list --porcelain`, whose fields end with `sep` (`\n`, or `\0`
/// with `-z`) and whose entries end with an empty field.
pub(super) fn worktree_list(out: &str, sep: char) -> Vec<WorktreeEntry> {
    let mut entries = Vec::new();
    let mut entry: Option<WorktreeEntry> = None;
    for field in out.split(sep) {
        if field.is_empty() {
            entries.extend(entry.take());
        } else if let Some(path) = field.strip_prefix("worktree ") {
            entries.extend(entry.take());
            entry = Some(WorktreeEntry {
                path: PathBuf::from(path),
                branch: None,
                prunable: false,
            });
        } else if let Some(e) = entry.as_mut() {
            if let Some(b) = field.strip_prefix("branch ") {
                e.branch = Some(b.strip_prefix("refs/heads/").unwrap_or(b).to_owned());
            } else if field == "prunable" || field.starts_with("prunable ") {
                e.prunable = true;
            }
        }
    }
    entries.extend(entry);
    entries
}

/// The files a commit range changes, with lines added and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diffstat {
    pub files: Vec<FileStat>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub path: String,
    /// The old path of a renamed or copied file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `None` for a binary file.
    pub insertions: Option<u64>,
    pub deletions: Option<u64>,
}

impl Diffstat {
    pub fn insertions(&self) -> u64 {
        self.files.iter().filter_map(|f| f.insertions).sum()
    }

    pub fn deletions(&self) -> u64 {
        self.files.iter().filter_map(|f| f.deletions).sum()
    }

    /// `3 files changed, 10 insertions(+), 2 deletions(-)`, as git words it.
    pub fn summary(&self) -> String {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{}, {}, {}",
            plural(self.files.len() as u64, "file changed", "files changed"),
            plural(self.insertions(), "insertion(+)", "insertions(+)"),
            plural(self.deletions(), "deletion(-)", "deletions(-)")
        )
    }
}

/// `git diff --numstat -z`: `added\tdeleted\tpath\0`, or for a rename
/// `added\tdeleted\t\0from\0to\0`; a binary file counts `-`.
pub(super) fn numstat_z(out: &str) -> Diffstat {
    let mut files = Vec::new();
    let mut fields = out.split('\0');
    while let Some(field) = fields.next() {
        let mut cols = field.splitn(3, '\t');
        let (Some(added), Some(deleted), Some(path)) = (cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        let (path, from) = if path.is_empty() {
            let from = fields.next().unwrap_or_default().to_owned();
            (fields.next().unwrap_or_default().to_owned(), Some(from))
        } else {
            (path.to_owned(), None)
        };
        files.push(FileStat {
            path,
            from,
            insertions: added.parse().ok(),
            deletions: deleted.parse().ok(),
        });
    }
    Diffstat { files }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_entries_with_renames() {
        let out = " M a.txt\0R  new.txt\0old.txt\0?? dir/f\0";
        assert_eq!(
            status_z(out),
            [
                (" M".into(), "a.txt".into()),
                ("R ".into(), "new.txt".into()),
                ("??".into(), "dir/f".into())
            ]
        );
    }

    #[test]
    fn worktree_list_with_and_without_z() {
        let lines = "worktree /r\nHEAD 1111\nbranch refs/heads/main\n\nworktree /r/.batty/worktrees/v1/a-b\nHEAD 2222\nbranch refs/heads/batty/v1/a-b\n\nworktree /gone\nHEAD 3333\ndetached\nprunable gitdir file points to non-existent location\n\n";
        let z = lines.replace('\n', "\0");
        for (out, sep) in [(lines.to_owned(), '\n'), (z, '\0')] {
            let e = worktree_list(&out, sep);
            assert_eq!(e.len(), 3);
            assert_eq!(e[0].path, PathBuf::from("/r"));
            assert_eq!(e[1].branch.as_deref(), Some("batty/v1/a-b"));
            assert_eq!(e[2].branch, None);
            assert!(e[2].prunable);
            assert!(!e[0].prunable);
        }
        // A path with a newline survives `-z`.
        let e = worktree_list("worktree /odd\nname\0HEAD 1\0detached\0\0", '\0');
        assert_eq!(e[0].path, PathBuf::from("/odd\nname"));
    }

    #[test]
    fn numstat_counts_renames_and_binaries() {
        let out = "3\t1\tsrc/a.rs\0-\t-\tlogo.png\0\x30\t0\t\0old.txt\0new.txt\0";
        let d = numstat_z(out);
        assert_eq!(d.files.len(), 3);
        assert_eq!(d.files[1].insertions, None);
        assert_eq!(d.files[2].path, "new.txt");
        assert_eq!(d.files[2].from.as_deref(), Some("old.txt"));
        assert_eq!((d.insertions(), d.deletions()), (3, 1));
        assert_eq!(
            d.summary(),
            "3 files changed, 3 insertions(+), 1 deletion(-)"
        );
        assert_eq!(numstat_z(""), Diffstat::default());
    }
}
