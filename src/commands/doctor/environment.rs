//! `batty doctor`'s checks of what batty needs: tmux, git, the config's agents, the boards.

use std::path::{Path, PathBuf};

use super::verdict;
use super::{Finding, rel};
use crate::config::Config;
use crate::paths::Project;
use crate::proc::Cmd;
use crate::session::RunState;
use crate::session::repo::{self, Checkout};
use crate::tmux::{Tmux, TmuxError};

/// tmux installed, new enough, its socket path usable, the server reachable. Returns the
/// server to look at sessions on, when there is one.
pub(super) fn check_tmux(config: &Config, out: &mut Vec<Finding>) -> Option<Tmux> {
    let tmux = Tmux::from_config(&config.tmux);
    let socket =
        match crate::session::socket::check_length(tmux.server(), config.tmux.socket.as_deref()) {
            Ok(path) => path,
            Err(e) => {
                let hint = crate::error::Diagnose::hint(&e).unwrap_or_default();
                out.push(Finding::problem(e.to_string(), hint));
                return None;
            }
        };
    let version = match tmux.version() {
        Ok(v) => v,
        Err(TmuxError::NotInstalled) => {
            out.push(Finding::problem(
                "tmux is not installed",
                crate::error::install_hint("tmux"),
            ));
            return None;
        }
        Err(e) => {
            out.push(Finding::problem(
                format!("`tmux -V` failed: {e}"),
                crate::error::install_hint("tmux"),
            ));
            return None;
        }
    };
    if matches!(crate::tmux::parse_version(&version), Some((major, _)) if major < 3) {
        out.push(Finding::problem(
            format!("{version} is too old: batty needs tmux 3.0 or newer"),
            crate::error::install_hint("tmux"),
        ));
        return None;
    }
    match tmux.sessions() {
        Ok(sessions) if sessions.is_empty() => out.push(Finding::ok(format!(
            "{version}; no server running on `{}` yet (`batty work` starts it)",
            socket.display()
        ))),
        Ok(sessions) => out.push(Finding::ok(format!(
            "{version}; server on `{}` reachable, {} session(s)",
            socket.display(),
            sessions.len()
        ))),
        Err(e) => {
            out.push(Finding::problem(
                format!(
                    "tmux server on `{}` is not reachable: {e}",
                    socket.display()
                ),
                "check the socket's owner and permissions, or set another `tmux.socket`",
            ));
            return None;
        }
    }
    Some(tmux)
}

/// git installed and new enough; `dir` in a work tree with a commit. True when leftovers can
/// be looked for.
pub(super) fn check_git(dir: &Path, out: &mut Vec<Finding>) -> bool {
    let version = match Cmd::new("git").arg("--version").read() {
        Ok(v) => v,
        Err(e) if e.not_found() => {
            out.push(Finding::problem(
                "git is not installed",
                crate::error::install_hint("git"),
            ));
            return false;
        }
        Err(e) => {
            out.push(Finding::problem(
                format!("`git --version` failed: {e}"),
                crate::error::install_hint("git"),
            ));
            return false;
        }
    };
    match verdict::git_version(&version) {
        Some(v) if v < verdict::GIT_FLOOR => out.push(Finding::problem(
            format!("{version} is too old: batty needs git 2.30 or newer"),
            crate::error::install_hint("git"),
        )),
        _ => {}
    }
    match repo::probe(dir) {
        Ok(Checkout::WorkTree {
            top,
            has_commit: true,
        }) => {
            out.push(Finding::ok(format!(
                "{version}; work tree `{}` has commits",
                top.display()
            )));
            true
        }
        Ok(Checkout::WorkTree { top, .. }) => {
            out.push(Finding::problem(
                format!(
                    "{version}; the repository in `{}` has no commit yet",
                    top.display()
                ),
                "commit first (`git add -A && git commit -m 'initial commit'`)",
            ));
            false
        }
        Ok(Checkout::GitDir) => {
            out.push(Finding::problem(
                format!(
                    "`{}` is a bare repository or a git folder, not a work tree",
                    dir.display()
                ),
                "run batty in a checkout with a work tree",
            ));
            false
        }
        Ok(Checkout::None) => {
            out.push(Finding::problem(
                format!("`{}` is not in a git repository", dir.display()),
                "make it one (`git init`, then commit), or run batty in a repository",
            ));
            false
        }
        Err(e) => {
            out.push(Finding::problem(
                format!("git failed: {e}"),
                "see git's message",
            ));
            false
        }
    }
}

/// Every agent kind in use (configured, the default, or recorded by a run) resolves, and the
/// program its command starts is on PATH.
pub(super) fn check_agents(project: &Project, config: &Config, out: &mut Vec<Finding>) {
    let mut kinds: Vec<String> = config.agents.keys().cloned().collect();
    kinds.extend(config.default_agent.clone());
    for phase in project.phases_that_ran() {
        if let Ok(Some(state)) = RunState::load(&project.run_state(&phase)) {
            kinds.extend(state.agents.iter().map(|a| a.kind.clone()));
        }
    }
    kinds.sort();
    kinds.dedup();
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("batty"));
    for kind in kinds {
        let adapter = match crate::agent::resolve(&kind, config, &exe) {
            Ok(a) => a,
            Err(e) => {
                out.push(Finding::problem(
                    e.to_string(),
                    "fix `agents:` in .batty/config.yml",
                ));
                continue;
            }
        };
        match verdict::program(&adapter.command) {
            Some(program) if !on_path(&program) => out.push(Finding::problem(
                format!("agent `{kind}`: `{program}` is not installed (not on PATH)"),
                format!("install it, or set `agents.{kind}.command` in .batty/config.yml"),
            )),
            Some(program) => out.push(Finding::ok(format!("agent `{kind}` runs `{program}`"))),
            None => out.push(Finding::note(format!(
                "agent `{kind}`: its command `{}` is not a plain program; not checked",
                crate::text::one_line(&adapter.command)
            ))),
        }
    }
}

/// A program name (looked up on PATH) or path that can be executed.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(program))))
}

/// Each board loads; every problem it reports, by path.
pub(super) fn check_boards(project: &Project, out: &mut Vec<Finding>) {
    for phase in project.phases() {
        let dir = project.board_dir(&phase);
        if !dir.is_dir() {
            continue;
        }
        match crate::board::Board::load(&dir) {
            Err(e) => out.push(Finding::problem(
                crate::error::Error::from(e).message().to_owned(),
                "fix the board's config.yml",
            )),
            Ok(board) => {
                for p in board.problems() {
                    let path = rel(project, &p.path);
                    let at = p.line.map(|l| format!(":{l}")).unwrap_or_default();
                    out.push(Finding::problem(
                        format!("{path}{at}: {}", crate::text::one_line(&p.reason)),
                        "fix the file; batty skips that task until then",
                    ));
                }
                if board.problems().is_empty() {
                    out.push(Finding::ok(format!(
                        "board `{phase}`: {} task(s)",
                        board.tasks().len()
                    )));
                }
            }
        }
    }
}
