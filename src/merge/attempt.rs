//! One merge attempt: exactly the task's range `base..head` (what of it is not on the target
//! yet) applied onto the target's tip in the merge worktree, the gate run on exactly that tree,
//! then the target moved by compare-and-swap. Runs on the supervisor's merge worker thread:
//! owned inputs in, a plain outcome value out, whatever happens inside (a panic included).

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::git::{Git, Picked};

use super::journal::Journal;
use super::lock::AttemptLock;
use super::queue::MergeEntry;
use super::{MergeError, disk, gate, refs};

/// Everything an attempt needs to know, cheap to clone onto the worker thread.
#[derive(Debug, Clone)]
pub struct MergeCtx {
    /// The main checkout.
    pub repo: PathBuf,
    /// The phase, for batty's refs (`refs/batty/<phase>/...`).
    pub phase: String,
    /// `.batty/run/<phase>/merge.json`: an attempt holds its attempt lock while it runs.
    pub queue: PathBuf,
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
            phase: phase.to_owned(),
            queue: project.merge_queue_file(phase),
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

/// How the gate ran in an attempt, for the attempt record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateReport {
    /// The command line that ran (the config may have changed since).
    pub command: String,
    pub took: Duration,
    /// `None` when it did not exit by itself (a signal, the time limit).
    pub exit_code: Option<i32>,
}

/// How an attempt ended. Only `Conflict` and `GateFailed` count toward `merge.max_retries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The target now points at `new_tip`, which carries `commits` new commits; `gate` is how
    /// the gate ran (`None`: no gate).
    Merged {
        new_tip: String,
        commits: usize,
        gate: Option<GateReport>,
    },
    /// The task made no commits, or all of them are already on the target (by patch id).
    /// The supervisor treats it as landed: the task stays done.
    NothingToMerge,
    /// Applying the commits onto the target's tip conflicted in `files`; nothing was changed.
    /// `kept`: the ref the rejected work was moved to (`refs/batty/<phase>/rejected/...`).
    Conflict {
        files: Vec<String>,
        kept: Option<String>,
    },
    /// The gate failed on the merged tree; `tail` holds its last lines, `log` all of them.
    GateFailed {
        status: String,
        tail: String,
        log: PathBuf,
        kept: Option<String>,
        gate: GateReport,
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
            MergeOutcome::Merged {
                new_tip, commits, ..
            } => {
                format!("merged {commits} commit(s) as {}", short(new_tip))
            }
            MergeOutcome::NothingToMerge => "nothing to merge".into(),
            MergeOutcome::Conflict { files, .. } => format!(
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
/// still points where the attempt started. Holds the queue's attempt lock while it runs, so no
/// entry is taken for `merging` once the attempt has ended, however it ended.
pub fn attempt(ctx: &MergeCtx, entry: &MergeEntry) -> Result<MergeOutcome, MergeError> {
    let _running = AttemptLock::take(&ctx.queue)?;
    let result = match std::panic::catch_unwind(AssertUnwindSafe(|| run(ctx, entry))) {
        Ok(result) => result,
        Err(panic) => Err(MergeError::Panicked {
            task: entry.task,
            message: panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into()),
        }),
    };
    let result = result.map_err(|err| blame_the_disk(ctx, err));
    if let Err(err) = &result
        && let Ok(mut log) = Log::open(&ctx.log_path(entry.task))
    {
        // Without it the log of a failed attempt holds only its header.
        log.line(&format!("== not merged: {err}"));
    }
    result
}

/// A failure of batty's own on a full disk says so: "git failed" alone does not tell a person
/// what to fix.
fn blame_the_disk(ctx: &MergeCtx, err: MergeError) -> MergeError {
    if matches!(err, MergeError::DiskFull { .. }) || err.fault() != super::Fault::Machinery {
        return err;
    }
    match disk_full(ctx) {
        Some((path, free)) => MergeError::DiskFull {
            path,
            free,
            cause: err.to_string(),
        },
        None => err,
    }
}

fn disk_full(ctx: &MergeCtx) -> Option<(PathBuf, u64)> {
    disk::full(&[&ctx.merge_worktree, &ctx.repo, &ctx.logs_dir])
}

fn run(ctx: &MergeCtx, entry: &MergeEntry) -> Result<MergeOutcome, MergeError> {
    let repo = Git::new(&ctx.repo);
    let target_ref = format!("refs/heads/{}", ctx.target);
    let mut shas = repo
        .commits(&[&target_ref, &entry.tip, &entry.base])?
        .into_iter();
    let old = shas.next().flatten().ok_or_else(|| MergeError::NoBranch {
        branch: ctx.target.clone(),
    })?;
    let missing = |sha: &str| MergeError::NoCommit {
        sha: sha.to_owned(),
        branch: entry.branch.clone(),
    };
    let tip = shas.next().flatten().ok_or_else(|| missing(&entry.tip))?;
    let base = shas.next().flatten().ok_or_else(|| missing(&entry.base))?;

    let mut journal = Journal {
        task: entry.task,
        target: ctx.target.clone(),
        old_tip: old.clone(),
        tip: Some(tip.clone()),
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
    // The queue's hold on the work, whoever queued it: from here the agent's branch may move.
    refs::hold(&ctx.repo, &ctx.phase, entry.task, &tip)?;

    let commits = repo.unlanded(&old, &base, &tip)?;
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
        release(ctx, entry.task, &mut log);
        return Ok(MergeOutcome::NothingToMerge);
    }

    let wt = prepare_worktree(ctx, &repo, &old)?;
    match wt.cherry_pick(&commits) {
        Ok(Picked::Applied) => {}
        Ok(Picked::Conflict { files }) => {
            wt.scrub_to(&old)?;
            let kept = park(ctx, &repo, entry.task, &tip, &mut log);
            let outcome = MergeOutcome::Conflict { files, kept };
            log.line(&outcome.summary());
            return Ok(outcome);
        }
        Err(err) => {
            // The failure is the news; a scrub that fails too is retried by the next attempt.
            let _ = wt.scrub_to(&old);
            return Err(err.into());
        }
    }
    let candidate = wt.head()?;
    if candidate == old {
        log.line("every commit was already on the target: nothing to merge");
        release(ctx, entry.task, &mut log);
        return Ok(MergeOutcome::NothingToMerge);
    }

    let mut gated = None;
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
        let report = GateReport {
            command: gate_cmd.clone(),
            took: run.took,
            exit_code: run.code,
        };
        if !run.passed {
            wt.scrub_to(&old)?;
            // A gate that fails on a full disk may have failed for want of space: the task
            // is not to blame until it fails with room to spare.
            if let Some((path, free)) = disk_full(ctx) {
                return Err(MergeError::DiskFull {
                    path,
                    free,
                    cause: format!("the gate failed ({}) with the disk full", run.status),
                });
            }
            let kept = park(ctx, &repo, entry.task, &tip, &mut log);
            return Ok(MergeOutcome::GateFailed {
                status: run.status,
                tail: run.tail,
                log: log_path,
                kept,
                gate: report,
            });
        }
        journal.gate_pgid = None;
        gated = Some(report);
    }

    // Written before the target can move: after a crash, recovery finds the candidate on the
    // target (landed) or not (try again), so the task lands exactly once.
    journal.candidate = Some(candidate.clone());
    journal.save(&ctx.journal).map_err(journal_io)?;
    let merged = MergeOutcome::Merged {
        new_tip: candidate.clone(),
        commits: commits.len(),
        gate: gated,
    };
    let outcome = land(ctx, &repo, &target_ref, &old, &candidate, merged)?;
    log.line(&format!("== {}", outcome.summary()));
    if matches!(outcome, MergeOutcome::Merged { .. }) {
        release(ctx, entry.task, &mut log);
    }
    Ok(outcome)
}

/// The task's work landed: the queue no longer holds it. A ref left behind only keeps
/// commits alive, so failing to delete it is logged, not fatal.
fn release(ctx: &MergeCtx, task: u64, log: &mut Log) {
    if let Err(err) = refs::release(&ctx.repo, &ctx.phase, task) {
        log.line(&format!("cannot drop the queue's ref: {err}"));
    }
}

/// Moves the rejected work from the queue's ref to a rejected ref of its own. Should that
/// fail, the queue's ref keeps holding it.
fn park(ctx: &MergeCtx, repo: &Git, task: u64, tip: &str, log: &mut Log) -> Option<String> {
    match refs::park_rejected(repo, &ctx.phase, task, tip) {
        Ok(name) => {
            log.line(&format!("rejected work kept at `{name}`"));
            Some(name)
        }
        Err(err) => {
            log.line(&format!(
                "cannot keep the rejected work at its own ref: {err}"
            ));
            None
        }
    }
}

/// Moves the target from `old` to `candidate`, fast-forwarding the checkout that has it
/// checked out (if any) so its index and files follow.
fn land(
    ctx: &MergeCtx,
    repo: &Git,
    target_ref: &str,
    old: &str,
    candidate: &str,
    merged: MergeOutcome,
) -> Result<MergeOutcome, MergeError> {
    let moved = |repo: &Git| -> Result<bool, MergeError> {
        Ok(repo.commit(target_ref)?.as_deref() != Some(old))
    };
    let Some(checkout) = repo.worktree_of_branch(&ctx.target)? else {
        let message = format!("batty: merge into {}", ctx.target);
        return if repo.move_ref(target_ref, candidate, old, &message)? {
            Ok(merged)
        } else {
            Ok(MergeOutcome::TargetMoved)
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
    match co.merge_ff_only(candidate) {
        Ok(()) => {
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
                Err(e.into())
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
    // `.merge` is batty's own folder; a crash while creating it can leave it half made. Its
    // contents go, the folder stays: it may be a mount point (a faster or bigger disk).
    if path.exists() {
        empty_folder(path)?;
    }
    repo.worktree_prune()?;
    repo.worktree_add_detached(path, at)?;
    Ok(wt)
}

fn empty_folder(path: &Path) -> Result<(), MergeError> {
    let io = |source| MergeError::Io {
        path: path.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let p = entry.path();
        if entry.file_type().map_err(io)?.is_dir() {
            std::fs::remove_dir_all(&p).map_err(io)?;
        } else {
            std::fs::remove_file(&p).map_err(io)?;
        }
    }
    Ok(())
}

/// True when `path` is the top of a working git checkout.
pub(crate) fn is_worktree_root(wt: &Git, path: &Path) -> bool {
    if !path.join(".git").exists() {
        return false;
    }
    match (wt.toplevel(), path.canonicalize()) {
        (Ok(top), Ok(canon)) => top.canonicalize().ok() == Some(canon),
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
