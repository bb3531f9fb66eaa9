//! The supervisor's driver: everything the core may not do. One `select!` loop turns the file
//! watcher (pty logs, agents' reports, the board, the run state, the config), the pid watcher
//! (an agent's process ended), the merge worker and escalation replies into core events, and
//! carries out the core's effects (tmux, git, board writes, the attempt record). Effects that
//! answer with an event (a claim, a capture) are answered at once, in order.

mod agents;
mod effects;
mod merge;
mod pids;
mod prepare;
mod publish;
mod record;
mod watch;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};

use crate::agent::Adapter;
use crate::board::Board;
use crate::config::Config;
use crate::paths::Project;
use crate::session::RunState;
use crate::tmux::Tmux;

use super::core::Core;
use super::event::{Event, Time};
use super::settings::Settings;

pub use publish::{Row, Summary, View};

/// Everything cheap is looked at again this often even without an event: panes listed (tmux
/// can miss a death), agents' output and reports, the merge queue's retries. The board is not:
/// its watcher says when it lost events (see `watch`).
const SAFETY: Duration = Duration::from_secs(3);
/// The same while nothing is in flight (every agent idle without a task, nothing waiting to
/// merge): deaths still arrive at once from the pid watcher and files from the watcher, so
/// only a lost event waits this long, and a quiet fleet costs next to nothing.
const QUIET_SAFETY: Duration = Duration::from_secs(30);

/// How long the safety net may wait, given the agents and whether the merge queue has work.
fn safety_interval(agents: &[super::core::AgentView], merging: bool) -> Duration {
    let quiet = !merging
        && agents.iter().all(|a| {
            a.parked.is_some()
                || (a.state == crate::status::AgentState::Idle
                    && a.task.is_none()
                    && a.question.is_none())
        });
    if quiet { QUIET_SAFETY } else { SAFETY }
}

/// While agents stream output, watcher events pile up this long between turns: a burst costs
/// one read per agent instead of a wake-up per write of the log writer.
const OUTPUT_BATCH: Duration = Duration::from_millis(4);

#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("another supervisor is running for phase `{phase}` (lock {})", path.display())]
    Locked { phase: String, path: PathBuf },
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("{}: {source}", path.display())]
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
    Board(#[from] crate::board::BoardError),
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
    /// End the session once nothing is left for the agents.
    pub exit_when_done: bool,
    /// The base branch `batty work` gave (before its run state is written).
    pub base: Option<String>,
}

/// Something the loop is told besides file events.
pub(super) enum Wake {
    /// An agent's pane process ended.
    Exited { agent: String, pid: u32 },
    /// `escalate_command` answered.
    Reply(Box<Event>),
}

/// The driver's state: the core, and what it needs to reach tmux, git and the files.
pub(super) struct Driver<'v> {
    pub project: Project,
    pub phase: String,
    pub config: Config,
    pub tmux: Tmux,
    pub session: Option<String>,
    pub core: Core,
    pub agents: agents::Agents,
    pub merge: Option<merge::MergeDriver>,
    pub record: record::Recorder,
    pub pids: pids::PidWatch,
    pub view: &'v mut dyn View,
    pub wake_tx: Sender<Wake>,
    pub started: Instant,
    pub exe: String,
    pub publish: publish::Published,
    /// Events that effects answered with, handled before anything else.
    pub queue: VecDeque<Event>,
    pub summary: Option<Summary>,
    /// The file watcher, and what it remembers of the board between turns.
    pub board_watch: watch::BoardWatch,
    /// The adapters the core has (a run state naming a new kind brings new ones).
    pub adapter_kinds: Vec<String>,
    /// `(agent, head)` just read for the attempt record, for the effect after it.
    pub head_read: Option<(String, String)>,
}

/// Runs the supervisor for a phase until `--exit-when-done` finds everything finished (or an
/// error). Takes the phase's lock first: one supervisor per board.
pub fn supervise(
    project: Project,
    options: Options,
    view: &mut dyn View,
) -> Result<Option<Summary>, SuperviseError> {
    let phase = options.phase.clone();
    let config = Config::load(&project.config_file())?;
    let tmux = Tmux::from_config(&config.tmux);
    let _lock = take_lock(&project, &phase, &tmux)?;
    let board_dir = project.board_dir(&phase);
    let (fs_tx, fs_rx) = crossbeam_channel::unbounded();
    let board_watch = watch::BoardWatch::start(&project, &phase, &board_dir, fs_tx)?;
    let mut board = Board::load(&board_dir)?;
    for removed in board.remove_leftover_temps() {
        view.event(
            None,
            &format!("removed a leftover temp file: {}", removed.display()),
            false,
        );
    }
    let exe = std::env::current_exe()
        .map_err(|source| SuperviseError::Io {
            path: PathBuf::from("batty"),
            source,
        })?
        .to_string_lossy()
        .into_owned();
    let run = RunState::load(&project.run_state(&phase))?.unwrap_or_default();
    let session = crate::session::tag::find(&tmux, &project, &phase)?;
    let settings = settings_for(
        &config,
        &project,
        &phase,
        &run,
        &exe,
        options.exit_when_done,
    )?;
    let mut record = record::Recorder::new(&project, &phase);
    let merge = if config.merge.enabled {
        let target = config
            .merge
            .target
            .clone()
            .or(options.base.clone())
            .unwrap_or_else(|| run.base.clone());
        let mut m = merge::MergeDriver::start(&project, &phase, &target, &config.merge)?;
        for line in m.recover()? {
            view.event(None, &line, false);
        }
        Some(m)
    } else {
        None
    };
    let history = record.history(merge.as_ref());
    let adapter_kinds: Vec<String> = settings.adapters.keys().cloned().collect();
    let wall_start = crate::board::now();
    let core = Core::new(settings, board, history, wall_start);
    record.run_started();
    record.settle_landings(merge.as_ref());
    let (wake_tx, wake_rx) = crossbeam_channel::unbounded();
    let pids = pids::PidWatch::start(wake_tx.clone());
    let mut driver = Driver {
        agents: agents::Agents::new(&project, &phase),
        project,
        phase,
        config,
        tmux,
        session,
        core,
        merge,
        record,
        pids,
        view,
        wake_tx,
        started: Instant::now(),
        exe,
        publish: publish::Published::default(),
        queue: VecDeque::new(),
        summary: None,
        board_watch,
        adapter_kinds,
        head_read: None,
    };
    let result = driver.run(wake_rx, fs_rx);
    driver.record.run_stopped();
    if let (Ok(Some(_)), Some(session)) = (&result, &driver.session) {
        // Our own pane goes with the session: everything is written by now.
        let _ = driver.tmux.kill_session(session);
    }
    result
}

/// The advisory lock that keeps a second supervisor off the same board, holding who we are.
fn take_lock(project: &Project, phase: &str, tmux: &Tmux) -> Result<std::fs::File, SuperviseError> {
    use crate::session::lock;
    let path = project.run_lock(phase);
    let me = lock::Holder::current(tmux.server(), &crate::paths::session_name(phase));
    lock::take(&path, &me).map_err(|e| match e {
        lock::LockError::Held { .. } => SuperviseError::Locked {
            phase: phase.to_owned(),
            path,
        },
        lock::LockError::Io { source, .. } => SuperviseError::Io { path, source },
    })
}

/// The core's settings from the config, with an adapter for every agent the run state names
/// (its kind, with its unattended preset when `batty work` started it so).
pub(super) fn settings_for(
    config: &Config,
    project: &Project,
    phase: &str,
    run: &RunState,
    exe: &str,
    exit_when_done: bool,
) -> Result<Settings, SuperviseError> {
    let mut adapters: BTreeMap<String, Arc<Adapter>> = BTreeMap::new();
    for rec in &run.agents {
        let key = adapter_key(rec);
        if adapters.contains_key(&key) {
            continue;
        }
        let mut adapter = crate::agent::resolve(&rec.kind, config, std::path::Path::new(exe))?;
        if crate::agent::recorded_unattended(&rec.extra) {
            adapter = adapter.with_unattended();
        }
        adapters.insert(key, Arc::new(adapter));
    }
    Ok(Settings::new(
        config,
        phase,
        project.board_dir(phase),
        adapters,
        exit_when_done,
    ))
}

/// Which adapter an agent uses: its kind, and whether it runs unattended.
pub(super) fn adapter_key(rec: &crate::session::AgentRecord) -> String {
    if crate::agent::recorded_unattended(&rec.extra) {
        format!("{}+unattended", rec.kind)
    } else {
        rec.kind.clone()
    }
}

impl Driver<'_> {
    /// The core's clock.
    pub fn now(&self) -> Time {
        self.started.elapsed()
    }

    fn run(
        &mut self,
        wake_rx: Receiver<Wake>,
        fs_rx: Receiver<notify::Result<notify::Event>>,
    ) -> Result<Option<Summary>, SuperviseError> {
        let mut merge_rx = self
            .merge
            .as_ref()
            .map(|m| m.results.clone())
            .unwrap_or_else(crossbeam_channel::never);
        // The agents and their panes as they are now, then everything they show.
        self.reload_agents();
        self.read_everything();
        let mut next_safety = Instant::now() + SAFETY;
        let mut batch_until: Option<Instant> = None;
        let no_events = crossbeam_channel::never();
        loop {
            self.drain();
            self.kick_merge();
            self.drain();
            self.publish();
            if let Some(summary) = self.summary.take() {
                return Ok(Some(summary));
            }
            let now = Instant::now();
            next_safety = next_safety.min(now + self.safety_interval());
            let core_wake = self
                .core
                .next_wake()
                .map(|t| self.started + t)
                .unwrap_or(next_safety);
            let mut wake = core_wake.min(next_safety);
            if let Some(t) = self.board_watch.next_wake() {
                wake = wake.min(t);
            }
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
            let mut pending = watch::Pending::default();
            select! {
                recv(fs) -> ev => {
                    if let Ok(ev) = ev {
                        watch::classify(self, ev, &mut pending);
                    }
                    while let Ok(ev) = fs_rx.try_recv() {
                        watch::classify(self, ev, &mut pending);
                    }
                    batch_until = pending.output_only().then(|| Instant::now() + OUTPUT_BATCH);
                }
                recv(merge_rx) -> done => match done {
                    Ok((task, outcome)) => self.on_merge_result(task, outcome),
                    Err(_) => {
                        // The worker thread is gone: stop listening, or the disconnected
                        // channel would wake the loop forever.
                        merge_rx = crossbeam_channel::never();
                        self.log(None, "the merge worker stopped; restart with `batty work`", true);
                    }
                },
                recv(wake_rx) -> w => match w {
                    Ok(Wake::Exited { agent, pid }) => {
                        self.queue.push_back(Event::Exited {
                            agent,
                            pid,
                            status: None,
                            last_screen: Vec::new(),
                        });
                    }
                    Ok(Wake::Reply(event)) => self.queue.push_back(*event),
                    Err(_) => {}
                },
                default(timeout) => batch_until = None,
            }
            if Instant::now() >= next_safety {
                next_safety = Instant::now() + self.safety_interval();
                pending.safety();
                if let Some(m) = &mut self.merge {
                    m.safety_tick();
                }
            }
            watch::handle(self, pending);
            self.queue.push_back(Event::Tick);
        }
    }

    /// Hands every queued event to the core and carries out what it asks, until nothing is
    /// left: effects that answer (a claim, a capture) add their answer to the queue.
    pub fn drain(&mut self) {
        while let Some(mut event) = self.queue.pop_front() {
            self.before_deaths(&mut event);
            self.handle(event);
        }
    }

    fn safety_interval(&self) -> Duration {
        let merging = self.merge.as_ref().is_some_and(|m| {
            m.status()
                .iter()
                .any(|e| e.state == "waiting" || e.state == "merging")
        });
        safety_interval(&self.core.agents(), merging)
    }

    fn handle(&mut self, event: Event) {
        let now = self.now();
        let effects = self.core.handle(now, event);
        for effect in effects {
            effects::run(self, effect);
        }
    }

    /// An event that tells the core of a death (of a process it believes alive) first gets
    /// what only the moment of death shows: the task file the agent held is read again (an
    /// agent that reports its task done and exits at once did finish it; the watcher's event
    /// for that write may still be on its way), and the dead pane's exit status and last
    /// screen lines are added, for the task's next attempt.
    fn before_deaths(&mut self, event: &mut Event) {
        let views = match event {
            Event::Exited { .. } | Event::Panes(_) | Event::Agents { .. } => self.core.agents(),
            _ => return,
        };
        let dying: Vec<(String, String, Option<u64>)> = views
            .into_iter()
            .filter_map(|v| {
                let pane = v.pane?;
                let dies = match &*event {
                    Event::Exited { agent, pid, .. } => {
                        *agent == v.name && (*pid == 0 || v.pid.is_none_or(|p| p == *pid))
                    }
                    Event::Panes(panes) | Event::Agents { panes, .. } => panes
                        .iter()
                        .find(|p| p.agent == v.name)
                        .is_none_or(|p| p.dead || p.pane != pane),
                    _ => false,
                };
                dies.then_some((v.name, pane, v.task))
            })
            .collect();
        if dying.is_empty() {
            return;
        }
        let reads: Vec<_> = dying
            .iter()
            .filter_map(|(_, _, task)| self.core.board().task((*task)?))
            .map(|t| {
                let path = t.path().to_owned();
                let read = crate::board::read_one(&path);
                (path, read)
            })
            .collect();
        if !reads.is_empty() {
            self.handle(Event::TaskFiles(reads));
        }
        for (agent, pane, _) in dying {
            let (status, screen) = self.agents.last_moments(&self.tmux, &agent, &pane);
            match event {
                Event::Exited {
                    status: s,
                    last_screen,
                    ..
                } => {
                    *s = s.or(status);
                    *last_screen = screen;
                }
                Event::Panes(panes) | Event::Agents { panes, .. } => {
                    if let Some(p) = panes.iter_mut().find(|p| p.agent == agent && p.dead) {
                        p.exit_status = p.exit_status.or(status);
                        p.last_screen = screen;
                    }
                }
                _ => {}
            }
        }
    }

    /// `batty work` changed the agents, or we just started: the run state's agents and their
    /// panes as tmux shows them now.
    pub fn reload_agents(&mut self) {
        let run = match RunState::load(&self.project.run_state(&self.phase)) {
            Ok(Some(run)) => run,
            Ok(None) => RunState::default(),
            Err(err) => {
                self.log(None, &format!("run state not readable: {err}"), false);
                return;
            }
        };
        if self.session.is_none() {
            self.session = crate::session::tag::find(&self.tmux, &self.project, &self.phase)
                .ok()
                .flatten();
        }
        // New kinds or presets (a rerun of `batty work` with another agent) need adapters.
        match settings_for(
            &self.config,
            &self.project,
            &self.phase,
            &run,
            &self.exe,
            self.core_exit_when_done(),
        ) {
            Ok(settings) => {
                let kinds: Vec<String> = settings.adapters.keys().cloned().collect();
                if kinds != self.adapter_kinds {
                    self.adapter_kinds = kinds;
                    self.queue.push_back(Event::Config(Box::new(settings)));
                }
            }
            Err(err) => self.log(None, &format!("agents: {err}"), true),
        }
        self.agents.set_records(&run);
        let specs = self.agents.specs();
        let panes = self.agents.list_panes(&self.tmux, self.session.as_deref());
        for p in &panes {
            if let (false, Some(pid)) = (p.dead, p.pid) {
                self.pids.watch(&p.agent, pid);
            }
        }
        self.agents
            .install_died_hook(&self.tmux, &self.project, &self.phase);
        self.queue.push_back(Event::Agents {
            agents: specs,
            panes,
        });
    }

    fn core_exit_when_done(&self) -> bool {
        self.core.settings().exit_when_done
    }

    fn read_everything(&mut self) {
        let mut pending = watch::Pending::default();
        pending.safety();
        watch::handle(self, pending);
    }

    /// Appends to the agent's event log (or only the supervisor's pane) and shows it.
    pub fn log(&mut self, agent: Option<&str>, text: &str, bell: bool) {
        let text = crate::text::one_line(text);
        let file = match agent {
            Some(agent) => self.project.event_log(&self.phase, agent),
            None => self.project.supervisor_log(&self.phase),
        };
        if let Err(err) = crate::events::append(&file, &text) {
            tracing::warn!(%err, "event log not writable");
        }
        self.view.event(agent, &text, bell);
    }

    fn kick_merge(&mut self) {
        let Some(m) = &mut self.merge else {
            return;
        };
        if let Err(err) = m.kick() {
            let text = format!("merge queue: {err}");
            self.log(None, &text, false);
        }
    }

    fn on_merge_result(
        &mut self,
        task: u64,
        outcome: Result<crate::merge::MergeOutcome, crate::merge::MergeError>,
    ) {
        let Some(m) = &mut self.merge else {
            return;
        };
        match m.on_result(task, &outcome) {
            Ok(Some(verdict)) => self.queue.push_back(Event::Merge { task, verdict }),
            Ok(None) => {}
            Err(err) => {
                let text = format!("merge queue: {err}");
                self.log(None, &text, false);
            }
        }
    }

    fn publish(&mut self) {
        publish::publish(self);
    }

    /// The agents' states, for the status table.
    pub fn rows(&self) -> Vec<Row> {
        self.core
            .agents()
            .into_iter()
            .map(|a| Row {
                window: self.agents.window_index(&a.name),
                state: a.state,
                task: a.task,
                pane: a.pane.unwrap_or_else(|| "-".into()),
                question: a.question,
                parked: a.parked,
                agent: a.name,
            })
            .collect()
    }
}

/// The config file changed: a valid one takes effect, an invalid one is reported and the
/// old one kept.
pub(super) fn reload_config(d: &mut Driver<'_>) {
    let path = d.project.config_file();
    match Config::load(&path) {
        Ok(config) => {
            let run = RunState::load(&d.project.run_state(&d.phase))
                .ok()
                .flatten()
                .unwrap_or_default();
            match settings_for(
                &config,
                &d.project,
                &d.phase,
                &run,
                &d.exe,
                d.core_exit_when_done(),
            ) {
                Ok(settings) => {
                    if let Some(m) = &mut d.merge {
                        m.set_config(&config.merge);
                    }
                    d.config = config;
                    d.queue.push_back(Event::Config(Box::new(settings)));
                }
                Err(err) => {
                    let text = format!("{err}; the previous configuration stays");
                    d.log(None, &text, true);
                }
            }
        }
        Err(err) => {
            let text = format!("{err}; the previous configuration stays");
            d.log(None, &text, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::AgentState;

    fn agent(state: AgentState, task: Option<u64>) -> super::super::core::AgentView {
        super::super::core::AgentView {
            name: "a".into(),
            state,
            since: Duration::ZERO,
            task,
            pane: None,
            pid: None,
            question: None,
            parked: None,
        }
    }

    #[test]
    fn the_safety_net_waits_long_only_while_nothing_is_in_flight() {
        let idle = agent(AgentState::Idle, None);
        assert_eq!(
            safety_interval(&[idle.clone(), idle.clone()], false),
            QUIET_SAFETY
        );
        assert_eq!(safety_interval(&[], false), QUIET_SAFETY);
        assert_eq!(
            safety_interval(std::slice::from_ref(&idle), true),
            SAFETY,
            "a merge waits"
        );
        let busy = agent(AgentState::Busy, Some(3));
        assert_eq!(safety_interval(&[idle.clone(), busy], false), SAFETY);
        let starting = agent(AgentState::Starting, None);
        assert_eq!(safety_interval(&[starting], false), SAFETY);
        let mut asking = idle.clone();
        asking.question = Some("Continue?".into());
        assert_eq!(safety_interval(&[asking], false), SAFETY);
        let mut parked = agent(AgentState::Dead, None);
        parked.parked = Some("restarted too often".into());
        assert_eq!(safety_interval(&[idle, parked], false), QUIET_SAFETY);
    }
}
