//! The attempt record (`.batty/logs/<phase>/attempts.jsonl`) from the driver's side: the
//! core's record lines written with their time and git facts, the history a restarted
//! supervisor starts from, and the latest outcomes for the status line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::paths::Project;
use crate::record::{self, Entry};

use super::super::core::{History, MergeState};
use super::super::event::{MergeVerdict, Outcome, Record};

pub struct Recorder {
    path: PathBuf,
    /// Every entry read at start and written since, folded (for the status line).
    history: record::History,
    /// Shown once: the record could not be written.
    warned: bool,
}

impl Recorder {
    pub fn new(project: &Project, phase: &str) -> Recorder {
        Recorder {
            path: project.attempts_file(phase),
            history: record::History::default(),
            warned: false,
        }
    }

    /// What the record and the merge queue say of every task, for the core to start from.
    /// Lines that cannot be read are skipped (they are reported by `batty report`).
    pub fn history(&mut self, merge: Option<&super::merge::MergeDriver>) -> History {
        let (entries, problems) = record::read(&self.path);
        for p in problems {
            tracing::warn!("{p}");
        }
        self.history = record::History::fold(&entries);
        let lines: Vec<Record> = entries.iter().filter_map(to_core).collect();
        let merges: BTreeMap<u64, MergeState> = merge.map(|m| m.states()).unwrap_or_default();
        super::super::history::fold(&lines, &merges)
    }

    pub fn run_started(&mut self) {
        self.append(record::Event::Run(record::entry::Run {
            action: record::entry::RunAction::Start,
            pid: std::process::id(),
        }));
    }

    /// Merges the queue says landed that the record lacks (the last supervisor was killed
    /// between landing one and writing it down): written now, so reports count them.
    pub fn settle_landings(&mut self, merge: Option<&super::merge::MergeDriver>) {
        let Some(m) = merge else {
            return;
        };
        for event in record::settle::missing_landings(&self.history, &m.landings()) {
            self.append(event);
        }
    }

    pub fn run_stopped(&mut self) {
        self.append(record::Event::Run(record::entry::Run {
            action: record::entry::RunAction::Stop,
            pid: std::process::id(),
        }));
    }

    /// Writes one of the core's lines; `facts` adds what only git knows (an ended attempt's
    /// head and files) and the merge's gate.
    pub fn write(&mut self, line: &Record, facts: Facts) {
        let event = match line {
            Record::Delivered {
                task,
                attempt,
                agent,
                base,
                note,
                pid,
            } => record::Event::Delivered(record::entry::Delivered {
                task: *task,
                attempt: *attempt,
                agent: agent.clone(),
                base: Some(base.clone()).filter(|b| !b.is_empty()),
                note: note.clone(),
                pid: *pid,
            }),
            Record::Ended {
                task,
                attempt,
                agent,
                outcome,
                error,
                base,
            } => record::Event::Ended(record::entry::Ended {
                task: *task,
                attempt: *attempt,
                agent: agent.clone(),
                outcome: end_outcome(*outcome),
                error: error.clone(),
                base: Some(base.clone()).filter(|b| !b.is_empty()),
                head: facts.head,
                files: facts.files,
            }),
            Record::Merged {
                task,
                attempt,
                agent,
                verdict,
            } => {
                let (outcome, landed, error) = match verdict {
                    MergeVerdict::Landed { landed: Some(sha) } => {
                        (record::entry::MergeResult::Merged, Some(sha.clone()), None)
                    }
                    MergeVerdict::Landed { landed: None } => {
                        (record::entry::MergeResult::Nothing, None, None)
                    }
                    MergeVerdict::Rejected { kind, reason, tail } => (
                        if *kind == Outcome::Conflict {
                            record::entry::MergeResult::Conflict
                        } else {
                            record::entry::MergeResult::GateRed
                        },
                        None,
                        facts.error.clone().or_else(|| {
                            Some(if tail.is_empty() {
                                reason.clone()
                            } else {
                                format!("{reason}\n{tail}")
                            })
                        }),
                    ),
                    MergeVerdict::Trouble { reason } | MergeVerdict::Waiting { reason } => (
                        record::entry::MergeResult::Error,
                        None,
                        Some(reason.clone()),
                    ),
                };
                record::Event::Merge(record::entry::Merge {
                    task: *task,
                    attempt: *attempt,
                    agent: agent.clone(),
                    outcome,
                    base: facts.base,
                    head: facts.head,
                    gate: facts.gate,
                    gate_secs: facts.gate_secs,
                    exit_code: facts.exit_code,
                    landed,
                    error,
                })
            }
            Record::Review {
                task,
                reason,
                rejected_ref,
            } => record::Event::Review(record::entry::Review {
                task: *task,
                reason: reason.clone(),
                rejected_ref: rejected_ref.clone(),
            }),
            Record::Reopened { task, status } => record::Event::Reopened(record::entry::Reopened {
                task: *task,
                status: status.clone(),
            }),
        };
        self.append(event);
    }

    fn append(&mut self, event: record::Event) {
        let entry = Entry::now(event);
        self.history.apply(&entry);
        if let Err(err) = record::append(&self.path, &entry)
            && !self.warned
        {
            self.warned = true;
            tracing::warn!(%err, "attempt record not writable");
        }
    }

    /// `#12 ✓ #14 ✗(2)`, newest first, within `width` columns.
    pub fn latest_outcomes(&self, width: usize) -> String {
        record::statusline::latest_outcomes(&self.history, width)
    }
}

/// What git (or the merge worker) adds to a record line.
#[derive(Debug, Default)]
pub struct Facts {
    pub base: Option<String>,
    pub head: Option<String>,
    pub files: Vec<record::entry::FileChange>,
    pub gate: Option<String>,
    pub gate_secs: Option<f64>,
    pub exit_code: Option<i32>,
    /// A merge's conflicting files or the gate's status and last lines, as the merge
    /// worker saw them.
    pub error: Option<String>,
}

fn end_outcome(o: Outcome) -> record::entry::EndOutcome {
    use record::entry::EndOutcome as E;
    match o {
        Outcome::Done => E::Done,
        Outcome::AgentDied => E::AgentDied,
        Outcome::Restarted => E::Restarted,
        Outcome::HangTimeout => E::HangTimeout,
        Outcome::NotTaken => E::NotTaken,
        Outcome::IdleAfterReminders => E::IdleAfterReminders,
        Outcome::Released => E::Released,
        Outcome::MovedToReview => E::MovedToReview,
        Outcome::GateRed | Outcome::Conflict => E::Other,
    }
}

/// A record line as the core knows it (lines it has no use for give `None`).
fn to_core(entry: &Entry) -> Option<Record> {
    use record::entry::{EndOutcome as E, MergeResult as M};
    Some(match &entry.event {
        record::Event::Delivered(d) => Record::Delivered {
            task: d.task,
            attempt: d.attempt,
            agent: d.agent.clone(),
            base: d.base.clone().unwrap_or_default(),
            note: d.note.clone(),
            pid: d.pid,
        },
        record::Event::Ended(e) => Record::Ended {
            task: e.task,
            attempt: e.attempt,
            agent: e.agent.clone(),
            outcome: match e.outcome {
                E::Done => Outcome::Done,
                E::AgentDied => Outcome::AgentDied,
                E::Restarted => Outcome::Restarted,
                E::HangTimeout => Outcome::HangTimeout,
                E::NotTaken => Outcome::NotTaken,
                E::IdleAfterReminders => Outcome::IdleAfterReminders,
                E::Released | E::Other => Outcome::Released,
                E::MovedToReview => Outcome::MovedToReview,
            },
            error: e.error.clone(),
            base: e.base.clone().unwrap_or_default(),
        },
        record::Event::Merge(m) => Record::Merged {
            task: m.task,
            attempt: m.attempt,
            agent: m.agent.clone(),
            verdict: match m.outcome {
                M::Merged => MergeVerdict::Landed {
                    landed: m.landed.clone(),
                },
                M::Nothing => MergeVerdict::Landed { landed: None },
                M::Conflict | M::GateRed => MergeVerdict::Rejected {
                    kind: if m.outcome == M::Conflict {
                        Outcome::Conflict
                    } else {
                        Outcome::GateRed
                    },
                    reason: m.error.clone().unwrap_or_default(),
                    tail: String::new(),
                },
                M::Error | M::Other => return None,
            },
        },
        record::Event::Review(r) => Record::Review {
            task: r.task,
            reason: r.reason.clone(),
            rejected_ref: r.rejected_ref.clone(),
        },
        record::Event::Reopened(r) => Record::Reopened {
            task: r.task,
            status: r.status.clone(),
        },
        record::Event::Run(_) | record::Event::Other => return None,
    })
}
