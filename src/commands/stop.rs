//! `batty stop`: end the phase's session; with `--clean`, remove its worktrees and branches,
//! the merge worktree, the merge queue's files and batty's refs of the phase.

use crate::config::Config;
use crate::error::user_hint;
use crate::paths::{agent_branch, session_name, validate_agent, validate_phase};
use crate::session::RunState;
use crate::worktree::Repo;

/// Stop the phase's tmux session (supervisor and agents). Worktrees and branches are kept
/// unless --clean.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The phase whose session to stop.
    pub phase: String,
    /// Also remove the agents' worktrees and branches, the run state, the merge worktree, the
    /// merge queue and batty's refs of the phase (`refs/batty/<phase>/`).
    #[arg(long)]
    pub clean: bool,
    /// With --clean: remove them even with uncommitted or unmerged work (including work kept
    /// at `refs/batty/<phase>/` that is not on the merge target).
    #[arg(long, requires = "clean")]
    pub force: bool,
}

pub fn run(args: Args) -> crate::error::Result<()> {
    validate_phase(&args.phase)?;
    let phase = args.phase.as_str();
    let project = super::project()?;
    super::known_phase(&project, phase)?;
    let (config, tmux) = match Config::load(&project.config_file()) {
        Ok(config) => {
            let tmux = super::tmux(&config)?;
            (config, tmux)
        }
        // A broken config must not keep a running session from being stopped: its
        // supervisor recorded which tmux server it is on.
        Err(err) if !args.clean => {
            let holder = crate::session::lock::holder(&project.run_lock(phase))
                .filter(|h| !h.socket.as_os_str().is_empty());
            let Some(holder) = holder else {
                return Err(err.into());
            };
            let style = super::ui::Style::stderr();
            eprintln!(
                "{} {}; stopping the session on the tmux server its supervisor recorded ({})",
                style.warn("warning:"),
                err,
                holder.socket.display()
            );
            let tmux = crate::tmux::Tmux::new(crate::tmux::Server::Path(holder.socket));
            (Config::default(), tmux)
        }
        Err(err) => return Err(err.into()),
    };
    let state = RunState::load(&project.run_state(phase))?;
    let repo = Repo::new(project.root());

    // Everything the phase has: agents in the run state plus leftover folders and branches.
    let mut agents: Vec<(std::path::PathBuf, String, String)> = Vec::new();
    let mut base = config.base_branch.clone();
    if args.clean {
        if let Some(s) = &state {
            base = Some(s.base.clone());
            for a in &s.agents {
                agents.push((a.worktree.clone(), a.branch.clone(), a.name.clone()));
            }
        }
        let mut names: Vec<String> = repo.branches_under(&format!("batty/{phase}/"))?;
        if let Ok(dir) = std::fs::read_dir(project.worktrees_dir(phase)) {
            names.extend(
                dir.flatten()
                    .filter_map(|e| e.file_name().into_string().ok()),
            );
        }
        for name in names {
            if validate_agent(&name).is_ok() && !agents.iter().any(|a| a.2 == name) {
                agents.push((
                    project.worktree_dir(phase, &name),
                    agent_branch(phase, &name),
                    name,
                ));
            }
        }
        let base = match base.clone() {
            Some(b) => b,
            None => repo.current_branch()?,
        };
        if !args.force {
            let mut at_risk = Vec::new();
            for (path, branch, name) in &agents {
                let risk = repo.risk(path, branch, &base)?;
                if !risk.is_empty() {
                    at_risk.push(format!("`{name}`: {}", risk.describe()));
                }
            }
            let target = config.merge.target.clone().unwrap_or_else(|| base.clone());
            for kept in crate::merge::refs_at_risk(&project, phase, &target)? {
                at_risk.push(format!("merge queue {kept}"));
            }
            if !at_risk.is_empty() {
                return Err(user_hint(
                    format!("`--clean` would discard work: {}", at_risk.join("; ")),
                    "merge or commit that work first, or add `--force` to discard it",
                ));
            }
        }
    }

    let name = session_name(phase);
    match crate::session::tag::find(&tmux, &project, phase)? {
        Some(id) => {
            let supervisor = crate::session::lock::holder(&project.run_lock(phase));
            tmux.kill_session(&id)?;
            // Its supervisor ends with the session; wait until it has, so nothing it writes
            // on the way out lands after `stop` returned.
            wait_supervisor_gone(&project.run_lock(phase));
            // Killed with its session, it could not write its own stop: the record says it
            // was stopped, not that it crashed.
            if let Some(h) = supervisor.filter(|h| h.pid != 0)
                && crate::session::lock::holder(&project.run_lock(phase)).is_none()
                && let Err(err) =
                    crate::record::settle::note_stop(&project.attempts_file(phase), h.pid)
            {
                tracing::warn!(%err, "cannot note the supervisor's stop in the record");
            }
            println!("stopped session `{name}`");
        }
        None => println!("no session `{name}` was running"),
    }
    if let Some(state) = &state {
        let dispatch = &config.supervisor.dispatch_statuses;
        release_claims(&project.board_dir(phase), state, dispatch)?;
    }
    if args.clean {
        repo.prune()?;
        let entries = repo.worktrees()?;
        for (path, branch, _) in &agents {
            repo.remove(path, branch, &entries)?;
        }
        for file in [project.run_state(phase), project.status_file(phase)] {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let merge = crate::merge::clean(&project, phase)?;
        // Only removes the folder when nothing else (orphans moved aside) is left.
        let _ = std::fs::remove_dir(project.worktrees_dir(phase));
        println!(
            "removed {} worktree(s) and branch(es) of phase `{phase}`",
            agents.len()
        );
        if merge != crate::merge::Cleaned::default() {
            println!(
                "removed the merge queue: {}{} file(s), {} ref(s)",
                if merge.worktree { "its worktree, " } else { "" },
                merge.files,
                merge.refs
            );
        }
    }
    Ok(())
}

/// Tasks the phase's agents were working on go back to the queue: nobody works on them any
/// more. Done tasks keep their claim (as in kanban-md), and tasks in review wait for a person.
fn release_claims(
    board_dir: &std::path::Path,
    state: &RunState,
    dispatch: &[String],
) -> crate::error::Result<()> {
    let Ok(board) = crate::board::Board::load(board_dir) else {
        return Ok(());
    };
    let working = crate::board::working_status(board.config(), dispatch);
    let held: Vec<u64> = board
        .tasks()
        .iter()
        .filter(|t| t.status() == working)
        .filter(|t| {
            t.claimed_by()
                .is_some_and(|by| state.agents.iter().any(|a| a.name == by))
        })
        .map(|t| t.id())
        .collect();
    for id in &held {
        crate::board::release(board_dir, *id, Some("session stopped"), crate::board::now())?;
    }
    if !held.is_empty() {
        let ids: Vec<String> = held.iter().map(|id| format!("#{id}")).collect();
        println!("released {} claim(s): {}", held.len(), ids.join(" "));
    }
    Ok(())
}

/// Waits (a few seconds at most) until no live supervisor holds the phase's lock.
fn wait_supervisor_gone(lock: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut pause = std::time::Duration::from_millis(2);
    while crate::session::lock::holder(lock).is_some() && std::time::Instant::now() < deadline {
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}
