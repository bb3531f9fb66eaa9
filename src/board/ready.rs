//! The ready set in kanban-md's `pick` order, why a task is not ready, the problems a task
//! has on its board (unknown status, missing dependencies), and cycles in `depends_on`.

use std::cmp::Ordering;

use super::config::BoardConfig;
use super::load::Board;
use super::problem::{Problem, ProblemKind};
use super::task::Task;
use super::time::Timestamp;

/// Where one dependency of a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dep {
    /// In a terminal status.
    Done,
    /// On the board, not finished.
    Open,
    /// Not on the board.
    Missing,
}

/// Why `task` is not ready for dispatch from `statuses` (`None` when it is); `dep` says where
/// each of its dependencies stands. A dependency on a task that is not on the board keeps the
/// task back: the missing task may be a typo, or not written yet.
pub(crate) fn not_ready(
    config: &BoardConfig,
    task: &Task,
    statuses: &[String],
    now: &Timestamp,
    dep: impl Fn(u64) -> Dep,
) -> Option<String> {
    if !statuses.contains(&task.status) {
        return Some(format!(
            "its status `{}` is not one of {}",
            task.status,
            statuses.join(", ")
        ));
    }
    if task.blocked {
        return Some(match &task.block_reason {
            Some(r) => format!("it is blocked ({r})"),
            None => "it is blocked".into(),
        });
    }
    if task.is_claimed(now, config.claim_timeout) {
        return Some(format!(
            "it is claimed by `{}`",
            task.claimed_by.as_deref().unwrap_or_default()
        ));
    }
    let ids = |want: Dep| -> Vec<String> {
        task.depends_on
            .iter()
            .filter(|&&id| dep(id) == want)
            .map(|id| format!("#{id}"))
            .collect()
    };
    let missing = ids(Dep::Missing);
    if !missing.is_empty() {
        let which = if missing.len() == 1 {
            "which is"
        } else {
            "which are"
        };
        return Some(format!(
            "it depends on {}, {which} not on the board",
            missing.join(", ")
        ));
    }
    let waiting = ids(Dep::Open);
    if !waiting.is_empty() {
        return Some(format!("it waits for {}", waiting.join(", ")));
    }
    None
}

impl Board {
    /// Tasks that may be dispatched now, best first: status in `statuses`, not blocked, not
    /// claimed (or the claim expired), and every `depends_on` task on the board and terminal.
    /// Ordered by class (configured order; unset = `standard`), then due date between two
    /// `fixed-date` tasks, then priority (highest first), then file name. Worked out from the
    /// tasks in memory: no file is read.
    pub fn ready(&self, statuses: &[String], now: &Timestamp) -> Vec<&Task> {
        let config = self.config();
        let mut ready: Vec<&Task> = self
            .tasks()
            .iter()
            .filter(|t| {
                statuses.contains(&t.status)
                    && !t.blocked
                    && !t.is_claimed(now, config.claim_timeout)
                    && t.depends_on.iter().all(|&d| self.dep(d) == Dep::Done)
            })
            .collect();
        // A stable sort: ties stay in file name order.
        ready.sort_by(|a, b| {
            let class = |t: &Task| config.class_index(t.class.as_deref());
            class(a)
                .cmp(&class(b))
                .then_with(|| {
                    let fixed = |t: &Task| t.class.as_deref() == Some("fixed-date");
                    if fixed(a) && fixed(b) {
                        compare_due(a, b)
                    } else {
                        Ordering::Equal
                    }
                })
                .then_with(|| {
                    config
                        .priority_index(&b.priority)
                        .cmp(&config.priority_index(&a.priority))
                })
        });
        ready
    }

    /// Why `task` is not ready (`None` when it is).
    pub fn not_ready_reason(
        &self,
        task: &Task,
        statuses: &[String],
        now: &Timestamp,
    ) -> Option<String> {
        not_ready(self.config(), task, statuses, now, |id| self.dep(id))
    }

    fn dep(&self, id: u64) -> Dep {
        match self.task(id) {
            None => Dep::Missing,
            Some(t) if self.is_terminal(&t.status) => Dep::Done,
            Some(_) => Dep::Open,
        }
    }
}

/// The problems `task` has on `board`: a status the config does not list, and (unless it is
/// finished) dependencies on tasks that are not on the board.
pub(crate) fn task_problems(board: &Board, task: &Task) -> Vec<Problem> {
    let config = board.config();
    let mut problems = Vec::new();
    if !config.has_status(&task.status) {
        problems.push(Problem::new(
            ProblemKind::UnknownStatus,
            task.path.clone(),
            task.lines.status(),
            format!(
                "status `{}` is not one of the board's statuses ({}); the task is never dispatched",
                task.status,
                config.status_names().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if !config.is_terminal(&task.status) {
        let missing: Vec<String> = task
            .depends_on
            .iter()
            .filter(|&&d| board.task(d).is_none())
            .map(|d| format!("#{d}"))
            .collect();
        if !missing.is_empty() {
            let which = if missing.len() == 1 {
                "which is"
            } else {
                "which are"
            };
            problems.push(Problem::new(
                ProblemKind::MissingDependency,
                task.path.clone(),
                task.lines.depends_on(),
                format!(
                    "depends on {}, {which} not on the board; the task is not dispatched",
                    missing.join(", ")
                ),
            ));
        }
    }
    problems
}

/// Cycles in `depends_on`, each as the ids around it, found once each by a depth-first search
/// from every task in id order.
pub(crate) fn find_cycles(board: &Board) -> Vec<Vec<u64>> {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let tasks = board.tasks();
    if tasks.iter().all(|t| t.depends_on.is_empty()) {
        return Vec::new();
    }
    // Marks by position in `tasks`; ids are looked up once per edge.
    let mut mark = vec![NEW; tasks.len()];
    let mut cycles = Vec::new();
    let mut starts: Vec<(u64, usize)> = tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.depends_on.is_empty())
        .map(|(i, t)| (t.id, i))
        .collect();
    starts.sort_unstable();
    // Iterative depth-first search: (position, next dependency index).
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for (_, start) in starts {
        if mark[start] != NEW {
            continue;
        }
        stack.push((start, 0));
        mark[start] = OPEN;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(dep) = tasks[node].depends_on.get(*next) {
                *next += 1;
                let Some(d) = board.position(*dep) else {
                    continue;
                };
                match mark[d] {
                    NEW => {
                        mark[d] = OPEN;
                        stack.push((d, 0));
                    }
                    OPEN => {
                        let from = stack.iter().position(|(n, _)| *n == d).unwrap_or(0);
                        cycles.push(stack[from..].iter().map(|(n, _)| tasks[*n].id).collect());
                    }
                    _ => {}
                }
            } else {
                mark[node] = DONE;
                stack.pop();
            }
        }
    }
    cycles
}

/// Earlier due date first; a task with a due date before one without.
fn compare_due(a: &Task, b: &Task) -> Ordering {
    match (a.due, b.due) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::time::parse_timestamp;

    fn board(tasks: &[(u64, &str)]) -> (tempfile::TempDir, Board) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yml"),
            crate::board::default_config_yml("t"),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("tasks")).unwrap();
        for (id, extra) in tasks {
            let text = format!("---\nid: {id}\ntitle: t{id}\nstatus: todo\n{extra}---\n");
            std::fs::write(dir.path().join(format!("tasks/{id:03}-t.md")), text).unwrap();
        }
        let board = Board::load(dir.path()).unwrap();
        (dir, board)
    }

    fn ready_ids(board: &Board, now: &str) -> Vec<u64> {
        let statuses = ["backlog".to_owned(), "todo".to_owned()];
        let now = parse_timestamp(now).unwrap();
        board.ready(&statuses, &now).iter().map(|t| t.id).collect()
    }

    #[test]
    fn pick_order_class_due_priority_file_name() {
        let (_dir, b) = board(&[
            (1, "priority: low\n"),
            (2, "priority: high\n"),
            (3, "priority: high\n"),
            (4, "priority: low\nclass: expedite\n"),
            (5, "priority: low\nclass: fixed-date\ndue: \"2026-05-01\"\n"),
            (
                6,
                "priority: critical\nclass: fixed-date\ndue: \"2026-06-01\"\n",
            ),
            (7, "priority: critical\nclass: intangible\n"),
        ]);
        assert_eq!(ready_ids(&b, "2026-01-01T00:00:00Z"), [4, 5, 6, 2, 3, 1, 7]);
    }

    #[test]
    fn blocked_claimed_and_waiting_tasks_are_not_ready() {
        let (_dir, b) = board(&[
            (1, "blocked: true\n"),
            (2, "claimed_by: otter\nclaimed_at: 2026-01-01T00:00:00Z\n"),
            (3, "depends_on:\n    - 4\n"),
            (4, ""),
            (5, "depends_on:\n    - 99\n"),
        ]);
        // The claim (1h timeout) holds at 00:30 and has expired at 02:00; #5 depends on a task
        // that is not on the board.
        assert_eq!(ready_ids(&b, "2026-01-01T00:30:00Z"), [4]);
        assert_eq!(ready_ids(&b, "2026-01-01T02:00:00Z"), [2, 4]);
        let statuses = ["todo".to_owned()];
        let now = parse_timestamp("2026-01-01T00:30:00Z").unwrap();
        let reason = |id| b.not_ready_reason(b.task(id).unwrap(), &statuses, &now);
        assert_eq!(reason(3).as_deref(), Some("it waits for #4"));
        assert_eq!(
            reason(5).as_deref(),
            Some("it depends on #99, which is not on the board")
        );
        let problems: Vec<String> = b.problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].ends_with(
                "005-t.md:5: depends on #99, which is not on the board; the task is not dispatched"
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn cycles_are_found_once() {
        let (_dir, b) = board(&[
            (1, "depends_on:\n    - 2\n"),
            (2, "depends_on:\n    - 3\n"),
            (3, "depends_on:\n    - 1\n"),
            (4, "depends_on:\n    - 4\n"),
            (5, "depends_on:\n    - 1\n"),
        ]);
        assert_eq!(b.cycles(), [vec![1, 2, 3], vec![4]]);
        let cycles: Vec<(ProblemKind, String)> = b
            .problems()
            .iter()
            .map(|p| (p.kind, p.to_string()))
            .collect();
        assert_eq!(cycles.len(), 2);
        assert!(
            cycles
                .iter()
                .all(|(k, _)| *k == ProblemKind::DependencyCycle)
        );
        assert!(
            cycles[0]
                .1
                .contains("001-t.md:5: dependency cycle: #1 -> #2 -> #3 -> #1;"),
            "{cycles:?}"
        );
    }
}
