//! batty's own refs of a phase, under `refs/batty/<phase>/`: `queue/<task>` keeps a queued
//! entry's head alive, so `git gc` never drops work the queue still holds even after the
//! agent's branch moved; `rejected/<task>-<n>` keeps the n-th rejected attempt of a task, off
//! every branch and never lost. Also the range questions the supervisor asks before queueing.

use std::path::Path;

use crate::git::{Diffstat, Git};

use super::MergeError;

/// `refs/batty/<phase>/`: every ref batty keeps for the phase.
pub(crate) fn prefix(phase: &str) -> String {
    format!("refs/batty/{phase}/")
}

/// The ref that keeps a queued task's head alive.
pub fn queue_ref(phase: &str, task: u64) -> String {
    format!("refs/batty/{phase}/queue/{task}")
}

/// The ref that keeps the work of a task's rejected attempt.
pub fn rejected_ref(phase: &str, task: u64, attempt: u32) -> String {
    format!("refs/batty/{phase}/rejected/{task}-{attempt}")
}

/// Keeps `head` alive while task `task` is in the queue (call it when queueing).
pub fn hold(repo: &Path, phase: &str, task: u64, head: &str) -> Result<(), MergeError> {
    let message = format!("batty: task #{task} queued");
    Git::new(repo).set_ref(&queue_ref(phase, task), head, &message)?;
    Ok(())
}

/// Lets go of a queued task's head: it landed, or was moved to a rejected ref.
pub fn release(repo: &Path, phase: &str, task: u64) -> Result<(), MergeError> {
    Git::new(repo).delete_ref(&queue_ref(phase, task))?;
    Ok(())
}

/// Commits of the range `base..head` whose change is not on `target` yet (by patch id),
/// oldest first: empty means the task's work is already there, so it is neither queued nor
/// reopened.
pub fn unlanded(
    repo: &Path,
    target: &str,
    base: &str,
    head: &str,
) -> Result<Vec<String>, MergeError> {
    Ok(Git::new(repo).unlanded(&format!("refs/heads/{target}"), base, head)?)
}

/// What the range `base..head` changes, for the attempt record.
pub fn diffstat(repo: &Path, base: &str, head: &str) -> Result<Diffstat, MergeError> {
    Ok(Git::new(repo).diffstat(base, head)?)
}

/// What the task's own commits in `base..head` change. `base` was the target's tip when the
/// attempt started, so this is what `head` changes since it left the target; when the agent
/// brought the target's newer commits in (a rebase or merge), other tasks' work there is not
/// counted as its own. One git call (`diff target...head`), as for [`diffstat`].
pub fn task_diffstat(
    repo: &Path,
    target: &str,
    base: &str,
    head: &str,
) -> Result<Diffstat, MergeError> {
    let git = Git::new(repo);
    match git.diffstat_since_fork(&format!("refs/heads/{target}"), head) {
        Ok(stat) => Ok(stat),
        // No fork point (unrelated histories, a target gone): the range as recorded.
        Err(_) => Ok(git.diffstat(base, head)?),
    }
}

/// Which rejected ref keeps `head` for `task`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// One already points at it.
    Reuse(String),
    /// The next number for the task.
    New(u32),
}

/// `existing`: `(refname, commit)` of the phase's rejected refs.
fn slot(existing: &[(String, String)], phase: &str, task: u64, head: &str) -> Slot {
    let mine = format!("refs/batty/{phase}/rejected/{task}-");
    let numbered: Vec<(u32, &String, &String)> = existing
        .iter()
        .filter_map(|(name, sha)| {
            let n = name.strip_prefix(&mine)?.parse::<u32>().ok()?;
            Some((n, name, sha))
        })
        .collect();
    if let Some((_, name, _)) = numbered.iter().find(|(_, _, sha)| sha.as_str() == head) {
        return Slot::Reuse((*name).clone());
    }
    Slot::New(numbered.iter().map(|(n, _, _)| *n).max().unwrap_or(0) + 1)
}

/// Moves task `task`'s rejected work `head` from its queue ref to a rejected ref of its own;
/// returns that ref.
pub(crate) fn park_rejected(
    repo: &Git,
    phase: &str,
    task: u64,
    head: &str,
) -> Result<String, MergeError> {
    let existing = repo.refs_under(&format!("{}rejected/", prefix(phase)))?;
    let name = match slot(&existing, phase, task, head) {
        Slot::Reuse(name) => name,
        Slot::New(mut n) => loop {
            let name = rejected_ref(phase, task, n);
            let message = format!("batty: task #{task} rejected");
            if repo.create_ref(&name, head, &message)? {
                break name;
            }
            // Made meanwhile by someone else: never overwrite a rejected ref.
            n += 1;
        },
    };
    repo.delete_ref(&queue_ref(phase, task))?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_refs_are_numbered_per_task_and_reused_for_the_same_head() {
        let refs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
                .collect()
        };
        assert_eq!(slot(&[], "v1", 7, "aaa"), Slot::New(1));
        let existing = refs(&[
            ("refs/batty/v1/rejected/7-1", "aaa"),
            ("refs/batty/v1/rejected/7-3", "bbb"),
            ("refs/batty/v1/rejected/17-9", "ccc"),
            ("refs/batty/v1/rejected/bold-ox-1234567", "ddd"),
        ]);
        assert_eq!(slot(&existing, "v1", 7, "new"), Slot::New(4));
        assert_eq!(
            slot(&existing, "v1", 7, "bbb"),
            Slot::Reuse("refs/batty/v1/rejected/7-3".into())
        );
        assert_eq!(slot(&existing, "v1", 1, "ccc"), Slot::New(1));
        assert_eq!(slot(&existing, "v2", 7, "aaa"), Slot::New(1));
        assert_eq!(queue_ref("v1", 7), "refs/batty/v1/queue/7");
        assert_eq!(rejected_ref("v1", 7, 2), "refs/batty/v1/rejected/7-2");
    }
}
