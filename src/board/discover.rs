//! Finding boards: the boards of a project, and the project and phase of a folder inside an
//! agent worktree (`.batty/worktrees/<phase>/<agent>/...`), whose board is the main checkout's.

use std::path::{Path, PathBuf};

/// The phases that have a board (`.batty/kanban/<phase>/config.yml`), sorted.
pub fn boards(boards_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(boards_dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join(super::config::CONFIG_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// For a folder inside `<root>/.batty/worktrees/<phase>/<agent>/`, the project root and the
/// phase. The worktree may hold a committed copy of `.batty/`; the real board is the root's.
pub fn worktree_origin(dir: &Path) -> Option<(PathBuf, String)> {
    let parts: Vec<_> = dir.components().collect();
    for i in 0..parts.len().saturating_sub(2) {
        if parts[i].as_os_str() == ".batty" && parts[i + 1].as_os_str() == "worktrees" {
            let phase = parts.get(i + 2)?.as_os_str().to_str()?.to_owned();
            let root: PathBuf = parts[..i].iter().collect();
            return Some((root, phase));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worktree_paths_point_at_the_main_checkout() {
        assert_eq!(
            worktree_origin(Path::new("/r/.batty/worktrees/v1/brave-otter/src")),
            Some((PathBuf::from("/r"), "v1".to_owned()))
        );
        assert_eq!(worktree_origin(Path::new("/r/src")), None);
    }
}
