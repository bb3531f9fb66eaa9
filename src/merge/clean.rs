//! `batty stop --clean` for the merge queue: the merge worktree and its registration, the
//! queue's files, and batty's refs of the phase (which may keep work not on the target).

use std::path::PathBuf;

use crate::git::Git;
use crate::paths::Project;

use super::journal::Journal;
use super::lock::attempt_lock_path;
use super::{MergeError, recover, refs};

/// What [`clean`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// The merge worktree (its folder or its registration) was there.
    pub worktree: bool,
    pub files: usize,
    pub refs: usize,
}

/// Every file the merge queue keeps for a phase under `.batty/run/<phase>/`.
pub fn merge_files(project: &Project, phase: &str) -> Vec<PathBuf> {
    let queue = project.merge_queue_file(phase);
    let mut lock = queue.as_os_str().to_owned();
    lock.push(".lock");
    vec![
        attempt_lock_path(&queue),
        PathBuf::from(lock),
        project.merge_journal(phase),
        queue,
    ]
}

/// One line per ref of batty's for the phase that keeps commits not on `target` (by patch
/// id): what `clean` would lose.
pub fn refs_at_risk(
    project: &Project,
    phase: &str,
    target: &str,
) -> Result<Vec<String>, MergeError> {
    let repo = Git::new(project.root());
    let target_ref = format!("refs/heads/{target}");
    let target_exists = repo.commit(&target_ref)?.is_some();
    let mut at_risk = Vec::new();
    for (name, _) in repo.refs_under(&refs::prefix(phase))? {
        if !target_exists {
            at_risk.push(format!(
                "`{name}`: `{target}` does not exist to compare with"
            ));
            continue;
        }
        let commits = repo.unlanded_subjects(&target_ref, &name)?;
        if commits.is_empty() {
            continue;
        }
        let shown: Vec<String> = commits.iter().take(3).map(|c| format!("`{c}`")).collect();
        let more = commits.len().saturating_sub(3);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        at_risk.push(format!(
            "`{name}`: {} commit(s) not on `{target}`: {}{more}",
            commits.len(),
            shown.join(", ")
        ));
    }
    Ok(at_risk)
}

/// Removes the merge worktree (ending a gate left running in it), its registration, the
/// queue's files and every ref of batty's for the phase. Callers check [`refs_at_risk`] first.
pub fn clean(project: &Project, phase: &str) -> Result<Cleaned, MergeError> {
    let repo = Git::new(project.root());
    let path = project.merge_worktree_dir(phase);
    recover::end_orphaned_gate(&path, Journal::load(&project.merge_journal(phase)).as_ref());
    let mut cleaned = Cleaned::default();
    let canonical = path.canonicalize().ok();
    let registered = repo.worktrees()?.iter().any(|e| {
        e.path == path || (canonical.is_some() && e.path.canonicalize().ok() == canonical)
    });
    if registered && path.exists() {
        repo.worktree_remove(&path)?;
        cleaned.worktree = true;
    } else if path.exists() {
        std::fs::remove_dir_all(&path).map_err(|source| MergeError::Io {
            path: path.clone(),
            source,
        })?;
        cleaned.worktree = true;
    }
    // A registration whose folder is gone goes with the prune.
    cleaned.worktree |= registered;
    repo.worktree_prune()?;
    for file in merge_files(project, phase) {
        match std::fs::remove_file(&file) {
            Ok(()) => cleaned.files += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(MergeError::Io { path: file, source }),
        }
    }
    for (name, _) in repo.refs_under(&refs::prefix(phase))? {
        repo.delete_ref(&name)?;
        cleaned.refs += 1;
    }
    Ok(cleaned)
}
