//! The serial, test-gated merge queue: finished tasks land on the target branch one at a time,
//! in a detached worktree of their own, behind a gate and a compare-and-swap ref update.
//!
//! How the supervisor drives it:
//! 1. A task reaches `done` with its attempt's range `base..head` (the target tip the attempt
//!    started on, the agent's head when it reported done): [`unlanded`] says whether anything
//!    of it is not on the target yet; if so, [`hold`] keeps `head` alive under
//!    `refs/batty/<phase>/queue/<task>` and `MergeQueue::update(&file, |q| { q.push(..); Ok(()) })`
//!    queues it.
//! 2. No merge running and `q.next_waiting()` is some entry: `q.mark_merging(id)`, then on the
//!    merge worker thread `attempt(&ctx, &entry)`, which applies exactly `base..head` onto the
//!    target tip and returns a plain outcome value (a panic inside becomes an error).
//! 3. On the outcome, `q.record(id, &outcome, target, max_retries)` files it and returns the
//!    [`NextStep`]: note a landing on the board; send the task back (a conflict or a red gate is
//!    the task's); move it to review; or try again, now or later. A failure of batty's own
//!    machinery ([`Fault::Machinery`]) is retried with backoff and never goes to an agent.
//! 4. Before an agent takes its next task, [`prepare_branch`] moves whatever on its branch did
//!    not land off the branch to a `refs/batty/<phase>/rejected/...` ref and puts the branch on
//!    the target tip.
//! 5. On start, before anything else: [`recover`] cleans up after a supervisor that died
//!    mid-merge and decides, exactly once, whether that merge landed. A task finished while
//!    no supervisor ran has no recorded start or end: [`unwatched_range`] works its range out
//!    from the board's claims ([`claim_bounds`]) and the branch's reflog.

mod attempt;
mod clean;
mod disk;
mod gate;
mod journal;
mod lock;
mod queue;
mod range;
mod record;
mod recover;
mod refs;
mod sync;

use std::path::PathBuf;

use crate::git::GitError;

pub use attempt::{GateReport, MergeCtx, MergeOutcome, attempt};
pub use clean::{Cleaned, clean, merge_files, refs_at_risk};
pub use gate::TAIL_LINES;
pub use journal::Journal;
pub use queue::{EntryState, Landed, MergeEntry, MergeQueue, NextStep};
pub use range::{claim_bounds, unwatched_range};
pub use record::{backoff, retries_exhausted};
pub use recover::{Recovered, recover};
pub use refs::{diffstat, hold, queue_ref, rejected_ref, release, task_diffstat, unlanded};
pub use sync::{Parked, Prepare, Prepared, SyncOutcome, prepare_branch, sync_agent_worktree};

/// The merge queue file of a phase: `.batty/run/<phase>/merge.json`.
pub fn queue_file(project: &crate::paths::Project, phase: &str) -> PathBuf {
    project.merge_queue_file(phase)
}

/// Whose a failure is: the task's goes back to its agent; batty's own is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The task's work cannot land as it is: its agent has to make a new attempt.
    Task,
    /// batty's machinery failed (disk, git in the merge worktree, a lock, the gate's shell):
    /// the entry stays in the queue and is tried again later.
    Machinery,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("merge queue `{}` is unreadable: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("no task #{task} in the merge queue")]
    NoEntry { task: u64 },
    #[error("task #{task} is {state}; only failed or waiting tasks can be retried")]
    NotRetryable { task: u64, state: &'static str },
    #[error("branch `{branch}` does not exist")]
    NoBranch { branch: String },
    #[error("commit `{sha}` of branch `{branch}` does not exist")]
    NoCommit { sha: String, branch: String },
    #[error("cannot run merge gate `{gate}` in `{}`: {source}", dir.display())]
    GateSpawn {
        gate: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("worktree `{}` is on {actual}, not on branch `{branch}`", path.display())]
    WrongBranch {
        path: PathBuf,
        branch: String,
        actual: String,
    },
    #[error("the disk holding `{}` is full ({} KiB free): {cause}", path.display(), free / 1024)]
    DiskFull {
        path: PathBuf,
        free: u64,
        /// What failed for want of space.
        cause: String,
    },
    #[error("ref `{name}` already keeps other work; nothing was moved")]
    RefTaken { name: String },
    #[error("another merge attempt holds `{}`", path.display())]
    Busy { path: PathBuf },
    #[error("the merge attempt of task #{task} panicked: {message}")]
    Panicked { task: u64, message: String },
}

impl MergeError {
    /// Whose failure this is, when a merge attempt ends with it.
    pub fn fault(&self) -> Fault {
        match self {
            // The range the entry names is gone: only a new attempt of the task can give one.
            MergeError::NoCommit { .. } => Fault::Task,
            MergeError::Git(_)
            | MergeError::Io { .. }
            | MergeError::Corrupt { .. }
            | MergeError::NoEntry { .. }
            | MergeError::NotRetryable { .. }
            | MergeError::NoBranch { .. }
            | MergeError::GateSpawn { .. }
            | MergeError::WrongBranch { .. }
            | MergeError::DiskFull { .. }
            | MergeError::Busy { .. }
            | MergeError::RefTaken { .. }
            | MergeError::Panicked { .. } => Fault::Machinery,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_range_is_the_tasks_fault() {
        let git = || {
            crate::git::Git::new("/nowhere").err(crate::proc::Cmd::new("false").run().unwrap_err())
        };
        let io = || std::io::Error::from(std::io::ErrorKind::StorageFull);
        let machinery = [
            MergeError::Git(git()),
            MergeError::Io {
                path: "/q".into(),
                source: io(),
            },
            MergeError::GateSpawn {
                gate: "cargo test".into(),
                dir: "/m".into(),
                source: io(),
            },
            MergeError::NoBranch {
                branch: "main".into(),
            },
            MergeError::DiskFull {
                path: "/m".into(),
                free: 0,
                cause: "the gate failed (exit code 101)".into(),
            },
            MergeError::Busy { path: "/l".into() },
            MergeError::Panicked {
                task: 1,
                message: "boom".into(),
            },
        ];
        for err in machinery {
            assert_eq!(err.fault(), Fault::Machinery, "{err}");
        }
        let gone = MergeError::NoCommit {
            sha: "abc".into(),
            branch: "batty/v1/a".into(),
        };
        assert_eq!(gone.fault(), Fault::Task);
    }
}
