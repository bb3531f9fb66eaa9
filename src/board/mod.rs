//! kanban-md boards: parse and write task files and config.yml, claims, the ready set.
//!
//! A board is a folder with a `config.yml` and a folder of task files (`tasks/` by default),
//! as kanban-md v0.37 keeps them. [`Board::load`] reads everything once and never writes, and
//! [`Board::reload_paths`] keeps a loaded board current one file at a time; the functions in
//! [`ops`] change one task at a time, each under the board's `.lock` flock, as a
//! compare-and-swap on the task's file so that an edit a person saves meanwhile is kept.

mod activity;
mod config;
pub mod discover;
mod encode;
mod files;
mod find;
mod frontmatter;
mod index;
mod load;
mod merge;
pub mod ops;
mod problem;
mod ready;
mod slug;
mod task;
mod time;
mod yaml;

use std::path::PathBuf;

pub use config::{ARCHIVED, BoardConfig, ClassDef, StatusDef, default_config_yml};
pub use files::{CommitTiming, MAX_TASK_FILE, force_plain_rename, last_commit};
pub use index::{INDEX_FILE, remember_file};
pub use load::{Board, Changes, FileRead, read_one};
pub use ops::{
    NewTask, claim, create, find_task, move_to, readiness, release, release_status,
    remove_leftover_temps, update, working_status,
};
pub use problem::{Problem, ProblemKind, cycle_text};
pub use slug::{file_name, slug};
pub use task::{Task, TaskJson};
pub use time::{Timestamp, format_rfc3339_nano, now, parse_go_duration, parse_timestamp};

/// What went wrong with a board. Messages escape control characters in anything that came
/// from the board's files, so printing one cannot drive a terminal.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("no board at {}: `config.yml` is missing", esc_path(dir))]
    NoConfig { dir: PathBuf },
    #[error("{}{}: {}", esc_path(path), line.map(|l| format!(":{l}")).unwrap_or_default(), esc(message))]
    Config {
        path: PathBuf,
        line: Option<u64>,
        message: String,
    },
    #[error("cannot read {}: {source}", esc_path(path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", esc_path(path))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {}: {source}", esc_path(path))]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("task #{id} not found in {}", esc_path(dir))]
    NotFound { id: u64, dir: PathBuf },
    #[error("{0}")]
    BadFile(Problem),
    #[error(
        "{}: its front matter layout (a multi-line flow collection or complex key) cannot be rewritten without losing text; edit it by hand",
        esc_path(path)
    )]
    Unrewritable { path: PathBuf },
    #[error("task #{id} is not ready: {}", esc(reason))]
    NotReady { id: u64, reason: String },
    #[error("task #{id} is claimed by `{}`", esc(agent))]
    ClaimedByOther { id: u64, agent: String },
    #[error("unknown {what} `{}` (the board has: {})", esc(value), esc(allowed))]
    Unknown {
        what: &'static str,
        value: String,
        allowed: String,
    },
    #[error(
        "dependency cycle: {}; a task cannot wait for itself",
        cycle_text(cycle)
    )]
    Cycle { cycle: Vec<u64> },
    #[error(
        "{} kept changing while batty tried to change it ({attempts} tries); try again",
        esc_path(path)
    )]
    Contended { path: PathBuf, attempts: u32 },
    #[error("invalid task: {}", esc(.0))]
    Invalid(String),
}

fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    crate::text::one_line(text)
}

fn esc_path(path: &std::path::Path) -> String {
    crate::text::one_line(&path.display().to_string()).into_owned()
}

/// Parses a task file's text (`path` is only recorded), keeping its layout so that
/// [`render_task`] writes untouched keys, unknown keys and comments back byte for byte.
pub fn parse_task(path: &std::path::Path, text: &str) -> Result<Task, Problem> {
    Task::parse(path, text, true)
        .map_err(|e| Problem::new(ProblemKind::Unreadable, path, Some(e.line), e.reason))
}

/// The file text kanban-md would write for `task`.
pub fn render_task(task: &Task) -> String {
    encode::render(task)
}
