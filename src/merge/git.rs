//! The few git questions and moves the merge queue needs, each run through `proc::Cmd` in an
//! explicit folder, with failures turned into `MergeError::Git` naming that folder.

use std::path::{Path, PathBuf};

use crate::proc::{Cmd, ProcError};

use super::MergeError;

/// git, run in one checkout (the main one, the merge worktree or an agent's worktree).
#[derive(Debug, Clone)]
pub(crate) struct Git {
    dir: PathBuf,
}

impl Git {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Git {
        Git { dir: dir.into() }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// A git command in this checkout. Variables a calling git (a hook, a test harness) may
    /// have set would point git at another repository, so they are removed.
    pub(crate) fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Cmd::new("git")
            .current_dir(&self.dir)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_COMMON_DIR")
            .args(args)
    }

    pub(crate) fn err(&self, source: ProcError) -> MergeError {
        MergeError::Git {
            dir: self.dir.clone(),
            source: Box::new(source),
        }
    }

    /// Runs and returns trimmed stdout.
    pub(crate) fn read<I, S>(&self, args: I) -> Result<String, MergeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd(args).read().map_err(|e| self.err(e))
    }

    /// Runs; exit 0 is `true`, any other exit `false`.
    pub(crate) fn ok<I, S>(&self, args: I) -> Result<bool, MergeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd(args).succeeds().map_err(|e| self.err(e))
    }

    /// The commit a ref or sha names, or `None` when it names no commit.
    pub(crate) fn commit(&self, rev: &str) -> Result<Option<String>, MergeError> {
        match self
            .cmd(["rev-parse", "--verify", "--quiet"])
            .arg(format!("{rev}^{{commit}}"))
            .read()
        {
            Ok(sha) => Ok(Some(sha)),
            Err(e) if e.code() == Some(1) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// True when `ancestor` is reachable from `descendant`.
    pub(crate) fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, MergeError> {
        self.ok(["merge-base", "--is-ancestor", ancestor, descendant])
    }

    /// Paths with uncommitted changes. `untracked` also counts untracked (not ignored) files.
    pub(crate) fn dirty_files(&self, untracked: bool) -> Result<Vec<String>, MergeError> {
        let mode = if untracked {
            "--untracked-files=all"
        } else {
            "--untracked-files=no"
        };
        let out = self.read(["status", "--porcelain=v1", "-z", mode])?;
        // `-z` entries are `XY path`, renames followed by their source as a separate entry.
        let mut files = Vec::new();
        let mut entries = out.split('\0').filter(|e| !e.is_empty());
        while let Some(entry) = entries.next() {
            let (code, path) = entry.split_at(entry.len().min(3));
            files.push(path.to_owned());
            if code.starts_with('R') || code.starts_with('C') {
                entries.next();
            }
        }
        Ok(files)
    }

    /// Files git left unmerged (conflicted) in this checkout.
    pub(crate) fn conflicted_files(&self) -> Result<Vec<String>, MergeError> {
        let out = self.read(["diff", "--name-only", "--diff-filter=U", "-z"])?;
        let mut files: Vec<String> = out
            .split('\0')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        files.dedup();
        Ok(files)
    }

    /// The branch checked out here, `None` when HEAD is detached.
    pub(crate) fn current_branch(&self) -> Result<Option<String>, MergeError> {
        match self
            .cmd(["symbolic-ref", "--quiet", "--short", "HEAD"])
            .read()
        {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.code() == Some(1) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The private git folder of this checkout (`.git`, or `.git/worktrees/<name>`).
    pub(crate) fn git_dir(&self) -> Result<PathBuf, MergeError> {
        let p = PathBuf::from(self.read(["rev-parse", "--absolute-git-dir"])?);
        Ok(p)
    }

    /// The worktree that has `branch` checked out, if any.
    pub(crate) fn worktree_of_branch(&self, branch: &str) -> Result<Option<PathBuf>, MergeError> {
        let out = self.read(["worktree", "list", "--porcelain", "-z"])?;
        let want = format!("branch refs/heads/{branch}");
        let mut current: Option<PathBuf> = None;
        for field in out.split('\0') {
            if let Some(path) = field.strip_prefix("worktree ") {
                current = Some(PathBuf::from(path));
            } else if field == want {
                return Ok(current);
            }
        }
        Ok(None)
    }

    /// Commits of `base..tip` not yet on `upstream` by patch id, oldest first.
    pub(crate) fn unmerged_commits(
        &self,
        upstream: &str,
        tip: &str,
        base: &str,
    ) -> Result<Vec<String>, MergeError> {
        let out = self.read(["cherry", upstream, tip, base])?;
        Ok(out
            .lines()
            .filter_map(|l| l.strip_prefix("+ "))
            .map(str::to_owned)
            .collect())
    }

    /// Ends any cherry-pick, rebase or merge in progress and puts this checkout, detached, on
    /// `at` with nothing else in it: only for the merge worktree, which holds nothing of
    /// anyone's. Checking out detached (never `reset` on a branch) moves no branch.
    pub(crate) fn scrub_to(&self, at: &str) -> Result<(), MergeError> {
        let git_dir = self.git_dir()?;
        if git_dir.join("CHERRY_PICK_HEAD").exists() || git_dir.join("sequencer").exists() {
            // `--quit` forgets the sequence even when `--abort` finds nothing to undo.
            let _ = self.cmd(["cherry-pick", "--abort"]).run();
            let _ = self.cmd(["cherry-pick", "--quit"]).run();
        }
        if git_dir.join("rebase-merge").exists() || git_dir.join("rebase-apply").exists() {
            let _ = self.cmd(["rebase", "--abort"]).run();
        }
        if git_dir.join("MERGE_HEAD").exists() {
            let _ = self.cmd(["merge", "--abort"]).run();
        }
        // A killed git leaves its lock behind; nobody else works in this worktree.
        let _ = std::fs::remove_file(git_dir.join("index.lock"));
        self.read(["checkout", "--quiet", "--force", "--detach", at])?;
        // Ignored files (build caches such as `target/`) stay, so a gate builds incrementally.
        self.read(["clean", "-ffdq"])?;
        Ok(())
    }
}
