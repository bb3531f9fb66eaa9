//! The one way batty runs git: [`Git`] runs the git binary in an explicit folder under one
//! environment policy, logs every call (through `proc::Cmd`), and turns a failure into a
//! [`GitError`] naming the folder, the command line and git's stderr. The questions and moves
//! the rest of batty asks of git live here too (refs and ranges in `git/refs.rs`, worktrees
//! and applying commits in `git/tree.rs`), each using only options git 2.30 has, or choosing by
//! the detected [`version`].

mod parse;
mod refs;
mod tree;
mod version;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::proc::{Cmd, Output, ProcError};

pub use parse::{Diffstat, FileStat, WorktreeEntry};
pub use tree::Picked;
pub use version::{MIN_VERSION, Version, require_version, version};

/// A git failure, naming where git ran.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git failed in `{}`: {source}", dir.display())]
    Failed {
        dir: PathBuf,
        #[source]
        source: Box<ProcError>,
    },
    #[error(
        "git is not installed (or not on PATH): batty needs git {MIN_VERSION} or newer; {}",
        version::UPGRADE
    )]
    NotInstalled,
    #[error(
        "git {found} is too old: batty needs git {MIN_VERSION} or newer; {}",
        version::UPGRADE
    )]
    TooOld { found: Version },
    #[error("cannot tell the git version from `git --version`, which printed `{output}`")]
    UnknownVersion { output: String },
}

impl GitError {
    /// git's exit code, when it ran and exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            GitError::Failed { source, .. } => source.code(),
            _ => None,
        }
    }

    /// What git wrote to stderr (empty when it never ran).
    pub fn stderr(&self) -> &str {
        match self {
            GitError::Failed { source, .. } => source.stderr(),
            _ => "",
        }
    }
}

/// Variables that tie git to one repository, index, object store or config: the list git itself
/// clears (`git rev-parse --local-env-vars`) before it works in another repository. A hook, an
/// outer git (`git rebase -x`) or a harness running batty may have set them for its own.
const REPO_LOCAL_VARS: [&str; 15] = [
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
];

/// The environment policy of every git batty runs: it works on the folder it is given and
/// nothing else, and it never waits for a person.
fn policy(mut cmd: Cmd) -> Cmd {
    for var in REPO_LOCAL_VARS {
        cmd = cmd.env_remove(var);
    }
    // No credential prompt on a terminal batty does not own.
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        // `:` is git's own "no editor": a sequence that would stop for a message goes on.
        .env("GIT_EDITOR", ":")
        .env("GIT_SEQUENCE_EDITOR", ":")
        .env("GIT_PAGER", "cat")
        // `status` would otherwise take `index.lock` to save a refreshed index, racing with
        // the agent's own git in its worktree.
        .env("GIT_OPTIONAL_LOCKS", "0")
}

/// git, run in one folder: a checkout (the main one, an agent's worktree, the merge worktree)
/// or anywhere inside a repository.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
}

impl Git {
    pub fn new(dir: impl Into<PathBuf>) -> Git {
        Git { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A git command in this folder under the environment policy, for callers that add stdin
    /// or need the raw output; run it with [`Git::exec`].
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        policy(Cmd::new("git")).current_dir(&self.dir).args(args)
    }

    /// The error for a failed command of this folder.
    pub fn err(&self, source: ProcError) -> GitError {
        if source.not_found() {
            return GitError::NotInstalled;
        }
        GitError::Failed {
            dir: self.dir.clone(),
            source: Box::new(source),
        }
    }

    /// Runs a command built with [`Git::cmd`].
    pub fn exec(&self, cmd: &Cmd) -> Result<Output, GitError> {
        cmd.run().map_err(|e| self.err(e))
    }

    /// Runs `git <args>`; a non-zero exit is an error.
    pub fn run<I, S>(&self, args: I) -> Result<Output, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.exec(&self.cmd(args))
    }

    /// Runs and returns stdout without its trailing newline.
    pub fn read<I, S>(&self, args: I) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.run(args)?;
        Ok(out.stdout.trim_end_matches(['\n', '\r']).to_owned())
    }

    /// For git's yes/no questions (`merge-base --is-ancestor`, `show-ref --verify`): exit 0 is
    /// yes, exit 1 is no, anything else (a broken repository, a bad option) is an error.
    pub fn ok<I, S>(&self, args: I) -> Result<bool, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        match self.cmd(args).run() {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some(1) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Like [`Git::read`], but exit 1 (git's "no such thing") is `None`.
    fn read_maybe<I, S>(&self, args: I) -> Result<Option<String>, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        match self.cmd(args).run() {
            Ok(out) => Ok(Some(out.stdout.trim_end_matches(['\n', '\r']).to_owned())),
            Err(e) if e.code() == Some(1) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The commit a ref or sha names, or `None` when it names no commit.
    pub fn commit(&self, rev: &str) -> Result<Option<String>, GitError> {
        self.read_maybe([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])
    }

    /// The commits `revs` name, in one call when all exist; `None` for each that names none.
    pub fn commits(&self, revs: &[&str]) -> Result<Vec<Option<String>>, GitError> {
        let mut args = vec!["rev-parse".to_owned()];
        args.extend(revs.iter().map(|r| format!("{r}^{{commit}}")));
        if let Ok(out) = self.read(&args) {
            let shas: Vec<Option<String>> = out.lines().map(|l| Some(l.to_owned())).collect();
            if shas.len() == revs.len() {
                return Ok(shas);
            }
        }
        // One of them is missing: ask one by one to tell which.
        revs.iter().map(|r| self.commit(r)).collect()
    }

    /// The commit checked out here.
    pub fn head(&self) -> Result<String, GitError> {
        self.read(["rev-parse", "HEAD"])
    }

    /// The commit `branch` points at; an error when there is no such branch.
    pub fn branch_tip(&self, branch: &str) -> Result<String, GitError> {
        self.read([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}^{{commit}}"),
        ])
    }

    /// True when `ancestor` is reachable from `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
        self.ok(["merge-base", "--is-ancestor", ancestor, descendant])
    }

    /// The branch checked out here, `None` when HEAD is detached.
    pub fn current_branch(&self) -> Result<Option<String>, GitError> {
        self.read_maybe(["symbolic-ref", "--quiet", "--short", "HEAD"])
    }

    /// The private git folder of this checkout (`.git`, or `.git/worktrees/<name>`).
    pub fn git_dir(&self) -> Result<PathBuf, GitError> {
        Ok(PathBuf::from(
            self.read(["rev-parse", "--absolute-git-dir"])?,
        ))
    }

    /// The top folder of the checkout this folder is in.
    pub fn toplevel(&self) -> Result<PathBuf, GitError> {
        Ok(PathBuf::from(self.read(["rev-parse", "--show-toplevel"])?))
    }

    /// `XY path` for every changed path (`git status --porcelain`); `untracked_files` lists
    /// each untracked file instead of its folder. Renames give their new path.
    pub fn status_lines(&self, untracked_files: bool) -> Result<Vec<String>, GitError> {
        let mode = if untracked_files {
            "--untracked-files=all"
        } else {
            "--untracked-files=normal"
        };
        let out = self.read(["status", "--porcelain=v1", "-z", mode])?;
        Ok(parse::status_z(&out)
            .into_iter()
            .map(|(code, path)| format!("{code} {path}"))
            .collect())
    }

    /// Paths with uncommitted changes. `untracked` also counts untracked (not ignored) files.
    pub fn dirty_files(&self, untracked: bool) -> Result<Vec<String>, GitError> {
        let mode = if untracked {
            "--untracked-files=all"
        } else {
            "--untracked-files=no"
        };
        let out = self.read(["status", "--porcelain=v1", "-z", mode])?;
        Ok(parse::status_z(&out).into_iter().map(|(_, p)| p).collect())
    }

    /// [`Git::dirty_files`]`(true)` split in two: tracked paths with uncommitted changes
    /// (staged or not), and untracked (not ignored) files, each listed on its own.
    pub fn changes(&self) -> Result<(Vec<String>, Vec<String>), GitError> {
        let out = self.read(["status", "--porcelain=v1", "-z", "--untracked-files=all"])?;
        let (untracked, changed): (Vec<_>, Vec<_>) = parse::status_z(&out)
            .into_iter()
            .partition(|(code, _)| code == "??");
        let paths = |v: Vec<(String, String)>| v.into_iter().map(|(_, p)| p).collect();
        Ok((paths(changed), paths(untracked)))
    }

    /// Files git left unmerged (conflicted) in this checkout.
    pub fn conflicted_files(&self) -> Result<Vec<String>, GitError> {
        let out = self.read(["diff", "--name-only", "--diff-filter=U", "-z"])?;
        let mut files: Vec<String> = out
            .split('\0')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        files.dedup();
        Ok(files)
    }

    /// True when a local branch of that name exists.
    pub fn branch_exists(&self, branch: &str) -> Result<bool, GitError> {
        self.ok([
            "show-ref",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ])
    }

    /// Local branches under `prefix` (e.g. `batty/v1/`), without the prefix.
    pub fn branches_under(&self, prefix: &str) -> Result<Vec<String>, GitError> {
        let out = self.read([
            "for-each-ref",
            "--format=%(refname:short)",
            &format!("refs/heads/{prefix}"),
        ])?;
        Ok(out
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
            .collect())
    }
}

/// Where a worktree stands against a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heads {
    /// The checked-out branch as a full ref (`refs/heads/...`), or `HEAD` when detached.
    pub branch: String,
    /// The commit checked out.
    pub head: String,
    /// The commit the target names.
    pub target: String,
}

impl Git {
    /// [`Heads`] against `target` (any rev) in one git call; `None` when git fails, e.g. the
    /// target does not exist.
    pub fn heads(&self, target: &str) -> Option<Heads> {
        // `--symbolic-full-name` only applies to the arguments after it.
        let out = self
            .read([
                "rev-parse",
                "HEAD",
                &format!("{target}^{{commit}}"),
                "--symbolic-full-name",
                "HEAD",
            ])
            .ok()?;
        let mut lines = out.lines().map(str::to_owned);
        let heads = Heads {
            head: lines.next()?,
            target: lines.next()?,
            branch: lines.next()?,
        };
        (!heads.head.is_empty() && !heads.target.is_empty()).then_some(heads)
    }

    /// Where a resumed task's commits start: the fork point from `target` (a branch), else
    /// the commit checked out, else empty.
    pub fn merge_base_or_head(&self, target: Option<&str>) -> String {
        if let Some(target) = target
            && let Ok(base) = self.read(["merge-base", "HEAD", &format!("refs/heads/{target}")])
        {
            return base;
        }
        self.head().unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A real repository in a temp dir for the git module's own tests.

    use std::path::Path;

    /// Runs git in `dir` with a fixed identity and no user config; panics on failure.
    pub fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t.invalid")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// A repository on `main` with one commit, its identity also in its config (the library
    /// runs git with this process's environment).
    pub fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        git(r, &["init", "-q", "-b", "main"]);
        git(r, &["config", "user.name", "t"]);
        git(r, &["config", "user.email", "t@t.invalid"]);
        git(r, &["commit", "-q", "--allow-empty", "-m", "one"]);
        dir
    }

    /// Writes `file` and commits it; returns the new commit.
    pub fn commit(dir: &Path, file: &str, text: &str, msg: &str) -> String {
        let p = dir.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        git(dir, &["add", file]);
        git(dir, &["commit", "-q", "-m", msg]);
        git(dir, &["rev-parse", "HEAD"])
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{commit, git, repo};
    use super::*;

    #[test]
    fn heads_in_one_call() {
        let dir = repo();
        let r = Git::new(dir.path());
        let h = r.heads("refs/heads/main").unwrap();
        assert_eq!(h.branch, "refs/heads/main");
        assert_eq!(h.head, h.target);
        assert_eq!(h.head, r.head().unwrap());

        git(dir.path(), &["switch", "-q", "-c", "batty/v1/a"]);
        git(dir.path(), &["commit", "-q", "--allow-empty", "-m", "two"]);
        let h = r.heads("refs/heads/main").unwrap();
        assert_eq!(h.branch, "refs/heads/batty/v1/a");
        assert_ne!(h.head, h.target);
        assert_eq!(h.target, r.branch_tip("main").unwrap());
        assert_eq!(r.heads("refs/heads/no-such-branch"), None);
    }

    #[test]
    fn failures_name_the_folder_command_and_stderr() {
        let dir = repo();
        let r = Git::new(dir.path());
        let err = r
            .read(["rev-parse", "--verify", "no-such-rev"])
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("git failed in `{}`: ", dir.path().display())),
            "{text}"
        );
        assert!(
            text.contains("`git rev-parse --verify no-such-rev`"),
            "{text}"
        );
        assert!(text.contains("Needed a single revision"), "{text}");
        assert_eq!(err.code(), Some(128));
        // A yes/no question answers no only on exit 1; a bad revision is an error.
        assert!(
            r.ok(["merge-base", "--is-ancestor", "HEAD", "nope"])
                .is_err()
        );
        assert_eq!(r.commit("nope").unwrap(), None);
    }

    #[test]
    fn policy_clears_a_calling_gits_variables_and_never_prompts() {
        // What a hook of another repository would have in its environment; the policy's
        // removals apply after anything inherited or set before.
        let cmd = policy(
            Cmd::new("env")
                .env("GIT_DIR", "/elsewhere/.git")
                .env("GIT_INDEX_FILE", "/elsewhere/.git/index")
                .env("GIT_WORK_TREE", "/elsewhere")
                .env("GIT_COMMON_DIR", "/elsewhere/.git"),
        );
        let env = cmd.read().unwrap();
        for var in REPO_LOCAL_VARS {
            assert!(
                !env.lines().any(|l| l.starts_with(&format!("{var}="))),
                "{var} leaked: {env}"
            );
        }
        for set in [
            "GIT_TERMINAL_PROMPT=0",
            "GIT_EDITOR=:",
            "GIT_OPTIONAL_LOCKS=0",
        ] {
            assert!(env.lines().any(|l| l == set), "{set} missing");
        }
    }

    #[test]
    fn status_and_conflicts() {
        let dir = repo();
        let r = Git::new(dir.path());
        commit(dir.path(), "a.txt", "a\n", "a");
        std::fs::write(dir.path().join("a.txt"), "changed\n").unwrap();
        std::fs::create_dir_all(dir.path().join("new")).unwrap();
        std::fs::write(dir.path().join("new/b.txt"), "b\n").unwrap();
        assert_eq!(r.dirty_files(false).unwrap(), ["a.txt"]);
        assert_eq!(r.dirty_files(true).unwrap(), ["a.txt", "new/b.txt"]);
        assert_eq!(r.status_lines(false).unwrap(), [" M a.txt", "?? new/"]);
        assert!(r.conflicted_files().unwrap().is_empty());
    }
}
