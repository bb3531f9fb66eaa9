//! `batty work`: the plan (pure) and carrying it out, the run state, agent names, and which
//! tmux session is this project's.

pub mod apply;
pub mod names;
pub mod plan;
pub mod state;
pub mod tag;

pub use state::{AgentRecord, RunState, RunStateError};
