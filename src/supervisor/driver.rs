//! The supervisor: one event loop that owns all run state. A notify watcher (pty logs, agent
//! reports, the board's task folder, the pane-died marker) and the merge worker feed a single
//! `crossbeam_channel::select!`; timers come from the agents' state machines. Nothing polls
//! tmux while agents are quiet.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};
use notify::Watcher;

use crate::agent::{Adapter, Screen};
use crate::board::{self, Board};
use crate::config::Config;
use crate::paths::Project;
use crate::status::{AgentState, AgentStatus, PhaseStatus};
use crate::supervisor::dispatch::Job;
use crate::supervisor::tracker::{Timing, Tracker, Transition};
use crate::tmux::Tmux;
use crate::watch::report::ReportReader;
use crate::watch::tail::LogTail;

use super::merge::MergeDriver;

/// Files are re-read this often even without a notify event, in case the kernel's event queue
/// overflowed; cheap (one `read` per file that returns nothing).
const SAFETY_REREAD: Duration = Duration::from_secs(3);

/// While agents stream output, watcher events pile up this long between turns: a burst
/// costs one read per agent per window instead of a wake-up per write the log writer makes
/// (most of the supervisor's CPU per MB of output). Anything else arriving meanwhile, such
/// as a board change, waits at most this long.
const OUTPUT_BATCH: Duration = Duration::from_millis(4);

#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("another supervisor is running for phase `{phase}` (lock {path})")]
    Locked { phase: String, path: PathBuf },
    #[error("no agents recorded for phase `{phase}` in {path}")]
    NoRun { phase: String, path: PathBuf },
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    #[error(transparent)]
    Board(#[from] board::BoardError),
    #[error(transparent)]
    Tmux(#[from] crate::tmux::TmuxError),
    #[error(transparent)]
    Session(#[from] crate::session::tag::SessionError),
    #[error(transparent)]
    Merge(#[from] crate::merge::MergeError),
    #[error(transparent)]
    Run(#[from] crate::session::RunStateError),
}

/// What `batty supervise` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub phase: String,
    /// End the session once every task is terminal and every agent idle.
    pub exit_when_done: bool,
}

/// Where the supervisor shows what it does (its own pane); it never prints itself.
pub trait View {
    /// The agents and counts changed.
    fn status(&mut self, phase: &str, status: &PhaseStatus, rows: &[Row]);
    /// Something happened; `bell` when a person is needed.
    fn event(&mut self, agent: Option<&str>, message: &str, bell: bool);
}

/// One agent as the status table shows it.
#[derive(Debug, Clone)]
pub struct Row {
    pub agent: String,
    pub state: AgentState,
    pub task: Option<u64>,
    pub window: String,
    pub pane: String,
    pub question: Option<String>,
}

/// How the run ended (only with `--exit-when-done`).
#[derive(Debug, Clone)]
pub struct Summary {
    pub done: usize,
    pub total: usize,
    pub merged: usize,
    pub review: Vec<u64>,
}

/// An auto-answer waiting out the grace period in which a person may answer first.
#[derive(Debug, Clone)]
pub(super) struct PendingAnswer {
    pub question: String,
    pub reply: crate::agent::Reply,
    pub due: Instant,
}

pub(super) struct Agent {
    pub name: String,
    pub window: String,
    pub pane: String,
    pub worktree: PathBuf,
    pub branch: String,
    pub adapter: Adapter,
    pub tail: LogTail,
    pub reports: ReportReader,
    pub tracker: Tracker,
    pub job: Option<Job>,
    /// Tasks sent back (failed merges) to deliver again, with the reason, before new work.
    pub redo: std::collections::VecDeque<(u64, String)>,
    pub answer: Option<PendingAnswer>,
    /// The question escalated to a person, while it is on screen.
    pub escalated: Option<String>,
    /// Delivery to this agent failed: no new task until it shows output again or this
    /// moment passes (one lost paste must not park an idle, silent agent for good).
    pub suspect: Option<Instant>,
    pub events: PathBuf,
}

/// A reply from `supervisor.escalate_command`.
pub(super) struct EscalationReply {
    pub agent: String,
    pub question: String,
    pub reply: Result<String, String>,
}

pub(super) struct Supervisor<'v> {
    pub project: Project,
    pub phase: String,
    pub config: Config,
    pub tmux: Tmux,
    pub session: Option<String>,
    pub board_dir: PathBuf,
    pub tasks_dir: PathBuf,
    pub board: Board,
    pub agents: Vec<Agent>,
    pub merge: Option<MergeDriver>,
    pub view: &'v mut dyn View,
    pub esc_tx: Sender<EscalationReply>,
    pub died_marker: PathBuf,
    /// Without the pane-died hook, deaths are found by listing panes on the safety timer.
    pub poll_panes: bool,
    pub status_path: PathBuf,
    pub last_status: Option<PhaseStatus>,
    pub last_bar: String,
    pub problems_seen: BTreeSet<String>,
    pub exit_when_done: bool,
    pub board_mtime: Option<std::time::SystemTime>,
    pub batty_exe: PathBuf,
    pub timing: Timing,
    pub run_state_path: PathBuf,
}

/// `batty work` creates the supervisor's window before it records the agents: wait for them.
fn wait_for_run_state(
    project: &Project,
    phase: &str,
) -> Result<crate::session::RunState, SuperviseError> {
    let path = project.run_state(phase);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let run = crate::session::RunState::load(&path)?;
        if let Some(run) = run.filter(|r| !r.active().is_empty()) {
            return Ok(run);
        }
        if Instant::now() > deadline {
            return Err(SuperviseError::NoRun {
                path,
                phase: phase.to_owned(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The supervisor's view of one agent from its run-state record; `None` while the record has
/// no window yet.
pub(super) fn new_agent(
    project: &Project,
    phase: &str,
    config: &Config,
    batty_exe: &Path,
    timing: Timing,
    rec: &crate::session::AgentRecord,
) -> Result<Option<Agent>, SuperviseError> {
    let (Some(window), Some(pane)) = (rec.window_id.clone(), rec.executor_pane.clone()) else {
        return Ok(None);
    };
    let mut adapter = crate::agent::resolve(&rec.kind, config, batty_exe)?;
    if crate::agent::recorded_unattended(&rec.extra) {
        adapter = adapter.with_unattended();
    }
    let pty = project.pty_log(phase, &rec.name);
    // Only what the agent prints from now on matters; its screen is read once anyway.
    let offset = std::fs::metadata(&pty).map(|m| m.len()).unwrap_or(0);
    Ok(Some(Agent {
        name: rec.name.clone(),
        window,
        pane,
        worktree: rec.worktree.clone(),
        branch: rec.branch.clone(),
        adapter,
        tail: LogTail::new(pty, offset),
        reports: ReportReader::at_end(project.report_file(phase, &rec.name)),
        tracker: Tracker::new(Instant::now(), timing),
        job: None,
        redo: std::collections::VecDeque::new(),
        answer: None,
        escalated: None,
        suspect: None,
        events: project.event_log(phase, &rec.name),
    }))
}

/// Runs the supervisor for a phase until `--exit-when-done` finds everything finished (or an
/// error). Takes the phase's lock first: one supervisor per board.
pub fn supervise(
    project: Project,
    options: Options,
    view: &mut dyn View,
) -> Result<Option<Summary>, SuperviseError> {
    let phase = options.phase.clone();
    let _lock = take_lock(&project, &phase)?;
    let config = Config::load(&project.config_file())?;
    let tmux = Tmux::from_config(&config.tmux);
    let run = wait_for_run_state(&project, &phase)?;
    let board_dir = project.board_dir(&phase);
    let board = Board::load(&board_dir)?;
    let tasks_dir = board.config().tasks_path();
    let batty_exe = std::env::current_exe().map_err(|source| SuperviseError::Io {
        path: PathBuf::from("batty"),
        source,
    })?;
    let timing = Timing::from_config(&config.supervisor);
    let mut agents = Vec::new();
    for rec in run.active() {
        if let Some(agent) = new_agent(&project, &phase, &config, &batty_exe, timing, rec)? {
            agents.push(agent);
        }
    }
    let session = crate::session::tag::find(&tmux, &project, &phase)?;
    let (esc_tx, esc_rx) = crossbeam_channel::unbounded();
    let merge = if config.merge.enabled {
        let target = config
            .merge
            .target
            .clone()
            .unwrap_or_else(|| run.base.clone());
        Some(MergeDriver::start(
            &project,
            &phase,
            &target,
            &config.merge,
        )?)
    } else {
        None
    };
    let died_marker = project.died_marker(&phase);
    let project_run_state = project.run_state(&phase);
    let mut sup = Supervisor {
        status_path: project.status_file(&phase),
        project,
        phase,
        config,
        tmux,
        session,
        board_dir,
        tasks_dir,
        board,
        agents,
        merge,
        view,
        esc_tx,
        died_marker,
        poll_panes: true,
        last_status: None,
        last_bar: String::new(),
        problems_seen: BTreeSet::new(),
        exit_when_done: options.exit_when_done,
        board_mtime: None,
        batty_exe,
        timing,
        run_state_path: project_run_state,
    };
    sup.poll_panes = !sup.install_died_hook();
    sup.reconcile()?;
    sup.run_loop(esc_rx)
}

/// The advisory lock that keeps a second supervisor off the same board, recording who holds
/// it (`session::lock`).
fn take_lock(project: &Project, phase: &str) -> Result<std::fs::File, SuperviseError> {
    use crate::session::lock;
    let path = project.run_lock(phase);
    let config = Config::load(&project.config_file())?;
    let server = Tmux::from_config(&config.tmux).server().clone();
    let me = lock::Holder::current(&server, &crate::paths::session_name(phase));
    lock::take(&path, &me).map_err(|e| match e {
        lock::LockError::Held { .. } => SuperviseError::Locked {
            phase: phase.to_owned(),
            path,
        },
        lock::LockError::Io { source, .. } => SuperviseError::Io { path, source },
    })
}

/// What a batch of watcher events asks the loop to look at.
#[derive(Default)]
struct Pending {
    output: BTreeSet<usize>,
    reports: BTreeSet<usize>,
    board: bool,
    panes: bool,
    agents: bool,
}

impl Supervisor<'_> {
    fn run_loop(
        &mut self,
        esc_rx: Receiver<EscalationReply>,
    ) -> Result<Option<Summary>, SuperviseError> {
        let (fs_tx, fs_rx) = crossbeam_channel::unbounded();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            // Opens and reads (ours, `batty status`, a person's `cat`) change nothing; passing
            // them on would wake the loop for every look at a watched folder.
            if let Ok(e) = &ev
                && is_look(&e.kind)
            {
                return;
            }
            let _ = fs_tx.send(ev);
        })
        .map_err(|source| SuperviseError::Watch {
            path: self.board_dir.clone(),
            source,
        })?;
        let logs = self.project.logs_dir(&self.phase);
        let reports = self.project.reports_dir(&self.phase);
        for dir in [
            &logs,
            &reports,
            &self.tasks_dir,
            &self.project.phase_run_dir(&self.phase),
        ] {
            std::fs::create_dir_all(dir).map_err(|source| SuperviseError::Io {
                path: dir.clone(),
                source,
            })?;
            watcher
                .watch(dir, notify::RecursiveMode::NonRecursive)
                .map_err(|source| SuperviseError::Watch {
                    path: dir.clone(),
                    source,
                })?;
        }
        let mut merge_rx = self
            .merge
            .as_ref()
            .map(|m| m.results.clone())
            .unwrap_or_else(crossbeam_channel::never);
        let mut next_safety = Instant::now() + SAFETY_REREAD;
        let mut batch_until: Option<Instant> = None;
        let no_events = crossbeam_channel::never();
        // Agents may have drawn their prompt before we started: read what is there.
        self.read_everything();
        loop {
            self.dispatch();
            self.kick_merge();
            self.publish();
            if let Some(summary) = self.finished() {
                self.finish(&summary);
                return Ok(Some(summary));
            }
            let now = Instant::now();
            let mut wake = self.next_wake().unwrap_or(next_safety).min(next_safety);
            let batching = batch_until.filter(|&t| t > now);
            if let Some(t) = batching {
                wake = wake.min(t);
            }
            let fs = if batching.is_some() {
                &no_events
            } else {
                &fs_rx
            };
            let timeout = wake.saturating_duration_since(now);
            let mut pending = Pending::default();
            select! {
                recv(fs) -> ev => {
                    if let Ok(ev) = ev {
                        self.classify_event(ev, &mut pending);
                    }
                    while let Ok(ev) = fs_rx.try_recv() {
                        self.classify_event(ev, &mut pending);
                    }
                    let output_only = !pending.output.is_empty()
                        && pending.reports.is_empty()
                        && !(pending.board || pending.agents || pending.panes);
                    batch_until = output_only.then(|| Instant::now() + OUTPUT_BATCH);
                }
                recv(merge_rx) -> done => match done {
                    Ok((task, outcome)) => self.on_merge_result(task, outcome),
                    Err(_) => {
                        // The worker thread is gone (it panicked): stop listening, or the
                        // disconnected channel would wake the loop forever.
                        merge_rx = crossbeam_channel::never();
                        self.event(None, "the merge worker stopped; restart with `batty work`");
                    }
                },
                recv(esc_rx) -> reply => {
                    if let Ok(reply) = reply {
                        self.on_escalation_reply(reply);
                    }
                }
                default(timeout) => batch_until = None,
            }
            let now = Instant::now();
            if now >= next_safety {
                next_safety = now + SAFETY_REREAD;
                pending.output.extend(0..self.agents.len());
                pending.reports.extend(0..self.agents.len());
                pending.board |= self.board_changed_on_disk();
                // The hook can miss a death: tmux (3.3a) sometimes never reaps a pane's
                // exited process, so `pane-died` never fires. While a task is held, look.
                pending.panes |= self.poll_panes || self.agents.iter().any(|a| a.job.is_some());
                if let Some(m) = &mut self.merge {
                    m.retry_later_due();
                }
            }
            self.handle(pending);
            self.on_timers(Instant::now());
        }
    }

    fn read_everything(&mut self) {
        let all: BTreeSet<usize> = (0..self.agents.len()).collect();
        self.handle(Pending {
            output: all.clone(),
            reports: all,
            board: false,
            panes: true,
            agents: false,
        });
    }

    fn classify_event(&mut self, ev: notify::Result<notify::Event>, pending: &mut Pending) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(err) => {
                tracing::warn!(%err, "watcher error; re-reading everything");
                pending.output.extend(0..self.agents.len());
                pending.reports.extend(0..self.agents.len());
                pending.board = true;
                return;
            }
        };
        if ev.need_rescan() {
            pending.output.extend(0..self.agents.len());
            pending.reports.extend(0..self.agents.len());
            pending.board = true;
            pending.panes = true;
        }
        for path in &ev.paths {
            if path.parent() == Some(self.tasks_dir.as_path()) {
                pending.board = true;
            } else if path == &self.died_marker {
                pending.panes = true;
            } else if path == &self.run_state_path {
                pending.agents = true;
            } else if let Some(m) = &mut self.merge
                && path == &m.queue_path
            {
                // `batty merge --retry` (or our own write): look for work.
                m.wake();
            } else if let Some(i) = self.agents.iter().position(|a| a.tail.path() == path) {
                pending.output.insert(i);
            } else if let Some(i) = self
                .agents
                .iter()
                .position(|a| self.project.report_file(&self.phase, &a.name) == *path)
            {
                pending.reports.insert(i);
            }
        }
    }

    fn handle(&mut self, pending: Pending) {
        if pending.agents {
            self.reload_agents();
        }
        if pending.board {
            self.reload_board();
        }
        // Indices were taken before `reload_agents` may have removed some.
        let n = self.agents.len();
        for i in pending.output.into_iter().filter(|&i| i < n) {
            self.read_output(i);
        }
        for i in pending.reports.into_iter().filter(|&i| i < n) {
            self.read_reports(i);
        }
        if pending.panes {
            self.check_panes();
        }
    }

    /// The earliest moment any agent, delivery or auto-answer needs the loop.
    fn next_wake(&self) -> Option<Instant> {
        let timeout = self.config.supervisor.delivery_timeout;
        self.agents
            .iter()
            .flat_map(|a| {
                [
                    a.tracker.next_deadline().map(|(t, _)| t),
                    a.job.as_ref().and_then(|j| j.delivery_deadline(timeout)),
                    a.answer.as_ref().map(|p| p.due),
                    a.suspect.filter(|&until| until > Instant::now()),
                ]
            })
            .flatten()
            .min()
    }

    fn on_timers(&mut self, now: Instant) {
        for i in 0..self.agents.len() {
            let tick = self.agents[i].tracker.tick(now);
            if let Some(tr) = tick.transition {
                self.on_transition(i, tr);
            }
            if tick.capture {
                self.capture(i);
            }
            self.check_delivery(i, now);
            self.check_answer(i, now);
        }
    }

    /// Captures the agent's screen once and lets its adapter classify it.
    fn capture(&mut self, i: usize) {
        let screen = match self.tmux.capture_pane(&self.agents[i].pane) {
            Ok(text) => self.agents[i].adapter.classify(&text),
            Err(err) if err.is_absent() => {
                self.pane_gone(i);
                return;
            }
            Err(err) => {
                // Counted as a busy screen, so the next output (not the next loop turn)
                // brings the next capture.
                tracing::warn!(agent = %self.agents[i].name, %err, "capture failed");
                crate::agent::Screen::Unknown
            }
        };
        let now = Instant::now();
        if let Some(tr) = self.agents[i].tracker.on_screen(now, &screen) {
            self.on_transition(i, tr);
        }
    }

    fn read_output(&mut self, i: usize) {
        let mut bytes = 0;
        loop {
            match self.agents[i].tail.read() {
                Ok(read) => {
                    bytes += read.bytes;
                    if !read.more {
                        break;
                    }
                }
                Err(err) => {
                    tracing::debug!(agent = %self.agents[i].name, %err, "pty log not readable");
                    break;
                }
            }
        }
        if bytes == 0 {
            return;
        }
        let now = Instant::now();
        let agent = &mut self.agents[i];
        agent.suspect = None;
        let tr = agent.tracker.on_output(now);
        if let Some(job) = &mut agent.job
            && !job.confirmed
            && agent.tracker.delivery_confirmed()
        {
            job.confirmed = true;
        }
        if let Some(tr) = tr {
            self.on_transition(i, tr);
        }
    }

    fn read_reports(&mut self, i: usize) {
        let reports = match self.agents[i].reports.read() {
            Ok(r) => r,
            Err(err) => {
                tracing::debug!(%err, "reports not readable");
                return;
            }
        };
        for report in reports {
            match report {
                Ok(report) => {
                    let now = Instant::now();
                    let agent = &mut self.agents[i];
                    let tr = agent
                        .tracker
                        .on_report(now, report.state, report.note.as_deref());
                    if let Some(job) = &mut agent.job {
                        job.confirmed = true;
                    }
                    if let Some(tr) = tr {
                        self.on_transition(i, tr);
                    }
                }
                Err(err) => self.event(Some(i), &format!("ignored a bad status report: {err}")),
            }
        }
    }

    /// `batty work` changed the agents (more, fewer, a repaired window): follow the run state.
    fn reload_agents(&mut self) {
        let run = match crate::session::RunState::load(&self.run_state_path) {
            Ok(Some(run)) => run,
            Ok(None) => return,
            Err(err) => {
                self.event(None, &format!("run state not readable: {err}"));
                return;
            }
        };
        let active = run.active().to_vec();
        // Agents no longer running give their tasks back.
        let mut i = 0;
        while i < self.agents.len() {
            if active.iter().any(|r| r.name == self.agents[i].name) {
                i += 1;
                continue;
            }
            if let Some(job) = self.agents[i].job.take() {
                let _ = board::release(
                    &self.board_dir,
                    job.task,
                    Some("agent removed"),
                    board::now(),
                );
            }
            for (task, _) in std::mem::take(&mut self.agents[i].redo) {
                let _ = board::release(&self.board_dir, task, Some("agent removed"), board::now());
            }
            let name = self.agents.remove(i).name;
            self.view.event(Some(&name), "agent removed", false);
        }
        for rec in &active {
            let same = self.agents.iter().position(|a| a.name == rec.name);
            if let Some(j) = same
                && rec.executor_pane.as_deref() == Some(self.agents[j].pane.as_str())
            {
                continue;
            }
            let agent = new_agent(
                &self.project,
                &self.phase,
                &self.config,
                &self.batty_exe,
                self.timing,
                rec,
            );
            match (agent, same) {
                (Ok(Some(mut agent)), Some(j)) => {
                    // A repaired window: a new process, so a fresh state; the task stays
                    // with the agent only if the board still says so.
                    agent.job = self.agents[j].job.take();
                    agent.redo = std::mem::take(&mut self.agents[j].redo);
                    self.agents[j] = agent;
                    self.event(Some(j), "agent window recreated");
                }
                (Ok(Some(agent)), None) => {
                    self.agents.push(agent);
                    let j = self.agents.len() - 1;
                    self.event(Some(j), "agent added");
                }
                (Ok(None), _) => {}
                (Err(err), _) => self.event(None, &format!("agent {}: {err}", rec.name)),
            }
        }
        // New windows need the hook too.
        self.poll_panes = !self.install_died_hook();
    }

    /// Appends to the agent's event log and shows it in the supervisor pane.
    pub(super) fn event(&mut self, agent: Option<usize>, message: &str) {
        self.event_with(agent, message, false);
    }

    pub(super) fn event_with(&mut self, agent: Option<usize>, message: &str, bell: bool) {
        let name = agent.map(|i| self.agents[i].name.clone());
        if let Some(i) = agent
            && let Err(err) = crate::events::append(&self.agents[i].events, message)
        {
            tracing::warn!(%err, "event log not writable");
        }
        self.view.event(name.as_deref(), message, bell);
    }

    /// Re-reads the board and settles every agent's job with it.
    pub(super) fn reload_board(&mut self) {
        match Board::load(&self.board_dir) {
            Ok(board) => self.board = board,
            Err(err) => {
                self.event(None, &format!("board not readable: {err}"));
                return;
            }
        }
        let problems: Vec<String> = self
            .board
            .problems()
            .iter()
            .map(|p| p.to_string())
            .collect();
        for p in problems {
            if self.problems_seen.insert(p.clone()) {
                self.event(None, &p);
            }
        }
        for i in 0..self.agents.len() {
            self.settle_job(i);
        }
    }

    fn board_changed_on_disk(&mut self) -> bool {
        // Cheap check for the safety timer: any task file newer than the last look.
        let newest = board_mtime(&self.tasks_dir);
        let changed = newest != self.board_mtime;
        self.board_mtime = newest;
        changed
    }

    /// Compares an agent's job with the board: finished, released by a person, or gone.
    fn settle_job(&mut self, i: usize) {
        let Some(job) = self.agents[i].job.clone() else {
            return;
        };
        let name = self.agents[i].name.clone();
        let Some(task) = self.board.task(job.task) else {
            self.agents[i].job = None;
            self.event(
                Some(i),
                &format!("task #{} left the board; agent freed", job.task),
            );
            return;
        };
        let status = task.status().to_owned();
        if self.board.is_terminal(&status) {
            self.agents[i].job = None;
            self.event(Some(i), &format!("task #{} is {status}", job.task));
            self.on_task_finished(i, &job, &status);
        } else if task.claimed_by() != Some(name.as_str()) {
            self.agents[i].job = None;
            self.event(
                Some(i),
                &format!(
                    "task #{} is no longer claimed by {name}; agent freed",
                    job.task
                ),
            );
        } else if self
            .config
            .supervisor
            .dispatch_statuses
            .iter()
            .any(|s| s == &status)
        {
            // A person moved it back to the queue: the claim goes with it, the status they
            // chose stays.
            self.agents[i].job = None;
            let cleared = board::update(&self.board_dir, job.task, board::now(), |t, _| {
                t.claimed_by = None;
                t.claimed_at = None;
                Ok(())
            });
            if let Err(err) = cleared {
                self.event(Some(i), &format!("releasing task #{}: {err}", job.task));
            }
            self.event(
                Some(i),
                &format!("task #{} moved back to {status}; claim released", job.task),
            );
        }
    }

    /// A task reached a terminal status: queue its commits for merging.
    fn on_task_finished(&mut self, i: usize, job: &Job, status: &str) {
        if status != self.board.config().done_status() {
            return;
        }
        let Some(merge) = &mut self.merge else {
            return;
        };
        let agent = &self.agents[i];
        match super::git::git_tip(&agent.worktree) {
            Ok(tip) if tip == job.base => {
                let msg = format!("task #{} made no commits; nothing to merge", job.task);
                self.event(Some(i), &msg);
            }
            Ok(tip) => {
                let res = merge.push(job.task, &agent.name, &agent.branch, &job.base, &tip);
                match res {
                    Ok(()) => self.event(Some(i), &format!("task #{} queued for merge", job.task)),
                    Err(err) => self.event(Some(i), &format!("merge queue: {err}")),
                }
            }
            Err(err) => self.event(Some(i), &format!("reading the branch tip: {err}")),
        }
    }

    fn check_panes(&mut self) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let panes = match self.tmux.list_panes_session(&session) {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(%err, "list-panes failed");
                return;
            }
        };
        for i in 0..self.agents.len() {
            match panes.iter().find(|p| p.pane_id == self.agents[i].pane) {
                // A program that exited but tmux has not reaped yet counts as dead too.
                Some(p) if !p.dead && p.pid.is_none_or(crate::tmux::process_running) => {}
                Some(p) => {
                    if self.agents[i].tracker.state() != AgentState::Dead {
                        let status = p
                            .dead_status
                            .map(|s| format!(" (exit status {s})"))
                            .unwrap_or_default();
                        self.event(Some(i), &format!("agent process exited{status}"));
                        if let Ok(screen) = self.tmux.capture_pane(&p.pane_id) {
                            let last: Vec<&str> =
                                screen.lines().filter(|l| !l.trim().is_empty()).collect();
                            let tail = last[last.len().saturating_sub(5)..].join(" / ");
                            self.event(Some(i), &format!("last screen: {tail}"));
                        }
                        self.pane_gone(i);
                    }
                }
                None => self.pane_gone(i),
            }
        }
    }

    fn pane_gone(&mut self, i: usize) {
        let now = Instant::now();
        if let Some(tr) = self.agents[i].tracker.on_pane_died(now) {
            self.on_transition(i, tr);
        }
    }

    /// Installs a tmux hook on every agent window that touches the died marker when a pane's
    /// program exits, so deaths arrive as file events. False when it cannot be installed
    /// safely. Since tmux 3.2 `pane-died` is a window hook: set on the session it would only
    /// reach the session's current window (the supervisor's). Older tmux has no `-w` here,
    /// fails, and deaths are found by polling instead.
    fn install_died_hook(&self) -> bool {
        if self.session.is_none() {
            return false;
        }
        let path = self.died_marker.to_string_lossy();
        let plain = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,@%".contains(&b));
        if !plain {
            return false;
        }
        let hook = format!("run-shell -b 'touch {path}'");
        self.agents.iter().all(|a| {
            self.tmux
                .cmd()
                .args(["set-hook", "-w", "-t", &a.window, "pane-died", &hook])
                .run()
                .is_ok()
        })
    }

    /// Writes the status snapshot and the tmux status bar when they changed, and redraws.
    fn publish(&mut self) {
        let status = self.snapshot();
        if self.last_status.as_ref() == Some(&status) {
            return;
        }
        if let Err(err) = status.save(&self.status_path) {
            tracing::warn!(%err, "status snapshot not writable");
        }
        let bar = status.bar(&self.phase);
        if bar != self.last_bar
            && let Some(session) = &self.session
        {
            let _ = self.tmux.set_option(
                crate::tmux::Scope::Session(session),
                "status-right",
                &crate::tmux::escape_format(&bar),
            );
            self.last_bar = bar;
        }
        let rows: Vec<Row> = self
            .agents
            .iter()
            .map(|a| Row {
                agent: a.name.clone(),
                state: a.tracker.state(),
                task: a.job.as_ref().map(|j| j.task),
                window: a.window.clone(),
                pane: a.pane.clone(),
                question: a.tracker.question().map(str::to_owned),
            })
            .collect();
        self.view.status(&self.phase, &status, &rows);
        self.last_status = Some(status);
    }

    fn snapshot(&self) -> PhaseStatus {
        let wall = chrono::Utc::now().timestamp();
        let now = Instant::now();
        let agents = self
            .agents
            .iter()
            .map(|a| {
                let age = now.saturating_duration_since(a.tracker.since()).as_secs() as i64;
                (
                    a.name.clone(),
                    AgentStatus {
                        state: a.tracker.state(),
                        task: a.job.as_ref().map(|j| j.task),
                        question: a.tracker.question().map(str::to_owned),
                        since: wall - age,
                    },
                )
            })
            .collect();
        let tasks = self.board.tasks();
        PhaseStatus {
            supervisor_pid: std::process::id(),
            agents,
            merge_queue: self.merge.as_ref().map(|m| m.status()).unwrap_or_default(),
            tasks_done: tasks
                .iter()
                .filter(|t| self.board.is_terminal(t.status()))
                .count(),
            tasks_total: tasks.len(),
        }
    }

    /// With `--exit-when-done`: nothing is left for the agents. Every task is terminal or
    /// waits on a person (in review, blocked, or depending on such a task), no task is ready
    /// or held, every agent is idle (or dead), and the merge queue is empty. Waiting for
    /// tasks only a person can move would never end.
    fn finished(&self) -> Option<Summary> {
        if !self.exit_when_done {
            return None;
        }
        let tasks = self.board.tasks();
        let statuses = &self.config.supervisor.dispatch_statuses;
        let nothing_ready = self.board.ready(statuses, &board::now()).is_empty();
        let nothing_held = !tasks.iter().any(|t| self.held_by_us(t));
        let all_terminal = nothing_ready && nothing_held;
        let agents_free = self.agents.iter().all(|a| {
            matches!(a.tracker.state(), AgentState::Idle | AgentState::Dead)
                && a.job.is_none()
                && a.redo.is_empty()
        });
        let merge_idle = self.merge.as_ref().is_none_or(|m| m.idle());
        if !(all_terminal && agents_free && merge_idle) {
            return None;
        }
        Some(Summary {
            done: tasks
                .iter()
                .filter(|t| t.status() == self.board.config().done_status())
                .count(),
            total: tasks.len(),
            merged: self.merge.as_ref().map_or(0, |m| m.merged_count()),
            review: tasks
                .iter()
                .filter(|t| t.status() == "review")
                .map(|t| t.id())
                .collect(),
        })
    }

    /// A task in the board's working status claimed by one of our agents: work in flight.
    /// Done tasks keep their claim (as in kanban-md) and review tasks wait on a person.
    pub(super) fn held_by_us(&self, t: &crate::board::Task) -> bool {
        let working = board::working_status(
            self.board.config(),
            &self.config.supervisor.dispatch_statuses,
        );
        t.status() == working
            && t.claimed_by()
                .is_some_and(|by| self.agents.iter().any(|a| a.name == by))
    }

    /// Gives a task to a person: `review` (when the board has it), blocked with `reason`, and
    /// no longer claimed, so the agent's name does not hold it.
    pub(super) fn give_to_review(&mut self, agent: Option<usize>, task: u64, reason: &str) {
        let moved = board::update(&self.board_dir, task, board::now(), |t, cfg| {
            if cfg.has_status("review") {
                t.status = "review".to_owned();
            }
            t.blocked = true;
            t.block_reason = Some(reason.to_owned());
            t.claimed_by = None;
            t.claimed_at = None;
            Ok(())
        });
        match moved {
            Ok(_) => self.event(agent, &format!("task #{task} moved to review: {reason}")),
            Err(err) => self.event(agent, &format!("moving task #{task} to review: {err}")),
        }
    }

    fn finish(&mut self, summary: &Summary) {
        let mut text = format!(
            "phase {}: {}/{} tasks done",
            self.phase, summary.done, summary.total
        );
        if self.merge.is_some() {
            text.push_str(&format!(", {} merged", summary.merged));
        }
        if !summary.review.is_empty() {
            let ids: Vec<String> = summary.review.iter().map(|i| format!("#{i}")).collect();
            text.push_str(&format!(", in review: {}", ids.join(" ")));
        }
        self.event(None, &text);
        let path = self.project.logs_dir(&self.phase).join("summary.txt");
        let _ = crate::fsutil::write_atomic(&path, format!("{text}\n").as_bytes());
        if let Some(session) = self.session.clone() {
            // Our own pane goes with the session: everything is written by now.
            let _ = self.tmux.kill_session(&session);
        }
    }
}

/// An event that only says a file was opened or read: notify reports those too, and our
/// own reading of the board and logs would otherwise wake the loop again, forever. A close
/// after writing does say something changed.
fn is_look(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(kind, notify::EventKind::Access(k) if *k != AccessKind::Close(AccessMode::Write))
}

/// The newest modification time among the task files (the folder's own time changes when
/// files are added, removed or renamed).
fn board_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                newest = newest.max(Some(t));
            }
        }
    }
    newest
}

pub(super) fn is_same_question(screen: &Screen, question: &str) -> bool {
    matches!(screen, Screen::Question(q) if q == question)
}

pub(super) type MergeResult = (
    u64,
    Result<crate::merge::MergeOutcome, crate::merge::MergeError>,
);

pub(super) fn transition_text(tr: &Transition) -> String {
    format!("{} -> {}", tr.from.as_str(), tr.to.as_str())
}
