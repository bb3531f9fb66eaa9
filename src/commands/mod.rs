//! One file per subcommand: its `Args` (whose doc comment is the `-h` text) and its `run`.

pub mod agent_status;
pub mod attach;
pub mod completions;
pub mod config;
pub mod demo;
pub mod demo_agent;
pub mod doctor;
pub mod init;
pub mod log_writer;
pub mod logs;
pub mod merge;
pub mod report;
pub mod status;
pub mod stop;
pub mod supervise;
pub mod task;
pub mod ui;
pub mod work;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::error::{Context as _, Result, user, user_hint};
use crate::paths::Project;
use crate::tmux::Tmux;

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Task(args) => task::run(args),
        Command::Work(args) => work::run(args),
        Command::Attach(args) => attach::run(args),
        Command::Stop(args) => stop::run(args),
        Command::Status(args) => status::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Report(args) => report::run(args),
        Command::AgentStatus(args) => agent_status::run(args),
        Command::Supervise(args) => supervise::run(args),
        Command::DemoAgent(args) => demo_agent::run(args),
        Command::Demo(args) => demo::run(args),
        Command::LogWriter(args) => log_writer::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Config(args) => config::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => completions::man(args),
    }
}

/// The project found from the current directory, or a user error saying how to make one:
/// outside a git work tree that is the first thing to fix.
pub fn project() -> Result<Project> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    match Project::discover(&cwd) {
        Some(project) => Ok(project),
        None => {
            crate::session::repo::require_work_tree(&cwd)?;
            Err(user_hint(
                format!("no `.batty/` folder in {} or above", cwd.display()),
                "run `batty init` at the top of your repository",
            ))
        }
    }
}

/// The tmux server the config names, refused before any call when its socket path is too
/// long for a unix socket.
pub fn tmux(config: &Config) -> Result<Tmux> {
    let tmux = Tmux::from_config(&config.tmux);
    crate::session::socket::check_length(tmux.server(), config.tmux.socket.as_deref())?;
    Ok(tmux)
}

/// Fails unless `phase` is one this project has (a board or a run folder), naming the ones
/// it has.
pub fn known_phase(project: &Project, phase: &str) -> Result<()> {
    crate::paths::validate_phase(phase)?;
    let phases = project.phases();
    if phases.iter().any(|p| p == phase) {
        return Ok(());
    }
    let shown = crate::text::one_line(phase);
    let error = user(format!("no phase `{shown}` in this project"));
    Err(match phases.as_slice() {
        [] => error.hint(format!("create it with `batty init --phase {shown}`")),
        _ => {
            let list: Vec<String> = phases.iter().map(|p| format!("`{p}`")).collect();
            error.hint(format!(
                "phases here: {}; or create it with `batty init --phase {shown}`",
                list.join(", ")
            ))
        }
    })
}
