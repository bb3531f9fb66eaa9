//! Where things live in a project: the `.batty/` folder, boards, worktrees, logs and run state,
//! and the rules for phase and agent names that become folder, branch and tmux names.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("invalid phase name `{name}`: {reason}")]
    Phase { name: String, reason: &'static str },
    #[error("invalid agent name `{name}`: {reason}")]
    Agent { name: String, reason: &'static str },
}

impl crate::error::Diagnose for NameError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::User
    }
}

/// Checks a phase name: it becomes a folder, a branch component and a tmux session name.
pub fn validate_phase(name: &str) -> Result<(), NameError> {
    let fail = |reason| {
        Err(NameError::Phase {
            name: name.escape_debug().to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > 64 {
        return fail("it is longer than 64 bytes");
    }
    if name == "." || name == ".." || name.contains("..") {
        return fail("`..` is not allowed");
    }
    if name.starts_with('-') || name.starts_with('.') {
        return fail("it must not start with `-` or `.`");
    }
    if name.ends_with(".lock") || name.ends_with('.') {
        return fail("it must not end with `.` or `.lock`");
    }
    for c in name.chars() {
        if !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            return fail(match c {
                '/' | '\\' => "`/` is not allowed",
                ' ' => "spaces are not allowed",
                c if c.is_control() => "control characters are not allowed",
                _ => "use only letters, digits, `-`, `_` and `.`",
            });
        }
    }
    Ok(())
}

/// Checks an agent name: lowercase words joined by `-`, as kanban-md's `agent-name` makes them.
pub fn validate_agent(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError::Agent {
            name: name.escape_debug().to_string(),
            reason: "use lowercase letters and digits in words joined by `-`",
        })
    }
}

/// The project: the main checkout that holds `.batty/`.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
}

impl Project {
    pub fn new(root: impl Into<PathBuf>) -> Project {
        Project { root: root.into() }
    }

    /// Finds the project from `start`: the nearest folder upwards with a `.batty/` folder, else
    /// the top of the git checkout. Inside a batty worktree it resolves to the main checkout, so
    /// agents' commands act on the real board.
    pub fn discover(start: &Path) -> Option<Project> {
        let start = start.canonicalize().ok()?;
        for dir in start.ancestors() {
            if dir.join(".batty").is_dir() {
                // `.batty/worktrees/<phase>/<agent>` has no `.batty` of its own (it is
                // gitignored), so the first `.batty` found upwards is the main one.
                return Some(Project::new(dir));
            }
        }
        None
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn batty_dir(&self) -> PathBuf {
        self.root.join(".batty")
    }
    pub fn config_file(&self) -> PathBuf {
        self.batty_dir().join("config.yml")
    }
    pub fn boards_dir(&self) -> PathBuf {
        self.batty_dir().join("kanban")
    }
    pub fn board_dir(&self, phase: &str) -> PathBuf {
        self.boards_dir().join(phase)
    }
    pub fn worktrees_dir(&self, phase: &str) -> PathBuf {
        self.batty_dir().join("worktrees").join(phase)
    }
    pub fn worktree_dir(&self, phase: &str, agent: &str) -> PathBuf {
        self.worktrees_dir(phase).join(agent)
    }
    pub fn merge_worktree_dir(&self, phase: &str) -> PathBuf {
        self.worktrees_dir(phase).join(".merge")
    }
    pub fn logs_dir(&self, phase: &str) -> PathBuf {
        self.batty_dir().join("logs").join(phase)
    }
    pub fn pty_log(&self, phase: &str, agent: &str) -> PathBuf {
        self.logs_dir(phase).join(format!("{agent}.pty.log"))
    }
    pub fn event_log(&self, phase: &str, agent: &str) -> PathBuf {
        self.logs_dir(phase).join(format!("{agent}.events.log"))
    }
    /// What the supervisor said that is about no one agent: configuration reloads and
    /// errors, board problems, merge queue faults (no agent's log has this suffix).
    pub fn supervisor_log(&self, phase: &str) -> PathBuf {
        self.logs_dir(phase).join("supervisor.log")
    }
    /// The phase's append-only record of every attempt (`docs/record.md`).
    pub fn attempts_file(&self, phase: &str) -> PathBuf {
        self.logs_dir(phase).join("attempts.jsonl")
    }

    // The layout of `.batty/run/`: one folder per phase that has run, holding everything a
    // run keeps between commands. Every path under it is built here and nowhere else.

    /// `.batty/run/`.
    pub fn run_dir(&self) -> PathBuf {
        self.batty_dir().join("run")
    }
    /// `.batty/run/<phase>/`.
    pub fn phase_run_dir(&self, phase: &str) -> PathBuf {
        self.run_dir().join(phase)
    }
    /// The run state written by `batty work`: agents, worktrees, branches.
    pub fn run_state(&self, phase: &str) -> PathBuf {
        self.phase_run_dir(phase).join("state.json")
    }
    /// The supervisor's lock: one supervisor per board.
    pub fn run_lock(&self, phase: &str) -> PathBuf {
        self.phase_run_dir(phase).join("supervisor.lock")
    }
    /// Held by `batty work` while it builds or repairs the session: two at once take turns.
    pub fn work_lock(&self, phase: &str) -> PathBuf {
        self.phase_run_dir(phase).join("work.lock")
    }
    /// The supervisor's live snapshot, read by `batty status` and the status line.
    pub fn status_file(&self, phase: &str) -> PathBuf {
        self.phase_run_dir(phase).join("status.json")
    }
    /// The merge queue.
    pub fn merge_queue_file(&self, phase: &str) -> PathBuf {
        self.phase_run_dir(phase).join("merge.json")
    }
    /// The merge worker's record of the attempt in flight.
    pub fn merge_journal(&self, phase: &str) -> PathBuf {
        self.phase_run_dir(phase).join("merge-inflight.json")
    }
    /// Touched by tmux's `pane-died` hook.
    pub fn died_marker(&self, phase: &str) -> PathBuf {
        self.phase_run_dir(phase).join("died")
    }
    /// `.batty/run/<phase>/agents/`: the agents' own state reports.
    pub fn reports_dir(&self, phase: &str) -> PathBuf {
        self.phase_run_dir(phase).join("agents")
    }
    /// Where `batty agent-status` appends an agent's reports.
    pub fn report_file(&self, phase: &str, agent: &str) -> PathBuf {
        self.reports_dir(phase).join(format!("{agent}.status"))
    }

    /// Phases that have run here (a run state exists), sorted.
    pub fn phases_that_ran(&self) -> Vec<String> {
        let mut phases = names_in(&self.run_dir());
        phases.retain(|p| self.run_state(p).is_file());
        phases
    }

    /// Every phase of the project: a board under `.batty/kanban/` or a folder under
    /// `.batty/run/`, sorted. Files in those folders (such as an old layout's
    /// `.batty/run/v1.merge.json`) are not phases.
    pub fn phases(&self) -> Vec<String> {
        let mut phases = names_in(&self.boards_dir());
        phases.extend(names_in(&self.run_dir()));
        phases.sort();
        phases.dedup();
        phases
    }
}

/// Valid phase names of the folders in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|p| validate_phase(p).is_ok())
        .collect();
    names.sort();
    names
}

/// The branch an agent works on.
pub fn agent_branch(phase: &str, agent: &str) -> String {
    format!("batty/{phase}/{agent}")
}

/// The tmux session of a phase.
pub fn session_name(phase: &str) -> String {
    // tmux treats `.` and `:` in target names specially; ids are used for targeting, but the
    // name is still what people type in `tmux attach -t`.
    format!("batty-{}", phase.replace(['.', ':'], "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names() {
        for ok in ["v1", "phase-2", "a_b", "x.y"] {
            validate_phase(ok).unwrap();
        }
        for bad in [
            "",
            "a/b",
            "..",
            "a..b",
            "a b",
            "a\tb",
            "-x",
            ".x",
            "x.lock",
            "é",
            "a\u{1b}[1m",
        ] {
            assert!(validate_phase(bad).is_err(), "{bad:?} accepted");
        }
        let msg = validate_phase("a/b").unwrap_err().to_string();
        assert_eq!(msg, "invalid phase name `a/b`: `/` is not allowed");
    }

    #[test]
    fn agent_names() {
        validate_agent("brave-otter").unwrap();
        validate_agent("otter2").unwrap();
        for bad in ["", "Brave", "a--b", "-a", "a b", "a/b"] {
            assert!(validate_agent(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn phases_are_folders_not_files() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::new(dir.path());
        std::fs::create_dir_all(project.board_dir("v2")).unwrap();
        std::fs::create_dir_all(project.phase_run_dir("v1")).unwrap();
        std::fs::write(project.run_dir().join("v1.merge.json"), "{}").unwrap();
        std::fs::write(project.run_state("v1"), "{}").unwrap();
        std::fs::create_dir_all(project.run_dir().join("bad name")).unwrap();
        assert_eq!(project.phases(), ["v1", "v2"]);
        assert_eq!(project.phases_that_ran(), ["v1"]);
    }

    #[test]
    fn session_names_avoid_tmux_separators() {
        assert_eq!(session_name("v1.2"), "batty-v1_2");
    }
}
