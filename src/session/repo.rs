//! What kind of checkout a folder is in, asked of git before batty writes `.batty/` or builds
//! a session: a work tree with a commit (all batty needs), one with no commit yet, a bare
//! repository (or the inside of a `.git` folder), or no repository at all.

use std::path::{Path, PathBuf};

use crate::proc::ProcError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    /// A work tree; `top` is its top folder.
    WorkTree { top: PathBuf, has_commit: bool },
    /// A bare repository, or a folder inside a repository's git folder.
    GitDir,
    /// Not inside any repository.
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("`{}` is not in a git repository: batty's agents work in git worktrees", dir.display())]
    NotARepo { dir: PathBuf },
    #[error("`{}` is a bare repository or a git folder, not a work tree", dir.display())]
    GitDir { dir: PathBuf },
    #[error("the repository in `{}` has no commit yet", top.display())]
    NoCommit { top: PathBuf },
    #[error(transparent)]
    Git(#[from] ProcError),
}

impl crate::error::Diagnose for RepoError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::User
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            RepoError::NotARepo { .. } => {
                "make it one (`git init`, then commit your files), or run batty in a repository"
                    .to_owned()
            }
            RepoError::GitDir { .. } => {
                "run batty in a checkout with a work tree (`git clone <repo> <dir>`)".to_owned()
            }
            RepoError::NoCommit { .. } => {
                "commit first: agents' worktrees start from a commit (`git add -A && git \
                 commit -m 'initial commit'`)"
                    .to_owned()
            }
            RepoError::Git(e) => return crate::error::Diagnose::hint(e),
        })
    }
}

/// Asks git what `dir` is in.
pub fn probe(dir: &Path) -> Result<Checkout, ProcError> {
    // Through the one git wrapper: a calling git's GIT_DIR must not decide what `dir` is.
    let git = crate::git::Git::new(dir);
    let out = match git
        .cmd(["rev-parse", "--is-bare-repository", "--is-inside-work-tree"])
        .read()
    {
        Ok(out) => out,
        Err(e @ ProcError::Failed { .. }) if e.stderr().contains("not a git repository") => {
            return Ok(Checkout::None);
        }
        Err(e) => return Err(e),
    };
    let flags: Vec<&str> = out.lines().map(str::trim).collect();
    if flags != ["false", "true"] {
        return Ok(Checkout::GitDir);
    }
    let top = PathBuf::from(git.cmd(["rev-parse", "--show-toplevel"]).read()?);
    let has_commit = git
        .cmd(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
        .succeeds()?;
    Ok(Checkout::WorkTree { top, has_commit })
}

/// The top of the work tree `dir` is in, which must have a commit.
pub fn require_work_tree(dir: &Path) -> Result<PathBuf, RepoError> {
    match probe(dir)? {
        Checkout::WorkTree {
            top,
            has_commit: true,
        } => Ok(top),
        Checkout::WorkTree {
            top,
            has_commit: false,
        } => Err(RepoError::NoCommit { top }),
        Checkout::GitDir => Err(RepoError::GitDir {
            dir: dir.to_owned(),
        }),
        Checkout::None => Err(RepoError::NotARepo {
            dir: dir.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn kinds_of_checkout() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let plain = root.join("plain");
        std::fs::create_dir(&plain).unwrap();
        assert_eq!(probe(&plain).unwrap(), Checkout::None);

        let repo = root.join("repo");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        assert_eq!(
            probe(&repo).unwrap(),
            Checkout::WorkTree {
                top: repo.clone(),
                has_commit: false
            }
        );
        assert!(matches!(
            require_work_tree(&repo),
            Err(RepoError::NoCommit { .. })
        ));
        git(&repo, &["commit", "-q", "--allow-empty", "-m", "x"]);
        std::fs::create_dir(repo.join("sub")).unwrap();
        assert_eq!(require_work_tree(&repo.join("sub")).unwrap(), repo);
        assert_eq!(probe(&repo.join(".git")).unwrap(), Checkout::GitDir);

        let bare = root.join("bare.git");
        git(&root, &["init", "-q", "--bare", "bare.git"]);
        assert_eq!(probe(&bare).unwrap(), Checkout::GitDir);
    }
}
