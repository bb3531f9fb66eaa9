//! Command-line definitions: the top-level parser. Each subcommand's arguments live beside its
//! code in `commands/`.

use clap::{ArgAction, Parser, Subcommand};

use crate::commands;

/// Run a fleet of coding agents in parallel, under supervision, inside tmux.
#[derive(Debug, Parser)]
#[command(name = "batty", version, propagate_version = true)]
pub struct Cli {
    /// Print only errors: no progress lines or notes, and no warnings in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log more on stderr (`-v` info, `-vv` debug, `-vvv` trace); overrides `BATTY_LOG`.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// -1 for `-q`, the number of `-v`s otherwise.
    pub fn verbosity(&self) -> i8 {
        if self.quiet {
            -1
        } else {
            i8::try_from(self.verbose).unwrap_or(i8::MAX)
        }
    }
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
    Doctor(commands::doctor::Args),
    Config(commands::config::Args),
    Completions(commands::completions::Args),
    Man(commands::completions::ManArgs),
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
        if let Some(unknown) = unknown_command(&err) {
            return crate::error::report(&unknown);
        }
        let code = if err.use_stderr() { 1 } else { 0 };
        let _ = err.print();
        code
    })
}

/// `batty bogus`: clap suggests any command that is loosely similar (`logs`); batty suggests
/// only a near miss (a prefix, or one or two letters off), else points at the list.
fn unknown_command(err: &clap::Error) -> Option<crate::error::Error> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::InvalidSubcommand {
        return None;
    }
    let ContextValue::String(word) = err.get(ContextKind::InvalidSubcommand)? else {
        return None;
    };
    let command = <Cli as clap::CommandFactory>::command();
    let path: Vec<String> = std::env::args()
        .skip(1)
        .take_while(|a| a != word)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut parent = &command;
    for name in &path {
        match parent.find_subcommand(name) {
            Some(sub) => parent = sub,
            None => break,
        }
    }
    let names: Vec<&str> = parent
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name())
        .collect();
    let prefix = std::iter::once("batty")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let shown = crate::text::one_line(word);
    let error = crate::error::user(format!("unknown command `{prefix} {shown}`"));
    Some(match near_miss(word, &names) {
        Some(best) => error.hint(format!("did you mean `{prefix} {best}`?")),
        None => error.hint(format!("see the commands with `{prefix} --help`")),
    })
}

/// The candidate `word` is a prefix of, or within a small edit distance of (one edit for
/// short words, two from six letters on).
pub fn near_miss<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.len() >= 2
        && let Some(c) = candidates.iter().find(|c| c.starts_with(word))
    {
        return Some(c);
    }
    let limit = if word.chars().count() >= 6 { 2 } else { 1 };
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() && !cmd.is_hide_set() && !path.is_empty() {
                missing.push(format!("`{path}` (the command itself)"));
            }
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && !arg.is_hide_set() && arg.get_help().is_none() {
                    missing.push(format!("`{path} {}`", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let name = format!("{path} {}", sub.get_name()).trim().to_owned();
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no help text: {}", missing.join(", "));
    }

    #[test]
    fn near_misses_only() {
        let names = ["init", "task", "work", "status", "logs", "stop", "doctor"];
        assert_eq!(near_miss("bogus", &names), None);
        assert_eq!(near_miss("stat", &names), Some("status"));
        assert_eq!(near_miss("wrok", &names), Some("work"));
        assert_eq!(near_miss("docter", &names), Some("doctor"));
        assert_eq!(near_miss("satus", &names), Some("status"));
        assert_eq!(near_miss("x", &names), None);
    }
}
