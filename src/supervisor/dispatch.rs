//! Choosing the next task for an idle agent, claiming it on the board, phrasing and delivering
//! it, and verifying the delivery. The supervisor's loop calls in here; the board stays the
//! source of truth, so every decision re-reads the task file through `board`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::agent::{Adapter, TaskMessage};
use crate::board::{self, Board, BoardError, Task};
use crate::tmux::{Tmux, TmuxError};

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("delivering task #{task} to agent `{agent}`: {source}")]
    Deliver {
        task: u64,
        agent: String,
        #[source]
        source: Box<TmuxError>,
    },
}

/// A task an agent holds, and how far its delivery got.
#[derive(Debug, Clone)]
pub struct Job {
    pub task: u64,
    /// Where the agent's branch stood when it took the task: its commits are `base..tip`.
    pub base: String,
    pub delivered_at: Instant,
    /// The agent reacted (printed, or reported) after the delivery.
    pub confirmed: bool,
    /// Enter was pressed again once because the agent did not react in time.
    pub enter_retried: bool,
    /// Times the agent went idle with the task unfinished and was reminded.
    pub reminders: u32,
}

impl Job {
    pub fn new(task: &Task, base: String, now: Instant) -> Job {
        Job {
            task: task.id(),
            base,
            delivered_at: now,
            confirmed: false,
            enter_retried: false,
            reminders: 0,
        }
    }

    /// When an unconfirmed delivery needs attention.
    pub fn delivery_deadline(&self, timeout: Duration) -> Option<Instant> {
        (!self.confirmed).then(|| self.delivered_at + timeout)
    }
}

/// The ready tasks an idle agent may take, in dispatch order: not `held` by another agent,
/// and with every dependency `landed` (with the merge queue on, done is not yet enough).
pub fn candidates(
    board: &Board,
    statuses: &[String],
    held: &[u64],
    landed: impl Fn(u64) -> bool,
) -> Vec<u64> {
    board
        .ready(statuses, &board::now())
        .into_iter()
        .filter(|t| !held.contains(&t.id()) && t.depends_on().iter().all(|&d| landed(d)))
        .map(|t| t.id())
        .collect()
}

/// The message an agent gets for a task: first line `Task #<id>: <title>`.
pub fn message(adapter: &Adapter, task: &Task, board_dir: &Path, note: Option<&str>) -> String {
    let mut body = task.body().trim().to_owned();
    if let Some(note) = note {
        if body.is_empty() {
            body = note.to_owned();
        } else {
            body = format!("{note}\n\n{body}");
        }
    }
    adapter.phrase_task(&TaskMessage {
        id: task.id(),
        title: task.title().to_owned(),
        body,
        board_path: board_dir.to_owned(),
    })
}

/// Pastes `text` into the agent's pane and presses Enter.
pub fn deliver(
    tmux: &Tmux,
    pane: &str,
    agent: &str,
    task: u64,
    text: &str,
) -> Result<(), DispatchError> {
    tmux.send_line(pane, text)
        .map_err(|source| DispatchError::Deliver {
            task,
            agent: agent.to_owned(),
            source: Box::new(source),
        })
}

/// Claims `id` for `agent` on the board in `dir`, if it is still ready.
pub fn claim(dir: &Path, id: u64, agent: &str, statuses: &[String]) -> Result<Task, BoardError> {
    board::claim(dir, id, agent, statuses, board::now())
}
