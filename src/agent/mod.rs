//! Agent adapters (Claude Code, Codex, Aider, the demo agent, configured commands): how to
//! start each agent, with its unattended preset, how to read its screen, which routine
//! questions to answer, and how to phrase a task for it; plus the demo agent's input rules.

mod adapter;
mod aider;
mod claude;
mod codex;
mod custom;
pub mod demo;
mod message;
mod registry;
mod screen;
#[cfg(test)]
mod screen_fixtures;
mod startup;

pub use adapter::{Adapter, Answer, Composer, Reply, Screen};
pub use message::TaskMessage;
pub use registry::{AgentError, BUILTIN_KINDS, builtin, resolve};
pub use startup::check_program;

/// Whether a run-state record's extra keys say the agent was started unattended
/// (`batty work --unattended` writes `"unattended": true` there).
pub fn recorded_unattended(extra: &std::collections::BTreeMap<String, serde_json::Value>) -> bool {
    extra.get(UNATTENDED_KEY).and_then(|v| v.as_bool()) == Some(true)
}

/// The run-state key of [`recorded_unattended`].
pub const UNATTENDED_KEY: &str = "unattended";
