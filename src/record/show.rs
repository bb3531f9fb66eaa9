//! The attempts section of `batty task show`: the task's attempts from the record of the
//! board's phase, as text lines or as an `attempts` array beside the task's JSON.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::entry::{At, format_at};
use super::history::{Attempt, History, Outcome};
use super::render::duration;
use super::report::{AttemptRow, short};

/// One task's attempts, read from its phase's record.
#[derive(Debug, Clone, Default)]
pub struct TaskAttempts {
    pub attempts: Vec<AttemptRow>,
    /// The record file, when the board is a project's (`.batty/kanban/<phase>/`).
    pub path: Option<PathBuf>,
    /// Lines of the record that could not be read.
    pub skipped: usize,
}

/// The attempts at task `id` on the board in `board_dir`. A board outside a project's
/// `.batty/kanban/` has no record: no attempts.
pub fn for_task(board_dir: &Path, id: u64) -> TaskAttempts {
    let Some(path) = record_of_board(board_dir) else {
        return TaskAttempts::default();
    };
    let (entries, problems) = super::read(&path);
    let history = History::fold(&entries);
    // Open attempts are timed to now while a supervisor runs, else to its last line.
    let now = match history.live() {
        true => chrono::Utc::now(),
        false => history.last_at().unwrap_or_else(chrono::Utc::now),
    };
    let attempts = history
        .task(id)
        .map(|t| {
            t.attempts
                .iter()
                .map(|a| AttemptRow {
                    attempt: a.clone(),
                    secs: history.attempt_time(a, now).num_seconds(),
                })
                .collect()
        })
        .unwrap_or_default();
    TaskAttempts {
        attempts,
        path: Some(path),
        skipped: problems.len(),
    }
}

/// `<root>/.batty/logs/<phase>/attempts.jsonl` for the board `<root>/.batty/kanban/<phase>`.
fn record_of_board(board_dir: &Path) -> Option<PathBuf> {
    let phase = board_dir.file_name()?.to_str()?;
    let kanban = board_dir.parent()?;
    let batty = kanban.parent()?;
    if kanban.file_name()? != "kanban" || batty.file_name()? != ".batty" {
        return None;
    }
    let root = batty.parent()?;
    Some(crate::paths::Project::new(root).attempts_file(phase))
}

/// The task's JSON (`task`) with an `attempts` array added.
#[derive(Serialize)]
pub struct WithAttempts<'a, T: Serialize> {
    #[serde(flatten)]
    pub task: T,
    pub attempts: &'a [AttemptRow],
}

impl TaskAttempts {
    pub fn json<T: Serialize>(&self, task: T) -> WithAttempts<'_, T> {
        WithAttempts {
            task,
            attempts: &self.attempts,
        }
    }

    /// The text section: nothing when the record has no attempt at the task.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        if self.attempts.is_empty() {
            return Ok(());
        }
        writeln!(out)?;
        writeln!(out, "attempts:")?;
        for row in &self.attempts {
            writeln!(out, "  {}", line(&row.attempt, row.secs))?;
        }
        if self.skipped > 0 {
            let path = self.path.as_deref().unwrap_or(Path::new("the record"));
            writeln!(
                out,
                "  ({} unreadable line(s) of {} skipped; `batty report` lists them)",
                self.skipped,
                path.display()
            )?;
        }
        Ok(())
    }
}

/// `2  brave-otter  2026-05-01 12:00:00Z  4m12s  merged as 1a2b3c4d5e  (+12 -3 in 2 files)`,
/// then the error on the same line.
fn line(a: &Attempt, secs: i64) -> String {
    let when = a.delivered.as_ref().map_or_else(|| "?".to_owned(), stamp);
    let mut out = format!(
        "{}  {}  {when}  {}  {}",
        a.attempt,
        crate::text::one_line(&a.agent),
        duration(secs),
        a.outcome.label()
    );
    if a.outcome == Outcome::Merged
        && let Some(sha) = a.landed()
    {
        out.push_str(&format!(" as {}", short(sha)));
    }
    if !a.files.is_empty() {
        let ins: u64 = a.files.iter().map(|f| f.insertions).sum();
        let del: u64 = a.files.iter().map(|f| f.deletions).sum();
        let n = a.files.len();
        let files = if n == 1 { "file" } else { "files" };
        out.push_str(&format!("  (+{ins} -{del} in {n} {files})"));
    }
    if let Some(error) = a.error.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        let mut text: String = crate::text::one_line(error).chars().take(120).collect();
        if text.chars().count() == 120 {
            text.push('…');
        }
        out.push_str(&format!(": {text}"));
    }
    out
}

/// `2026-05-01 12:00:00Z`.
fn stamp(at: &At) -> String {
    let text = format_at(at);
    // RFC 3339 with milliseconds: drop them and the `T`, for people.
    format!("{} {}Z", &text[..10], &text[11..19])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::entry::{EndOutcome, MergeResult, RunAction};
    use crate::record::history::tests::{delivered, ended, merge, run};

    #[test]
    fn finds_the_record_of_a_project_board() {
        assert_eq!(
            record_of_board(Path::new("/p/.batty/kanban/v1")),
            Some(PathBuf::from("/p/.batty/logs/v1/attempts.jsonl"))
        );
        assert_eq!(record_of_board(Path::new("/elsewhere/board")), None);
    }

    #[test]
    fn lists_each_attempt_on_one_line() {
        let h = History::fold(&[
            run(0, RunAction::Start, 1),
            delivered(0, 2, 1, "otter"),
            ended(30, 2, 1, "otter", EndOutcome::Done, None),
            merge(
                50,
                2,
                1,
                "otter",
                MergeResult::GateRed,
                Some("test a\nFAILED\x1b[0m"),
            ),
            delivered(60, 2, 2, "otter"),
            ended(312, 2, 2, "otter", EndOutcome::Done, None),
            merge(330, 2, 2, "otter", MergeResult::Merged, None),
        ]);
        let attempts = TaskAttempts {
            attempts: h
                .task(2)
                .unwrap()
                .attempts
                .iter()
                .map(|a| AttemptRow {
                    attempt: a.clone(),
                    secs: h.attempt_time(a, h.last_at().unwrap()).num_seconds(),
                })
                .collect(),
            path: None,
            skipped: 0,
        };
        let mut out = Vec::new();
        attempts.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\nattempts:\n\
             \x20 1  otter  2026-05-28 20:26:40Z  30s  gate red  (+10 -2 in 1 file): test a\\nFAILED\\e[0m\n\
             \x20 2  otter  2026-05-28 20:27:40Z  4m12s  merged as landed2  (+10 -2 in 1 file)\n"
        );
        let mut none = Vec::new();
        TaskAttempts::default().write(&mut none).unwrap();
        assert!(none.is_empty());
    }
}
