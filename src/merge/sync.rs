//! Bringing an agent's worktree onto the new target tip before its next task, so its merged
//! commits drop out and its next task starts from what has landed. Uncommitted work is never
//! touched, and no commit that is not on the target is ever dropped.

use std::path::Path;

use super::MergeError;
use super::git::Git;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The branch already points at the target tip.
    UpToDate,
    /// Every commit of the branch is on the target (by patch id): the branch now points at
    /// the target tip.
    Reset { to: String },
    /// `kept` commits not on the target were replayed onto the target tip.
    Rebased { kept: usize, head: String },
    /// Uncommitted or untracked files: nothing was done. Try again when the agent has
    /// committed, or leave it; its next merge still works from the old base.
    SkippedDirty { files: Vec<String> },
    /// Replaying the unmerged commits conflicted in `files`: the rebase was aborted and the
    /// branch is as it was.
    Conflict { files: Vec<String> },
}

/// Brings `worktree` (which must have `branch` checked out) onto `new_target_tip`.
pub fn sync_agent_worktree(
    worktree: &Path,
    branch: &str,
    new_target_tip: &str,
) -> Result<SyncOutcome, MergeError> {
    let wt = Git::new(worktree);
    let current = wt.current_branch()?;
    if current.as_deref() != Some(branch) {
        return Err(MergeError::WrongBranch {
            path: worktree.to_owned(),
            branch: branch.to_owned(),
            actual: match current {
                Some(b) => format!("branch `{b}`"),
                None => "a detached HEAD".into(),
            },
        });
    }
    let tip = wt
        .commit(new_target_tip)?
        .ok_or_else(|| MergeError::NoCommit {
            sha: new_target_tip.to_owned(),
            branch: branch.to_owned(),
        })?;
    let head = wt.read(["rev-parse", "HEAD"])?;
    if head == tip {
        return Ok(SyncOutcome::UpToDate);
    }
    // `reset --hard` and `rebase` would overwrite untracked files in their way, so untracked
    // files count as uncommitted work too.
    let files = wt.dirty_files(true)?;
    if !files.is_empty() {
        return Ok(SyncOutcome::SkippedDirty { files });
    }
    let unmerged = wt.unmerged_commits(&tip, &head, &tip)?;
    let merges = wt.read(["rev-list", "--count", "--merges", &format!("{tip}..{head}")])?;
    if unmerged.is_empty() && merges == "0" {
        wt.read(["reset", "--quiet", "--hard", &tip])?;
        return Ok(SyncOutcome::Reset { to: tip });
    }
    match wt
        .cmd(["-c", "rebase.autoStash=false", "rebase", "--quiet", &tip])
        .run()
    {
        Ok(_) => Ok(SyncOutcome::Rebased {
            kept: unmerged.len(),
            head: wt.read(["rev-parse", "HEAD"])?,
        }),
        Err(err) => {
            let files = wt.conflicted_files()?;
            let _ = wt.cmd(["rebase", "--abort"]).run();
            if files.is_empty() {
                Err(wt.err(err))
            } else {
                Ok(SyncOutcome::Conflict { files })
            }
        }
    }
}
