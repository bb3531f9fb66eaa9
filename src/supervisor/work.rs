//! A task's life in the core: chosen for an idle agent, claimed, its worktree prepared,
//! delivered and confirmed, reminded, finished and merged, or failed and counted against its
//! budget; and the board's word on all of it (a person may move any task at any time).

use crate::agent::{Composer, Screen, TaskMessage};
use crate::status::AgentState;
use crate::watch::ReportedState;

use super::agent::{Job, Life, Redo, Step};
use super::core::{Core, Failure, MergeState};
use super::event::{BoardWrite, Effect, MergeVerdict, Outcome, QueuedWork, Record, Time};

/// Extra Enter presses while the pasted text sits in the composer.
const MAX_ENTERS: u32 = 3;
/// Between two of them.
const ENTER_BACKOFF: Time = Time::from_millis(700);
/// Board writes that failed for a passing reason are tried this often, then less.
const WRITE_BACKOFF: Time = Time::from_millis(500);
const WRITE_BACKOFF_MAX: Time = Time::from_secs(30);
/// `--exit-when-done` waits this long after the last board write, so its effect is seen.
const SETTLE: Time = Time::from_secs(1);

impl Core {
    // ---- choosing and handing out work ----

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
        result: Result<String, String>,
    ) {
        let Some(a) = self.agents.get(agent) else {
            return;
        };
        let Some(Step::Preparing {
            task: t,
            attempt,
            note,
            ..
        }) = a.step.clone()
        else {
            return;
        };
        if t != task {
            return;
        }
        let base = match result {
            Ok(base) => base,
            Err(reason) => {
                self.abandon_step(
                    now,
                    agent,
                    &format!("preparing its worktree failed: {reason}"),
                );
                return;
            }
        };
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

    // ---- the agent's screen and reports, as far as the task is concerned ----

    /// Confirms a pending delivery from a screen, or presses Enter again while the text
    /// still sits in the composer.
    pub(super) fn delivery_from_screen(&mut self, now: Time, agent: &str, screen: &Screen) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let Some(pane) = a.pane().map(str::to_owned) else {
            return;
        };
        let Some(job) = a.job.as_mut() else {
            return;
        };
        if job.taken {
            // Our message still waiting in its input means it was never sent after all
            // (a supervisor restart between the paste and its Enter).
            let ours = matches!(screen, Screen::Ready { composer: Composer::Text(text) } if our_text(text, job.task));
            if !ours || job.enters >= MAX_ENTERS {
                return;
            }
            job.taken = false;
            job.pasted_at = job.pasted_at.min(now);
        }
        if super::agent::Agent::taken_by_screen(job, screen) {
            job.taken = true;
            return;
        }
        if let Screen::Ready {
            composer: Composer::Text(_),
        } = screen
        {
            job.seen_in_composer = true;
            let due = job.last_enter.unwrap_or(job.pasted_at) + ENTER_BACKOFF;
            if job.enters < MAX_ENTERS && now >= due {
                job.enters += 1;
                job.last_enter = Some(now);
                let n = job.enters;
                let task = job.task;
                // Look again once the Enter has had its effect.
                a.screen_stale = true;
                a.last_output = Some(now);
                self.out.push(Effect::Keys {
                    agent: agent.to_owned(),
                    pane,
                    keys: vec!["Enter".into()],
                });
                self.log(
                    Some(agent),
                    format!("task #{task} still in the composer; pressed Enter ({n}/{MAX_ENTERS})"),
                );
            }
        }
    }

    /// A busy report confirms a delivery.
    pub(super) fn delivery_from_report(&mut self, agent: &str, state: ReportedState) {
        if state != ReportedState::Busy {
            return;
        }
        if let Some(job) = self.agents.get_mut(agent).and_then(|a| a.job.as_mut()) {
            job.taken = true;
        }
    }

    /// When the agent's job needs the core next: delivery deadlines, reminders, hangs.
    pub(super) fn job_deadlines(&self, a: &super::agent::Agent, job: &Job) -> Vec<Time> {
        let s = &self.settings;
        let mut due = Vec::new();
        if let Some(t) = job.interrupted_at {
            due.push(t + s.interrupt_grace);
            return due;
        }
        if !job.taken {
            let last = job.last_enter.unwrap_or(job.pasted_at);
            due.push(last + s.delivery_timeout);
            if job.seen_in_composer && job.enters < MAX_ENTERS && a.capture_asked.is_none() {
                due.push(last + ENTER_BACKOFF);
            }
            return due;
        }
        due.push(job.delivered_at + self.task_timeout(job.task));
        if matches!(a.state, AgentState::Busy | AgentState::Stuck) {
            let last = a
                .last_output
                .unwrap_or(job.delivered_at)
                .max(job.delivered_at);
            due.push(last + s.stuck_after);
        }
        if let Some(t) = self.reminder_due(a, job) {
            due.push(t);
        }
        due
    }

    fn task_timeout(&self, _task: u64) -> Time {
        self.settings.task_timeout
    }

    /// An idle agent with its task unfinished is reminded after sitting idle (with an empty
    /// composer, no busy report) for the settle time, doubled for each reminder.
    fn reminder_due(&self, a: &super::agent::Agent, job: &Job) -> Option<Time> {
        // While its claim is being written back (a person's save dropped it), no paste.
        if !self.claimed_by(job.task, a.name()) {
            return None;
        }
        if a.state != AgentState::Idle
            || a.report
                .is_some_and(|(state, _)| state == ReportedState::Busy)
        {
            return None;
        }
        let idle = a.idle_since?;
        let from = job.reminded_at.map_or(idle, |r| r.max(idle));
        Some(from + self.settings.reminder_settle * 2u32.saturating_pow(job.reminders))
    }

    /// Deadlines of every job: lost deliveries, Enter retries, reminders, hangs.
    pub(super) fn job_timers(&mut self, now: Time) {
        let names: Vec<String> = self.agents.keys().cloned().collect();
        for name in names {
            let Some(a) = self.agents.get(&name) else {
                continue;
            };
            let (Some(job), Some(pane)) = (a.job.clone(), a.pane().map(str::to_owned)) else {
                continue;
            };
            let s = &self.settings;
            if let Some(t) = job.interrupted_at {
                if a.state == AgentState::Idle {
                    let reason = "it hung and was interrupted".to_owned();
                    self.fail_attempt(now, &name, Outcome::HangTimeout, reason);
                } else if now >= t + s.interrupt_grace {
                    let reason = format!(
                        "it hung and did not come back to its prompt within {} of an interrupt",
                        humantime::format_duration(s.interrupt_grace)
                    );
                    self.fail_attempt(now, &name, Outcome::HangTimeout, reason);
                    self.restart(now, &name, "it hung");
                }
                continue;
            }
            if !job.taken {
                let last = job.last_enter.unwrap_or(job.pasted_at);
                if now >= last + s.delivery_timeout {
                    let reason = format!(
                        "the agent did not take the pasted task within {}",
                        humantime::format_duration(s.delivery_timeout)
                    );
                    let until = now + 2 * s.delivery_timeout;
                    // With our text still in its input, ending the attempt restarts it.
                    self.fail_attempt(now, &name, Outcome::NotTaken, reason);
                    if let Some(a) = self.agents.get_mut(&name)
                        && a.alive()
                    {
                        a.suspect_until = Some(until);
                        a.screen_stale = true;
                        a.last_output = Some(now);
                    }
                } else if job.seen_in_composer
                    && job.enters < MAX_ENTERS
                    && now >= last + ENTER_BACKOFF
                    && a.capture_asked.is_none()
                {
                    // Look again: the Enter goes only while the text is still there.
                    self.ask_capture(now, &name);
                }
                continue;
            }
            let held = now.saturating_sub(job.delivered_at);
            let silent_since = a
                .last_output
                .unwrap_or(job.delivered_at)
                .max(job.delivered_at);
            let hung = if held >= self.task_timeout(job.task) {
                Some(format!(
                    "held for {}",
                    humantime::format_duration(self.task_timeout(job.task))
                ))
            } else if matches!(a.state, AgentState::Busy | AgentState::Stuck)
                && now >= silent_since + s.stuck_after
            {
                Some(format!(
                    "no output for {}",
                    humantime::format_duration(s.stuck_after)
                ))
            } else {
                None
            };
            if let Some(why) = hung {
                let keys = a.adapter.interrupt.clone();
                let a = self.agents.get_mut(&name).expect("looked up above");
                a.set_state(now, AgentState::Stuck);
                if let Some(j) = a.job.as_mut() {
                    j.interrupted_at = Some(now);
                }
                // Look at the screen again after the interrupt has had its effect.
                a.screen_stale = true;
                a.last_output = Some(now);
                self.out.push(Effect::Keys {
                    agent: name.clone(),
                    pane,
                    keys,
                });
                self.alert(
                    Some(&name),
                    format!("task #{}: {why}; interrupted", job.task),
                );
                continue;
            }
            if let Some(due) = self.reminder_due(a, &job)
                && now >= due
            {
                self.remind(now, &name, &job, pane);
            }
        }
    }

    fn remind(&mut self, now: Time, agent: &str, job: &Job, pane: String) {
        let max = self.settings.max_reminders;
        if job.reminders >= max {
            let reason = format!(
                "the agent went idle {} times without finishing it",
                job.reminders + 1
            );
            self.fail_attempt(now, agent, Outcome::IdleAfterReminders, reason);
            return;
        }
        let Some(text) = self.message(agent, job.task, None, Some(())) else {
            return;
        };
        let a = self.agents.get_mut(agent).expect("the caller found it");
        if let Some(j) = a.job.as_mut() {
            j.reminders += 1;
            j.reminded_at = Some(now);
            // A reminder is a paste like the first: it is confirmed the same way.
            j.pasted_at = now;
            j.taken = false;
            j.seen_in_composer = false;
            j.output_since = false;
            j.enters = 0;
            j.last_enter = None;
        }
        a.set_state(now, AgentState::Busy);
        a.last_output = Some(now);
        a.screen_stale = true;
        self.out.push(Effect::Deliver {
            agent: agent.to_owned(),
            pane,
            task: job.task,
            text,
        });
        let n = job.reminders + 1;
        self.log(
            Some(agent),
            format!("reminded about task #{} ({n}/{max})", job.task),
        );
    }

    // ---- endings ----

    /// Writes the end of the agent's attempt to the record and frees the agent.
    pub(super) fn end_attempt(
        &mut self,
        _now: Time,
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
            self.restart(_now, agent, "its input still holds an earlier task");
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
            // Its commits are on this agent's branch: the same agent continues from them.
            let note = format!(
                "{note} Your earlier commits for it are on this branch ({}..HEAD); continue from there.",
                short(&job.base)
            );
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

    fn count_failure(
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
    fn job_done(&mut self, now: Time, agent: &str, job: &Job) {
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

    /// Rejections the last supervisor filed in the queue but did not act on (it stopped in
    /// between): the task is still `done` on the board, not given to a person. Acted on now.
    pub(super) fn unsettled_rejections(&mut self, now: Time) {
        let done = self.board.config().done_status().to_owned();
        let pending: Vec<u64> = self
            .tasks
            .iter()
            .filter(|(_, l)| !l.in_review && matches!(l.merge, Some(MergeState::Rejected { .. })))
            .map(|(id, _)| *id)
            .filter(|id| self.board.task(*id).is_some_and(|t| t.status() == done))
            .collect();
        for task in pending {
            let verdict = MergeVerdict::Rejected {
                kind: Outcome::GateRed,
                reason: "its merge was rejected before the supervisor restarted (see `batty merge --list`)".into(),
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
    fn redo_after_merge(&mut self, _now: Time, task: u64, agent: &str, note: String, base: String) {
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

    // ---- the board ----

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
        self.person_moves(now, &done);
        self.done_unheld(&done);
        self.release_orphans(&working);
    }

    /// A task that reached done while no agent of ours held it (its attempt had been given
    /// up, then the agent finished it anyway): its work is queued if that attempt is still
    /// the agent's last, so nothing else of the agent's rides along; else it stays on the
    /// agent's branch for the parking of its next task.
    fn done_unheld(&mut self, done: &str) {
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
    fn release_orphans(&mut self, working: &str) {
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

    // ---- the end ----

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
        let held = self.board.tasks().iter().any(|t| {
            t.status() == working && t.claimed_by().is_some_and(|c| self.agents.contains_key(c))
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
        if !quiet {
            return;
        }
        let ready = !all_parked && !self.candidates(now).is_empty();
        if !ready {
            self.finished = true;
            self.out.push(Effect::Finish);
        }
    }

    /// The state a report gives; a report also confirms a delivery.
    pub(super) fn job_report(&mut self, agent: &str, state: ReportedState) {
        self.delivery_from_report(agent, state);
    }
}

/// Whether text waiting in an agent's input is a message of ours for `task`: its first line,
/// or the placeholder an agent shows for a pasted block.
fn our_text(text: &str, task: u64) -> bool {
    let text = text.trim_start();
    text.starts_with(&format!("Task #{task}:")) || text.starts_with("[Pasted")
}

pub(super) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}
