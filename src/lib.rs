//! batty: runs a fleet of coding agents in parallel, under supervision, inside tmux.
//!
//! `main.rs` only calls [`main_entry`]; each subcommand lives in `commands/`, and the domain
//! modules below never print.

pub mod agent;
pub mod board;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod events;
pub mod fsutil;
pub mod git;
pub mod merge;
pub mod paths;
pub mod proc;
pub mod record;
pub mod session;
pub mod status;
pub mod supervisor;
pub mod text;
pub mod tmux;
pub mod watch;
pub mod worktree;

/// Parses the command line, runs the command and returns the process exit code:
/// 0 success, 1 user error, 2 internal error.
pub fn main_entry() -> i32 {
    error::restore_sigpipe();
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    commands::ui::set_quiet(cli.quiet);
    error::init_tracing(cli.verbosity());
    match commands::run(cli) {
        Ok(()) => 0,
        Err(err) => error::report(&err),
    }
}
