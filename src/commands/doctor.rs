//! `batty doctor`: checks what batty needs (tmux, git, the config and its agents, the boards)
//! and finds what runs left behind (worktrees git does not know, lone `batty/*` branches,
//! stale run state, orphan sessions, a session whose supervisor is gone, old rotated logs).
//! One line per finding with what to do; `--fix` repairs only what loses no work.

mod environment;
mod leftovers;
mod verdict;

use std::path::{Path, PathBuf};

use verdict::Level;

use super::ui::{self, Style};
use crate::config::Config;
use crate::error::{Context as _, Result, user};
use crate::paths::Project;
use crate::proc::Cmd;
use crate::tmux::Tmux;
use crate::worktree::Repo;

/// Check tmux, git, the config, the boards and the leftovers of past runs; print one line
/// per finding with what to do. Exits 1 when something needs a person.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Repair what is safe: prune worktrees whose folders are gone, delete merged branches
    /// without a worktree, remove stale run state and old rotated logs, kill sessions with
    /// nothing running in them, restart a session's supervisor. Never removes uncommitted or
    /// unmerged work.
    #[arg(long)]
    pub fix: bool,
}

/// A safe repair.
#[derive(Debug, Clone)]
pub(super) enum Fix {
    PruneWorktrees,
    DeleteBranch(String),
    RemoveFile(PathBuf),
    RemoveRunDir(PathBuf),
    KillSession { id: String, name: String },
    RestartSupervisor(String),
}

#[derive(Debug, Clone)]
pub(super) struct Finding {
    level: Level,
    text: String,
    todo: Option<String>,
    fix: Option<Fix>,
}

impl Finding {
    pub(super) fn ok(text: impl Into<String>) -> Finding {
        Finding {
            level: Level::Ok,
            text: text.into(),
            todo: None,
            fix: None,
        }
    }
    pub(super) fn note(text: impl Into<String>) -> Finding {
        Finding {
            level: Level::Note,
            ..Finding::ok(text)
        }
    }
    pub(super) fn problem(text: impl Into<String>, todo: impl Into<String>) -> Finding {
        Finding {
            level: Level::Problem,
            todo: Some(todo.into()),
            ..Finding::ok(text)
        }
    }
    pub(super) fn fixable(text: impl Into<String>, fix: Fix) -> Finding {
        Finding {
            level: Level::Fixable,
            todo: Some("`batty doctor --fix` repairs it".to_owned()),
            fix: Some(fix),
            ..Finding::ok(text)
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let cwd = std::env::current_dir()
        .map_err(|e| user(format!("cannot read the current folder: {e}")))?;
    let project = Project::discover(&cwd);
    let mut findings = Vec::new();
    let config = match &project {
        Some(p) => match Config::load(&p.config_file()) {
            Ok(c) => {
                findings.push(Finding::ok(format!(
                    "config `{}` is valid",
                    rel(p, &p.config_file())
                )));
                c
            }
            Err(e) => {
                findings.push(Finding::problem(
                    crate::error::Error::from(e).message().to_owned(),
                    "fix the file (every key: docs/config.md); defaults are used below",
                ));
                Config::default()
            }
        },
        None => Config::default(),
    };
    let tmux = environment::check_tmux(&config, &mut findings);
    let git_ok = environment::check_git(project.as_ref().map_or(&cwd, |p| p.root()), &mut findings);
    match &project {
        None => findings.push(Finding::problem(
            format!("no `.batty/` folder in {} or above", cwd.display()),
            "run `batty init` at the top of your repository",
        )),
        Some(project) => {
            environment::check_agents(project, &config, &mut findings);
            environment::check_boards(project, &mut findings);
            if git_ok {
                leftovers::check_leftovers(project, &config, &mut findings);
            }
            leftovers::check_run_state(project, tmux.as_ref(), &mut findings);
            if let Some(tmux) = &tmux {
                leftovers::check_sessions(project, tmux, &mut findings);
            }
            leftovers::check_logs(project, &mut findings);
        }
    }
    let style = Style::stdout();
    let mut open = 0;
    for f in &findings {
        if args.fix
            && let Some(fix) = &f.fix
        {
            match apply(fix, project.as_ref(), tmux.as_ref()) {
                Ok(done) => {
                    println!("{:<8} {done}", style.good("fixed"));
                    continue;
                }
                Err(e) => {
                    open += 1;
                    println!("{:<8} {}: {}", style.error("failed"), f.text, e.message());
                    continue;
                }
            }
        }
        if f.level >= Level::Fixable {
            open += 1;
        }
        if ui::quiet() && f.level < Level::Fixable {
            continue;
        }
        let label = format!("{:<8}", f.level.label());
        let label = match f.level {
            Level::Ok => style.good(&label),
            Level::Note => style.dim(&label),
            Level::Fixable => style.warn(&label),
            Level::Problem => style.error(&label),
        };
        match &f.todo {
            Some(todo) => println!("{label} {}; {todo}", f.text),
            None => println!("{label} {}", f.text),
        }
    }
    if open > 0 {
        let error = user(format!("{open} finding(s) need attention"));
        let fixable = findings.iter().any(|f| f.fix.is_some());
        return Err(if fixable && !args.fix {
            error.hint("`batty doctor --fix` repairs the safe ones")
        } else {
            error
        });
    }
    Ok(())
}

pub(super) fn rel(project: &Project, path: &Path) -> String {
    super::work::relative(project, path)
}

/// Carries out one repair; says what it did.
fn apply(fix: &Fix, project: Option<&Project>, tmux: Option<&Tmux>) -> Result<String> {
    let project = project.ok_or_else(|| user("no project"))?;
    let shown = |p: &Path| rel(project, p);
    match fix {
        Fix::PruneWorktrees => {
            Repo::new(project.root()).prune()?;
            Ok("pruned worktrees whose folders are gone (`git worktree prune`)".to_owned())
        }
        Fix::DeleteBranch(branch) => {
            Cmd::new("git")
                .arg("-C")
                .arg(project.root())
                .args(["branch", "-D", "--", branch])
                .run()?;
            Ok(format!(
                "deleted branch `{branch}` (nothing on it was unmerged)"
            ))
        }
        Fix::RemoveFile(path) => {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove `{}`", shown(path)))?;
            Ok(format!("removed `{}`", shown(path)))
        }
        Fix::RemoveRunDir(path) => {
            std::fs::remove_dir_all(path)
                .with_context(|| format!("cannot remove `{}`", shown(path)))?;
            Ok(format!("removed `{}`", shown(path)))
        }
        Fix::KillSession { id, name } => {
            let tmux = tmux.ok_or_else(|| user("tmux is not reachable"))?;
            tmux.kill_session(id)?;
            Ok(format!("killed orphan session `{name}`"))
        }
        Fix::RestartSupervisor(phase) => {
            let exe = std::env::current_exe().context("cannot find the batty executable")?;
            Cmd::new(exe)
                .args(["-q", "work", phase])
                .current_dir(project.root())
                .run()?;
            Ok(format!(
                "restarted the supervisor of `{phase}` (`batty work {phase}`)"
            ))
        }
    }
}

pub(super) fn dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub(super) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub(super) fn same(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}
