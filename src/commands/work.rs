//! `batty work`: build or repair the phase's tmux session.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::config::Config;
use crate::error::{user, user_hint};
use crate::paths::{Project, validate_agent, validate_phase};
use crate::session::RunState;
use crate::session::apply::{self, Context};
use crate::session::plan::{self, Request, WorktreeStep, World};
use crate::status::PhaseStatus;
use crate::tmux::Tmux;
use crate::worktree::Repo;

/// Start the phase's tmux session `batty-<phase>`: the supervisor in window 0 and one window
/// per agent, each agent in its own git worktree. Rerunning repairs what is missing (a
/// killed window, a dead supervisor) and changes the number of agents; it never duplicates.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Phase whose board (`.batty/kanban/<phase>/`) the agents work on.
    pub phase: String,
    /// Number of agents [default: as last run, else 1].
    #[arg(long, short = 'n')]
    pub parallel: Option<usize>,
    /// Agent kind: claude, codex, aider, demo or a name under `agents:` in the config.
    #[arg(long, value_name = "KIND")]
    pub agent: Option<String>,
    /// Branch new worktrees start from [default: config `base_branch`, else the current branch].
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// Recreate the agents' worktrees and branches from the base branch.
    #[arg(long)]
    pub new: bool,
    /// With --new: discard uncommitted or unmerged work in the worktrees.
    #[arg(long, requires = "new")]
    pub force: bool,
    /// Attach to the session afterwards (or switch to it when inside tmux).
    #[arg(long)]
    pub attach: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// End the session once nothing is left for the agents (every task done, or waiting on a
    /// person), writing a summary to `.batty/logs/<phase>/summary.txt`.
    #[arg(long)]
    pub exit_when_done: bool,
    /// Run the agents with their unattended preset (as `agents.<kind>.unattended: true`
    /// does): no permission prompts, routine answers given; see the README for each agent.
    #[arg(long)]
    pub unattended: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    validate_phase(&args.phase)?;
    if args.parallel == Some(0) || args.parallel.is_some_and(|n| n > 64) {
        return Err(user("`--parallel` must be between 1 and 64"));
    }
    let project = super::project()?;
    let config = Config::load(&project.config_file())?;
    let phase = args.phase.as_str();
    if !project.board_dir(phase).is_dir() {
        return Err(user_hint(
            format!("no board for phase `{phase}` (`.batty/kanban/{phase}/` does not exist)"),
            format!("create it with `batty init --phase {phase}`"),
        ));
    }
    let tmux = Tmux::from_config(&config.tmux);
    tmux.require_version()?;
    crate::git::require_version()?;
    let repo = Repo::new(project.root());
    let state = RunState::load(&project.run_state(phase)).map_err(|e| user(e.to_string()))?;

    let base = match args.base.clone().or_else(|| config.base_branch.clone()) {
        Some(base) => base,
        None => repo.current_branch().map_err(|_| {
            user_hint(
                "the main checkout has no current branch (detached HEAD)",
                "name one with `--base BRANCH` or `base_branch:` in .batty/config.yml",
            )
        })?,
    };
    if !repo.rev_exists(&base)? {
        return Err(user(format!("base branch `{base}` does not exist")));
    }
    let kind = args
        .agent
        .clone()
        .or_else(|| config.default_agent.clone())
        .or_else(|| state.as_ref()?.agents.first().map(|a| a.kind.clone()))
        .unwrap_or_else(|| "claude".to_owned());
    let exe = current_exe()?;
    let mut adapter = crate::agent::resolve(&kind, &config, std::path::Path::new(&exe))
        .map_err(|e| user(e.to_string()))?;
    if args.unattended {
        adapter = adapter.with_unattended();
    }
    let agent_command = adapter.command.clone();

    let parallel = args
        .parallel
        .or_else(|| state.as_ref().map(|s| s.parallel).filter(|&n| n > 0))
        .unwrap_or(1);
    let session = match crate::session::tag::find(&tmux, &project, phase)? {
        Some(id) => {
            let mut panes = tmux.list_panes_session(&id)?;
            // tmux can be slow to notice (or, seen with 3.3a, miss) that a pane's program
            // died: a killed supervisor would then count as running and never be restarted.
            for pane in &mut panes {
                if !pane.dead
                    && pane
                        .pid
                        .is_some_and(|pid| !crate::tmux::process_running(pid))
                {
                    pane.dead = true;
                }
            }
            Some((id, panes))
        }
        None => None,
    };
    if !args.dry_run {
        repo.prune()?;
    }
    let world = World {
        state,
        session,
        worktrees: repo.worktrees()?,
        branches: repo
            .branches_under(&format!("batty/{phase}/"))?
            .into_iter()
            .filter(|b| validate_agent(b).is_ok())
            .collect(),
        folders: agent_folders(&project, phase),
        status: PhaseStatus::load(&project.status_file(phase)),
    };
    let request = Request {
        phase: phase.to_owned(),
        parallel,
        kind: kind.clone(),
        base: base.clone(),
        recreate: args.new,
        port_base: config.worktree.port_base,
    };
    let mut plan = plan::plan(&project, &request, &world).map_err(|e| {
        user_hint(
            e.to_string(),
            "wait until they are idle (`batty status`), or stop the phase",
        )
    })?;

    if args.new {
        let mut at_risk = Vec::new();
        for (step, record) in plan.agents.iter().zip(&plan.state.agents) {
            if step.worktree == WorktreeStep::Recreate {
                let risk = repo.risk(&record.worktree, &record.branch, &base)?;
                if !risk.is_empty() {
                    at_risk.push(format!("`{}`: {}", record.name, risk.describe()));
                }
            }
        }
        if !at_risk.is_empty() && !args.force {
            return Err(user_hint(
                format!("`--new` would discard work: {}", at_risk.join("; ")),
                "commit and merge that work first, or add `--force` to discard it",
            ));
        }
    }

    if args.unattended {
        // The supervisor reads it back, for the preset's answers.
        for record in &mut plan.state.agents {
            record.extra.insert(
                crate::agent::UNATTENDED_KEY.to_owned(),
                serde_json::Value::Bool(true),
            );
        }
    }
    if args.dry_run {
        print!("{plan}");
        return Ok(());
    }
    let ctx = Context {
        project: &project,
        config: &config,
        tmux: &tmux,
        repo: &repo,
        worktrees: &world.worktrees,
        exe,
        kind,
        agent_command,
        base,
        exit_when_done: args.exit_when_done,
    };
    let report = apply::apply(&ctx, &mut plan)?;
    for (agent, note) in &report.notes {
        if agent.is_empty() {
            println!("{note}");
        } else {
            println!("agent `{agent}`: {note}");
        }
    }
    let session_id = plan.state.session_id.clone().unwrap_or_default();
    let running = plan.agents.len() - report.failures.len();
    println!(
        "session `{}` ({session_id}): supervisor in window 0, {running} agent(s)",
        plan.session_name
    );
    for record in plan.state.active() {
        if report.failures.iter().any(|(n, _)| n == &record.name) {
            continue;
        }
        println!(
            "  {:<16} window {:<4} pane {:<4} {}",
            record.name,
            record.window_id.as_deref().unwrap_or("-"),
            record.executor_pane.as_deref().unwrap_or("-"),
            relative(&project, &record.worktree)
        );
    }
    for (agent, err) in &report.failures {
        eprintln!("error: agent `{agent}` not started: {err}");
    }
    if !report.failures.is_empty() {
        return Err(user(format!(
            "{} of {} agent(s) could not start",
            report.failures.len(),
            plan.agents.len()
        )));
    }
    if args.attach {
        tmux.attach(&session_id)?;
    }
    Ok(())
}

/// This batty binary, as panes and the status line run it.
pub fn current_exe() -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("cannot find the batty executable")?;
    Ok(exe.to_string_lossy().into_owned())
}

/// Agent-named folders under `.batty/worktrees/<phase>/`.
fn agent_folders(project: &Project, phase: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(project.worktrees_dir(phase)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| validate_agent(n).is_ok())
        .collect();
    names.sort();
    names
}

/// `path` relative to the project root when it is inside it.
pub fn relative(project: &Project, path: &std::path::Path) -> String {
    path.strip_prefix(project.root())
        .map(PathBuf::from)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}
