//! What the core's decisions depend on from `.batty/config.yml` and the board: timings,
//! budgets, the dispatch statuses and each agent kind's adapter. Rebuilt on a config edit.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::Adapter;
use crate::config::Config;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Quiet time after output before the screen is read.
    pub silence: Duration,
    /// A busy agent holding a task with no output this long is interrupted.
    pub stuck_after: Duration,
    /// A task held this long is interrupted (a task can set its own).
    pub task_timeout: Duration,
    /// Time a delivery has to be taken (composer cleared, busy) before it counts as lost.
    pub delivery_timeout: Duration,
    /// Time a person has to answer a question in the pane before the auto-answer goes.
    pub answer_grace: Duration,
    /// An agent idle with an unfinished task is reminded only after this long idle.
    pub reminder_settle: Duration,
    /// Reminders before the attempt counts as failed.
    pub max_reminders: u32,
    /// Failed attempts before a task goes to review.
    pub max_attempts: u32,
    /// Restarts of one agent within `restart_window` before it is parked.
    pub max_restarts: u32,
    pub restart_window: Duration,
    /// Wait before restarting a dead agent (doubled for each recent restart).
    pub restart_backoff: Duration,
    /// After an interrupt, time the agent has to come back to its prompt before a restart.
    pub interrupt_grace: Duration,
    pub dispatch_statuses: Vec<String>,
    pub exit_when_done: bool,
    pub merge_enabled: bool,
    /// The board folder, named in task messages.
    pub board_dir: PathBuf,
    /// Where rejected work is kept: `refs/batty/<phase>/rejected/`.
    pub rejected_prefix: String,
    /// Adapters by agent kind.
    pub adapters: BTreeMap<String, Arc<Adapter>>,
}

impl Settings {
    /// The settings for a phase; `adapters` resolved by the caller (it knows the batty binary).
    pub fn new(
        config: &Config,
        phase: &str,
        board_dir: PathBuf,
        adapters: BTreeMap<String, Arc<Adapter>>,
        exit_when_done: bool,
    ) -> Settings {
        let s = &config.supervisor;
        Settings {
            silence: s.silence,
            stuck_after: s.stuck_after,
            task_timeout: s.task_timeout,
            delivery_timeout: s.delivery_timeout,
            answer_grace: s.answer_grace,
            reminder_settle: s.reminder_settle,
            max_reminders: s.max_retries,
            max_attempts: s.max_attempts.max(1),
            max_restarts: s.max_restarts,
            restart_window: s.restart_window,
            restart_backoff: s.restart_backoff,
            interrupt_grace: s.interrupt_grace,
            dispatch_statuses: s.dispatch_statuses.clone(),
            exit_when_done,
            merge_enabled: config.merge.enabled,
            board_dir,
            rejected_prefix: format!("refs/batty/{phase}/rejected/"),
            adapters,
        }
    }

    pub fn adapter(&self, kind: &str) -> Option<&Arc<Adapter>> {
        self.adapters.get(kind)
    }
}
