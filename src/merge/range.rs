//! Where a task's commit range lies on its agent's branch when no supervisor saw the task
//! start or end (it was finished while none ran): the board says when the agent claimed it and
//! when it claimed its next task, and the branch's reflog says where the branch stood then. So
//! two tasks an agent finished one after the other while nobody watched are two ranges, each
//! merged and gated on its own, never one riding along with the other.

use std::path::Path;

use crate::board::{Task, Timestamp};
use crate::git::Git;

use super::MergeError;

/// When `task`'s work began on `agent`'s branch (its claim) and when it ended: the agent's
/// first claim of another task after this one was completed (commits made after reporting
/// done, before taking new work, are still this task's). A claim made while the task was
/// still open (a rejected task given back to the agent meanwhile) ends nothing. `None` where
/// the board does not say.
pub fn claim_bounds(
    tasks: &[Task],
    task: u64,
    agent: &str,
) -> (Option<Timestamp>, Option<Timestamp>) {
    let Some(this) = tasks.iter().find(|t| t.id == task) else {
        return (None, None);
    };
    let next = this.completed.and_then(|done| {
        tasks
            .iter()
            .filter(|t| t.id != task && t.claimed_by.as_deref() == Some(agent))
            .filter_map(|t| t.claimed_at)
            .filter(|at| *at >= done)
            .min()
    });
    (this.claimed_at, next)
}

/// Which side of a moment a reflog entry in that same second counts on: entries are to the
/// second, so the side that keeps more work is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Where a task's work ends: a move in the same second counts as before it.
    End,
    /// Where a task's work starts: only moves in an earlier second count as before it.
    Start,
}

/// The commit the reflog (`(unix seconds, commit)`, newest first) has the branch at, at `at`.
fn pick(reflog: &[(i64, String)], at: i64, side: Side) -> Option<&str> {
    reflog
        .iter()
        .find(|(t, _)| match side {
            Side::End => *t <= at,
            Side::Start => *t < at,
        })
        .map(|(_, sha)| sha.as_str())
}

/// Where `branch` pointed at `at`, from its reflog; `None` without one (reflogs off) or when
/// the reflog starts later.
fn branch_at(
    repo: &Path,
    branch: &str,
    at: Timestamp,
    side: Side,
) -> Result<Option<String>, MergeError> {
    let reflog = Git::new(repo).reflog(&format!("refs/heads/{branch}"))?;
    Ok(pick(&reflog, at.timestamp(), side).map(str::to_owned))
}

/// The range `base..head` of a task whose start or end no supervisor recorded. `base`: the
/// recorded start, or empty; `head`: the branch's head now. `began` and `next` are
/// [`claim_bounds`]. A start not on record is where the branch stood when the agent claimed
/// the task, else where the branch left `target`; the end is where the branch stood when the
/// agent claimed its next task, else its head now. A reflog answer outside the range is not
/// used.
pub fn unwatched_range(
    repo: &Path,
    branch: &str,
    target: &str,
    base: &str,
    head: &str,
    began: Option<Timestamp>,
    next: Option<Timestamp>,
) -> Result<(String, String), MergeError> {
    let git = Git::new(repo);
    let within = |from: &str, c: &str, to: &str| -> Result<bool, MergeError> {
        Ok(git.is_ancestor(from, c)? && git.is_ancestor(c, to)?)
    };
    let mut start = base.to_owned();
    if start.is_empty()
        && let Some(at) = began
        && let Some(c) = branch_at(repo, branch, at, Side::Start)?
        && git.is_ancestor(&c, head)?
    {
        start = c;
    }
    if start.is_empty() {
        start = git.read(["merge-base", &format!("refs/heads/{target}"), head])?;
    }
    let mut end = head.to_owned();
    if let Some(at) = next
        && let Some(c) = branch_at(repo, branch, at, Side::End)?
        && within(&start, &c, head)?
    {
        end = c;
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn task(id: u64, agent: Option<&str>, claimed: Option<&str>, done: Option<&str>) -> Task {
        let mut t = Task::new(id, format!("task {id}"), "done");
        t.claimed_by = agent.map(str::to_owned);
        t.claimed_at = claimed.map(at);
        t.completed = done.map(at);
        t
    }

    #[test]
    fn a_task_ends_where_its_agents_next_claim_after_it_was_done_begins() {
        let tasks = [
            task(
                1,
                Some("ann"),
                Some("2026-05-01T10:00:00Z"),
                Some("2026-05-01T10:02:00Z"),
            ),
            task(2, Some("bob"), Some("2026-05-01T10:02:30Z"), None),
            task(3, Some("ann"), Some("2026-05-01T10:05:00Z"), None),
            task(4, Some("ann"), Some("2026-05-01T10:03:00Z"), None),
            // Claimed for ann while task 1 was still open: a task given back to her.
            task(6, Some("ann"), Some("2026-05-01T10:01:00Z"), None),
            task(5, None, None, None),
        ];
        assert_eq!(
            claim_bounds(&tasks, 1, "ann"),
            (
                Some(at("2026-05-01T10:00:00Z")),
                Some(at("2026-05-01T10:03:00Z"))
            )
        );
        // Not done: nothing ends it yet.
        assert_eq!(
            claim_bounds(&tasks, 4, "ann"),
            (Some(at("2026-05-01T10:03:00Z")), None)
        );
        assert_eq!(claim_bounds(&tasks, 5, "ann"), (None, None));
        assert_eq!(claim_bounds(&tasks, 9, "ann"), (None, None));
        // Done, and the agent took nothing after it.
        let alone = [task(
            1,
            Some("ann"),
            Some("2026-05-01T10:00:00Z"),
            Some("2026-05-01T10:02:00Z"),
        )];
        assert_eq!(
            claim_bounds(&alone, 1, "ann"),
            (Some(at("2026-05-01T10:00:00Z")), None)
        );
    }

    #[test]
    fn the_reflog_entry_at_a_time_is_the_newest_not_after_it() {
        let reflog: Vec<(i64, String)> = [(30, "c"), (20, "b"), (20, "a2"), (10, "a")]
            .iter()
            .map(|(t, s)| (*t, (*s).to_owned()))
            .collect();
        assert_eq!(pick(&reflog, 35, Side::End), Some("c"));
        assert_eq!(pick(&reflog, 29, Side::End), Some("b"));
        assert_eq!(pick(&reflog, 20, Side::End), Some("b"));
        assert_eq!(pick(&reflog, 10, Side::End), Some("a"));
        assert_eq!(pick(&reflog, 9, Side::End), None);
        // A start keeps the moves of its own second on the task's side.
        assert_eq!(pick(&reflog, 20, Side::Start), Some("a"));
        assert_eq!(pick(&reflog, 21, Side::Start), Some("b"));
        assert_eq!(pick(&reflog, 10, Side::Start), None);
    }
}
