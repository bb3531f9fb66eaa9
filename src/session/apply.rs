//! Carries out a `batty work` plan: the session and supervisor window, then each agent's
//! worktree, setup and window in its own thread (git checkouts are the slow part). A failing
//! agent is reported and skipped; the others start.

use super::plan::{
    AgentPlan, PaneStep, Plan, SUPERVISOR_WINDOW, SupervisorStep, WindowStep, WorktreeStep,
};
use super::state::{AgentRecord, RunStateError};
use crate::config::Config;
use crate::error::{Diagnose, Kind};
use crate::paths::Project;
use crate::proc::shell_word;
use crate::tmux::{PaneSpec, Tmux, TmuxError, WindowSetup, escape_format};
use crate::worktree::{Repo, Spec, WorktreeEntry, WorktreeError};

pub use super::launch::{LOG_PANE_LINES, STRIPPED_ENV};
use super::launch::{Launch, tag};

/// Everything [`apply`] needs besides the plan.
pub struct Context<'a> {
    pub project: &'a Project,
    pub config: &'a Config,
    pub tmux: &'a Tmux,
    pub repo: &'a Repo,
    pub worktrees: &'a [WorktreeEntry],
    /// This batty binary, for the supervisor, log panes and log writer.
    pub exe: String,
    /// Agent kind and the shell command that starts it, for executors (re)started now.
    pub kind: String,
    pub agent_command: String,
    /// Branch new worktrees start from.
    pub base: String,
    /// Passed on to `batty supervise`.
    pub exit_when_done: bool,
    /// Told `(agent, what happened)` as each step finishes (the agent is empty for the
    /// session's own steps), from the agents' threads: `batty work` prints it at once.
    pub progress: &'a (dyn Fn(&str, &str) + Sync),
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    #[error(transparent)]
    State(#[from] RunStateError),
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Worktree(#[from] WorktreeError),
    #[error(transparent)]
    Tmux(#[from] TmuxError),
}

impl Diagnose for ApplyError {
    fn kind(&self) -> Kind {
        match self {
            ApplyError::Tmux(e) => e.kind(),
            ApplyError::State(e) => e.kind(),
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            ApplyError::Tmux(e) => e.hint(),
            ApplyError::State(e) => e.hint(),
        }
    }
}

impl Diagnose for AgentError {
    fn kind(&self) -> Kind {
        match self {
            AgentError::Worktree(e) => e.kind(),
            AgentError::Tmux(e) => e.kind(),
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            AgentError::Worktree(e) => e.hint(),
            AgentError::Tmux(e) => e.hint(),
        }
    }
}

/// What happened, for the command to show.
#[derive(Debug, Default)]
pub struct Report {
    /// `(agent, note)`; the agent is empty for session-wide notes.
    pub notes: Vec<(String, String)>,
    pub failures: Vec<(String, AgentError)>,
}

/// Carries out `plan` and saves the resulting run state (also when some agents failed).
pub fn apply(ctx: &Context<'_>, plan: &mut Plan) -> Result<Report, ApplyError> {
    let mut report = Report::default();
    let phase = plan.phase.clone();
    let supervisor = supervisor_spec(ctx, &phase);
    let keep = WindowSetup {
        remain_on_exit: true,
        pipe_to: None,
    };
    let session_id = match &plan.session_id {
        Some(id) => id.clone(),
        None => {
            let created =
                ctx.tmux
                    .new_session(&plan.session_name, SUPERVISOR_WINDOW, &supervisor, &keep)?;
            plan.state.supervisor_pane = Some(created.pane_id);
            (ctx.progress)(
                "",
                &format!(
                    "created session `{}`, supervisor in window 0",
                    plan.session_name
                ),
            );
            created.session_id
        }
    };
    match &plan.supervisor {
        SupervisorStep::WithSession | SupervisorStep::Keep { .. } => {}
        SupervisorStep::Respawn { pane, index } => {
            ctx.tmux.respawn_pane(pane, &supervisor)?;
            plan.state.supervisor_pane = Some(pane.clone());
            (ctx.progress)("", &format!("restarted the supervisor in window {index}"));
        }
        SupervisorStep::Create { index } => {
            let created =
                ctx.tmux
                    .new_window(&session_id, *index, SUPERVISOR_WINDOW, &supervisor, &keep)?;
            plan.state.supervisor_pane = Some(created.pane_id);
            (ctx.progress)("", &format!("recreated the supervisor in window {index}"));
        }
    }
    if let SupervisorStep::Keep { pane, .. } = &plan.supervisor {
        plan.state.supervisor_pane = Some(pane.clone());
    }
    plan.state.session_id = Some(session_id.clone());
    set_status_line(ctx, &session_id, &phase)?;

    for removal in &plan.removals {
        if let Some(window) = &removal.window_id {
            match ctx.tmux.kill_window(window) {
                Ok(()) => {}
                Err(e) if e.is_absent() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let parallel = plan.state.parallel;
    for parked in plan.state.agents.iter_mut().skip(parallel) {
        parked.window_id = None;
        parked.executor_pane = None;
        parked.log_pane = None;
    }

    let Plan { agents, state, .. } = plan;
    let results: Vec<(String, Result<Vec<String>, AgentError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = agents
            .iter()
            .zip(state.agents.iter_mut())
            .map(|(step, record)| {
                let (sid, phase) = (&session_id, &phase);
                scope.spawn(move || {
                    let name = record.name.clone();
                    (name, start_agent(ctx, phase, sid, step, record))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("agent threads do not panic: errors are returned")
            })
            .collect()
    });
    for (name, result) in results {
        match result {
            Ok(notes) => report
                .notes
                .extend(notes.into_iter().map(|n| (name.clone(), n))),
            Err(e) => {
                let _ = crate::events::append(
                    &ctx.project.event_log(&phase, &name),
                    &format!("could not start: {e}"),
                );
                report.failures.push((name, e));
            }
        }
    }
    state.save(&ctx.project.run_state(&phase))?;
    Ok(report)
}

fn start_agent(
    ctx: &Context<'_>,
    phase: &str,
    session_id: &str,
    step: &AgentPlan,
    record: &mut AgentRecord,
) -> Result<Vec<String>, AgentError> {
    let mut notes = Vec::new();
    if let WindowStep::Recreate { window_id, .. } = &step.window {
        match ctx.tmux.kill_window(window_id) {
            Ok(()) => {}
            Err(e) if e.is_absent() => {}
            Err(e) => return Err(e.into()),
        }
    }
    if step.worktree != WorktreeStep::Reuse {
        let spec = Spec {
            path: record.worktree.clone(),
            branch: record.branch.clone(),
            base: ctx.base.clone(),
        };
        // `Repo::ensure` serialises the git part itself (concurrent adds race).
        let started = std::time::Instant::now();
        let ensured = ctx.repo.ensure(
            &spec,
            ctx.worktrees,
            step.worktree == WorktreeStep::Recreate,
        )?;
        (ctx.progress)(
            &record.name,
            &format!(
                "worktree ready on `{}` ({:.1}s)",
                record.branch,
                started.elapsed().as_secs_f64()
            ),
        );
        notes.extend(ensured.notes);
        if ensured.outcome.is_new() {
            record.setup_done = false;
        }
    }
    if !record.setup_done {
        crate::worktree::copy_untracked(
            ctx.repo.root(),
            &record.worktree,
            &ctx.config.worktree.copy,
        )?;
        if let Some(command) = &ctx.config.worktree.post_create {
            let events = ctx.project.event_log(phase, &record.name);
            match crate::worktree::post_create(&record.worktree, command) {
                Ok(output) => {
                    let output = crate::config::one_line(&output);
                    let _ = crate::events::append(&events, &format!("post_create: {output}"));
                    if !output.is_empty() {
                        notes.push(format!("post_create: {output}"));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        record.setup_done = true;
    }

    let launch = Launch {
        project: ctx.project,
        phase,
        exe: &ctx.exe,
        max_log_bytes: ctx.config.logs.max_bytes,
    };
    match &step.window {
        WindowStep::Create { index } | WindowStep::Recreate { index, .. } => {
            let panes = launch.window(ctx.tmux, session_id, *index, record, &ctx.agent_command)?;
            record.window_id = Some(panes.window);
            record.executor_pane = Some(panes.executor);
            record.log_pane = Some(panes.log);
            record.kind = ctx.kind.clone();
            (ctx.progress)(
                &record.name,
                &format!("started `{}` in window {index}", ctx.kind),
            );
        }
        WindowStep::Existing {
            window_id,
            index,
            executor: exec_step,
            log: log_step,
        } => {
            let exec_pane = match exec_step {
                PaneStep::Keep(p) => {
                    // Tagged by an older batty? Then now.
                    tag(ctx.tmux, p, &record.name, "executor")?;
                    p.clone()
                }
                PaneStep::Respawn(p) => {
                    launch.respawn(ctx.tmux, p, record, &ctx.agent_command)?;
                    record.kind = ctx.kind.clone();
                    (ctx.progress)(
                        &record.name,
                        &format!("restarted `{}` in window {index}", ctx.kind),
                    );
                    p.clone()
                }
                PaneStep::Split => unreachable!("a window always has an executor pane"),
            };
            let log = launch.log(&record.name);
            let log_pane = match log_step {
                PaneStep::Keep(p) => p.clone(),
                PaneStep::Respawn(p) => {
                    ctx.tmux.respawn_pane(p, &log)?;
                    p.clone()
                }
                PaneStep::Split => ctx.tmux.split_window(&exec_pane, LOG_PANE_LINES, &log)?,
            };
            tag(ctx.tmux, &log_pane, &record.name, "log")?;
            if record.kind != ctx.kind && matches!(exec_step, PaneStep::Keep(_)) {
                notes.push(format!(
                    "keeps running `{}`; restart it (`batty stop`) to switch to `{}`",
                    record.kind, ctx.kind
                ));
            }
            record.window_id = Some(window_id.clone());
            record.executor_pane = Some(exec_pane);
            record.log_pane = Some(log_pane);
        }
    }
    Ok(notes)
}

fn supervisor_spec(ctx: &Context<'_>, phase: &str) -> PaneSpec {
    let mut argv = vec![ctx.exe.clone(), "supervise".into(), phase.to_owned()];
    if ctx.exit_when_done {
        argv.push("--exit-when-done".into());
    }
    // The run state is written once the agents are up, after the supervisor starts: the
    // branch work lands on must not wait for it.
    argv.extend(["--base".to_owned(), ctx.base.clone()]);
    let env = std::env::var(crate::tmux::SOCKET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| vec![(crate::tmux::SOCKET_ENV.to_owned(), s)])
        .unwrap_or_default();
    PaneSpec {
        cwd: ctx.project.root().to_owned(),
        argv,
        env,
        // The supervisor keeps `TMUX`: with the default server, it names the server it runs in.
        unset: vec!["CLAUDECODE".into()],
    }
}

/// The status line: `batty status <phase> --bar` every 2 s (the supervisor's snapshot when it
/// has written one, else the phase and its agent count).
fn set_status_line(ctx: &Context<'_>, session_id: &str, phase: &str) -> Result<(), TmuxError> {
    let inner = format!(
        "cd {} && {} status {} --bar",
        shell_word(&ctx.project.root().to_string_lossy()),
        shell_word(&ctx.exe),
        shell_word(phase)
    );
    let right = format!("#({})", escape_format(&inner));
    ctx.tmux.set_session_options(
        session_id,
        &[
            ("status-right", &right),
            (
                super::tag::ROOT_OPTION,
                &ctx.project.root().to_string_lossy(),
            ),
            ("status-right-length", "120"),
            // tmux's default of 10 cuts the session name (`[batty-dem`).
            ("status-left-length", "40"),
            ("status-interval", "2"),
        ],
    )
}
