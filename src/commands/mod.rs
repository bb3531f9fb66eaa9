//! One file per subcommand: its `Args` (whose doc comment is the `-h` text) and its `run`.

pub mod agent_status;
pub mod attach;
pub mod demo;
pub mod demo_agent;
pub mod init;
pub mod log_writer;
pub mod logs;
pub mod merge;
pub mod report;
pub mod status;
pub mod stop;
pub mod supervise;
pub mod task;
pub mod work;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
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
    }
}

/// The project found from the current directory, or a user error saying how to make one.
pub fn project() -> anyhow::Result<crate::paths::Project> {
    let cwd = std::env::current_dir()?;
    crate::paths::Project::discover(&cwd).ok_or_else(|| {
        crate::error::user_hint(
            format!("no `.batty/` folder in {} or above", cwd.display()),
            "run `batty init` at the top of your repository",
        )
    })
}
