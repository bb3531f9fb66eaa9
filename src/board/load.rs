//! A board in memory: every task file read once, bad files reported and skipped, duplicate ids
//! caught, and kept up to date one file at a time ([`Board::reload_paths`]) for a supervisor
//! that holds it while people edit the folder. Reading never writes.

use std::collections::{BTreeSet, HashMap};
use std::fs::FileType;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::BoardError;
use super::config::{BoardConfig, CONFIG_FILE};
use super::files::{self, ReadError};
use super::problem::{Problem, ProblemKind};
use super::slug::file_name;
use super::task::Task;

pub use super::files::MAX_TASK_FILE;

/// A board as read from disk (or built in memory).
#[derive(Debug, Clone)]
pub struct Board {
    config: BoardConfig,
    /// The tasks that own their id, in file name order.
    tasks: Vec<Task>,
    by_id: HashMap<u64, usize>,
    /// Every `*.md` name of the task folder the board knows, and what it holds.
    files: HashMap<String, Slot>,
    /// How many files are `Slot::Shadowed` (none, usually: then a removal looks for no heir).
    shadowed: usize,
    /// batty's temp files seen in the task folder when it was listed.
    temps: Vec<String>,
    /// Problems and cycles, worked out when first asked for after a change.
    derived: OnceLock<Vec<Problem>>,
    cycles: OnceLock<Vec<Vec<u64>>>,
    /// For each task that changed since it was first read, what its earlier versions said
    /// (oldest first, at most [`VERSIONS`]): how a save made on an old copy is recognised.
    history: HashMap<u64, Versions>,
}

/// A task's earlier versions, and whether its latest save was told to be stale.
#[derive(Debug, Clone, Default)]
struct Versions {
    earlier: Vec<Stamp>,
    told: bool,
}

/// Earlier versions remembered per task. A stale copy older than this many changes is taken
/// at its word.
const VERSIONS: usize = 4;

/// What one version of a task said about who works on it, and when it was last changed by a
/// tool that stamps `updated` (batty, kanban-md).
#[derive(Debug, Clone, PartialEq)]
struct Stamp {
    updated: Option<super::time::Timestamp>,
    status: String,
    claimed_by: Option<String>,
    claimed_at: Option<super::time::Timestamp>,
}

impl Stamp {
    fn of(t: &Task) -> Stamp {
        Stamp {
            updated: t.updated,
            status: t.status.clone(),
            claimed_by: t.claimed_by.clone(),
            claimed_at: t.claimed_at,
        }
    }
}

#[derive(Debug, Clone)]
enum Slot {
    /// The task with this id is in `tasks`.
    Shown(u64),
    /// A task whose id an earlier file (by name) already has.
    Shadowed(Box<Task>),
    /// A file that is not a readable task, and the task it held when it last was one.
    Broken(Problem, Option<u64>),
}

/// What a re-read changed, by task id: a task is *changed* when anything in it or its file
/// name differs, so a rename is a change, not a removal and an addition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub added: Vec<u64>,
    pub changed: Vec<u64>,
    pub removed: Vec<u64>,
    /// `config.yml` was read again (statuses, priorities or the task folder may differ).
    pub config: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty() && !self.config
    }

    /// Every id added, changed or removed.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.added
            .iter()
            .chain(&self.changed)
            .chain(&self.removed)
            .copied()
    }
}

/// What reading one task file gave.
// Unboxed: a load moves each task straight into the board's vector; a box per task cost an
// allocation each and a fifth more peak memory on a 100,000-task board.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FileRead {
    Task(Task),
    Broken(Problem),
    /// Nothing there (any more).
    Missing,
}

impl FileRead {
    pub fn task(&self) -> Option<&Task> {
        match self {
            FileRead::Task(t) => Some(t),
            _ => None,
        }
    }
}

impl Board {
    /// Reads `<dir>/config.yml` and every `*.md` file in the task folder. Files that cannot be
    /// used become [`Board::problems`]; only a missing or broken config (or an unreadable task
    /// folder) fails the load.
    pub fn load(dir: &Path) -> Result<Board, BoardError> {
        let config = BoardConfig::load(dir)?;
        Board::load_with(config)
    }

    fn load_with(config: BoardConfig) -> Result<Board, BoardError> {
        let tasks_dir = config.tasks_path();
        let listing = list(&tasks_dir)?;
        let reads = read_files(&tasks_dir, &listing.entries);
        let mut board = Board::empty(config);
        board.temps = listing.temps;
        board.tasks.reserve(reads.len());
        board.by_id.reserve(reads.len());
        // Names come in order, so the first file with an id keeps it (pushes stay at the end).
        for ((name, _), read) in listing.entries.into_iter().zip(reads) {
            board.insert(name, read);
        }
        Ok(board)
    }

    /// A board with no tasks.
    pub fn empty(config: BoardConfig) -> Board {
        Board {
            config,
            tasks: Vec::new(),
            by_id: HashMap::new(),
            files: HashMap::new(),
            shadowed: 0,
            temps: Vec::new(),
            derived: OnceLock::new(),
            cycles: OnceLock::new(),
            history: HashMap::new(),
        }
    }

    /// A board from a config and tasks in memory (for simulations): each task lives in the
    /// file its path names, or in kanban-md's name for it when it has none. As on disk, of two
    /// tasks with one id the first by file name wins.
    pub fn from_tasks(config: BoardConfig, tasks: impl IntoIterator<Item = Task>) -> Board {
        let mut board = Board::empty(config);
        let tasks_dir = board.config.tasks_path();
        for mut task in tasks {
            let name = match task.path.file_name().and_then(|n| n.to_str()) {
                Some(n) => n.to_owned(),
                None => file_name(task.id, &task.title),
            };
            task.path = tasks_dir.join(&name);
            board.remove(&name);
            board.insert(name, FileRead::Task(task));
        }
        board
    }

    pub fn config(&self) -> &BoardConfig {
        &self.config
    }

    /// The board folder.
    pub fn dir(&self) -> &Path {
        self.config.dir()
    }

    /// Every task that owns its id, in file name order.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    pub fn task(&self, id: u64) -> Option<&Task> {
        self.by_id.get(&id).map(|&i| &self.tasks[i])
    }

    /// Where task `id` is in [`Board::tasks`].
    pub(crate) fn position(&self, id: u64) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    pub fn is_terminal(&self, status: &str) -> bool {
        self.config.is_terminal(status)
    }

    /// Everything wrong with the board, one entry per finding: files that could not be read
    /// (`tasks/004-x.md:3: ...`), duplicate ids, unknown statuses, dependencies on missing tasks
    /// (by file name), then dependency cycles.
    pub fn problems(&self) -> &[Problem] {
        self.derived.get_or_init(|| self.find_problems())
    }

    /// Cycles in `depends_on`, each as the ids around it (`[1, 2]` for 1 -> 2 -> 1), each once.
    pub fn cycles(&self) -> &[Vec<u64>] {
        self.cycles.get_or_init(|| super::ready::find_cycles(self))
    }

    /// Removes batty's own temp files left in the task folder by writers that are gone (a
    /// kill during a write), as seen when the board was loaded; returns their paths.
    pub fn remove_leftover_temps(&mut self) -> Vec<PathBuf> {
        let removed = files::remove_stale_temps(&self.config.tasks_path(), &self.temps);
        self.temps.clear();
        removed
    }

    /// Reads these paths again (task files added, changed, removed, renamed, broken, or the
    /// board's `config.yml`) and says what that changed. Paths outside the task folder, and
    /// names that are not task files (temp files, hidden files), change nothing. A change of
    /// `tasks_dir` in the config reads the whole new folder.
    pub fn reload_paths<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a Path>,
    ) -> Result<Changes, BoardError> {
        let tasks_dir = self.config.tasks_path();
        let config_path = self.config.dir().join(CONFIG_FILE);
        let mut reads: Vec<(PathBuf, FileRead)> = Vec::new();
        let mut config = false;
        for path in paths {
            if path == config_path {
                config = true;
                continue;
            }
            let Some(name) = task_name_in(&tasks_dir, path) else {
                continue;
            };
            let path = tasks_dir.join(&name);
            if reads.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let read = read_file(&path, None);
            reads.push((path, read));
        }
        if config {
            let new = BoardConfig::load(self.config.dir())?;
            if new.tasks_dir != self.config.tasks_dir {
                let mut changes = self.rescan_with(new)?;
                changes.config = true;
                return Ok(changes);
            }
            self.config = new;
            self.invalidate();
        }
        let mut changes = self.apply_reads(reads);
        changes.config = config;
        Ok(changes)
    }

    /// What [`read_one`] read of task files, put in place (pure: the caller read them), and
    /// what that changed. A path outside the task folder changes nothing.
    pub fn apply_reads(&mut self, reads: Vec<(PathBuf, FileRead)>) -> Changes {
        let tasks_dir = self.config.tasks_path();
        let reads: Vec<(String, FileRead)> = reads
            .into_iter()
            .filter_map(|(path, read)| Some((task_name_in(&tasks_dir, &path)?, read)))
            .collect();
        let mut touched: BTreeSet<u64> = BTreeSet::new();
        for (name, read) in &reads {
            touched.extend(self.slot_id(name));
            if let FileRead::Task(t) = read {
                touched.insert(t.id);
            }
        }
        let before: Vec<(u64, Option<Task>)> = touched
            .iter()
            .map(|&id| (id, self.task(id).cloned()))
            .collect();
        for (name, read) in reads {
            let was = match self.files.get(&name) {
                Some(Slot::Broken(_, was)) => *was,
                _ => self.slot_id(&name),
            };
            self.remove(&name);
            self.insert(name.clone(), read);
            if let Some(Slot::Broken(_, held)) = self.files.get_mut(&name) {
                *held = was;
            }
        }
        fn deps(t: Option<&Task>) -> &[u64] {
            t.map_or(&[], |t| &t.depends_on)
        }
        if before
            .iter()
            .any(|(id, old)| deps(old.as_ref()) != deps(self.task(*id)))
        {
            self.cycles = OnceLock::new();
        }
        self.remember(&before);
        self.diff(before)
    }

    /// Whether the latest save of task `id` was made on an older copy of its file than the
    /// version it replaced, and left the status and the claim as that copy had them: a buffer
    /// read before batty's last change (an editor's, or a script's read-modify-write racing
    /// it) written back over that change, which it undid only by not knowing it. A save that
    /// means to take a claim away is made on a copy that has the claim, or is stamped with a
    /// newer `updated` (kanban-md, `batty task release`), and is not stale.
    ///
    /// `Some(true)` the first time a stale save is asked about, `Some(false)` after that until
    /// the task changes again: whoever undoes it (writes the claim back) does so once, however
    /// many board events come before its write is seen. `None`: not a stale save.
    pub fn stale_save(&mut self, id: u64) -> Option<bool> {
        let now = Stamp::of(self.task(id)?);
        let versions = self.history.get_mut(&id)?;
        let (replaced, earlier) = versions.earlier.split_last()?;
        // `None` sorts first: a copy without the stamp is older than one with it.
        let stale = now.updated < replaced.updated && earlier.iter().rev().any(|v| *v == now);
        stale.then(|| !std::mem::replace(&mut versions.told, true))
    }

    /// Whether task `id` is off the board only because the file that held it cannot be read
    /// now (saved half done, or with a mistake): not a task a person took away.
    pub fn unreadable(&self, id: u64) -> bool {
        self.task(id).is_none()
            && self
                .files
                .values()
                .any(|s| matches!(s, Slot::Broken(_, Some(was)) if *was == id))
    }

    /// Whether the file at `path` holds a task (shown, or a duplicate).
    pub fn holds_task(&self, path: &Path) -> bool {
        path.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| self.slot_id(n))
            .is_some()
    }

    /// Keeps what the versions in `before` said, for each task they changed.
    fn remember(&mut self, before: &[(u64, Option<Task>)]) {
        for (id, old) in before {
            let (Some(old), Some(new)) = (old, self.task(*id)) else {
                continue;
            };
            if old == new {
                continue;
            }
            let old = Stamp::of(old);
            if old == Stamp::of(new) && !self.history.contains_key(id) {
                // Only what batty's writes set matters here; other edits need no history.
                continue;
            }
            let versions = self.history.entry(*id).or_default();
            versions.told = false;
            if versions.earlier.last() != Some(&old) {
                versions.earlier.push(old);
            }
            if versions.earlier.len() > VERSIONS {
                versions.earlier.remove(0);
            }
        }
    }

    /// [`Board::reload_paths`] for one path.
    pub fn reload_path(&mut self, path: &Path) -> Result<Changes, BoardError> {
        self.reload_paths([path])
    }

    /// Reads the config and the whole task folder again, for events that name no file (an
    /// overflowed watch queue, a moved folder), and says what changed.
    pub fn rescan(&mut self) -> Result<Changes, BoardError> {
        let config = BoardConfig::load(self.config.dir())?;
        self.rescan_with(config)
    }

    fn rescan_with(&mut self, config: BoardConfig) -> Result<Changes, BoardError> {
        let new = Board::load_with(config)?;
        let ids: BTreeSet<u64> = self.by_id.keys().chain(new.by_id.keys()).copied().collect();
        let before: Vec<(u64, Option<Task>)> =
            ids.iter().map(|&id| (id, self.task(id).cloned())).collect();
        let history = std::mem::take(&mut self.history);
        let mut new = new;
        for (name, slot) in &mut new.files {
            if let Slot::Broken(_, was @ None) = slot {
                *was = match self.files.get(name) {
                    Some(Slot::Broken(_, old)) => *old,
                    _ => self.slot_id(name),
                };
            }
        }
        *self = new;
        self.history = history;
        self.remember(&before);
        Ok(self.diff(before))
    }

    fn diff(&self, before: Vec<(u64, Option<Task>)>) -> Changes {
        let mut changes = Changes::default();
        for (id, old) in before {
            match (old, self.task(id)) {
                (None, Some(_)) => changes.added.push(id),
                (Some(_), None) => changes.removed.push(id),
                (Some(old), Some(new)) if old != *new => changes.changed.push(id),
                _ => {}
            }
        }
        changes
    }

    /// The id the file `name` holds, shown or shadowed.
    fn slot_id(&self, name: &str) -> Option<u64> {
        match self.files.get(name)? {
            Slot::Shown(id) => Some(*id),
            Slot::Shadowed(t) => Some(t.id),
            Slot::Broken(..) => None,
        }
    }

    /// Forgets the file `name`; a duplicate it shadowed takes its id.
    fn remove(&mut self, name: &str) {
        match self.files.get(name) {
            None => {}
            Some(Slot::Shown(_)) => {
                let Some(task) = self.take_shown(name) else {
                    return;
                };
                if self.shadowed == 0 {
                    return;
                }
                // The first by name of the files that also hold this id.
                let heir = self
                    .files
                    .iter()
                    .filter(|(_, s)| matches!(s, Slot::Shadowed(t) if t.id == task.id))
                    .map(|(n, _)| n)
                    .min()
                    .cloned();
                if let Some(heir) = heir
                    && let Some(Slot::Shadowed(t)) = self.files.remove(&heir)
                {
                    self.shadowed -= 1;
                    self.show(heir, *t);
                }
            }
            Some(slot) => {
                if matches!(slot, Slot::Shadowed(_)) {
                    self.shadowed -= 1;
                }
                self.files.remove(name);
                self.invalidate();
            }
        }
    }

    /// Takes the shown task of file `name` out of the board, promoting no one.
    fn take_shown(&mut self, name: &str) -> Option<Task> {
        let Some(Slot::Shown(id)) = self.files.remove(name) else {
            return None;
        };
        self.invalidate();
        let pos = self.by_id.remove(&id)?;
        let task = self.tasks.remove(pos);
        if pos < self.tasks.len() {
            for i in self.by_id.values_mut() {
                if *i > pos {
                    *i -= 1;
                }
            }
        }
        Some(task)
    }

    /// Records what the file `name` holds (`name` must not be known).
    fn insert(&mut self, name: String, read: FileRead) {
        match read {
            FileRead::Missing => {}
            FileRead::Broken(problem) => {
                self.invalidate();
                self.files.insert(name, Slot::Broken(problem, None));
            }
            FileRead::Task(task) => match self.by_id.get(&task.id).copied() {
                Some(pos) if self.tasks[pos].file_name() < name.as_str() => {
                    self.invalidate();
                    self.shadowed += 1;
                    self.files.insert(name, Slot::Shadowed(Box::new(task)));
                }
                Some(pos) => {
                    // This file sorts first: it takes the id, the other is now the duplicate.
                    let other = self.tasks[pos].file_name().to_owned();
                    if let Some(old) = self.take_shown(&other) {
                        self.shadowed += 1;
                        self.files.insert(other, Slot::Shadowed(Box::new(old)));
                    }
                    self.show(name, task);
                }
                None => self.show(name, task),
            },
        }
    }

    fn show(&mut self, name: String, task: Task) {
        self.invalidate();
        // Loading inserts in name order: a push, without searching.
        let pos = match self.tasks.last() {
            Some(last) if last.file_name() >= name.as_str() => self
                .tasks
                .partition_point(|t| t.file_name() < name.as_str()),
            _ => self.tasks.len(),
        };
        if pos < self.tasks.len() {
            for i in self.by_id.values_mut() {
                if *i >= pos {
                    *i += 1;
                }
            }
        }
        self.by_id.insert(task.id, pos);
        self.files.insert(name, Slot::Shown(task.id));
        self.tasks.insert(pos, task);
    }

    /// Forgets the problems worked out; cycles are forgotten by [`Board::reload_paths`] only
    /// when a dependency changed, as most edits (a claim, a move) leave the graph alone.
    fn invalidate(&mut self) {
        self.derived = OnceLock::new();
    }

    fn find_problems(&self) -> Vec<Problem> {
        // By file name (then line), as a listing shows them; cycles after.
        let mut problems: Vec<Problem> = Vec::new();
        if self.files.len() > self.tasks.len() {
            for slot in self.files.values() {
                match slot {
                    Slot::Broken(p, _) => problems.push(p.clone()),
                    Slot::Shadowed(t) => {
                        let first = self.task(t.id).map_or("", |f| f.file_name());
                        problems.push(Problem::new(
                            ProblemKind::DuplicateId,
                            t.path.clone(),
                            Some(2),
                            format!(
                                "duplicate id {} (also in `{first}`); this file is skipped",
                                t.id
                            ),
                        ));
                    }
                    Slot::Shown(_) => {}
                }
            }
        }
        for t in &self.tasks {
            problems.extend(super::ready::task_problems(self, t));
        }
        problems.sort_by(|a, b| (a.path.file_name(), a.line).cmp(&(b.path.file_name(), b.line)));
        for cycle in self.cycles() {
            let Some(first) = cycle.first().and_then(|id| self.task(*id)) else {
                continue;
            };
            problems.push(Problem::new(
                ProblemKind::DependencyCycle,
                first.path.clone(),
                first.lines.depends_on(),
                format!(
                    "dependency cycle: {}; none of these tasks can become ready",
                    super::problem::cycle_text(cycle)
                ),
            ));
        }
        problems
    }
}

/// The task file name of `path` when it is directly in `tasks_dir` and named like a task file.
fn task_name_in(tasks_dir: &Path, path: &Path) -> Option<String> {
    let parent = path.parent()?;
    // A watcher may report the folder by another spelling (a symlink on the way).
    if parent != tasks_dir
        && std::fs::canonicalize(parent).ok()? != std::fs::canonicalize(tasks_dir).ok()?
    {
        return None;
    }
    let name = path.file_name()?.to_str()?;
    is_task_name(name).then(|| name.to_owned())
}

fn is_task_name(name: &str) -> bool {
    name.ends_with(".md") && !name.starts_with('.')
}

/// The task folder's entries as listed: `*.md` names (in order) with what each is when that is
/// known without opening it, and batty's temp files.
pub(crate) struct Listing {
    pub entries: Vec<(String, Option<FileType>)>,
    pub temps: Vec<String>,
}

/// Lists the task folder (a missing folder is an empty board). Never opens an entry.
pub(crate) fn list(tasks_dir: &Path) -> Result<Listing, BoardError> {
    let io = |source| BoardError::Io {
        path: tasks_dir.to_owned(),
        source,
    };
    let mut listing = Listing {
        entries: Vec::new(),
        temps: Vec::new(),
    };
    let entries = match std::fs::read_dir(tasks_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_task_name(&name) {
            listing.entries.push((name, entry.file_type().ok()));
        } else if files::temp_writer(&name).is_some() {
            listing.temps.push(name);
        }
    }
    listing.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(listing)
}

/// Reads and parses the files, on a few threads when there are many.
fn read_files(dir: &Path, entries: &[(String, Option<FileType>)]) -> Vec<FileRead> {
    const PER_THREAD: usize = 256;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(entries.len() / PER_THREAD)
        .max(1);
    let read = |(name, ft): &(String, Option<FileType>)| read_file(&dir.join(name), *ft);
    if threads == 1 {
        return entries.iter().map(read).collect();
    }
    let chunk = entries.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(read).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(results) => results,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Reads one task file for the board. `listed` is the entry's type from the folder listing,
/// when known: anything but a regular file or a symlink is reported without being opened, and
/// a symlink's target is looked at before it is opened.
/// Reads one task file for [`Board::apply_reads`]: a task, a problem, or nothing there.
pub fn read_one(path: &Path) -> FileRead {
    read_file(path, None)
}

pub(crate) fn read_file(path: &Path, listed: Option<FileType>) -> FileRead {
    let broken =
        |kind, line, reason: String| FileRead::Broken(Problem::new(kind, path, line, reason));
    let listed = match listed {
        Some(ft) => Some(ft),
        None => match std::fs::symlink_metadata(path) {
            Ok(m) => Some(m.file_type()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileRead::Missing,
            Err(e) => return broken(ProblemKind::Unreadable, None, format!("cannot read: {e}")),
        },
    };
    let not_a_file = |what: &str| {
        broken(
            ProblemKind::NotAFile,
            None,
            format!("{what} named like a task file, not a regular file; skipped"),
        )
    };
    if let Some(what) = listed.and_then(files::kind_name) {
        return not_a_file(what);
    }
    if listed.is_some_and(|ft| ft.is_symlink()) {
        match std::fs::metadata(path) {
            Ok(m) => {
                if let Some(what) = files::kind_name(m.file_type()) {
                    return not_a_file(what);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return broken(
                    ProblemKind::Unreadable,
                    None,
                    "a symlink to nothing (its target is missing)".into(),
                );
            }
            Err(e) => return broken(ProblemKind::Unreadable, None, format!("cannot read: {e}")),
        }
    }
    match read_bytes(path) {
        Ok(bytes) => match parse(path, bytes, false) {
            Ok(task) => FileRead::Task(task),
            Err(problem) => FileRead::Broken(problem),
        },
        Err(ReadError::Missing) => FileRead::Missing,
        Err(ReadError::NotAFile(what)) => not_a_file(what),
        Err(e) => broken(ProblemKind::Unreadable, None, e.reason()),
    }
}

/// The bytes of a regular file, opened without blocking and checked once open.
fn read_bytes(path: &Path) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let (file, meta) = files::open_regular(path)?;
    if meta.len() > MAX_TASK_FILE {
        return Err(ReadError::TooLarge);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.take(MAX_TASK_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_TASK_FILE {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// Parses a task file's bytes; with `keep_source` the layout is kept for a faithful rewrite.
pub(crate) fn parse(path: &Path, bytes: Vec<u8>, keep_source: bool) -> Result<Task, Problem> {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            return Err(Problem::new(
                ProblemKind::Unreadable,
                path,
                Some(line),
                "the file is not valid UTF-8",
            ));
        }
    };
    Task::parse(path, &text, keep_source)
        .map_err(|e| Problem::new(ProblemKind::Unreadable, path, Some(e.line), e.reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::default_config_yml;

    fn write_board(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yml"), default_config_yml("t")).unwrap();
        std::fs::create_dir(dir.path().join("tasks")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("tasks").join(name), text).unwrap();
        }
        dir
    }

    fn task_text(id: u64, extra: &str) -> String {
        format!("---\nid: {id}\ntitle: t{id}\nstatus: todo\n{extra}---\n")
    }

    fn ids(board: &Board) -> Vec<u64> {
        board.tasks().iter().map(|t| t.id).collect()
    }

    fn kinds(board: &Board) -> Vec<(ProblemKind, String)> {
        board
            .problems()
            .iter()
            .map(|p| {
                let name = p.path.file_name().unwrap().to_string_lossy().into_owned();
                (p.kind, name)
            })
            .collect()
    }

    #[test]
    fn special_files_named_md_are_reported_and_not_opened() {
        let dir = write_board(&[("001-a.md", &task_text(1, ""))]);
        let tasks = dir.path().join("tasks");
        let fifo = std::ffi::CString::new(tasks.join("002-fifo.md").to_str().unwrap()).unwrap();
        // SAFETY: a valid path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let _sock = std::os::unix::net::UnixListener::bind(tasks.join("003-sock.md")).unwrap();
        std::fs::create_dir(tasks.join("004-dir.md")).unwrap();
        std::os::unix::fs::symlink(tasks.join("002-fifo.md"), tasks.join("005-link.md")).unwrap();
        std::os::unix::fs::symlink("001-a.md", tasks.join("006-alias.md")).unwrap();
        let board = Board::load(dir.path()).unwrap();
        assert_eq!(ids(&board), [1]);
        let found = kinds(&board);
        let not_files: Vec<&str> = found
            .iter()
            .filter(|(k, _)| *k == ProblemKind::NotAFile)
            .map(|(_, n)| n.as_str())
            .collect();
        assert_eq!(
            not_files,
            ["002-fifo.md", "003-sock.md", "004-dir.md", "005-link.md"]
        );
        // The symlink to a task file is that task a second time: a duplicate, not a hang.
        assert!(found.contains(&(ProblemKind::DuplicateId, "006-alias.md".into())));
        let text = board.problems()[0].to_string();
        assert!(
            text.ends_with(
                "002-fifo.md: a FIFO named like a task file, not a regular file; skipped"
            ),
            "{text}"
        );
    }

    #[test]
    fn reload_follows_adds_edits_renames_breakage_and_removal() {
        let dir = write_board(&[
            ("001-a.md", &task_text(1, "")),
            ("002-b.md", &task_text(2, "")),
        ]);
        let tasks = dir.path().join("tasks");
        let mut board = Board::load(dir.path()).unwrap();

        std::fs::write(tasks.join("003-c.md"), task_text(3, "")).unwrap();
        let c = board.reload_path(&tasks.join("003-c.md")).unwrap();
        assert_eq!((c.added, ids(&board)), (vec![3], vec![1, 2, 3]));

        std::fs::write(tasks.join("002-b.md"), task_text(2, "priority: high\n")).unwrap();
        let c = board.reload_path(&tasks.join("002-b.md")).unwrap();
        assert_eq!(c.changed, [2]);
        assert_eq!(board.task(2).unwrap().priority, "high");

        // A rename arrives as its two names; together they are one change of #1.
        std::fs::rename(tasks.join("001-a.md"), tasks.join("001-z.md")).unwrap();
        let c = board
            .reload_paths([
                tasks.join("001-a.md").as_path(),
                tasks.join("001-z.md").as_path(),
            ])
            .unwrap();
        assert_eq!(
            (c.changed.clone(), c.added.len(), c.removed.len()),
            (vec![1], 0, 0)
        );
        assert_eq!(board.task(1).unwrap().file_name(), "001-z.md");

        std::fs::write(tasks.join("003-c.md"), "---\nid: [\n---\n").unwrap();
        let c = board.reload_path(&tasks.join("003-c.md")).unwrap();
        assert_eq!(c.removed, [3]);
        assert_eq!(
            kinds(&board),
            [(ProblemKind::Unreadable, "003-c.md".into())]
        );

        std::fs::remove_file(tasks.join("003-c.md")).unwrap();
        let c = board.reload_path(&tasks.join("003-c.md")).unwrap();
        assert!(c.is_empty() && board.problems().is_empty(), "{c:?}");

        // Temp files, hidden files and other folders are not task files.
        std::fs::write(tasks.join(".002-b.md.1.0.tmp"), task_text(9, "")).unwrap();
        assert!(
            board
                .reload_path(&tasks.join(".002-b.md.1.0.tmp"))
                .unwrap()
                .is_empty()
        );
        assert!(
            board
                .reload_path(&dir.path().join("002-b.md"))
                .unwrap()
                .is_empty()
        );

        // The index agrees with a fresh load.
        let fresh = Board::load(dir.path()).unwrap();
        assert_eq!(board.tasks(), fresh.tasks());
        assert_eq!(board.problems(), fresh.problems());
    }

    #[test]
    fn cycles_follow_dependency_edits() {
        let dir = write_board(&[
            ("001-a.md", &task_text(1, "depends_on:\n    - 2\n")),
            ("002-b.md", &task_text(2, "")),
        ]);
        let b = dir.path().join("tasks/002-b.md");
        let mut board = Board::load(dir.path()).unwrap();
        assert!(board.cycles().is_empty());
        std::fs::write(&b, task_text(2, "priority: high\n")).unwrap();
        board.reload_path(&b).unwrap();
        assert!(board.cycles().is_empty());
        std::fs::write(&b, task_text(2, "depends_on:\n    - 1\n")).unwrap();
        board.reload_path(&b).unwrap();
        assert_eq!(board.cycles(), [vec![1, 2]]);
        assert_eq!(board.problems()[0].kind, ProblemKind::DependencyCycle);
        std::fs::remove_file(&b).unwrap();
        board.reload_path(&b).unwrap();
        assert!(board.cycles().is_empty());
        assert_eq!(board.problems()[0].kind, ProblemKind::MissingDependency);
    }

    #[test]
    fn duplicates_hand_their_id_on_when_the_first_goes() {
        let dir = write_board(&[
            ("001-a.md", &task_text(1, "")),
            ("005-dup.md", &task_text(1, "priority: low\n")),
        ]);
        let tasks = dir.path().join("tasks");
        let mut board = Board::load(dir.path()).unwrap();
        assert_eq!(
            kinds(&board),
            [(ProblemKind::DuplicateId, "005-dup.md".into())]
        );

        // A file sorting before both takes the id.
        std::fs::write(tasks.join("000-first.md"), task_text(1, "priority: high\n")).unwrap();
        let c = board.reload_path(&tasks.join("000-first.md")).unwrap();
        assert_eq!(c.changed, [1]);
        assert_eq!(board.task(1).unwrap().file_name(), "000-first.md");
        assert_eq!(board.problems().len(), 2);

        std::fs::remove_file(tasks.join("000-first.md")).unwrap();
        std::fs::remove_file(tasks.join("001-a.md")).unwrap();
        let c = board
            .reload_paths([
                tasks.join("000-first.md").as_path(),
                tasks.join("001-a.md").as_path(),
            ])
            .unwrap();
        assert_eq!(c.changed, [1]);
        assert_eq!(board.task(1).unwrap().file_name(), "005-dup.md");
        assert!(board.problems().is_empty());
        let fresh = Board::load(dir.path()).unwrap();
        assert_eq!(board.tasks(), fresh.tasks());
    }

    #[test]
    fn config_changes_and_rescans() {
        let dir = write_board(&[(
            "001-a.md",
            &task_text(1, "status: nonsense\n").replace("status: todo\n", ""),
        )]);
        let mut board = Board::load(dir.path()).unwrap();
        assert_eq!(
            kinds(&board),
            [(ProblemKind::UnknownStatus, "001-a.md".into())]
        );
        let config = dir.path().join("config.yml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replace(
                "    - name: todo\n",
                "    - name: todo\n    - name: nonsense\n",
            ),
        )
        .unwrap();
        let c = board.reload_path(&config).unwrap();
        assert!(c.config);
        assert!(board.problems().is_empty(), "{:?}", board.problems());

        std::fs::write(dir.path().join("tasks/002-b.md"), task_text(2, "")).unwrap();
        std::fs::remove_file(dir.path().join("tasks/001-a.md")).unwrap();
        let c = board.rescan().unwrap();
        assert_eq!((c.added, c.removed), (vec![2], vec![1]));
    }

    #[test]
    fn a_save_made_on_a_copy_older_than_the_last_change_is_stale() {
        let config = BoardConfig::parse(Path::new("/b"), &default_config_yml("m")).unwrap();
        let mut board = Board::from_tasks(config, [Task::new(1, "First", "todo")]);
        let at = |s: &str| crate::board::parse_timestamp(s);
        let mut v0 = board.task(1).unwrap().clone();
        v0.updated = at("2026-01-01T00:00:00Z");
        let path = v0.path.clone();
        let put = |board: &mut Board, t: &Task| {
            board.apply_reads(vec![(path.clone(), FileRead::Task(t.clone()))]);
        };
        put(&mut board, &v0);
        // A person's own edits, before anything of batty's, are nothing stale.
        let mut edited = v0.clone();
        edited.body = "more".into();
        put(&mut board, &edited);
        assert_eq!(board.stale_save(1), None);
        // batty claims it, stamping `updated`.
        let mut claimed = edited.clone();
        claimed.status = "in-progress".into();
        claimed.claimed_by = Some("otter".into());
        claimed.claimed_at = at("2026-01-01T00:05:00Z");
        claimed.updated = claimed.claimed_at;
        put(&mut board, &claimed);
        assert_eq!(board.stale_save(1), None);
        // The buffer read before the claim is saved with a new line: stale.
        let mut stale = edited.clone();
        stale.body = "more\nand more".into();
        put(&mut board, &stale);
        assert_eq!(board.stale_save(1), Some(true));
        assert_eq!(board.stale_save(1), Some(false), "told once");
        // Read again unchanged: still told.
        put(&mut board, &stale);
        assert_eq!(board.stale_save(1), Some(false));
        // The claim written back on top: not stale any more.
        let mut restored = stale.clone();
        restored.status = "in-progress".into();
        restored.claimed_by = Some("otter".into());
        restored.claimed_at = at("2026-01-01T00:06:00Z");
        restored.updated = restored.claimed_at;
        put(&mut board, &restored);
        assert_eq!(board.stale_save(1), None);
        // The same buffer saved once more: stale again.
        put(&mut board, &stale);
        assert_eq!(board.stale_save(1), Some(true));

        put(&mut board, &restored);
        // A copy read after the claim, with the claim taken out by hand: meant.
        let mut by_hand = restored.clone();
        by_hand.status = "todo".into();
        by_hand.claimed_by = None;
        by_hand.claimed_at = None;
        put(&mut board, &by_hand);
        assert_eq!(board.stale_save(1), None);
        put(&mut board, &restored);
        // Released by a tool, which stamps `updated`: meant.
        let mut released = by_hand.clone();
        released.updated = at("2026-01-01T00:07:00Z");
        put(&mut board, &released);
        assert_eq!(board.stale_save(1), None);
        put(&mut board, &restored);
        // An old copy whose status the person changed: they meant that status.
        let mut moved = stale.clone();
        moved.status = "backlog".into();
        put(&mut board, &moved);
        assert_eq!(board.stale_save(1), None);
    }

    #[test]
    fn a_task_whose_file_breaks_is_unreadable_not_gone() {
        let dir = write_board(&[("001-a.md", &task_text(1, ""))]);
        let a = dir.path().join("tasks/001-a.md");
        let mut board = Board::load(dir.path()).unwrap();
        assert!(board.holds_task(&a) && !board.unreadable(1));
        std::fs::write(&a, "").unwrap();
        board.reload_path(&a).unwrap();
        assert!(board.task(1).is_none() && board.unreadable(1));
        assert!(!board.holds_task(&a));
        // Still broken after another save, and after a full read.
        std::fs::write(&a, "---\nid: [\n---\n").unwrap();
        board.reload_path(&a).unwrap();
        assert!(board.unreadable(1));
        board.rescan().unwrap();
        assert!(board.unreadable(1));
        std::fs::write(&a, task_text(1, "")).unwrap();
        board.reload_path(&a).unwrap();
        assert!(board.task(1).is_some() && !board.unreadable(1));
        std::fs::remove_file(&a).unwrap();
        board.reload_path(&a).unwrap();
        assert!(
            !board.unreadable(1),
            "a removed file is gone, not unreadable"
        );
    }

    #[test]
    fn boards_in_memory() {
        let config = BoardConfig::parse(Path::new("/b"), &default_config_yml("m")).unwrap();
        let mut dep = Task::new(2, "Second", "todo");
        dep.depends_on = vec![1, 9];
        let board = Board::from_tasks(config, [Task::new(1, "First", "done"), dep]);
        assert_eq!(ids(&board), [1, 2]);
        assert_eq!(
            board.task(2).unwrap().path(),
            Path::new("/b/tasks/002-second.md")
        );
        assert_eq!(
            kinds(&board),
            [(ProblemKind::MissingDependency, "002-second.md".into())]
        );
        // The ready set comes from memory (these files do not exist): #2 waits for the missing
        // #9, and a third task that needs only the done #1 is ready.
        let statuses = ["todo".to_owned()];
        let now = crate::board::parse_timestamp("2026-01-01T00:00:00Z").unwrap();
        assert!(board.ready(&statuses, &now).is_empty());
        let mut third = Task::new(3, "Third", "todo");
        third.depends_on = vec![1];
        let tasks: Vec<Task> = board.tasks().iter().cloned().chain([third]).collect();
        let board = Board::from_tasks(board.config().clone(), tasks);
        let ready: Vec<u64> = board.ready(&statuses, &now).iter().map(|t| t.id).collect();
        assert_eq!(ready, [3]);
    }

    #[test]
    fn leftover_temps_are_seen_by_the_load() {
        let dir = write_board(&[("001-a.md", &task_text(1, ""))]);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let tmp = dir.path().join(format!("tasks/.001-a.md.{gone}.3.tmp"));
        std::fs::write(&tmp, "half").unwrap();
        let mut board = Board::load(dir.path()).unwrap();
        assert!(board.problems().is_empty());
        assert_eq!(board.remove_leftover_temps(), std::slice::from_ref(&tmp));
        assert!(!tmp.exists());
    }
}
