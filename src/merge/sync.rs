//! Before an agent takes its next task: its branch goes onto the target tip, and whatever on it
//! did not land (a rejected attempt, stray commits) is first moved off the branch to a ref of
//! batty's, so it can never ride along with later work and is never lost. Uncommitted work is
//! never touched: the move is skipped and the caller told why. Untracked files the move would
//! not touch (an agent's own, such as Aider's `.aider*`) do not stop it and stay as they are.

use std::path::Path;

use crate::git::Git;

use super::MergeError;
use super::refs;

/// What [`prepare_branch`] needs.
#[derive(Debug, Clone, Copy)]
pub struct Prepare<'a> {
    /// The agent's worktree, which must have `branch` checked out.
    pub worktree: &'a Path,
    pub branch: &'a str,
    /// The commit the next task starts from (the target's tip).
    pub target_tip: &'a str,
    /// The branch's commit, when the caller has just read it in the same git call that found
    /// `branch` checked out and `target_tip` a commit (`Git::heads`): those reads are not
    /// made again. `None`: read here.
    pub head: Option<&'a str>,
    pub phase: &'a str,
    /// Where unlanded work that no ref of batty's holds yet goes, e.g.
    /// [`refs::rejected_ref`]`(phase, task, attempt)` for the task the agent held last.
    pub park_as: &'a str,
}

/// Work moved off a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The ref that keeps it.
    pub name: String,
    /// Its commits not on the target (by patch id), merges not counted.
    pub commits: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// The branch already points at the target tip.
    UpToDate,
    /// The branch (and worktree) now point at the target tip; `parked` says where work that
    /// did not land went, when no ref of batty's held it already.
    Moved { to: String, parked: Option<Parked> },
    /// Nothing was done: `changed` are tracked files with uncommitted changes, `in_the_way`
    /// untracked files where the target's tree has a path (moving would overwrite them).
    Dirty {
        changed: Vec<String>,
        in_the_way: Vec<String>,
    },
}

impl Prepared {
    /// Why the branch was not moved, naming the files, for the agent's event log.
    pub fn not_moved_because(&self) -> Option<String> {
        let Prepared::Dirty {
            changed,
            in_the_way,
        } = self
        else {
            return None;
        };
        let list = |files: &[String]| {
            files
                .iter()
                .map(|f| format!("`{}`", crate::text::one_line(f)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut why = Vec::new();
        if !changed.is_empty() {
            why.push(format!("uncommitted changes in {}", list(changed)));
        }
        if !in_the_way.is_empty() {
            why.push(format!(
                "untracked {} would be overwritten by the target's files (commit, move or delete them)",
                list(in_the_way)
            ));
        }
        Some(why.join("; "))
    }
}

/// What to do, from what was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    UpToDate,
    SkipDirty,
    /// Nothing on the branch that is not on the target, or a ref of batty's holds it all.
    Move,
    ParkThenMove,
}

/// `unlanded`: commits of `tip..head` not on the target by patch id; `merges`: merge commits
/// there (never matched by patch id, so they count as work); `held`: a ref of batty's already
/// reaches `head`.
fn decide(on_tip: bool, dirty: bool, unlanded: usize, merges: usize, held: bool) -> Step {
    if on_tip {
        Step::UpToDate
    } else if dirty {
        Step::SkipDirty
    } else if (unlanded == 0 && merges == 0) || held {
        Step::Move
    } else {
        Step::ParkThenMove
    }
}

/// Puts the agent's branch on the target tip before its next task, parking what did not land.
pub fn prepare_branch(p: &Prepare<'_>) -> Result<Prepared, MergeError> {
    let wt = Git::new(p.worktree);
    let (head, tip) = match p.head {
        Some(head) => (head.to_owned(), p.target_tip.to_owned()),
        None => {
            let current = wt.current_branch()?;
            if current.as_deref() != Some(p.branch) {
                return Err(MergeError::WrongBranch {
                    path: p.worktree.to_owned(),
                    branch: p.branch.to_owned(),
                    actual: match current {
                        Some(b) => format!("branch `{b}`"),
                        None => "a detached HEAD".into(),
                    },
                });
            }
            let tip = wt
                .commit(p.target_tip)?
                .ok_or_else(|| MergeError::NoCommit {
                    sha: p.target_tip.to_owned(),
                    branch: p.branch.to_owned(),
                })?;
            (wt.head()?, tip)
        }
    };
    // `reset --hard` overwrites untracked files in its way, so those count as work too; the
    // rest it leaves alone.
    let (changed, in_the_way) = if head == tip {
        (Vec::new(), Vec::new())
    } else {
        let (changed, untracked) = wt.changes()?;
        let in_the_way = wt.untracked_in_the_way(&tip, &untracked)?;
        (changed, in_the_way)
    };
    let dirty = !changed.is_empty() || !in_the_way.is_empty();
    let (mut unlanded, mut merges, mut held) = (0, 0, false);
    if head != tip && !dirty {
        unlanded = wt.unlanded(&tip, &tip, &head)?.len();
        merges = wt.merges_between(&tip, &head)?;
        if unlanded + merges > 0 {
            held = !wt
                .refs_containing(&refs::prefix(p.phase), &head)?
                .is_empty();
        }
    }
    let step = decide(head == tip, dirty, unlanded, merges, held);
    let parked = match step {
        Step::UpToDate => return Ok(Prepared::UpToDate),
        Step::SkipDirty => {
            return Ok(Prepared::Dirty {
                changed,
                in_the_way,
            });
        }
        Step::Move => None,
        Step::ParkThenMove => {
            let message = format!("batty: {} moved to the target", p.branch);
            if !wt.create_ref(p.park_as, &head, &message)? {
                // Never overwrite a ref that keeps other work: its name is taken.
                if wt.commit(p.park_as)?.as_deref() != Some(head.as_str()) {
                    return Err(MergeError::RefTaken {
                        name: p.park_as.to_owned(),
                    });
                }
            }
            Some(Parked {
                name: p.park_as.to_owned(),
                commits: unlanded,
            })
        }
    };
    wt.reset_hard(&tip)?;
    Ok(Prepared::Moved { to: tip, parked })
}

/// The outcome the supervisor of today matches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The branch already points at the target tip.
    UpToDate,
    /// The branch now points at the target tip; `parked` names the ref that keeps what did
    /// not land, when it had to be made.
    Reset { to: String, parked: Option<String> },
    /// Not produced any more: a branch is never rebased, its unlanded work is parked. Kept
    /// until the supervisor matches on [`Prepared`].
    Rebased { kept: usize, head: String },
    /// Uncommitted changes, or untracked files in the way: nothing was done. Try again when
    /// the agent has committed, or leave it; its next merge still works from the old base.
    SkippedDirty { files: Vec<String> },
    /// Not produced any more (see `Rebased`).
    Conflict { files: Vec<String> },
}

/// [`prepare_branch`] for a caller that knows no task: work no ref of batty's holds is parked
/// at `refs/batty/<phase>/rejected/<agent>-<short head>`. `branch` is `batty/<phase>/<agent>`.
pub fn sync_agent_worktree(
    worktree: &Path,
    branch: &str,
    new_target_tip: &str,
) -> Result<SyncOutcome, MergeError> {
    let (phase, agent) = branch
        .strip_prefix("batty/")
        .and_then(|rest| rest.rsplit_once('/'))
        .ok_or_else(|| MergeError::WrongBranch {
            path: worktree.to_owned(),
            branch: branch.to_owned(),
            actual: "a branch batty does not name `batty/<phase>/<agent>`".into(),
        })?;
    let head = Git::new(worktree).head()?;
    let park_as = format!(
        "{}rejected/{agent}-{}",
        refs::prefix(phase),
        &head[..head.len().min(10)]
    );
    let prepared = prepare_branch(&Prepare {
        worktree,
        branch,
        target_tip: new_target_tip,
        head: None,
        phase,
        park_as: &park_as,
    })?;
    Ok(match prepared {
        Prepared::UpToDate => SyncOutcome::UpToDate,
        Prepared::Moved { to, parked } => SyncOutcome::Reset {
            to,
            parked: parked.map(|p| p.name),
        },
        Prepared::Dirty {
            mut changed,
            in_the_way,
        } => {
            changed.extend(in_the_way);
            SyncOutcome::SkippedDirty { files: changed }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parking_decision() {
        // On the tip: nothing to do, even with files changed.
        assert_eq!(decide(true, true, 3, 0, false), Step::UpToDate);
        // Uncommitted work is never moved under.
        assert_eq!(decide(false, true, 0, 0, false), Step::SkipDirty);
        // Everything landed: just move.
        assert_eq!(decide(false, false, 0, 0, false), Step::Move);
        // Unlanded work a queue or rejected ref already keeps: just move.
        assert_eq!(decide(false, false, 2, 0, true), Step::Move);
        // Unlanded work nothing else keeps, or a merge commit: park it first.
        assert_eq!(decide(false, false, 2, 0, false), Step::ParkThenMove);
        assert_eq!(decide(false, false, 0, 1, false), Step::ParkThenMove);
    }
}
