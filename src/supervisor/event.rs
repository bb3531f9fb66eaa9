//! What the supervisor's core is told ([`Event`]) and what it asks the driver to do
//! ([`Effect`]). Plain values: the driver turns tmux, the file watcher, pane exits and the
//! merge worker into events, and carries out effects; the core never performs I/O.

use std::path::PathBuf;
use std::time::Duration;

use crate::agent::Screen;
use crate::board::{Board, FileRead, Task};
use crate::watch::ReportedState;

/// Time since the supervisor started. The core never reads a clock: every event comes with
/// the time it happened, so tests and the simulation choose it.
pub type Time = Duration;

/// An agent the run state names: who it is and where it works. Its pane is learned from tmux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    pub name: String,
    /// Adapter kind: `claude`, `codex`, `aider`, `demo` or a configured name.
    pub kind: String,
    pub worktree: PathBuf,
    pub branch: String,
}

/// An agent's executor pane as tmux lists it (found by its `@batty_agent` tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneSeen {
    pub agent: String,
    pub pane: String,
    pub pid: Option<u32>,
    /// The program exited (the pane stays, dead, or it is an unreaped zombie).
    pub dead: bool,
    pub exit_status: Option<i32>,
    /// A dead pane's last non-empty screen lines (filled in by the driver when the death is
    /// news to the core), for the next attempt's note.
    pub last_screen: Vec<String>,
}

/// How a merge attempt ended, as far as the core cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeVerdict {
    /// The task's work is on the target as `landed` (`None`: nothing needed landing).
    Landed { landed: Option<String> },
    /// The task's own fault (a conflict or a red gate): its next attempt must fix it.
    /// `kind` is [`Outcome::Conflict`] or [`Outcome::GateRed`]; `reason` is one line, `tail`
    /// what the agent is told (the conflicting files, the gate's last lines, what to do).
    Rejected {
        kind: Outcome,
        reason: String,
        tail: String,
    },
    /// batty's machinery failed (disk, git in the merge worktree, a lock): the queue retries
    /// by itself; nobody redoes work.
    Trouble { reason: String },
    /// Waiting on something outside (a dirty main checkout): shown once.
    Waiting { reason: String },
}

/// A change to one task file. Each is conditional (the driver re-reads the file and applies it
/// only if the task is still as the write expects), so a write that arrives late or is tried
/// again never undoes a person's move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardWrite {
    /// If `agent` holds the claim (or nobody does and the task sits in the working status):
    /// give it up and put the task back in the queue (a terminal status is kept).
    Release {
        task: u64,
        agent: String,
        reason: String,
    },
    /// A finished task whose merge failed and whose agent cannot redo it: back in the queue
    /// (from `done` too), unclaimed.
    Requeue { task: u64, reason: String },
    /// If the task is still working or done (a person has not moved it meanwhile): give it to
    /// a person: `review`, blocked with `reason`, unclaimed.
    Review { task: u64, reason: String },
    /// If the task is in the working status with no claim (a person saved a buffer opened
    /// before the claim): write the claim back.
    RestoreClaim { task: u64, agent: String },
    /// If the task is done (or working) and not claimed by someone else: back in the working
    /// status for `agent`, which redoes it (its merge failed).
    Reopen { task: u64, agent: String },
    /// The task's work landed after a person sent it back: `done`, unblocked.
    Landed { task: u64 },
    /// If `agent` holds the claim: take it off, keeping the status a person chose.
    ClearClaim { task: u64, agent: String },
}

impl BoardWrite {
    pub fn task(&self) -> u64 {
        match self {
            BoardWrite::Release { task, .. }
            | BoardWrite::Requeue { task, .. }
            | BoardWrite::Review { task, .. }
            | BoardWrite::RestoreClaim { task, .. }
            | BoardWrite::Reopen { task, .. }
            | BoardWrite::Landed { task }
            | BoardWrite::ClearClaim { task, .. } => *task,
        }
    }
}

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// The run state's agents, and their panes as tmux lists them now. Sent at start and
    /// whenever `batty work` changes the agents; agents missing from the list are gone.
    Agents {
        agents: Vec<AgentSpec>,
        panes: Vec<PaneSeen>,
    },
    /// A fresh listing of the agents' panes (after a pane exit, or on the safety timer).
    Panes(Vec<PaneSeen>),
    /// A pane's process ended (its pid watcher fired): its exit status when tmux knew it,
    /// and its last non-empty screen lines.
    Exited {
        agent: String,
        pid: u32,
        status: Option<i32>,
        last_screen: Vec<String>,
    },
    /// Bytes appeared in the agent's pty log.
    Output { agent: String },
    /// The output just read (after an [`Event::Output`]) ends on a line the agent's adapter
    /// reads as its ready prompt with nothing typed: worth a look at the screen now.
    Prompt { agent: String },
    /// A screen the core asked for (`seq` from [`Effect::Capture`]), as the agent's adapter
    /// classified it.
    Screen {
        agent: String,
        seq: u64,
        screen: Screen,
    },
    /// The agent reported its own state (`batty agent-status`).
    Report {
        agent: String,
        state: ReportedState,
        note: Option<String>,
    },
    /// The whole board was read again.
    Board(Board),
    /// Task files read again: each is a task, a problem, or gone.
    TaskFiles(Vec<(PathBuf, FileRead)>),
    /// The result of [`Effect::Claim`].
    Claimed {
        agent: String,
        task: u64,
        result: Result<Task, String>,
    },
    /// The result of [`Effect::Prepare`]: the worktree is ready for the attempt.
    Prepared {
        agent: String,
        task: u64,
        result: Result<Ready, String>,
    },
    /// The result of [`Effect::Deliver`] (the paste and its Enter went out, or not).
    Delivered {
        agent: String,
        task: u64,
        result: Result<(), String>,
    },
    /// The result of [`Effect::QueueMerge`]: the head the range ends at, and whether any of
    /// it is not on the target yet.
    Queued {
        task: u64,
        result: Result<QueuedWork, String>,
    },
    /// A merge attempt ended.
    Merge { task: u64, verdict: MergeVerdict },
    /// A board write failed (the file was briefly unwritable, the folder gone, ...).
    WriteFailed { write: BoardWrite, reason: String },
    /// The result of [`Effect::Respawn`].
    Respawned {
        agent: String,
        result: Result<PaneSeen, String>,
    },
    /// `supervisor.escalate_command` answered.
    EscalationReply {
        agent: String,
        question: String,
        reply: Result<String, String>,
    },
    /// `.batty/config.yml` changed and parsed.
    Config(Box<super::Settings>),
    /// Nothing but the time: a deadline the core asked for passed.
    Tick,
}

/// A worktree made ready for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// Where the attempt starts: the target tip, or where a continued attempt began.
    pub base: String,
    /// For an attempt that continues an earlier one's commits: those commits on the branch
    /// (`base..HEAD`), newest first, one `<short sha> <subject>` each.
    pub commits: Vec<String>,
}

impl Ready {
    /// A fresh start on `base`.
    pub fn at(base: impl Into<String>) -> Ready {
        Ready {
            base: base.into(),
            commits: Vec::new(),
        }
    }
}

/// The git facts of a finished attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedWork {
    pub head: String,
    /// The range `base..head` has commits not on the target (by patch id).
    pub unlanded: bool,
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Capture the agent's screen and send back [`Event::Screen`] with the same `seq`.
    Capture {
        agent: String,
        pane: String,
        seq: u64,
    },
    /// Claim `task` on the board for `agent`; answer with [`Event::Claimed`].
    Claim { agent: String, task: u64 },
    /// Make the agent's worktree ready for `task`'s attempt and answer with
    /// [`Event::Prepared`]: park whatever on its branch did not land under `park_ref`, then
    /// put the branch on the target tip, or on `resume_from` when the attempt continues an
    /// earlier one of the same task.
    Prepare {
        agent: String,
        task: u64,
        park_ref: Option<String>,
        resume_from: Option<String>,
    },
    /// Paste `text` into the pane and press Enter; answer with [`Event::Delivered`].
    Deliver {
        agent: String,
        pane: String,
        task: u64,
        text: String,
    },
    /// Press keys (tmux key names) in the pane.
    Keys {
        agent: String,
        pane: String,
        keys: Vec<String>,
    },
    /// Answer a question: text typed literally then Enter, or keys pressed.
    Answer {
        agent: String,
        pane: String,
        reply: crate::agent::Reply,
    },
    /// Write to the board.
    Write(BoardWrite),
    /// Queue `base..head` (`head`: the agent's head when it reported done, read from the
    /// branch when not known) if any of it is not on the target; answer with [`Event::Queued`].
    QueueMerge {
        agent: String,
        task: u64,
        attempt: u32,
        base: String,
        head: Option<String>,
    },
    /// Keep whatever the agent's branch holds that did not land under the ref `name`, so a
    /// task given to a person keeps its commits (the branch itself is not moved).
    KeepRef { agent: String, name: String },

    /// Restart the agent in its window (same worktree, branch, environment), its output
    /// piped again; answer with [`Event::Respawned`].
    Respawn { agent: String },
    /// Mark the agent's window as needing a person, ring the bell, and run
    /// `supervisor.escalate_command` with the question.
    Escalate { agent: String, question: String },
    /// Mark the window again, quietly (the same question came back).
    Flag { agent: String },
    /// Clear the mark.
    Unflag { agent: String },
    /// List the agents' panes now and send [`Event::Panes`].
    ListPanes,
    /// Append to the attempt record.
    Record(Record),
    /// A line for the agent's event log (or the supervisor's, without an agent).
    Log {
        agent: Option<String>,
        text: String,
        bell: bool,
    },
    /// `--exit-when-done` found nothing left: read the whole board once more (answered with
    /// [`Event::Board`]) before finishing, so a file whose event is still on its way counts.
    ReadBoard,
    /// `--exit-when-done`: everything is finished; write the summary and end the session.
    Finish,
}

/// A line of the attempt record, as the core knows it (the driver adds times and git facts).
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Delivered {
        task: u64,
        attempt: u32,
        agent: String,
        base: String,
        note: Option<String>,
        pid: Option<u32>,
    },
    Ended {
        task: u64,
        attempt: u32,
        agent: String,
        outcome: Outcome,
        error: Option<String>,
        base: String,
    },
    Merged {
        task: u64,
        attempt: u32,
        agent: String,
        verdict: MergeVerdict,
    },
    Review {
        task: u64,
        reason: String,
        rejected_ref: Option<String>,
    },
    /// A person took a task out of review: its failure budget starts again.
    Reopened { task: u64, status: String },
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Done,
    AgentDied,
    Restarted,
    HangTimeout,
    NotTaken,
    IdleAfterReminders,
    Released,
    MovedToReview,
    GateRed,
    Conflict,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::AgentDied => "agent_died",
            Outcome::Restarted => "restarted",
            Outcome::HangTimeout => "hang_timeout",
            Outcome::NotTaken => "not_taken",
            Outcome::IdleAfterReminders => "idle_after_reminders",
            Outcome::Released => "released",
            Outcome::MovedToReview => "moved_to_review",
            Outcome::GateRed => "gate_red",
            Outcome::Conflict => "conflict",
        }
    }

    /// Counts toward the task's failure budget.
    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            Outcome::Done | Outcome::Released | Outcome::MovedToReview
        )
    }
}

impl Effect {
    /// The pane an effect types into or reads, if any: the invariant checks need it.
    pub fn pane(&self) -> Option<(&str, &str)> {
        match self {
            Effect::Capture { agent, pane, .. }
            | Effect::Deliver { agent, pane, .. }
            | Effect::Keys { agent, pane, .. }
            | Effect::Answer { agent, pane, .. } => Some((agent, pane)),
            _ => None,
        }
    }
}

/// How long an effect's answer may take before the core stops waiting for it.
pub const EFFECT_TIMEOUT: Duration = Duration::from_secs(30);
