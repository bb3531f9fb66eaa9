//! Worktrees and the moves that change a checkout: listing, adding and removing worktrees,
//! scrubbing the merge worktree, applying commits, fast-forwarding and resetting.

use std::path::{Path, PathBuf};

use super::parse::{self, WorktreeEntry};
use super::{Git, GitError, Version, version};

/// How applying commits ([`Git::cherry_pick`]) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked {
    /// Every commit is applied on top of where the checkout was, minus those whose change was
    /// already there (commits that were empty to begin with are kept).
    Applied,
    /// Applying conflicted in `files`; the cherry-pick is left in progress for the caller to
    /// look at and scrub.
    Conflict { files: Vec<String> },
}

/// `cherry-pick --empty=drop` (drop a commit whose change is already there) is git 2.45.
const EMPTY_DROP: Version = Version::new(2, 45, 0);
/// `worktree list -z` is git 2.36.
const WORKTREE_LIST_Z: Version = Version::new(2, 36, 0);

impl Git {
    /// The worktrees of this repository, the main one first.
    pub fn worktrees(&self) -> Result<Vec<WorktreeEntry>, GitError> {
        // `-z` keeps a path with a newline whole; older gits print one field per line.
        let z = version()? >= WORKTREE_LIST_Z;
        let mut args = vec!["worktree", "list", "--porcelain"];
        if z {
            args.push("-z");
        }
        let out = self.read(args)?;
        let mut entries = parse::worktree_list(&out, if z { '\0' } else { '\n' });
        // git prints `prunable` from 2.31 on; a folder that is gone is prunable on any git.
        for e in entries.iter_mut().skip(1) {
            e.prunable |= !e.path.exists();
        }
        Ok(entries)
    }

    /// The worktree that has `branch` checked out, if any.
    pub fn worktree_of_branch(&self, branch: &str) -> Result<Option<PathBuf>, GitError> {
        Ok(self
            .worktrees()?
            .into_iter()
            .find(|e| e.branch.as_deref() == Some(branch))
            .map(|e| e.path))
    }

    /// Adds a worktree at `path`, detached on `at`, files checked out.
    pub fn worktree_add_detached(&self, path: &Path, at: &str) -> Result<(), GitError> {
        let cmd = self
            .cmd(["worktree", "add", "--quiet", "--detach"])
            .arg(path)
            .arg(at);
        self.exec(&cmd)?;
        Ok(())
    }

    /// Registers a worktree at `path` for `branch` without checking files out; with
    /// `new_from`, the branch is created there first.
    pub fn worktree_add_bare(
        &self,
        path: &Path,
        branch: &str,
        new_from: Option<&str>,
    ) -> Result<(), GitError> {
        let cmd = match new_from {
            Some(base) => self
                .cmd(["worktree", "add", "--quiet", "--no-checkout", "-b", branch])
                .arg(path)
                .arg(base),
            None => self
                .cmd(["worktree", "add", "--quiet", "--no-checkout"])
                .arg(path)
                .arg(branch),
        };
        self.exec(&cmd)?;
        Ok(())
    }

    /// Removes the worktree at `path`, even with changes in it or locked.
    pub fn worktree_remove(&self, path: &Path) -> Result<(), GitError> {
        let cmd = self
            .cmd(["worktree", "remove", "--force", "--force"])
            .arg(path);
        self.exec(&cmd)?;
        Ok(())
    }

    /// Drops the registrations of worktrees whose folders are gone.
    pub fn worktree_prune(&self) -> Result<(), GitError> {
        self.run(["worktree", "prune"])?;
        Ok(())
    }

    pub fn delete_branch(&self, branch: &str) -> Result<(), GitError> {
        self.run(["branch", "-D", "--", branch])?;
        Ok(())
    }

    /// Checks `branch` out here, files and index, whatever was there.
    pub fn checkout_force(&self, branch: &str) -> Result<(), GitError> {
        self.run(["checkout", "--quiet", "--force", branch])?;
        Ok(())
    }

    /// Moves the checked-out branch (and files) to `to`.
    pub fn reset_hard(&self, to: &str) -> Result<(), GitError> {
        self.run(["reset", "--quiet", "--hard", to])?;
        Ok(())
    }

    /// Fast-forwards the checked-out branch to `commit`: files, index and branch together,
    /// never overwriting untracked files, everything left as it was when git refuses.
    pub fn merge_ff_only(&self, commit: &str) -> Result<(), GitError> {
        self.run(["merge", "--ff-only", "--quiet", "--no-stat", commit])?;
        Ok(())
    }

    /// Ends any cherry-pick, rebase or merge in progress and puts this checkout, detached, on
    /// `at` with nothing else in it: only for the merge worktree, which holds nothing of
    /// anyone's. Checking out detached (never `reset` on a branch) moves no branch.
    pub fn scrub_to(&self, at: &str) -> Result<(), GitError> {
        let git_dir = self.git_dir()?;
        if git_dir.join("CHERRY_PICK_HEAD").exists() || git_dir.join("sequencer").exists() {
            // `--quit` forgets the sequence even when `--abort` finds nothing to undo.
            let _ = self.run(["cherry-pick", "--abort"]);
            let _ = self.run(["cherry-pick", "--quit"]);
        }
        if git_dir.join("rebase-merge").exists() || git_dir.join("rebase-apply").exists() {
            let _ = self.run(["rebase", "--abort"]);
        }
        if git_dir.join("MERGE_HEAD").exists() {
            let _ = self.run(["merge", "--abort"]);
        }
        // A killed git leaves its lock behind; nobody else works in this worktree.
        let _ = std::fs::remove_file(git_dir.join("index.lock"));
        self.run(["checkout", "--quiet", "--force", "--detach", at])?;
        // Ignored files (build caches such as `target/`) stay, so a gate builds incrementally.
        self.run(["clean", "-ffdq"])?;
        Ok(())
    }

    /// Applies `commits` (oldest first) on top of the checkout, one commit each, dropping
    /// those whose change is already there and keeping those that were empty to begin with.
    pub fn cherry_pick(&self, commits: &[String]) -> Result<Picked, GitError> {
        self.cherry_pick_with(commits, version()? >= EMPTY_DROP)
    }

    /// [`Git::cherry_pick`] with git's own `--empty=drop` (2.45) or, without it, a form every
    /// git has: keep redundant commits as empty ones, then apply again without them.
    fn cherry_pick_with(&self, commits: &[String], empty_drop: bool) -> Result<Picked, GitError> {
        if commits.is_empty() {
            return Ok(Picked::Applied);
        }
        if empty_drop {
            return self.pick(&["--allow-empty", "--empty=drop"], commits);
        }
        let start = self.head()?;
        if let conflict @ Picked::Conflict { .. } =
            self.pick(&["--keep-redundant-commits"], commits)?
        {
            return Ok(conflict);
        }
        let keep = self.not_redundant(commits)?;
        if keep.len() == commits.len() {
            return Ok(Picked::Applied);
        }
        // The same commits in the same order minus ones that changed nothing give the same
        // trees, so this second pass cannot conflict where the first did not.
        self.scrub_to(&start)?;
        self.pick(&["--keep-redundant-commits"], &keep)
    }

    fn pick(&self, mode: &[&str], commits: &[String]) -> Result<Picked, GitError> {
        if commits.is_empty() {
            return Ok(Picked::Applied);
        }
        let cmd = self.cmd(["cherry-pick"]).args(mode).args(commits);
        match cmd.run() {
            Ok(_) => Ok(Picked::Applied),
            Err(err) => {
                // A failure that left no conflicts (a full disk, a broken repository) is git's,
                // and its own message says more than a second question would.
                let files = self.conflicted_files().unwrap_or_default();
                if files.is_empty() {
                    Err(self.err(err))
                } else {
                    Ok(Picked::Conflict { files })
                }
            }
        }
    }

    /// After `commits` were just applied one commit each: those whose applied commit changed
    /// something, or that were empty to begin with.
    fn not_redundant(&self, commits: &[String]) -> Result<Vec<String>, GitError> {
        let k = commits.len();
        let revs: Vec<String> = (0..=k).map(|i| format!("HEAD~{i}^{{tree}}")).collect();
        let mut args = vec!["rev-parse".to_owned()];
        args.extend(revs);
        let out = self.read(&args)?;
        let trees: Vec<&str> = out.lines().collect();
        if trees.len() != k + 1 {
            return Ok(commits.to_vec());
        }
        let mut keep = Vec::new();
        for (i, commit) in commits.iter().enumerate() {
            // Commit i (oldest first) was applied as HEAD~(k-1-i), onto HEAD~(k-i).
            let applied_empty = trees[k - 1 - i] == trees[k - i];
            if !applied_empty || self.was_empty(commit) {
                keep.push(commit.clone());
            }
        }
        Ok(keep)
    }

    /// True when `commit` changes nothing against its first parent.
    fn was_empty(&self, commit: &str) -> bool {
        match self.read([
            "rev-parse",
            &format!("{commit}^{{tree}}"),
            &format!("{commit}^^{{tree}}"),
        ]) {
            Ok(out) => {
                let trees: Vec<&str> = out.lines().collect();
                trees.len() == 2 && trees[0] == trees[1]
            }
            // A root commit has no parent: it is empty only if its tree is.
            Err(_) => false,
        }
    }
}

/// What a tree has at a path, as far as an untracked file of a checkout is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Missing,
    Folder,
    /// A file, a symlink or a submodule: nothing can be below it.
    Leaf,
}

/// How many paths one `cat-file --batch-check` is asked about: its answers (one short line
/// each) must fit the pipe while batty is still writing the questions.
const PROBES_PER_CALL: usize = 256;

/// Every path whose entry in a tree decides whether `untracked` files are in the way: each
/// file and each folder above it.
fn probes(untracked: &[String]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for path in untracked.iter().filter(|p| !p.contains('\n')) {
        out.insert(path.clone());
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            out.insert(path[..at + i].to_owned());
            at += i + 1;
        }
    }
    out.into_iter().collect()
}

/// The untracked files that checking out a tree would overwrite or delete: the tree has
/// something at the file's own path, or a file (not a folder) where a folder above it is. A
/// path with a line break cannot be asked about, so it counts as in the way.
fn in_the_way(untracked: &[String], at: impl Fn(&str) -> Entry) -> Vec<String> {
    untracked
        .iter()
        .filter(|path| {
            if path.contains('\n') || at(path) != Entry::Missing {
                return true;
            }
            path.match_indices('/')
                .any(|(i, _)| at(&path[..i]) == Entry::Leaf)
        })
        .cloned()
        .collect()
}

impl Git {
    /// The untracked files of this checkout (`untracked`, as [`Git::changes`] lists them)
    /// that checking out `commit` would overwrite or delete. The others stay as they are: a
    /// checkout or `reset --hard` leaves untracked files alone unless they are in its way.
    pub fn untracked_in_the_way(
        &self,
        commit: &str,
        untracked: &[String],
    ) -> Result<Vec<String>, GitError> {
        if untracked.is_empty() {
            return Ok(Vec::new());
        }
        let paths = probes(untracked);
        let mut found = std::collections::HashMap::new();
        for chunk in paths.chunks(PROBES_PER_CALL) {
            let mut questions = String::new();
            for p in chunk {
                questions.push_str(&format!("{commit}:{p}\n"));
            }
            let cmd = self
                .cmd(["cat-file", "--batch-check=%(objecttype)"])
                .stdin(questions);
            let out = self.exec(&cmd)?;
            let answers: Vec<&str> = out.stdout.lines().collect();
            if answers.len() != chunk.len() {
                // Not an answer per question: count every file as in the way, losing nothing.
                return Ok(untracked.to_vec());
            }
            for (p, a) in chunk.iter().zip(answers) {
                let entry = match a {
                    "tree" => Entry::Folder,
                    "blob" | "commit" => Entry::Leaf,
                    _ => Entry::Missing,
                };
                found.insert(p.as_str(), entry);
            }
        }
        Ok(in_the_way(untracked, |p| {
            found.get(p).copied().unwrap_or(Entry::Missing)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, git, repo};
    use super::*;

    /// The form every git has, and git's own when this git has it.
    fn both_forms() -> Vec<bool> {
        let mut forms = vec![false];
        if version().unwrap() >= EMPTY_DROP {
            forms.push(true);
        }
        forms
    }

    fn subjects(dir: &Path, range: &str) -> Vec<String> {
        git(dir, &["log", "--format=%s", range])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn picks_drop_what_is_already_there_and_keep_empty_commits_on_any_git() {
        for empty_drop in both_forms() {
            let dir = repo();
            let r = dir.path();
            git(r, &["switch", "-q", "-c", "agent"]);
            let a = commit(r, "x.txt", "x\n", "a: x");
            git(r, &["commit", "-q", "--allow-empty", "-m", "e: empty"]);
            let e = git(r, &["rev-parse", "HEAD"]);
            let b = commit(r, "y.txt", "y\n", "b: y");
            git(r, &["switch", "-q", "main"]);
            // main already has a's change, inside a bigger commit (another patch id).
            std::fs::write(r.join("z.txt"), "z\n").unwrap();
            commit(r, "x.txt", "x\n", "m: x and z");
            let wt = r.join("wt");
            let g = Git::new(r);
            g.worktree_add_detached(&wt, "main").unwrap();
            let w = Git::new(&wt);
            let picked = w.cherry_pick_with(&[a, e, b], empty_drop).unwrap();
            assert_eq!(picked, Picked::Applied);
            assert_eq!(
                subjects(&wt, "main..HEAD"),
                ["b: y", "e: empty"],
                "empty_drop {empty_drop}"
            );
            assert_eq!(w.dirty_files(true).unwrap(), Vec::<String>::new());
        }
    }

    #[test]
    fn a_conflict_is_reported_with_its_files() {
        for empty_drop in both_forms() {
            let dir = repo();
            let r = dir.path();
            git(r, &["switch", "-q", "-c", "agent"]);
            let a = commit(r, "x.txt", "agent\n", "a");
            git(r, &["switch", "-q", "main"]);
            let main = commit(r, "x.txt", "main\n", "m");
            let wt = r.join("wt");
            Git::new(r).worktree_add_detached(&wt, "main").unwrap();
            let w = Git::new(&wt);
            assert_eq!(
                w.cherry_pick_with(&[a], empty_drop).unwrap(),
                Picked::Conflict {
                    files: vec!["x.txt".into()]
                }
            );
            w.scrub_to(&main).unwrap();
            assert_eq!(w.head().unwrap(), main);
            assert!(w.dirty_files(true).unwrap().is_empty());
        }
    }

    #[test]
    fn untracked_files_are_in_the_way_only_where_the_tree_has_a_path() {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let untracked = owned(&[
            ".aider.chat.history.md",
            ".aider.tags.cache.v4/cache.db",
            "src/new.rs",
            "notes.txt",
            "lib/sub/x.rs",
            "dir",
            "odd\nname",
        ]);
        assert_eq!(
            probes(&untracked[..5]),
            owned(&[
                ".aider.chat.history.md",
                ".aider.tags.cache.v4",
                ".aider.tags.cache.v4/cache.db",
                "lib",
                "lib/sub",
                "lib/sub/x.rs",
                "notes.txt",
                "src",
                "src/new.rs",
            ])
        );
        // The tree: a folder `src`, a file `notes.txt`, a file `lib` (where the untracked
        // file wants a folder), and a folder `dir` (where the untracked file is a file).
        let tree = |p: &str| match p {
            "src" | "dir" => Entry::Folder,
            "notes.txt" | "lib" => Entry::Leaf,
            _ => Entry::Missing,
        };
        assert_eq!(
            in_the_way(&untracked, tree),
            owned(&["notes.txt", "lib/sub/x.rs", "dir", "odd\nname"])
        );
    }

    #[test]
    fn untracked_files_in_the_way_of_a_real_commit() {
        let dir = repo();
        let r = dir.path();
        let g = Git::new(r);
        let start = g.head().unwrap();
        commit(r, "notes.txt", "theirs\n", "notes");
        commit(r, "sub/deep/f.txt", "f\n", "deep");
        std::fs::write(r.join("lib"), "a file\n").unwrap();
        git(r, &["add", "lib"]);
        git(r, &["commit", "-q", "-m", "lib"]);
        let tip = g.head().unwrap();
        git(r, &["reset", "-q", "--hard", &start]);
        for (path, text) in [
            ("notes.txt", "mine\n"),
            ("sub/deep/mine.txt", "mine\n"),
            ("lib/x.rs", "mine\n"),
            (".aider.input.history", "mine\n"),
        ] {
            let p = r.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let (changed, untracked) = g.changes().unwrap();
        assert!(changed.is_empty(), "{changed:?}");
        assert_eq!(
            g.untracked_in_the_way(&tip, &untracked).unwrap(),
            ["lib/x.rs", "notes.txt"]
        );
        assert!(
            g.untracked_in_the_way(&start, &untracked)
                .unwrap()
                .is_empty()
        );
        // Many files at once are asked about in several calls.
        let many: Vec<String> = (0..700).map(|i| format!("gen/f{i}.txt")).collect();
        let mut with_notes = many.clone();
        with_notes.push("notes.txt".into());
        assert_eq!(
            g.untracked_in_the_way(&tip, &with_notes).unwrap(),
            ["notes.txt"]
        );
    }

    #[test]
    fn worktrees_are_listed_with_branches_and_gone_folders() {
        let dir = repo();
        let r = Git::new(dir.path());
        let wt = dir.path().join("wt");
        r.worktree_add_bare(&wt, "side", Some("main")).unwrap();
        Git::new(&wt).checkout_force("side").unwrap();
        let gone = dir.path().join("gone");
        r.worktree_add_detached(&gone, "main").unwrap();
        std::fs::remove_dir_all(&gone).unwrap();
        let list = r.worktrees().unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].branch.as_deref(), Some("main"));
        let side = list.iter().find(|e| e.path.ends_with("wt")).unwrap();
        assert_eq!(side.branch.as_deref(), Some("side"));
        assert!(!side.prunable);
        assert!(
            list.iter()
                .find(|e| e.path.ends_with("gone"))
                .unwrap()
                .prunable
        );
        assert_eq!(
            r.worktree_of_branch("side").unwrap(),
            Some(side.path.clone())
        );
        r.worktree_prune().unwrap();
        assert_eq!(r.worktrees().unwrap().len(), 2);
        r.worktree_remove(&wt).unwrap();
        r.delete_branch("side").unwrap();
        assert!(!r.branch_exists("side").unwrap());
    }
}
