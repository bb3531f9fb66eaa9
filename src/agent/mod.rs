//! Agent adapters (Claude Code, Codex, Aider, configured commands): how to start each agent,
//! how to read its screen, which routine questions to answer, and how to phrase a task for
//! it; plus the input rules of the built-in demo agent.

mod adapter;
mod builtin;
pub mod demo;
mod message;

pub use adapter::{Adapter, Answer, Composer, Matcher, Scope, Screen};
pub use builtin::{AgentError, BUILTIN_KINDS, builtin, resolve};
pub use message::TaskMessage;
