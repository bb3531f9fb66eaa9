//! `batty status`: the agents of one phase or of every phase, as a table or stable JSON.

use serde::Serialize;

use crate::config::Config;
use crate::error::user_hint;
use crate::paths::{Project, session_name, validate_phase};
use crate::session::RunState;
use crate::status::PhaseStatus;
use crate::tmux::Tmux;

/// Show the agents of a phase (or of every phase that has run): window, pane, worktree,
/// branch, state and task.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Phase to show [default: every phase that has run].
    pub phase: Option<String>,
    /// Print JSON (a stable format for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// One line for the tmux status bar.
    #[arg(long, hide = true, requires = "phase")]
    pub bar: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    phases: Vec<PhaseReport>,
}

#[derive(Debug, Serialize)]
struct PhaseReport {
    phase: String,
    session: String,
    running: bool,
    tasks_done: Option<usize>,
    tasks_total: Option<usize>,
    agents: Vec<AgentReport>,
    /// Tasks waiting, merging or failed in the merge queue (landed ones are left out).
    merge_queue: Vec<crate::status::MergeEntryStatus>,
}

#[derive(Debug, Serialize)]
struct AgentReport {
    name: String,
    kind: String,
    window: Option<String>,
    pane: Option<String>,
    worktree: String,
    branch: String,
    port: Option<u16>,
    /// The supervisor's state, `stopped` without a session, `unknown` without a snapshot.
    state: String,
    task: Option<u64>,
}

fn status_path(project: &Project, phase: &str) -> std::path::PathBuf {
    project.status_file(phase)
}

pub fn run(args: Args) -> crate::error::Result<()> {
    if let Some(phase) = &args.phase {
        validate_phase(phase)?;
    }
    let project = super::project()?;
    if args.bar {
        let phase = args.phase.as_deref().unwrap_or_default();
        println!("{}", bar(&project, phase));
        return Ok(());
    }
    let phases = match &args.phase {
        Some(phase) => {
            if !project.run_state(phase).exists() {
                return Err(user_hint(
                    format!("phase `{phase}` has not run"),
                    format!("start it with `batty work {phase}`"),
                ));
            }
            vec![phase.clone()]
        }
        None => phases_that_ran(&project),
    };
    let config = Config::load(&project.config_file())?;
    let tmux = Tmux::from_config(&config.tmux);
    // One call for every session; a missing server or tmux means nothing runs.
    let sessions = tmux.sessions().unwrap_or_default();
    let mut report = Report { phases: Vec::new() };
    for phase in phases {
        let Some(state) = RunState::load(&project.run_state(&phase))? else {
            continue;
        };
        let session = session_name(&phase);
        let running = sessions.iter().any(|s| s.name == session);
        let snapshot = PhaseStatus::load(&status_path(&project, &phase));
        let agents = state
            .active()
            .iter()
            .map(|a| {
                let live = snapshot.as_ref().and_then(|s| s.agents.get(&a.name));
                AgentReport {
                    name: a.name.clone(),
                    kind: a.kind.clone(),
                    window: a.window_id.clone(),
                    pane: a.executor_pane.clone(),
                    worktree: super::work::relative(&project, &a.worktree),
                    branch: a.branch.clone(),
                    port: a.port,
                    state: match (running, live) {
                        (false, _) => "stopped".to_owned(),
                        (true, Some(s)) => s.state.as_str().to_owned(),
                        (true, None) => "unknown".to_owned(),
                    },
                    task: live.and_then(|s| s.task),
                }
            })
            .collect();
        // The queue file itself: it is there (and right) whether a supervisor runs or not.
        let merge_queue =
            crate::merge::MergeQueue::load(&crate::merge::queue_file(&project, &phase))
                .map(|q| q.to_status())
                .unwrap_or_default();
        report.phases.push(PhaseReport {
            merge_queue,
            phase,
            session,
            running,
            tasks_done: snapshot.as_ref().map(|s| s.tasks_done),
            tasks_total: snapshot.as_ref().map(|s| s.tasks_total),
            agents,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(report: &Report) {
    if report.phases.is_empty() {
        println!("no phase has run yet (start one with `batty work <phase>`)");
    }
    for (i, p) in report.phases.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let tasks = match (p.tasks_done, p.tasks_total) {
            (Some(d), Some(t)) => format!(", tasks {d}/{t}"),
            _ => String::new(),
        };
        let running = if p.running { "running" } else { "stopped" };
        println!(
            "phase {}: session `{}` {running}{tasks}",
            p.phase, p.session
        );
        let rows: Vec<[String; 7]> = p
            .agents
            .iter()
            .map(|a| {
                [
                    a.name.clone(),
                    a.state.clone(),
                    a.task.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                    a.window.clone().unwrap_or_else(|| "-".into()),
                    a.pane.clone().unwrap_or_else(|| "-".into()),
                    a.branch.clone(),
                    a.worktree.clone(),
                ]
            })
            .collect();
        let header = [
            "AGENT", "STATE", "TASK", "WINDOW", "PANE", "BRANCH", "WORKTREE",
        ]
        .map(String::from);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            println!("{}", cells.join("  ").trim_end());
        }
        for m in &p.merge_queue {
            let reason = m
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            println!("merge #{} ({}) {}{reason}", m.task, m.agent, m.state);
        }
    }
}

/// The status-bar line: the supervisor's snapshot when there is one, else the phase and its
/// agent count. Never fails: the bar shows whatever can be read.
fn bar(project: &Project, phase: &str) -> String {
    if let Some(snapshot) = PhaseStatus::load(&status_path(project, phase)) {
        return snapshot.bar(phase);
    }
    match RunState::load(&project.run_state(phase)) {
        Ok(Some(state)) => format!("{phase}: {} agent(s)", state.active().len()),
        _ => phase.to_owned(),
    }
}

/// Phases with a run state file, sorted.
fn phases_that_ran(project: &Project) -> Vec<String> {
    project.phases_that_ran()
}
