//! The record folded into history: every attempt at every task in order, how each ended, the
//! supervisor's runs, and the times derived from them. Pure: entries in, values out; entries
//! can be applied one at a time as they are written.
//!
//! The rules for a supervisor that went away (`docs/record.md`, "Restarts"):
//! - A `run stop` or `run start` *interrupts* every open attempt (delivered, not ended): the
//!   supervisor that delivered it is gone. It was last heard from at its `run stop`, or, after a
//!   crash (a `run start` with no `run stop` before it), at its last line in the record.
//! - An interrupted attempt that gets an `ended` or `merge` for its task and number, or a
//!   `delivered` with its number, was kept by the new supervisor: it goes on as if nothing
//!   happened.
//! - An interrupted attempt whose task gets a `delivered` with another number ends as
//!   `restarted`, at the moment its supervisor was last heard from.
//! - Otherwise it is still open. While a supervisor runs, it is timed up to now; when none
//!   runs, up to the moment it was interrupted.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use serde::Serialize;

use super::entry::{
    At, Delivered, EndOutcome, Ended, Entry, Event, FileChange, Merge, MergeResult, Review,
    RunAction,
};

/// How an attempt ended, with the merge folded in: an attempt that ended `done` and then has
/// a `merge` ends as the merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not ended yet.
    InProgress,
    /// Done by the agent; no merge recorded (yet).
    Done,
    Merged,
    /// Done, and the merge found no commits to land.
    NothingToMerge,
    GateRed,
    Conflict,
    MergeError,
    AgentDied,
    Restarted,
    HangTimeout,
    NotTaken,
    IdleAfterReminders,
    Released,
    MovedToReview,
    /// A new attempt at the task started while this one was open and its supervisor still
    /// ran: how it ended was never written.
    Unrecorded,
    /// An outcome written by a newer batty.
    Other,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::InProgress => "in_progress",
            Outcome::Done => "done",
            Outcome::Merged => "merged",
            Outcome::NothingToMerge => "nothing_to_merge",
            Outcome::GateRed => "gate_red",
            Outcome::Conflict => "conflict",
            Outcome::MergeError => "merge_error",
            Outcome::AgentDied => "agent_died",
            Outcome::Restarted => "restarted",
            Outcome::HangTimeout => "hang_timeout",
            Outcome::NotTaken => "not_taken",
            Outcome::IdleAfterReminders => "idle_after_reminders",
            Outcome::Released => "released",
            Outcome::MovedToReview => "moved_to_review",
            Outcome::Unrecorded => "unrecorded",
            Outcome::Other => "other",
        }
    }

    /// For people: `gate red`, `agent died`, ...
    pub fn label(self) -> &'static str {
        match self {
            Outcome::InProgress => "in progress",
            Outcome::NothingToMerge => "nothing to merge",
            Outcome::GateRed => "gate red",
            Outcome::MergeError => "merge error",
            Outcome::AgentDied => "agent died",
            Outcome::HangTimeout => "hang timeout",
            Outcome::NotTaken => "not taken",
            Outcome::IdleAfterReminders => "idle after reminders",
            Outcome::MovedToReview => "moved to review",
            other => other.as_str(),
        }
    }

    /// The ways an attempt fails that count against the task's failure budget. A restart, a
    /// person's release or a move to review are not the attempt's failure.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::GateRed
                | Outcome::Conflict
                | Outcome::MergeError
                | Outcome::AgentDied
                | Outcome::HangTimeout
                | Outcome::NotTaken
                | Outcome::IdleAfterReminders
        )
    }

    /// Landed on the target, or nothing needed landing.
    pub fn is_landed(self) -> bool {
        matches!(self, Outcome::Merged | Outcome::NothingToMerge)
    }

    fn of_end(outcome: EndOutcome) -> Outcome {
        match outcome {
            EndOutcome::Done => Outcome::Done,
            EndOutcome::AgentDied => Outcome::AgentDied,
            EndOutcome::Restarted => Outcome::Restarted,
            EndOutcome::HangTimeout => Outcome::HangTimeout,
            EndOutcome::NotTaken => Outcome::NotTaken,
            EndOutcome::IdleAfterReminders => Outcome::IdleAfterReminders,
            EndOutcome::Released => Outcome::Released,
            EndOutcome::MovedToReview => Outcome::MovedToReview,
            EndOutcome::Other => Outcome::Other,
        }
    }

    fn of_merge(result: MergeResult) -> Outcome {
        match result {
            MergeResult::Merged => Outcome::Merged,
            MergeResult::Nothing => Outcome::NothingToMerge,
            MergeResult::GateRed => Outcome::GateRed,
            MergeResult::Conflict => Outcome::Conflict,
            MergeResult::Error => Outcome::MergeError,
            MergeResult::Other => Outcome::Other,
        }
    }
}

/// One merge of an attempt's commits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeDetails {
    #[serde(serialize_with = "ser_at")]
    pub at: At,
    pub outcome: MergeResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One attempt at a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub attempt: u32,
    pub agent: String,
    /// `None` when the record has the attempt's end but not its start.
    #[serde(serialize_with = "ser_opt_at")]
    pub delivered: Option<At>,
    #[serde(serialize_with = "ser_opt_at")]
    pub ended: Option<At>,
    pub outcome: Outcome,
    /// Why it ended so: the end's reason, or the merge's conflict, gate tail or error.
    pub error: Option<String>,
    /// What the agent was told besides the task (a resume note, the previous failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub base: Option<String>,
    pub head: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileChange>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merges: Vec<MergeDetails>,
    /// When the supervisor running it went away, while it is open.
    #[serde(skip)]
    interrupted: Option<At>,
}

impl Attempt {
    fn new(attempt: u32, agent: &str, delivered: Option<At>) -> Attempt {
        Attempt {
            attempt,
            agent: agent.to_owned(),
            delivered,
            ended: None,
            outcome: Outcome::InProgress,
            error: None,
            note: None,
            base: None,
            head: None,
            files: Vec::new(),
            merges: Vec::new(),
            interrupted: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.outcome == Outcome::InProgress
    }

    /// The commit that landed on the target for this attempt.
    pub fn landed(&self) -> Option<&str> {
        self.merges
            .iter()
            .rev()
            .find(|m| m.outcome == MergeResult::Merged)
            .and_then(|m| m.landed.as_deref())
    }

    /// When its outcome became known: its last merge, else its end.
    pub fn settled_at(&self) -> Option<At> {
        self.merges.last().map(|m| m.at).or(self.ended)
    }

    fn end(&mut self, at: At, outcome: Outcome) {
        self.ended = Some(at);
        self.outcome = outcome;
        self.interrupted = None;
    }
}

/// A task was given to a person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewNote {
    #[serde(serialize_with = "ser_at")]
    pub at: At,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_ref: Option<String>,
}

/// Everything the record says about one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskHistory {
    pub task: u64,
    /// In the order they started.
    pub attempts: Vec<Attempt>,
    /// Set by a `review` event, cleared by the next delivery.
    pub review: Option<ReviewNote>,
}

impl TaskHistory {
    fn new(task: u64) -> TaskHistory {
        TaskHistory {
            task,
            attempts: Vec::new(),
            review: None,
        }
    }

    /// The agents that worked on it, each once, in the order they started.
    pub fn agents(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in &self.attempts {
            if !out.contains(&a.agent.as_str()) {
                out.push(&a.agent);
            }
        }
        out
    }

    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// The commit its latest landing put on the target.
    pub fn merged_commit(&self) -> Option<&str> {
        self.attempts.iter().rev().find_map(Attempt::landed)
    }

    /// The latest attempt that failed (see [`Outcome::is_failure`]).
    pub fn last_failure(&self) -> Option<&Attempt> {
        self.attempts.iter().rev().find(|a| a.outcome.is_failure())
    }

    fn open_mut(&mut self) -> Option<&mut Attempt> {
        self.attempts.iter_mut().rev().find(|a| a.is_open())
    }

    /// The attempt numbered `n`, made from what the entry says when the record lacks its start.
    fn attempt_mut(&mut self, n: u32, agent: &str) -> &mut Attempt {
        let i = match self.attempts.iter().rposition(|a| a.attempt == n) {
            Some(i) => i,
            None => {
                self.attempts.push(Attempt::new(n, agent, None));
                self.attempts.len() - 1
            }
        };
        &mut self.attempts[i]
    }
}

/// One supervisor's run, from its `run start`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSpan {
    #[serde(serialize_with = "ser_at")]
    pub start: At,
    /// `None` for the run assumed when the record has entries before any `run start`.
    pub pid: Option<u32>,
    #[serde(serialize_with = "ser_opt_at")]
    pub stop: Option<At>,
    /// Its last line in the record.
    #[serde(serialize_with = "ser_at")]
    pub last_seen: At,
    /// Ended without a `run stop`: the next `run start` came first.
    pub crashed: bool,
}

/// Busy time and counts of one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentBusy {
    pub busy: TimeDelta,
    pub attempts: u32,
    pub merged: u32,
}

/// The folded record of one phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    tasks: BTreeMap<u64, TaskHistory>,
    runs: Vec<RunSpan>,
    first_at: Option<At>,
    last_at: Option<At>,
}

impl History {
    /// Folds `entries` in file order.
    pub fn fold(entries: &[Entry]) -> History {
        let mut history = History::default();
        for entry in entries {
            history.apply(entry);
        }
        history
    }

    /// Adds one entry (the next one in the file).
    pub fn apply(&mut self, entry: &Entry) {
        let at = entry.at;
        self.first_at.get_or_insert(at);
        self.last_at = Some(self.last_at.map_or(at, |last| last.max(at)));
        match &entry.event {
            Event::Run(run) => match run.action {
                RunAction::Start => self.run_start(at, run.pid),
                RunAction::Stop => self.run_stop(at, run.pid),
                RunAction::Other => self.seen(at),
            },
            Event::Delivered(d) => {
                self.seen(at);
                self.delivered(at, d);
            }
            Event::Ended(e) => {
                self.seen(at);
                self.ended(at, e);
            }
            Event::Merge(m) => {
                self.seen(at);
                self.merge(at, m);
            }
            Event::Review(r) => {
                self.seen(at);
                self.review(at, r);
            }
            Event::Reopened(r) => {
                self.seen(at);
                if let Some(t) = self.tasks.get_mut(&r.task) {
                    t.review = None;
                }
            }
            Event::Other => self.seen(at),
        }
    }

    /// Keeps the current run's last sign of life; entries before any `run start` open an
    /// assumed run.
    fn seen(&mut self, at: At) {
        match self.runs.last_mut() {
            Some(run) if run.stop.is_none() => run.last_seen = run.last_seen.max(at),
            Some(_) => {}
            None => self.runs.push(RunSpan {
                start: at,
                pid: None,
                stop: None,
                last_seen: at,
                crashed: false,
            }),
        }
    }

    fn run_start(&mut self, at: At, pid: u32) {
        let gone_at = match self.runs.last_mut() {
            Some(run) if run.stop.is_none() => {
                run.crashed = true;
                Some(run.last_seen)
            }
            // A stopped run interrupted its attempts at its stop.
            Some(_) => None,
            None => Some(at),
        };
        if let Some(gone_at) = gone_at {
            self.interrupt(gone_at);
        }
        self.runs.push(RunSpan {
            start: at,
            pid: Some(pid),
            stop: None,
            last_seen: at,
            crashed: false,
        });
    }

    fn run_stop(&mut self, at: At, pid: u32) {
        match self.runs.last_mut() {
            Some(run) if run.stop.is_none() => {
                run.last_seen = run.last_seen.max(at);
                run.stop = Some(at);
            }
            _ => self.runs.push(RunSpan {
                start: at,
                pid: Some(pid),
                stop: Some(at),
                last_seen: at,
                crashed: false,
            }),
        }
        self.interrupt(at);
    }

    fn interrupt(&mut self, at: At) {
        for task in self.tasks.values_mut() {
            for a in task.attempts.iter_mut().filter(|a| a.is_open()) {
                a.interrupted.get_or_insert(at);
            }
        }
    }

    fn task_mut(&mut self, task: u64) -> &mut TaskHistory {
        self.tasks
            .entry(task)
            .or_insert_with(|| TaskHistory::new(task))
    }

    fn delivered(&mut self, at: At, d: &Delivered) {
        let task = self.task_mut(d.task);
        if let Some(open) = task.open_mut() {
            if open.attempt == d.attempt {
                // Delivered again (a new supervisor kept it, or a retried paste).
                open.interrupted = None;
                open.agent.clone_from(&d.agent);
                if d.base.is_some() {
                    open.base.clone_from(&d.base);
                }
                if d.note.is_some() {
                    open.note.clone_from(&d.note);
                }
                return;
            }
            match open.interrupted {
                Some(gone_at) => open.end(gone_at, Outcome::Restarted),
                None => open.end(at, Outcome::Unrecorded),
            }
        }
        task.review = None;
        let mut attempt = Attempt::new(d.attempt, &d.agent, Some(at));
        attempt.base.clone_from(&d.base);
        attempt.note.clone_from(&d.note);
        task.attempts.push(attempt);
    }

    fn ended(&mut self, at: At, e: &Ended) {
        let a = self.task_mut(e.task).attempt_mut(e.attempt, &e.agent);
        // A merge already filed (lines out of order) keeps its outcome.
        let outcome = match a.merges.last() {
            Some(m) if e.outcome == EndOutcome::Done => Outcome::of_merge(m.outcome),
            _ => Outcome::of_end(e.outcome),
        };
        a.end(at, outcome);
        if a.merges.is_empty() || e.error.is_some() {
            a.error.clone_from(&e.error);
        }
        if e.base.is_some() {
            a.base.clone_from(&e.base);
        }
        if e.head.is_some() {
            a.head.clone_from(&e.head);
        }
        if !e.files.is_empty() {
            a.files.clone_from(&e.files);
        }
    }

    fn merge(&mut self, at: At, m: &Merge) {
        let a = self.task_mut(m.task).attempt_mut(m.attempt, &m.agent);
        let ended = a.ended.unwrap_or(at);
        a.end(ended, Outcome::of_merge(m.outcome));
        a.error.clone_from(&m.error);
        if a.base.is_none() {
            a.base.clone_from(&m.base);
        }
        if a.head.is_none() {
            a.head.clone_from(&m.head);
        }
        a.merges.push(MergeDetails {
            at,
            outcome: m.outcome,
            gate: m.gate.clone(),
            gate_secs: m.gate_secs,
            exit_code: m.exit_code,
            landed: m.landed.clone(),
            error: m.error.clone(),
        });
    }

    fn review(&mut self, at: At, r: &Review) {
        let task = self.task_mut(r.task);
        if let Some(open) = task.open_mut() {
            open.end(at, Outcome::MovedToReview);
        }
        task.review = Some(ReviewNote {
            at,
            reason: r.reason.clone(),
            rejected_ref: r.rejected_ref.clone(),
        });
    }

    /// Every task the record mentions, by id.
    pub fn tasks(&self) -> impl Iterator<Item = &TaskHistory> {
        self.tasks.values()
    }

    pub fn task(&self, id: u64) -> Option<&TaskHistory> {
        self.tasks.get(&id)
    }

    pub fn runs(&self) -> &[RunSpan] {
        &self.runs
    }

    /// The last run has not stopped (its supervisor runs, or died without a word).
    pub fn live(&self) -> bool {
        self.runs.last().is_some_and(|r| r.stop.is_none())
    }

    /// The pid of the last run when it has not stopped.
    pub fn live_pid(&self) -> Option<u32> {
        self.runs.last().filter(|r| r.stop.is_none())?.pid
    }

    pub fn first_at(&self) -> Option<At> {
        self.first_at
    }

    pub fn last_at(&self) -> Option<At> {
        self.last_at
    }

    /// The number the next attempt at `task` gets.
    pub fn next_attempt(&self, task: u64) -> u32 {
        self.tasks
            .get(&task)
            .and_then(|t| t.attempts.iter().map(|a| a.attempt).max())
            .map_or(1, |n| n + 1)
    }

    /// Attempts not ended yet, by task (what a restarted supervisor keeps or ends).
    pub fn open_attempts(&self) -> Vec<(u64, &Attempt)> {
        self.tasks
            .values()
            .flat_map(|t| {
                t.attempts
                    .iter()
                    .filter(|a| a.is_open())
                    .map(|a| (t.task, a))
            })
            .collect()
    }

    /// Commits that landed on the target, each once, oldest first.
    pub fn landed_commits(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in self.tasks.values().flat_map(|t| &t.attempts) {
            for m in &a.merges {
                if let (MergeResult::Merged, Some(sha)) = (m.outcome, m.landed.as_deref())
                    && !out.contains(&sha)
                {
                    out.push(sha);
                }
            }
        }
        out
    }

    /// How long `a` ran: delivered to ended; an open attempt up to `until` while a supervisor
    /// runs, else up to when its supervisor went away.
    pub fn attempt_time(&self, a: &Attempt, until: At) -> TimeDelta {
        let Some(start) = a.delivered else {
            return TimeDelta::zero();
        };
        let end = match (a.ended, a.interrupted) {
            (Some(end), _) => end,
            (None, Some(gone_at)) if !self.live() => gone_at,
            (None, _) => until,
        };
        (end - start).max(TimeDelta::zero())
    }

    /// The time of all its attempts.
    pub fn task_time(&self, task: &TaskHistory, until: At) -> TimeDelta {
        task.attempts
            .iter()
            .map(|a| self.attempt_time(a, until))
            .sum()
    }

    /// The time supervisors ran: each run from its start to its stop, or to its last line
    /// after a crash; a run still going, to `until`.
    pub fn wall_time(&self, until: At) -> TimeDelta {
        let last = self.runs.len().saturating_sub(1);
        self.runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let end = match r.stop {
                    Some(stop) => stop,
                    None if i == last => until.max(r.last_seen),
                    None => r.last_seen,
                };
                (end - r.start).max(TimeDelta::zero())
            })
            .sum()
    }

    /// Per agent: the time of its attempts, how many, how many landed a commit.
    pub fn agent_busy(&self, until: At) -> BTreeMap<String, AgentBusy> {
        let mut out: BTreeMap<String, AgentBusy> = BTreeMap::new();
        for a in self.tasks.values().flat_map(|t| &t.attempts) {
            let busy = out.entry(a.agent.clone()).or_default();
            busy.busy += self.attempt_time(a, until);
            busy.attempts += 1;
            if a.landed().is_some() {
                busy.merged += 1;
            }
        }
        out
    }
}

fn ser_at<S: serde::Serializer>(at: &At, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::entry::format_at(at))
}

fn ser_opt_at<S: serde::Serializer>(at: &Option<At>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => ser_at(at, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
pub(crate) mod tests;
