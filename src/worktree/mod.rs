//! git worktrees for agents, through the one git wrapper (`crate::git`): create, reuse,
//! recreate, remove, and the safety checks that keep uncommitted or unmerged work from being
//! thrown away.

mod git;
mod setup;

use std::path::{Path, PathBuf};

pub use git::{Repo, WorktreeEntry};
pub use setup::{copy_untracked, post_create};

use crate::git::{Git, GitError};

/// Held while this process adds or removes a worktree.
static WORKTREE_CHANGE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("the checkout at `{}` is on a detached HEAD, not on a branch", path.display())]
    Detached { path: PathBuf },
    #[error("worktree `{path}` (branch `{branch}`) holds work that would be lost: {detail}")]
    AtRisk {
        path: PathBuf,
        branch: String,
        detail: String,
    },
    #[error("branch `{branch}` is already checked out in another worktree at `{path}`")]
    CheckedOutElsewhere { branch: String, path: PathBuf },
    #[error("invalid glob `{pattern}` in `worktree.copy`: {reason}")]
    Glob { pattern: String, reason: String },
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`worktree.post_create` failed in `{path}` ({status}): {output}")]
    PostCreate {
        path: PathBuf,
        status: String,
        output: String,
    },
}

/// Where an agent's worktree goes and what it starts from.
#[derive(Debug, Clone)]
pub struct Spec {
    pub path: PathBuf,
    pub branch: String,
    pub base: String,
}

/// Work in a worktree or branch that removing it would lose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Risk {
    /// `git status --porcelain` lines (modified, staged, untracked files).
    pub dirty: Vec<String>,
    /// `<short sha> <subject>` of commits on the branch but not on the base.
    pub commits: Vec<String>,
}

impl Risk {
    pub fn is_empty(&self) -> bool {
        self.dirty.is_empty() && self.commits.is_empty()
    }

    /// One line naming (the first few of) the files and commits at stake.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.dirty.is_empty() {
            parts.push(format!(
                "uncommitted changes in {}",
                list_some(self.dirty.iter().map(|l| l.get(3..).unwrap_or(l)))
            ));
        }
        if !self.commits.is_empty() {
            parts.push(format!(
                "{} commit(s) not on the base branch: {}",
                self.commits.len(),
                list_some(self.commits.iter().map(String::as_str))
            ));
        }
        parts.join("; ")
    }

    pub fn into_error(self, spec: &Spec) -> WorktreeError {
        WorktreeError::AtRisk {
            path: spec.path.clone(),
            branch: spec.branch.clone(),
            detail: self.describe(),
        }
    }
}

fn list_some<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    let shown: Vec<String> = items.iter().take(5).map(|s| format!("`{s}`")).collect();
    let more = items.len().saturating_sub(5);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// How [`Repo::ensure`] got the worktree in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// New branch from the base, new worktree.
    Created,
    /// The branch existed without a worktree; a worktree was added for it.
    FromBranch,
    /// Already there; left as it is.
    Reused,
}

impl Outcome {
    pub fn is_new(self) -> bool {
        !matches!(self, Outcome::Reused)
    }
}

/// Result of [`Repo::ensure`]: what happened, and anything odd worth telling the user.
#[derive(Debug, Clone)]
pub struct Ensured {
    pub outcome: Outcome,
    pub notes: Vec<String>,
}

impl Repo {
    /// Puts the worktree of `spec` in place: reuses it when git has it, adds one for an
    /// existing branch, otherwise branches from the base. A folder git does not know is moved
    /// aside (never deleted); a branch checked out in another worktree is an error. With
    /// `recreate`, the existing worktree and branch are removed first: callers check
    /// [`Repo::risk`] before asking for that.
    pub fn ensure(
        &self,
        spec: &Spec,
        entries: &[WorktreeEntry],
        recreate: bool,
    ) -> Result<Ensured, WorktreeError> {
        // `git worktree add` reads every `.git/worktrees/*/commondir`; run beside another add
        // or remove it fails on one half made ("failed to read .git/worktrees/x/commondir",
        // 3 runs in 20 of 4 agents on a busy machine). `batty work` ensures agents on
        // threads: one at a time here, the rest of their setup stays parallel.
        let one_at_a_time = WORKTREE_CHANGE.lock().unwrap_or_else(|p| p.into_inner());
        let mut notes = Vec::new();
        let at_path = entries.iter().find(|e| same_path(&e.path, &spec.path));
        let with_branch = entries
            .iter()
            .find(|e| e.branch.as_deref() == Some(spec.branch.as_str()));
        if let Some(other) = with_branch
            && !same_path(&other.path, &spec.path)
        {
            return Err(WorktreeError::CheckedOutElsewhere {
                branch: spec.branch.clone(),
                path: other.path.clone(),
            });
        }
        if recreate {
            if at_path.is_some() {
                self.remove_worktree(&spec.path)?;
            }
            if self.branch_exists(&spec.branch)? {
                self.delete_branch(&spec.branch)?;
            }
        } else if let Some(entry) = at_path {
            if entry.branch.as_deref() != Some(spec.branch.as_str()) {
                notes.push(format!(
                    "worktree `{}` is on {} instead of `{}`; left as it is",
                    spec.path.display(),
                    entry
                        .branch
                        .as_deref()
                        .map(|b| format!("`{b}`"))
                        .unwrap_or_else(|| "a detached HEAD".to_owned()),
                    spec.branch
                ));
            }
            return Ok(Ensured {
                outcome: Outcome::Reused,
                notes,
            });
        }
        if spec.path.exists() {
            notes.push(self.move_aside(&spec.path)?);
        }
        if let Some(parent) = spec.path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| WorktreeError::Io {
                action: "create folder",
                path: parent.to_owned(),
                source,
            })?;
        }
        // Only the bookkeeping in `.git/worktrees/` needs the lock. Writing the files is most
        // of the time on a large repository, so the checkout runs after it, beside the other
        // agents' checkouts; `git checkout` runs the post-checkout hook as `worktree add` would.
        let outcome = if self.branch_exists(&spec.branch)? {
            self.git()
                .worktree_add_bare(&spec.path, &spec.branch, None)?;
            Outcome::FromBranch
        } else {
            self.git()
                .worktree_add_bare(&spec.path, &spec.branch, Some(&spec.base))?;
            Outcome::Created
        };
        drop(one_at_a_time);
        Git::new(&spec.path).checkout_force(&spec.branch)?;
        Ok(Ensured { outcome, notes })
    }

    /// A folder where the worktree belongs that git does not know: an empty one is removed,
    /// anything else moved to `<parent>/.orphaned/` so nothing is lost.
    fn move_aside(&self, path: &Path) -> Result<String, WorktreeError> {
        let io = |action, p: &Path| {
            let p = p.to_owned();
            move |source| WorktreeError::Io {
                action,
                path: p,
                source,
            }
        };
        if std::fs::remove_dir(path).is_ok() {
            return Ok(format!(
                "removed empty leftover folder `{}`",
                path.display()
            ));
        }
        let parent = path.parent().unwrap_or(Path::new("."));
        let orphans = parent.join(".orphaned");
        std::fs::create_dir_all(&orphans).map_err(io("create folder", &orphans))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let target = orphans.join(format!("{name}-{stamp}"));
        std::fs::rename(path, &target).map_err(io("move aside", path))?;
        Ok(format!(
            "`{}` was not a git worktree; moved it to `{}`",
            path.display(),
            target.display()
        ))
    }

    /// What removing the worktree at `path` and its branch would lose. A missing folder or
    /// branch contributes nothing.
    pub fn risk(&self, path: &Path, branch: &str, base: &str) -> Result<Risk, WorktreeError> {
        let mut risk = Risk::default();
        if path.join(".git").exists() {
            risk.dirty = Git::new(path).status_lines(false)?;
        }
        if self.branch_exists(branch)? {
            // By patch id, not ancestry: the merge queue lands work by cherry-picking, so a
            // landed commit is never an ancestor of the base, yet nothing of it is at stake.
            risk.commits = self.git().unlanded_subjects(base, branch)?;
        }
        Ok(risk)
    }

    /// Removes the worktree (if git has it, or its folder if git does not) and deletes the
    /// branch. Callers check [`Repo::risk`] first.
    pub fn remove(
        &self,
        path: &Path,
        branch: &str,
        entries: &[WorktreeEntry],
    ) -> Result<(), WorktreeError> {
        if entries.iter().any(|e| same_path(&e.path, path)) {
            self.remove_worktree(path)?;
        } else if path.exists() {
            std::fs::remove_dir_all(path).map_err(|source| WorktreeError::Io {
                action: "remove",
                path: path.to_owned(),
                source,
            })?;
        }
        if self.branch_exists(branch)? {
            self.delete_branch(branch)?;
        }
        Ok(())
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_names_files_and_commits() {
        let risk = Risk {
            dirty: vec![" M src/a.rs".into(), "?? new.txt".into()],
            commits: vec!["abc123 add thing".into()],
        };
        assert_eq!(
            risk.describe(),
            "uncommitted changes in `src/a.rs`, `new.txt`; 1 commit(s) not on the base branch: `abc123 add thing`"
        );
        let many = Risk {
            dirty: (0..7).map(|i| format!("?? f{i}")).collect(),
            commits: vec![],
        };
        assert!(
            many.describe().ends_with("`f4` and 2 more"),
            "{}",
            many.describe()
        );
        assert!(Risk::default().is_empty());
    }
}
