//! git worktrees for agents, through the git binary.

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {}
