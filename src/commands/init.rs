//! `batty init`.

use std::path::{Path, PathBuf};

use crate::error::Context;

use crate::error::user_hint;

/// Lines `batty init` makes sure `.gitignore` has: per-machine state that must not be committed.
pub const GITIGNORE_LINES: [&str; 3] = [".batty/worktrees/", ".batty/logs/", ".batty/run/"];

/// The phase `batty init` creates a board for when no --phase is given.
pub const DEFAULT_PHASE: &str = "main";

/// Set batty up in this repository: `.batty/config.yml` (every setting with its default), a
/// kanban-md board at `.batty/kanban/<phase>/`, and `.gitignore` lines for batty's state.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The phase whose board to create.
    #[arg(long, default_value = DEFAULT_PHASE, value_name = "NAME")]
    pub phase: String,
}

pub fn run(args: Args) -> crate::error::Result<()> {
    crate::paths::validate_phase(&args.phase)?;
    crate::git::require_version()?;
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let root = project_root(&cwd)?;
    let project = crate::paths::Project::new(&root);
    let board = project.board_dir(&args.phase);
    let shown = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    if board.join("config.yml").exists() {
        return Err(user_hint(
            format!("the board `{}` already exists", shown(&board)),
            format!(
                "add tasks with `batty task add --phase {} TITLE`",
                args.phase
            ),
        ));
    }
    let config = project.config_file();
    if !config.exists() {
        write_new(&config, crate::config::DEFAULT_CONFIG_YML)?;
        super::ui::note(format!("created {}", shown(&config)));
    }
    std::fs::create_dir_all(board.join("tasks"))
        .with_context(|| format!("cannot create {}", board.display()))?;
    write_new(
        &board.join("config.yml"),
        &crate::board::default_config_yml(&args.phase),
    )?;
    super::ui::note(format!("created board {}/", shown(&board)));
    let gitignore = root.join(".gitignore");
    if add_gitignore_lines(&gitignore)? {
        super::ui::note("updated .gitignore");
    }
    super::ui::note(format!(
        "next: batty task add --phase {} \"First task\"",
        args.phase
    ));
    Ok(())
}

/// The main checkout when `cwd` is in an agent's worktree, else the top of the git work
/// tree `cwd` is in, which must have a commit: refused in a plain folder, a bare repository
/// (where `.batty/` would land in the git folder) and a repository with nothing committed.
fn project_root(cwd: &Path) -> crate::error::Result<PathBuf> {
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_owned());
    if let Some((root, _)) = crate::board::discover::worktree_origin(&cwd) {
        return Ok(root);
    }
    let top = crate::session::repo::require_work_tree(&cwd)?;
    Ok(top.canonicalize().unwrap_or(top))
}

fn write_new(path: &Path, text: &str) -> crate::error::Result<()> {
    crate::fsutil::write_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Appends the missing [`GITIGNORE_LINES`]; true when the file changed.
fn add_gitignore_lines(path: &Path) -> crate::error::Result<bool> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let present = |line: &str| {
        text.lines()
            .any(|l| l.trim() == line || l.trim() == line.trim_end_matches('/'))
    };
    let missing: Vec<&str> = GITIGNORE_LINES
        .into_iter()
        .filter(|l| !present(l))
        .collect();
    if missing.is_empty() {
        return Ok(false);
    }
    let mut out = text.clone();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for line in missing {
        out.push_str(line);
        out.push('\n');
    }
    write_new(path, &out)?;
    Ok(true)
}
