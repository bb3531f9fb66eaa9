//! The serial, test-gated merge queue: finished tasks land on the target branch one at a time,
//! in a detached worktree of their own, behind a gate and a compare-and-swap ref update.
//!
//! How the supervisor drives it:
//! 1. A task reaches `done`: `MergeQueue::update(&file, |q| { q.push(..); Ok(()) })`.
//! 2. No merge running and `q.next_waiting()` is some entry: `q.mark_merging(id)`, then on the
//!    merge worker thread `attempt(&ctx, &entry)`, which returns a plain outcome value.
//! 3. On the outcome, `q.record(id, &outcome, target, max_retries)` files it and returns the
//!    [`NextStep`]: note a landing on the board and sync the agent's worktree
//!    ([`sync_agent_worktree`]) before its next task; send the task back with a message; move it
//!    to review; or try again (now, or later when the main checkout is dirty).
//! 4. On start, before anything else: [`recover`] cleans up after a supervisor that died
//!    mid-merge and decides, exactly once, whether that merge landed.

mod attempt;
mod gate;
mod git;
mod journal;
mod queue;
mod recover;
mod sync;

use std::path::PathBuf;

pub use attempt::{MergeCtx, MergeOutcome, attempt};
pub use gate::TAIL_LINES;
pub use journal::Journal;
pub use queue::{EntryState, MergeEntry, MergeQueue, NextStep, retries_exhausted};
pub use recover::{Recovered, recover};
pub use sync::{SyncOutcome, sync_agent_worktree};

/// The merge queue file of a phase: `.batty/run/<phase>/merge.json`.
pub fn queue_file(project: &crate::paths::Project, phase: &str) -> PathBuf {
    project.merge_queue_file(phase)
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("git failed in `{}`: {source}", dir.display())]
    Git {
        dir: PathBuf,
        #[source]
        source: Box<crate::proc::ProcError>,
    },
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
}
