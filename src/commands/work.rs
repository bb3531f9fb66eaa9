//! `batty work`: build or repair the phase's tmux session.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::ui;
use crate::config::Config;
use crate::error::{Context as _, Result, user, user_hint};
use crate::paths::{Project, validate_agent, validate_phase};
use crate::session::RunState;
use crate::session::apply::{self, Context};
use crate::session::lock;
use crate::session::plan::{self, Request, WorktreeStep, World};
use crate::status::PhaseStatus;
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

pub fn run(args: Args) -> Result<()> {
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
    // Before the base branch is looked for: an empty repository has none, and the fix is
    // to commit, not to name one.
    crate::session::repo::require_work_tree(project.root())?;
    let tmux = super::tmux(&config)?;
    tmux.require_version()?;
    crate::git::require_version()?;
    let session_name = crate::paths::session_name(phase);
    let me = lock::Holder::current(tmux.server(), &session_name);
    // Two `batty work` at once take turns; the second then finds the first one's session
    // and only repairs. A dry run changes nothing, so it needs no turn.
    let _turn = if args.dry_run {
        None
    } else {
        Some(wait_turn(&project, phase, &me)?)
    };
    let repo = Repo::new(project.root());
    let state = RunState::load(&project.run_state(phase))?;

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
        return Err(user_hint(
            format!("base branch `{base}` does not exist"),
            "name an existing branch with `--base BRANCH` or `base_branch:` in \
             .batty/config.yml",
        ));
    }
    let kind = args
        .agent
        .clone()
        .or_else(|| config.default_agent.clone())
        .or_else(|| state.as_ref()?.agents.first().map(|a| a.kind.clone()))
        .unwrap_or_else(|| "claude".to_owned());
    let exe = current_exe()?;
    let mut adapter = crate::agent::resolve(&kind, &config, std::path::Path::new(&exe))?;
    if args.unattended {
        adapter = adapter.with_unattended();
    }
    // Before anything is made: a session of agents whose program is missing only shows
    // `sh: claude: not found` in each window, and the supervisor restarts them in vain.
    let path = std::env::var("PATH").ok();
    crate::agent::check_program(&adapter, path.as_deref(), project.root()).map_err(|why| {
        user_hint(
            why,
            format!(
                "install it, or say how to start it with `agents.{}.command` in .batty/config.yml",
                crate::text::escape_control(&kind)
            ),
        )
    })?;
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
    let mut plan = plan::plan(&project, &request, &world)?;
    check_supervisor_lock(&project, phase, &me, &plan, &world)?;

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

    // The supervisor reads it back, for the preset's answers: it says how each agent's
    // program was started. An agent started now gets this run's (an earlier run's would
    // answer an attended aider's "Run shell command?"); one kept running keeps its own.
    for record in &mut plan.state.agents {
        let kept = plan.agents.iter().any(|step| {
            step.name == record.name
                && matches!(
                    &step.window,
                    plan::WindowStep::Existing {
                        executor: plan::PaneStep::Keep(_),
                        ..
                    }
                )
        });
        if kept {
            continue;
        }
        if args.unattended {
            record.extra.insert(
                crate::agent::UNATTENDED_KEY.to_owned(),
                serde_json::Value::Bool(true),
            );
        } else {
            record.extra.remove(crate::agent::UNATTENDED_KEY);
        }
    }
    if args.dry_run {
        print!("{plan}");
        return Ok(());
    }
    repo.prune()?;
    let progress = |agent: &str, line: &str| {
        if agent.is_empty() {
            ui::note(line);
        } else {
            ui::note(format!("agent `{agent}`: {line}"));
        }
    };
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
        progress: &progress,
    };
    let report = apply::apply(&ctx, &mut plan)?;
    for (agent, note) in &report.notes {
        progress(agent, note);
    }
    let session_id = plan.state.session_id.clone().unwrap_or_default();
    // Window ids (`@3`) mean nothing to a person; the tab number they press does.
    let indexes: BTreeMap<String, u32> = tmux
        .list_panes_session(&session_id)
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.window_id, p.window_index))
        .collect();
    let running = plan.agents.len() - report.failures.len();
    ui::note(format!(
        "session `{}`: supervisor in window 0, {running} agent(s)",
        plan.session_name
    ));
    for record in plan.state.active() {
        if report.failures.iter().any(|(n, _)| n == &record.name) {
            continue;
        }
        let window = record
            .window_id
            .as_ref()
            .and_then(|w| indexes.get(w))
            .map_or_else(|| "-".to_owned(), u32::to_string);
        ui::note(format!(
            "  {:<16} window {window:<3} {}",
            record.name,
            relative(&project, &record.worktree)
        ));
    }
    let failed = report.failures.len();
    let style = ui::Style::stderr();
    for (agent, err) in report.failures {
        let err = crate::error::Error::from(err);
        eprintln!(
            "{} agent `{agent}` not started: {}",
            style.error("error:"),
            err.message()
        );
        for hint in err.hints() {
            eprintln!("{} {hint}", style.hint("hint:"));
        }
    }
    if failed > 0 {
        return Err(user(format!(
            "{failed} of {} agent(s) could not start",
            plan.agents.len()
        ))
        .hint(format!(
            "see why in `batty logs {phase} <agent>`, fix it, and rerun `batty work {phase}`"
        )));
    }
    let started: Vec<&str> = plan
        .agents
        .iter()
        .zip(&plan.state.agents)
        .filter(|(step, _)| starts_executor(step))
        .map(|(_, record)| record.name.as_str())
        .collect();
    if let Some(deaths) = none_came_up(&tmux, &adapter, &session_id, &started) {
        return Err(user(format!(
            "no agent came up: {}",
            crate::text::one_line(&deaths.join("; "))
        ))
        .hint(format!(
            "fix how `{}` starts (`agents.{}.command` in .batty/config.yml) and rerun `batty work {phase}`; `batty stop {phase}` ends the session",
            ctx.kind, ctx.kind
        )));
    }
    if args.attach {
        drop(_turn);
        tmux.attach(&session_id)?;
    } else {
        ui::note(format!(
            "watch it with `batty attach {phase}`, or `batty status {phase}`"
        ));
    }
    Ok(())
}

/// Whether the step (re)starts the agent's program.
fn starts_executor(step: &plan::AgentPlan) -> bool {
    use crate::session::plan::{PaneStep, WindowStep};
    matches!(
        step.window,
        WindowStep::Create { .. }
            | WindowStep::Recreate { .. }
            | WindowStep::Existing {
                executor: PaneStep::Respawn(_),
                ..
            }
    )
}

/// How long `batty work` watches the agents it started for a sign of life.
const STARTUP: Duration = Duration::from_secs(2);

/// When every agent in `started` has exited before any of them showed its prompt (or a
/// question), how each ended: `` `name` exited (status N): <last line> ``. `None` as soon as
/// one runs at its prompt, or when [`STARTUP`] is up with one still running (it may just be
/// slow to draw, or its screen unknown to its adapter).
fn none_came_up(
    tmux: &crate::tmux::Tmux,
    adapter: &crate::agent::Adapter,
    session: &str,
    started: &[&str],
) -> Option<Vec<String>> {
    use crate::agent::Screen;
    if started.is_empty() {
        return None;
    }
    let deadline = Instant::now() + STARTUP;
    loop {
        let panes = tmux.list_panes_session(session).ok()?;
        let mut deaths = Vec::new();
        for name in started {
            let Some(p) = panes
                .iter()
                .find(|p| p.agent == *name && p.role == "executor")
            else {
                continue; // its window was closed meanwhile: not ours to judge
            };
            let screen = tmux.capture_pane(&p.pane_id).unwrap_or_default();
            let dead = p.dead || p.pid.is_some_and(|pid| !crate::tmux::process_running(pid));
            if !dead {
                if matches!(
                    adapter.classify(&screen),
                    Screen::Ready { .. } | Screen::Question(_)
                ) {
                    return None;
                }
                continue;
            }
            let status = p
                .dead_status
                .map_or_else(String::new, |s| format!(" (status {s})"));
            let last = screen
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty() && !l.starts_with("Pane is dead"))
                .map_or_else(String::new, |l| format!(": {l}"));
            deaths.push(format!("`{name}` exited{status}{last}"));
        }
        if deaths.len() == started.len() {
            return Some(deaths);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long a second `batty work` of the same phase waits for the first to finish.
const TURN_WAIT: Duration = Duration::from_secs(120);

/// Takes the phase's `batty work` lock, waiting (and saying so) while another one holds it.
fn wait_turn(project: &Project, phase: &str, me: &lock::Holder) -> Result<std::fs::File> {
    let path = project.work_lock(phase);
    let start = Instant::now();
    let mut told = false;
    loop {
        match lock::take(&path, me) {
            Ok(file) => return Ok(file),
            Err(lock::LockError::Held { holder, .. }) => {
                let pid = holder.map_or_else(|| "?".to_owned(), |h| h.pid.to_string());
                if start.elapsed() > TURN_WAIT {
                    return Err(user_hint(
                        format!(
                            "another `batty work {phase}` (pid {pid}) is still running after {}s",
                            TURN_WAIT.as_secs()
                        ),
                        format!("wait for it to finish, or end it with `kill {pid}`"),
                    ));
                }
                if !told {
                    ui::note(format!(
                        "waiting for another `batty work {phase}` (pid {pid}) to finish"
                    ));
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Refuses when a supervisor other than the one in our session holds the board: on another
/// tmux server, in another session, or a process that is not our supervisor pane. Checked
/// before anything is created.
fn check_supervisor_lock(
    project: &Project,
    phase: &str,
    me: &lock::Holder,
    plan: &plan::Plan,
    world: &World,
) -> Result<()> {
    let holder = lock::holder(&project.run_lock(phase));
    let panes = world
        .session
        .as_ref()
        .map(|(_, p)| p.as_slice())
        .unwrap_or(&[]);
    let ours = world.session.as_ref().map(|_| me.session.as_str());
    let pid = plan.kept_supervisor(panes).and_then(|p| p.pid);
    match lock::judge(holder.as_ref(), &me.socket, ours, pid) {
        lock::Verdict::Proceed => Ok(()),
        lock::Verdict::Refuse(h) if h.pid == 0 => Err(user_hint(
            format!(
                "another supervisor holds the board of phase `{phase}` (`{}`)",
                relative(project, &project.run_lock(phase))
            ),
            "stop it first; its lock file does not say where it runs",
        )),
        lock::Verdict::Refuse(h) => Err(user_hint(
            format!(
                "another supervisor has the board of phase `{phase}`: pid {}, on tmux socket \
                 `{}`, session `{}`",
                h.pid,
                h.socket.display(),
                crate::text::one_line(&h.session)
            ),
            format!(
                "attach to it with `{}`, or stop it there before starting another",
                h.attach_command()
            ),
        )),
    }
}

/// This batty binary, as panes and the status line run it.
pub fn current_exe() -> Result<String> {
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
