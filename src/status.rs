//! The status model, rendered as a table, JSON and the tmux status bar.
