//! The few git questions the supervisor asks about agent branches.

use std::path::Path;

use crate::proc::{Cmd, ProcError};

fn git(dir: &Path) -> Cmd {
    Cmd::new("git")
        .arg("-C")
        .arg(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
}

/// The commit checked out in a worktree.
pub fn git_tip(worktree: &Path) -> Result<String, ProcError> {
    git(worktree).args(["rev-parse", "HEAD"]).read()
}

/// The commit a branch points at.
pub fn git_tip_of(repo: &Path, branch: &str) -> Result<String, ProcError> {
    git(repo)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("refs/heads/{branch}^{{commit}}"))
        .read()
}

/// Where a resumed task's commits start: the fork point from the target, else HEAD.
pub fn merge_base_or_head(worktree: &Path, target: Option<&str>) -> String {
    if let Some(target) = target
        && let Ok(base) = git(worktree)
            .args(["merge-base", "HEAD"])
            .arg(format!("refs/heads/{target}"))
            .read()
    {
        return base;
    }
    git_tip(worktree).unwrap_or_default()
}
