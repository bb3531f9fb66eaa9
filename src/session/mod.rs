//! `batty work`: the plan (pure) and carrying it out, the run state, agent names, which tmux
//! session is this project's, the supervisor and work locks, and the checks made before
//! anything is created (the repository, the tmux socket).

pub mod apply;
pub mod launch;
pub mod lock;
pub mod names;
pub mod plan;
pub mod repo;
pub mod socket;
pub mod state;
pub mod tag;

pub use state::{AgentRecord, RunState, RunStateError};
