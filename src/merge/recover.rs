//! Recovery after a supervisor died mid-merge: end a gate still running, clean the merge
//! worktree, and decide exactly once whether the interrupted merge landed.

use std::path::Path;

use crate::git::Git;

use super::MergeError;
use super::attempt::{MergeCtx, is_worktree_root};
use super::gate::kill_group;
use super::journal::Journal;
use super::queue::{EntryState, MergeQueue};

/// What recovery decided for an entry that was `merging` when its attempt ended unrecorded
/// (the supervisor died, or writing the outcome failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub task: u64,
    /// `Merged` (its candidate is on the target: update the board as for a landing) or
    /// `Waiting` (back in line; its next attempt starts afresh).
    pub state: EntryState,
}

/// Call once at supervisor start, before any attempt, and save the queue after.
pub fn recover(ctx: &MergeCtx, queue: &mut MergeQueue) -> Result<Vec<Recovered>, MergeError> {
    let journal = Journal::load(&ctx.journal);
    end_orphaned_gate(&ctx.merge_worktree, journal.as_ref());
    let wt = Git::new(&ctx.merge_worktree);
    if is_worktree_root(&wt, &ctx.merge_worktree) {
        wt.scrub_to("HEAD")?;
    }
    let repo = Git::new(&ctx.repo);
    let target_ref = format!("refs/heads/{}", ctx.target);
    let interrupted: Vec<u64> = queue
        .list()
        .iter()
        .filter(|e| e.state == EntryState::Merging || e.interrupted)
        .map(|e| e.task)
        .collect();
    let mut out = Vec::new();
    for task in interrupted {
        let entry = queue.get(task);
        let recorded = entry.and_then(|e| e.candidate.clone());
        let tip = entry.map(|e| e.tip.as_str());
        let journaled = journal
            .as_ref()
            .filter(|j| j.task == task && j.target == ctx.target)
            .filter(|j| j.tip.is_none() || j.tip.as_deref() == tip)
            .and_then(|j| j.candidate.clone());
        let candidate = recorded.or(journaled);
        let landed = match &candidate {
            Some(candidate) => {
                repo.commit(candidate)?.is_some()
                    && repo.commit(&target_ref)?.is_some()
                    && repo.is_ancestor(candidate, &target_ref)?
            }
            None => false,
        };
        let state = if landed {
            queue.mark_merged(
                task,
                candidate.as_deref(),
                Some("landed before a supervisor restart".into()),
            )?;
            EntryState::Merged
        } else {
            queue.mark_waiting(
                task,
                Some("merge interrupted by a supervisor restart".into()),
            )?;
            EntryState::Waiting
        };
        out.push(Recovered { task, state });
    }
    Ok(out)
}

/// Ends a gate the journal names that still runs in the merge worktree (its supervisor died).
pub(crate) fn end_orphaned_gate(merge_worktree: &Path, journal: Option<&Journal>) {
    if let Some(pgid) = journal.and_then(|j| j.gate_pgid)
        && group_works_in(pgid, merge_worktree)
    {
        kill_group(pgid);
    }
}

/// True when some process of group `pgid` has its cwd inside `dir`: a gate of ours, not an
/// unrelated process that reused the id.
fn group_works_in(pgid: u32, dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces, so split after `)`.
        let pgrp = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|g| g.parse::<u32>().ok());
        pgrp == Some(pgid)
            && std::fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&dir))
    })
}
