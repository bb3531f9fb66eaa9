//! Watching agents: pty-log tailing from saved offsets, ANSI stripping, agents' own status
//! reports, and the per-agent state machine. Pure and fast; the event loop in `run` drives it.

pub mod ansi;
pub mod report;
pub mod state;
pub mod tail;

pub use ansi::Stripper;
pub use report::{Report, ReportError, ReportReader, ReportedState};
pub use state::{Tick, Timing, Tracker, Transition, Wake};
pub use tail::{FileCursor, LogTail, RawRead, TailRead};
