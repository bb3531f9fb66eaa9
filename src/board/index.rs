//! Keeping a loaded board current one file at a time: the supervisor holds one [`Board`] and,
//! when a task file changes, re-reads that file alone and puts the task in its place. Pure: the
//! caller reads the file.

use std::path::Path;

use super::config::BoardConfig;
use super::load::Board;
use super::task::Task;
use super::{Problem, load};

/// What [`Board::upsert`] and [`Board::remove_path`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The task is in (it replaced `old`, read from the same file or, after a rename, from
    /// another file with the same id).
    In { old: Option<Task> },
    /// The task went out.
    Out { old: Task },
    /// Nothing was there.
    Nothing,
    /// Two files claim one id: only reading the whole folder again tells which one wins.
    Rescan,
}

impl Board {
    /// A board from a config and tasks already in memory (tests, simulations).
    pub fn from_parts(config: BoardConfig, mut tasks: Vec<Task>) -> Board {
        for t in &mut tasks {
            t.clear_source();
        }
        let mut board = Board::empty(config);
        board.insert_all(tasks);
        board
    }

    /// Puts `task` in place of the task read from the same file.
    pub fn upsert(&mut self, mut task: Task) -> Change {
        task.clear_source();
        self.forget_problem(task.path());
        if let Some(i) = self.position_of_path(task.path())
            && self.tasks()[i].id() == task.id()
        {
            // The usual change: the same file, the same id, in place.
            return Change::In {
                old: Some(self.replace_at(i, task)),
            };
        }
        let old = self
            .position_of_path(task.path())
            .map(|i| self.remove_at(i));
        if self.position_of_id(task.id()).is_some() {
            // A rename shows up as the new file before the old one is gone; or two files
            // really share an id. Either way the folder decides.
            self.insert_sorted(task);
            return Change::Rescan;
        }
        self.insert_sorted(task);
        Change::In { old }
    }

    /// Takes out the task read from `path` (its file was removed, or can no longer be read).
    pub fn remove_path(&mut self, path: &Path) -> Change {
        let had_problem = self.forget_problem(path);
        match self.position_of_path(path) {
            Some(i) => Change::Out {
                old: self.remove_at(i),
            },
            // A file that was skipped as a duplicate may have been what kept another out.
            None if had_problem => Change::Rescan,
            None => Change::Nothing,
        }
    }

    /// Records that the file at `path` cannot be read (replacing any task read from it).
    pub fn set_problem(&mut self, problem: Problem) -> Change {
        let change = self.remove_path(&problem.path);
        self.problems_mut().push(problem);
        change
    }

    /// True when a problem was recorded for `path`.
    fn forget_problem(&mut self, path: &Path) -> bool {
        let problems = self.problems_mut();
        let before = problems.len();
        problems.retain(|p| p.path != path);
        problems.len() != before
    }
}

/// Reads one task file for [`Board::upsert`] (no layout kept).
pub fn read_one(path: &Path) -> Result<Task, Problem> {
    load::read_task(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BoardConfig {
        BoardConfig::parse(Path::new("/b"), &crate::board::default_config_yml("t")).unwrap()
    }

    fn task(id: u64, file: &str, status: &str) -> Task {
        let mut t = Task::blank(id, format!("t{id}"), status.into(), "medium".into());
        t.path = Path::new("/b/tasks").join(file);
        t
    }

    #[test]
    fn one_file_at_a_time() {
        let mut b = Board::from_parts(config(), vec![task(2, "002-b.md", "todo")]);
        assert_eq!(
            b.upsert(task(1, "001-a.md", "todo")),
            Change::In { old: None }
        );
        assert_eq!(
            b.tasks().iter().map(|t| t.id()).collect::<Vec<_>>(),
            [1, 2],
            "file name order"
        );
        let changed = b.upsert(task(1, "001-a.md", "done"));
        assert!(matches!(changed, Change::In { old: Some(ref t) } if t.status() == "todo"));
        assert_eq!(b.task(1).unwrap().status(), "done");
        assert!(matches!(
            b.remove_path(Path::new("/b/tasks/002-b.md")),
            Change::Out { .. }
        ));
        assert!(b.task(2).is_none());
        assert_eq!(
            b.remove_path(Path::new("/b/tasks/nope.md")),
            Change::Nothing
        );
    }

    #[test]
    fn a_second_file_with_an_id_asks_for_a_rescan() {
        let mut b = Board::from_parts(config(), vec![task(1, "001-a.md", "todo")]);
        assert_eq!(b.upsert(task(1, "001-renamed.md", "todo")), Change::Rescan);
    }

    #[test]
    fn problems_replace_tasks() {
        let mut b = Board::from_parts(config(), vec![task(1, "001-a.md", "todo")]);
        let p = Problem {
            path: "/b/tasks/001-a.md".into(),
            line: Some(2),
            reason: "bad".into(),
        };
        assert!(matches!(b.set_problem(p), Change::Out { .. }));
        assert_eq!(b.problems().len(), 1);
        assert!(b.task(1).is_none());
        b.upsert(task(1, "001-a.md", "todo"));
        assert!(b.problems().is_empty());
    }
}

/// Removes temp files a board writer left behind when it was killed mid-write
/// (`.<name>.<pid>.<n>.tmp` whose writer is gone). Called at start by the supervisor.
pub fn clean_temp_files(dir: &Path) {
    let Ok(config) = BoardConfig::load(dir) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(config.tasks_path()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        // `<file>.<pid>.<n>`: the writer's pid is the second field from the end.
        let mut fields = rest.rsplitn(3, '.');
        let (_n, pid) = (fields.next(), fields.next());
        let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !crate::tmux::process_running(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
