//! `batty doctor`: checks what batty needs (tmux, git, the config and its agents, the boards)
//! and finds what runs left behind (worktrees git does not know, lone `batty/*` branches,
//! stale run state, orphan sessions, a session whose supervisor is gone, old rotated logs).
//! One line per finding with what to do; `--fix` repairs only what loses no work.

mod verdict;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use verdict::{BranchVerdict, Level, SessionVerdict};

use super::ui::{self, Style};
use crate::config::Config;
use crate::error::{Context as _, Result, user};
use crate::paths::{Project, agent_branch, session_name};
use crate::proc::{Cmd, shell_word};
use crate::session::repo::{self, Checkout};
use crate::session::{RunState, lock};
use crate::tmux::{Tmux, TmuxError};
use crate::worktree::{Repo, WorktreeEntry};

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
enum Fix {
    PruneWorktrees,
    DeleteBranch(String),
    RemoveFile(PathBuf),
    RemoveRunDir(PathBuf),
    KillSession { id: String, name: String },
    RestartSupervisor(String),
}

#[derive(Debug, Clone)]
struct Finding {
    level: Level,
    text: String,
    todo: Option<String>,
    fix: Option<Fix>,
}

impl Finding {
    fn ok(text: impl Into<String>) -> Finding {
        Finding {
            level: Level::Ok,
            text: text.into(),
            todo: None,
            fix: None,
        }
    }
    fn note(text: impl Into<String>) -> Finding {
        Finding {
            level: Level::Note,
            ..Finding::ok(text)
        }
    }
    fn problem(text: impl Into<String>, todo: impl Into<String>) -> Finding {
        Finding {
            level: Level::Problem,
            todo: Some(todo.into()),
            ..Finding::ok(text)
        }
    }
    fn fixable(text: impl Into<String>, fix: Fix) -> Finding {
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
    let tmux = check_tmux(&config, &mut findings);
    let git_ok = check_git(project.as_ref().map_or(&cwd, |p| p.root()), &mut findings);
    match &project {
        None => findings.push(Finding::problem(
            format!("no `.batty/` folder in {} or above", cwd.display()),
            "run `batty init` at the top of your repository",
        )),
        Some(project) => {
            check_agents(project, &config, &mut findings);
            check_boards(project, &mut findings);
            if git_ok {
                check_leftovers(project, &config, &mut findings);
            }
            check_run_state(project, tmux.as_ref(), &mut findings);
            if let Some(tmux) = &tmux {
                check_sessions(project, tmux, &mut findings);
            }
            check_logs(project, &mut findings);
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

fn rel(project: &Project, path: &Path) -> String {
    super::work::relative(project, path)
}

/// tmux installed, new enough, its socket path usable, the server reachable. Returns the
/// server to look at sessions on, when there is one.
fn check_tmux(config: &Config, out: &mut Vec<Finding>) -> Option<Tmux> {
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
fn check_git(dir: &Path, out: &mut Vec<Finding>) -> bool {
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
fn check_agents(project: &Project, config: &Config, out: &mut Vec<Finding>) {
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
fn check_boards(project: &Project, out: &mut Vec<Finding>) {
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

/// Worktrees git lists whose folders are gone, folders git does not know, and `batty/*`
/// branches no worktree has checked out.
fn check_leftovers(project: &Project, config: &Config, out: &mut Vec<Finding>) {
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
fn check_run_state(project: &Project, tmux: Option<&Tmux>, out: &mut Vec<Finding>) {
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
fn check_sessions(project: &Project, tmux: &Tmux, out: &mut Vec<Finding>) {
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
    let Ok(report) = super::status::gather(project, tmux, None) else {
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
fn check_logs(project: &Project, out: &mut Vec<Finding>) {
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

fn dirs(dir: &Path) -> Vec<PathBuf> {
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

fn files(dir: &Path) -> Vec<PathBuf> {
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

fn same(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}
