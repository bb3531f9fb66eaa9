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

/// Where a worktree stands against a target branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heads {
    /// The checked-out branch as a full ref (`refs/heads/...`), or `HEAD` when detached.
    pub branch: String,
    /// The commit checked out.
    pub head: String,
    /// The commit the target branch points at.
    pub target: String,
}

/// [`Heads`] in one git call (the worktree shares the repository's branches); `None` when
/// git fails, e.g. the target branch does not exist.
pub fn heads(worktree: &Path, target: &str) -> Option<Heads> {
    // `--symbolic-full-name` only applies to the arguments after it.
    let out = git(worktree)
        .arg("rev-parse")
        .arg("HEAD")
        .arg(format!("refs/heads/{target}^{{commit}}"))
        .args(["--symbolic-full-name", "HEAD"])
        .read()
        .ok()?;
    let mut lines = out.lines().map(str::to_owned);
    let heads = Heads {
        head: lines.next()?,
        target: lines.next()?,
        branch: lines.next()?,
    };
    (!heads.head.is_empty() && !heads.target.is_empty()).then_some(heads)
}

/// How many commits of `branch` have no equal (by patch id) on `target`.
pub fn unmerged_count(repo: &Path, target: &str, branch: &str) -> Result<usize, ProcError> {
    let out = git(repo)
        .args(["cherry"])
        .arg(format!("refs/heads/{target}"))
        .arg(format!("refs/heads/{branch}"))
        .read()?;
    Ok(out.lines().filter(|l| l.starts_with('+')).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t.invalid")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn heads_in_one_call() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        run(repo, &["init", "-q", "-b", "main"]);
        run(repo, &["commit", "-q", "--allow-empty", "-m", "one"]);
        let h = heads(repo, "main").unwrap();
        assert_eq!(h.branch, "refs/heads/main");
        assert_eq!(h.head, h.target);
        assert_eq!(h.head, git_tip(repo).unwrap());

        run(repo, &["switch", "-q", "-c", "batty/v1/a"]);
        run(repo, &["commit", "-q", "--allow-empty", "-m", "two"]);
        let h = heads(repo, "main").unwrap();
        assert_eq!(h.branch, "refs/heads/batty/v1/a");
        assert_ne!(h.head, h.target);
        assert_eq!(h.target, git_tip_of(repo, "main").unwrap());

        assert_eq!(heads(repo, "no-such-branch"), None);
    }
}
