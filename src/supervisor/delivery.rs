//! After the paste: whether the agent took it (its composer cleared, a busy marker, a busy
//! report; never the echo of the paste), Enter pressed again while the text still waits,
//! reminders after a settle time with an empty composer, and hangs interrupted.

use crate::agent::{Composer, Screen};
use crate::status::AgentState;
use crate::watch::ReportedState;

use super::agent::Job;
use super::core::Core;
use super::event::{Effect, Outcome, Time};

/// Extra Enter presses while the pasted text sits in the composer.
const MAX_ENTERS: u32 = 3;
/// Between two of them.
const ENTER_BACKOFF: Time = Time::from_millis(700);

impl Core {
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
            // Output since the capture means the agent moved on: an Enter now could land on
            // a question that appeared meanwhile and answer it with its default.
            if job.enters < MAX_ENTERS && a.adapter.enter_retries && now >= due && !a.screen_stale {
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
            if job.seen_in_composer
                && job.enters < MAX_ENTERS
                && a.adapter.enter_retries
                && a.capture_asked.is_none()
            {
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

    /// How long an attempt at `task` may take: its own `timeout:` when that is a duration,
    /// else `supervisor.task_timeout`.
    pub(super) fn task_timeout(&self, task: u64) -> Time {
        self.board
            .task(task)
            .and_then(|t| t.timeout.as_deref())
            .and_then(own_timeout)
            .unwrap_or(self.settings.task_timeout)
    }

    /// An idle agent with its task unfinished is reminded after sitting idle (with an empty
    /// composer, no busy report) for the settle time, doubled for each reminder.
    pub(super) fn reminder_due(&self, a: &super::agent::Agent, job: &Job) -> Option<Time> {
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
                    && a.adapter.enter_retries
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

    pub(super) fn remind(&mut self, now: Time, agent: &str, job: &Job, pane: String) {
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

    /// The state a report gives; a report also confirms a delivery.
    pub(super) fn job_report(&mut self, agent: &str, state: ReportedState) {
        self.delivery_from_report(agent, state);
    }
}

/// A task's own `timeout:` value, read as the config reads durations (`45m`, `1h 30m`); a
/// zero or unreadable value is no timeout of its own.
pub(super) fn own_timeout(text: &str) -> Option<Time> {
    humantime::parse_duration(text.trim())
        .ok()
        .filter(|d| !d.is_zero())
}

/// Whether text waiting in an agent's input is a message of ours for `task`: its first line,
/// or the placeholder an agent shows for a pasted block.
fn our_text(text: &str, task: u64) -> bool {
    let text = text.trim_start();
    text.starts_with(&format!("Task #{task}:")) || text.starts_with("[Pasted")
}
