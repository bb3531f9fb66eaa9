//! The record of every attempt at every task of a phase: an append-only file of JSON lines at
//! `.batty/logs/<phase>/attempts.jsonl` (format: `docs/record.md`), the history folded from
//! it, and the reports built from that history.
//!
//! Writers ([`append`]) add whole lines and never rewrite; readers ([`read`]) report and skip
//! lines they cannot use. Everything between reading and printing is pure.

pub mod entry;
mod file;
pub mod history;
pub mod render;
pub mod report;
pub mod settle;
pub mod show;
pub mod statusline;

pub use entry::{
    At, Delivered, EndOutcome, Ended, Entry, Event, FileChange, Merge, MergeResult, Review, Run,
    RunAction,
};
pub use file::{Problem, RecordError, append, parse, parse_line, read};
pub use history::{Attempt, History, Outcome, TaskHistory};
