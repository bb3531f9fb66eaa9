//! `batty agent-status`: an agent (or its hooks) tells the supervisor what it is doing.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::paths::Project;
use crate::watch::report::{self, Report, ReportedState};

/// Report this agent's state to the supervisor: idle, busy or asking.
///
/// Run it inside a batty agent pane, where `BATTY_AGENT`, `BATTY_PHASE` and `BATTY_BOARD` are
/// set, for example from Claude Code hooks (see the README). The supervisor then trusts the
/// report instead of reading the agent's screen.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the agent is doing now.
    #[arg(value_enum)]
    pub state: StateArg,
    /// A short note, e.g. the question being asked.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Read a Claude Code hook's JSON from stdin and use its `message` as the note.
    #[arg(long, conflicts_with = "note")]
    pub hook_json: bool,
    /// Outside a batty agent pane, do nothing and exit 0 (for hooks shared with sessions
    /// batty does not run).
    #[arg(long)]
    pub quiet_outside: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StateArg {
    Idle,
    Busy,
    Asking,
}

impl From<StateArg> for ReportedState {
    fn from(s: StateArg) -> ReportedState {
        match s {
            StateArg::Idle => ReportedState::Idle,
            StateArg::Busy => ReportedState::Busy,
            StateArg::Asking => ReportedState::Asking,
        }
    }
}

pub fn run(args: Args) -> crate::error::Result<()> {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let (Some(agent), Some(phase)) = (env("BATTY_AGENT"), env("BATTY_PHASE")) else {
        if args.quiet_outside {
            return Ok(());
        }
        return Err(crate::error::user_hint(
            "not inside a batty agent pane: `BATTY_AGENT` and `BATTY_PHASE` are not set",
            "run `batty agent-status` in an agent's pane (batty sets them there), or add \
             `--quiet-outside` to hooks that also run elsewhere",
        ));
    };
    crate::paths::validate_agent(&agent)?;
    crate::paths::validate_phase(&phase)?;
    let project = match env("BATTY_BOARD") {
        Some(board) => project_from_board(Path::new(&board), &phase)?,
        None => super::project()?,
    };
    let note = if args.hook_json {
        hook_message()
    } else {
        args.note.filter(|n| !n.trim().is_empty())
    };
    let path = report::report_path(&project, &phase, &agent);
    // Failing to write under `.batty/run` is the environment's doing (permissions, disk).
    report::append(&path, &Report::now(args.state.into(), note))?;
    Ok(())
}

/// The project root from `BATTY_BOARD` = `<root>/.batty/kanban/<phase>`.
fn project_from_board(board: &Path, phase: &str) -> crate::error::Result<Project> {
    let root: Option<PathBuf> = (|| {
        let kanban = board.parent()?;
        let batty = kanban.parent()?;
        let ok = board.is_absolute()
            && board.file_name()? == phase
            && kanban.file_name()? == "kanban"
            && batty.file_name()? == ".batty";
        ok.then(|| batty.parent().map(Path::to_path_buf))?
    })();
    root.map(Project::new).ok_or_else(|| {
        crate::error::user(format!(
            "`BATTY_BOARD` is `{}`, not an absolute `<root>/.batty/kanban/{phase}` path",
            board.display()
        ))
    })
}

/// The `message` of the hook event on stdin (Notification hooks carry one), if any.
fn hook_message() -> Option<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(1024 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let message = value.get("message")?.as_str()?.trim();
    (!message.is_empty()).then(|| message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_from_board_path() {
        let p = project_from_board(Path::new("/home/me/repo/.batty/kanban/v1"), "v1").unwrap();
        assert_eq!(p.root(), Path::new("/home/me/repo"));
        for bad in [
            "repo/.batty/kanban/v1",
            "/home/me/repo/.batty/boards/v1",
            "/home/me/repo/.batty/kanban/v2",
            "/v1",
        ] {
            let err = project_from_board(Path::new(bad), "v1").unwrap_err();
            assert!(err.to_string().contains("BATTY_BOARD"), "{bad}: {err}");
        }
    }
}
