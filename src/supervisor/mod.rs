//! The supervisor: watches every agent of a phase, hands them the board's tasks, answers
//! routine questions, revives agents that die, and feeds finished work to the merge queue.
//!
//! - [`core::Core`] decides: its state, one [`event::Event`] and the time in, [`event::Effect`]s
//!   out, no I/O (`dispatch.rs`, `delivery.rs`, `outcome.rs`, `board.rs`, `life.rs` and
//!   `questions.rs` hold its concerns);
//! - `driver` runs it: the `select!` loop that turns tmux, the file watcher, pane exits and the
//!   merge worker into events and carries out the effects.

pub mod agent;
mod board;
pub mod core;
mod delivery;
mod dispatch;
pub mod driver;
pub mod event;
pub mod history;
mod life;
mod outcome;
mod questions;
pub mod settings;

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod sim;

pub use driver::{Options, Row, Summary, SuperviseError, View, supervise};
pub use settings::Settings;
