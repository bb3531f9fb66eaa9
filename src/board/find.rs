//! Finding one task's file by id without reading the board. kanban-md trusts file names
//! (`NNN-slug.md`); batty first tries the name its id index remembers, and checks the id inside
//! the file it opens. Only when that fails is the task folder listed: files named for the id
//! first, then files named for no id, then (for a file whose id was changed by hand) the rest.

use std::collections::HashSet;
use std::path::Path;

use super::BoardError;
use super::config::BoardConfig;
use super::files::{ReadError, Snapshot};
use super::index::IdIndex;
use super::load::{self, parse};
use super::problem::{Problem, ProblemKind};
use super::ready::Dep;
use super::slug::id_from_file_name;
use super::task::Task;

/// A task file as read for a change: its bytes (to compare before the swap) and its task,
/// with the layout kept for a faithful rewrite.
pub(crate) struct Found {
    pub snap: Snapshot,
    pub task: Task,
}

/// The file of task `id`, read. A file named for the id that cannot be read is an error
/// ([`BoardError::BadFile`]); no file holding the id is [`BoardError::NotFound`], known only
/// after reading every file (a file's id may have been changed by hand).
pub(crate) fn find(config: &BoardConfig, id: u64) -> Result<Found, BoardError> {
    find_with(config, id, true)
}

/// [`find`] for a dependency: files named for another id are trusted to hold that id, as
/// kanban-md trusts them, so a dependency on a missing task costs one listing, not a read of
/// the board.
fn find_dep(config: &BoardConfig, id: u64) -> Result<Found, BoardError> {
    find_with(config, id, false)
}

fn find_with(config: &BoardConfig, id: u64, read_all: bool) -> Result<Found, BoardError> {
    let index = IdIndex::new(config.dir());
    let tasks_dir = config.tasks_path();
    if let Some(name) = index.get(id)
        && let Ok(Some(found)) = read_if(&tasks_dir.join(&name), id)
    {
        return Ok(found);
    }
    let listing = load::list(&tasks_dir)?;
    let named: Vec<(&str, Option<u64>)> = listing
        .entries
        .iter()
        .map(|(n, _)| (n.as_str(), id_from_file_name(n)))
        .collect();
    index.rebuild(named.iter().filter_map(|&(n, i)| Some((i?, n))));
    let mut bad: Option<Problem> = None;
    for (name, _) in named.iter().filter(|(_, i)| *i == Some(id)) {
        match read_if(&tasks_dir.join(name), id) {
            Ok(Some(found)) => {
                index.set(id, name);
                return Ok(found);
            }
            Ok(None) => {}
            Err(problem) => {
                bad.get_or_insert(problem);
            }
        }
    }
    if let Some(problem) = bad {
        return Err(BoardError::BadFile(problem));
    }
    let unnamed = named.iter().filter(|(_, i)| i.is_none());
    let others = named
        .iter()
        .filter(|(_, i)| read_all && i.is_some_and(|i| i != id));
    for (name, _) in unnamed.chain(others) {
        if let Ok(Some(found)) = read_if(&tasks_dir.join(name), id) {
            index.set(id, name);
            return Ok(found);
        }
    }
    Err(BoardError::NotFound {
        id,
        dir: config.dir().to_owned(),
    })
}

/// Reads `path` for a change; `None` when it holds another id (or is gone).
fn read_if(path: &Path, id: u64) -> Result<Option<Found>, Problem> {
    let snap = match Snapshot::read(path) {
        Ok(snap) => snap,
        Err(ReadError::Missing) => return Ok(None),
        Err(e @ ReadError::NotAFile(_)) => {
            return Err(Problem::new(ProblemKind::NotAFile, path, None, e.reason()));
        }
        Err(e) => {
            return Err(Problem::new(
                ProblemKind::Unreadable,
                path,
                None,
                e.reason(),
            ));
        }
    };
    let task = parse(path, snap.bytes.clone(), true)?;
    Ok((task.id == id).then_some(Found { snap, task }))
}

/// Where task `id` stands as a dependency, read from its file. A file that cannot be read
/// counts as missing, as it does on a loaded [`super::Board`].
pub(crate) fn dep_state(config: &BoardConfig, id: u64) -> Dep {
    match find_dep(config, id) {
        Ok(found) if config.is_terminal(&found.task.status) => Dep::Done,
        Ok(_) => Dep::Open,
        Err(_) => Dep::Missing,
    }
}

/// The cycle that task `id` depending on `deps` would close, if any, as the ids around it
/// starting at `id`. Reads only the tasks reachable from `deps`.
pub(crate) fn cycle_through(
    config: &BoardConfig,
    id: u64,
    deps: &[u64],
) -> Result<Option<Vec<u64>>, BoardError> {
    let mut seen: HashSet<u64> = HashSet::new();
    // Depth-first, keeping the path: (task, its dependencies, next one to follow).
    let mut path: Vec<(u64, Vec<u64>, usize)> = vec![(id, deps.to_vec(), 0)];
    seen.insert(id);
    while let Some((_, deps, next)) = path.last_mut() {
        let Some(&dep) = deps.get(*next) else {
            path.pop();
            continue;
        };
        *next += 1;
        if dep == id {
            return Ok(Some(path.iter().map(|(n, _, _)| *n).collect()));
        }
        if !seen.insert(dep) {
            continue;
        }
        let deps = match find_dep(config, dep) {
            Ok(found) => found.task.depends_on,
            Err(BoardError::NotFound { .. } | BoardError::BadFile(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        path.push((dep, deps, 0));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::default_config_yml;

    fn board(files: &[(&str, &str)]) -> (tempfile::TempDir, BoardConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yml"), default_config_yml("t")).unwrap();
        std::fs::create_dir(dir.path().join("tasks")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("tasks").join(name), text).unwrap();
        }
        let config = BoardConfig::load(dir.path()).unwrap();
        (dir, config)
    }

    fn text(id: u64, deps: &[u64]) -> String {
        let mut t = format!("---\nid: {id}\ntitle: t{id}\nstatus: todo\n");
        if !deps.is_empty() {
            t.push_str("depends_on:\n");
            for d in deps {
                t.push_str(&format!("    - {d}\n"));
            }
        }
        t + "---\n"
    }

    #[test]
    fn finds_by_hint_then_by_name_then_by_content() {
        let (dir, config) = board(&[
            ("001-a.md", &text(1, &[])),
            ("notes.md", &text(7, &[])),
            ("003-copy.md", &text(8, &[])),
            ("004-broken.md", "---\nid: [\n---\n"),
        ]);
        let name = |id| find(&config, id).unwrap().task.file_name().to_owned();
        assert_eq!(name(1), "001-a.md");
        assert_eq!(name(7), "notes.md");
        assert_eq!(name(8), "003-copy.md");
        let index = IdIndex::new(dir.path());
        assert_eq!(index.get(8).as_deref(), Some("003-copy.md"));
        // A person renames the file: the stale hint is noticed and replaced.
        let tasks = dir.path().join("tasks");
        std::fs::rename(tasks.join("001-a.md"), tasks.join("001-b.md")).unwrap();
        assert_eq!(name(1), "001-b.md");
        assert_eq!(index.get(1).as_deref(), Some("001-b.md"));
        assert!(matches!(find(&config, 4), Err(BoardError::BadFile(_))));
        assert!(matches!(
            find(&config, 42),
            Err(BoardError::NotFound { id: 42, .. })
        ));
    }

    #[test]
    fn cycles_are_found_by_walking_the_dependencies() {
        let (_dir, config) = board(&[
            ("001-a.md", &text(1, &[2])),
            ("002-b.md", &text(2, &[3, 9])),
            ("003-c.md", &text(3, &[])),
            ("004-d.md", &text(4, &[])),
        ]);
        assert_eq!(
            cycle_through(&config, 3, &[1]).unwrap(),
            Some(vec![3, 1, 2])
        );
        assert_eq!(cycle_through(&config, 3, &[3]).unwrap(), Some(vec![3]));
        assert_eq!(cycle_through(&config, 4, &[1]).unwrap(), None);
        // #9 is missing; a new task #9 depending on #1 would close 9 -> 1 -> 2 -> 9.
        assert_eq!(
            cycle_through(&config, 9, &[1]).unwrap(),
            Some(vec![9, 1, 2])
        );
    }
}
