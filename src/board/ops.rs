//! Changing a board, one task at a time. Every change holds an exclusive flock on
//! `<board>/.lock` (the lock kanban-md takes while creating, so the two tools never hand out
//! one id twice and two claimers never both win), re-reads the task file, writes it through a
//! temp file and a rename, and appends to `activity.jsonl`. A claimed file is left mode 0444
//! as kanban-md leaves it; batty's writes replace the file, so they do not need it writable.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;

use super::config::{BoardConfig, CONFIG_FILE, with_next_id};
use super::load::{Board, read_task_with, task_file_names};
use super::slug::{file_name, id_from_file_name};
use super::task::Task;
use super::time::Timestamp;
use super::{BoardError, activity, encode};

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

/// Creates a task with the next free id (`next_id`, or past the highest id on disk if a file
/// already uses it), writes its file and bumps `next_id` in `config.yml`.
pub fn create(dir: &Path, new: NewTask, now: Timestamp) -> Result<Task, BoardError> {
    let _lock = BoardLock::acquire(dir)?;
    let config_path = dir.join(CONFIG_FILE);
    let config_text =
        std::fs::read_to_string(&config_path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => BoardError::NoConfig {
                dir: dir.to_owned(),
            },
            _ => BoardError::Io {
                path: config_path.clone(),
                source,
            },
        })?;
    let config = BoardConfig::parse(dir, &config_text)?;
    let tasks_dir = config.tasks_path();
    let existing: BTreeSet<u64> = task_file_names(&tasks_dir)?
        .iter()
        .filter_map(|n| id_from_file_name(n))
        .collect();
    let id = config.next_id.max(existing.last().map_or(1, |max| max + 1));

    if new.title.trim().is_empty() {
        return Err(BoardError::Invalid("the title is empty".into()));
    }
    let status = new.status.unwrap_or_else(|| config.default_status.clone());
    check_status(&config, &status)?;
    let priority = new
        .priority
        .unwrap_or_else(|| config.default_priority.clone());
    check_priority(&config, &priority)?;
    let class = new.class.or_else(|| config.default_class.clone());
    if let Some(class) = &class {
        check_class(&config, class)?;
    }
    for dep in new.depends_on.iter().chain(new.parent.iter()) {
        if *dep == id || !existing.contains(dep) {
            return Err(BoardError::Invalid(format!("task #{dep} does not exist")));
        }
    }

    let mut task = Task::blank(id, new.title, status, priority);
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
    task.path = tasks_dir.join(file_name(id, &task.title));
    std::fs::create_dir_all(&tasks_dir).map_err(|source| BoardError::Write {
        path: tasks_dir.clone(),
        source,
    })?;
    write_file(&task.path, &encode::render(&task), mode_for(&task, None))?;
    let config_mode = std::fs::metadata(&config_path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    write_file(
        &config_path,
        &with_next_id(&config_text, id + 1),
        config_mode,
    )?;
    activity::append(dir, &now, "create", id, &task.title);
    if let Some(agent) = &task.claimed_by {
        activity::append(dir, &now, "claim", id, agent);
    }
    Ok(task)
}

/// Read-modify-write of one task under the board lock: `change` edits a fresh copy read from
/// disk; if it changed anything, `updated` is stamped, `started`/`completed` follow a status
/// change as in kanban-md, the file is renamed when the title changed, and the change is
/// logged. Returns the task as written (or as it was, when nothing changed).
pub fn update(
    dir: &Path,
    id: u64,
    now: Timestamp,
    change: impl FnOnce(&mut Task, &BoardConfig) -> Result<(), BoardError>,
) -> Result<Task, BoardError> {
    let _lock = BoardLock::acquire(dir)?;
    let config = BoardConfig::load(dir)?;
    update_locked(&config, id, now, None, change)
}

fn update_locked(
    config: &BoardConfig,
    id: u64,
    now: Timestamp,
    release_note: Option<&str>,
    change: impl FnOnce(&mut Task, &BoardConfig) -> Result<(), BoardError>,
) -> Result<Task, BoardError> {
    let original = read_for_write(config, id)?;
    let mut task = original.clone();
    change(&mut task, config)?;
    task.id = original.id;
    if same_content(&task, &original) {
        return Ok(original);
    }
    if task.status != original.status {
        check_status(config, &task.status)?;
        stamp_lifecycle(config, &mut task, &original.status, now);
    }
    if task.priority != original.priority {
        check_priority(config, &task.priority)?;
    }
    if task.class != original.class
        && let Some(class) = &task.class
    {
        check_class(config, class)?;
    }
    if task.title.trim().is_empty() {
        return Err(BoardError::Invalid("the title is empty".into()));
    }
    if task.source.as_ref().is_some_and(|s| s.layout.is_none()) {
        return Err(BoardError::Unrewritable {
            path: original.path.clone(),
        });
    }
    task.updated = Some(now);
    if task.title != original.title {
        task.path = config.tasks_path().join(file_name(task.id, &task.title));
    }
    let old_mode = std::fs::metadata(&original.path)
        .map(|m| m.permissions().mode() & 0o7777)
        .ok();
    write_file(
        &task.path,
        &encode::render(&task),
        mode_for(&task, old_mode),
    )?;
    if task.path != original.path {
        std::fs::remove_file(&original.path).map_err(|source| BoardError::Write {
            path: original.path.clone(),
            source,
        })?;
    }
    log_changes(config.dir(), &now, &original, &task, release_note);
    task.source = None;
    Ok(task)
}

/// Claims task `id` for `agent` if it is ready for dispatch from `statuses` (see
/// [`Board::ready`]): sets `claimed_by`, `claimed_at` and moves it to the working status
/// ([`working_status`]). Claiming again for the same agent returns the task unchanged. Under
/// the board lock, so of two processes claiming one task only one wins.
pub fn claim(
    dir: &Path,
    id: u64,
    agent: &str,
    statuses: &[String],
    now: Timestamp,
) -> Result<Task, BoardError> {
    crate::paths::validate_agent(agent).map_err(|e| BoardError::Invalid(e.to_string()))?;
    let _lock = BoardLock::acquire(dir)?;
    let board = Board::load(dir)?;
    let task = board.task(id).ok_or_else(|| not_found(&board, id))?;
    if task.claimed_by.as_deref() == Some(agent)
        && task.is_claimed(&now, board.config().claim_timeout)
    {
        return Ok(task.clone());
    }
    if let Some(reason) = board.not_ready_reason(task, statuses, &now) {
        return Err(match &task.claimed_by {
            Some(other) if task.is_claimed(&now, board.config().claim_timeout) => {
                BoardError::ClaimedByOther {
                    id,
                    agent: other.clone(),
                }
            }
            _ => BoardError::NotReady { id, reason },
        });
    }
    let working = working_status(board.config(), statuses).to_owned();
    update_locked(board.config(), id, now, None, |t, _| {
        t.claimed_by = Some(agent.to_owned());
        t.claimed_at = Some(now);
        if !working.is_empty() {
            t.status = working;
        }
        Ok(())
    })
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
            t.status = back;
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

/// Reads task `id` with its layout, finding the file by name first (as kanban-md does), then
/// by scanning.
fn read_for_write(config: &BoardConfig, id: u64) -> Result<Task, BoardError> {
    let tasks_dir = config.tasks_path();
    let names = task_file_names(&tasks_dir)?;
    let (by_name, others): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| id_from_file_name(n) == Some(id));
    for name in by_name.into_iter().chain(others) {
        let path = tasks_dir.join(name);
        match read_task_with(&path, true) {
            Ok(task) if task.id == id => return Ok(task),
            Ok(_) => {}
            Err(problem) if id_from_file_name(name) == Some(id) => {
                return Err(BoardError::BadFile(problem));
            }
            Err(_) => {}
        }
    }
    Err(BoardError::NotFound {
        id,
        dir: config.dir().to_owned(),
    })
}

fn not_found(board: &Board, id: u64) -> BoardError {
    BoardError::NotFound {
        id,
        dir: board.dir().to_owned(),
    }
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

/// Writes `text` to `path` atomically with `mode`: a temp file in the same folder, then rename.
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), BoardError> {
    use std::io::Write;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let write_err = |source| BoardError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}
