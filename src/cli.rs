//! Command-line definitions: the top-level parser. Each subcommand's arguments live beside its
//! code in `commands/`.

use clap::{Parser, Subcommand};

use crate::commands;

/// Run a fleet of coding agents in parallel, under supervision, inside tmux.
#[derive(Debug, Parser)]
#[command(name = "batty", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(commands::init::Args),
    #[command(subcommand_required = true)]
    Task(commands::task::Args),
    Work(commands::work::Args),
    Attach(commands::attach::Args),
    Stop(commands::stop::Args),
    Status(commands::status::Args),
    Logs(commands::logs::Args),
    Merge(commands::merge::Args),
    Report(commands::report::Args),
    AgentStatus(commands::agent_status::Args),
    Demo(commands::demo::Args),
    #[command(hide = true)]
    Supervise(commands::supervise::Args),
    #[command(hide = true)]
    DemoAgent(commands::demo_agent::Args),
    #[command(hide = true)]
    LogWriter(commands::log_writer::Args),
}

/// Parses `std::env::args`. Help and version print and give exit code 0; usage errors give 1,
/// as every other user error does.
pub fn parse() -> Result<Cli, i32> {
    Cli::try_parse().map_err(|err| {
        let code = if err.use_stderr() { 1 } else { 0 };
        let _ = err.print();
        code
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
