//! `batty status`: the agents of one phase or of every phase, as a table or stable JSON
//! (`docs/status-json.md`), once or refreshed in place with `--watch`.

use std::io::Write;
use std::time::Duration;

use super::ui::Style;
use crate::config::Config;
use crate::error::Result;
use crate::paths::{Project, session_name};
use crate::session::RunState;
use crate::session::lock;
use crate::status::PhaseStatus;
use crate::status::report::{self, BoardCounts, FORMAT_VERSION, Inputs, PhaseReport, Report};
use crate::tmux::Tmux;

/// Show the phases of this project (or one phase): whether each runs and its supervisor with
/// it, the board's task counts, and each agent's window, branch, state, task and question.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Phase to show [default: every phase with a board or a run].
    pub phase: Option<String>,
    /// Print JSON (a stable format for scripts, see docs/status-json.md) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep the report on screen, redrawn whenever it changes (until interrupted).
    #[arg(long, short)]
    pub watch: bool,
    /// One line for the tmux status bar.
    #[arg(long, hide = true, requires = "phase", conflicts_with_all = ["json", "watch"])]
    pub bar: bool,
}

pub fn run(args: Args) -> Result<()> {
    let project = super::project()?;
    if args.bar {
        let phase = args.phase.as_deref().unwrap_or_default();
        crate::paths::validate_phase(phase)?;
        println!("{}", bar(&project, phase));
        return Ok(());
    }
    if let Some(phase) = &args.phase {
        super::known_phase(&project, phase)?;
    }
    let config = Config::load(&project.config_file())?;
    let tmux = super::tmux(&config)?;
    if args.watch {
        return watch(&project, &tmux, &args);
    }
    let report = gather(&project, &tmux, args.phase.as_deref())?;
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&report)?)
    } else {
        render(&report, Style::stdout())
    };
    print!("{text}");
    Ok(())
}

/// Reads every phase asked for.
pub fn gather(project: &Project, tmux: &Tmux, only: Option<&str>) -> Result<Report> {
    let phases = match only {
        Some(phase) => vec![phase.to_owned()],
        None => project.phases(),
    };
    // One call for every session; a missing server or tmux means nothing runs.
    let sessions = tmux.sessions().unwrap_or_default();
    let socket = crate::session::socket::current_socket_path(tmux.server());
    let mut out = Vec::new();
    for phase in phases {
        let state = RunState::load(&project.run_state(&phase))?;
        let name = session_name(&phase);
        let mut foreign = None;
        let mut panes = None;
        if sessions.iter().any(|s| s.name == name) {
            match crate::session::tag::find(tmux, project, &phase) {
                Ok(Some(id)) => panes = tmux.list_panes_session(&id).ok(),
                Ok(None) => {}
                Err(crate::session::tag::SessionError::Foreign { other, .. }) => {
                    foreign = Some(other)
                }
                Err(e) => return Err(e.into()),
            }
        }
        let holder = lock::holder(&project.run_lock(&phase));
        let snapshot = PhaseStatus::load(&project.status_file(&phase));
        // The queue file itself: it is there (and right) whether a supervisor runs or not.
        let merge_queue =
            crate::merge::MergeQueue::load(&crate::merge::queue_file(project, &phase))
                .map(|q| q.to_status())
                .unwrap_or_default();
        out.push(report::phase_report(Inputs {
            phase: &phase,
            session: name,
            root: project.root(),
            state: state.as_ref(),
            panes: panes.as_deref(),
            holder: holder.as_ref(),
            socket: &socket,
            snapshot: snapshot.as_ref(),
            board: board_counts(project, &phase),
            merge_queue,
            foreign,
        }));
    }
    Ok(Report {
        version: FORMAT_VERSION,
        phases: out,
    })
}

/// The board's counts as it is now: done (terminal) and total, and by status.
fn board_counts(project: &Project, phase: &str) -> std::result::Result<BoardCounts, String> {
    let board = crate::board::Board::load(&project.board_dir(phase))
        .map_err(|e| crate::error::Error::from(e).message().to_owned())?;
    let mut counts = BoardCounts::default();
    for task in board.tasks() {
        counts.total += 1;
        if board.is_terminal(task.status()) {
            counts.done += 1;
        }
        *counts
            .by_status
            .entry(task.status().to_owned())
            .or_default() += 1;
    }
    Ok(counts)
}

/// The table a person reads.
pub fn render(report: &Report, style: Style) -> String {
    let mut out = String::new();
    if report.phases.is_empty() {
        out.push_str("no phase yet: create one with `batty init --phase NAME`\n");
    }
    for (i, p) in report.phases.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_phase(p, style, &mut out);
    }
    out
}

fn render_phase(p: &PhaseReport, style: Style, out: &mut String) {
    let tasks = match (p.tasks_done, p.tasks_total) {
        (Some(d), Some(t)) => {
            let by: Vec<String> = p
                .tasks_by_status
                .iter()
                .map(|(s, n)| format!("{n} {}", crate::text::one_line(s)))
                .collect();
            if by.is_empty() {
                format!(", tasks {d}/{t} done")
            } else {
                format!(", tasks {d}/{t} done ({})", by.join(", "))
            }
        }
        _ => String::new(),
    };
    out.push_str(&format!(
        "{} {}: {}, session `{}`{tasks}\n",
        style.bold("phase"),
        style.bold(&p.phase),
        style.state(p.state),
        p.session
    ));
    if let Some(problem) = &p.problem {
        out.push_str(&format!("{} {problem}\n", style.warn("problem:")));
    }
    if let Some(hint) = &p.hint
        && (p.problem.is_some() || p.agents.is_empty() || !p.running)
    {
        out.push_str(&format!("{} {hint}\n", style.hint("hint:")));
    }
    if !p.agents.is_empty() {
        let rows: Vec<[String; 6]> = p
            .agents
            .iter()
            .map(|a| {
                [
                    a.name.clone(),
                    a.state.clone(),
                    a.task.map_or_else(|| "-".into(), |t| format!("#{t}")),
                    a.window.map_or_else(|| "-".into(), |w| w.to_string()),
                    a.branch.clone(),
                    a.worktree.clone(),
                ]
            })
            .collect();
        let header = ["AGENT", "STATE", "TASK", "WINDOW", "BRANCH", "WORKTREE"].map(String::from);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for (n, row) in std::iter::once(&header).chain(&rows).enumerate() {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(col, (c, w))| {
                    let padded = format!("{c:<w$}");
                    // Pad first: colour codes have no width.
                    if col == 1 && n > 0 {
                        padded.replacen(c.as_str(), &style.state(c), 1)
                    } else {
                        padded
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        for a in &p.agents {
            if let Some(q) = &a.question {
                let q = q.lines().last().unwrap_or_default();
                out.push_str(&format!(
                    "  {} asks: {}\n",
                    a.name,
                    crate::text::one_line(q)
                ));
            }
        }
    }
    for m in &p.merge_queue {
        let reason = m
            .reason
            .as_deref()
            .map(|r| format!(": {}", crate::text::one_line(r)))
            .unwrap_or_default();
        out.push_str(&format!(
            "merge #{} ({}) {}{reason}\n",
            m.task, m.agent, m.state
        ));
    }
}

/// How often `--watch` asks tmux whether sessions are still up: a session that ends
/// changes no file. Everything else redraws on a file event.
const WATCH_TMUX_EVERY: Duration = Duration::from_secs(2);

/// Redraws whenever the report changes: on a terminal in place (home, clear), elsewhere one
/// report after another. Woken by inotify on `.batty/run/` and the boards, and every
/// [`WATCH_TMUX_EVERY`] for tmux; output is written only when it differs.
fn watch(project: &Project, tmux: &Tmux, args: &Args) -> Result<()> {
    use std::io::IsTerminal;
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        // Reads (our own among them) change nothing.
        if let Ok(e) = &ev
            && matches!(e.kind, notify::EventKind::Access(k)
                if k != notify::event::AccessKind::Close(notify::event::AccessMode::Write))
        {
            return;
        }
        let _ = tx.send(());
    })
    .map_err(|e| crate::error::user(format!("cannot watch `.batty/`: {e}")))?;
    use notify::Watcher as _;
    for dir in [project.run_dir(), project.boards_dir()] {
        let _ = std::fs::create_dir_all(&dir);
        watcher
            .watch(&dir, notify::RecursiveMode::Recursive)
            .map_err(|e| crate::error::user(format!("cannot watch `{}`: {e}", dir.display())))?;
    }
    let terminal = std::io::stdout().is_terminal();
    let style = Style::stdout();
    let mut last = String::new();
    loop {
        let report = gather(project, tmux, args.phase.as_deref())?;
        let text = if args.json {
            format!("{}\n", serde_json::to_string(&report)?)
        } else {
            render(&report, style)
        };
        if text != last {
            let mut out = std::io::stdout().lock();
            if terminal {
                write!(out, "\x1b[H\x1b[2J")?;
            } else if !last.is_empty() && !args.json {
                writeln!(out)?;
            }
            out.write_all(text.as_bytes())?;
            out.flush()?;
            last = text;
        }
        if rx.recv_timeout(WATCH_TMUX_EVERY).is_ok() {
            // A save is often several events (write, rename, chmod): take them as one.
            std::thread::sleep(Duration::from_millis(30));
            while rx.try_recv().is_ok() {}
        }
    }
}

/// The status-bar line: the supervisor's snapshot while a supervisor holds the board, else
/// what is wrong. Never fails: the bar shows whatever can be read.
fn bar(project: &Project, phase: &str) -> String {
    if lock::holder(&project.run_lock(phase)).is_none() {
        return format!("{phase}: supervisor not running (batty work {phase})");
    }
    if let Some(snapshot) = PhaseStatus::load(&project.status_file(phase)) {
        return snapshot.bar(phase);
    }
    match RunState::load(&project.run_state(phase)) {
        Ok(Some(state)) => format!("{phase}: {} agent(s)", state.active().len()),
        _ => phase.to_owned(),
    }
}
