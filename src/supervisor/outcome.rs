//! How attempts end: done (its range queued for merging), failed (counted against the
//! task's budget, then a next attempt with the reason on top, or a person), and what the
//! merge queue says of finished work.

use super::agent::{Job, Life, Redo};
use super::core::{Core, Failure, MergeState};
use super::event::{BoardWrite, Effect, MergeVerdict, Outcome, QueuedWork, Record, Time};

impl Core {
    /// Writes the end of the agent's attempt to the record and frees the agent.
    pub(super) fn end_attempt(
        &mut self,
        now: Time,
        agent: &str,
        job: &Job,
        outcome: Outcome,
        error: Option<String>,
    ) {
        let mut stuck_text = false;
        if let Some(a) = self.agents.get_mut(agent)
            && a.job.as_ref().is_some_and(|j| j.task == job.task)
        {
            let j = a.job.take().expect("checked above");
            stuck_text = !j.taken && j.seen_in_composer && a.alive();
        }
        self.out.push(Effect::Record(Record::Ended {
            task: job.task,
            attempt: job.attempt,
            agent: agent.to_owned(),
            outcome,
            error,
            base: job.base.clone(),
        }));
        if stuck_text {
            // Our text still waits in its input: the next task would be glued onto it.
            self.restart(now, agent, "its input still holds an earlier task");
        } else {
            self.look_if_at_prompt(now, agent);
        }
    }

    /// The agent's attempt failed: counted, and the task goes to its next attempt (with the
    /// reason at the top of its message) or, past the budget, to a person.
    pub(super) fn fail_attempt(
        &mut self,
        now: Time,
        agent: &str,
        outcome: Outcome,
        reason: String,
    ) {
        let Some(job) = self.agents.get(agent).and_then(|a| a.job.clone()) else {
            return;
        };
        self.end_attempt(now, agent, &job, outcome, Some(reason.clone()));
        self.alert(
            Some(agent),
            format!(
                "task #{} attempt {} failed: {reason}",
                job.task, job.attempt
            ),
        );
        self.count_failure(job.task, job.attempt, agent, outcome, &reason);
        if self.budget_spent(job.task) {
            self.give_up(job.task, agent, job.attempt);
            return;
        }
        let note = format!(
            "Note: attempt {} of this task failed: {reason}.",
            job.attempt
        );
        let keeps_work = matches!(outcome, Outcome::AgentDied | Outcome::Restarted);
        let can_redo = self
            .agents
            .get(agent)
            .is_some_and(|a| !matches!(a.life, Life::Parked { .. }));
        if keeps_work && can_redo {
            // Its commits are on this agent's branch: the same agent continues from them
            // (the commits are listed once the worktree is prepared), told how it ended.
            let screen = self
                .agents
                .get(agent)
                .map(|a| a.last_screen.clone())
                .unwrap_or_default();
            let mut note = note;
            if !screen.is_empty() {
                note.push_str("\nIts screen ended with:");
                for line in &screen {
                    note.push_str(&format!("\n    {line}"));
                }
            }
            if let Some(a) = self.agents.get_mut(agent) {
                a.redo.push_back(Redo {
                    task: job.task,
                    note,
                    resume_from: Some(job.base.clone()).filter(|b| !b.is_empty()),
                    reopening: false,
                });
            }
            return;
        }
        if let Some(log) = self.tasks.get_mut(&job.task) {
            log.note = Some(note);
        }
        self.write(BoardWrite::Release {
            task: job.task,
            agent: agent.to_owned(),
            reason,
        });
    }

    pub(super) fn count_failure(
        &mut self,
        task: u64,
        attempt: u32,
        agent: &str,
        outcome: Outcome,
        reason: &str,
    ) {
        let log = self.tasks.entry(task).or_default();
        log.failures.push(Failure {
            attempt,
            agent: agent.to_owned(),
            outcome,
            reason: reason.to_owned(),
        });
    }

    pub(super) fn budget_spent(&self, task: u64) -> bool {
        self.tasks
            .get(&task)
            .is_some_and(|l| l.failures.len() as u32 >= self.settings.max_attempts)
    }

    /// Past its budget: the task goes to a person with every attempt's reason, and the work
    /// of its last attempt is kept on a ref the reason names.
    pub(super) fn give_up(&mut self, task: u64, agent: &str, attempt: u32) {
        let rejected = format!("{}{task}-{attempt}", self.settings.rejected_prefix);
        let log = self.tasks.entry(task).or_default();
        log.in_review = true;
        let reasons: Vec<String> = log
            .failures
            .iter()
            .map(|f| {
                format!(
                    "#{} ({}, {}): {}",
                    f.attempt,
                    f.agent,
                    f.outcome.as_str(),
                    f.reason
                )
            })
            .collect();
        let n = reasons.len();
        let reason = format!(
            "{n} {} failed: {}; its commits are kept at `{rejected}`",
            if n == 1 { "attempt" } else { "attempts" },
            reasons.join("; ")
        );
        for a in self.agents.values_mut() {
            a.redo.retain(|r| r.task != task);
        }
        self.out.push(Effect::KeepRef {
            agent: agent.to_owned(),
            name: rejected.clone(),
        });
        self.out.push(Effect::Record(Record::Review {
            task,
            reason: reason.clone(),
            rejected_ref: Some(rejected),
        }));
        self.alert(
            Some(agent),
            format!("task #{task} moved to review: {reason}"),
        );
        self.write(BoardWrite::Review { task, reason });
    }

    /// The agent reported the task done (it reached the done status).
    pub(super) fn job_done(&mut self, now: Time, agent: &str, job: &Job) {
        self.end_attempt(now, agent, job, Outcome::Done, None);
        self.log(Some(agent), format!("task #{} is done", job.task));
        self.queue_merge(agent, job.task, job.attempt, job.base.clone(), None);
    }

    pub(super) fn queue_merge(
        &mut self,
        agent: &str,
        task: u64,
        attempt: u32,
        base: String,
        head: Option<String>,
    ) {
        let log = self.tasks.entry(task).or_default();
        if !self.settings.merge_enabled {
            log.merge = Some(MergeState::Landed(None));
            return;
        }
        log.merge = Some(MergeState::Queued {
            attempt,
            agent: agent.to_owned(),
            base: base.clone(),
            head: head.clone().unwrap_or_default(),
        });
        self.out.push(Effect::QueueMerge {
            agent: agent.to_owned(),
            task,
            attempt,
            base,
            head,
        });
    }

    pub(super) fn on_queued(&mut self, _now: Time, task: u64, result: Result<QueuedWork, String>) {
        let Some(log) = self.tasks.get_mut(&task) else {
            return;
        };
        let Some(MergeState::Queued {
            attempt,
            agent,
            base,
            ..
        }) = log.merge.clone()
        else {
            return;
        };
        match result {
            Ok(work) if work.unlanded => {
                log.merge = Some(MergeState::Queued {
                    attempt,
                    agent: agent.clone(),
                    base,
                    head: work.head,
                });
                self.log(Some(&agent), format!("task #{task} queued for merge"));
            }
            Ok(_) => {
                log.merge = Some(MergeState::Landed(None));
                self.log(
                    Some(&agent),
                    format!("task #{task}: nothing of it is new on the target; nothing to merge"),
                );
            }
            Err(reason) => {
                // The task stays done; its work waits on the branch for a person.
                log.merge = Some(MergeState::Rejected {
                    attempt,
                    agent: agent.clone(),
                    base,
                    head: String::new(),
                });
                self.alert(
                    Some(&agent),
                    format!("task #{task} could not be queued for merge: {reason}"),
                );
            }
        }
    }

    pub(super) fn on_merge(&mut self, now: Time, task: u64, verdict: MergeVerdict) {
        let log = self.tasks.entry(task).or_default();
        let (attempt, agent, base, head) = match log.merge.clone() {
            Some(MergeState::Queued {
                attempt,
                agent,
                base,
                head,
            })
            | Some(MergeState::Rejected {
                attempt,
                agent,
                base,
                head,
            }) => (attempt, agent, base, head),
            // A merge the queue ran for a task we did not queue (a person's retry of one
            // from before): take the queue's word for it.
            _ => (0, String::new(), String::new(), String::new()),
        };
        let record = Record::Merged {
            task,
            attempt,
            agent: agent.clone(),
            verdict: verdict.clone(),
        };
        match verdict {
            MergeVerdict::Landed { landed } => {
                self.out.push(Effect::Record(record));
                let was_review = log.in_review;
                log.merge = Some(MergeState::Landed(landed.clone()));
                log.in_review = false;
                let who = Some(agent.as_str()).filter(|a| !a.is_empty());
                match landed {
                    Some(sha) => self.log(who, format!("task #{task} merged as {}", short(&sha))),
                    None => self.log(who, format!("task #{task}: nothing to merge")),
                }
                let done = self.board.config().done_status().to_owned();
                let on_board_done = self
                    .board
                    .task(task)
                    .is_some_and(|t| t.status() == done && !t.is_blocked());
                if was_review || !on_board_done {
                    self.write(BoardWrite::Landed { task });
                }
            }
            MergeVerdict::Rejected { kind, reason, tail } => {
                self.out.push(Effect::Record(record));
                log.merge = Some(MergeState::Rejected {
                    attempt,
                    agent: agent.clone(),
                    base: base.clone(),
                    head,
                });
                self.count_failure(task, attempt, &agent, kind, &reason);
                self.alert(
                    Some(&agent).filter(|a| !a.is_empty()).map(|s| s.as_str()),
                    format!("task #{task}: merge rejected: {reason}"),
                );
                if self.budget_spent(task) || agent.is_empty() {
                    self.give_up(task, &agent, attempt);
                    return;
                }
                let note = if tail.is_empty() {
                    format!("Note: attempt {attempt} of this task was not merged: {reason}.")
                } else {
                    format!("Note: attempt {attempt} of this task was not merged.\n{tail}")
                };
                self.redo_after_merge(now, task, &agent, note, base);
            }
            MergeVerdict::Trouble { reason } | MergeVerdict::Waiting { reason } => {
                let who = Some(agent.as_str()).filter(|a| !a.is_empty());
                self.log(who, format!("task #{task}: {reason}"));
            }
        }
    }

    /// Rejections not acted on while the task is `done` on the board, held by no agent and
    /// waiting for no redo: the last supervisor filed them in the queue and stopped (`why`
    /// says so), or the task was marked done again before its redo began. Acted on now, so
    /// its dependants never wait on work that did not land.
    pub(super) fn unsettled_rejections(&mut self, now: Time, why: &str) {
        let done = self.board.config().done_status().to_owned();
        let pending: Vec<u64> = self
            .tasks
            .iter()
            .filter(|(_, l)| !l.in_review && matches!(l.merge, Some(MergeState::Rejected { .. })))
            .map(|(id, _)| *id)
            .filter(|id| self.board.task(*id).is_some_and(|t| t.status() == done))
            .filter(|id| {
                !self.agents.values().any(|a| {
                    a.bound_tasks().any(|b| b == *id) || a.redo.iter().any(|r| r.task == *id)
                })
            })
            .collect();
        for task in pending {
            let verdict = MergeVerdict::Rejected {
                kind: Outcome::GateRed,
                reason: why.to_owned(),
                tail: String::new(),
            };
            self.on_merge(now, task, verdict);
        }
    }

    /// Tasks an agent of ours finished while no supervisor ran, that batty never delivered
    /// (a person claimed it for the agent, say): the latest such task of each agent is queued
    /// with whatever its branch has not landed (the merge finds nothing when nothing is new).
    pub(super) fn done_while_away(&mut self) {
        let done = self.board.config().done_status().to_owned();
        let names: Vec<String> = self.agents.keys().cloned().collect();
        for name in names {
            let latest = self
                .board
                .tasks()
                .iter()
                .filter(|t| t.status() == done && t.claimed_by() == Some(name.as_str()))
                .filter(|t| !self.tasks.contains_key(&t.id()))
                .max_by_key(|t| t.completed)
                .map(|t| t.id());
            if let Some(task) = latest {
                self.log(
                    Some(&name),
                    format!("task #{task} was done while no supervisor ran"),
                );
                self.queue_merge(&name, task, 0, String::new(), None);
            }
        }
    }

    /// A rejected merge goes back to the agent whose commits it holds, when it can work;
    /// else to whichever agent takes it, fresh.
    pub(super) fn redo_after_merge(
        &mut self,
        _now: Time,
        task: u64,
        agent: &str,
        note: String,
        base: String,
    ) {
        let usable = self
            .agents
            .get(agent)
            .is_some_and(|a| !matches!(a.life, Life::Parked { .. }));
        if usable {
            if let Some(a) = self.agents.get_mut(agent) {
                a.redo.push_back(Redo {
                    task,
                    note,
                    resume_from: Some(base).filter(|b| !b.is_empty()),
                    reopening: true,
                });
            }
            self.write(BoardWrite::Reopen {
                task,
                agent: agent.to_owned(),
            });
        } else {
            if let Some(log) = self.tasks.get_mut(&task) {
                log.note = Some(note);
            }
            self.write(BoardWrite::Release {
                task,
                agent: agent.to_owned(),
                reason: "its merge failed and its agent is gone".into(),
            });
        }
    }
}

pub(super) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}
