//! File events: what changed (an agent's output or report, a task file, the run state, the
//! config, the merge queue, the died marker), gathered per turn of the loop, then turned
//! into core events. A task file event re-reads that one file; only an event that cannot be
//! attributed to a file (or the safety timer seeing the folder change) reads the whole board.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use notify::Watcher;

use crate::board::Board;

use super::super::event::Event;
use super::{Driver, SuperviseError};

/// What one turn's events ask the loop to look at.
#[derive(Default)]
pub struct Pending {
    output: BTreeSet<String>,
    reports: BTreeSet<String>,
    tasks: BTreeSet<PathBuf>,
    board: bool,
    panes: bool,
    agents: bool,
    config: bool,
    merge: bool,
    /// The safety timer: look at everything cheap.
    safety: bool,
}

impl Pending {
    /// Only agent output arrived: worth batching a few milliseconds more.
    pub fn output_only(&self) -> bool {
        !self.output.is_empty()
            && self.reports.is_empty()
            && self.tasks.is_empty()
            && !(self.board || self.panes || self.agents || self.config || self.merge)
    }

    pub fn safety(&mut self) {
        self.safety = true;
        self.panes = true;
    }
}

/// The watcher over every folder the supervisor cares about.
pub fn start(
    d: &Driver<'_>,
    tx: crossbeam_channel::Sender<notify::Result<notify::Event>>,
) -> Result<notify::RecommendedWatcher, SuperviseError> {
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        // Opens and reads (ours, `batty status`, a person's `cat`) change nothing; passing
        // them on would wake the loop for every look at a watched folder.
        if let Ok(e) = &ev
            && is_look(&e.kind)
        {
            return;
        }
        let _ = tx.send(ev);
    })
    .map_err(|source| SuperviseError::Watch {
        path: d.project.batty_dir(),
        source,
    })?;
    let dirs = [
        d.project.logs_dir(&d.phase),
        d.project.reports_dir(&d.phase),
        d.core.board().config().tasks_path(),
        d.project.phase_run_dir(&d.phase),
        d.project.batty_dir(),
    ];
    for dir in dirs {
        std::fs::create_dir_all(&dir).map_err(|source| SuperviseError::Io {
            path: dir.clone(),
            source,
        })?;
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|source| SuperviseError::Watch { path: dir, source })?;
    }
    Ok(watcher)
}

/// An event that only says a file was opened or read. A close after writing does say
/// something changed.
fn is_look(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(kind, notify::EventKind::Access(k) if *k != AccessKind::Close(AccessMode::Write))
}

/// Sorts one watcher event into `pending`.
pub fn classify(d: &mut Driver<'_>, ev: notify::Result<notify::Event>, pending: &mut Pending) {
    let ev = match ev {
        Ok(ev) => ev,
        Err(err) => {
            tracing::warn!(%err, "watcher error; reading everything again");
            pending.safety = true;
            pending.board = true;
            return;
        }
    };
    if ev.need_rescan() {
        pending.safety = true;
        pending.board = true;
    }
    let tasks_dir = d.core.board().config().tasks_path();
    for path in &ev.paths {
        if path.parent() == Some(tasks_dir.as_path()) {
            if is_task_file(path) {
                pending.tasks.insert(path.clone());
            }
        } else if path == &tasks_dir {
            pending.board = true;
        } else if path == &d.project.died_marker(&d.phase) {
            pending.panes = true;
        } else if path == &d.project.run_state(&d.phase) {
            pending.agents = true;
        } else if path == &d.project.config_file() {
            pending.config = true;
        } else if d.merge.as_ref().is_some_and(|m| m.watches(path)) {
            pending.merge = true;
        } else if let Some(agent) = d.agents.by_pty(path) {
            pending.output.insert(agent);
        } else if let Some(agent) = d.agents.by_report(path) {
            pending.reports.insert(agent);
        }
    }
}

/// A name the board reads: `*.md`, not a temp file of a writer.
fn is_task_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".md") && !n.starts_with('.'))
}

/// Turns what piled up into core events.
pub fn handle(d: &mut Driver<'_>, pending: Pending) {
    if pending.config {
        super::reload_config(d);
    }
    if pending.agents {
        d.reload_agents();
    }
    if pending.merge
        && let Some(m) = &mut d.merge
    {
        m.wake();
    }
    let rescan = pending.board || (pending.safety && board_moved(d));
    if rescan {
        match Board::load(d.core.board().dir()) {
            Ok(board) => d.queue.push_back(Event::Board(board)),
            Err(err) => {
                // A passing fault (the folder being replaced, say): the next look tries again.
                let text = format!("board not readable: {err}");
                d.log(None, &text, false);
            }
        }
    } else {
        if !pending.tasks.is_empty() {
            let reads = pending
                .tasks
                .into_iter()
                .map(|p| {
                    let read = crate::board::read_one(&p);
                    (p, read)
                })
                .collect();
            d.queue.push_back(Event::TaskFiles(reads));
        }
    }
    let names: Vec<String> = if pending.safety {
        d.agents.names()
    } else {
        pending.output.into_iter().collect()
    };
    let mut prompts = Vec::new();
    for agent in names {
        match read_output(d, &agent) {
            Some(true) => {
                d.queue.push_back(Event::Output {
                    agent: agent.clone(),
                });
                prompts.push(agent);
            }
            Some(false) => d.queue.push_back(Event::Output { agent }),
            None => {}
        }
    }
    let names: Vec<String> = if pending.safety {
        d.agents.names()
    } else {
        pending.reports.into_iter().collect()
    };
    for agent in names {
        read_reports(d, &agent);
    }
    // After the reports: an agent that said it is idle needs no look at its prompt.
    for agent in prompts {
        d.queue.push_back(Event::Prompt { agent });
    }
    if pending.panes {
        let panes = d.agents.list_panes(&d.tmux, d.session.as_deref());
        for p in &panes {
            if let (false, Some(pid)) = (p.dead, p.pid) {
                d.pids.watch(&p.agent, pid);
            }
        }
        d.queue.push_back(Event::Panes(panes));
    }
}

/// Whether the task folder changed since the last full read (cheap: one `stat` per file).
fn board_moved(d: &mut Driver<'_>) -> bool {
    let dir = d.core.board().config().tasks_path();
    let mut newest = std::fs::metadata(&dir).and_then(|m| m.modified()).ok();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                newest = newest.max(Some(t));
            }
        }
    }
    let moved = newest != d.board_seen;
    d.board_seen = newest;
    moved
}

/// Reads the agent's new output: `None` when there was none, else whether it ends on the
/// agent's ready prompt (its unfinished last line, as its adapter reads a screen).
fn read_output(d: &mut Driver<'_>, agent: &str) -> Option<bool> {
    let adapter = d.core.adapter_of(agent);
    let io = d.agents.get_mut(agent)?;
    let mut bytes = 0;
    loop {
        match io.tail.read() {
            Ok(read) => {
                bytes += read.bytes;
                if !read.more {
                    break;
                }
            }
            Err(err) => {
                tracing::debug!(agent, %err, "pty log not readable");
                break;
            }
        }
    }
    if bytes == 0 {
        return None;
    }
    let last = io.tail.pending();
    let prompt =
        !last.trim().is_empty() && adapter.is_some_and(|a| shows_prompt(&a.classify(&last)));
    Some(prompt)
}

/// A ready screen with nothing typed (or a composer the adapter cannot read).
fn shows_prompt(screen: &crate::agent::Screen) -> bool {
    use crate::agent::{Composer, Screen};
    matches!(
        screen,
        Screen::Ready {
            composer: Composer::Empty | Composer::Unknown
        }
    )
}

fn read_reports(d: &mut Driver<'_>, agent: &str) {
    let Some(io) = d.agents.get_mut(agent) else {
        return;
    };
    let reports = match io.reports.read() {
        Ok(r) => r,
        Err(err) => {
            tracing::debug!(%err, "reports not readable");
            return;
        }
    };
    for report in reports {
        match report {
            Ok(r) => d.queue.push_back(Event::Report {
                agent: agent.to_owned(),
                state: r.state,
                note: r.note,
            }),
            Err(err) => {
                let text = format!("ignored a bad status report: {err}");
                d.log(Some(agent), &text, false);
            }
        }
    }
}
