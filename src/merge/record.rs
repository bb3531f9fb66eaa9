//! What an attempt's outcome means for its entry and for the supervisor: whose fault it was,
//! whether the task goes back to its agent, to review, or waits (with backoff) to be tried
//! again, and the words the agent and the board get.

use std::time::{Duration, SystemTime};

use super::attempt::MergeOutcome;
use super::queue::{MergeQueue, NextStep};
use super::{Fault, MergeError};

impl MergeQueue {
    /// [`MergeQueue::record_at`] now.
    pub fn record(
        &mut self,
        task: u64,
        outcome: &Result<MergeOutcome, MergeError>,
        target: &str,
        max_retries: u32,
    ) -> Result<NextStep, MergeError> {
        self.record_at(task, outcome, target, max_retries, SystemTime::now())
    }

    /// Files an attempt's outcome and says what the supervisor does next. A conflict, a red
    /// gate or a range that is gone are the task's and count toward `max_retries`; a moved
    /// target or a dirty checkout only wait; any other error is batty's own and is retried
    /// after a [`backoff`] without the task ever going back to its agent.
    pub fn record_at(
        &mut self,
        task: u64,
        outcome: &Result<MergeOutcome, MergeError>,
        target: &str,
        max_retries: u32,
        now: SystemTime,
    ) -> Result<NextStep, MergeError> {
        let failed = |q: &mut MergeQueue, reason: String, message: String, kept: Option<&str>| {
            let attempts = q.mark_failed(task, reason.clone())?;
            if retries_exhausted(attempts, max_retries) {
                let mut block_reason = format!("merge failed {attempts} times; last: {reason}");
                if let Some(kept) = kept {
                    block_reason.push_str(&format!("; its commits are kept at `{kept}`"));
                }
                Ok(NextStep::GiveUp { block_reason })
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
            Ok(outcome @ MergeOutcome::Conflict { kept, .. })
            | Ok(outcome @ MergeOutcome::GateFailed { kept, .. }) => {
                let reason = outcome.summary();
                let message = send_back_message(task, outcome, target);
                failed(self, reason, message, kept.as_deref())
            }
            Err(err) if err.fault() == Fault::Task => {
                let reason = format!("merge error: {err}");
                let message = format!(
                    "Task #{task} could not be merged into `{target}`: {err}. Check your branch, \
                     commit your work, then run `batty task done {task}` again."
                );
                failed(self, reason, message, None)
            }
            Err(err) => {
                let reason = self.mark_fault(task, err, now)?;
                Ok(NextStep::RetryLater { reason })
            }
        }
    }
}

/// How long an entry waits after its `faults`-th failure of batty's own in a row: 2 s,
/// doubling, at most 5 minutes.
pub fn backoff(faults: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(2);
    const MOST: Duration = Duration::from_secs(300);
    let doublings = faults.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(MOST)
}

/// True when a task with `attempts` failures has used up `max_retries`
/// (`merge.max_retries`): it goes to review instead of back to its agent.
pub fn retries_exhausted(attempts: u32, max_retries: u32) -> bool {
    attempts >= max_retries
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
        MergeOutcome::Conflict { files, kept } => format!(
            "Task #{task} could not be merged: your commits conflict with `{target}` in {}. \
             Run `git rebase {target}`, resolve the conflicts keeping both changes, make sure \
             the work is committed, then run `batty task done {task}` again.{}",
            list_files(files),
            kept_note(kept)
        ),
        MergeOutcome::GateFailed {
            tail,
            status,
            log,
            kept,
            ..
        } => format!(
            "Task #{task} was not merged: the merge gate failed ({status}) on your commits \
             applied to `{target}`. Last lines of {}:\n{tail}\nFix it (start with `git rebase \
             {target}`), commit, then run `batty task done {task}` again.{}",
            log.display(),
            kept_note(kept)
        ),
        other => format!("Task #{task}: {}", other.summary()),
    }
}

fn kept_note(kept: &Option<String>) -> String {
    match kept {
        Some(r) => format!(" The commits that were rejected are kept at `{r}`."),
        None => String::new(),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::EntryState;
    use std::time::UNIX_EPOCH;

    fn q3() -> MergeQueue {
        let mut q = MergeQueue::default();
        for t in 1..=3 {
            q.push(t, "a", "batty/v1/a", "b0", &format!("t{t}"));
        }
        q
    }

    #[test]
    fn record_counts_failures_until_give_up() {
        let mut q = q3();
        let conflict = Ok(MergeOutcome::Conflict {
            files: vec!["src/a.rs".into()],
            kept: Some("refs/batty/v1/rejected/1-1".into()),
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
                assert!(
                    block_reason.ends_with("its commits are kept at `refs/batty/v1/rejected/1-1`"),
                    "{block_reason}"
                );
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

    fn git_error() -> MergeError {
        let proc = crate::proc::Cmd::new("sh")
            .args([
                "-c",
                "echo 'fatal: Unable to create index.lock: File exists' >&2; exit 128",
            ])
            .run()
            .unwrap_err();
        MergeError::Git(crate::git::Git::new("/r/.batty/worktrees/v1/.merge").err(proc))
    }

    #[test]
    fn backoff_doubles_from_two_seconds_to_five_minutes() {
        let secs: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn machinery_faults_wait_out_a_backoff_and_never_go_to_the_agent() {
        let mut q = q3();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        for n in 1..=5 {
            let now = t0 + Duration::from_secs(1000 * n);
            q.mark_merging(1).unwrap();
            let step = q.record_at(1, &Err(git_error()), "main", 3, now).unwrap();
            let NextStep::RetryLater { reason } = step else {
                panic!("try {n}: {step:?}")
            };
            assert!(
                reason.starts_with("batty's own failure, not the task's"),
                "{reason}"
            );
            assert!(reason.contains("index.lock"), "{reason}");
            let e = q.get(1).unwrap();
            assert_eq!(
                (e.state, e.attempts, e.faults),
                (EntryState::Waiting, 0, n as u32)
            );
            // Held back, with the entries behind it, until the backoff has passed.
            assert!(q.next_waiting_at(now).is_none());
            let due = now + backoff(n as u32);
            assert!(q.next_waiting_at(due - Duration::from_millis(1)).is_none());
            assert_eq!(q.next_waiting_at(due).unwrap().task, 1);
        }
        // The next real outcome clears the fault.
        q.mark_merging(1).unwrap();
        let step = q
            .record_at(1, &Ok(MergeOutcome::NothingToMerge), "main", 3, t0)
            .unwrap();
        assert_eq!(step, NextStep::Landed);
        let e = q.get(1).unwrap();
        assert_eq!((e.faults, e.retry_at_ms), (0, None));
        // A range that no longer exists is the task's: it goes back.
        q.mark_merging(2).unwrap();
        let gone = Err(MergeError::NoCommit {
            sha: "abc".into(),
            branch: "batty/v1/a".into(),
        });
        let step = q.record_at(2, &gone, "main", 3, t0).unwrap();
        assert!(matches!(step, NextStep::SendBack { .. }), "{step:?}");
        // A person's retry clears a backoff too.
        q.mark_merging(3).unwrap();
        q.record_at(3, &Err(git_error()), "main", 3, t0).unwrap();
        q.retry(3).unwrap();
        assert_eq!(q.get(3).unwrap().retry_at_ms, None);
    }
}
