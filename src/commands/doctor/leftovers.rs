//! `batty doctor`'s search for what past runs left behind: worktrees and branches, run
//! state, sessions, rotated logs.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::verdict::{self, BranchVerdict, SessionVerdict};
use super::{Finding, Fix, dirs, files, rel, same};
use crate::config::Config;
use crate::paths::{Project, agent_branch, session_name};
use crate::proc::shell_word;
use crate::session::{RunState, lock};
use crate::tmux::Tmux;
use crate::worktree::{Repo, WorktreeEntry};

/// Worktrees git lists whose folders are gone, folders git does not know, and `batty/*`
/// branches no worktree has checked out.
pub(super) fn check_leftovers(project: &Project, config: &Config, out: &mut Vec<Finding>) {
    let repo = Repo::new(project.root());
    let entries: Vec<WorktreeEntry> = match repo.worktrees() {
        Ok(e) => e,
        Err(e) => {
            out.push(Finding::problem(
                format!("`git worktree list` failed: {e}"),
                "see git's message",
            ));
            return;
        }
    };
    for e in entries.iter().filter(|e| e.prunable) {
        out.push(Finding::fixable(
            format!(
                "git still lists worktree `{}`, whose folder is gone",
                e.path.display()
            ),
            Fix::PruneWorktrees,
        ));
    }
    let known = |path: &Path| entries.iter().any(|e| same(&e.path, path));
    let base_dir = project.batty_dir().join("worktrees");
    for phase_dir in dirs(&base_dir) {
        for folder in dirs(&phase_dir) {
            if !known(&folder) {
                out.push(Finding::problem(
                    format!(
                        "`{}` is not a git worktree (git does not know it)",
                        rel(project, &folder)
                    ),
                    "move out anything you need, then remove it; batty never deletes it",
                ));
            }
        }
    }
    let current = repo.current_branch().ok();
    for phase in project.phases() {
        let Ok(names) = repo.branches_under(&format!("batty/{phase}/")) else {
            continue;
        };
        let state = RunState::load(&project.run_state(&phase)).ok().flatten();
        let base = state
            .as_ref()
            .map(|s| s.base.clone())
            .or_else(|| config.base_branch.clone())
            .or_else(|| current.clone());
        let Some(base) = base else { continue };
        for name in names {
            let branch = agent_branch(&phase, &name);
            let checked_out = entries.iter().any(|e| e.branch.as_deref() == Some(&branch));
            let unmerged = if checked_out {
                0
            } else {
                match repo.risk(&project.worktree_dir(&phase, &name), &branch, &base) {
                    Ok(risk) => risk.commits.len(),
                    Err(_) => continue,
                }
            };
            match verdict::branch_verdict(checked_out, unmerged) {
                BranchVerdict::Keep => {}
                BranchVerdict::Delete => out.push(Finding::fixable(
                    format!("branch `{branch}` has no worktree and nothing that `{base}` lacks"),
                    Fix::DeleteBranch(branch),
                )),
                BranchVerdict::Unmerged(n) => out.push(Finding::problem(
                    format!("branch `{branch}` has no worktree but {n} commit(s) not on `{base}`"),
                    format!(
                        "merge that work, or delete it with `git branch -D {}`",
                        shell_word(&branch)
                    ),
                )),
            }
        }
    }
}

/// Run folders of phases that are gone, supervisor snapshots no supervisor keeps, temp files
/// of writers that died, and files of an older layout.
pub(super) fn check_run_state(project: &Project, tmux: Option<&Tmux>, out: &mut Vec<Finding>) {
    let run = project.run_dir();
    let Ok(entries) = std::fs::read_dir(&run) else {
        return;
    };
    let sessions: Vec<String> = tmux
        .and_then(|t| t.sessions().ok())
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.name)
        .collect();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(Finding::problem(
                format!("`{}` is left from an older batty's layout", rel(project, &path)),
                "remove it once nothing you need is in it (the run state now lives in `.batty/run/<phase>/`)",
            ));
            continue;
        }
        if crate::paths::validate_phase(&name).is_err() {
            continue;
        }
        let phase = name;
        let has_board = project.board_dir(&phase).is_dir();
        let has_worktrees = !dirs(&project.worktrees_dir(&phase)).is_empty();
        let has_session = sessions.contains(&session_name(&phase));
        if !has_board && !has_worktrees && !has_session {
            out.push(Finding::fixable(
                format!("`{}` is the run state of phase `{phase}`, which has no board, worktree or session", rel(project, &path)),
                Fix::RemoveRunDir(path),
            ));
            continue;
        }
        let supervised = lock::holder(&project.run_lock(&phase)).is_some();
        let snapshot = project.status_file(&phase);
        if !supervised && snapshot.is_file() {
            out.push(Finding::fixable(
                format!(
                    "`{}` is a snapshot of a supervisor that is no longer running",
                    rel(project, &snapshot)
                ),
                Fix::RemoveFile(snapshot),
            ));
        }
        for file in files(&path) {
            let fname = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(pid) = verdict::temp_file_pid(&fname)
                && !crate::tmux::process_running(pid)
            {
                out.push(Finding::fixable(
                    format!(
                        "`{}` is a half-done write of a process that is gone",
                        rel(project, &file)
                    ),
                    Fix::RemoveFile(file),
                ));
            }
        }
    }
}

/// `batty-*` sessions on the configured server: orphans, and this project's sessions whose
/// supervisor is not running.
pub(super) fn check_sessions(project: &Project, tmux: &Tmux, out: &mut Vec<Finding>) {
    let Ok(sessions) = tmux.sessions() else {
        return;
    };
    let phases = project.phases();
    let socket = crate::session::socket::current_socket_path(tmux.server());
    for s in sessions.iter().filter(|s| s.name.starts_with("batty-")) {
        let root = tmux
            .display(&s.id, &format!("#{{{}}}", crate::session::tag::ROOT_OPTION))
            .unwrap_or_default();
        let root = root.trim();
        let ours = !root.is_empty() && same(Path::new(root), project.root());
        let phase_known = phases.iter().any(|p| session_name(p) == s.name);
        let panes = tmux.list_panes_session(&s.id).unwrap_or_default();
        let live = panes
            .iter()
            .filter(|p| !p.dead && p.pid.is_none_or(crate::tmux::process_running))
            .count();
        let kill = format!(
            "tmux -S {} kill-session -t {}",
            shell_word(&socket.to_string_lossy()),
            shell_word(&format!("={}", s.name))
        );
        match verdict::session_verdict(root, Path::new(root).is_dir(), ours, phase_known, live) {
            SessionVerdict::Fine => {}
            SessionVerdict::Kill(why) => out.push(Finding::fixable(
                format!("session `{}` is an orphan: {why}", s.name),
                Fix::KillSession {
                    id: s.id.clone(),
                    name: s.name.clone(),
                },
            )),
            SessionVerdict::Ask(why) => out.push(Finding::problem(
                format!("session `{}` is an orphan: {why}", s.name),
                format!("look at it, then end it with `{kill}`"),
            )),
        }
    }
    let Ok(report) = crate::commands::status::gather(project, tmux, None) else {
        return;
    };
    for p in report
        .phases
        .iter()
        .filter(|p| p.state == "supervisor-down")
    {
        out.push(Finding::fixable(
            p.problem
                .clone()
                .unwrap_or_else(|| format!("the supervisor of `{}` is not running", p.phase)),
            Fix::RestartSupervisor(p.phase.clone()),
        ));
    }
}

/// Rotated pty logs (`*.old`) older than a week.
pub(super) fn check_logs(project: &Project, out: &mut Vec<Finding>) {
    let limit = Duration::from_secs(verdict::OLD_LOG_DAYS * 24 * 3600);
    for dir in dirs(&project.batty_dir().join("logs")) {
        for file in files(&dir) {
            let age = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok());
            if verdict::is_rotated_log(&file) && age.is_some_and(|a| a > limit) {
                out.push(Finding::fixable(
                    format!(
                        "`{}` is a rotated log older than {} days",
                        rel(project, &file),
                        verdict::OLD_LOG_DAYS
                    ),
                    Fix::RemoveFile(file),
                ));
            }
        }
    }
}
