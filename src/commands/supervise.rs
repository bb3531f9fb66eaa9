//! `batty supervise <phase>`: the supervisor, run by `batty work` in window 0 of the session.

use std::collections::VecDeque;
use std::io::Write;

use crate::status::PhaseStatus;
use crate::supervisor::{self, Options, Row, View};

/// Watch the agents of a phase and hand them the board's tasks (started by `batty work`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The phase whose session this supervises.
    pub phase: String,
    /// End the session once every task is terminal and every agent idle.
    #[arg(long)]
    pub exit_when_done: bool,
    /// The branch the agents' worktrees start from (where work lands unless `merge.target`
    /// says otherwise).
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
}

pub fn run(args: Args) -> crate::error::Result<()> {
    crate::paths::validate_phase(&args.phase)?;
    let project = super::project()?;
    // The supervisor ends when its pane does; its git steps (a merge landing on the main
    // checkout, say) must not end with it halfway.
    crate::proc::children_in_own_group();
    let mut view = Screen::default();
    let options = Options {
        phase: args.phase,
        exit_when_done: args.exit_when_done,
        base: args.base,
    };
    let summary = supervisor::supervise(project, options, &mut view)?;
    if summary.is_some() {
        view.flush_events();
    }
    Ok(())
}

/// The supervisor pane: a status table redrawn on change, with the latest events under it.
#[derive(Default)]
struct Screen {
    table: Vec<String>,
    events: VecDeque<String>,
}

const EVENTS_SHOWN: usize = 15;

impl Screen {
    fn redraw(&self) {
        let mut out = std::io::stdout().lock();
        // Home + clear: the pane shows the current table, not a scroll of old ones.
        let _ = write!(out, "\x1b[H\x1b[2J");
        for line in &self.table {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
        for e in &self.events {
            let _ = writeln!(out, "{e}");
        }
        let _ = out.flush();
    }

    fn flush_events(&self) {
        self.redraw();
    }
}

impl View for Screen {
    fn status(&mut self, phase: &str, status: &PhaseStatus, rows: &[Row]) {
        let mut table = vec![
            status.bar(phase),
            String::new(),
            format!(
                "{:<20} {:<9} {:<6} {:<6} {}",
                "AGENT", "STATE", "TASK", "PANE", "QUESTION"
            ),
        ];
        for r in rows {
            let task = r
                .task
                .map(|t| format!("#{t}"))
                .unwrap_or_else(|| "-".into());
            let q = r
                .question
                .as_deref()
                .and_then(|q| q.lines().last())
                .unwrap_or("");
            table.push(format!(
                "{:<20} {:<9} {:<6} {:<6} {}",
                r.agent,
                r.state.as_str(),
                task,
                r.pane,
                q
            ));
        }
        for m in &status.merge_queue {
            let reason = m.reason.as_deref().unwrap_or("");
            table.push(format!(
                "merge #{} ({}) {} {reason}",
                m.task, m.agent, m.state
            ));
        }
        self.table = table;
        self.redraw();
    }

    fn event(&mut self, agent: Option<&str>, message: &str, bell: bool) {
        let now = chrono::Local::now().format("%H:%M:%S");
        let who = agent.map(|a| format!("{a}: ")).unwrap_or_default();
        self.events.push_back(format!("{now} {who}{message}"));
        while self.events.len() > EVENTS_SHOWN {
            self.events.pop_front();
        }
        self.redraw();
        if bell {
            // The bell marks window 0 in the status line and alerts an attached client.
            print!("\x07");
            let _ = std::io::stdout().flush();
        }
    }
}
