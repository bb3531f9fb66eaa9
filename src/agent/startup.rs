//! The start-up check: an agent's program must be found before a session is started for it.

use std::path::{Path, PathBuf};

use super::adapter::Adapter;

/// `Ok` when the adapter's program is on `path` (a `PATH` value; a program named with a `/`
/// is checked as it is, relative to `cwd`); else a one-line error naming the agent and the
/// command.
pub fn check_program(adapter: &Adapter, path: Option<&str>, cwd: &Path) -> Result<(), String> {
    let program = &adapter.program;
    let found = if program.is_empty() {
        false
    } else if program.contains('/') {
        is_executable(&cwd.join(program))
    } else {
        path.unwrap_or("")
            .split(':')
            .filter(|d| !d.is_empty())
            .any(|dir| is_executable(&PathBuf::from(dir).join(program)))
    };
    if found {
        return Ok(());
    }
    let what = if program.contains('/') {
        "is not an executable file"
    } else {
        "is not on PATH"
    };
    Err(format!(
        "agent `{}`: `{}` {what} (its command is `{}`)",
        adapter.kind,
        crate::text::escape_control(program),
        crate::text::escape_control(&adapter.command)
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::builtin;

    #[test]
    fn found_or_named() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let exe = bin.join("claude");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        let claude = builtin("claude", Path::new("batty")).unwrap();
        let path = format!("/nonexistent:{}", bin.display());
        assert_eq!(
            check_program(&claude, Some(&path), dir.path()),
            Err("agent `claude`: `claude` is not on PATH (its command is `claude`)".into()),
            "not executable yet"
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_program(&claude, Some(&path), dir.path()), Ok(()));
        assert!(check_program(&claude, None, dir.path()).is_err());
        let demo = builtin("demo", &dir.path().join("no/batty")).unwrap();
        let err = check_program(&demo, Some(&path), dir.path()).unwrap_err();
        assert!(err.contains("is not an executable file"), "{err}");
    }
}
