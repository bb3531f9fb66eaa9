//! The supervisor's side of the merge queue: a worker thread that runs one attempt at a time,
//! and what the loop does with each outcome (board, agent, event log).

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use crate::board;
use crate::merge::{self, EntryState, MergeCtx, MergeEntry, MergeQueue, NextStep, SyncOutcome};
use crate::paths::Project;
use crate::status::{AgentState, MergeEntryStatus};

use super::driver::{MergeResult, SuperviseError, Supervisor};

pub(super) struct MergeDriver {
    pub ctx: MergeCtx,
    pub queue_path: PathBuf,
    pub max_retries: u32,
    jobs: Sender<(MergeCtx, MergeEntry)>,
    pub results: Receiver<MergeResult>,
    /// The task the worker has now.
    busy: Option<u64>,
    /// An entry waits for something outside (a dirty checkout): try again on the safety timer.
    waiting_outside: bool,
    retry_due: bool,
    cached: MergeQueue,
    /// The last reason the queue waited for, so it is shown once.
    pub last_wait: Option<String>,
    /// Something may have put work in the queue since the last look (a push, an outcome,
    /// the queue file changing, the retry timer): only then is the file read again.
    kick: bool,
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
            max_retries: config.max_retries,
            jobs,
            results,
            busy: None,
            waiting_outside: false,
            retry_due: false,
            cached,
            last_wait: None,
            kick: true,
        })
    }

    pub fn push(
        &mut self,
        task: u64,
        agent: &str,
        branch: &str,
        base: &str,
        tip: &str,
    ) -> Result<(), merge::MergeError> {
        self.cached = MergeQueue::update(&self.queue_path, |q| {
            q.push(task, agent, branch, base, tip);
            Ok(q.clone())
        })?;
        self.kick = true;
        Ok(())
    }

    pub fn status(&self) -> Vec<MergeEntryStatus> {
        self.cached.to_status()
    }

    /// Nothing waiting or merging.
    pub fn idle(&self) -> bool {
        self.busy.is_none()
            && !self
                .cached
                .list()
                .iter()
                .any(|e| matches!(e.state, EntryState::Waiting | EntryState::Merging))
    }

    pub fn merged_count(&self) -> usize {
        self.cached.merged_count()
    }

    /// The safety timer: an entry waiting on something outside (a dirty checkout) is tried
    /// again.
    pub fn retry_later_due(&mut self) {
        if self.waiting_outside {
            self.retry_due = true;
            self.kick = true;
        }
    }

    /// Look at the queue on the next turn of the loop.
    pub fn wake(&mut self) {
        self.kick = true;
    }

    /// True unless the task's commits wait in the queue (or failed to land): a task the
    /// queue never saw (done before batty, or without commits) counts as landed.
    pub fn landed_or_unqueued(&self, task: u64) -> bool {
        self.cached
            .get(task)
            .is_none_or(|e| e.state == EntryState::Merged)
    }

    /// Where a task sent back after a failed merge started: its commits from before stay part
    /// of it, so the redone task is `base..tip` from the first delivery, not from the resend.
    pub fn failed_base(&self, task: u64) -> Option<String> {
        self.cached
            .get(task)
            .filter(|e| e.state == EntryState::Failed)
            .map(|e| e.base.clone())
    }

    /// True when the agent has work waiting in the queue, or a failed task it still has to
    /// redo: its branch must not be rebased under those commits. A task given up to review
    /// no longer holds the agent back.
    pub fn agent_has_pending(&self, agent: &str, redoing: &[u64]) -> bool {
        self.cached.list().iter().any(|e| {
            e.agent == agent
                && match e.state {
                    EntryState::Waiting | EntryState::Merging => true,
                    EntryState::Failed => redoing.contains(&e.task),
                    EntryState::Merged => false,
                }
        })
    }
}

impl Supervisor<'_> {
    pub(super) fn merge_target(&self) -> Option<&str> {
        self.merge.as_ref().map(|m| m.ctx.target.as_str())
    }

    /// Starts the next waiting merge when the worker is free.
    pub(super) fn kick_merge(&mut self) {
        let Some(m) = &mut self.merge else {
            return;
        };
        if !m.kick || m.busy.is_some() || (m.waiting_outside && !m.retry_due) {
            return;
        }
        m.kick = false;
        m.retry_due = false;
        // A person may have run `batty merge --retry` meanwhile: read the file, and take its
        // lock only when there is something to start.
        let path = m.queue_path.clone();
        match MergeQueue::load(&path) {
            Ok(q) if q.next_waiting().is_none() => {
                m.cached = q;
                return;
            }
            _ => {}
        }
        let started = MergeQueue::update(&path, |q| {
            let Some(next) = q.next_waiting().map(|e| e.task) else {
                return Ok((None, q.clone()));
            };
            let entry = q.mark_merging(next)?;
            Ok((Some(entry), q.clone()))
        });
        match started {
            Ok((entry, queue)) => {
                m.cached = queue;
                if let Some(entry) = entry {
                    m.busy = Some(entry.task);
                    let _ = m.jobs.send((m.ctx.clone(), entry));
                }
            }
            Err(err) => {
                let msg = format!("merge queue: {err}");
                self.event(None, &msg);
            }
        }
    }

    pub(super) fn on_merge_result(
        &mut self,
        task: u64,
        outcome: Result<merge::MergeOutcome, merge::MergeError>,
    ) {
        let Some(m) = &mut self.merge else {
            return;
        };
        m.busy = None;
        m.kick = true;
        let target = m.ctx.target.clone();
        let max = m.max_retries;
        let summary = match &outcome {
            Ok(o) => o.summary(),
            Err(e) => e.to_string(),
        };
        let recorded = MergeQueue::update(&m.queue_path.clone(), |q| {
            let step = q.record(task, &outcome, &target, max)?;
            Ok((step, q.clone()))
        });
        let (step, queue) = match recorded {
            Ok(r) => r,
            Err(err) => {
                self.event(None, &format!("merge queue: {err}"));
                return;
            }
        };
        m.cached = queue;
        m.waiting_outside = matches!(step, NextStep::RetryLater { .. });
        if !m.waiting_outside {
            m.last_wait = None;
        }
        let agent = m
            .cached
            .get(task)
            .and_then(|e| self.agents.iter().position(|a| a.name == e.agent));
        match step {
            NextStep::Landed => {
                self.event(agent, &format!("task #{task}: {summary} onto `{target}`"));
            }
            NextStep::SendBack { message } => {
                self.event(agent, &format!("task #{task} sent back: {summary}"));
                // Only its own agent can redo it (its commits are on that branch); without a
                // live one the task goes back to the board for a person to look at.
                let Some(i) = agent.filter(|&i| self.agents[i].tracker.state() != AgentState::Dead)
                else {
                    let reason = format!("its merge failed ({summary}) and its agent is gone");
                    self.give_to_review(agent, task, &reason);
                    return;
                };
                let name = self.agents[i].name.clone();
                let statuses = self.config.supervisor.dispatch_statuses.clone();
                let now = board::now();
                let reclaimed = board::update(&self.board_dir, task, now, |t, cfg| {
                    t.status = board::working_status(cfg, &statuses).to_owned();
                    t.claimed_by = Some(name.clone());
                    t.claimed_at = Some(now);
                    Ok(())
                });
                match reclaimed {
                    Ok(_) => self.agents[i].redo.push_back((task, message)),
                    Err(err) => self.event(Some(i), &format!("reopening task #{task}: {err}")),
                }
            }
            NextStep::GiveUp { block_reason } => self.give_to_review(agent, task, &block_reason),
            NextStep::RetryNow => {}
            NextStep::RetryLater { reason } => {
                // Shown once: the queue retries every few seconds until the checkout is clean.
                if self
                    .merge
                    .as_ref()
                    .is_some_and(|m| m.last_wait.as_deref() != Some(&reason))
                {
                    self.event(agent, &format!("task #{task}: {reason}"));
                }
                if let Some(m) = &mut self.merge {
                    m.last_wait = Some(reason);
                }
            }
        }
    }

    /// Before an agent's next task: bring its worktree onto the target's tip, unless it still
    /// has work waiting in the queue (rebasing would move those commits under the queue).
    /// Returns the worktree's commit when it is known to be on the tip already.
    pub(super) fn sync_before_task(&mut self, i: usize) -> Option<String> {
        let m = self.merge.as_ref()?;
        let mut redoing: Vec<u64> = self.agents[i].redo.iter().map(|(t, _)| *t).collect();
        redoing.extend(self.agents[i].job.as_ref().map(|j| j.task));
        if m.agent_has_pending(&self.agents[i].name, &redoing) {
            return None;
        }
        // The usual case, on the dispatch path: the worktree is on its branch at the target's
        // tip (its last task fast-forwarded the target). One git call instead of five.
        let a = &self.agents[i];
        if let Some(h) = super::git::heads(&a.worktree, &m.ctx.target)
            && h.branch == format!("refs/heads/{}", a.branch)
            && h.head == h.target
        {
            return Some(h.head);
        }
        let tip = match super::git::git_tip_of(&m.ctx.repo, &m.ctx.target) {
            Ok(t) => t,
            Err(err) => {
                self.event(Some(i), &format!("reading `{}`: {err}", m.ctx.target));
                return None;
            }
        };
        let a = &self.agents[i];
        match merge::sync_agent_worktree(&a.worktree, &a.branch, &tip) {
            Ok(SyncOutcome::UpToDate) => {}
            Ok(SyncOutcome::Reset { .. }) => {
                self.event(Some(i), "worktree moved to the target tip")
            }
            Ok(SyncOutcome::Rebased { kept, .. }) => self.event(
                Some(i),
                &format!("worktree rebased onto the target tip ({kept} commit(s) kept)"),
            ),
            Ok(SyncOutcome::SkippedDirty { files }) => self.event(
                Some(i),
                &format!(
                    "worktree not synced: uncommitted changes in {}",
                    files.join(", ")
                ),
            ),
            Ok(SyncOutcome::Conflict { files }) => self.event(
                Some(i),
                &format!(
                    "worktree not synced: rebase would conflict in {}",
                    files.join(", ")
                ),
            ),
            Err(err) => self.event(Some(i), &format!("syncing the worktree: {err}")),
        }
        None
    }

    /// A task finished while no supervisor ran (its agent ran `batty task done` meanwhile)
    /// has commits on its agent's branch and no place in the queue: queue it now. One entry
    /// per agent, for its latest such task, holding everything the branch has not landed.
    pub(super) fn queue_finished_while_away(&mut self) {
        let Some(m) = &self.merge else {
            return;
        };
        let (repo, target) = (m.ctx.repo.clone(), m.ctx.target.clone());
        let done = self.board.config().done_status().to_owned();
        for i in 0..self.agents.len() {
            let Some(m) = &self.merge else {
                return;
            };
            let a = &self.agents[i];
            if m.agent_has_pending(&a.name, &[]) {
                continue;
            }
            let latest = self
                .board
                .tasks()
                .iter()
                .filter(|t| t.status() == done && t.claimed_by() == Some(a.name.as_str()))
                .filter(|t| m.cached.get(t.id()).is_none())
                .max_by_key(|t| t.completed)
                .map(|t| t.id());
            let Some(task) = latest else {
                continue;
            };
            match super::git::unmerged_count(&repo, &target, &a.branch) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(err) => {
                    let msg = format!("checking `{}` for unmerged work: {err}", a.branch);
                    self.event(Some(i), &msg);
                    continue;
                }
            }
            let base = super::git::merge_base_or_head(&a.worktree, Some(&target));
            let tip = match super::git::git_tip_of(&repo, &a.branch) {
                Ok(tip) => tip,
                Err(err) => {
                    self.event(Some(i), &format!("reading `{}`: {err}", a.branch));
                    continue;
                }
            };
            let (name, branch) = (a.name.clone(), a.branch.clone());
            let pushed = self
                .merge
                .as_mut()
                .map(|m| m.push(task, &name, &branch, &base, &tip));
            match pushed {
                Some(Ok(())) => self.event(
                    Some(i),
                    &format!("task #{task} was done while no supervisor ran; queued for merge"),
                ),
                Some(Err(err)) => self.event(Some(i), &format!("merge queue: {err}")),
                None => {}
            }
        }
    }

    /// After a crash mid-merge: clean the merge worktree and settle the interrupted entry.
    pub(super) fn recover_merge(&mut self) -> Result<(), SuperviseError> {
        let Some(m) = &mut self.merge else {
            return Ok(());
        };
        let ctx = m.ctx.clone();
        let (recovered, queue) = MergeQueue::update(&m.queue_path.clone(), |q| {
            let r = merge::recover(&ctx, q)?;
            Ok((r, q.clone()))
        })?;
        m.cached = queue;
        for r in recovered {
            let msg = format!(
                "recovered interrupted merge of task #{}: {}",
                r.task,
                r.state.as_str()
            );
            self.event(None, &msg);
        }
        Ok(())
    }
}
