//! What `batty status` reports for a phase, decided from what was read (run state, the tmux
//! panes of its session, the supervisor lock, the supervisor's snapshot, the board): pure, so
//! each state a phase can be in is unit-tested. Its JSON is a stable format, documented in
//! `docs/status-json.md`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{MergeEntryStatus, PhaseStatus};
use crate::session::RunState;
use crate::session::lock::Holder;
use crate::tmux::Pane;

/// Bumped when a key changes meaning or goes away; new keys may appear without a bump.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub phases: Vec<PhaseReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: String,
    /// The tmux session name, `batty-<phase>`.
    pub session: String,
    /// `not-started`, `stopped`, `running` or `supervisor-down`.
    pub state: &'static str,
    /// The session is up.
    pub running: bool,
    pub supervisor: SupervisorReport,
    /// What is wrong, for a person, when something is.
    pub problem: Option<String>,
    /// What to run about it.
    pub hint: Option<String>,
    /// From the board as it is now; `None` when it cannot be read.
    pub tasks_done: Option<usize>,
    pub tasks_total: Option<usize>,
    pub tasks_by_status: BTreeMap<String, usize>,
    pub agents: Vec<AgentReport>,
    /// Tasks waiting, merging or failed in the merge queue (landed ones are left out).
    pub merge_queue: Vec<MergeEntryStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SupervisorReport {
    pub running: bool,
    pub pid: Option<u32>,
    /// Where the lock holder runs: its tmux socket.
    pub socket: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentReport {
    pub name: String,
    pub kind: String,
    /// The window's tab number (what a person presses), when its window exists.
    pub window: Option<u32>,
    pub window_id: Option<String>,
    pub pane: Option<String>,
    pub worktree: String,
    pub branch: String,
    pub port: Option<u16>,
    /// The supervisor's state (`starting`, `idle`, `busy`, `asking`, `stuck`, `dead`),
    /// `stopped` without a session, `unknown` without a running supervisor.
    pub state: String,
    pub task: Option<u64>,
    /// The question an asking agent waits on.
    pub question: Option<String>,
    /// Seconds since the Unix epoch when the state last changed.
    pub since: Option<i64>,
}

/// Task counts read from the board.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardCounts {
    pub done: usize,
    pub total: usize,
    pub by_status: BTreeMap<String, usize>,
}

/// Everything read about one phase.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub phase: &'a str,
    pub session: String,
    pub root: &'a Path,
    pub state: Option<&'a RunState>,
    /// The panes of this project's session, when it is up.
    pub panes: Option<&'a [Pane]>,
    /// The live holder of the supervisor lock.
    pub holder: Option<&'a Holder>,
    /// Our tmux server's socket, to tell our supervisor from another server's.
    pub socket: &'a Path,
    pub snapshot: Option<&'a PhaseStatus>,
    /// The board's counts, or why it cannot be read.
    pub board: Result<BoardCounts, String>,
    pub merge_queue: Vec<MergeEntryStatus>,
    /// A session of this name that belongs to another project (its root).
    pub foreign: Option<String>,
}

/// The report of one phase.
pub fn phase_report(i: Inputs<'_>) -> PhaseReport {
    let panes = i.panes.unwrap_or(&[]);
    let running = i.panes.is_some();
    let supervisor_pane = i.state.and_then(|s| {
        s.supervisor_pane
            .as_ref()
            .and_then(|id| panes.iter().find(|p| &p.pane_id == id))
    });
    let supervisor_pane = supervisor_pane.or_else(|| {
        panes
            .iter()
            .find(|p| p.window_name == crate::session::plan::SUPERVISOR_WINDOW)
    });
    let holder_ours = i.holder.is_some_and(|h| {
        crate::session::socket::same_socket(&h.socket, i.socket) && h.session == i.session
    });
    let pane_alive = supervisor_pane.is_some_and(|p| !p.dead);
    let supervising = running && pane_alive && holder_ours;
    let phase = i.phase;
    let (state, problem, hint) = match (i.state, running) {
        _ if i.foreign.is_some() && !running => (
            "stopped",
            Some(format!(
                "a session `{}` on this tmux server belongs to the project in {}",
                i.session,
                i.foreign.as_deref().unwrap_or_default()
            )),
            Some("give each project its own server with `tmux.socket`".to_owned()),
        ),
        (None, false) => (
            "not-started",
            None,
            Some(format!("start it with `batty work {phase}`")),
        ),
        (Some(_), false) => (
            "stopped",
            None,
            Some(format!("start it again with `batty work {phase}`")),
        ),
        (_, true) if supervising => ("running", None, None),
        (_, true) => {
            let why = match (supervisor_pane, i.holder) {
                (None, _) => "its supervisor window is gone".to_owned(),
                (Some(p), _) if p.dead => "its supervisor has exited".to_owned(),
                (_, Some(h)) if !holder_ours => format!(
                    "another supervisor (pid {}, tmux socket `{}`) holds the board",
                    h.pid,
                    h.socket.display()
                ),
                _ => "no supervisor holds the board's lock".to_owned(),
            };
            (
                "supervisor-down",
                Some(format!(
                    "session `{}` is up but its supervisor is not running: {why}",
                    i.session
                )),
                Some(format!("restart it with `batty work {phase}`")),
            )
        }
    };
    let live = |name: &str| {
        supervising
            .then_some(i.snapshot)
            .flatten()
            .and_then(|s| s.agents.get(name))
    };
    let agents = i
        .state
        .map(|s| s.active())
        .unwrap_or_default()
        .iter()
        .map(|a| {
            let window = running
                .then(|| {
                    a.window_id
                        .as_ref()
                        .and_then(|w| panes.iter().find(|p| &p.window_id == w))
                })
                .flatten();
            let pane = running
                .then(|| {
                    a.executor_pane
                        .as_ref()
                        .filter(|id| panes.iter().any(|p| &p.pane_id == *id))
                })
                .flatten();
            let status = live(&a.name);
            AgentReport {
                name: a.name.clone(),
                kind: a.kind.clone(),
                window: window.map(|p| p.window_index),
                window_id: window.map(|p| p.window_id.clone()),
                pane: pane.cloned(),
                worktree: a
                    .worktree
                    .strip_prefix(i.root)
                    .unwrap_or(&a.worktree)
                    .display()
                    .to_string(),
                branch: a.branch.clone(),
                port: a.port,
                state: match (running, status) {
                    (false, _) => "stopped".to_owned(),
                    (true, Some(s)) => s.state.as_str().to_owned(),
                    (true, None) => "unknown".to_owned(),
                },
                task: status.and_then(|s| s.task),
                question: status.and_then(|s| s.question.clone()),
                since: status.map(|s| s.since),
            }
        })
        .collect();
    // A running phase's own problem comes first; an unreadable board is reported otherwise.
    let (problem, hint) = match (&i.board, problem) {
        (Err(why), None) => (
            Some(format!("its board cannot be read: {why}")),
            Some("fix it (`batty doctor` lists what is wrong)".to_owned()),
        ),
        (_, problem) => (problem, hint),
    };
    let board = i.board.ok();
    PhaseReport {
        phase: phase.to_owned(),
        session: i.session.clone(),
        state,
        running,
        supervisor: SupervisorReport {
            running: supervising,
            pid: i.holder.filter(|_| holder_ours).map(|h| h.pid),
            socket: i
                .holder
                .filter(|_| holder_ours)
                .map(|h| h.socket.display().to_string()),
        },
        problem,
        hint,
        tasks_done: board.as_ref().map(|b| b.done),
        tasks_total: board.as_ref().map(|b| b.total),
        tasks_by_status: board.map(|b| b.by_status).unwrap_or_default(),
        agents,
        merge_queue: i.merge_queue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::AgentRecord;
    use crate::status::{AgentState, AgentStatus};

    fn state() -> RunState {
        RunState {
            phase: "v1".into(),
            supervisor_pane: Some("%0".into()),
            base: "main".into(),
            parallel: 1,
            agents: vec![AgentRecord {
                name: "brave-otter".into(),
                index: 0,
                kind: "demo".into(),
                window_id: Some("@1".into()),
                executor_pane: Some("%1".into()),
                log_pane: Some("%2".into()),
                worktree: "/r/.batty/worktrees/v1/brave-otter".into(),
                branch: "batty/v1/brave-otter".into(),
                port: None,
                setup_done: true,
                extra: Default::default(),
            }],
            ..Default::default()
        }
    }

    fn pane(window: &str, index: u32, id: &str, dead: bool, name: &str) -> Pane {
        Pane {
            session_id: "$1".into(),
            window_id: window.into(),
            window_index: index,
            pane_id: id.into(),
            pane_index: 0,
            top: 0,
            dead,
            dead_status: None,
            pid: Some(10),
            current_command: "x".into(),
            agent: String::new(),
            role: String::new(),
            window_name: name.into(),
        }
    }

    fn snapshot() -> PhaseStatus {
        let mut s = PhaseStatus::default();
        s.agents.insert(
            "brave-otter".into(),
            AgentStatus {
                state: AgentState::Asking,
                task: Some(3),
                question: Some("Continue? [y/n]".into()),
                since: 5,
            },
        );
        s
    }

    fn holder(socket: &str) -> Holder {
        Holder {
            pid: 10,
            socket: socket.into(),
            session: "batty-v1".into(),
        }
    }

    fn inputs<'a>(
        state: Option<&'a RunState>,
        panes: Option<&'a [Pane]>,
        holder: Option<&'a Holder>,
        snapshot: Option<&'a PhaseStatus>,
    ) -> Inputs<'a> {
        Inputs {
            phase: "v1",
            session: "batty-v1".into(),
            root: Path::new("/r"),
            state,
            panes,
            holder,
            socket: Path::new("/tmp/s"),
            snapshot,
            board: Ok(BoardCounts {
                done: 1,
                total: 4,
                by_status: [("done".to_owned(), 1), ("todo".to_owned(), 3)].into(),
            }),
            merge_queue: Vec::new(),
            foreign: None,
        }
    }

    #[test]
    fn running_phase_shows_live_agents_and_questions() {
        let (st, snap, h) = (state(), snapshot(), holder("/tmp/s"));
        let panes = [
            pane("@0", 0, "%0", false, "batty"),
            pane("@1", 1, "%1", false, "brave-otter"),
        ];
        let r = phase_report(inputs(Some(&st), Some(&panes), Some(&h), Some(&snap)));
        assert_eq!(
            (r.state, r.running, r.supervisor.running),
            ("running", true, true)
        );
        let a = &r.agents[0];
        assert_eq!(
            (a.state.as_str(), a.task, a.window),
            ("asking", Some(3), Some(1))
        );
        assert_eq!(a.question.as_deref(), Some("Continue? [y/n]"));
        assert_eq!(a.worktree, ".batty/worktrees/v1/brave-otter");
        assert_eq!((r.tasks_done, r.tasks_total), (Some(1), Some(4)));
        assert_eq!(r.problem, None);
    }

    #[test]
    fn stopped_phase_shows_the_board_not_stale_panes() {
        let (st, snap) = (state(), snapshot());
        let r = phase_report(inputs(Some(&st), None, None, Some(&snap)));
        assert_eq!(r.state, "stopped");
        let a = &r.agents[0];
        assert_eq!(
            (a.state.as_str(), a.window, a.pane.as_deref()),
            ("stopped", None, None)
        );
        assert_eq!((a.task, a.question.as_deref()), (None, None));
        assert_eq!(r.tasks_by_status["todo"], 3);

        let fresh = phase_report(inputs(None, None, None, None));
        assert_eq!(fresh.state, "not-started");
        assert!(fresh.agents.is_empty());
        assert_eq!(fresh.hint.as_deref(), Some("start it with `batty work v1`"));

        let mut bad = inputs(None, None, None, None);
        bad.board = Err("config.yml:1: at least 2 statuses are required".into());
        let r = phase_report(bad);
        assert_eq!(
            r.problem.as_deref(),
            Some("its board cannot be read: config.yml:1: at least 2 statuses are required")
        );
        assert_eq!(r.tasks_total, None);
    }

    #[test]
    fn a_session_without_its_supervisor_says_so() {
        let (st, snap, h) = (state(), snapshot(), holder("/tmp/s"));
        let dead = [
            pane("@0", 0, "%0", true, "batty"),
            pane("@1", 1, "%1", false, "x"),
        ];
        let r = phase_report(inputs(Some(&st), Some(&dead), Some(&h), Some(&snap)));
        assert_eq!((r.state, r.supervisor.running), ("supervisor-down", false));
        assert!(
            r.problem
                .as_deref()
                .unwrap()
                .contains("its supervisor has exited")
        );
        assert_eq!(r.hint.as_deref(), Some("restart it with `batty work v1`"));
        assert_eq!(
            r.agents[0].state, "unknown",
            "a dead supervisor's snapshot is stale"
        );

        let alive = [pane("@0", 0, "%0", false, "batty")];
        let r = phase_report(inputs(Some(&st), Some(&alive), None, Some(&snap)));
        assert_eq!(r.state, "supervisor-down");
        assert!(
            r.problem
                .unwrap()
                .contains("no supervisor holds the board's lock")
        );

        let elsewhere = holder("/tmp/other");
        let r = phase_report(inputs(Some(&st), Some(&alive), Some(&elsewhere), None));
        assert!(r.problem.unwrap().contains("tmux socket `/tmp/other`"));
    }
}
