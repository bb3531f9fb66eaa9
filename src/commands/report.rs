//! `batty report`: what became of every task of a phase, from the attempt record, the board
//! and the target branch.

use std::io::Write;
use std::path::Path;

use crate::board::{self, Board};
use crate::config::Config;
use crate::error::{user, user_hint};
use crate::paths::{Project, validate_phase};
use crate::record::{self, History, report};

/// Report every task of a phase: status (✓ done, ✗ needs a person, … on its way), attempts,
/// agents, time, merged commit and last failure; then totals checked against the target
/// branch, wall time and busy time per agent. Built from `.batty/logs/<phase>/attempts.jsonl`
/// and the board.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The phase [default: the only board there is].
    pub phase: Option<String>,
    /// Print JSON: every task with all its attempts, and the totals.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print markdown to paste into an issue or a pull request.
    #[arg(long)]
    pub markdown: bool,
}

pub fn run(args: Args) -> crate::error::Result<()> {
    let project = super::project()?;
    let phase = match args.phase {
        Some(phase) => {
            validate_phase(&phase)?;
            phase
        }
        None => only_board(&project)?,
    };
    let board = Board::load(&project.board_dir(&phase))?;
    let config = Config::load(&project.config_file())?;
    let (entries, problems) = record::read(&project.attempts_file(&phase));
    let history = History::fold(&entries);
    let target = target(&project, &phase, &config)?;
    let on_target = report::on_target(project.root(), &target, &history.landed_commits())?;
    // Open spans are timed to now only while their supervisor is still there.
    let now = match history.live_pid() {
        Some(pid) if process_alive(pid) => chrono::Utc::now(),
        _ => history.last_at().unwrap_or_else(chrono::Utc::now),
    };
    let mut report = report::build(&report::Inputs {
        phase: &phase,
        target: &target,
        entries: &entries,
        board: &board,
        on_target: &on_target.landed,
        merging: config.merge.enabled,
        now,
    });
    report.problems = problems
        .iter()
        .map(ToString::to_string)
        .chain(board.problems().iter().map(ToString::to_string))
        .collect();
    let mut err = std::io::stderr().lock();
    if !on_target.target_exists {
        let _ = writeln!(
            err,
            "warning: the target branch `{}` does not exist; no task counts as merged",
            crate::text::one_line(&target)
        );
    }
    for problem in &report.problems {
        let _ = writeln!(err, "warning: {}", crate::text::one_line(problem));
    }
    drop(err);
    let text = if args.json {
        let mut text = serde_json::to_string_pretty(&report)?;
        text.push('\n');
        text
    } else if args.markdown {
        record::render::markdown(&report)
    } else {
        record::render::text(&report)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The phase of the only board of the project.
fn only_board(project: &Project) -> crate::error::Result<String> {
    let boards = board::discover::boards(&project.boards_dir());
    match boards.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(user_hint(
            format!("no board in {}", project.boards_dir().display()),
            "run `batty init --phase NAME` to make one",
        )),
        many => Err(user_hint(
            format!("several boards: {}", many.join(", ")),
            "name the phase: `batty report PHASE`",
        )),
    }
}

/// The branch work lands on: `merge.target`, else the base branch of the phase's run, else
/// `base_branch`, else the branch checked out in the project.
fn target(project: &Project, phase: &str, config: &Config) -> crate::error::Result<String> {
    let run_base = || {
        crate::session::RunState::load(&project.run_state(phase))
            .ok()
            .flatten()
            .map(|run| run.base)
    };
    let named = config
        .merge
        .target
        .clone()
        .or_else(run_base)
        .or_else(|| config.base_branch.clone());
    match named {
        Some(target) => Ok(target),
        None => current_branch(project.root())?.ok_or_else(|| {
            user(format!(
                "cannot tell the target branch of `{phase}`: set `merge.target` in {}",
                project.config_file().display()
            ))
        }),
    }
}

fn current_branch(root: &Path) -> crate::error::Result<Option<String>> {
    Ok(crate::git::Git::new(root).current_branch()?)
}

/// Whether process `pid` exists (the supervisor that wrote the record's last `run start`).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
