//! The pure decisions of `batty doctor`: which leftovers are safe to fix on their own, and
//! the small parsers its checks need. Nothing here touches a file, git or tmux.

use std::path::Path;

/// How much a finding asks of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Worth knowing; nothing to do.
    Note,
    /// Safe for `--fix` to repair.
    Fixable,
    /// Needs a person.
    Problem,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Fixable => "fixable",
            Level::Problem => "problem",
        }
    }
}

/// `(major, minor, patch)` from `git --version` (`git version 2.47.0`, `2.39.5 (Apple...)`).
pub fn git_version(text: &str) -> Option<(u32, u32, u32)> {
    let v = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = v.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    });
    Some((
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    ))
}

/// The oldest git batty supports (Debian 12 ships 2.39, Ubuntu 22.04 2.34).
pub const GIT_FLOOR: (u32, u32, u32) = (2, 30, 0);

/// The program a shell command line starts: its first word after `exec`, `env` and
/// `NAME=value` assignments, unquoted. `None` when the line starts with something only a
/// shell knows (a subshell, a `{`).
pub fn program(command: &str) -> Option<String> {
    let mut words = command.split_whitespace().peekable();
    while let Some(w) = words.peek() {
        let assignment = w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if *w == "exec" || *w == "env" || assignment {
            words.next();
        } else {
            break;
        }
    }
    let word = words.next()?.trim_matches(|c| c == '\'' || c == '"');
    if word.is_empty() || word.starts_with(['(', '{', '$', '`']) {
        return None;
    }
    Some(word.to_owned())
}

/// What to do with a branch `batty/<phase>/<agent>` that no worktree has checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchVerdict {
    /// Checked out somewhere, or the run still counts on it: leave it.
    Keep,
    /// Nothing on it that the base lacks: safe to delete.
    Delete,
    /// It holds commits the base does not have: a person decides.
    Unmerged(usize),
}

pub fn branch_verdict(checked_out: bool, unmerged_commits: usize) -> BranchVerdict {
    match (checked_out, unmerged_commits) {
        (true, _) => BranchVerdict::Keep,
        (false, 0) => BranchVerdict::Delete,
        (false, n) => BranchVerdict::Unmerged(n),
    }
}

/// What to do with a `batty-*` session on the configured server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionVerdict {
    /// This project's session of a phase it has, or another live project's: not ours to judge.
    Fine,
    /// Nothing runs there any more, or its project is gone: kill it.
    Kill(&'static str),
    /// Ours with no phase behind it, but panes still run: a person decides.
    Ask(&'static str),
}

/// `root`: the session's project tag (empty when untagged); `ours`: that tag is this
/// project; `phase_known`: this project has a board or run state for its phase.
pub fn session_verdict(
    root: &str,
    root_exists: bool,
    ours: bool,
    phase_known: bool,
    live_panes: usize,
) -> SessionVerdict {
    if root.is_empty() {
        return SessionVerdict::Fine;
    }
    if !root_exists {
        return SessionVerdict::Kill("its project folder is gone");
    }
    if !ours || phase_known {
        return SessionVerdict::Fine;
    }
    if live_panes == 0 {
        SessionVerdict::Kill("this project has no such phase and nothing runs in it")
    } else {
        SessionVerdict::Ask("this project has no such phase, but its panes still run")
    }
}

/// A temp file one of batty's atomic writes left behind (`.<name>.<pid>.tmp`), with the pid
/// that wrote it.
pub fn temp_file_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, pid) = rest.rsplit_once('.')?;
    pid.parse().ok()
}

/// A rotated log (`<file>.old`) older than this is worth removing.
pub const OLD_LOG_DAYS: u64 = 7;

pub fn is_rotated_log(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "old")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_programs() {
        assert_eq!(git_version("git version 2.47.0"), Some((2, 47, 0)));
        assert_eq!(
            git_version("git version 2.39.5 (Apple Git-154)"),
            Some((2, 39, 5))
        );
        assert!(git_version("git version 2.29.1").unwrap() < GIT_FLOOR);
        assert_eq!(program("claude --x"), Some("claude".into()));
        assert_eq!(
            program("exec env A=1 B_2=x '/opt/my bot'"),
            Some("/opt/my".into())
        );
        assert_eq!(program("FOO=1 mybot"), Some("mybot".into()));
        assert_eq!(program("(cd x && y)"), None);
        assert_eq!(program(""), None);
    }

    #[test]
    fn only_merged_lone_branches_go() {
        assert_eq!(branch_verdict(true, 3), BranchVerdict::Keep);
        assert_eq!(branch_verdict(false, 0), BranchVerdict::Delete);
        assert_eq!(branch_verdict(false, 2), BranchVerdict::Unmerged(2));
    }

    #[test]
    fn orphan_sessions() {
        use SessionVerdict::*;
        assert_eq!(session_verdict("", false, false, false, 0), Fine);
        assert!(matches!(
            session_verdict("/gone", false, false, false, 3),
            Kill(_)
        ));
        assert_eq!(session_verdict("/other", true, false, false, 3), Fine);
        assert_eq!(session_verdict("/r", true, true, true, 3), Fine);
        assert!(matches!(
            session_verdict("/r", true, true, false, 0),
            Kill(_)
        ));
        assert!(matches!(
            session_verdict("/r", true, true, false, 1),
            Ask(_)
        ));
    }

    #[test]
    fn temp_files_and_rotated_logs() {
        assert_eq!(temp_file_pid(".state.json.4242.tmp"), Some(4242));
        assert_eq!(temp_file_pid("state.json"), None);
        assert_eq!(temp_file_pid(".x.tmp"), None);
        assert!(is_rotated_log(Path::new("a.pty.log.old")));
        assert!(!is_rotated_log(Path::new("a.pty.log")));
    }
}
