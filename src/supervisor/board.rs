//! The board's word: a person may move any task at any time. Jobs are settled with what the
//! board says, claims nobody holds are given back, board writes that failed are tried again,
//! and `--exit-when-done` sees when nothing is left.

use crate::status::AgentState;

use super::agent::Life;
use super::core::{Core, MergeState};
use super::event::{BoardWrite, Effect, Outcome, Record, Time};

/// Board writes that failed for a passing reason are tried this often, then less.
const WRITE_BACKOFF: Time = Time::from_millis(500);
const WRITE_BACKOFF_MAX: Time = Time::from_secs(30);
/// `--exit-when-done` waits this long after the last board write, so its effect is seen.
pub(super) const SETTLE: Time = Time::from_secs(1);

impl Core {
    /// The board changed: settle every agent's task with it (finished, moved, released,
    /// edited without its claim), and look for claims nobody holds.
    pub(super) fn board_changed(&mut self, now: Time) {
        self.show_problems();
        let done = self.board.config().done_status().to_owned();
        let working =
            crate::board::working_status(self.board.config(), &self.settings.dispatch_statuses)
                .to_owned();
        let names: Vec<String> = self.agents.keys().cloned().collect();
        for name in &names {
            let Some(job) = self.agents.get(name).and_then(|a| a.job.clone()) else {
                continue;
            };
            let Some(t) = self.board.task(job.task) else {
                if self.board.unreadable(job.task) {
                    // Saved with a mistake (its problem is shown): the agent keeps its task
                    // until the file says otherwise.
                    continue;
                }
                self.end_attempt(
                    now,
                    name,
                    &job,
                    Outcome::Released,
                    Some("the task left the board".into()),
                );
                self.log(
                    Some(name),
                    format!("task #{} left the board; agent freed", job.task),
                );
                continue;
            };
            let status = t.status().to_owned();
            let claimed = t.claimed_by().map(str::to_owned);
            if status == done {
                self.job_done(now, name, &job);
            } else if self.board.is_terminal(&status) {
                self.end_attempt(
                    now,
                    name,
                    &job,
                    Outcome::Released,
                    Some(format!("moved to {status}")),
                );
                self.log(
                    Some(name),
                    format!("task #{} is {status}; agent freed", job.task),
                );
            } else if status == "review" || t.is_blocked() {
                self.end_attempt(now, name, &job, Outcome::MovedToReview, None);
                self.log(
                    Some(name),
                    format!("task #{} was given to a person; agent freed", job.task),
                );
                if claimed.as_deref() == Some(name) {
                    self.write(BoardWrite::ClearClaim {
                        task: job.task,
                        agent: name.clone(),
                    });
                }
            } else if let (None, Some(first)) = (&claimed, self.board.stale_save(job.task)) {
                // Saved from a copy read before the claim (their other changes stay): not a
                // person taking the task back.
                if first {
                    self.log(
                        Some(name),
                        format!(
                            "task #{} was saved from a copy older than its claim; claim written back",
                            job.task
                        ),
                    );
                    self.write(BoardWrite::RestoreClaim {
                        task: job.task,
                        agent: name.clone(),
                    });
                }
            } else if self.settings.dispatch_statuses.contains(&status) {
                // A person moved it back to the queue: the claim goes, their status stays.
                self.end_attempt(
                    now,
                    name,
                    &job,
                    Outcome::Released,
                    Some(format!("moved back to {status}")),
                );
                self.log(
                    Some(name),
                    format!("task #{} moved back to {status}; claim released", job.task),
                );
                if claimed.is_some() {
                    self.write(BoardWrite::ClearClaim {
                        task: job.task,
                        agent: name.clone(),
                    });
                }
            } else if claimed.is_none() && status == working {
                // Saved from a buffer opened before the claim: the claim is written back on
                // top of the person's other changes. Only an explicit act releases a task.
                self.log(
                    Some(name),
                    format!(
                        "task #{} was saved without its claim; claim written back",
                        job.task
                    ),
                );
                self.write(BoardWrite::RestoreClaim {
                    task: job.task,
                    agent: name.clone(),
                });
            } else if claimed.as_deref().is_some_and(|c| c != name) {
                let other = claimed.unwrap_or_default();
                self.end_attempt(
                    now,
                    name,
                    &job,
                    Outcome::Released,
                    Some(format!("claimed by {other}")),
                );
                self.log(
                    Some(name),
                    format!("task #{} is claimed by {other} now; agent freed", job.task),
                );
            } else if status != working {
                self.end_attempt(
                    now,
                    name,
                    &job,
                    Outcome::Released,
                    Some(format!("moved to {status}")),
                );
                self.log(
                    Some(name),
                    format!("task #{} moved to {status}; agent freed", job.task),
                );
            }
        }
        // Tasks sent back to an agent that a person has since taken away: moved to another
        // status, or claimed by someone else. (Still `done` with the agent's claim: the
        // reopening write has not been seen yet.)
        for name in &names {
            // A reopening seen on the board is done waiting for: from now on the task going
            // back to done (the agent reporting it again, say) is a change like any other.
            let board = &self.board;
            if let Some(a) = self.agents.get_mut(name) {
                for r in a.redo.iter_mut().filter(|r| r.reopening) {
                    if board.task(r.task).is_some_and(|t| {
                        t.status() == working && t.claimed_by() == Some(name.as_str())
                    }) {
                        r.reopening = false;
                    }
                }
            }
            let tasks: Vec<(u64, bool)> = self.agents[name]
                .redo
                .iter()
                .map(|r| (r.task, r.reopening))
                .collect();
            for (task, reopening) in tasks {
                let keep = self.board.task(task).is_some_and(|t| {
                    // Finished after all (it died right after): done, not redone.
                    let status_ok = t.status() == working || (reopening && t.status() == done);
                    let claim_ok = t.claimed_by().is_none_or(|c| c == name);
                    status_ok && claim_ok
                });
                if !keep && let Some(a) = self.agents.get_mut(name) {
                    a.redo.retain(|r| r.task != task);
                    self.log(
                        Some(name),
                        format!("task #{task} was taken away; not redone"),
                    );
                }
            }
        }
        self.unsettled_rejections(
            now,
            "it was marked done again after its merge was rejected, before it was redone",
        );
        self.person_moves(now, &done);
        self.done_unheld(&done);
        self.release_orphans(&working);
    }

    /// A task that reached done while no agent of ours held it (its attempt had been given
    /// up, then the agent finished it anyway): its work is queued if that attempt is still
    /// the agent's last, so nothing else of the agent's rides along; else it stays on the
    /// agent's branch for the parking of its next task.
    pub(super) fn done_unheld(&mut self, done: &str) {
        let waiting: Vec<(u64, u32, String, String)> = self
            .tasks
            .iter()
            .filter(|(_, l)| !l.in_review)
            .filter_map(|(id, l)| {
                let (attempt, agent, base) = l.last.clone()?;
                // Nothing queued yet for this attempt (a rejection was of an earlier one).
                let fresh = match &l.merge {
                    None => true,
                    Some(MergeState::Rejected { attempt: a, .. }) => *a < attempt,
                    Some(_) => false,
                };
                fresh.then_some((*id, attempt, agent, base))
            })
            .filter(|(id, ..)| self.board.task(*id).is_some_and(|t| t.status() == done))
            .filter(|(id, ..)| {
                !self
                    .agents
                    .values()
                    .any(|a| a.bound_tasks().any(|b| b == *id))
            })
            .collect();
        for (task, attempt, agent, base) in waiting {
            let latest = self
                .agents
                .get(&agent)
                .is_some_and(|a| a.last_attempt == Some((task, attempt)));
            if latest {
                self.log(
                    Some(&agent),
                    format!(
                        "task #{task} was finished after its attempt was given up; queued for merge"
                    ),
                );
                self.queue_merge(&agent, task, attempt, base, None);
            } else if let Some(log) = self.tasks.get_mut(&task) {
                // Not merged: nothing of it is known to be only its own.
                log.merge = Some(MergeState::Landed(None));
                self.log(Some(&agent), format!("task #{task} was finished after its attempt was given up; its commits stay on the agent's branch and are parked before its next task"));
            }
        }
    }

    /// A person acting on tasks in review: moved back to done, its last range is merged again.
    pub(super) fn person_moves(&mut self, _now: Time, done: &str) {
        let review: Vec<u64> = self
            .tasks
            .iter()
            .filter(|(_, l)| l.in_review)
            .map(|(id, _)| *id)
            .collect();
        for id in review {
            let Some(t) = self.board.task(id) else {
                continue;
            };
            if t.status() == "review" {
                continue;
            }
            let to_done = t.status() == done;
            let status = t.status().to_owned();
            self.out
                .push(Effect::Record(Record::Reopened { task: id, status }));
            let log = self.tasks.get_mut(&id).expect("listed above");
            log.in_review = false;
            log.failures.clear();
            if to_done
                && let Some(MergeState::Rejected {
                    attempt,
                    agent,
                    base,
                    head,
                }) = log.merge.clone()
                && !head.is_empty()
            {
                self.queue_merge(&agent, id, attempt, base, Some(head));
            }
        }
    }

    /// Claims in the working status by one of our agents that does not hold the task (its
    /// supervisor died between a claim and a delivery): given back.
    pub(super) fn release_orphans(&mut self, working: &str) {
        let queued = &self.settings.dispatch_statuses;
        let orphans: Vec<(u64, String, bool)> = self
            .board
            .tasks()
            .iter()
            .filter(|t| t.status() == working || queued.iter().any(|s| s == t.status()))
            .filter_map(|t| {
                let by = t.claimed_by()?;
                let a = self.agents.get(by)?;
                let known = !matches!(a.life, Life::Unknown);
                let bound = a.bound_tasks().any(|b| b == t.id());
                let open = self.open.iter().any(|o| o.task == t.id());
                let pending = self
                    .out
                    .iter()
                    .any(|e| matches!(e, Effect::Write(w) if w.task() == t.id()))
                    || self
                        .written
                        .get(&t.id())
                        .is_some_and(|at| self.now < *at + SETTLE);
                (known && !bound && !open && !pending)
                    .then(|| (t.id(), by.to_owned(), t.status() == working))
            })
            .collect();
        for (task, agent, working) in orphans {
            self.log(
                Some(&agent),
                format!("task #{task} is claimed by {agent}, which does not hold it; released"),
            );
            // In the queue already (a person moved it back): only the claim goes.
            let write = if working {
                BoardWrite::Release {
                    task,
                    agent: agent.clone(),
                    reason: "claimed by an agent that does not hold it".into(),
                }
            } else {
                BoardWrite::ClearClaim { task, agent }
            };
            self.write(write);
        }
    }

    pub(super) fn write(&mut self, write: BoardWrite) {
        self.last_write = Some(self.now);
        self.written.insert(write.task(), self.now);
        // One write per task in flight is enough: a newer one replaces an older retry.
        self.retry_writes.retain(|(_, w, _)| w != &write);
        self.out.push(Effect::Write(write));
    }

    pub(super) fn on_write_failed(&mut self, now: Time, write: BoardWrite, reason: String) {
        // How often this write failed lately sets the wait before the next try.
        self.write_failures
            .retain(|(_, _, at)| now.saturating_sub(*at) < 2 * WRITE_BACKOFF_MAX);
        let tries = match self.write_failures.iter_mut().find(|(w, _, _)| *w == write) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 = now;
                entry.1
            }
            None => {
                self.write_failures.push((write.clone(), 1, now));
                1
            }
        };
        let wait = (WRITE_BACKOFF * 2u32.saturating_pow(tries - 1)).min(WRITE_BACKOFF_MAX);
        if tries == 1 {
            self.log(
                None,
                format!(
                    "writing task #{} failed ({reason}); trying again",
                    write.task()
                ),
            );
        }
        self.retry_writes.retain(|(_, w, _)| w != &write);
        self.retry_writes.push((now + wait, write, tries));
    }

    pub(super) fn retry_due_writes(&mut self, now: Time) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retry_writes)
            .into_iter()
            .partition(|(t, _, _)| *t <= now);
        self.retry_writes = later;
        for (_, write, _) in due {
            self.out.push(Effect::Write(write));
        }
    }

    /// With `--exit-when-done`: nothing is left for the agents. Every task is terminal or
    /// waits on a person, nothing is held, in hand or queued, and no agent works.
    pub(super) fn check_finished(&mut self, now: Time) {
        if !self.settings.exit_when_done || self.finished || self.agents.is_empty() {
            return;
        }
        let known = self
            .agents
            .values()
            .all(|a| !matches!(a.life, Life::Unknown | Life::Respawning { .. }));
        let idle = self.agents.values().all(|a| {
            a.job.is_none()
                && a.step.is_none()
                && a.redo.is_empty()
                && match a.life {
                    Life::Alive { .. } => a.state == AgentState::Idle,
                    _ => true,
                }
        });
        let working =
            crate::board::working_status(self.board.config(), &self.settings.dispatch_statuses);
        // A queued task still carrying our agent's claim: the write that clears it (a person
        // moved it back) has not been seen yet, however long the file's event takes.
        let held = self.board.tasks().iter().any(|t| {
            (t.status() == working
                || self
                    .settings
                    .dispatch_statuses
                    .iter()
                    .any(|s| s == t.status()))
                && t.claimed_by().is_some_and(|c| self.agents.contains_key(c))
        });
        let merging = self
            .tasks
            .values()
            .any(|l| matches!(l.merge, Some(MergeState::Queued { .. })));
        // Whatever was just changed on the board or in the queue must be seen first.
        let settled = self.last_write.is_none_or(|t| now >= t + SETTLE);
        let writes = !settled
            || !self.retry_writes.is_empty()
            || self.out.iter().any(|e| {
                matches!(
                    e,
                    Effect::Write(_) | Effect::QueueMerge { .. } | Effect::Claim { .. }
                )
            });
        // With every agent parked, what is left waits on a person too.
        let all_parked = self
            .agents
            .values()
            .all(|a| matches!(a.life, Life::Parked { .. }));
        let quiet = known && idle && !held && !merging && !writes && self.open.is_empty();
        let ready = quiet && !all_parked && !self.candidates(now).is_empty();
        if !quiet || ready {
            self.final_read = None;
            return;
        }
        match self.final_read {
            // The whole board once more first: a file whose event is late would be missed.
            // Asked again when no answer came (the board could not be read).
            None => {
                self.final_read = Some((false, now));
                self.out.push(Effect::ReadBoard);
            }
            Some((false, asked)) if now >= asked + SETTLE => {
                self.final_read = Some((false, now));
                self.out.push(Effect::ReadBoard);
            }
            Some((false, _)) => {}
            Some((true, _)) => {
                self.finished = true;
                self.out.push(Effect::Finish);
            }
        }
    }
}
