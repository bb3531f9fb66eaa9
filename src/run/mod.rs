//! `work` and `supervise`: run state, names, the `batty work` plan and carrying it out.

pub mod apply;
pub mod names;
pub mod plan;
pub mod session;
pub mod state;

pub use state::{AgentRecord, RunState, RunStateError};
pub mod supervisor;
mod supervisor_agents;
mod supervisor_git;
mod supervisor_merge;
