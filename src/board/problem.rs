//! What is wrong with a board, one entry per finding: files that cannot be read, duplicate ids,
//! unknown statuses, dependencies on tasks that do not exist, dependency cycles.

use std::fmt;
use std::path::PathBuf;

/// The kinds of [`Problem`], for callers that treat them differently (`batty doctor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// The file is not a readable task: bad YAML, not UTF-8, too large, missing fields.
    Unreadable,
    /// A FIFO, socket, device or directory named `*.md`: skipped without being opened.
    NotAFile,
    /// A second file with an id another file (earlier by name) already has; skipped.
    DuplicateId,
    /// A status the board's config does not list.
    UnknownStatus,
    /// `depends_on` names a task that is not on the board; the task is not dispatched.
    MissingDependency,
    /// Tasks that depend on each other in a circle; none of them can become ready.
    DependencyCycle,
}

impl ProblemKind {
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::NotAFile => "not-a-file",
            ProblemKind::DuplicateId => "duplicate-id",
            ProblemKind::UnknownStatus => "unknown-status",
            ProblemKind::MissingDependency => "missing-dependency",
            ProblemKind::DependencyCycle => "dependency-cycle",
        }
    }
}

/// One thing wrong with a board, at a file (and line, when there is one).
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub path: PathBuf,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    pub reason: String,
}

impl Problem {
    pub(crate) fn new(
        kind: ProblemKind,
        path: impl Into<PathBuf>,
        line: Option<usize>,
        reason: impl Into<String>,
    ) -> Problem {
        Problem {
            kind,
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }
}

/// `path:line: reason`, with control characters escaped (file names and reasons come from
/// the board and may hold terminal escapes).
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display().to_string();
        let path = crate::text::one_line(&path);
        let reason = crate::text::one_line(&self.reason);
        match self.line {
            Some(line) => write!(f, "{path}:{line}: {reason}"),
            None => write!(f, "{path}: {reason}"),
        }
    }
}

/// `#1 -> #2 -> #1` for the cycle `[1, 2]`.
pub fn cycle_text(cycle: &[u64]) -> String {
    cycle
        .iter()
        .chain(cycle.first())
        .map(|id| format!("#{id}"))
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_escapes_what_came_from_the_board() {
        let p = Problem::new(
            ProblemKind::UnknownStatus,
            "tasks/\x1b]2;x\x07.md",
            Some(4),
            "status `\x1b[31mred` is unknown",
        );
        assert_eq!(
            p.to_string(),
            "tasks/\\e]2;x\\a.md:4: status `\\e[31mred` is unknown"
        );
        assert_eq!(cycle_text(&[1, 2]), "#1 -> #2 -> #1");
        assert_eq!(cycle_text(&[4]), "#4 -> #4");
    }
}
