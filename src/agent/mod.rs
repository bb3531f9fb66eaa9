//! Agent adapters (Claude Code, Codex, Aider, configured commands) and the demo agent.
