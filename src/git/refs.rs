//! Refs and commit ranges: which commits of a range are not on a target yet (by patch id),
//! what a range changes, and refs created, moved and deleted with checks that lose nothing.

use super::parse::{self, Diffstat};
use super::{Git, GitError};

impl Git {
    /// Commits of `base..head` whose change is not on `target` yet (by patch id), oldest
    /// first. Merge commits are never listed (`git cherry` leaves them out).
    pub fn unlanded(&self, target: &str, base: &str, head: &str) -> Result<Vec<String>, GitError> {
        let out = self.read(["cherry", target, head, base])?;
        Ok(out
            .lines()
            .filter_map(|l| l.strip_prefix("+ "))
            .map(str::to_owned)
            .collect())
    }

    /// `<short sha> <subject>` of the commits of `head` not on `upstream` by patch id.
    pub fn unlanded_subjects(&self, upstream: &str, head: &str) -> Result<Vec<String>, GitError> {
        let out = self.read(["cherry", "-v", upstream, head])?;
        Ok(out
            .lines()
            .filter_map(|l| l.strip_prefix("+ "))
            .map(|l| match l.split_once(' ') {
                Some((sha, subject)) => format!("{} {subject}", &sha[..sha.len().min(7)]),
                None => l.to_owned(),
            })
            .collect())
    }

    /// How many commits of `branch` have no equal (by patch id) on `target` (both branches).
    pub fn unmerged_count(&self, target: &str, branch: &str) -> Result<usize, GitError> {
        let out = self.read([
            "cherry",
            &format!("refs/heads/{target}"),
            &format!("refs/heads/{branch}"),
        ])?;
        Ok(out.lines().filter(|l| l.starts_with('+')).count())
    }

    /// Merge commits in `from..to`.
    pub fn merges_between(&self, from: &str, to: &str) -> Result<usize, GitError> {
        let out = self.read(["rev-list", "--count", "--merges", &format!("{from}..{to}")])?;
        Ok(out.trim().parse().unwrap_or(0))
    }

    /// The files `base..head` changes, with lines added and removed.
    pub fn diffstat(&self, base: &str, head: &str) -> Result<Diffstat, GitError> {
        let out = self.read(["diff", "--numstat", "-z", "--no-ext-diff", base, head, "--"])?;
        Ok(parse::numstat_z(&out))
    }

    /// What `head` changes since it forked from `target` (`git diff target...head`): the
    /// work on `head` that is not on `target`, whatever of `target` it has taken in since.
    pub fn diffstat_since_fork(&self, target: &str, head: &str) -> Result<Diffstat, GitError> {
        let range = format!("{target}...{head}");
        let out = self.read(["diff", "--numstat", "-z", "--no-ext-diff", &range, "--"])?;
        Ok(parse::numstat_z(&out))
    }

    /// `(unix seconds, commit)` of each entry of `refname`'s reflog, newest first; empty when
    /// the ref keeps none (reflogs off, or a ref outside `refs/heads/`).
    pub fn reflog(&self, refname: &str) -> Result<Vec<(i64, String)>, GitError> {
        if !self.ok(["reflog", "exists", refname])? {
            return Ok(Vec::new());
        }
        // With `--date=unix` the selector `%gd` is `<ref>@{<seconds>}`.
        let out = self.read(["log", "-g", "--date=unix", "--format=%H %gd", refname, "--"])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let (sha, selector) = l.split_once(' ')?;
                let secs = selector.rsplit_once("@{")?.1.strip_suffix('}')?;
                Some((secs.parse().ok()?, sha.to_owned()))
            })
            .collect())
    }

    /// `(refname, commit)` of every ref under `prefix` (e.g. `refs/batty/v1/`).
    pub fn refs_under(&self, prefix: &str) -> Result<Vec<(String, String)>, GitError> {
        let out = self.read(["for-each-ref", "--format=%(refname) %(objectname)", prefix])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(name, sha)| (name.to_owned(), sha.to_owned()))
            .collect())
    }

    /// Refs under `prefix` from which `commit` is reachable.
    pub fn refs_containing(&self, prefix: &str, commit: &str) -> Result<Vec<String>, GitError> {
        let out = self.read([
            "for-each-ref",
            "--format=%(refname)",
            "--contains",
            commit,
            prefix,
        ])?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// Points `name` at `commit`, whatever it pointed at before.
    pub fn set_ref(&self, name: &str, commit: &str, message: &str) -> Result<(), GitError> {
        self.run(["update-ref", "-m", message, name, commit])?;
        Ok(())
    }

    /// Creates `name` at `commit`; `false` (and nothing changed) when it already exists.
    pub fn create_ref(&self, name: &str, commit: &str, message: &str) -> Result<bool, GitError> {
        // An empty old value means "must not exist yet".
        match self
            .cmd(["update-ref", "-m", message, name, commit, ""])
            .run()
        {
            Ok(_) => Ok(true),
            Err(e) => {
                if self.commit(name)?.is_some() {
                    Ok(false)
                } else {
                    Err(self.err(e))
                }
            }
        }
    }

    /// Moves `name` from `old` to `new`; `false` (and nothing changed) when it no longer
    /// points at `old`.
    pub fn move_ref(
        &self,
        name: &str,
        new: &str,
        old: &str,
        message: &str,
    ) -> Result<bool, GitError> {
        match self
            .cmd(["update-ref", "-m", message, name, new, old])
            .run()
        {
            Ok(_) => Ok(true),
            Err(e) => {
                if self.commit(name)?.as_deref() != Some(old) {
                    Ok(false)
                } else {
                    Err(self.err(e))
                }
            }
        }
    }

    /// Deletes `name`; a ref that is already gone is fine (git says so with exit 0).
    pub fn delete_ref(&self, name: &str) -> Result<(), GitError> {
        self.run(["update-ref", "-d", name])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, git, repo};
    use super::*;

    #[test]
    fn unlanded_is_by_patch_id_and_within_the_range() {
        let dir = repo();
        let r = Git::new(dir.path());
        let start = r.head().unwrap();
        git(dir.path(), &["switch", "-q", "-c", "agent"]);
        let before = commit(dir.path(), "old.txt", "old\n", "before the range");
        let a = commit(dir.path(), "a.txt", "a\n", "a");
        let b = commit(dir.path(), "b.txt", "b\n", "b");
        git(dir.path(), &["switch", "-q", "main"]);
        // `a` lands on main as an equal commit (a cherry-pick), not the same one.
        git(dir.path(), &["cherry-pick", &a]);
        let unlanded = r.unlanded("main", &before, &b).unwrap();
        assert_eq!(
            unlanded,
            std::slice::from_ref(&b),
            "only the range, minus what landed"
        );
        assert_eq!(r.unlanded("main", &start, &b).unwrap(), [before, b]);
        assert_eq!(r.unmerged_count("main", "agent").unwrap(), 2);
        let subjects = r.unlanded_subjects("main", "agent").unwrap();
        assert_eq!(subjects.len(), 2);
        assert!(subjects[1].ends_with(" b"), "{subjects:?}");
    }

    #[test]
    fn diffstat_since_the_fork_leaves_out_what_came_from_the_target() {
        let dir = repo();
        let r = Git::new(dir.path());
        git(dir.path(), &["switch", "-q", "-c", "agent"]);
        commit(dir.path(), "mine.txt", "mine\n", "mine");
        git(dir.path(), &["switch", "-q", "main"]);
        commit(dir.path(), "theirs.txt", "theirs\n", "theirs");
        git(dir.path(), &["switch", "-q", "agent"]);
        git(dir.path(), &["rebase", "-q", "main"]);
        let head = r.head().unwrap();
        let d = r.diffstat_since_fork("refs/heads/main", &head).unwrap();
        let paths: Vec<&str> = d.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["mine.txt"]);
    }

    #[test]
    fn reflog_entries_with_their_times() {
        let dir = repo();
        let r = Git::new(dir.path());
        let one = r.head().unwrap();
        let two = commit(dir.path(), "a.txt", "a\n", "two");
        let log = r.reflog("refs/heads/main").unwrap();
        assert_eq!(
            log.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
            [two.as_str(), one.as_str()]
        );
        let now = chrono::Utc::now().timestamp();
        assert!(
            log.iter().all(|(t, _)| (now - 60..=now).contains(t)),
            "{log:?}"
        );
        assert!(log[0].0 >= log[1].0);
        r.set_ref("refs/batty/v1/queue/1", &one, "t").unwrap();
        assert_eq!(r.reflog("refs/batty/v1/queue/1").unwrap(), []);
    }

    #[test]
    fn diffstat_of_a_range() {
        let dir = repo();
        let r = Git::new(dir.path());
        let base = r.head().unwrap();
        commit(dir.path(), "a.txt", "1\n2\n3\n", "a");
        let head = commit(dir.path(), "a.txt", "1\n3\n4\n5\n", "a again");
        let d = r.diffstat(&base, &head).unwrap();
        assert_eq!(d.files.len(), 1);
        assert_eq!(d.files[0].path, "a.txt");
        assert_eq!((d.insertions(), d.deletions()), (4, 0));
        let d = r.diffstat(&format!("{head}~1"), &head).unwrap();
        assert_eq!((d.insertions(), d.deletions()), (2, 1));
    }

    #[test]
    fn refs_are_created_once_moved_by_compare_and_swap_and_deleted() {
        let dir = repo();
        let r = Git::new(dir.path());
        let one = r.head().unwrap();
        let two = commit(dir.path(), "a.txt", "a\n", "two");
        assert!(r.create_ref("refs/batty/v1/queue/1", &one, "t").unwrap());
        assert!(!r.create_ref("refs/batty/v1/queue/1", &two, "t").unwrap());
        assert_eq!(
            r.commit("refs/batty/v1/queue/1").unwrap().as_deref(),
            Some(one.as_str())
        );
        assert!(
            !r.move_ref("refs/batty/v1/queue/1", &two, &two, "t")
                .unwrap()
        );
        assert!(
            r.move_ref("refs/batty/v1/queue/1", &two, &one, "t")
                .unwrap()
        );
        r.set_ref("refs/batty/v1/rejected/1-1", &one, "t").unwrap();
        let refs = r.refs_under("refs/batty/v1/").unwrap();
        assert_eq!(
            refs,
            [
                ("refs/batty/v1/queue/1".to_owned(), two.clone()),
                ("refs/batty/v1/rejected/1-1".to_owned(), one.clone())
            ]
        );
        assert_eq!(
            r.refs_containing("refs/batty/v1/", &one).unwrap(),
            ["refs/batty/v1/queue/1", "refs/batty/v1/rejected/1-1"]
        );
        assert_eq!(
            r.refs_containing("refs/batty/v1/", &two).unwrap(),
            ["refs/batty/v1/queue/1"]
        );
        r.delete_ref("refs/batty/v1/queue/1").unwrap();
        r.delete_ref("refs/batty/v1/queue/1").unwrap();
        assert_eq!(r.refs_under("refs/batty/v1/").unwrap().len(), 1);
    }
}
