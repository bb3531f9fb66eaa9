//! Handing out work: the board's best ready task for each idle agent (one sent back to it
//! first), claimed, its worktree prepared, put on record, then pasted. Each step waits for its
//! effect's answer; a step that cannot go on gives the claim back without counting it.

use crate::agent::TaskMessage;
use crate::status::AgentState;

use super::agent::{Job, Step};
use super::core::{Core, MergeState};
use super::event::{BoardWrite, Effect, Outcome, Record, Time};

impl Core {
    /// Gives every available agent its next task: one sent back to it first, then the
    /// board's best ready task.
    pub(super) fn dispatch(&mut self, now: Time) {
        if self.finished {
            return;
        }
        let names: Vec<String> = self.agents.keys().cloned().collect();
        for name in names {
            if !self.agents[&name].available(now) {
                continue;
            }
            if let Some(task) = self.agents[&name].redo.front().map(|r| r.task) {
                let done = self.board.config().done_status().to_owned();
                let t = self.board.task(task);
                let reopened = t.is_some_and(|t| {
                    t.status() == self.working_status() && t.claimed_by() == Some(name.as_str())
                });
                // Its reopening has not been seen on the board yet: wait for it.
                let reopening = self.agents[&name].redo.front().is_some_and(|r| r.reopening);
                let waiting = reopening
                    && t.is_some_and(|t| {
                        t.status() == done && t.claimed_by().is_none_or(|c| c == name)
                    });
                if waiting {
                    continue;
                }
                let redo = self.agents.get_mut(&name).and_then(|a| a.redo.pop_front());
                if let Some(redo) = redo {
                    if reopened {
                        self.start_attempt(now, &name, task, Some(redo.note), redo.resume_from);
                        continue;
                    }
                    self.log(
                        Some(&name),
                        format!("task #{task} is no longer ours; not redone"),
                    );
                }
            }
            if let Some(task) = self.candidates(now).first().copied() {
                // (Asked again per agent: the previous one just took the first.)
                let a = self.agents.get_mut(&name).expect("name taken from the map");
                a.step = Some(Step::Claiming { task, since: now });
                self.out.push(Effect::Claim { agent: name, task });
            }
        }
    }

    /// Ready tasks nobody of ours holds, whose dependencies have landed, best first.
    pub(super) fn candidates(&self, now: Time) -> Vec<u64> {
        let bound: Vec<u64> = self.agents.values().flat_map(|a| a.bound_tasks()).collect();
        self.board
            .ready(&self.settings.dispatch_statuses, &self.wall(now))
            .into_iter()
            .filter(|t| !bound.contains(&t.id()))
            .filter(|t| !self.tasks.get(&t.id()).is_some_and(|l| l.in_review))
            .filter(|t| t.depends_on().iter().all(|&d| self.landed(d)))
            .map(|t| t.id())
            .collect()
    }

    /// A dependency counts once its work is on the target (or it had none to land, or was
    /// finished before batty saw it); with the merge queue off, once it is terminal.
    pub(super) fn landed(&self, task: u64) -> bool {
        if !self.settings.merge_enabled {
            return true;
        }
        match self.tasks.get(&task).and_then(|l| l.merge.as_ref()) {
            None | Some(MergeState::Landed(_)) => true,
            Some(MergeState::Queued { .. } | MergeState::Rejected { .. }) => false,
        }
    }

    pub(super) fn working_status(&self) -> &str {
        crate::board::working_status(self.board.config(), &self.settings.dispatch_statuses)
    }

    pub(super) fn claimed_by(&self, task: u64, agent: &str) -> bool {
        self.board
            .task(task)
            .is_some_and(|t| t.claimed_by() == Some(agent) && !self.board.is_terminal(t.status()))
    }

    pub(super) fn on_claimed(
        &mut self,
        now: Time,
        agent: &str,
        task: u64,
        result: Result<crate::board::Task, String>,
    ) {
        let ours = self
            .agents
            .get(agent)
            .is_some_and(|a| matches!(a.step, Some(Step::Claiming { task: t, .. }) if t == task));
        match result {
            Ok(claimed) => {
                let path = claimed.path().to_owned();
                self.board
                    .apply_reads(vec![(path, crate::board::FileRead::Task(claimed))]);
                let usable = ours && self.agents.get(agent).is_some_and(|a| a.alive());
                if !usable {
                    // The agent died or the claim came too late: give it back.
                    if let Some(a) = self.agents.get_mut(agent)
                        && ours
                    {
                        a.step = None;
                    }
                    self.write(BoardWrite::Release {
                        task,
                        agent: agent.to_owned(),
                        reason: format!("agent `{agent}` could not take it"),
                    });
                    return;
                }
                let note = self.tasks.get_mut(&task).and_then(|l| l.note.take());
                self.start_attempt(now, agent, task, note, None);
            }
            Err(reason) => {
                if ours && let Some(a) = self.agents.get_mut(agent) {
                    a.step = None;
                }
                tracing::debug!(agent, task, %reason, "claim lost");
            }
        }
    }

    /// A new attempt at `task` by `agent`, which holds its claim: prepare the worktree first.
    pub(super) fn start_attempt(
        &mut self,
        now: Time,
        agent: &str,
        task: u64,
        note: Option<String>,
        resume_from: Option<String>,
    ) {
        let log = self.tasks.entry(task).or_default();
        log.attempts += 1;
        let attempt = log.attempts;
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        // Leftovers of this agent's previous attempt (a rejected merge, commits made after
        // it reported done) must not ride along with this one: they are parked on a ref.
        let park_ref = match (&resume_from, a.last_attempt) {
            (None, Some((t, n))) => Some(format!("{}{t}-{n}", self.settings.rejected_prefix)),
            _ => None,
        };
        a.step = Some(Step::Preparing {
            task,
            attempt,
            note,
            resume_from: resume_from.clone(),
            since: now,
        });
        self.out.push(Effect::Prepare {
            agent: agent.to_owned(),
            task,
            park_ref,
            resume_from,
        });
    }

    pub(super) fn on_prepared(
        &mut self,
        now: Time,
        agent: &str,
        task: u64,
        result: Result<super::event::Ready, String>,
    ) {
        let Some(a) = self.agents.get(agent) else {
            return;
        };
        let Some(Step::Preparing {
            task: t,
            attempt,
            note,
            resume_from,
            ..
        }) = a.step.clone()
        else {
            return;
        };
        if t != task {
            return;
        }
        let (base, note) = match result {
            Ok(ready) => {
                let note = match resume_from {
                    Some(from) => Some(resume_note(note, &from, &ready.commits)),
                    None => note,
                };
                (ready.base, note)
            }
            Err(reason) => {
                self.abandon_step(
                    now,
                    agent,
                    &format!("preparing its worktree failed: {reason}"),
                );
                return;
            }
        };
        let a = self.agents.get(agent).expect("looked up above");
        // A person's save that only dropped the claim (a stale buffer) does not stop it:
        // the claim is written back.
        let unclaimed_working = self
            .board
            .task(task)
            .is_some_and(|t| t.claimed_by().is_none() && t.status() == self.working_status());
        let ours = self.claimed_by(task, agent) || unclaimed_working;
        let (Some(pane), true) = (a.pane().map(str::to_owned), ours) else {
            self.abandon_step(now, agent, "the agent or its claim went away");
            return;
        };
        if unclaimed_working {
            self.write(BoardWrite::RestoreClaim {
                task,
                agent: agent.to_owned(),
            });
        }
        let Some(text) = self.message(agent, task, note.as_deref(), None) else {
            self.abandon_step(now, agent, "the task left the board");
            return;
        };
        let a = self.agents.get_mut(agent).expect("looked up above");
        let pid = a.pid();
        a.step = Some(Step::Delivering {
            task,
            attempt,
            base: base.clone(),
            since: now,
        });
        if let Some(log) = self.tasks.get_mut(&task) {
            log.last = Some((attempt, agent.to_owned(), base.clone()));
        }
        // On record before the paste: a supervisor that dies right after it still leaves
        // the next one knowing who holds the task.
        self.out.push(Effect::Record(Record::Delivered {
            task,
            attempt,
            agent: agent.to_owned(),
            base,
            note,
            pid,
        }));
        self.out.push(Effect::Deliver {
            agent: agent.to_owned(),
            pane,
            task,
            text,
        });
    }

    pub(super) fn on_delivered(
        &mut self,
        now: Time,
        agent: &str,
        task: u64,
        result: Result<(), String>,
    ) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let step = match a.step.clone() {
            Some(Step::Delivering {
                task: t,
                attempt,
                base,
                ..
            }) if t == task => (attempt, base),
            _ => {
                // A reminder's paste, or an answer to a step we gave up.
                if let Err(reason) = result {
                    self.log(Some(agent), format!("reminder not sent: {reason}"));
                }
                return;
            }
        };
        let (attempt, base) = step;
        a.step = None;
        if let Err(reason) = result {
            let text = format!("delivering task #{task} failed: {reason}");
            self.log(Some(agent), text);
            let job = Job::new(task, attempt, base, now);
            self.end_attempt(now, agent, &job, Outcome::Released, Some(reason));
            if let Some(log) = self.tasks.get_mut(&task)
                && log.attempts == attempt
            {
                log.attempts -= 1;
            }
            self.write(BoardWrite::Release {
                task,
                agent: agent.to_owned(),
                reason: "delivery failed".into(),
            });
            let a = self.agents.get_mut(agent).expect("looked up above");
            a.suspect_until = Some(now + 2 * self.settings.delivery_timeout);
            self.out.push(Effect::ListPanes);
            return;
        }
        a.job = Some(Job::new(task, attempt, base, now));
        a.last_attempt = Some((task, attempt));
        a.set_state(now, AgentState::Busy);
        a.report = None;
        // Read its screen after the echo settles: that is where the delivery is confirmed.
        a.last_output = Some(now);
        a.screen_stale = true;
        let title = self
            .board
            .task(task)
            .map(|t| crate::text::one_line(t.title()).into_owned())
            .unwrap_or_default();
        let what = if attempt > 1 {
            format!("delivered task #{task} (attempt {attempt}): {title}")
        } else {
            format!("delivered task #{task}: {title}")
        };
        self.log(Some(agent), what);
        self.check_own_timeout(task);
    }

    /// A task's `timeout:` that is not a duration is said once (per value): the task then
    /// has `supervisor.task_timeout`.
    fn check_own_timeout(&mut self, task: u64) {
        let Some(text) = self.board.task(task).and_then(|t| t.timeout.clone()) else {
            return;
        };
        if super::delivery::own_timeout(&text).is_some() {
            return;
        }
        let text = crate::text::one_line(&text).into_owned();
        let timeout = humantime::format_duration(self.settings.task_timeout);
        let line = format!(
            "task #{task}: `timeout: {text}` is not a duration (like 45m); supervisor.task_timeout ({timeout}) applies"
        );
        if self.problems_seen.insert(line.clone()) {
            self.log(None, line);
        }
    }

    /// The step in hand cannot go on: the claim goes back (not counted against the task).
    pub(super) fn abandon_step(&mut self, now: Time, agent: &str, why: &str) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let Some(step) = a.step.take() else {
            return;
        };
        a.suspect_until = Some(now + 2 * self.settings.delivery_timeout);
        let task = step.task();
        self.step_dropped(&step, agent, why);
        self.log(Some(agent), format!("task #{task} not delivered: {why}"));
        if self
            .board
            .task(task)
            .is_some_and(|t| t.claimed_by() == Some(agent))
        {
            self.write(BoardWrite::Release {
                task,
                agent: agent.to_owned(),
                reason: why.to_owned(),
            });
        }
    }

    /// A step that will not finish: the attempt it began never reached the agent, so it
    /// does not count as one, and a delivery already on record is closed.
    pub(super) fn step_dropped(&mut self, step: &Step, agent: &str, why: &str) {
        let task = step.task();
        if let Step::Preparing { attempt, .. } | Step::Delivering { attempt, .. } = step
            && let Some(log) = self.tasks.get_mut(&task)
            && log.attempts == *attempt
        {
            log.attempts -= 1;
        }
        if let Step::Delivering { attempt, base, .. } = step {
            self.out.push(Effect::Record(Record::Ended {
                task,
                attempt: *attempt,
                agent: agent.to_owned(),
                outcome: Outcome::Released,
                error: Some(why.to_owned()),
                base: base.clone(),
            }));
        }
    }

    /// The message for `task`, with `note` at its top (a failure to fix, a resume).
    pub(super) fn message(
        &self,
        agent: &str,
        task: u64,
        note: Option<&str>,
        reminder: Option<()>,
    ) -> Option<String> {
        let t = self.board.task(task)?;
        let adapter = self.adapter_of(agent)?;
        let mut body = t.body().trim().to_owned();
        if let Some(note) = note {
            body = if body.is_empty() {
                note.to_owned()
            } else {
                format!("{note}\n\n{body}")
            };
        }
        let msg = TaskMessage {
            id: t.id(),
            title: t.title().to_owned(),
            body,
            board_path: self.settings.board_dir.clone(),
        };
        Some(match reminder {
            Some(()) => adapter.phrase_reminder(&msg),
            None => adapter.phrase_task(&msg),
        })
    }
}

/// Commits listed in a resume note, at most.
const NOTE_COMMITS: usize = 20;

/// The note of an attempt that continues an earlier one's commits (`from..HEAD` on the
/// agent's branch): what became of the earlier one, then those commits, newest first.
pub(super) fn resume_note(note: Option<String>, from: &str, commits: &[String]) -> String {
    let mut out = note.unwrap_or_default();
    if !out.is_empty() {
        out.push('\n');
    }
    let range = format!("{}..HEAD", super::outcome::short(from));
    if commits.is_empty() {
        out.push_str(&format!(
            "It made no commits for it on this branch ({range} is empty); start the task afresh."
        ));
        return out;
    }
    out.push_str(&format!(
        "Its commits for it are on this branch ({range}); continue from there:"
    ));
    for c in commits.iter().take(NOTE_COMMITS) {
        out.push_str(&format!("\n    {}", crate::text::one_line(c)));
    }
    if commits.len() > NOTE_COMMITS {
        out.push_str(&format!(
            "\n    ... and {} older",
            commits.len() - NOTE_COMMITS
        ));
    }
    out
}
