//! File events: what changed (an agent's output or report, a task file, the board's config, the
//! run state, the config, the merge queue, the died marker), gathered per turn of the loop, then
//! turned into core events. A task file event re-reads that one file, once its writer is done
//! with it; only an event that names no file (a watcher overflow or error, the task folder
//! replaced) reads the whole board, at most once per [`RESCAN_WINDOW`]. Nothing is read on a
//! timer: inotify loses no event without saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::Watcher;

use crate::board::{FileRead, ProblemKind};
use crate::paths::Project;

use super::super::event::Event;
use super::{Driver, SuperviseError};

/// Full reads of the board are at least this far apart: a burst of overflows costs one.
const RESCAN_WINDOW: Duration = Duration::from_secs(1);

/// A task file written in place is read when its writer closes it; one kept open longer than
/// this (a program writing it bit by bit) is read anyway.
const WRITER_GRACE: Duration = Duration::from_millis(250);

/// What one turn's events ask the loop to look at.
#[derive(Default)]
pub struct Pending {
    output: BTreeSet<String>,
    reports: BTreeSet<String>,
    tasks: BTreeSet<PathBuf>,
    /// Something happened that no file explains: read the whole board.
    board: bool,
    /// The board's `config.yml` changed.
    board_config: bool,
    /// The task folder itself went or came: watch it again.
    rewatch: bool,
    panes: bool,
    agents: bool,
    config: bool,
    merge: bool,
    /// The safety timer: look at everything cheap (agents' output and reports, the panes).
    safety: bool,
}

impl Pending {
    /// Only agent output arrived: worth batching a few milliseconds more.
    pub fn output_only(&self) -> bool {
        !self.output.is_empty()
            && self.reports.is_empty()
            && self.tasks.is_empty()
            && !(self.board
                || self.board_config
                || self.rewatch
                || self.panes
                || self.agents
                || self.config
                || self.merge)
    }

    pub fn safety(&mut self) {
        self.safety = true;
        self.panes = true;
    }
}

/// The watcher, and what the board's side of it remembers from one turn to the next.
pub struct BoardWatch {
    watcher: notify::RecommendedWatcher,
    /// The task folder being watched, and the board's config file.
    tasks_dir: PathBuf,
    config_file: PathBuf,
    /// Task files being written in place, with when they are read even if not closed.
    writing: BTreeMap<PathBuf, Instant>,
    /// `.batty/config.yml` being written in place: read when its writer closes it, or at this
    /// time (never half written: a truncated file is a valid config without its gate).
    config_writing: Option<Instant>,
    last_rescan: Instant,
    rescan_wanted: bool,
}

impl BoardWatch {
    /// Starts watching every folder the supervisor cares about. Started before the board is
    /// read, so a save made while it loads comes as an event instead of being missed.
    pub fn start(
        project: &Project,
        phase: &str,
        board_dir: &Path,
        tx: crossbeam_channel::Sender<notify::Result<notify::Event>>,
    ) -> Result<BoardWatch, SuperviseError> {
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
            path: project.batty_dir(),
            source,
        })?;
        let tasks_dir = crate::board::BoardConfig::load(board_dir)?.tasks_path();
        let mut dirs = vec![
            project.logs_dir(phase),
            project.reports_dir(phase),
            project.phase_run_dir(phase),
            project.batty_dir(),
            board_dir.to_owned(),
            tasks_dir.clone(),
        ];
        // The folder holding the task folder tells when the task folder is replaced.
        if let Some(parent) = tasks_dir.parent()
            && parent != board_dir
        {
            dirs.push(parent.to_owned());
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).map_err(|source| SuperviseError::Io {
                path: dir.clone(),
                source,
            })?;
            watcher
                .watch(&dir, notify::RecursiveMode::NonRecursive)
                .map_err(|source| SuperviseError::Watch { path: dir, source })?;
        }
        Ok(BoardWatch {
            watcher,
            tasks_dir,
            config_file: board_dir.join("config.yml"),
            writing: BTreeMap::new(),
            config_writing: None,
            last_rescan: Instant::now(),
            rescan_wanted: false,
        })
    }

    /// When the loop must look again without an event: a writer's grace ends, or a full read
    /// held back by [`RESCAN_WINDOW`] is due.
    pub fn next_wake(&self) -> Option<Instant> {
        let writer = self
            .writing
            .values()
            .chain(&self.config_writing)
            .min()
            .copied();
        let rescan = self
            .rescan_wanted
            .then_some(self.last_rescan + RESCAN_WINDOW);
        writer.into_iter().chain(rescan).min()
    }
}

/// An event that only says a file was opened or read. A close after writing does say
/// something changed.
fn is_look(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(kind, notify::EventKind::Access(k) if *k != AccessKind::Close(AccessMode::Write))
}

/// What an event on a task file asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskEvent {
    /// Written in place: read it when the writer closes it.
    Writing,
    /// Created: read it now (a link arrives whole), but a writer may still be filling it.
    Created,
    /// The writer closed it: read it now.
    Closed,
    /// Renamed, removed, its mode changed: read it now.
    Changed,
}

fn task_event(kind: &notify::EventKind) -> TaskEvent {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => TaskEvent::Writing,
        EventKind::Create(_) => TaskEvent::Created,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => TaskEvent::Closed,
        _ => TaskEvent::Changed,
    }
}

/// Whether a read is held back for a writer's grace: it gave no task (an empty or half
/// written file) while a writer may still be at it (one has not closed the file yet, or the
/// file held a task a moment ago and the next writer's truncate may have come before its
/// events). A writer's close brings the rest; a file still broken when the grace ends is
/// reported then. A special file is reported at once (no writer fills a FIFO), and so is a
/// task or a removal.
fn held_back(read: &FileRead, writer_may_be_at_it: bool) -> bool {
    writer_may_be_at_it && matches!(read, FileRead::Broken(p) if p.kind != ProblemKind::NotAFile)
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
    let tasks_dir = d.board_watch.tasks_dir.clone();
    for path in &ev.paths {
        if path.parent() == Some(tasks_dir.as_path()) {
            if is_task_file(path) {
                let grace = Instant::now() + WRITER_GRACE;
                match task_event(&ev.kind) {
                    TaskEvent::Writing => {
                        d.board_watch.writing.entry(path.clone()).or_insert(grace);
                    }
                    TaskEvent::Created => {
                        d.board_watch.writing.entry(path.clone()).or_insert(grace);
                        pending.tasks.insert(path.clone());
                    }
                    TaskEvent::Closed => {
                        d.board_watch.writing.remove(path);
                        pending.tasks.insert(path.clone());
                    }
                    TaskEvent::Changed => {
                        pending.tasks.insert(path.clone());
                    }
                }
            }
        } else if path == &tasks_dir {
            pending.board = true;
            pending.rewatch = true;
        } else if path == &d.board_watch.config_file {
            pending.board_config = true;
        } else if path == &d.project.died_marker(&d.phase) {
            pending.panes = true;
        } else if path == &d.project.run_state(&d.phase) {
            pending.agents = true;
        } else if path == &d.project.config_file() {
            match task_event(&ev.kind) {
                TaskEvent::Writing => {
                    let grace = Instant::now() + WRITER_GRACE;
                    d.board_watch.config_writing.get_or_insert(grace);
                }
                _ => {
                    d.board_watch.config_writing = None;
                    pending.config = true;
                }
            }
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
pub fn handle(d: &mut Driver<'_>, mut pending: Pending) {
    if d.board_watch
        .config_writing
        .is_some_and(|at| at <= Instant::now())
    {
        // Its writer kept it open past the grace: read what is there.
        d.board_watch.config_writing = None;
        pending.config = true;
    }
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
    board_events(d, &mut pending);
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

/// The board's share of a turn: the task files that changed, each read alone; the board's
/// config; a full read only when something named no file.
fn board_events(d: &mut Driver<'_>, pending: &mut Pending) {
    let now = Instant::now();
    if pending.rewatch {
        rewatch(d);
    }
    let bw = &mut d.board_watch;
    bw.rescan_wanted |= pending.board;
    if bw.rescan_wanted && now >= bw.last_rescan + RESCAN_WINDOW {
        bw.rescan_wanted = false;
        bw.last_rescan = now;
        // Everything is read: what was waiting for a writer is read with the rest.
        bw.writing.clear();
        let mut board = d.core.board().clone();
        match board.rescan() {
            Ok(_) => d.queue.push_back(Event::Board(board)),
            Err(err) => {
                // A passing fault (the folder being replaced, say): the next event tries again.
                let text = format!("board not readable: {err}");
                d.log(None, &text, false);
            }
        }
        after_board_change(d);
        return;
    }
    if pending.board_config {
        board_config(d);
    }
    // Writers that kept a file open past their grace: read what is there.
    let bw = &mut d.board_watch;
    let due: Vec<PathBuf> = bw
        .writing
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(p, _)| p.clone())
        .collect();
    let due: BTreeSet<PathBuf> = due.into_iter().collect();
    for path in &due {
        bw.writing.remove(path);
        pending.tasks.insert(path.clone());
    }
    if pending.tasks.is_empty() {
        return;
    }
    let board_dir = d.core.board().dir().to_owned();
    let mut reads = Vec::new();
    for path in std::mem::take(&mut pending.tasks) {
        let read = crate::board::read_one(&path);
        let held_a_task = || d.core.board().holds_task(&path);
        let writer =
            d.board_watch.writing.contains_key(&path) || (!due.contains(&path) && held_a_task());
        if held_back(&read, writer) {
            d.board_watch
                .writing
                .entry(path)
                .or_insert(now + WRITER_GRACE);
            continue;
        }
        if let FileRead::Task(t) = &read
            && d.core
                .board()
                .task(t.id())
                .is_none_or(|known| known.path() != path)
        {
            // New here (or renamed): the next change of it finds the file at once.
            crate::board::remember_file(&board_dir, t.id(), t.file_name());
        }
        reads.push((path, read));
    }
    if !reads.is_empty() {
        d.queue.push_back(Event::TaskFiles(reads));
    }
}

/// The board's `config.yml` changed. A change of `next_id` alone (every `task add`) is
/// nothing to the supervisor; any other change gives the core the board under the new
/// config (a new task folder is read whole and watched).
fn board_config(d: &mut Driver<'_>) {
    let dir = d.core.board().dir().to_owned();
    let config = match crate::board::BoardConfig::load(&dir) {
        Ok(config) => config,
        Err(err) => {
            let text = format!("{err}; the board's previous configuration stays");
            d.log(None, &text, true);
            return;
        }
    };
    if config.same_rules(d.core.board().config()) {
        return;
    }
    let mut board = d.core.board().clone();
    match board.reload_paths([d.board_watch.config_file.as_path()]) {
        Ok(_) => {
            d.queue.push_back(Event::Board(board));
            after_board_change(d);
        }
        Err(err) => {
            let text = format!("board not readable: {err}");
            d.log(None, &text, false);
        }
    }
}

/// A whole board went to the core: if its task folder is another one, watch that instead.
fn after_board_change(d: &mut Driver<'_>) {
    let Some(Event::Board(board)) = d.queue.back() else {
        return;
    };
    let tasks_dir = board.config().tasks_path();
    if tasks_dir != d.board_watch.tasks_dir {
        let old = std::mem::replace(&mut d.board_watch.tasks_dir, tasks_dir);
        let _ = d.board_watch.watcher.unwatch(&old);
        rewatch(d);
    }
}

/// Watches the task folder again (it was replaced, or the config names another). A folder
/// not there yet is watched once it appears: its parent's event brings us back here.
fn rewatch(d: &mut Driver<'_>) {
    let dir = d.board_watch.tasks_dir.clone();
    let _ = d.board_watch.watcher.unwatch(&dir);
    if let Err(err) = d
        .board_watch
        .watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
    {
        tracing::debug!(%err, dir = %dir.display(), "task folder not watchable yet");
        return;
    }
    if let Some(parent) = dir.parent() {
        // Harmless when already watched; needed when the config moved the folder elsewhere.
        let _ = d
            .board_watch
            .watcher
            .watch(parent, notify::RecursiveMode::NonRecursive);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use notify::EventKind;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RemoveKind,
        RenameMode,
    };

    #[test]
    fn in_place_writes_wait_for_the_close_and_everything_else_is_read_at_once() {
        let cases = [
            (
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                TaskEvent::Writing,
            ),
            (EventKind::Modify(ModifyKind::Any), TaskEvent::Writing),
            (EventKind::Create(CreateKind::File), TaskEvent::Created),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                TaskEvent::Closed,
            ),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                TaskEvent::Changed,
            ),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::From)),
                TaskEvent::Changed,
            ),
            (EventKind::Remove(RemoveKind::File), TaskEvent::Changed),
            (
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                TaskEvent::Changed,
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(task_event(&kind), want, "{kind:?}");
        }
        assert!(is_look(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_look(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
    }

    #[test]
    fn only_a_half_written_file_waits_for_its_writer() {
        let path = Path::new("/b/tasks/001-a.md");
        let broken =
            |kind| FileRead::Broken(crate::board::Problem::new(kind, path, None, "x".to_owned()));
        let task = FileRead::Task(crate::board::Task::new(1, "a", "todo"));
        assert!(held_back(&broken(ProblemKind::Unreadable), true));
        assert!(!held_back(&broken(ProblemKind::Unreadable), false));
        assert!(!held_back(&broken(ProblemKind::NotAFile), true));
        assert!(!held_back(&task, true));
        assert!(!held_back(&FileRead::Missing, true));
    }
}
