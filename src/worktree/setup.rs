//! Setting up a new worktree from config: untracked files copied from the main checkout
//! (`worktree.copy`) and a one-off shell command (`worktree.post_create`).

use std::path::{Path, PathBuf};

use super::WorktreeError;
use crate::proc::{Cmd, ProcError};

/// Copies files matching `globs` (relative to `main`) into the same place under `worktree`,
/// skipping files already there. Returns the relative paths copied.
pub fn copy_untracked(
    main: &Path,
    worktree: &Path,
    globs: &[String],
) -> Result<Vec<PathBuf>, WorktreeError> {
    let mut copied = Vec::new();
    for pattern in globs {
        let full = main.join(pattern);
        let matches = glob::glob(&full.to_string_lossy()).map_err(|e| WorktreeError::Glob {
            pattern: pattern.clone(),
            reason: e.msg.to_owned(),
        })?;
        for path in matches.flatten() {
            if !path.is_file() {
                continue;
            }
            let Ok(rel) = path.strip_prefix(main) else {
                continue;
            };
            if rel.starts_with(".batty") || rel.starts_with(".git") {
                continue;
            }
            let dest = worktree.join(rel);
            if dest.exists() {
                continue;
            }
            let io = |action, p: &Path| {
                let p = p.to_owned();
                move |source| WorktreeError::Io {
                    action,
                    path: p,
                    source,
                }
            };
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io("create folder", parent))?;
            }
            std::fs::copy(&path, &dest).map_err(io("copy to", &dest))?;
            copied.push(rel.to_owned());
        }
    }
    Ok(copied)
}

/// Runs `command` with `sh -c` in the worktree; returns its output (stdout then stderr).
pub fn post_create(worktree: &Path, command: &str) -> Result<String, WorktreeError> {
    match Cmd::new("sh")
        .args(["-c", command])
        .current_dir(worktree)
        .env("GIT_TERMINAL_PROMPT", "0")
        .run()
    {
        Ok(out) => Ok(format!("{}{}", out.stdout, out.stderr)),
        Err(ProcError::Failed {
            status,
            stdout,
            stderr,
            ..
        }) => Err(WorktreeError::PostCreate {
            path: worktree.to_owned(),
            status,
            output: crate::config::one_line(&format!("{stdout}\n{stderr}")),
        }),
        Err(e) => Err(WorktreeError::PostCreate {
            path: worktree.to_owned(),
            status: "could not start".into(),
            output: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_matching_untracked_files_once() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main");
        let wt = dir.path().join("wt");
        std::fs::create_dir_all(main.join("cfg")).unwrap();
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(main.join(".env"), "A=1").unwrap();
        std::fs::write(main.join("cfg/local.toml"), "x").unwrap();
        std::fs::write(wt.join(".env"), "keep").unwrap();
        let copied = copy_untracked(&main, &wt, &[".env".into(), "cfg/*.toml".into()]).unwrap();
        assert_eq!(copied, [PathBuf::from("cfg/local.toml")]);
        assert_eq!(std::fs::read_to_string(wt.join(".env")).unwrap(), "keep");
        assert!(copy_untracked(&main, &wt, &["[".into()]).is_err());
    }

    #[test]
    fn post_create_failure_carries_output() {
        let dir = tempfile::tempdir().unwrap();
        let err = post_create(dir.path(), "echo building; echo broken >&2; exit 2").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("building broken"), "{msg}");
        assert_eq!(post_create(dir.path(), "echo hi").unwrap(), "hi\n");
    }
}
