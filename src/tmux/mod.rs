//! A thin typed wrapper over the tmux binary.

#[derive(Debug, thiserror::Error)]
pub enum TmuxError {}
