//! The merge queue of a phase: a FIFO of finished tasks and what became of their merges,
//! persisted atomically in `.batty/run/<phase>/merge.json`.
//!
//! Two processes change it: the supervisor (push, outcomes) and `batty merge --retry`. Both go
//! through [`MergeQueue::update`], which holds an advisory lock on `<file>.lock` across
//! load-change-save, so neither loses the other's change. A merge attempt holds
//! `<file>.attempt.lock` while it runs, so a reader can tell an entry still `merging` from one
//! whose attempt ended without its outcome being recorded (a write that failed, a crash).
//!
//! Every landing is also kept, in a list never cut short, so counts of merged tasks are true.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::MergeError;
use super::lock::attempt_running;
use super::record::backoff;

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// In line for the merge worker.
    Waiting,
    /// The merge worker has it.
    Merging,
    /// The last attempt failed (a conflict, a red gate: the task's fault); the task went back
    /// to its agent or, past the retry limit, to review. A new push or `--retry` puts it back
    /// in line.
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
    /// Failed attempts (conflicts, red gates) since the task was first queued or a person
    /// last ran `batty merge --retry`.
    pub attempts: u32,
    /// Attempts in a row that batty's own machinery failed (disk, git, a lock): not the
    /// task's fault, so not counted in `attempts`; they set how long to wait before the next.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub faults: u32,
    /// When a waiting entry may be tried again (milliseconds since the Unix epoch), after a
    /// failure of batty's own; `reason` says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<u64>,
    /// It was `merging` when its attempt ended without an outcome on record (a failed write,
    /// a crash): recovery decides whether it landed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
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
    /// The entry is waiting again: try later, on a timer of a few seconds (the main checkout
    /// is dirty, or batty's own machinery failed and the entry waits out its backoff).
    /// `reason` is worth showing once.
    RetryLater { reason: String },
}

/// The record of one landing, kept for as long as the queue file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Landed {
    pub task: u64,
    /// The head of the range that landed.
    pub head: String,
    /// The target's new tip, `None` when nothing needed landing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// The queue of one phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeQueue {
    pub entries: Vec<MergeEntry>,
    /// Every landing, oldest first; unlike `entries`, never cut short.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub landed: Vec<Landed>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How many landed entries are kept for `--list` and status; older ones are dropped.
const KEEP_MERGED: usize = 50;

impl MergeQueue {
    /// Reads the queue; a missing file is an empty queue. An entry left `merging` by an
    /// attempt that has ended comes back as waiting (and `interrupted`).
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
        let mut queue: MergeQueue =
            serde_json::from_str(&text).map_err(|e| MergeError::Corrupt {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        if queue.entries.iter().any(|e| e.state == EntryState::Merging) {
            queue.settle(attempt_running(path));
        }
        queue.backfill_landed();
        Ok(queue)
    }

    /// With no attempt running, an entry still `merging` lost its outcome: it goes back in
    /// line (at its place) and recovery decides whether it landed.
    fn settle(&mut self, attempt_running: bool) {
        if attempt_running {
            return;
        }
        for e in &mut self.entries {
            if e.state == EntryState::Merging {
                e.state = EntryState::Waiting;
                e.interrupted = true;
                e.reason = Some("its last attempt ended before its outcome was recorded".into());
            }
        }
    }

    /// Queue files from before the landing record: their merged entries count too.
    fn backfill_landed(&mut self) {
        for e in &self.entries {
            if e.state == EntryState::Merged && !self.landed.iter().any(|l| l.task == e.task) {
                self.landed.push(Landed {
                    task: e.task,
                    head: e.tip.clone(),
                    commit: e.candidate.clone(),
                });
            }
        }
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
            faults: 0,
            retry_at_ms: None,
            interrupted: false,
            reason: None,
            candidate: None,
        });
        self.trim_merged();
    }

    /// [`MergeQueue::next_waiting_at`] now.
    pub fn next_waiting(&self) -> Option<&MergeEntry> {
        self.next_waiting_at(SystemTime::now())
    }

    /// The first entry in line, unless one is being merged (one merge at a time) or the first
    /// waits out a backoff after a failure of batty's own (which would most likely fail the
    /// entries behind it as well, and order matters: later work may build on it).
    pub fn next_waiting_at(&self, now: SystemTime) -> Option<&MergeEntry> {
        if self.entries.iter().any(|e| e.state == EntryState::Merging) {
            return None;
        }
        let first = self
            .entries
            .iter()
            .find(|e| e.state == EntryState::Waiting)?;
        match first.retry_at_ms {
            Some(at) if at > unix_ms(now) => None,
            _ => Some(first),
        }
    }

    /// Distinct tasks that landed, from the record that is never cut short.
    pub fn merged_count(&self) -> usize {
        let mut tasks: Vec<u64> = self.landed.iter().map(|l| l.task).collect();
        tasks.sort_unstable();
        tasks.dedup();
        tasks.len()
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
        e.interrupted = false;
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
        e.clear_fault();
        let landed = Landed {
            task,
            head: e.tip.clone(),
            commit: e.candidate.clone(),
        };
        self.landed.push(landed);
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
        e.clear_fault();
        Ok(e.attempts)
    }

    /// Back in line at its old place, not counted as a failure (target moved, dirty checkout,
    /// or a crash mid-merge).
    pub fn mark_waiting(&mut self, task: u64, reason: Option<String>) -> Result<(), MergeError> {
        let e = self.entry_mut(task)?;
        e.state = EntryState::Waiting;
        e.reason = reason;
        e.candidate = None;
        e.clear_fault();
        Ok(())
    }

    /// batty's own machinery failed the attempt: back in line at its old place, not counted
    /// against the task, tried again after [`backoff`]. Returns the reason shown.
    pub fn mark_fault(
        &mut self,
        task: u64,
        err: &MergeError,
        now: SystemTime,
    ) -> Result<String, MergeError> {
        let e = self.entry_mut(task)?;
        e.state = EntryState::Waiting;
        e.candidate = None;
        e.interrupted = false;
        e.faults += 1;
        let at = now + backoff(e.faults);
        e.retry_at_ms = Some(unix_ms(at));
        let clock = chrono::DateTime::<chrono::Local>::from(at).format("%H:%M:%S");
        let reason = format!(
            "batty's own failure, not the task's (try {}; next at {clock}): {err}",
            e.faults
        );
        e.reason = Some(reason.clone());
        Ok(reason)
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
                e.clear_fault();
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

impl MergeEntry {
    fn clear_fault(&mut self) {
        self.faults = 0;
        self.retry_at_ms = None;
        self.interrupted = false;
    }
}

pub(super) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
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

    #[test]
    fn an_attempt_that_ended_unrecorded_is_not_left_merging() {
        let mut q = q3();
        q.mark_merging(2).unwrap();
        let mut running = q.clone();
        running.settle(true);
        assert_eq!(running.get(2).unwrap().state, EntryState::Merging);
        q.settle(false);
        let e = q.get(2).unwrap();
        assert_eq!((e.state, e.interrupted), (EntryState::Waiting, true));
        assert_eq!(q.next_waiting().unwrap().task, 1, "it keeps its place");
        q.mark_merging(2).unwrap();
        assert!(!q.get(2).unwrap().interrupted);
    }

    #[test]
    fn merged_count_comes_from_the_record_that_is_never_cut_short() {
        let mut q = MergeQueue::default();
        let n = KEEP_MERGED as u64 + 20;
        for t in 0..n {
            q.push(t, "a", "b", "x", &format!("tip{t}"));
            q.mark_merged(t, Some("new"), None).unwrap();
        }
        // Landing a task twice (queued again by mistake) counts it once.
        q.push(3, "a", "b", "x", "tip3b");
        q.mark_merged(3, None, Some("no commits to land".into()))
            .unwrap();
        assert_eq!(q.entries.len(), KEEP_MERGED);
        assert_eq!(q.merged_count(), n as usize);
        assert_eq!(
            q.landed[0],
            Landed {
                task: 0,
                head: "tip0".into(),
                commit: Some("new".into())
            }
        );
        // A queue file from before the record still counts its merged entries.
        let old: MergeQueue = serde_json::from_str(
            r#"{"entries":[{"task":9,"agent":"a","branch":"b","base":"x","tip":"y","state":"merged","attempts":0}]}"#,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("merge.json");
        old.save(&path).unwrap();
        assert_eq!(MergeQueue::load(&path).unwrap().merged_count(), 1);
    }
}
