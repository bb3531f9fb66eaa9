//! Watching agents: pty-log tailing from saved byte offsets, ANSI stripping, and agents' own
//! status reports. Pure and fast; the supervisor's driver calls in here.

pub mod ansi;
pub mod report;
pub mod tail;

pub use ansi::Stripper;
pub use report::{Report, ReportError, ReportReader, ReportedState};
pub use tail::{FileCursor, LogTail, RawRead, TailRead};
