//! One merge attempt: the task's commits applied onto the target's tip in the merge worktree,
//! the gate run on exactly that tree, then the target moved by compare-and-swap. Runs on the
//! supervisor's merge worker thread: owned inputs in, a plain outcome value out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::MergeError;
use super::gate;
use super::git::Git;
use super::journal::Journal;
use super::queue::MergeEntry;

/// Everything an attempt needs to know, cheap to clone onto the worker thread.
#[derive(Debug, Clone)]
pub struct MergeCtx {
    /// The main checkout.
    pub repo: PathBuf,
    /// `.batty/worktrees/<phase>/.merge`: detached, created on demand and reused.
    pub merge_worktree: PathBuf,
    /// Branch name (no `refs/heads/`).
    pub target: String,
    /// Shell command run in the merge worktree; `None` = no gate.
    pub gate: Option<String>,
    pub gate_timeout: Duration,
    /// Where `merge-<task>.log` files go: `.batty/logs/<phase>/`.
    pub logs_dir: PathBuf,
    /// `.batty/run/<phase>/merge-inflight.json`.
    pub journal: PathBuf,
}

impl MergeCtx {
    /// The context for `phase` with the project's standard paths.
    pub fn new(
        project: &crate::paths::Project,
        phase: &str,
        target: &str,
        config: &crate::config::MergeConfig,
    ) -> MergeCtx {
        MergeCtx {
            repo: project.root().to_owned(),
            merge_worktree: project.merge_worktree_dir(phase),
            target: target.to_owned(),
            gate: config.gate.clone().filter(|g| !g.trim().is_empty()),
            gate_timeout: config.gate_timeout,
            logs_dir: project.logs_dir(phase),
            journal: project.merge_journal(phase),
        }
    }

    /// `.batty/logs/<phase>/merge-<task>.log`: every attempt of the task, appended.
    pub fn log_path(&self, task: u64) -> PathBuf {
        self.logs_dir.join(format!("merge-{task}.log"))
    }
}

/// How an attempt ended. Only `Conflict` and `GateFailed` count toward `merge.max_retries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The target now points at `new_tip`, which carries `commits` new commits.
    Merged { new_tip: String, commits: usize },
    /// The task made no commits, or all of them are already on the target (by patch id).
    /// The supervisor treats it as landed: the task stays done.
    NothingToMerge,
    /// Applying the commits onto the target's tip conflicted in `files`; nothing was changed.
    Conflict { files: Vec<String> },
    /// The gate failed on the merged tree; `tail` holds its last lines, `log` all of them.
    GateFailed {
        status: String,
        tail: String,
        log: PathBuf,
    },
    /// The target moved while the attempt ran: nothing was changed; attempt again at once.
    TargetMoved,
    /// The target is checked out in `worktree` (usually the main checkout) with uncommitted
    /// changes to tracked `files` (or untracked files the merge would overwrite). Nothing was
    /// moved; attempt again later.
    MainDirty {
        worktree: PathBuf,
        files: Vec<String>,
    },
}

impl MergeOutcome {
    /// One line for the queue, the board and event logs.
    pub fn summary(&self) -> String {
        match self {
            MergeOutcome::Merged { new_tip, commits } => {
                format!("merged {commits} commit(s) as {}", short(new_tip))
            }
            MergeOutcome::NothingToMerge => "nothing to merge".into(),
            MergeOutcome::Conflict { files } => format!(
                "conflict in {}",
                files
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            MergeOutcome::GateFailed { status, tail, .. } => {
                let last = tail.lines().last().unwrap_or("");
                format!("gate failed ({status}): {last}")
            }
            MergeOutcome::TargetMoved => "target moved during the merge".into(),
            MergeOutcome::MainDirty { worktree, .. } => {
                format!("checkout {} has uncommitted changes", worktree.display())
            }
        }
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// Tries to land `entry` on `ctx.target`. Never touches the user's checkout except to
/// fast-forward a clean one that has the target checked out; never moves the target unless it
/// still points where the attempt started.
pub fn attempt(ctx: &MergeCtx, entry: &MergeEntry) -> Result<MergeOutcome, MergeError> {
    let repo = Git::new(&ctx.repo);
    let target_ref = format!("refs/heads/{}", ctx.target);
    let old = repo
        .commit(&target_ref)?
        .ok_or_else(|| MergeError::NoBranch {
            branch: ctx.target.clone(),
        })?;
    let missing = |sha: &str| MergeError::NoCommit {
        sha: sha.to_owned(),
        branch: entry.branch.clone(),
    };
    let tip = repo
        .commit(&entry.tip)?
        .ok_or_else(|| missing(&entry.tip))?;
    let base = repo
        .commit(&entry.base)?
        .ok_or_else(|| missing(&entry.base))?;

    let mut journal = Journal {
        task: entry.task,
        target: ctx.target.clone(),
        old_tip: old.clone(),
        candidate: None,
        gate_pgid: None,
    };
    let journal_io = |source| MergeError::Io {
        path: ctx.journal.clone(),
        source,
    };
    journal.save(&ctx.journal).map_err(journal_io)?;
    let log_path = ctx.log_path(entry.task);
    let mut log = Log::open(&log_path)?;

    let commits = repo.unmerged_commits(&old, &tip, &base)?;
    log.line(&format!(
        "== {} task #{} ({}, `{}`): {} commit(s) of {}..{} onto `{}` at {}",
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S"),
        entry.task,
        entry.agent,
        entry.branch,
        commits.len(),
        short(&base),
        short(&tip),
        ctx.target,
        short(&old)
    ));
    if commits.is_empty() {
        log.line("nothing to merge");
        return Ok(MergeOutcome::NothingToMerge);
    }

    let wt = prepare_worktree(ctx, &repo, &old)?;
    let picked = wt
        .cmd(["cherry-pick", "--allow-empty", "--empty=drop"])
        .args(&commits)
        .run();
    if let Err(err) = picked {
        let files = wt.conflicted_files()?;
        wt.scrub_to(&old)?;
        if files.is_empty() {
            return Err(wt.err(err));
        }
        let outcome = MergeOutcome::Conflict { files };
        log.line(&outcome.summary());
        return Ok(outcome);
    }
    let candidate = wt.read(["rev-parse", "HEAD"])?;
    if candidate == old {
        log.line("every commit was already on the target: nothing to merge");
        return Ok(MergeOutcome::NothingToMerge);
    }

    if let Some(gate_cmd) = &ctx.gate {
        log.line(&format!("== gate `{gate_cmd}` on {}", short(&candidate)));
        let env = [
            ("BATTY_MERGE_TASK", entry.task.to_string()),
            ("BATTY_MERGE_TARGET", ctx.target.clone()),
        ];
        let run = gate::run(
            gate_cmd,
            wt.dir(),
            &log_path,
            ctx.gate_timeout,
            &env,
            |pgid| {
                journal.gate_pgid = Some(pgid);
                // Best effort: without it a crash leaves the gate to finish on its own.
                let _ = journal.save(&ctx.journal);
            },
        )?;
        if !run.passed {
            wt.scrub_to(&old)?;
            return Ok(MergeOutcome::GateFailed {
                status: run.status,
                tail: run.tail,
                log: log_path,
            });
        }
        journal.gate_pgid = None;
    }

    // Written before the target can move: after a crash, recovery finds the candidate on the
    // target (landed) or not (try again), so the task lands exactly once.
    journal.candidate = Some(candidate.clone());
    journal.save(&ctx.journal).map_err(journal_io)?;
    let outcome = land(ctx, &repo, &target_ref, &old, &candidate, commits.len())?;
    log.line(&format!("== {}", outcome.summary()));
    Ok(outcome)
}

/// Moves the target from `old` to `candidate`, fast-forwarding the checkout that has it
/// checked out (if any) so its index and files follow.
fn land(
    ctx: &MergeCtx,
    repo: &Git,
    target_ref: &str,
    old: &str,
    candidate: &str,
    commits: usize,
) -> Result<MergeOutcome, MergeError> {
    let merged = MergeOutcome::Merged {
        new_tip: candidate.to_owned(),
        commits,
    };
    let moved = |repo: &Git| -> Result<bool, MergeError> {
        Ok(repo.commit(target_ref)?.as_deref() != Some(old))
    };
    let Some(checkout) = repo.worktree_of_branch(&ctx.target)? else {
        let message = format!("batty: merge into {}", ctx.target);
        return match repo
            .cmd(["update-ref", "-m", &message, target_ref, candidate, old])
            .run()
        {
            Ok(_) => Ok(merged),
            Err(_) if moved(repo)? => Ok(MergeOutcome::TargetMoved),
            Err(e) => Err(repo.err(e)),
        };
    };
    let co = Git::new(&checkout);
    // The board under `.batty/` changes with every task move; when it is committed to git
    // that would hold every merge forever. Those edits do not count as dirty: should a merge
    // touch them, `merge --ff-only` below refuses and names them.
    let files: Vec<String> = co
        .dirty_files(false)?
        .into_iter()
        .filter(|f| !f.starts_with(".batty/"))
        .collect();
    if !files.is_empty() {
        return Ok(MergeOutcome::MainDirty {
            worktree: checkout,
            files,
        });
    }
    if moved(repo)? {
        return Ok(MergeOutcome::TargetMoved);
    }
    // `merge --ff-only` updates files, index and branch together, refuses to overwrite
    // untracked files, and leaves everything as it was when it refuses.
    match co
        .cmd(["merge", "--ff-only", "--quiet", "--no-stat", candidate])
        .run()
    {
        Ok(_) => {
            if co.commit("HEAD")?.as_deref() == Some(candidate) {
                Ok(merged)
            } else {
                // Someone committed between our check and the merge: it fast-forwarded
                // nothing of ours onto a tip we did not gate.
                Ok(MergeOutcome::TargetMoved)
            }
        }
        Err(_) if moved(repo)? => Ok(MergeOutcome::TargetMoved),
        Err(e) => {
            let blocking = overwritten_files(e.stderr());
            if blocking.is_empty() {
                Err(co.err(e))
            } else {
                Ok(MergeOutcome::MainDirty {
                    worktree: checkout,
                    files: blocking,
                })
            }
        }
    }
}

/// The files git names when a merge would overwrite local files (tab-indented lines).
fn overwritten_files(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix('\t'))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The merge worktree, created if missing (or broken), detached on `at` and clean.
fn prepare_worktree(ctx: &MergeCtx, repo: &Git, at: &str) -> Result<Git, MergeError> {
    let path = &ctx.merge_worktree;
    let wt = Git::new(path);
    if is_worktree_root(&wt, path) {
        wt.scrub_to(at)?;
        return Ok(wt);
    }
    if path.exists() {
        // `.merge` is batty's own folder; a crash while creating it can leave it half made.
        std::fs::remove_dir_all(path).map_err(|source| MergeError::Io {
            path: path.clone(),
            source,
        })?;
    }
    repo.read(["worktree", "prune"])?;
    let mut add = repo.cmd(["worktree", "add", "--quiet", "--detach"]);
    add = add.arg(path).arg(at);
    add.run().map_err(|e| repo.err(e))?;
    Ok(wt)
}

/// True when `path` is the top of a working git checkout.
pub(crate) fn is_worktree_root(wt: &Git, path: &Path) -> bool {
    if !path.join(".git").exists() {
        return false;
    }
    match (
        wt.read(["rev-parse", "--show-toplevel"]),
        path.canonicalize(),
    ) {
        (Ok(top), Ok(canon)) => Path::new(&top).canonicalize().ok() == Some(canon),
        _ => false,
    }
}

/// The task's merge log, appended line by line.
struct Log {
    path: PathBuf,
    file: std::fs::File,
}

impl Log {
    fn open(path: &Path) -> Result<Log, MergeError> {
        let io = |source| MergeError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Log {
            path: path.to_owned(),
            file,
        })
    }

    /// A log line that cannot be written is not worth failing the merge for.
    fn line(&mut self, text: &str) {
        if let Err(e) = writeln!(self.file, "{text}") {
            tracing::warn!(log = %self.path.display(), "cannot write merge log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwritten_files_parses_git_message() {
        let stderr = "error: The following untracked working tree files would be overwritten \
                      by merge:\n\ta.txt\n\tdir/b.txt\nPlease move or remove them before you \
                      merge.\nAborting\n";
        assert_eq!(overwritten_files(stderr), ["a.txt", "dir/b.txt"]);
    }
}
