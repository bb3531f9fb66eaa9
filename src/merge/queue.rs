//! The merge queue of a phase: a FIFO of finished tasks and what became of their merges,
//! persisted atomically in `.batty/run/<phase>/merge.json`.
//!
//! Two processes change it: the supervisor (push, outcomes) and `batty merge --retry`. Both go
//! through [`MergeQueue::update`], which holds an advisory lock on `<file>.lock` across
//! load-change-save, so neither loses the other's change.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::MergeError;
use super::attempt::MergeOutcome;

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// In line for the merge worker.
    Waiting,
    /// The merge worker has it.
    Merging,
    /// The last attempt failed (conflict, red gate, error); the task went back to its agent
    /// or, past the retry limit, to review. A new push or `--retry` puts it back in line.
    Failed,
    /// Its commits are on the target (or it had none to land).
    Merged,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Waiting => "waiting",
            EntryState::Merging => "merging",
            EntryState::Failed => "failed",
            EntryState::Merged => "merged",
        }
    }
}

/// One finished task waiting to land, or the record of how it landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeEntry {
    pub task: u64,
    pub agent: String,
    /// The agent's branch, e.g. `batty/v1/brave-otter`.
    pub branch: String,
    /// The task's commits are `base..tip`: `base` is where the agent's branch stood when it
    /// took the task, `tip` where it stood when the task was done.
    pub base: String,
    pub tip: String,
    pub state: EntryState,
    /// Failed attempts (conflicts, red gates, errors) since the task was first queued or a
    /// person last ran `batty merge --retry`.
    pub attempts: u32,
    /// Why the last attempt did not land, or a note on how it landed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The commit that was (or is being) put on the target for this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
}

/// What the supervisor should do after [`MergeQueue::record`] filed an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// Landed (or nothing to land): note it on the board and in the agent's event log; sync the
    /// agent's worktree (`sync_agent_worktree`) before it gets its next task.
    Landed,
    /// Send the task back to its agent with this message; a new push re-queues it.
    SendBack { message: String },
    /// Retry limit reached: move the task to `review` with this `block_reason`.
    GiveUp { block_reason: String },
    /// The entry is waiting again: run the next attempt right away (target moved).
    RetryNow,
    /// The entry is waiting again: try later, e.g. on the next event or a timer of a few
    /// seconds (the main checkout is dirty). `reason` is worth showing once.
    RetryLater { reason: String },
}

/// The queue of one phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeQueue {
    pub entries: Vec<MergeEntry>,
}

/// How many landed entries are kept for `--list` and status; older ones are dropped.
const KEEP_MERGED: usize = 50;

impl MergeQueue {
    /// Reads the queue; a missing file is an empty queue.
    pub fn load(path: &Path) -> Result<MergeQueue, MergeError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(MergeQueue::default()),
            Err(source) => {
                return Err(MergeError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|e| MergeError::Corrupt {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Writes the queue atomically (temp file and rename).
    pub fn save(&self, path: &Path) -> Result<(), MergeError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| MergeError::Corrupt {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|source| MergeError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Load, change, save under an advisory lock on `<path>.lock`; returns what `change`
    /// returned. Nothing is saved when `change` fails.
    pub fn update<T>(
        path: &Path,
        change: impl FnOnce(&mut MergeQueue) -> Result<T, MergeError>,
    ) -> Result<T, MergeError> {
        let lock_path = lock_path(path);
        let io = |source| MergeError::Io {
            path: lock_path.clone(),
            source,
        };
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        lock.lock().map_err(io)?;
        let mut queue = MergeQueue::load(path)?;
        let before = queue.clone();
        let out = change(&mut queue)?;
        // An unchanged queue is not rewritten: every write wakes the supervisor's watcher.
        if queue != before {
            queue.save(path)?;
        }
        // Dropping the file releases the lock.
        drop(lock);
        Ok(out)
    }

    /// Queues a finished task at the end. A task already queued (redone after a failed
    /// attempt) is moved to the end with its new commit range; its attempt count is kept.
    pub fn push(&mut self, task: u64, agent: &str, branch: &str, base: &str, tip: &str) {
        let attempts = match self.entries.iter().position(|e| e.task == task) {
            Some(i) => self.entries.remove(i).attempts,
            None => 0,
        };
        self.entries.push(MergeEntry {
            task,
            agent: agent.to_owned(),
            branch: branch.to_owned(),
            base: base.to_owned(),
            tip: tip.to_owned(),
            state: EntryState::Waiting,
            attempts,
            reason: None,
            candidate: None,
        });
        self.trim_merged();
    }

    /// The first entry in line, unless one is being merged (one merge at a time).
    pub fn next_waiting(&self) -> Option<&MergeEntry> {
        if self.entries.iter().any(|e| e.state == EntryState::Merging) {
            return None;
        }
        self.entries.iter().find(|e| e.state == EntryState::Waiting)
    }

    pub fn get(&self, task: u64) -> Option<&MergeEntry> {
        self.entries.iter().find(|e| e.task == task)
    }

    fn entry_mut(&mut self, task: u64) -> Result<&mut MergeEntry, MergeError> {
        self.entries
            .iter_mut()
            .find(|e| e.task == task)
            .ok_or(MergeError::NoEntry { task })
    }

    /// The worker took the entry; returns a copy to hand to `attempt`.
    pub fn mark_merging(&mut self, task: u64) -> Result<MergeEntry, MergeError> {
        let e = self.entry_mut(task)?;
        e.state = EntryState::Merging;
        e.candidate = None;
        Ok(e.clone())
    }

    /// Landed as `new_tip` (`None`: nothing needed landing).
    pub fn mark_merged(
        &mut self,
        task: u64,
        new_tip: Option<&str>,
        note: Option<String>,
    ) -> Result<(), MergeError> {
        let e = self.entry_mut(task)?;
        e.state = EntryState::Merged;
        e.candidate = new_tip.map(str::to_owned);
        e.reason = note;
        self.trim_merged();
        Ok(())
    }

    /// A failed attempt: counted toward the retry limit. Returns the new count.
    pub fn mark_failed(&mut self, task: u64, reason: String) -> Result<u32, MergeError> {
        let e = self.entry_mut(task)?;
        e.state = EntryState::Failed;
        e.attempts += 1;
        e.reason = Some(reason);
        e.candidate = None;
        Ok(e.attempts)
    }

    /// Back in line at its old place, not counted as a failure (target moved, dirty checkout,
    /// or a crash mid-merge).
    pub fn mark_waiting(&mut self, task: u64, reason: Option<String>) -> Result<(), MergeError> {
        let e = self.entry_mut(task)?;
        e.state = EntryState::Waiting;
        e.reason = reason;
        e.candidate = None;
        Ok(())
    }

    /// A person's `batty merge --retry`: a failed (or waiting) entry goes back in line with a
    /// fresh retry budget. Merging or merged entries cannot be retried.
    pub fn retry(&mut self, task: u64) -> Result<(), MergeError> {
        let e = self.entry_mut(task)?;
        match e.state {
            EntryState::Failed | EntryState::Waiting => {
                e.state = EntryState::Waiting;
                e.attempts = 0;
                e.reason = None;
                Ok(())
            }
            state => Err(MergeError::NotRetryable {
                task,
                state: state.as_str(),
            }),
        }
    }

    /// All entries in queue order.
    pub fn list(&self) -> &[MergeEntry] {
        &self.entries
    }

    /// Entries for `batty status` (landed ones left out).
    pub fn to_status(&self) -> Vec<crate::status::MergeEntryStatus> {
        self.entries
            .iter()
            .filter(|e| e.state != EntryState::Merged)
            .map(|e| crate::status::MergeEntryStatus {
                task: e.task,
                agent: e.agent.clone(),
                state: e.state.as_str().to_owned(),
                reason: e.reason.clone(),
            })
            .collect()
    }

    /// Files an attempt's outcome and says what the supervisor does next. Conflicts, red gates
    /// and errors count toward `max_retries`; a moved target or a dirty checkout do not.
    pub fn record(
        &mut self,
        task: u64,
        outcome: &Result<MergeOutcome, MergeError>,
        target: &str,
        max_retries: u32,
    ) -> Result<NextStep, MergeError> {
        let failed = |q: &mut MergeQueue, reason: String, message: String| {
            let attempts = q.mark_failed(task, reason.clone())?;
            if retries_exhausted(attempts, max_retries) {
                Ok(NextStep::GiveUp {
                    block_reason: format!("merge failed {attempts} times; last: {reason}"),
                })
            } else {
                Ok(NextStep::SendBack { message })
            }
        };
        match outcome {
            Ok(MergeOutcome::Merged { new_tip, .. }) => {
                self.mark_merged(task, Some(new_tip), None)?;
                Ok(NextStep::Landed)
            }
            Ok(MergeOutcome::NothingToMerge) => {
                self.mark_merged(task, None, Some("no commits to land".into()))?;
                Ok(NextStep::Landed)
            }
            Ok(MergeOutcome::TargetMoved) => {
                self.mark_waiting(task, None)?;
                Ok(NextStep::RetryNow)
            }
            Ok(MergeOutcome::MainDirty { worktree, files }) => {
                let reason = format!(
                    "waiting: `{target}` is checked out in {} with uncommitted changes ({})",
                    worktree.display(),
                    list_files(files)
                );
                self.mark_waiting(task, Some(reason.clone()))?;
                Ok(NextStep::RetryLater { reason })
            }
            Ok(outcome @ MergeOutcome::Conflict { .. })
            | Ok(outcome @ MergeOutcome::GateFailed { .. }) => {
                let reason = outcome.summary();
                let message = send_back_message(task, outcome, target);
                failed(self, reason, message)
            }
            Err(err) => {
                let reason = format!("merge error: {err}");
                let message = format!(
                    "Task #{task} could not be merged into `{target}`: {err}. Check your branch, \
                     commit your work, then run `batty task done {task}` again."
                );
                failed(self, reason, message)
            }
        }
    }

    fn trim_merged(&mut self) {
        let merged = self
            .entries
            .iter()
            .filter(|e| e.state == EntryState::Merged)
            .count();
        let mut drop = merged.saturating_sub(KEEP_MERGED);
        self.entries.retain(|e| {
            if drop > 0 && e.state == EntryState::Merged {
                drop -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// True when a task with `attempts` failures has used up `max_retries`
/// (`merge.max_retries`): it goes to review instead of back to its agent.
pub fn retries_exhausted(attempts: u32, max_retries: u32) -> bool {
    attempts >= max_retries
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn list_files(files: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut out: Vec<String> = files.iter().take(SHOWN).map(|f| format!("`{f}`")).collect();
    if files.len() > SHOWN {
        out.push(format!("and {} more", files.len() - SHOWN));
    }
    out.join(", ")
}

/// The text the agent gets when its task comes back.
fn send_back_message(task: u64, outcome: &MergeOutcome, target: &str) -> String {
    match outcome {
        MergeOutcome::Conflict { files } => format!(
            "Task #{task} could not be merged: your commits conflict with `{target}` in {}. \
             Run `git rebase {target}`, resolve the conflicts keeping both changes, make sure \
             the work is committed, then run `batty task done {task}` again.",
            list_files(files)
        ),
        MergeOutcome::GateFailed { tail, status, log } => format!(
            "Task #{task} was not merged: the merge gate failed ({status}) on your commits \
             applied to `{target}`. Last lines of {}:\n{tail}\nFix it (start with `git rebase \
             {target}`), commit, then run `batty task done {task}` again.",
            log.display()
        ),
        other => format!("Task #{task}: {}", other.summary()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q3() -> MergeQueue {
        let mut q = MergeQueue::default();
        for t in 1..=3 {
            q.push(t, "a", "batty/v1/a", "b0", &format!("t{t}"));
        }
        q
    }

    #[test]
    fn fifo_and_one_at_a_time() {
        let mut q = q3();
        assert_eq!(q.next_waiting().unwrap().task, 1);
        q.mark_merging(1).unwrap();
        assert!(q.next_waiting().is_none(), "one merge at a time");
        q.mark_merged(1, Some("abc"), None).unwrap();
        assert_eq!(q.next_waiting().unwrap().task, 2);
    }

    #[test]
    fn repush_moves_to_end_and_keeps_attempts() {
        let mut q = q3();
        q.mark_merging(1).unwrap();
        assert_eq!(q.mark_failed(1, "conflict".into()).unwrap(), 1);
        assert_eq!(q.next_waiting().unwrap().task, 2);
        q.push(1, "a", "batty/v1/a", "b0", "t1b");
        let order: Vec<u64> = q.list().iter().map(|e| e.task).collect();
        assert_eq!(order, [2, 3, 1]);
        let e = q.get(1).unwrap();
        assert_eq!(
            (e.attempts, e.state, e.tip.as_str()),
            (1, EntryState::Waiting, "t1b")
        );
    }

    #[test]
    fn record_counts_failures_until_give_up() {
        let mut q = q3();
        let conflict = Ok(MergeOutcome::Conflict {
            files: vec!["src/a.rs".into()],
        });
        for round in 1..=3 {
            q.mark_merging(1).unwrap();
            let step = q.record(1, &conflict, "main", 3).unwrap();
            if round < 3 {
                let NextStep::SendBack { message } = step else {
                    panic!("round {round}: {step:?}")
                };
                assert!(message.contains("`src/a.rs`"), "{message}");
                assert!(message.contains("git rebase main"), "{message}");
            } else {
                let NextStep::GiveUp { block_reason } = step else {
                    panic!("{step:?}")
                };
                assert!(block_reason.contains("3 times"), "{block_reason}");
            }
        }
        // Target moving is not a failure.
        q.mark_merging(2).unwrap();
        let step = q
            .record(2, &Ok(MergeOutcome::TargetMoved), "main", 3)
            .unwrap();
        assert_eq!(step, NextStep::RetryNow);
        assert_eq!(q.get(2).unwrap().attempts, 0);
        assert_eq!(q.next_waiting().unwrap().task, 2);
    }

    #[test]
    fn retry_resets_budget_only_for_failed_or_waiting() {
        let mut q = q3();
        q.mark_merging(1).unwrap();
        q.mark_failed(1, "red".into()).unwrap();
        q.retry(1).unwrap();
        let e = q.get(1).unwrap();
        assert_eq!((e.state, e.attempts), (EntryState::Waiting, 0));
        q.mark_merging(2).unwrap();
        let err = q.retry(2).unwrap_err().to_string();
        assert_eq!(
            err,
            "task #2 is merging; only failed or waiting tasks can be retried"
        );
        assert!(matches!(q.retry(9), Err(MergeError::NoEntry { task: 9 })));
    }

    #[test]
    fn persists_through_update_and_status_hides_merged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/v1.merge.json");
        MergeQueue::update(&path, |q| {
            *q = q3();
            q.mark_merged(3, Some("abc"), None)
        })
        .unwrap();
        let q = MergeQueue::load(&path).unwrap();
        assert_eq!(q, {
            let mut want = q3();
            want.mark_merged(3, Some("abc"), None).unwrap();
            want
        });
        let status = q.to_status();
        assert_eq!(status.len(), 2);
        assert_eq!(status[0].state, "waiting");
        // A failing change saves nothing.
        let err = MergeQueue::update(&path, |q| {
            q.entries.clear();
            q.retry(42)
        });
        assert!(err.is_err());
        assert_eq!(MergeQueue::load(&path).unwrap().entries.len(), 3);
    }

    #[test]
    fn corrupt_file_names_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.json");
        std::fs::write(&path, "{nope").unwrap();
        let msg = MergeQueue::load(&path).unwrap_err().to_string();
        assert!(msg.contains("q.json"), "{msg}");
    }

    #[test]
    fn keeps_only_recent_merged() {
        let mut q = MergeQueue::default();
        for t in 0..(KEEP_MERGED as u64 + 5) {
            q.push(t, "a", "b", "x", "y");
            q.mark_merged(t, None, None).unwrap();
        }
        assert_eq!(q.entries.len(), KEEP_MERGED);
        assert_eq!(q.entries[0].task, 5);
    }
}
