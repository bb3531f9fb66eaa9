//! The integration tests: one crate, a module per area, all driving the built `batty` binary
//! against real git repositories and a private tmux server per test (see `common`).

mod common;

mod agent_status;
mod board_concurrency;
mod board_hostile;
mod board_race;
mod board_roundtrip;
mod completions;
mod config_cli;
mod config_reload;
mod demo;
mod demo_agent;
mod doctor;
mod errors;
mod init;
mod logs;
mod merge_cli;
mod merge_e2e;
mod merge_faults;
mod merge_integrity;
mod merge_queue;
mod merge_refs;
mod readme;
mod real_agents;
mod record_e2e;
mod recovery;
mod report;
mod status;
mod supervise_e2e;
mod task_cli;
mod tmux_send;
mod work_layout;
mod work_rerun;
mod worktree_new;
