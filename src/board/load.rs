//! Loading a whole board for reading: every task file parsed once, bad files reported and
//! skipped, duplicate ids caught. Loading never writes.

use std::collections::HashMap;
use std::path::Path;

use super::config::BoardConfig;
use super::task::Task;
use super::{BoardError, Problem};

/// Task files larger than this are reported, not read.
pub const MAX_TASK_FILE: u64 = 1024 * 1024;

/// A board as read from disk.
#[derive(Debug, Clone)]
pub struct Board {
    config: BoardConfig,
    /// In file name order.
    tasks: Vec<Task>,
    by_id: HashMap<u64, usize>,
    problems: Vec<Problem>,
}

impl Board {
    /// Reads `<dir>/config.yml` and every `*.md` file in the task folder. Files that cannot be
    /// used become [`Board::problems`]; only a missing or broken config (or an unreadable task
    /// folder) fails the load.
    pub fn load(dir: &Path) -> Result<Board, BoardError> {
        let config = BoardConfig::load(dir)?;
        let tasks_dir = config.tasks_path();
        let names = task_file_names(&tasks_dir)?;
        let mut problems = Vec::new();
        let parsed = parse_files(&tasks_dir, &names);
        let mut tasks: Vec<Task> = Vec::with_capacity(parsed.len());
        let mut by_id: HashMap<u64, usize> = HashMap::with_capacity(parsed.len());
        // Files come in name order, so the first file with an id keeps it.
        for result in parsed {
            match result {
                Ok(task) => {
                    if let Some(&first) = by_id.get(&task.id) {
                        let first: &Task = &tasks[first];
                        problems.push(Problem {
                            path: task.path.clone(),
                            line: Some(2),
                            reason: format!(
                                "duplicate id {} (also in `{}`); this file is skipped",
                                task.id,
                                first.file_name()
                            ),
                        });
                        continue;
                    }
                    by_id.insert(task.id, tasks.len());
                    tasks.push(task);
                }
                Err(problem) => problems.push(problem),
            }
        }
        // Dispatch order ties break on file name, so keep name order and index ids separately.
        Ok(Board {
            config,
            tasks,
            by_id,
            problems,
        })
    }

    pub fn config(&self) -> &BoardConfig {
        &self.config
    }

    /// The board folder.
    pub fn dir(&self) -> &Path {
        self.config.dir()
    }

    /// Every readable task, in file name order.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// Files that could not be read, one per file, e.g. `tasks/004-x.md:3: ...`.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub fn task(&self, id: u64) -> Option<&Task> {
        self.by_id.get(&id).map(|&i| &self.tasks[i])
    }

    pub fn is_terminal(&self, status: &str) -> bool {
        self.config.is_terminal(status)
    }

    // The pieces `index.rs` keeps the board current with, one file at a time.

    pub(super) fn empty(config: BoardConfig) -> Board {
        Board {
            config,
            tasks: Vec::new(),
            by_id: HashMap::new(),
            problems: Vec::new(),
        }
    }

    pub(super) fn position_of_path(&self, path: &Path) -> Option<usize> {
        self.tasks.iter().position(|t| t.path() == path)
    }

    pub(super) fn position_of_id(&self, id: u64) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    pub(super) fn remove_at(&mut self, i: usize) -> Task {
        let task = self.tasks.remove(i);
        if self.by_id.get(&task.id) == Some(&i) {
            self.by_id.remove(&task.id);
        }
        for at in self.by_id.values_mut() {
            if *at > i {
                *at -= 1;
            }
        }
        // Another file with the same id (skipped as a duplicate) may hold it now.
        if let Some(j) = self.tasks.iter().position(|t| t.id == task.id) {
            self.by_id.insert(task.id, j);
        }
        task
    }

    /// Inserts in file name order; the first file by name keeps an id two files claim.
    pub(super) fn insert_sorted(&mut self, task: Task) {
        let at = self
            .tasks
            .partition_point(|t| t.file_name() < task.file_name());
        for i in self.by_id.values_mut() {
            if *i >= at {
                *i += 1;
            }
        }
        match self.by_id.get(&task.id) {
            Some(&other) if other < at => {}
            _ => {
                self.by_id.insert(task.id, at);
            }
        }
        self.tasks.insert(at, task);
    }

    /// Many tasks at once (in any order): sorted and indexed once.
    pub(super) fn insert_all(&mut self, mut tasks: Vec<Task>) {
        self.tasks.append(&mut tasks);
        self.tasks.sort_by(|a, b| a.file_name().cmp(b.file_name()));
        self.reindex();
    }

    pub(super) fn replace_at(&mut self, i: usize, task: Task) -> Task {
        std::mem::replace(&mut self.tasks[i], task)
    }

    pub(super) fn problems_mut(&mut self) -> &mut Vec<Problem> {
        &mut self.problems
    }

    fn reindex(&mut self) {
        self.by_id.clear();
        for (i, t) in self.tasks.iter().enumerate() {
            self.by_id.entry(t.id).or_insert(i);
        }
    }
}

/// The `*.md` files of the task folder, sorted by name (a missing folder is an empty board).
pub(crate) fn task_file_names(tasks_dir: &Path) -> Result<Vec<String>, BoardError> {
    let io = |source| BoardError::Io {
        path: tasks_dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(tasks_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.ends_with(".md") && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// Reads and parses the files, on a few threads when there are many.
fn parse_files(dir: &Path, names: &[String]) -> Vec<Result<Task, Problem>> {
    const PER_THREAD: usize = 256;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(names.len() / PER_THREAD)
        .max(1);
    if threads == 1 {
        return names.iter().map(|n| read_task(&dir.join(n))).collect();
    }
    let chunk = names.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|n| read_task(&dir.join(n)))
                        .collect::<Vec<_>>()
                })
            })
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

/// Reads one task file for the board (no layout kept).
pub(crate) fn read_task(path: &Path) -> Result<Task, Problem> {
    read_task_with(path, false)
}

pub(crate) fn read_task_with(path: &Path, keep_source: bool) -> Result<Task, Problem> {
    let problem = |line: Option<usize>, reason: String| Problem {
        path: path.to_owned(),
        line,
        reason,
    };
    let bytes = read_limited(path).map_err(|reason| problem(None, reason))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            return Err(problem(Some(line), "the file is not valid UTF-8".into()));
        }
    };
    Task::parse(path, &text, keep_source).map_err(|e| problem(Some(e.line), e.reason))
}

fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::with_capacity(1024);
    file.take(MAX_TASK_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_TASK_FILE {
        return Err(format!(
            "the file is larger than {} KiB; not read",
            MAX_TASK_FILE / 1024
        ));
    }
    Ok(bytes)
}
