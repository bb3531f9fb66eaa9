//! Changing a board, one task at a time. Every change holds an exclusive flock on
//! `<board>/.lock` (the lock kanban-md takes while creating, so the two tools never hand out
//! one id twice and two claimers never both win), and is a compare-and-swap on the task file:
//! the change is applied to the file as read, and if a person saved the file meanwhile (in
//! place or by rename) it is read again and the change applied on top of theirs. A claimed
//! file is left mode 0444 as kanban-md leaves it; batty's writes replace the file, so they do
//! not need it writable. Each change is appended to `activity.jsonl`.
//!
//! Single-task changes read the files they need and no others: the task's own file (found by
//! the id index, see [`super::index`]), its dependencies' files, and for `create` the config.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;

use super::config::{BoardConfig, CONFIG_FILE, with_next_id};
use super::files::{self, CommitError, ReadError, Snapshot};
use super::find::{self, Found};
use super::index::IdIndex;
use super::ready::not_ready;
use super::slug::file_name;
use super::task::Task;
use super::time::Timestamp;
use super::{BoardError, activity, encode};

/// How many times a change is re-applied to a file that keeps changing under it.
const ATTEMPTS: u32 = 16;

/// The exclusive board lock, released on drop.
pub struct BoardLock {
    _file: File,
}

impl BoardLock {
    /// Blocks until this process holds `<dir>/.lock`.
    pub fn acquire(dir: &Path) -> Result<BoardLock, BoardError> {
        let path = dir.join(".lock");
        let lock_err = |source| BoardError::Lock {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_err)?;
        file.lock().map_err(lock_err)?;
        Ok(BoardLock { _file: file })
    }
}

/// What a new task starts with; unset fields take the board's defaults.
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    pub title: String,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub class: Option<String>,
    pub assignee: Option<String>,
    pub tags: Vec<String>,
    pub due: Option<NaiveDate>,
    pub estimate: Option<String>,
    pub parent: Option<u64>,
    pub depends_on: Vec<u64>,
    pub body: String,
    /// Claim the new task for this agent.
    pub claim: Option<String>,
}

/// Creates a task with the id in `next_id` (as kanban-md does, the folder is not listed; past
/// it when a file the id index knows, or the new file's own name, already holds that id),
/// bumps `next_id` in `config.yml`, then writes the task's file. The config goes first, so a
/// crash in between skips an id instead of handing one out twice.
pub fn create(dir: &Path, new: NewTask, now: Timestamp) -> Result<Task, BoardError> {
    let _lock = BoardLock::acquire(dir)?;
    let (config_snap, config) = read_config(dir)?;
    check_title(&new.title)?;
    let status = new
        .status
        .clone()
        .unwrap_or_else(|| config.default_status.clone());
    check_status(&config, &status)?;
    let priority = new
        .priority
        .clone()
        .unwrap_or_else(|| config.default_priority.clone());
    check_priority(&config, &priority)?;
    let class = new.class.clone().or_else(|| config.default_class.clone());
    if let Some(class) = &class {
        check_class(&config, class)?;
    }
    for dep in new.depends_on.iter().chain(new.parent.iter()) {
        match find::find(&config, *dep) {
            Ok(_) => {}
            Err(BoardError::NotFound { .. }) => {
                return Err(BoardError::Invalid(format!("task #{dep} does not exist")));
            }
            Err(e) => return Err(e),
        }
    }

    let mut task = Task::blank(0, new.title, status, priority);
    task.created = Some(now);
    task.updated = Some(now);
    task.class = class;
    task.assignee = new.assignee.filter(|a| !a.is_empty());
    task.tags = new.tags;
    task.due = new.due;
    task.estimate = new.estimate.filter(|e| !e.is_empty());
    task.parent = new.parent;
    task.depends_on = new.depends_on;
    task.body = new.body;
    if let Some(agent) = new.claim {
        task.claimed_by = Some(agent);
        task.claimed_at = Some(now);
    }
    let tasks_dir = config.tasks_path();
    std::fs::create_dir_all(&tasks_dir).map_err(|source| BoardError::Write {
        path: tasks_dir.clone(),
        source,
    })?;
    let index = IdIndex::new(dir);
    let mut id = config.next_id;
    let mut config_snap = config_snap;
    for _ in 0..ATTEMPTS {
        if id_taken(&config, &index, id, &task.title) {
            id = past_named_ids(&config, id)?;
            continue;
        }
        if !task.depends_on.is_empty()
            && let Some(cycle) = find::cycle_through(&config, id, &task.depends_on)?
        {
            return Err(BoardError::Cycle { cycle });
        }
        config_snap = bump_next_id(config_snap, id + 1)?;
        task.id = id;
        task.path = tasks_dir.join(file_name(id, &task.title));
        match files::create_new(
            &task.path,
            encode::render(&task).as_bytes(),
            mode_for(&task, None),
        ) {
            Ok(()) => {
                index.set(id, task.file_name());
                activity::append(dir, &now, "create", id, &task.title);
                if let Some(agent) = &task.claimed_by {
                    activity::append(dir, &now, "claim", id, agent);
                }
                return Ok(task);
            }
            // Someone made a file of that name since the check: take the next id.
            Err(CommitError::Exists) => id += 1,
            Err(CommitError::Conflict) => {}
            Err(CommitError::Io(source)) => {
                return Err(BoardError::Write {
                    path: task.path.clone(),
                    source,
                });
            }
        }
    }
    Err(BoardError::Contended {
        path: tasks_dir,
        attempts: ATTEMPTS,
    })
}

fn read_config(dir: &Path) -> Result<(Snapshot, BoardConfig), BoardError> {
    let path = dir.join(CONFIG_FILE);
    let snap = Snapshot::read(&path).map_err(|e| match e {
        ReadError::Missing => BoardError::NoConfig {
            dir: dir.to_owned(),
        },
        ReadError::Io(source) => BoardError::Io {
            path: path.clone(),
            source,
        },
        other => BoardError::Config {
            path: path.clone(),
            line: None,
            message: other.reason(),
        },
    })?;
    let text = std::str::from_utf8(&snap.bytes).map_err(|_| BoardError::Config {
        path: path.clone(),
        line: None,
        message: "the file is not valid UTF-8".into(),
    })?;
    let config = BoardConfig::parse(dir, text)?;
    Ok((snap, config))
}

/// Sets `next_id` to at least `next`, by compare-and-swap: a person's edit of the config made
/// meanwhile is kept. Returns the config as now on disk.
fn bump_next_id(mut snap: Snapshot, next: u64) -> Result<Snapshot, BoardError> {
    let dir = snap.path.parent().map(Path::to_owned).unwrap_or_default();
    for _ in 0..ATTEMPTS {
        let text = String::from_utf8_lossy(&snap.bytes).into_owned();
        let current = BoardConfig::parse(&dir, &text)?.next_id;
        if current >= next {
            return Ok(snap);
        }
        let new = with_next_id(&text, next);
        match files::replace(&snap, new.as_bytes(), snap.mode) {
            Ok(()) => return read_config(&dir).map(|(s, _)| s),
            Err(CommitError::Conflict) => snap = read_config(&dir)?.0,
            Err(CommitError::Exists) => {}
            Err(CommitError::Io(source)) => {
                return Err(BoardError::Write {
                    path: snap.path.clone(),
                    source,
                });
            }
        }
    }
    Err(BoardError::Contended {
        path: snap.path,
        attempts: ATTEMPTS,
    })
}

/// Whether a file batty knows of (or the new task's own file name) already holds `id`.
fn id_taken(config: &BoardConfig, index: &IdIndex, id: u64, title: &str) -> bool {
    let tasks_dir = config.tasks_path();
    if std::fs::symlink_metadata(tasks_dir.join(file_name(id, title))).is_ok() {
        return true;
    }
    index.get(id).is_some_and(|name| {
        super::load::read_file(&tasks_dir.join(name), None)
            .task()
            .is_some_and(|t| t.id == id)
    })
}

/// The first id past every id in the task folder's file names (and at least `id + 1`): for a
/// board where `next_id` fell behind the files.
fn past_named_ids(config: &BoardConfig, id: u64) -> Result<u64, BoardError> {
    let listing = super::load::list(&config.tasks_path())?;
    let max = listing
        .entries
        .iter()
        .filter_map(|(n, _)| super::slug::id_from_file_name(n))
        .max()
        .unwrap_or(0);
    Ok(max.max(id) + 1)
}

/// Applies `change` to task `id` and writes the result (see [`update`]).
pub fn update(
    dir: &Path,
    id: u64,
    now: Timestamp,
    change: impl FnMut(&mut Task, &BoardConfig) -> Result<(), BoardError>,
) -> Result<Task, BoardError> {
    let _lock = BoardLock::acquire(dir)?;
    let config = BoardConfig::load(dir)?;
    update_locked(&config, id, now, None, change)
}

/// The body of every change: read the task's file, apply `change`, and swap the result in if
/// the file is still as read; otherwise read it again and re-apply `change` on top (which is
/// why `change` may run more than once). Statuses, priorities, classes, titles and
/// dependencies are checked when they change; `updated` is stamped, the lifecycle timestamps
/// follow the status, the file is renamed when the title changed, and the change is logged.
/// Returns the task as written (or as it was, when nothing changed).
fn update_locked(
    config: &BoardConfig,
    id: u64,
    now: Timestamp,
    release_note: Option<&str>,
    mut change: impl FnMut(&mut Task, &BoardConfig) -> Result<(), BoardError>,
) -> Result<Task, BoardError> {
    let mut unreadable_retries = 0;
    let mut last_path = config.tasks_path();
    for _ in 0..ATTEMPTS {
        let Found {
            snap,
            task: original,
        } = match find::find(config, id) {
            Ok(found) => found,
            // A file being written in place (`echo > file`) may read half-written: look again.
            Err(BoardError::BadFile(p)) if unreadable_retries < 3 => {
                unreadable_retries += 1;
                std::thread::sleep(Duration::from_millis(2 << unreadable_retries));
                last_path = p.path;
                continue;
            }
            Err(e) => return Err(e),
        };
        last_path = original.path.clone();
        let mut task = original.clone();
        change(&mut task, config)?;
        task.id = original.id;
        if same_content(&task, &original) {
            task.source = None;
            return Ok(task);
        }
        check_changed(config, &original, &task)?;
        if task.source.as_ref().is_some_and(|s| s.layout.is_none()) {
            return Err(BoardError::Unrewritable {
                path: original.path.clone(),
            });
        }
        if task.status != original.status {
            stamp_lifecycle(config, &mut task, &original.status, now);
        }
        task.updated = Some(now);
        if task.title != original.title {
            task.path = config.tasks_path().join(file_name(task.id, &task.title));
            if task.path != original.path && std::fs::symlink_metadata(&task.path).is_ok() {
                return Err(BoardError::Invalid(format!(
                    "cannot rename {} to {}: that file exists",
                    original.file_name(),
                    task.file_name()
                )));
            }
        }
        let text = encode::render(&task);
        match files::replace(&snap, text.as_bytes(), mode_for(&task, Some(snap.mode))) {
            Ok(()) => {}
            Err(CommitError::Conflict | CommitError::Exists) => continue,
            Err(CommitError::Io(source)) => {
                return Err(BoardError::Write {
                    path: original.path.clone(),
                    source,
                });
            }
        }
        if task.path != original.path {
            // The link (or file) takes the new name; a symlink's target keeps its own.
            files::rename_noreplace(&original.path, &task.path).map_err(|source| {
                BoardError::Write {
                    path: task.path.clone(),
                    source,
                }
            })?;
            IdIndex::new(config.dir()).set(task.id, task.file_name());
        }
        log_changes(config.dir(), &now, &original, &task, release_note);
        task.source = None;
        return Ok(task);
    }
    Err(BoardError::Contended {
        path: last_path,
        attempts: ATTEMPTS,
    })
}

/// The checks a changed field must pass.
fn check_changed(config: &BoardConfig, old: &Task, new: &Task) -> Result<(), BoardError> {
    if new.status != old.status {
        check_status(config, &new.status)?;
    }
    if new.priority != old.priority {
        check_priority(config, &new.priority)?;
    }
    if new.class != old.class
        && let Some(class) = &new.class
    {
        check_class(config, class)?;
    }
    if new.title != old.title {
        check_title(&new.title)?;
    }
    if new.depends_on != old.depends_on {
        for dep in &new.depends_on {
            if *dep == new.id {
                return Err(BoardError::Cycle {
                    cycle: vec![new.id],
                });
            }
            if let Err(BoardError::NotFound { .. }) = find::find(config, *dep) {
                return Err(BoardError::Invalid(format!("task #{dep} does not exist")));
            }
        }
        if let Some(cycle) = find::cycle_through(config, new.id, &new.depends_on)? {
            return Err(BoardError::Cycle { cycle });
        }
    }
    Ok(())
}

/// A title must say something and fit on one line: a line break or another control character
/// in it would end up in file names, window names and terminals.
fn check_title(title: &str) -> Result<(), BoardError> {
    if title.trim().is_empty() {
        return Err(BoardError::Invalid("the title is empty".into()));
    }
    if let Some(c) = title.chars().find(|c| c.is_control()) {
        let what = if c == '\n' || c == '\r' {
            "a line break".to_owned()
        } else {
            format!("the control character {}", c.escape_unicode())
        };
        return Err(BoardError::Invalid(format!(
            "the title has {what}; a title is one line of text"
        )));
    }
    Ok(())
}

/// Claims task `id` for `agent` if it is ready for dispatch from `statuses` (see
/// [`super::Board::ready`]): sets `claimed_by`, `claimed_at` and moves it to the working status
/// ([`working_status`]). Claiming again for the same agent returns the task unchanged. Under
/// the board lock, so of two processes claiming one task only one wins. Reads the task's file
/// and its dependencies' files, no others.
pub fn claim(
    dir: &Path,
    id: u64,
    agent: &str,
    statuses: &[String],
    now: Timestamp,
) -> Result<Task, BoardError> {
    crate::paths::validate_agent(agent).map_err(|e| BoardError::Invalid(e.to_string()))?;
    let _lock = BoardLock::acquire(dir)?;
    let config = BoardConfig::load(dir)?;
    let working = working_status(&config, statuses).to_owned();
    update_locked(&config, id, now, None, |t, config| {
        if t.claimed_by.as_deref() == Some(agent) && t.is_claimed(&now, config.claim_timeout) {
            return Ok(());
        }
        if let Some(reason) = readiness(config, t, statuses, &now) {
            return Err(match &t.claimed_by {
                Some(other) if t.is_claimed(&now, config.claim_timeout) => {
                    BoardError::ClaimedByOther {
                        id,
                        agent: other.clone(),
                    }
                }
                _ => BoardError::NotReady { id, reason },
            });
        }
        t.claimed_by = Some(agent.to_owned());
        t.claimed_at = Some(now);
        if !working.is_empty() {
            t.status = working.clone();
        }
        Ok(())
    })
}

/// Why `task` is not ready for dispatch from `statuses` (`None` when it is), reading its
/// dependencies' files: a loaded board answers the same from memory
/// ([`super::Board::not_ready_reason`]).
pub fn readiness(
    config: &BoardConfig,
    task: &Task,
    statuses: &[String],
    now: &Timestamp,
) -> Option<String> {
    not_ready(config, task, statuses, now, |d| find::dep_state(config, d))
}

/// Task `id` as on disk, reading its file alone (no lock taken).
pub fn find_task(dir: &Path, id: u64) -> Result<(BoardConfig, Task), BoardError> {
    let config = BoardConfig::load(dir)?;
    let mut task = find::find(&config, id)?.task;
    task.source = None;
    Ok((config, task))
}

/// Removes batty's temp files left in the board's task folder by writers that are gone (a kill
/// during a write); returns their paths. Lists the folder: for a start-up, not for every change.
pub fn remove_leftover_temps(dir: &Path) -> Result<Vec<std::path::PathBuf>, BoardError> {
    let config = BoardConfig::load(dir)?;
    let tasks_dir = config.tasks_path();
    let listing = super::load::list(&tasks_dir)?;
    let mut removed = files::remove_stale_temps(&tasks_dir, &listing.temps);
    let board_temps: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| files::temp_writer(n).is_some())
                .collect()
        })
        .unwrap_or_default();
    removed.extend(files::remove_stale_temps(dir, &board_temps));
    Ok(removed)
}

/// Where a claimed task goes: `in-progress` when the board has it, else the first status
/// that is neither dispatched from nor terminal, else the task keeps its status.
pub fn working_status<'a>(config: &'a BoardConfig, dispatch: &[String]) -> &'a str {
    if config.has_status("in-progress") {
        return "in-progress";
    }
    config
        .status_names()
        .find(|s| !dispatch.iter().any(|d| d == s) && !config.is_terminal(s))
        .unwrap_or("")
}

/// Where a released task goes: `todo` when the board has it, else the board's default status.
pub fn release_status(config: &BoardConfig) -> &str {
    if config.has_status("todo") {
        "todo"
    } else {
        &config.default_status
    }
}

/// Clears the claim on task `id` and, unless it is in a terminal status, moves it back to
/// [`release_status`] so it can be dispatched again. `reason` goes to `activity.jsonl`.
pub fn release(
    dir: &Path,
    id: u64,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<Task, BoardError> {
    let _lock = BoardLock::acquire(dir)?;
    let config = BoardConfig::load(dir)?;
    let back = release_status(&config).to_owned();
    update_locked(&config, id, now, reason, |t, config| {
        t.claimed_by = None;
        t.claimed_at = None;
        if !config.is_terminal(&t.status) && !back.is_empty() {
            t.status = back.clone();
        }
        Ok(())
    })
}

/// Moves task `id` to `status`; with `block_reason` the task is also marked blocked.
pub fn move_to(
    dir: &Path,
    id: u64,
    status: &str,
    block_reason: Option<&str>,
    now: Timestamp,
) -> Result<Task, BoardError> {
    update(dir, id, now, |t, config| {
        check_status(config, status)?;
        t.status = status.to_owned();
        if let Some(reason) = block_reason {
            t.blocked = true;
            t.block_reason = Some(reason.to_owned()).filter(|r| !r.is_empty());
        }
        Ok(())
    })
}

fn same_content(a: &Task, b: &Task) -> bool {
    let strip = |t: &Task| {
        let mut t = t.clone();
        t.source = None;
        t
    };
    strip(a) == strip(b)
}

/// kanban-md's lifecycle: `started` on the first move out of the first status (or straight to
/// a terminal one), `completed` on a move to a terminal status, cleared on reopening.
fn stamp_lifecycle(config: &BoardConfig, task: &mut Task, old_status: &str, now: Timestamp) {
    let initial = config.status_names().next().unwrap_or_default();
    if task.started.is_none() && old_status == initial && task.status != initial {
        task.started = Some(now);
    }
    if config.is_terminal(&task.status) {
        task.completed = Some(now);
        task.started.get_or_insert(now);
    } else if config.is_terminal(old_status) {
        task.completed = None;
    }
}

fn log_changes(dir: &Path, now: &Timestamp, old: &Task, new: &Task, note: Option<&str>) {
    let mut logged = false;
    if old.status != new.status {
        activity::append(
            dir,
            now,
            "move",
            new.id,
            &format!("{} -> {}", old.status, new.status),
        );
        logged = true;
    }
    if !old.blocked && new.blocked {
        activity::append(
            dir,
            now,
            "block",
            new.id,
            new.block_reason.as_deref().unwrap_or(""),
        );
        logged = true;
    }
    if old.blocked && !new.blocked {
        activity::append(dir, now, "unblock", new.id, &new.title);
        logged = true;
    }
    match (&old.claimed_by, &new.claimed_by) {
        (None, Some(agent)) => {
            activity::append(dir, now, "claim", new.id, agent);
            logged = true;
        }
        (Some(agent), None) => {
            let detail = match note {
                Some(note) => format!("{agent}: {note}"),
                None => agent.clone(),
            };
            activity::append(dir, now, "release", new.id, &detail);
            logged = true;
        }
        (Some(a), Some(b)) if a != b => {
            activity::append(dir, now, "claim", new.id, b);
            logged = true;
        }
        _ => {}
    }
    if !logged {
        activity::append(dir, now, "edit", new.id, &new.title);
    }
}

fn allowed(items: impl Iterator<Item = impl AsRef<str>>) -> String {
    items
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_status(config: &BoardConfig, status: &str) -> Result<(), BoardError> {
    if config.has_status(status) {
        return Ok(());
    }
    Err(BoardError::Unknown {
        what: "status",
        value: status.to_owned(),
        allowed: allowed(config.status_names()),
    })
}

fn check_priority(config: &BoardConfig, priority: &str) -> Result<(), BoardError> {
    if config.priorities.is_empty() || config.priorities.iter().any(|p| p == priority) {
        return Ok(());
    }
    Err(BoardError::Unknown {
        what: "priority",
        value: priority.to_owned(),
        allowed: allowed(config.priorities.iter()),
    })
}

fn check_class(config: &BoardConfig, class: &str) -> Result<(), BoardError> {
    if config.classes.is_empty() || config.classes.iter().any(|c| c.name == class) {
        return Ok(());
    }
    Err(BoardError::Unknown {
        what: "class",
        value: class.to_owned(),
        allowed: allowed(config.classes.iter().map(|c| c.name.as_str())),
    })
}

/// A claimed task is read-only (0444) as kanban-md leaves it; otherwise the old mode stays,
/// made owner-writable again if a claim had left it read-only.
fn mode_for(task: &Task, old: Option<u32>) -> u32 {
    if task.claimed_by.as_deref().is_some_and(|a| !a.is_empty()) {
        0o444
    } else {
        match old {
            Some(mode) if mode & 0o200 == 0 => mode | 0o200,
            Some(mode) => mode,
            None => 0o644,
        }
    }
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
