//! Agents' lives in the core: a process that ends is a death (whatever the cause), a dead
//! agent is restarted in place after a backoff, an agent restarted too often is parked for a
//! person; and what each agent prints, shows and reports, turned into its state.

use crate::agent::{Composer, Screen};
use crate::status::AgentState;
use crate::watch::ReportedState;

use super::agent::{Job, Life};
use super::core::Core;
use super::event::{BoardWrite, EFFECT_TIMEOUT, Effect, Outcome, PaneSeen, Time};

/// The longest wait before a restart, however many came before.
const MAX_BACKOFF: Time = Time::from_secs(60);

/// Screen lines of a dead agent kept for its task's next attempt, and their width.
const SCREEN_LINES: usize = 8;
const SCREEN_WIDTH: usize = 200;

/// A dead pane's last lines as the next attempt's note shows them: what the agent showed
/// after the echo of the message of `task` (whose last line names `batty task done <id>`;
/// the message is in the note already, and an agent would take its lines for a second
/// message), non-empty, without tmux's own `Pane is dead` line, control characters escaped,
/// each cut to a width.
pub(super) fn tidy_screen(lines: &[String], task: Option<u64>) -> Vec<String> {
    let mut own: Vec<&str> = lines.iter().map(String::as_str).collect();
    if let Some(id) = task {
        let marker = format!("task done {id}`");
        if let Some(i) = own.iter().rposition(|l| l.contains(&marker)) {
            // What the agent printed before the message's last line ended stays.
            let line = own[i];
            let rest = line[line.rfind(&marker).map_or(0, |at| at + marker.len())..]
                .trim_start_matches('.');
            own = std::iter::once(rest)
                .chain(own[i + 1..].iter().copied())
                .collect();
        }
    }
    let kept: Vec<String> = own
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Pane is dead"))
        .map(|l| {
            let l = crate::text::one_line(l);
            match l.char_indices().nth(SCREEN_WIDTH) {
                Some((cut, _)) => format!("{}…", &l[..cut]),
                None => l.into_owned(),
            }
        })
        .collect();
    kept[kept.len().saturating_sub(SCREEN_LINES)..].to_vec()
}

impl Core {
    /// A pane's process ended. `pid` 0: whichever process the pane runs. `screen`: its last
    /// lines, when the driver could read them.
    pub(super) fn on_exited(
        &mut self,
        now: Time,
        agent: &str,
        pid: u32,
        status: Option<i32>,
        screen: &[String],
    ) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let current = match &a.life {
            Life::Alive { pid: p, .. } => *p,
            _ => return,
        };
        if pid != 0 && current.is_some_and(|c| c != pid) {
            return; // an earlier process of a pane restarted since
        }
        let task = a.job.as_ref().map(|j| j.task);
        a.last_screen = tidy_screen(screen, task);
        self.mark_dead(now, agent, status);
    }

    /// The agent is dead: its task goes to its next attempt, and it is restarted after a
    /// backoff unless it was restarted too often lately.
    pub(super) fn mark_dead(&mut self, now: Time, agent: &str, status: Option<i32>) {
        let s = &self.settings;
        let (window, max) = (s.restart_window, s.max_restarts);
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        a.restarts.retain(|t| now.saturating_sub(*t) < window);
        let recent = a.restarts.len() as u32;
        let escalated = a.question.as_ref().is_some_and(|q| q.escalated);
        a.question = None;
        a.capture_asked = None;
        a.set_state(now, AgentState::Dead);
        let step = a.step.take();
        let parked = recent >= max;
        a.life = if parked {
            Life::Parked {
                reason: format!(
                    "it died {} times within {}",
                    recent + 1,
                    humantime::format_duration(window)
                ),
            }
        } else {
            let wait =
                (self.settings.restart_backoff * 2u32.saturating_pow(recent)).min(MAX_BACKOFF);
            Life::Dead {
                since: now,
                restart_at: now + wait,
            }
        };
        let exit = status
            .map(|s| format!(" (exit status {s})"))
            .unwrap_or_default();
        self.alert(Some(agent), format!("agent process exited{exit}"));
        if escalated {
            self.out.push(Effect::Unflag {
                agent: agent.to_owned(),
            });
        }
        if let Some(step) = step {
            // Not delivered yet: the task goes back, not counted.
            let task = step.task();
            self.step_dropped(&step, agent, "its agent died before it got it");
            if !matches!(step, super::agent::Step::Claiming { .. }) {
                self.write(BoardWrite::Release {
                    task,
                    agent: agent.to_owned(),
                    reason: "its agent died before it got it".into(),
                });
            }
        }
        if self.agents[agent].job.is_some() {
            self.fail_attempt(
                now,
                agent,
                Outcome::AgentDied,
                format!("the agent's process exited{exit}"),
            );
        }
        if parked {
            self.park(agent);
        }
    }

    /// Parked: its tasks go back to the board, its window is flagged and a person is asked.
    fn park(&mut self, agent: &str) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let reason = match &a.life {
            Life::Parked { reason } => reason.clone(),
            _ => return,
        };
        let redo: Vec<u64> = a.redo.drain(..).map(|r| r.task).collect();
        for task in redo {
            self.write(BoardWrite::Release {
                task,
                agent: agent.to_owned(),
                reason: format!("its agent `{agent}` is parked"),
            });
        }
        self.out.push(Effect::Escalate {
            agent: agent.to_owned(),
            question: format!("agent `{agent}` is parked: {reason}; restart it with `batty work`"),
        });
        self.alert(
            Some(agent),
            format!("parked: {reason}; not restarted again"),
        );
    }

    /// Restarts an agent now (its process is killed first): a hang, or its time came.
    pub(super) fn restart(&mut self, now: Time, agent: &str, why: &str) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if matches!(a.life, Life::Parked { .. } | Life::Respawning { .. }) {
            return;
        }
        a.restarts.push(now);
        a.life = Life::Respawning { since: now };
        a.set_state(now, AgentState::Dead);
        a.question = None;
        a.step = None;
        a.capture_asked = None;
        // A read of its screen asked for earlier in this turn would read the pane being
        // replaced: dropped.
        self.out
            .retain(|e| !matches!(e, Effect::Capture { agent: who, .. } if who == agent));
        self.out.push(Effect::Respawn {
            agent: agent.to_owned(),
        });
        self.log(Some(agent), format!("restarting the agent: {why}"));
    }

    pub(super) fn on_respawned(
        &mut self,
        now: Time,
        agent: &str,
        result: Result<PaneSeen, String>,
    ) {
        let Some(a) = self.agents.get(agent) else {
            return;
        };
        if !matches!(a.life, Life::Respawning { .. }) {
            return;
        }
        match result {
            Ok(p) if !p.dead => {
                self.agent_started(now, agent, p.pane, p.pid);
                self.log(Some(agent), "agent restarted");
            }
            Ok(p) => self.mark_dead(now, agent, p.exit_status),
            Err(reason) => {
                self.log(
                    Some(agent),
                    format!("restarting the agent failed: {reason}"),
                );
                self.mark_dead(now, agent, None);
            }
        }
    }

    /// A (new) process runs the agent in `pane`.
    pub(super) fn agent_started(&mut self, now: Time, agent: &str, pane: String, pid: Option<u32>) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.started(now, pane, pid);
        }
        self.settle_open_attempts(now);
    }

    /// Attempts an earlier supervisor delivered and never saw end, once the agent's process
    /// is known: the same process still holds its task; a new process means the agent was
    /// restarted (the attempt failed, the agent continues from its commits); a task finished
    /// meanwhile is queued for merging; one released meanwhile just ends.
    pub(super) fn settle_open_attempts(&mut self, now: Time) {
        let open = std::mem::take(&mut self.open);
        let done = self.board.config().done_status().to_owned();
        let working =
            crate::board::working_status(self.board.config(), &self.settings.dispatch_statuses)
                .to_owned();
        for o in open {
            let Some(life) = self.agents.get(&o.agent).map(|a| a.life.clone()) else {
                continue; // the agent is gone: its claims are released as orphans
            };
            if matches!(life, Life::Unknown) {
                self.open.push(o);
                continue;
            }
            let job = Job::new(o.task, o.attempt, o.base.clone(), now);
            let task = self.board.task(o.task);
            let status = task.map(|t| t.status().to_owned());
            // A save that only dropped the claim (a stale buffer) does not take it away.
            let unclaimed = task.is_some_and(|t| t.claimed_by().is_none());
            let ours = unclaimed || task.is_some_and(|t| t.claimed_by() == Some(o.agent.as_str()));
            if unclaimed && status.as_deref() == Some(working.as_str()) {
                self.write(BoardWrite::RestoreClaim {
                    task: o.task,
                    agent: o.agent.clone(),
                });
            }
            if status.as_deref() == Some(done.as_str()) && ours {
                self.log(
                    Some(&o.agent),
                    format!("task #{} was done while no supervisor ran", o.task),
                );
                self.end_attempt(now, &o.agent, &job, Outcome::Done, None);
                self.queue_merge(&o.agent, o.task, o.attempt, o.base.clone(), None);
                continue;
            }
            if !(ours && status.as_deref() == Some(working.as_str())) {
                self.end_attempt(
                    now,
                    &o.agent,
                    &job,
                    Outcome::Released,
                    Some("released while no supervisor ran".into()),
                );
                continue;
            }
            let a = self.agents.get_mut(&o.agent).expect("looked up above");
            let same = a.alive() && o.pid.is_some() && a.pid() == o.pid;
            // Whether the paste was taken before the last supervisor stopped is not known:
            // its text still in the composer gets its Enter, an empty prompt counts as taken.
            let mut job = job;
            job.output_since = true;
            a.job = Some(job);
            a.last_attempt = Some((o.task, o.attempt));
            if same {
                a.set_state(now, AgentState::Busy);
                self.log(Some(&o.agent), format!("resumed task #{}", o.task));
            } else {
                self.fail_attempt(
                    now,
                    &o.agent,
                    Outcome::Restarted,
                    "the agent was restarted while it held the task".into(),
                );
            }
        }
    }

    /// Everything that is due at `now`: screens to read, answers, restarts, job deadlines,
    /// board writes to try again, steps that never got their answer.
    pub(super) fn on_time(&mut self, now: Time) {
        let silence = self.settings.silence;
        let names: Vec<String> = self.agents.keys().cloned().collect();
        for name in &names {
            let a = self.agents.get_mut(name).expect("name from the map");
            match a.life.clone() {
                Life::Dead { restart_at, .. } if now >= restart_at => {
                    self.restart(now, name, "it died");
                    continue;
                }
                Life::Respawning { since } if now >= since + EFFECT_TIMEOUT => {
                    self.log(Some(name), "the restart did not answer; trying again");
                    self.mark_dead(now, name, None);
                    continue;
                }
                Life::Alive { .. } => {}
                _ => continue,
            }
            if a.capture_asked.is_some_and(|t| now >= t + EFFECT_TIMEOUT) {
                a.capture_asked = None;
            }
            if a.suspect_until.is_some_and(|t| now >= t) {
                a.suspect_until = None;
            }
            if a.step
                .as_ref()
                .is_some_and(|st| now >= st.since() + EFFECT_TIMEOUT)
            {
                self.abandon_step(now, name, "no answer from the driver");
            }
            let a = self.agents.get_mut(name).expect("name from the map");
            let quiet = a.last_output.is_some_and(|t| now >= t + silence);
            if a.screen_stale && quiet && a.capture_asked.is_none() {
                self.ask_capture(now, name);
            }
            self.question_timers(now, name);
            self.idle_hang(now, name);
        }
        self.job_timers(now);
        self.retry_due_writes(now);
    }

    /// An agent that holds no task but never comes back to its prompt (busy, starting or
    /// stuck with no output for `stuck_after`) is interrupted, then restarted: it would
    /// never take work again.
    fn idle_hang(&mut self, now: Time, agent: &str) {
        let s = &self.settings;
        let (stuck_after, grace) = (s.stuck_after, s.interrupt_grace);
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        // Text left in its input that nobody sends (no output since): a leftover paste the
        // next task would be glued onto.
        if let Some(since) = a.text_waiting_since {
            let quiet = a.last_output.unwrap_or(since).max(since);
            if a.job.is_none() && now >= quiet + stuck_after {
                a.text_waiting_since = None;
                self.restart(now, agent, "its input holds text nobody sends");
                return;
            }
        }
        let hanging = a.job.is_none()
            && a.step.is_none()
            && a.question.is_none()
            && matches!(
                a.state,
                AgentState::Busy | AgentState::Starting | AgentState::Stuck
            );
        if !hanging {
            a.hang_interrupt = None;
            return;
        }
        let Some(pane) = a.pane().map(str::to_owned) else {
            return;
        };
        match a.hang_interrupt {
            Some(t) if now >= t + grace => {
                a.hang_interrupt = None;
                self.restart(now, agent, "it stays busy with no task and no output");
            }
            Some(_) => {}
            None => {
                let quiet = a.last_output.unwrap_or(a.since).max(a.since);
                if now >= quiet + stuck_after {
                    a.hang_interrupt = Some(now);
                    a.set_state(now, AgentState::Stuck);
                    a.screen_stale = true;
                    a.last_output = Some(now);
                    let keys = a.adapter.interrupt.clone();
                    self.out.push(Effect::Keys {
                        agent: agent.to_owned(),
                        pane,
                        keys,
                    });
                    self.alert(
                        Some(agent),
                        format!(
                            "no output for {} and no task; interrupted",
                            humantime::format_duration(stuck_after)
                        ),
                    );
                }
            }
        }
    }

    pub(super) fn ask_capture(&mut self, now: Time, agent: &str) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        // Only a live pane is read (one being respawned, say by the effect just before, is not).
        let Some(pane) = a.pane().filter(|_| a.alive()).map(str::to_owned) else {
            return;
        };
        if a.capture_asked.is_some() {
            return; // the screen on its way is fresh enough
        }
        a.capture_asked = Some(now);
        a.capture_seq += 1;
        let seq = a.capture_seq;
        self.out.push(Effect::Capture {
            agent: agent.to_owned(),
            pane,
            seq,
        });
    }

    pub(super) fn on_output(&mut self, now: Time, agent: &str) {
        if let Some(a) = self.agents.get_mut(agent)
            && a.alive()
        {
            a.on_output(now);
        }
    }

    /// The agent's output ended on its prompt. One holding no task and not known idle (it
    /// finished its task, or is starting) has its screen read now instead of after the
    /// silence: the screen still decides, the wait is what goes. One holding a task waits as
    /// before, so that a prompt shown mid-task never hurries a reminder; its screen is read
    /// at once when the task ends (often the prompt shows before the board says done).
    /// One that reports its state itself waits for its report (the silence still brings a
    /// look if none comes).
    pub(super) fn on_prompt(&mut self, now: Time, agent: &str) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if !a.alive() {
            return;
        }
        a.at_prompt = true;
        self.look_if_at_prompt(now, agent);
    }

    /// Reads the screen of an agent whose output ended on its prompt, if it is free now.
    pub(super) fn look_if_at_prompt(&mut self, now: Time, agent: &str) {
        let free = self.agents.get(agent).is_some_and(|a| {
            a.alive()
                && a.at_prompt
                && !a.reports
                && a.screen_stale
                && a.job.is_none()
                && a.step.is_none()
                && a.question.is_none()
                && a.state != AgentState::Idle
        });
        if free {
            self.ask_capture(now, agent);
        }
    }

    /// A screen the core asked for: the agent's state, the delivery, questions.
    pub(super) fn on_screen(&mut self, now: Time, agent: &str, seq: u64, screen: Screen) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        // Only a screen of this process counts (a restart forgets older ones).
        if !a.alive() || seq <= a.epoch_seq {
            return;
        }
        let asked = if seq == a.capture_seq {
            a.capture_asked.take()
        } else {
            a.capture_asked
        };
        // Output after the capture was asked for makes this screen old already.
        a.screen_stale = a.last_output.zip(asked).is_some_and(|(out, ask)| out > ask);
        self.delivery_from_screen(now, agent, &screen);
        if let Screen::Question(q) = &screen {
            self.on_question(now, agent, q.clone(), true);
            return;
        }
        self.question_gone(now, agent);
        let a = self.agents.get_mut(agent).expect("looked up above");
        if let Some(state) = a.state_from_screen(&screen) {
            a.set_state(now, state);
        }
        let text = matches!(
            screen,
            Screen::Ready {
                composer: Composer::Text(_)
            }
        );
        if !text || a.job.is_some() {
            a.text_waiting_since = None;
        } else if a.text_waiting_since.is_none() {
            a.text_waiting_since = Some(now);
        }
        if a.state == AgentState::Idle {
            match screen {
                Screen::Ready {
                    composer: Composer::Empty | Composer::Unknown,
                } => {
                    a.idle_since.get_or_insert(now);
                }
                _ => a.idle_since = None,
            }
        }
    }

    /// The agent said what it is doing.
    pub(super) fn on_report(
        &mut self,
        now: Time,
        agent: &str,
        state: ReportedState,
        note: Option<String>,
    ) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if !a.alive() {
            return;
        }
        a.report = Some((state, now));
        a.reports = true;
        self.job_report(agent, state);
        match state {
            ReportedState::Asking => {
                let q = note.unwrap_or_else(|| "(asked by the agent)".into());
                self.on_question(now, agent, q, false);
            }
            ReportedState::Busy | ReportedState::Idle => {
                self.question_gone(now, agent);
                let a = self.agents.get_mut(agent).expect("looked up above");
                if state == ReportedState::Idle {
                    a.set_state(now, AgentState::Idle);
                    a.idle_since = Some(now);
                } else {
                    a.set_state(now, AgentState::Busy);
                }
            }
        }
    }
}
