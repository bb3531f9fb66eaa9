//! The supervisor: watches every agent of a phase, hands them the board's tasks, answers
//! routine questions, revives agents that die, and feeds finished work to the merge queue.

mod agents;
pub mod dispatch;
pub mod driver;
mod git;
mod merge;
pub mod tracker;

pub use driver::{Options, Row, Summary, SuperviseError, View, supervise};
