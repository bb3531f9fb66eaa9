//! The few git questions the supervisor asks about agent branches: thin wrappers over the one
//! git wrapper, [`crate::git`].

use std::path::Path;

use crate::git::{Git, GitError};

pub use crate::git::Heads;

/// The commit checked out in a worktree.
pub fn git_tip(worktree: &Path) -> Result<String, GitError> {
    Git::new(worktree).head()
}

/// The commit a branch points at.
pub fn git_tip_of(repo: &Path, branch: &str) -> Result<String, GitError> {
    Git::new(repo).branch_tip(branch)
}

/// Where a resumed task's commits start: the fork point from the target, else HEAD.
pub fn merge_base_or_head(worktree: &Path, target: Option<&str>) -> String {
    Git::new(worktree).merge_base_or_head(target)
}

/// [`Heads`] against the target branch in one git call; `None` when git fails, e.g. the
/// target branch does not exist.
pub fn heads(worktree: &Path, target: &str) -> Option<Heads> {
    Git::new(worktree).heads(&format!("refs/heads/{target}"))
}

/// How many commits of `branch` have no equal (by patch id) on `target`.
pub fn unmerged_count(repo: &Path, target: &str, branch: &str) -> Result<usize, GitError> {
    Git::new(repo).unmerged_count(target, branch)
}
