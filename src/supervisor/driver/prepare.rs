//! Making an agent's worktree ready for its next attempt ([`Effect::Prepare`]): its branch put
//! on the target tip (what did not land parked first), or, when the attempt continues an
//! earlier one, left as it is with that attempt's commits listed for the note.
//!
//! [`Effect::Prepare`]: super::super::event::Effect::Prepare

use crate::git::Git;
use crate::merge::{Prepare, Prepared};

use super::super::event::Ready;
use super::Driver;

/// Commits of a continued attempt read for its note (one more than it shows, so it can say
/// that there are more).
const NOTE_COMMITS: &str = "21";

/// The worktree ready for an attempt, and the commit it starts on.
pub(super) fn prepare(
    d: &mut Driver<'_>,
    agent: &str,
    task: u64,
    park_ref: Option<String>,
    resume_from: Option<String>,
) -> Result<Ready, String> {
    let io = d.agents.get(agent).ok_or("the agent left the run state")?;
    let worktree = io.record.worktree.clone();
    let branch = io.record.branch.clone();
    let wt = Git::new(&worktree);
    // One git call reads the branch checked out, its commit and the target's tip. The usual
    // case ends here: the branch is already on the tip (what `prepare_branch` would find up
    // to date). Otherwise what it read is not read again.
    let heads = match (&resume_from, &d.merge) {
        (None, Some(m)) => wt
            .heads(&format!("refs/heads/{}", m.target()))
            .filter(|h| h.branch == format!("refs/heads/{branch}")),
        _ => None,
    };
    if let Some(h) = &heads
        && h.head == h.target
    {
        return Ok(Ready::at(h.target.clone()));
    }
    let head = match &heads {
        Some(h) => h.head.clone(),
        None => wt.head().map_err(|e| e.to_string())?,
    };
    if let Some(base) = resume_from {
        // The attempt continues the earlier one's commits on this branch: its note lists them.
        let range = format!("{base}..{head}");
        let commits = wt
            .read(["log", "--format=%h %s", "-n", NOTE_COMMITS, &range])
            .map(|out| out.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        return Ok(Ready { base, commits });
    }
    let Some(m) = &d.merge else {
        return Ok(Ready::at(head));
    };
    let repo = Git::new(m.repo());
    let target = m.target().to_owned();
    let tip = match &heads {
        Some(h) => h.target.clone(),
        None => repo.branch_tip(&target).map_err(|e| e.to_string())?,
    };
    let park_as = park_ref
        .unwrap_or_else(|| format!("refs/batty/{}/rejected/{agent}-before-{task}", d.phase));
    let phase = d.phase.clone();
    let move_to = |tip: &str, head: Option<&str>| {
        crate::merge::prepare_branch(&Prepare {
            worktree: &worktree,
            branch: &branch,
            target_tip: tip,
            head,
            phase: &phase,
            park_as: &park_as,
        })
    };
    let known = heads.as_ref().map(|h| h.head.as_str());
    let mut prepared = move_to(&tip, known);
    if let Ok(Prepared::Moved {
        parked: Some(p), ..
    }) = &prepared
        && let Some(now) = landed_meanwhile(&repo, &target, &tip, &p.name)
    {
        // The merge worker landed this agent's last task between the read of the tip and
        // the park (it lets go of the task's queue ref right after landing): nothing was
        // lost, so nothing stays parked, and the attempt starts on the tip with that work.
        let _ = repo.delete_ref(&p.name);
        prepared = move_to(&now, None);
    }
    match prepared {
        Ok(Prepared::UpToDate) => Ok(Ready::at(tip)),
        Ok(Prepared::Moved { to, parked }) => {
            if let Some(p) = parked {
                let text = format!(
                    "{} commit(s) that did not land moved off the branch to {}",
                    p.commits, p.name
                );
                d.log(Some(agent), &text, false);
            }
            Ok(Ready::at(to))
        }
        Ok(dirty @ Prepared::Dirty { .. }) => {
            let text = format!(
                "worktree not moved to the target: {}; the attempt starts from its current commit",
                dirty.not_moved_because().unwrap_or_default()
            );
            d.log(Some(agent), &text, false);
            Ok(Ready::at(head))
        }
        Err(err) => Err(err.to_string()),
    }
}

/// The target's tip now, when it moved past `tip` and holds everything the ref `parked`
/// keeps (by patch id): the parked work landed meanwhile.
fn landed_meanwhile(repo: &Git, target: &str, tip: &str, parked: &str) -> Option<String> {
    let now = repo.branch_tip(target).ok()?;
    if now == tip {
        return None;
    }
    let kept = repo.commit(parked).ok()??;
    let target_ref = format!("refs/heads/{target}");
    repo.unlanded(&target_ref, tip, &kept)
        .ok()?
        .is_empty()
        .then_some(now)
}
