//! The report of a phase: one row per task (its status from the board, its attempts from the
//! record, its merge checked against the target), totals, wall time and busy time per agent.
//! [`build`] is pure; `render` turns a [`Report`] into text or markdown.

use std::collections::BTreeSet;

use serde::Serialize;

use super::entry::{At, Entry};
use super::history::{Attempt, History, Outcome, TaskHistory};
use crate::board::{Board, Task};

/// What a report is built from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub phase: &'a str,
    /// The branch finished work lands on.
    pub target: &'a str,
    /// The phase's record, in file order.
    pub entries: &'a [Entry],
    pub board: &'a Board,
    /// The landed commits (of [`History::landed_commits`]) that are on the target now.
    pub on_target: &'a BTreeSet<String>,
    /// Whether finished work goes through the merge queue (`merge.enabled`): a done task
    /// without a merge is then still merging.
    pub merging: bool,
    /// Open attempts and a running supervisor are timed up to here: now while a supervisor
    /// runs, else the record's last line.
    pub now: At,
}

/// Where a task stands, from the board and the record together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// Done, and its landed commit is on the target.
    Merged,
    /// Done, with nothing to merge through batty (no merge queue, or done by a person).
    Done,
    /// Done; the merge found no commits to land.
    NothingToMerge,
    /// Done; its merge has not finished.
    Merging,
    /// Done and landed, but the landed commit is no longer on the target.
    NotOnTarget,
    /// Done, but its last merge failed.
    MergeFailed,
    Review,
    Blocked,
    InProgress,
    WaitingOnDependency,
    /// Attempted before, back in the queue.
    Queued,
    NotStarted,
    /// In the record, no longer on the board.
    NotOnBoard,
}

impl RowStatus {
    /// ✓ done, ✗ needs a person, … on its way.
    pub fn mark(self) -> &'static str {
        match self {
            RowStatus::Merged | RowStatus::Done | RowStatus::NothingToMerge => "✓",
            RowStatus::NotOnTarget
            | RowStatus::MergeFailed
            | RowStatus::Review
            | RowStatus::Blocked => "✗",
            RowStatus::Merging
            | RowStatus::InProgress
            | RowStatus::WaitingOnDependency
            | RowStatus::Queued
            | RowStatus::NotStarted => "…",
            RowStatus::NotOnBoard => "?",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RowStatus::Merged => "merged",
            RowStatus::Done => "done",
            RowStatus::NothingToMerge => "no commits",
            RowStatus::Merging => "merging",
            RowStatus::NotOnTarget => "not on target",
            RowStatus::MergeFailed => "merge failed",
            RowStatus::Review => "review",
            RowStatus::Blocked => "blocked",
            RowStatus::InProgress => "in progress",
            RowStatus::WaitingOnDependency => "waiting",
            RowStatus::Queued => "queued",
            RowStatus::NotStarted => "not started",
            RowStatus::NotOnBoard => "not on board",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub phase: String,
    pub target: String,
    /// Every task on the board by id, then tasks only the record knows.
    pub tasks: Vec<TaskRow>,
    pub totals: Totals,
    /// Seconds supervisors ran (see [`History::wall_time`]).
    pub wall_secs: i64,
    pub runs: usize,
    /// Runs that ended without a `run stop`.
    pub crashes: usize,
    pub agents: Vec<AgentRow>,
    /// Lines of the record (and board files) that could not be read; filled by the caller.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRow {
    pub id: u64,
    pub title: String,
    pub status: RowStatus,
    pub mark: &'static str,
    /// The board's status (`None` when the task is not on the board).
    pub board_status: Option<String>,
    /// Why: the review or block reason, the dependencies waited on, the agent at work.
    pub detail: Option<String>,
    pub agents: Vec<String>,
    /// Seconds of all its attempts.
    pub secs: i64,
    /// The commit its landing put on the target.
    pub merged: Option<String>,
    pub last_failure: Option<Failure>,
    pub attempts: Vec<AttemptRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub attempt: u32,
    pub agent: String,
    pub outcome: Outcome,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRow {
    #[serde(flatten)]
    pub attempt: Attempt,
    pub secs: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reasoned {
    pub task: u64,
    pub reason: String,
}

/// Counts over the board's tasks; every task is in exactly one of the status counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub tasks: usize,
    /// In a terminal status on the board (merged, done, no commits, merging, not on
    /// target, merge failed).
    pub done: usize,
    /// Done with the landed commit on the target, checked with git.
    pub merged: usize,
    pub nothing_to_merge: usize,
    pub merging: usize,
    pub not_on_target: Vec<u64>,
    pub merge_failed: Vec<u64>,
    pub in_review: Vec<Reasoned>,
    pub blocked: Vec<Reasoned>,
    pub in_progress: usize,
    pub waiting_on_dependency: Vec<u64>,
    pub queued: usize,
    pub never_started: usize,
    /// Tasks in the record that are no longer on the board (not in `tasks`).
    pub not_on_board: usize,
    /// Attempts in the record, and how many failed.
    pub attempts: usize,
    pub failed_attempts: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRow {
    pub agent: String,
    pub busy_secs: i64,
    pub attempts: u32,
    pub merged: u32,
}

/// The report of one phase.
pub fn build(inputs: &Inputs<'_>) -> Report {
    let history = History::fold(inputs.entries);
    let now = inputs.now;
    let mut tasks: Vec<&Task> = inputs.board.tasks().iter().collect();
    tasks.sort_by_key(|t| t.id);
    let mut rows: Vec<TaskRow> = tasks
        .iter()
        .map(|t| {
            let h = history.task(t.id);
            let status = classify(inputs, &history, t, h);
            row(&history, now, t.id, Some(t), h, status)
        })
        .collect();
    for h in history.tasks() {
        if inputs.board.task(h.task).is_none() {
            let status = (RowStatus::NotOnBoard, None);
            rows.push(row(&history, now, h.task, None, Some(h), status));
        }
    }
    let totals = totals(&rows, &history);
    let agents = history
        .agent_busy(now)
        .into_iter()
        .map(|(agent, busy)| AgentRow {
            agent,
            busy_secs: busy.busy.num_seconds(),
            attempts: busy.attempts,
            merged: busy.merged,
        })
        .collect();
    Report {
        phase: inputs.phase.to_owned(),
        target: inputs.target.to_owned(),
        tasks: rows,
        totals,
        wall_secs: history.wall_time(now).num_seconds(),
        runs: history.runs().len(),
        crashes: history.runs().iter().filter(|r| r.crashed).count(),
        agents,
        problems: Vec::new(),
    }
}

fn row(
    history: &History,
    now: At,
    id: u64,
    task: Option<&Task>,
    h: Option<&TaskHistory>,
    (status, detail): (RowStatus, Option<String>),
) -> TaskRow {
    TaskRow {
        id,
        title: task.map(|t| t.title.clone()).unwrap_or_default(),
        status,
        mark: status.mark(),
        board_status: task.map(|t| t.status.clone()),
        detail,
        agents: h
            .map(|h| h.agents().into_iter().map(str::to_owned).collect())
            .unwrap_or_default(),
        secs: h.map_or(0, |h| history.task_time(h, now).num_seconds()),
        merged: h.and_then(|h| h.merged_commit()).map(str::to_owned),
        last_failure: h.and_then(|h| h.last_failure()).map(|a| Failure {
            attempt: a.attempt,
            agent: a.agent.clone(),
            outcome: a.outcome,
            error: a.error.clone(),
        }),
        attempts: h
            .map(|h| {
                h.attempts
                    .iter()
                    .map(|a| AttemptRow {
                        attempt: a.clone(),
                        secs: history.attempt_time(a, now).num_seconds(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Where `task` stands: the board says whether it is done, in review, blocked or queued; the
/// record says how it merged and whether it was ever attempted; git says whether its landed
/// commit is on the target.
fn classify(
    inputs: &Inputs<'_>,
    history: &History,
    task: &Task,
    h: Option<&TaskHistory>,
) -> (RowStatus, Option<String>) {
    let board = inputs.board;
    let last = h.and_then(TaskHistory::last);
    if board.is_terminal(&task.status) {
        if let Some(sha) = h.and_then(TaskHistory::merged_commit) {
            if inputs.on_target.contains(sha) {
                return (RowStatus::Merged, None);
            }
            return (
                RowStatus::NotOnTarget,
                Some(format!("{} is not on `{}`", short(sha), inputs.target)),
            );
        }
        return match last.map(|a| a.outcome) {
            Some(Outcome::NothingToMerge) => (RowStatus::NothingToMerge, None),
            Some(Outcome::Done) if inputs.merging => (
                RowStatus::Merging,
                Some("waiting for the merge queue".into()),
            ),
            Some(outcome) if outcome.is_failure() => (
                RowStatus::MergeFailed,
                Some(
                    last.and_then(|a| a.error.clone())
                        .unwrap_or_else(|| outcome.label().to_owned()),
                ),
            ),
            _ => (RowStatus::Done, None),
        };
    }
    if task.status == "review" {
        let reason = task
            .block_reason
            .clone()
            .or_else(|| h.and_then(|h| h.review.as_ref()).map(|r| r.reason.clone()));
        return (RowStatus::Review, reason);
    }
    if task.blocked {
        return (RowStatus::Blocked, task.block_reason.clone());
    }
    let open = last.filter(|a| a.is_open() && history.live());
    if let Some(agent) = task.claimed_by.as_deref().filter(|a| !a.is_empty()) {
        let attempt = open.map(|a| format!(", attempt {}", a.attempt));
        return (
            RowStatus::InProgress,
            Some(format!("{agent}{}", attempt.unwrap_or_default())),
        );
    }
    if let Some(a) = open {
        return (
            RowStatus::InProgress,
            Some(format!("{}, attempt {}", a.agent, a.attempt)),
        );
    }
    let waiting: Vec<String> = task
        .depends_on
        .iter()
        .filter(|id| {
            board
                .task(**id)
                .is_some_and(|d| !board.is_terminal(&d.status))
        })
        .map(|id| format!("#{id}"))
        .collect();
    if !waiting.is_empty() {
        return (
            RowStatus::WaitingOnDependency,
            Some(format!("waits for {}", waiting.join(", "))),
        );
    }
    match h.filter(|h| !h.attempts.is_empty()) {
        Some(_) => (RowStatus::Queued, None),
        None => (RowStatus::NotStarted, None),
    }
}

fn totals(rows: &[TaskRow], history: &History) -> Totals {
    let mut t = Totals::default();
    for row in rows {
        let reasoned = || Reasoned {
            task: row.id,
            reason: row.detail.clone().unwrap_or_default(),
        };
        match row.status {
            RowStatus::Merged => t.merged += 1,
            RowStatus::Done => {}
            RowStatus::NothingToMerge => t.nothing_to_merge += 1,
            RowStatus::Merging => t.merging += 1,
            RowStatus::NotOnTarget => t.not_on_target.push(row.id),
            RowStatus::MergeFailed => t.merge_failed.push(row.id),
            RowStatus::Review => t.in_review.push(reasoned()),
            RowStatus::Blocked => t.blocked.push(reasoned()),
            RowStatus::InProgress => t.in_progress += 1,
            RowStatus::WaitingOnDependency => t.waiting_on_dependency.push(row.id),
            RowStatus::Queued => t.queued += 1,
            RowStatus::NotStarted => t.never_started += 1,
            RowStatus::NotOnBoard => {
                t.not_on_board += 1;
                continue;
            }
        }
        t.tasks += 1;
        if matches!(
            row.status,
            RowStatus::Merged
                | RowStatus::Done
                | RowStatus::NothingToMerge
                | RowStatus::Merging
                | RowStatus::NotOnTarget
                | RowStatus::MergeFailed
        ) {
            t.done += 1;
        }
    }
    for a in history.tasks().flat_map(|h| &h.attempts) {
        t.attempts += 1;
        if a.outcome.is_failure() {
            t.failed_attempts += 1;
        }
    }
    t
}

/// The first 10 characters of a commit id.
pub fn short(sha: &str) -> &str {
    sha.get(..10).unwrap_or(sha)
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;

/// Which landed commits are on the target now, asked of git.
#[derive(Debug, Clone, Default)]
pub struct OnTarget {
    pub landed: BTreeSet<String>,
    /// False when the target branch does not exist (nothing counts as merged then).
    pub target_exists: bool,
}

/// Which of the `landed` commits the branch `target` holds now.
pub fn on_target(
    root: &std::path::Path,
    target: &str,
    landed: &[&str],
) -> Result<OnTarget, crate::git::GitError> {
    let git = crate::git::Git::new(root);
    let Some(tip) = git.commit(&format!("refs/heads/{target}"))? else {
        return Ok(OnTarget::default());
    };
    let mut out = BTreeSet::new();
    for sha in landed {
        // From a file anyone can write: only a plain commit id reaches git's command line.
        let plain = (4..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit());
        if plain && git.commit(sha)?.is_some() && git.is_ancestor(sha, &tip)? {
            out.insert((*sha).to_owned());
        }
    }
    Ok(OnTarget {
        landed: out,
        target_exists: true,
    })
}
