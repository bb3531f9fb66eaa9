//! One agent as the core sees it: whether its process lives (and in which pane), what it is
//! doing (`starting -> idle -> busy -> (asking -> busy)* -> idle`, `stuck`), the task it holds
//! and how far that task's delivery got. Pure state with small transition methods; the core
//! decides what to do with them.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::agent::{Adapter, Composer, Screen};
use crate::status::AgentState;
use crate::watch::ReportedState;

use super::event::{AgentSpec, Time};

/// Whether the agent's process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Life {
    /// No pane known yet (its window is being made).
    Unknown,
    /// Running in `pane`.
    Alive { pane: String, pid: Option<u32> },
    /// Its process ended at `since`; it is restarted at `restart_at`.
    Dead { since: Time, restart_at: Time },
    /// A restart was asked for at `since`.
    Respawning { since: Time },
    /// Restarted too often: left dead for a person.
    Parked { reason: String },
}

/// A task an agent holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub task: u64,
    pub attempt: u32,
    /// The target tip the attempt started on (or where a continued attempt began): the
    /// task's work is `base..head`.
    pub base: String,
    pub delivered_at: Time,
    /// The latest paste (the delivery or a reminder): its confirmation runs from here.
    pub pasted_at: Time,
    /// The agent took the pasted text (composer cleared, busy marker, busy report).
    pub taken: bool,
    /// Our text was seen waiting in the composer.
    pub seen_in_composer: bool,
    /// Output appeared after the paste.
    pub output_since: bool,
    /// Extra Enter presses while the text sat in the composer.
    pub enters: u32,
    pub last_enter: Option<Time>,
    pub reminders: u32,
    /// The last reminder went out then.
    pub reminded_at: Option<Time>,
    /// Interrupted (hang or timeout) then; restarted if not back at its prompt in time.
    pub interrupted_at: Option<Time>,
}

impl Job {
    pub fn new(task: u64, attempt: u32, base: String, now: Time) -> Job {
        Job {
            task,
            attempt,
            base,
            delivered_at: now,
            pasted_at: now,
            taken: false,
            seen_in_composer: false,
            output_since: false,
            enters: 0,
            last_enter: None,
            reminders: 0,
            reminded_at: None,
            interrupted_at: None,
        }
    }
}

/// Where handing a task to an idle agent stands: each step waits for its effect's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Claiming {
        task: u64,
        since: Time,
    },
    Preparing {
        task: u64,
        attempt: u32,
        note: Option<String>,
        /// The attempt continues an earlier one's commits from here: the note then lists them.
        resume_from: Option<String>,
        since: Time,
    },
    Delivering {
        task: u64,
        attempt: u32,
        base: String,
        since: Time,
    },
}

impl Step {
    pub fn task(&self) -> u64 {
        match self {
            Step::Claiming { task, .. }
            | Step::Preparing { task, .. }
            | Step::Delivering { task, .. } => *task,
        }
    }

    pub fn since(&self) -> Time {
        match self {
            Step::Claiming { since, .. }
            | Step::Preparing { since, .. }
            | Step::Delivering { since, .. } => *since,
        }
    }
}

/// A task to give this agent again before any new one: its merge failed, or it died holding
/// it, and its commits are on this agent's branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redo {
    pub task: u64,
    /// Why: goes at the top of the message.
    pub note: String,
    /// The attempt continues from here (the earlier attempt's base), keeping the branch.
    pub resume_from: Option<String>,
    /// The task was `done` and is being put back in the working status for this agent (its
    /// merge failed): until the board shows that, `done` means "not yet", not "finished".
    pub reopening: bool,
}

/// A question on screen and what is being done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub text: String,
    pub since: Time,
    /// An automatic reply waits out the grace period in which a person may answer first.
    pub answer: Option<(crate::agent::Reply, Time)>,
    /// The due answer waits for a fresh screen showing the same question.
    pub verifying: bool,
    pub escalated: bool,
    /// A reply was typed then: output after it means the agent moved on, so the same
    /// question on screen again is a new one.
    pub replied: Option<Time>,
}

pub struct Agent {
    pub spec: AgentSpec,
    pub adapter: Arc<Adapter>,
    pub life: Life,
    pub state: AgentState,
    /// When `state` last changed.
    pub since: Time,
    pub last_output: Option<Time>,
    /// Output arrived since the screen was last read.
    pub screen_stale: bool,
    /// A capture was asked for and its screen has not come back.
    pub capture_asked: Option<Time>,
    /// The number of the last capture asked for.
    pub capture_seq: u64,
    /// Captures numbered up to this one were of an earlier process.
    pub epoch_seq: u64,
    /// The agent's last report and when, until it prints again.
    pub report: Option<(ReportedState, Time)>,
    /// Ready with an empty composer since then (reminders wait for a settle time).
    pub idle_since: Option<Time>,
    pub job: Option<Job>,
    pub step: Option<Step>,
    pub redo: VecDeque<Redo>,
    pub question: Option<Question>,
    /// When the last question ended, unless a reply of ours ended it (a question seen again
    /// soon after is the same one).
    pub question_ended: Option<Time>,
    /// Restart times within the restart window.
    pub restarts: Vec<Time>,
    /// No new task until then (its last delivery was lost).
    pub suspect_until: Option<Time>,
    /// The attempt this agent worked on last: leftovers on its branch are parked under it.
    pub last_attempt: Option<(u64, u32)>,
    /// Interrupted then for hanging without a task; restarted if not back in time.
    pub hang_interrupt: Option<Time>,
    /// Its prompt has shown text that was never sent since then (with no task held).
    pub text_waiting_since: Option<Time>,
    /// How its screen looked when its last process ended (for the next attempt's note).
    pub last_screen: Vec<String>,
}

impl Agent {
    pub fn new(spec: AgentSpec, adapter: Arc<Adapter>, now: Time) -> Agent {
        Agent {
            spec,
            adapter,
            life: Life::Unknown,
            state: AgentState::Starting,
            since: now,
            last_output: None,
            screen_stale: false,
            capture_asked: None,
            capture_seq: 0,
            epoch_seq: 0,
            report: None,
            idle_since: None,
            job: None,
            step: None,
            redo: VecDeque::new(),
            question: None,
            question_ended: None,
            restarts: Vec::new(),
            suspect_until: None,
            last_attempt: None,
            hang_interrupt: None,
            text_waiting_since: None,
            last_screen: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The pane, while the process is known to run.
    pub fn pane(&self) -> Option<&str> {
        match &self.life {
            Life::Alive { pane, .. } => Some(pane),
            _ => None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match &self.life {
            Life::Alive { pid, .. } => *pid,
            _ => None,
        }
    }

    pub fn alive(&self) -> bool {
        matches!(self.life, Life::Alive { .. })
    }

    pub fn set_state(&mut self, now: Time, state: AgentState) -> bool {
        if self.state == state {
            return false;
        }
        self.state = state;
        self.since = now;
        if state != AgentState::Idle {
            self.idle_since = None;
        }
        true
    }

    /// A new process in `pane`: everything it showed before is gone.
    pub fn started(&mut self, now: Time, pane: String, pid: Option<u32>) {
        self.life = Life::Alive { pane, pid };
        self.set_state(now, AgentState::Starting);
        // Its screen is read once after `silence`, even if it prints nothing (it may have
        // drawn its prompt before we looked).
        self.last_output = Some(now);
        self.screen_stale = true;
        self.capture_asked = None;
        self.epoch_seq = self.capture_seq;
        self.report = None;
        self.idle_since = None;
        self.question = None;
        self.hang_interrupt = None;
        self.text_waiting_since = None;
        self.last_screen.clear();
    }

    /// Bytes in the pty log.
    pub fn on_output(&mut self, now: Time) {
        self.last_output = Some(now);
        self.screen_stale = true;
        self.report = None;
        self.suspect_until = None;
        if let Some(job) = &mut self.job {
            job.output_since = true;
        }
        if self.state == AgentState::Stuck {
            self.set_state(now, AgentState::Busy);
        }
        self.hang_interrupt = None;
    }

    /// The state a classified screen shows, given what the agent last reported: a report
    /// holds until the agent prints again, except that a question on screen always counts.
    pub fn state_from_screen(&self, screen: &Screen) -> Option<AgentState> {
        match screen {
            Screen::Question(_) => Some(AgentState::Asking),
            _ if self.report.is_some() => None,
            Screen::Ready { .. } => Some(AgentState::Idle),
            Screen::Busy | Screen::Unknown => match self.state {
                AgentState::Stuck => None,
                AgentState::Starting if matches!(screen, Screen::Unknown) => None,
                _ => Some(AgentState::Busy),
            },
        }
    }

    /// Whether the screen says the delivered text was taken: the composer cleared after it
    /// showed our text or after output, a busy marker, a question (the agent reacted). The
    /// echo of the paste alone never counts.
    pub fn taken_by_screen(job: &Job, screen: &Screen) -> bool {
        match screen {
            Screen::Busy | Screen::Question(_) => true,
            Screen::Ready {
                composer: Composer::Empty,
            } => job.seen_in_composer || job.output_since,
            Screen::Ready {
                composer: Composer::Unknown,
            }
            | Screen::Unknown => job.output_since,
            Screen::Ready {
                composer: Composer::Text(_),
            } => false,
        }
    }

    /// Ready for a new task: alive, idle at an empty prompt, nothing held or in hand.
    pub fn available(&self, now: Time) -> bool {
        self.alive()
            && self.state == AgentState::Idle
            && self.idle_since.is_some()
            && self.job.is_none()
            && self.step.is_none()
            && self.question.is_none()
            && self.suspect_until.is_none_or(|t| now >= t)
    }

    /// The task this agent holds or is being handed.
    pub fn task(&self) -> Option<u64> {
        self.job
            .as_ref()
            .map(|j| j.task)
            .or(self.step.as_ref().map(Step::task))
    }

    /// Every task bound to this agent: held, in hand, or waiting to be redone.
    pub fn bound_tasks(&self) -> impl Iterator<Item = u64> + '_ {
        self.task()
            .into_iter()
            .chain(self.redo.iter().map(|r| r.task))
    }
}
