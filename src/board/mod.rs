//! kanban-md boards: parse and write task files and config.yml, claims, the ready set.

#[derive(Debug, thiserror::Error)]
pub enum BoardError {}
