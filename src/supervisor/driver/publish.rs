//! What the supervisor shows: the status snapshot `batty status` reads, the tmux status line
//! (with the latest outcomes from the attempt record), window names, and the table in its own
//! pane. Written only when something changed.

use crate::status::{AgentState, AgentStatus, PhaseStatus};

use super::Driver;

/// Where the supervisor shows what it does (its own pane); it never prints itself.
pub trait View {
    /// The agents and counts changed.
    fn status(&mut self, phase: &str, status: &PhaseStatus, rows: &[Row]);
    /// Something happened; `bell` when a person is needed.
    fn event(&mut self, agent: Option<&str>, message: &str, bell: bool);
}

/// One agent as the status table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub agent: String,
    pub state: AgentState,
    pub task: Option<u64>,
    /// The window's tab number, as a person presses it.
    pub window: Option<u32>,
    pub pane: String,
    pub question: Option<String>,
    pub parked: Option<String>,
}

/// How the run ended (only with `--exit-when-done`).
#[derive(Debug, Clone)]
pub struct Summary {
    pub done: usize,
    pub total: usize,
    pub merged: usize,
    pub review: Vec<u64>,
    /// The whole report, as written to `summary.txt`.
    pub text: String,
}

/// The last thing published, so nothing unchanged is written again.
#[derive(Default)]
pub struct Published {
    status: Option<PhaseStatus>,
    bar: String,
    rows: Vec<Row>,
}

/// The width the status line may take (an 80-column terminal keeps room for the session name
/// on the left).
const BAR_WIDTH: usize = 60;

pub fn publish(d: &mut Driver<'_>) {
    let status = snapshot(d);
    let rows = d.rows();
    if d.publish.status.as_ref() == Some(&status) && d.publish.rows == rows {
        return;
    }
    if let Err(err) = status.save(&d.project.status_file(&d.phase)) {
        tracing::warn!(%err, "status snapshot not writable");
    }
    let mut bar = status.bar(&d.phase);
    let outcomes = d
        .record
        .latest_outcomes(BAR_WIDTH.saturating_sub(bar.chars().count() + 3));
    if !outcomes.is_empty() {
        bar.push_str(" | ");
        bar.push_str(&outcomes);
    }
    if bar != d.publish.bar
        && let Some(session) = &d.session
    {
        let _ = d.tmux.set_option(
            crate::tmux::Scope::Session(session),
            "status-right",
            &crate::tmux::escape_format(&crate::text::one_line(&bar)),
        );
        d.publish.bar = bar;
    }
    d.view.status(&d.phase, &status, &rows);
    d.publish.status = Some(status);
    d.publish.rows = rows;
}

fn snapshot(d: &Driver<'_>) -> PhaseStatus {
    let wall = chrono::Utc::now().timestamp();
    let now = d.now();
    let agents = d
        .core
        .agents()
        .into_iter()
        .map(|a| {
            let age = now.saturating_sub(a.since).as_secs() as i64;
            (
                a.name,
                AgentStatus {
                    state: a.state,
                    task: a.task,
                    question: a.question,
                    since: wall - age,
                },
            )
        })
        .collect();
    let board = d.core.board();
    let tasks = board.tasks();
    PhaseStatus {
        supervisor_pid: std::process::id(),
        agents,
        merge_queue: d.merge.as_ref().map(|m| m.status()).unwrap_or_default(),
        tasks_done: tasks
            .iter()
            .filter(|t| board.is_terminal(t.status()))
            .count(),
        tasks_total: tasks.len(),
    }
}

/// The run's report from the record, the board and the target branch: what `summary.txt`
/// holds at `--exit-when-done`.
pub fn summary(d: &Driver<'_>) -> Summary {
    use crate::record::{self, report};
    let path = d.project.attempts_file(&d.phase);
    let (entries, _) = record::read(&path);
    let history = record::History::fold(&entries);
    let target = d
        .merge
        .as_ref()
        .map(|m| m.target().to_owned())
        .unwrap_or_default();
    let on_target =
        report::on_target(d.project.root(), &target, &history.landed_commits()).unwrap_or_default();
    let board = d.core.board();
    let built = report::build(&report::Inputs {
        phase: &d.phase,
        target: &target,
        entries: &entries,
        board,
        on_target: &on_target.landed,
        merging: d.merge.is_some(),
        now: chrono::Utc::now(),
    });
    let review = built.totals.in_review.iter().map(|r| r.task).collect();
    Summary {
        done: built.totals.done,
        total: built.totals.tasks,
        merged: built.totals.merged,
        review,
        text: crate::record::render::markdown(&built),
    }
}
