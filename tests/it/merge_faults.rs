//! Failures of batty's own machinery in the merge queue, end to end: a merge that fails for
//! lack of disk space stays in the queue, is retried with backoff once space returns, lands
//! once, and never sends the task back to its agent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::e2e5::{DEADLINE, E2e, PHASE, Setup};
use crate::common::wait_until;
use batty::merge::EntryState;

/// A small tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts one at `at` (an empty folder), or says why it cannot.
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs(at.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status();
        if !ok.is_ok_and(|s| s.success()) {
            // Busy (a process still in it): detach it now, the kernel frees it later.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Writes zeros to `file` until the disk refuses.
fn fill(file: &Path) {
    let mut f = std::fs::File::create(file).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn a_merge_that_fails_for_lack_of_disk_space_is_retried_once_space_returns_and_lands_once() {
    let e = E2e::new();
    e.configure(Setup::default());
    // The filler must outlive the merge worktree's scrub (`git clean` keeps ignored files).
    let exclude = e.sb.path(".git/info/exclude");
    let mut text = std::fs::read_to_string(&exclude).unwrap_or_default();
    text.push_str("/.fill\n");
    std::fs::write(&exclude, text).unwrap();
    let merge_wt = e.sb.path(format!(".batty/worktrees/{PHASE}/.merge"));
    let _disk = match Tmpfs::mount(&merge_wt, "1m") {
        Ok(m) => m,
        // Root can always mount one (CI runs as root): failing to is a failure, never a pass.
        // SAFETY: geteuid only reads this process's user id.
        Err(why) if unsafe { libc::geteuid() } == 0 => {
            panic!("cannot mount a tmpfs for the merge worktree as root: {why}")
        }
        Err(why) => {
            eprintln!("skipped: not root, cannot mount a tmpfs for the merge worktree ({why})");
            return;
        }
    };
    let first = e.add_task("first");
    e.work(1, false);
    wait_until("the first task merged", DEADLINE, || {
        (e.queue_state(first) == Some(EntryState::Merged)).then_some(())
    });
    // The merge worktree lives on the tmpfs; now it is full.
    let filler = merge_wt.join(".fill");
    fill(&filler);

    let second = e.add_task("second");
    let entry = wait_until("the merge to fail for want of space", DEADLINE, || {
        e.queue().get(second).filter(|x| x.faults >= 1).cloned()
    });
    assert_eq!(entry.state, EntryState::Waiting, "{entry:?}");
    assert_eq!(entry.attempts, 0, "not counted against the task");
    assert!(entry.retry_at_ms.is_some(), "{entry:?}");
    let reason = entry.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("batty's own failure, not the task's")
            && reason.contains(&format!(
                "the disk holding `{}` is full",
                merge_wt.display()
            )),
        "{reason}"
    );
    // People see it, with when the next try is.
    let list = e.sb.batty(["merge", PHASE, "--list"]).ok().stdout;
    assert!(
        list.contains(&format!("#{second}")) && list.contains("next at"),
        "{list}"
    );
    let status = e.sb.batty(["status", PHASE]).ok().stdout;
    assert!(
        status.contains(&format!("merge #{second} (")) && status.contains("is full"),
        "{status}"
    );
    assert_eq!(e.landed(second), 0);
    assert_eq!(
        e.task_status(second),
        "done",
        "the agent keeps its work done"
    );

    std::fs::remove_file(&filler).unwrap();
    wait_until(
        "the second task merged once space returned",
        DEADLINE,
        || (e.queue_state(second) == Some(EntryState::Merged)).then_some(()),
    );
    assert_eq!(e.landed(first), 1);
    assert_eq!(e.landed(second), 1, "landed once");
    let events = e.events();
    assert!(!events.contains("sent back"), "{events}");
    assert!(
        events.contains(&format!("task #{second}: batty's own failure")),
        "{events}"
    );
    assert_eq!(e.queue().merged_count(), 2);
    let log = std::fs::read_to_string(e.logs_dir().join(format!("merge-{second}.log"))).unwrap();
    assert!(log.contains("== not merged: the disk holding"), "{log}");
    e.assert_tidy();
    e.stop();
}
