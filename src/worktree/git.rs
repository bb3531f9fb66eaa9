//! The main checkout as the worktree module sees it: branches and the `git worktree list`
//! entries, through the one git wrapper.

use std::path::Path;

use super::WorktreeError;
use crate::git::Git;

pub use crate::git::WorktreeEntry;

/// The main checkout of a repository.
#[derive(Debug, Clone)]
pub struct Repo {
    git: Git,
}

impl Repo {
    pub fn new(root: impl Into<std::path::PathBuf>) -> Repo {
        Repo {
            git: Git::new(root),
        }
    }

    pub fn root(&self) -> &Path {
        self.git.dir()
    }

    /// git in the main checkout.
    pub fn git(&self) -> &Git {
        &self.git
    }

    /// The branch checked out in the main checkout.
    pub fn current_branch(&self) -> Result<String, WorktreeError> {
        self.git
            .current_branch()?
            .ok_or_else(|| WorktreeError::Detached {
                path: self.root().to_owned(),
            })
    }

    pub fn branch_exists(&self, branch: &str) -> Result<bool, WorktreeError> {
        Ok(self.git.branch_exists(branch)?)
    }

    /// True when `rev` names a commit (branch, tag, sha).
    pub fn rev_exists(&self, rev: &str) -> Result<bool, WorktreeError> {
        Ok(self.git.commit(rev)?.is_some())
    }

    /// Local branches under `prefix` (e.g. `batty/v1/`), without the prefix.
    pub fn branches_under(&self, prefix: &str) -> Result<Vec<String>, WorktreeError> {
        Ok(self.git.branches_under(prefix)?)
    }

    /// Drops entries whose folders are gone.
    pub fn prune(&self) -> Result<(), WorktreeError> {
        Ok(self.git.worktree_prune()?)
    }

    pub fn worktrees(&self) -> Result<Vec<WorktreeEntry>, WorktreeError> {
        Ok(self.git.worktrees()?)
    }

    pub(super) fn remove_worktree(&self, path: &Path) -> Result<(), WorktreeError> {
        Ok(self.git.worktree_remove(path)?)
    }

    pub(super) fn delete_branch(&self, branch: &str) -> Result<(), WorktreeError> {
        Ok(self.git.delete_branch(branch)?)
    }
}
