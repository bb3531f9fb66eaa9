//! The supervisor's reactions to agents: state changes, dispatching tasks to idle agents,
//! verifying deliveries, reminders, auto-answers and escalation, and start-up reconciliation.

use std::io::Write;
use std::process::Stdio;
use std::time::Instant;

use crate::board;
use crate::status::AgentState;
use crate::supervisor::dispatch::{self, Job};
use crate::supervisor::tracker::Transition;

use super::driver::{
    EscalationReply, PendingAnswer, SuperviseError, Supervisor, is_same_question, transition_text,
};

impl Supervisor<'_> {
    pub(super) fn on_transition(&mut self, i: usize, tr: Transition) {
        tracing::debug!(agent = %self.agents[i].name, "{}", transition_text(&tr));
        if tr.from == AgentState::Asking && tr.to != AgentState::Asking {
            self.agents[i].answer = None;
            if self.agents[i].escalated.take().is_some() {
                let (window, name) = (self.agents[i].window.clone(), self.agents[i].name.clone());
                let _ = self.tmux.rename_window(&window, &name);
            }
        }
        match tr.to {
            AgentState::Idle => self.on_idle(i),
            AgentState::Asking => {
                let question = tr.question.unwrap_or_default();
                self.on_question(i, question);
            }
            AgentState::Dead => {
                self.event(Some(i), "agent is dead");
                // It may have finished its task just before dying: settle that first, so a
                // done task is queued for merging rather than released.
                self.reload_board();
                if let Some(job) = self.agents[i].job.take() {
                    match board::release(
                        &self.board_dir,
                        job.task,
                        Some("its agent died"),
                        board::now(),
                    ) {
                        Ok(_) => self.event(
                            Some(i),
                            &format!("task #{} released for another agent", job.task),
                        ),
                        Err(err) => {
                            self.event(Some(i), &format!("releasing task #{}: {err}", job.task))
                        }
                    }
                }
                for (task, _) in std::mem::take(&mut self.agents[i].redo) {
                    let _ =
                        board::release(&self.board_dir, task, Some("its agent died"), board::now());
                }
            }
            AgentState::Stuck => {
                let msg = format!(
                    "no output for {}; agent looks stuck",
                    humantime::format_duration(self.config.supervisor.stuck_after)
                );
                self.event_with(Some(i), &msg, true);
            }
            AgentState::Busy | AgentState::Starting => {}
        }
    }

    /// The agent waits at its prompt. If it still holds an unfinished task, remind it (up to
    /// `supervisor.max_retries` times), then give the task to review.
    fn on_idle(&mut self, i: usize) {
        let Some(job) = self.agents[i].job.clone() else {
            return;
        };
        if !job.confirmed {
            return;
        }
        // The board event may not have arrived yet: look at the file itself.
        self.reload_board();
        let Some(job) = self.agents[i].job.clone() else {
            return;
        };
        let max = self.config.supervisor.max_retries;
        if job.reminders >= max {
            let reason = format!(
                "agent {} went idle {} times without finishing it",
                self.agents[i].name,
                job.reminders + 1
            );
            self.agents[i].job = None;
            self.give_to_review(Some(i), job.task, &reason);
            return;
        }
        let Some(task) = self.board.task(job.task) else {
            return;
        };
        let text = self.agents[i]
            .adapter
            .phrase_reminder(&crate::agent::TaskMessage {
                id: task.id(),
                title: task.title().to_owned(),
                body: task.body().trim().to_owned(),
                board_path: self.board_dir.clone(),
            });
        let pane = self.agents[i].pane.clone();
        let name = self.agents[i].name.clone();
        match dispatch::deliver(&self.tmux, &pane, &name, job.task, &text) {
            Ok(()) => {
                if let Some(j) = &mut self.agents[i].job {
                    j.reminders += 1;
                    j.delivered_at = Instant::now();
                    j.confirmed = false;
                    j.enter_retried = false;
                }
                let now = Instant::now();
                if let Some(tr) = self.agents[i].tracker.on_task_delivered(now) {
                    tracing::debug!("{}", transition_text(&tr));
                }
                let n = job.reminders + 1;
                self.event(
                    Some(i),
                    &format!("reminded about task #{} ({n}/{max})", job.task),
                );
            }
            Err(err) => self.event(Some(i), &err.to_string()),
        }
    }

    fn on_question(&mut self, i: usize, question: String) {
        let first = question.lines().last().unwrap_or("").to_owned();
        if let Some(reply) = self.agents[i].adapter.answer_for(&question).cloned() {
            let grace = self.config.supervisor.answer_grace;
            self.event(
                Some(i),
                &format!(
                    "question: {first} (answering {} in {})",
                    reply.describe(),
                    humantime::format_duration(grace)
                ),
            );
            self.agents[i].answer = Some(PendingAnswer {
                question,
                reply,
                due: Instant::now() + grace,
            });
            return;
        }
        self.escalate(i, question);
    }

    /// A question no rule answers: flag the window, ring the bell, log it, and run
    /// `supervisor.escalate_command` if there is one.
    fn escalate(&mut self, i: usize, question: String) {
        let name = self.agents[i].name.clone();
        let window = self.agents[i].window.clone();
        let _ = self.tmux.rename_window(&window, &format!("{name}!"));
        self.agents[i].escalated = Some(question.clone());
        self.event_with(
            Some(i),
            &format!("needs a person: {}", question.replace('\n', " / ")),
            true,
        );
        let Some(cmd) = self.config.supervisor.escalate_command.clone() else {
            return;
        };
        let tx = self.esc_tx.clone();
        let cwd = self.project.root().to_owned();
        let env = [
            ("BATTY_PHASE", self.phase.clone()),
            ("BATTY_AGENT", name.clone()),
        ];
        std::thread::spawn(move || {
            let reply = run_escalation(&cmd, &cwd, &env, &question);
            let _ = tx.send(EscalationReply {
                agent: name,
                question,
                reply,
            });
        });
    }

    pub(super) fn on_escalation_reply(&mut self, reply: EscalationReply) {
        let Some(i) = self.agents.iter().position(|a| a.name == reply.agent) else {
            return;
        };
        let answer = match reply.reply {
            Ok(text) => text,
            Err(err) => {
                self.event(Some(i), &format!("escalate_command failed: {err}"));
                return;
            }
        };
        if self.agents[i].escalated.as_deref() != Some(reply.question.as_str()) {
            self.event(
                Some(i),
                "escalation reply arrived after the question was answered",
            );
            return;
        }
        let pane = self.agents[i].pane.clone();
        match self.tmux.send_line(&pane, &answer) {
            Ok(()) => self.event(
                Some(i),
                &format!("answered {answer:?} (from escalate_command)"),
            ),
            Err(err) => self.event(Some(i), &format!("sending the answer: {err}")),
        }
    }

    /// Sends a due auto-answer, unless the question left the screen meanwhile (a person
    /// answered it first).
    pub(super) fn check_answer(&mut self, i: usize, now: Instant) {
        let Some(pending) = self.agents[i].answer.clone() else {
            return;
        };
        if now < pending.due {
            return;
        }
        self.agents[i].answer = None;
        let pane = self.agents[i].pane.clone();
        let still_asked = match self.tmux.capture_pane(&pane) {
            Ok(screen) => {
                is_same_question(&self.agents[i].adapter.classify(&screen), &pending.question)
            }
            Err(_) => false,
        };
        if !still_asked {
            self.event(
                Some(i),
                "question answered in the pane; auto-answer dropped",
            );
            return;
        }
        let sent = match &pending.reply {
            crate::agent::Reply::Text(text) => self.tmux.send_line(&pane, text),
            crate::agent::Reply::Keys(keys) => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                self.tmux.send_keys(&pane, &keys)
            }
        };
        match sent {
            Ok(()) => {
                let q = pending.question.lines().last().unwrap_or("").to_owned();
                self.event(
                    Some(i),
                    &format!("answered {} to: {q}", pending.reply.describe()),
                );
            }
            Err(err) => self.event(Some(i), &format!("sending the answer: {err}")),
        }
    }

    /// An unconfirmed delivery past its deadline: press Enter once more, then give up and put
    /// the task back on the board.
    pub(super) fn check_delivery(&mut self, i: usize, now: Instant) {
        let timeout = self.config.supervisor.delivery_timeout;
        let Some(job) = self.agents[i].job.clone() else {
            return;
        };
        if job.delivery_deadline(timeout).is_none_or(|d| now < d) {
            return;
        }
        let pane = self.agents[i].pane.clone();
        if !job.enter_retried {
            let _ = self.tmux.send_enter(&pane);
            if let Some(j) = &mut self.agents[i].job {
                j.enter_retried = true;
                j.delivered_at = now;
            }
            self.event(
                Some(i),
                &format!("no reaction to task #{}; pressed Enter again", job.task),
            );
            return;
        }
        self.agents[i].job = None;
        self.agents[i].suspect = Some(now + 2 * timeout);
        if let Some(tr) = self.agents[i].tracker.on_delivery_abandoned(now) {
            tracing::debug!("{}", transition_text(&tr));
        }
        let released = board::release(
            &self.board_dir,
            job.task,
            Some("delivery not confirmed"),
            board::now(),
        );
        let msg = match released {
            Ok(_) => format!("task #{} not picked up by the agent; released", job.task),
            Err(err) => format!("task #{} not picked up; releasing failed: {err}", job.task),
        };
        self.event(Some(i), &msg);
    }

    /// Hands ready tasks to idle agents: a task sent back first, then the board's next.
    pub(super) fn dispatch(&mut self) {
        for i in 0..self.agents.len() {
            let a = &self.agents[i];
            let suspect = a.suspect.is_some_and(|until| Instant::now() < until);
            if a.tracker.state() != AgentState::Idle || a.job.is_some() || suspect {
                continue;
            }
            if let Some((id, note)) = self.agents[i].redo.pop_front() {
                // Reclaimed for this agent when it was sent back.
                match self.board.task(id).cloned() {
                    Some(task) => self.deliver_task(i, task, Some(note)),
                    None => self.event(Some(i), &format!("task #{id} left the board; not redone")),
                }
                continue;
            }
            let held: Vec<u64> = self
                .agents
                .iter()
                .filter_map(|a| a.job.as_ref().map(|j| j.task))
                .collect();
            let statuses = self.config.supervisor.dispatch_statuses.clone();
            // With the merge queue on, the agent starts from the target, which must already
            // hold what the task builds on.
            let candidates = dispatch::candidates(&self.board, &statuses, &held, |d| {
                self.merge.as_ref().is_none_or(|m| m.landed_or_unqueued(d))
            });
            for id in candidates {
                let name = self.agents[i].name.clone();
                match dispatch::claim(&self.board_dir, id, &name, &statuses) {
                    Ok(task) => {
                        self.deliver_task(i, task, None);
                        break;
                    }
                    Err(err) => tracing::debug!(task = id, %err, "claim lost"),
                }
            }
        }
    }

    /// Delivers a task the agent has claimed: syncs its worktree onto the target first, then
    /// pastes the message and starts verifying.
    fn deliver_task(&mut self, i: usize, task: crate::board::Task, note: Option<String>) {
        let id = task.id();
        let synced_head = self.sync_before_task(i);
        let resent = note
            .as_ref()
            .and_then(|_| self.merge.as_ref()?.failed_base(id));
        let base = match resent
            .or(synced_head)
            .map_or_else(|| super::git::git_tip(&self.agents[i].worktree), Ok)
        {
            Ok(sha) => sha,
            Err(err) => {
                self.event(Some(i), &format!("reading the branch tip: {err}"));
                String::new()
            }
        };
        let text = dispatch::message(
            &self.agents[i].adapter,
            &task,
            &self.board_dir,
            note.as_deref(),
        );
        let pane = self.agents[i].pane.clone();
        let name = self.agents[i].name.clone();
        let now = Instant::now();
        match dispatch::deliver(&self.tmux, &pane, &name, id, &text) {
            Ok(()) => {
                self.agents[i].job = Some(Job::new(&task, base, now));
                if let Some(tr) = self.agents[i].tracker.on_task_delivered(now) {
                    tracing::debug!("{}", transition_text(&tr));
                }
                let what = if note.is_some() {
                    "sent back"
                } else {
                    "delivered"
                };
                self.event(Some(i), &format!("{what} task #{id}: {}", task.title()));
            }
            Err(err) => {
                self.event(Some(i), &err.to_string());
                let _ = board::release(&self.board_dir, id, Some("delivery failed"), board::now());
                let retry = Instant::now() + 2 * self.config.supervisor.delivery_timeout;
                self.agents[i].suspect = Some(retry);
            }
        }
    }

    /// At start: adopt tasks our live agents hold on the board, release claims of agents that
    /// are gone, and recover an interrupted merge.
    pub(super) fn reconcile(&mut self) -> Result<(), SuperviseError> {
        let panes = match &self.session {
            Some(s) => self.tmux.list_panes_session(s)?,
            None => Vec::new(),
        };
        let now = Instant::now();
        for i in 0..self.agents.len() {
            let alive = panes
                .iter()
                .any(|p| p.pane_id == self.agents[i].pane && !p.dead);
            if !alive && let Some(tr) = self.agents[i].tracker.on_pane_died(now) {
                tracing::debug!("{}", transition_text(&tr));
            }
            let name = self.agents[i].name.clone();
            let held: Vec<crate::board::Task> = self
                .board
                .tasks()
                .iter()
                .filter(|t| t.claimed_by() == Some(name.as_str()))
                .filter(|t| self.held_by_us(t))
                .cloned()
                .collect();
            for (n, task) in held.into_iter().enumerate() {
                if alive && n == 0 {
                    let base = super::git::merge_base_or_head(
                        &self.agents[i].worktree,
                        self.merge_target(),
                    );
                    let mut job = Job::new(&task, base, now);
                    job.confirmed = true;
                    self.agents[i].job = Some(job);
                    self.event(Some(i), &format!("resumed task #{}", task.id()));
                } else {
                    board::release(
                        &self.board_dir,
                        task.id(),
                        Some("its agent is gone"),
                        board::now(),
                    )?;
                    self.event(
                        Some(i),
                        &format!("released task #{} (agent not running)", task.id()),
                    );
                }
            }
        }
        self.recover_merge()?;
        self.reload_board();
        self.queue_finished_while_away();
        Ok(())
    }
}

/// Runs the escalation command with the question on stdin; its stdout is the answer.
fn run_escalation(
    cmd: &str,
    cwd: &std::path::Path,
    env: &[(&str, String)],
    question: &str,
) -> Result<String, String> {
    let mut command = crate::proc::Cmd::new("sh")
        .args(["-c", cmd])
        .current_dir(cwd)
        .to_command();
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{cmd}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(question.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{cmd}`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("`{cmd}` {}: {}", out.status, err.trim()));
    }
    let answer = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    if answer.is_empty() {
        return Err(format!("`{cmd}` printed no answer"));
    }
    Ok(answer)
}
