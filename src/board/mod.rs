//! kanban-md boards: parse and write task files and config.yml, claims, the ready set.
//!
//! A board is a folder with a `config.yml` and a folder of task files (`tasks/` by default),
//! as kanban-md v0.37 keeps them. [`Board::load`] reads everything once and never writes;
//! the functions in [`ops`] change one task at a time, each under the board's `.lock` flock,
//! re-reading the file first and writing it atomically.

mod activity;
mod config;
pub mod discover;
mod encode;
mod frontmatter;
pub mod index;
mod load;
pub mod ops;
mod ready;
mod slug;
mod task;
mod time;
mod yaml;

use std::fmt;
use std::path::PathBuf;

pub use config::{ARCHIVED, BoardConfig, ClassDef, StatusDef, default_config_yml};
pub use index::clean_temp_files;
pub use load::Board;
pub use ops::{NewTask, claim, create, move_to, release, release_status, update, working_status};
pub use slug::{file_name, slug};
pub use task::{Task, TaskJson};
pub use time::{Timestamp, format_rfc3339_nano, now, parse_go_duration, parse_timestamp};

/// A task file that could not be read; the board works on without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: PathBuf,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("no board at {}: `config.yml` is missing", dir.display())]
    NoConfig { dir: PathBuf },
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Config {
        path: PathBuf,
        line: Option<u64>,
        message: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("task #{id} not found in {}", dir.display())]
    NotFound { id: u64, dir: PathBuf },
    #[error("{0}")]
    BadFile(Problem),
    #[error(
        "{}: its front matter layout (a multi-line flow collection or complex key) cannot be rewritten without losing text; edit it by hand",
        path.display()
    )]
    Unrewritable { path: PathBuf },
    #[error("task #{id} is not ready: {reason}")]
    NotReady { id: u64, reason: String },
    #[error("task #{id} is claimed by `{agent}`")]
    ClaimedByOther { id: u64, agent: String },
    #[error("unknown {what} `{value}` (the board has: {allowed})")]
    Unknown {
        what: &'static str,
        value: String,
        allowed: String,
    },
    #[error("invalid task: {0}")]
    Invalid(String),
}

/// Parses a task file's text (`path` is only recorded), keeping its layout so that
/// [`render_task`] writes untouched keys, unknown keys and comments back byte for byte.
pub fn parse_task(path: &std::path::Path, text: &str) -> Result<Task, Problem> {
    Task::parse(path, text, true).map_err(|e| Problem {
        path: path.to_owned(),
        line: Some(e.line),
        reason: e.reason,
    })
}

/// The file text kanban-md would write for `task`.
pub fn render_task(task: &Task) -> String {
    encode::render(task)
}
