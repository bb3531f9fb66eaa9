//! The supervisor's core: its whole state, one event and the time in, effects out. It performs
//! no I/O and reads no clock, so every decision is unit-tested and the seeded simulation in
//! `sim.rs` drives it through random interleavings. Agents are keyed by name.
//!
//! The concerns live in their own files as `impl Core` blocks: `work.rs` (dispatch, the task's
//! life from claim to merge, the failure budget), `life.rs` (deaths, restarts, hangs) and
//! `questions.rs` (answers and escalation).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::agent::Adapter;
use crate::board::{Board, Timestamp};
use crate::status::AgentState;

use super::agent::{Agent, Life};
use super::event::{AgentSpec, EFFECT_TIMEOUT, Effect, Event, Outcome, PaneSeen, Time};
use super::settings::Settings;

/// What became of a task's finished work in the merge queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeState {
    /// Queued (or being merged): `base..head` of `attempt` by `agent`.
    Queued {
        attempt: u32,
        agent: String,
        base: String,
        head: String,
    },
    /// On the target (`None`: there was nothing to land).
    Landed(Option<String>),
    /// Rejected: the last attempt's range, kept for a person's retry.
    Rejected {
        attempt: u32,
        agent: String,
        base: String,
        head: String,
    },
}

/// One failed attempt, for the next attempt's note and the review reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub attempt: u32,
    pub agent: String,
    pub outcome: Outcome,
    pub reason: String,
}

/// What the core remembers of a task beyond the board: its attempts and their failures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskLog {
    /// Attempts started so far (the next one is `attempts + 1`).
    pub attempts: u32,
    pub failures: Vec<Failure>,
    /// Said at the top of the next attempt's message.
    pub note: Option<String>,
    pub merge: Option<MergeState>,
    /// Given to a person; the core leaves it alone until a person moves it.
    pub in_review: bool,
    /// The latest attempt: its number, agent and base.
    pub last: Option<(u32, String, String)>,
}

/// What the driver knows at start besides the board: each task's history from the attempt
/// record and the merge queue, and the attempts that were open when the last supervisor
/// stopped.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub tasks: BTreeMap<u64, TaskLog>,
    pub open: Vec<OpenAttempt>,
    /// Each agent's latest attempt (task, attempt).
    pub last_by_agent: BTreeMap<String, (u64, u32)>,
}

/// An attempt delivered by an earlier supervisor and not ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAttempt {
    pub task: u64,
    pub attempt: u32,
    pub agent: String,
    pub base: String,
    /// The agent's pane process at delivery: the same process still running holds the task.
    pub pid: Option<u32>,
}

/// One agent as the status table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    pub name: String,
    pub state: AgentState,
    /// When the state began.
    pub since: Time,
    pub task: Option<u64>,
    pub pane: Option<String>,
    /// The pane's process, while it is known to run.
    pub pid: Option<u32>,
    pub question: Option<String>,
    /// Parked after too many restarts: why.
    pub parked: Option<String>,
}

pub struct Core {
    pub(super) settings: Settings,
    /// Wall-clock time of `Time::ZERO`, for claim expiry on the board.
    pub(super) wall_start: Timestamp,
    pub(super) board: Board,
    pub(super) agents: BTreeMap<String, Agent>,
    pub(super) tasks: BTreeMap<u64, TaskLog>,
    /// Attempts from an earlier supervisor, settled once each agent's pane is known.
    pub(super) open: Vec<OpenAttempt>,
    /// Each agent's latest attempt from the record, given to the agent when it joins.
    pub(super) last_by_agent: BTreeMap<String, (u64, u32)>,
    /// Board writes that failed for a passing reason: tried again at the time given.
    pub(super) retry_writes: Vec<(Time, super::event::BoardWrite, u32)>,
    /// Recent failures per write (how many, the last one), for the backoff.
    pub(super) write_failures: Vec<(super::event::BoardWrite, u32, Time)>,
    /// Board problems already shown (each once).
    pub(super) problems_seen: BTreeSet<String>,
    pub(super) finished: bool,
    /// The last look before finishing: `(false, asked at)` while the full read asked for is
    /// on its way, `(true, _)` once it came; `None` when something is left to do.
    pub(super) final_read: Option<(bool, Time)>,
    /// The first list of agents came.
    pub(super) started: bool,
    /// The time of the event being handled.
    pub(super) now: Time,
    /// The last board write went out then.
    pub(super) last_write: Option<Time>,
    /// The last write of each task (its effect may not be seen on the board yet).
    pub(super) written: BTreeMap<u64, Time>,
    pub(super) out: Vec<Effect>,
}

impl Core {
    pub fn new(settings: Settings, board: Board, history: History, wall_start: Timestamp) -> Core {
        Core {
            settings,
            wall_start,
            board,
            agents: BTreeMap::new(),
            tasks: history.tasks,
            open: history.open,
            last_by_agent: history.last_by_agent,
            retry_writes: Vec::new(),
            write_failures: Vec::new(),
            problems_seen: BTreeSet::new(),
            finished: false,
            final_read: None,
            started: false,
            now: Time::ZERO,
            last_write: None,
            written: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    /// Takes one event at `now` and returns what to do.
    pub fn handle(&mut self, now: Time, event: Event) -> Vec<Effect> {
        self.now = now;
        match event {
            Event::Agents { agents, panes } => self.on_agents(now, agents, panes),
            Event::Panes(panes) => self.on_panes(now, &panes),
            Event::Exited {
                agent,
                pid,
                status,
                last_screen,
            } => self.on_exited(now, &agent, pid, status, &last_screen),
            Event::Output { agent } => self.on_output(now, &agent),
            Event::Prompt { agent } => self.on_prompt(now, &agent),
            Event::Screen { agent, seq, screen } => self.on_screen(now, &agent, seq, screen),
            Event::Report { agent, state, note } => self.on_report(now, &agent, state, note),
            Event::Board(board) => {
                if let Some((seen, _)) = &mut self.final_read {
                    *seen = true;
                }
                self.board = board;
                self.board_changed(now);
            }
            Event::TaskFiles(reads) => {
                self.board.apply_reads(reads);
                self.board_changed(now);
            }
            Event::Claimed {
                agent,
                task,
                result,
            } => self.on_claimed(now, &agent, task, result),
            Event::Prepared {
                agent,
                task,
                result,
            } => self.on_prepared(now, &agent, task, result),
            Event::Delivered {
                agent,
                task,
                result,
            } => self.on_delivered(now, &agent, task, result),
            Event::Queued { task, result } => self.on_queued(now, task, result),
            Event::Merge { task, verdict } => self.on_merge(now, task, verdict),
            Event::WriteFailed { write, reason } => self.on_write_failed(now, write, reason),
            Event::Respawned { agent, result } => self.on_respawned(now, &agent, result),
            Event::EscalationReply {
                agent,
                question,
                reply,
            } => self.on_escalation_reply(now, &agent, &question, reply),
            Event::Config(settings) => self.on_config(now, *settings),
            Event::Tick => {}
        }
        self.on_time(now);
        self.dispatch(now);
        self.check_finished(now);
        std::mem::take(&mut self.out)
    }

    /// The next moment the core needs a [`Event::Tick`] even if nothing happens.
    pub fn next_wake(&self) -> Option<Time> {
        let s = &self.settings;
        let mut wake: Vec<Time> = Vec::new();
        for a in self.agents.values() {
            match &a.life {
                Life::Dead { restart_at, .. } => wake.push(*restart_at),
                Life::Respawning { since } => wake.push(*since + EFFECT_TIMEOUT),
                Life::Alive { .. } => {}
                Life::Unknown | Life::Parked { .. } => continue,
            }
            if let Some(since) = a.text_waiting_since
                && a.job.is_none()
            {
                wake.push(a.last_output.unwrap_or(since).max(since) + s.stuck_after);
            }
            if a.job.is_none() && a.step.is_none() {
                match a.hang_interrupt {
                    Some(t) => wake.push(t + s.interrupt_grace),
                    None if matches!(
                        a.state,
                        AgentState::Busy | AgentState::Starting | AgentState::Stuck
                    ) =>
                    {
                        let quiet = a.last_output.unwrap_or(a.since).max(a.since);
                        wake.push(quiet + s.stuck_after);
                    }
                    None => {}
                }
            }
            if !a.alive() {
                continue;
            }
            if let Some(t) = a.capture_asked {
                wake.push(t + EFFECT_TIMEOUT);
            } else if a.screen_stale
                && let Some(t) = a.last_output
            {
                wake.push(t + s.silence);
            }
            if let Some(step) = &a.step {
                wake.push(step.since() + EFFECT_TIMEOUT);
            }
            if let Some(q) = &a.question
                && let Some((_, due)) = &q.answer
                && !q.verifying
            {
                wake.push(*due);
            }
            if let Some(t) = a.suspect_until {
                wake.push(t);
            }
            if let Some(job) = &a.job {
                wake.extend(self.job_deadlines(a, job));
            }
        }
        wake.extend(self.retry_writes.iter().map(|(t, _, _)| *t));
        if s.exit_when_done
            && !self.finished
            && let Some(t) = self.last_write
        {
            let settle = t + Time::from_secs(1);
            if settle > self.now {
                wake.push(settle);
            }
        }
        wake.into_iter().min()
    }

    /// Every agent as the status table shows it, by name.
    pub fn agents(&self) -> Vec<AgentView> {
        self.agents
            .values()
            .map(|a| AgentView {
                name: a.name().to_owned(),
                state: match a.life {
                    Life::Alive { .. } | Life::Unknown => a.state,
                    _ => AgentState::Dead,
                },
                since: a.since,
                task: a.task(),
                pane: a.pane().map(str::to_owned),
                pid: a.pid(),
                question: a.question.as_ref().map(|q| q.text.clone()),
                parked: match &a.life {
                    Life::Parked { reason } => Some(reason.clone()),
                    _ => None,
                },
            })
            .collect()
    }

    pub fn board(&self) -> &Board {
        &self.board
    }

    /// The task's history as the core keeps it.
    pub fn task_log(&self, task: u64) -> Option<&TaskLog> {
        self.tasks.get(&task)
    }

    /// Tasks whose work is on the target.
    pub fn merged(&self) -> usize {
        self.tasks
            .values()
            .filter(|t| matches!(t.merge, Some(MergeState::Landed(Some(_)))))
            .count()
    }

    /// `--exit-when-done` found nothing left to do (and [`Effect::Finish`] went out).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub(super) fn log(&mut self, agent: Option<&str>, text: impl Into<String>) {
        self.out.push(Effect::Log {
            agent: agent.map(str::to_owned),
            text: text.into(),
            bell: false,
        });
    }

    pub(super) fn alert(&mut self, agent: Option<&str>, text: impl Into<String>) {
        self.out.push(Effect::Log {
            agent: agent.map(str::to_owned),
            text: text.into(),
            bell: true,
        });
    }

    /// The board's idea of now, for claim expiry.
    pub(super) fn wall(&self, now: Time) -> Timestamp {
        self.wall_start + chrono::Duration::from_std(now).unwrap_or_default()
    }

    /// The run state's agents and their panes: new agents join, missing ones leave (their
    /// tasks go back to the board), and each agent's pane is taken from tmux.
    fn on_agents(&mut self, now: Time, specs: Vec<AgentSpec>, panes: Vec<PaneSeen>) {
        let names: BTreeSet<String> = specs.iter().map(|s| s.name.clone()).collect();
        let gone: Vec<String> = self
            .agents
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            self.remove_agent(now, &name);
        }
        for spec in specs {
            let Some(adapter) = self.settings.adapter(&spec.kind).cloned() else {
                self.log(
                    Some(&spec.name),
                    format!("unknown agent kind `{}`; not supervised", spec.kind),
                );
                continue;
            };
            match self.agents.get_mut(&spec.name) {
                Some(a) => {
                    a.adapter = adapter;
                    a.spec = spec;
                }
                None => {
                    let name = spec.name.clone();
                    let mut agent = Agent::new(spec, adapter, now);
                    agent.last_attempt = self.last_by_agent.get(&name).copied();
                    self.agents.insert(name, agent);
                }
            }
        }
        // A person's moves of tasks in review come first: they reset those tasks' budgets.
        let done = self.board.config().done_status().to_owned();
        self.person_moves(now, &done);
        self.on_panes(now, &panes);
        self.settle_open_attempts(now);
        if !self.started {
            self.started = true;
            self.unsettled_rejections(
                now,
                "its merge was rejected before the supervisor restarted (see `batty merge --list`)",
            );
            self.done_while_away();
        }
        self.board_changed(now);
    }

    fn remove_agent(&mut self, now: Time, name: &str) {
        let Some(mut a) = self.agents.remove(name) else {
            return;
        };
        self.log(Some(name), "agent removed");
        let tasks: Vec<u64> = a.bound_tasks().collect();
        if let Some(job) = a.job.take() {
            self.end_attempt(now, name, &job, Outcome::Released, None);
        }
        for task in tasks {
            self.write(super::event::BoardWrite::Release {
                task,
                agent: name.to_owned(),
                reason: "its agent was removed".into(),
            });
        }
    }

    /// A listing of the agents' panes: a pane seen alive for the first time (or a new one)
    /// starts the agent; a pane gone or dead is a death.
    fn on_panes(&mut self, now: Time, panes: &[PaneSeen]) {
        let names: Vec<String> = self.agents.keys().cloned().collect();
        for name in names {
            let seen = panes.iter().find(|p| p.agent == name);
            let Some(a) = self.agents.get_mut(&name) else {
                continue;
            };
            match (seen, &a.life) {
                (Some(p), Life::Alive { pane, pid })
                    if !p.dead && (*pane != p.pane || (p.pid.is_some() && *pid != p.pid)) =>
                {
                    // A new process in a (maybe new) pane that we did not start: `batty
                    // work` repaired the window.
                    let old = pid.unwrap_or(0);
                    self.on_exited(now, &name, old, None, &[]);
                    self.agent_started(now, &name, p.pane.clone(), p.pid);
                }
                (Some(p), Life::Alive { .. }) if !p.dead => {}
                (Some(p), Life::Alive { pid, .. }) => {
                    let pid = pid.or(p.pid).unwrap_or(0);
                    self.on_exited(now, &name, pid, p.exit_status, &p.last_screen);
                }
                (None, Life::Alive { pid, .. }) => {
                    let pid = pid.unwrap_or(0);
                    self.on_exited(now, &name, pid, None, &[]);
                }
                (Some(p), Life::Unknown) if !p.dead => {
                    self.agent_started(now, &name, p.pane.clone(), p.pid);
                }
                (Some(p), Life::Dead { .. } | Life::Respawning { .. }) if !p.dead => {
                    // Restarted from outside (`batty work`), or our respawn's answer is late.
                    self.agent_started(now, &name, p.pane.clone(), p.pid);
                }
                (Some(p), Life::Unknown) => {
                    // Dead before we ever saw it run: restart it like any dead agent.
                    let _ = p;
                    self.mark_dead(now, &name, None);
                }
                (None, Life::Unknown) => {
                    // No window yet: `batty work` is still making it.
                }
                _ => {}
            }
        }
    }

    /// Deadlines and settings changed by a config edit.
    fn on_config(&mut self, _now: Time, settings: Settings) {
        for a in self.agents.values_mut() {
            if let Some(adapter) = settings.adapter(&a.spec.kind) {
                a.adapter = Arc::clone(adapter);
            }
        }
        self.settings = settings;
        self.log(None, "configuration reloaded");
    }

    /// Board problems, each shown once.
    pub(super) fn show_problems(&mut self) {
        let problems: Vec<String> = self
            .board
            .problems()
            .iter()
            .map(|p| crate::text::one_line(&p.to_string()).into_owned())
            .collect();
        for p in problems {
            if self.problems_seen.insert(p.clone()) {
                self.log(None, p);
            }
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The adapter of an agent (for phrasing, answers, reading its screen).
    pub fn adapter_of(&self, agent: &str) -> Option<Arc<Adapter>> {
        self.agents.get(agent).map(|a| Arc::clone(&a.adapter))
    }
}
