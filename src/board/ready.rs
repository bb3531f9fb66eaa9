//! The ready set in kanban-md's `pick` order, and cycles in `depends_on`.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::load::Board;
use super::task::Task;
use super::time::Timestamp;

impl Board {
    /// Tasks that may be dispatched now, best first: status in `statuses`, not blocked, not
    /// claimed (or the claim expired), and every `depends_on` task that exists is terminal.
    /// Ordered by class (configured order; unset = `standard`), then due date between two
    /// `fixed-date` tasks, then priority (highest first), then file name.
    pub fn ready(&self, statuses: &[String], now: &Timestamp) -> Vec<&Task> {
        let mut ready: Vec<&Task> = self
            .tasks()
            .iter()
            .filter(|t| self.is_ready(t, statuses, now))
            .collect();
        let config = self.config();
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

    /// Whether `task` may be dispatched now: [`Board::not_ready_reason`] without the reason,
    /// cheap enough to ask of every task on every board change.
    pub fn is_ready(&self, task: &Task, statuses: &[String], now: &Timestamp) -> bool {
        statuses.contains(&task.status)
            && !task.blocked
            && !task.is_claimed(now, self.config().claim_timeout)
            && task
                .depends_on
                .iter()
                .filter_map(|id| self.task(*id))
                .all(|dep| self.is_terminal(&dep.status))
    }

    /// Why `task` is not ready (`None` when it is).
    pub fn not_ready_reason(
        &self,
        task: &Task,
        statuses: &[String],
        now: &Timestamp,
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
        if task.is_claimed(now, self.config().claim_timeout) {
            return Some(format!(
                "it is claimed by `{}`",
                task.claimed_by.as_deref().unwrap_or_default()
            ));
        }
        let waiting: Vec<String> = task
            .depends_on
            .iter()
            .filter_map(|id| self.task(*id))
            .filter(|dep| !self.is_terminal(&dep.status))
            .map(|dep| format!("#{}", dep.id))
            .collect();
        if !waiting.is_empty() {
            return Some(format!("it waits for {}", waiting.join(", ")));
        }
        None
    }

    /// Cycles in `depends_on`, each as the ids around it (`[1, 2]` for 1 -> 2 -> 1), each once.
    pub fn cycles(&self) -> Vec<Vec<u64>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut mark: HashMap<u64, Mark> = self.tasks().iter().map(|t| (t.id, Mark::New)).collect();
        let mut cycles = Vec::new();
        let mut ids: Vec<u64> = self.tasks().iter().map(|t| t.id).collect();
        ids.sort_unstable();
        for start in ids {
            if mark[&start] != Mark::New {
                continue;
            }
            // Iterative depth-first search: (node, next dependency index).
            let mut stack: Vec<(u64, usize)> = vec![(start, 0)];
            mark.insert(start, Mark::Open);
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let deps = self.task(node).map_or(&[][..], |t| &t.depends_on[..]);
                if let Some(&dep) = deps.get(*next) {
                    *next += 1;
                    match mark.get(&dep) {
                        Some(Mark::New) => {
                            mark.insert(dep, Mark::Open);
                            stack.push((dep, 0));
                        }
                        Some(Mark::Open) => {
                            let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                            cycles.push(stack[from..].iter().map(|(n, _)| *n).collect());
                        }
                        _ => {}
                    }
                } else {
                    mark.insert(node, Mark::Done);
                    stack.pop();
                }
            }
        }
        cycles
    }
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
        // The claim (1h timeout) holds at 00:30 and has expired at 02:00.
        assert_eq!(ready_ids(&b, "2026-01-01T00:30:00Z"), [4, 5]);
        assert_eq!(ready_ids(&b, "2026-01-01T02:00:00Z"), [2, 4, 5]);
        let statuses = ["todo".to_owned()];
        let now = parse_timestamp("2026-01-01T00:30:00Z").unwrap();
        let reason = b.not_ready_reason(b.task(3).unwrap(), &statuses, &now);
        assert_eq!(reason.as_deref(), Some("it waits for #4"));
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
        assert_eq!(b.cycles(), vec![vec![1, 2, 3], vec![4]]);
    }
}
