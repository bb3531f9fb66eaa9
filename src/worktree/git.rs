//! The main checkout as git sees it: branches and the `git worktree list` entries.

use std::path::{Path, PathBuf};

use super::WorktreeError;
use crate::proc::Cmd;

/// The main checkout of a repository.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
}

/// One entry of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeEntry {
    pub path: PathBuf,
    /// Short branch name; `None` when detached or bare.
    pub branch: Option<String>,
    /// git thinks the folder is gone (`git worktree prune` drops it).
    pub prunable: bool,
}

impl Repo {
    pub fn new(root: impl Into<PathBuf>) -> Repo {
        Repo { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `git -C <root>` that never prompts for credentials.
    pub fn git(&self) -> Cmd {
        Cmd::new("git")
            .arg("-C")
            .arg(&self.root)
            .env("GIT_TERMINAL_PROMPT", "0")
    }

    /// The branch checked out in the main checkout.
    pub fn current_branch(&self) -> Result<String, WorktreeError> {
        Ok(self
            .git()
            .args(["symbolic-ref", "--quiet", "--short", "HEAD"])
            .read()?)
    }

    pub fn branch_exists(&self, branch: &str) -> Result<bool, WorktreeError> {
        Ok(self
            .git()
            .args([
                "show-ref",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}"),
            ])
            .succeeds()?)
    }

    /// True when `rev` names a commit (branch, tag, sha).
    pub fn rev_exists(&self, rev: &str) -> Result<bool, WorktreeError> {
        Ok(self
            .git()
            .args([
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ])
            .succeeds()?)
    }

    /// Local branches under `prefix` (e.g. `batty/v1/`), without the prefix.
    pub fn branches_under(&self, prefix: &str) -> Result<Vec<String>, WorktreeError> {
        let out = self
            .git()
            .args([
                "for-each-ref",
                "--format=%(refname:short)",
                &format!("refs/heads/{prefix}"),
            ])
            .read()?;
        Ok(out
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
            .collect())
    }

    /// Drops entries whose folders are gone.
    pub fn prune(&self) -> Result<(), WorktreeError> {
        self.git().args(["worktree", "prune"]).run()?;
        Ok(())
    }

    pub fn worktrees(&self) -> Result<Vec<WorktreeEntry>, WorktreeError> {
        let out = self
            .git()
            .args(["worktree", "list", "--porcelain"])
            .read()?;
        Ok(parse_worktree_list(&out))
    }

    pub(super) fn remove_worktree(&self, path: &Path) -> Result<(), WorktreeError> {
        self.git()
            .args(["worktree", "remove", "--force", "--force"])
            .arg(path)
            .run()?;
        Ok(())
    }

    pub(super) fn delete_branch(&self, branch: &str) -> Result<(), WorktreeError> {
        self.git().args(["branch", "-D", "--", branch]).run()?;
        Ok(())
    }
}

pub(crate) fn parse_worktree_list(out: &str) -> Vec<WorktreeEntry> {
    let mut entries = Vec::new();
    for block in out.split("\n\n") {
        let mut entry: Option<WorktreeEntry> = None;
        for line in block.lines() {
            if let Some(path) = line.strip_prefix("worktree ") {
                entry = Some(WorktreeEntry {
                    path: PathBuf::from(path),
                    branch: None,
                    prunable: false,
                });
            } else if let Some(e) = entry.as_mut() {
                if let Some(b) = line.strip_prefix("branch ") {
                    e.branch = Some(b.strip_prefix("refs/heads/").unwrap_or(b).to_owned());
                } else if line.starts_with("prunable") {
                    e.prunable = true;
                }
            }
        }
        entries.extend(entry);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_porcelain_list() {
        let out = "worktree /r\nHEAD 1111\nbranch refs/heads/main\n\nworktree /r/.batty/worktrees/v1/a-b\nHEAD 2222\nbranch refs/heads/batty/v1/a-b\n\nworktree /gone\nHEAD 3333\ndetached\nprunable gitdir file points to non-existent location\n";
        let e = parse_worktree_list(out);
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].branch.as_deref(), Some("batty/v1/a-b"));
        assert_eq!(e[2].branch, None);
        assert!(e[2].prunable);
        assert!(!e[0].prunable);
    }
}
