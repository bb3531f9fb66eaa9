//! The merge queue from the driver's side: a worker thread that runs one attempt at a time,
//! the queue file (shared with `batty merge --retry`), and each outcome turned into the
//! core's verdict. The queue never gives a task up by itself: the core's per-task failure
//! budget decides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::merge::{
    self, EntryState, MergeCtx, MergeEntry, MergeError, MergeOutcome, MergeQueue, NextStep,
};
use crate::paths::Project;
use crate::status::MergeEntryStatus;

use super::super::core::MergeState;
use super::super::event::{MergeVerdict, Outcome};
use super::SuperviseError;

/// What the worker sends back: the task, how long the attempt took, its outcome.
pub type MergeResult = (u64, Result<MergeOutcome, MergeError>);

pub struct MergeDriver {
    pub ctx: MergeCtx,
    pub queue_path: PathBuf,
    jobs: Sender<(MergeCtx, MergeEntry)>,
    pub results: Receiver<MergeResult>,
    /// The task the worker has now, and since when.
    busy: Option<(u64, Instant)>,
    /// How the gate ran in the last attempt (`None`: no gate ran).
    last_gate: Option<merge::GateReport>,
    /// What the last attempt's record line says went wrong (files, gate lines, error).
    last_error: Option<String>,
    cached: MergeQueue,
    /// Something may have put work in the queue since the last look (a push, an outcome,
    /// the queue file changing, the retry timer): only then is the file read again.
    kick: bool,
    /// The last wait reason shown per task, so each is shown once.
    shown: BTreeMap<u64, String>,
    /// The queue waits on something outside (a dirty checkout, a backoff): it is looked at
    /// again on the safety timer, not on every turn.
    waiting_outside: bool,
}

impl MergeDriver {
    pub fn start(
        project: &Project,
        phase: &str,
        target: &str,
        config: &crate::config::MergeConfig,
    ) -> Result<MergeDriver, SuperviseError> {
        let ctx = MergeCtx::new(project, phase, target, config);
        let queue_path = merge::queue_file(project, phase);
        let cached = MergeQueue::load(&queue_path)?;
        let (jobs, job_rx) = crossbeam_channel::unbounded::<(MergeCtx, MergeEntry)>();
        let (result_tx, results) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("merge".into())
            .spawn(move || {
                for (ctx, entry) in job_rx {
                    let outcome = merge::attempt(&ctx, &entry);
                    if result_tx.send((entry.task, outcome)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|source| SuperviseError::Io {
                path: queue_path.clone(),
                source,
            })?;
        Ok(MergeDriver {
            ctx,
            queue_path,
            jobs,
            results,
            busy: None,
            last_gate: None,
            last_error: None,
            cached,
            kick: true,
            shown: BTreeMap::new(),
            waiting_outside: false,
        })
    }

    /// After a crash mid-merge: cleans the merge worktree and settles the interrupted entry.
    /// Returns lines for the supervisor's pane.
    pub fn recover(&mut self) -> Result<Vec<String>, MergeError> {
        let ctx = self.ctx.clone();
        let (recovered, queue) = MergeQueue::update(&self.queue_path, |q| {
            let r = merge::recover(&ctx, q)?;
            Ok((r, q.clone()))
        })?;
        self.cached = queue;
        Ok(recovered
            .into_iter()
            .map(|r| {
                format!(
                    "recovered interrupted merge of task #{}: {}",
                    r.task,
                    r.state.as_str()
                )
            })
            .collect())
    }

    pub fn target(&self) -> &str {
        &self.ctx.target
    }

    pub fn repo(&self) -> &Path {
        &self.ctx.repo
    }

    /// How the gate ran in the last attempt, for its record line.
    pub fn last_gate(&self) -> Option<&merge::GateReport> {
        self.last_gate.as_ref()
    }

    /// The last attempt's conflicting files, gate lines or error, for its record line.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// A config edit: the next attempt runs the new gate.
    pub fn set_config(&mut self, config: &crate::config::MergeConfig) {
        self.ctx.gate = config.gate.clone().filter(|g| !g.trim().is_empty());
        self.ctx.gate_timeout = config.gate_timeout;
        self.kick = true;
    }

    pub fn watches(&self, path: &Path) -> bool {
        path == self.queue_path
    }

    /// Look at the queue on the next turn of the loop (the file changed: a push, or a
    /// person's `batty merge --retry`). An entry waiting on something outside still waits
    /// for the safety timer: our own writes change the file too.
    pub fn wake(&mut self) {
        self.kick = true;
    }

    /// The safety timer: an entry waiting on something outside (a dirty checkout, a backoff)
    /// is tried again when its time comes.
    pub fn safety_tick(&mut self) {
        if self
            .cached
            .list()
            .iter()
            .any(|e| e.state == EntryState::Waiting)
        {
            self.kick = true;
            self.waiting_outside = false;
        }
    }

    /// The queue's entry for `task`, as last read.
    pub fn entry(&self, task: u64) -> Option<MergeEntry> {
        self.cached.get(task).cloned()
    }

    pub fn status(&self) -> Vec<MergeEntryStatus> {
        self.cached.to_status()
    }

    /// Each task's merge state as the queue file has it, for a restarted supervisor.
    pub fn states(&self) -> BTreeMap<u64, MergeState> {
        let mut out = BTreeMap::new();
        for l in &self.cached.landed {
            out.insert(l.task, MergeState::Landed(l.commit.clone()));
        }
        for e in self.cached.list() {
            let state = match e.state {
                EntryState::Waiting | EntryState::Merging => MergeState::Queued {
                    attempt: 0,
                    agent: e.agent.clone(),
                    base: e.base.clone(),
                    head: e.tip.clone(),
                },
                EntryState::Failed => MergeState::Rejected {
                    attempt: 0,
                    agent: e.agent.clone(),
                    base: e.base.clone(),
                    head: e.tip.clone(),
                },
                EntryState::Merged => MergeState::Landed(e.candidate.clone()),
            };
            out.insert(e.task, state);
        }
        out
    }

    /// Every landing the queue keeps, with its entry's agent and base while it still lists it.
    pub fn landings(&self) -> Vec<crate::record::settle::Landing> {
        self.cached
            .landed
            .iter()
            .map(|l| {
                let entry = self.cached.get(l.task).filter(|e| e.tip == l.head);
                crate::record::settle::Landing {
                    task: l.task,
                    head: l.head.clone(),
                    commit: l.commit.clone(),
                    agent: entry.map(|e| e.agent.clone()),
                    base: entry.map(|e| e.base.clone()),
                }
            })
            .collect()
    }

    /// Queues `base..head` of `task` (its head kept alive under batty's queue ref).
    pub fn push(
        &mut self,
        task: u64,
        agent: &str,
        branch: &str,
        base: &str,
        head: &str,
    ) -> Result<(), MergeError> {
        merge::hold(&self.ctx.repo, &self.ctx.phase, task, head)?;
        self.cached = MergeQueue::update(&self.queue_path, |q| {
            q.push(task, agent, branch, base, head);
            Ok(q.clone())
        })?;
        self.kick = true;
        Ok(())
    }

    /// Starts the next waiting merge when the worker is free.
    pub fn kick(&mut self) -> Result<(), MergeError> {
        if !self.kick || self.busy.is_some() || self.waiting_outside {
            return Ok(());
        }
        self.kick = false;
        // A person may have run `batty merge --retry` meanwhile: read the file, and take its
        // lock only when there is something to start.
        let q = MergeQueue::load(&self.queue_path)?;
        if q.next_waiting().is_none() {
            self.cached = q;
            return Ok(());
        }
        let (entry, queue) = MergeQueue::update(&self.queue_path, |q| {
            let Some(next) = q.next_waiting().map(|e| e.task) else {
                return Ok((None, q.clone()));
            };
            let entry = q.mark_merging(next)?;
            Ok((Some(entry), q.clone()))
        })?;
        self.cached = queue;
        if let Some(entry) = entry {
            self.busy = Some((entry.task, Instant::now()));
            let _ = self.jobs.send((self.ctx.clone(), entry));
        }
        Ok(())
    }

    /// Files an attempt's outcome; the core's verdict, or `None` when the queue simply tries
    /// again (the target moved).
    pub fn on_result(
        &mut self,
        task: u64,
        outcome: &Result<MergeOutcome, MergeError>,
    ) -> Result<Option<MergeVerdict>, MergeError> {
        self.busy = None;
        self.last_gate = match outcome {
            Ok(MergeOutcome::Merged { gate, .. }) => gate.clone(),
            Ok(MergeOutcome::GateFailed { gate, .. }) => Some(gate.clone()),
            _ => None,
        };
        self.last_error = crate::record::MergeResult::of(outcome).and_then(|(_, _, error)| error);
        self.kick = true;
        self.waiting_outside = false;
        let target = self.ctx.target.clone();
        let (step, queue) = MergeQueue::update(&self.queue_path, |q| {
            // The core's failure budget decides when a task goes to review.
            let step = q.record(task, outcome, &target, u32::MAX)?;
            Ok((step, q.clone()))
        })?;
        self.cached = queue;
        let summary = match outcome {
            Ok(o) => o.summary(),
            Err(e) => e.to_string(),
        };
        Ok(match step {
            NextStep::Landed => {
                self.shown.remove(&task);
                let landed = match outcome {
                    Ok(MergeOutcome::Merged { new_tip, .. }) => Some(new_tip.clone()),
                    _ => None,
                };
                Some(MergeVerdict::Landed { landed })
            }
            NextStep::SendBack { message }
            | NextStep::GiveUp {
                block_reason: message,
            } => {
                let kind = match outcome {
                    Ok(MergeOutcome::Conflict { .. }) => Outcome::Conflict,
                    _ => Outcome::GateRed,
                };
                Some(MergeVerdict::Rejected {
                    kind,
                    reason: summary,
                    tail: message,
                })
            }
            NextStep::RetryNow => None,
            NextStep::RetryLater { reason } => {
                self.waiting_outside = true;
                if self.shown.get(&task) == Some(&reason) {
                    None
                } else {
                    self.shown.insert(task, reason.clone());
                    let machinery =
                        matches!(outcome, Err(e) if e.fault() == merge::Fault::Machinery);
                    Some(if machinery {
                        MergeVerdict::Trouble { reason }
                    } else {
                        MergeVerdict::Waiting { reason }
                    })
                }
            }
        })
    }
}
