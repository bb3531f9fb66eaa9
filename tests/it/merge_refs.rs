//! A task's work is its own commit range, end to end: work rejected for good is moved off the
//! agent's branch to a ref of its own, never reaches the target and is never lost (not even
//! by `stop --clean` without `--force`); a redone task lands once; `stop --clean --force`
//! leaves nothing of the merge queue behind.

use crate::common::e2e5::{DEADLINE, E2e, PHASE, Setup, gate_saw};
use crate::common::wait_until;
use batty::merge::EntryState;

#[test]
fn rejected_work_is_parked_on_its_ref_never_lands_and_is_kept_until_clean_force() {
    let e = E2e::new();
    // The gate rejects task 1 for good; everything else passes.
    e.configure(Setup {
        gate: Some("test \"$BATTY_MERGE_TASK\" != 1 || { echo 'task 1 is rejected'; exit 1; }"),
        max_attempts: 1,
        ..Setup::default()
    });
    let rejected = e.add_task("rejected");
    assert_eq!(rejected, 1);
    e.work(1, false);
    wait_until("task 1 in review", DEADLINE, || {
        (e.task_status(rejected) == "review").then_some(())
    });
    let kept = format!("refs/batty/{PHASE}/rejected/{rejected}-1");
    let reason = e.task(rejected)["block_reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains(&format!("its commits are kept at `{kept}`")),
        "{reason}"
    );
    let parked = e.sb.git(["rev-parse", &kept]);
    assert!(
        e.sb.git(["for-each-ref", &format!("refs/batty/{PHASE}/queue/")])
            .is_empty(),
        "the queue no longer holds rejected work"
    );

    // The agent is Aider, say: it leaves files of its own in the worktree, untracked. They
    // do not keep the branch off the target, and they stay.
    let (_, worktree, _) = e.agents()[0].clone();
    let aider = [
        (".aider.chat.history.md", "# aider chat started\n"),
        (".aider.input.history", "+/add demo\n"),
    ];
    for (path, text) in aider {
        std::fs::write(worktree.join(path), text).unwrap();
    }

    // Two more tasks, one after the other: the agent's branch leaves the rejected work behind.
    let mut later = Vec::new();
    for title in ["second", "third"] {
        let id = e.add_task(title);
        wait_until("the task merged", DEADLINE, || {
            (e.queue_state(id) == Some(EntryState::Merged)).then_some(())
        });
        later.push(id);
    }
    let agent = e.queue().get(later[0]).unwrap().branch.clone();
    for &id in &later {
        assert_eq!(e.landed(id), 1, "task #{id}");
    }
    assert_eq!(e.landed(rejected), 0);
    assert_eq!(
        e.sb.git(["log", "--format=%s", "main", "--", "demo/task-1.txt"]),
        "",
        "the target never held the rejected work"
    );
    assert_eq!(
        e.sb.git(["show", &format!("{kept}:demo/task-1.txt")]),
        "rejected"
    );
    assert_eq!(e.sb.git(["rev-parse", &kept]), parked, "kept as it was");
    let on_branch =
        e.sb.git(["branch", "--contains", &parked, "--format=%(refname:short)"]);
    assert!(!on_branch.contains(&agent), "still on {agent}: {on_branch}");
    assert_eq!(e.queue().merged_count(), 2);
    let events = e.events();
    assert!(!events.contains("not moved to the target"), "{events}");
    for (path, text) in aider {
        assert_eq!(std::fs::read_to_string(worktree.join(path)).unwrap(), text);
    }

    // Cleaning up would lose it: refused, naming the ref, unless forced.
    let out = e.sb.batty(["stop", PHASE, "--clean"]).fails(1);
    out.error_mentions(&format!("merge queue `{kept}`: 1 commit(s) not on `main`"));
    assert!(e.session_alive(), "a refused clean stops nothing");
    assert_eq!(e.sb.git(["rev-parse", &kept]), parked);

    let out = e.sb.batty(["stop", PHASE, "--clean", "--force"]).ok();
    assert!(
        out.stdout.contains("removed the merge queue"),
        "{}",
        out.stdout
    );
    let merge_wt = e.sb.path(format!(".batty/worktrees/{PHASE}/.merge"));
    assert!(!merge_wt.exists(), "the merge worktree is gone");
    let list = e.sb.git(["worktree", "list", "--porcelain"]);
    assert!(!list.contains(".merge"), "still registered: {list}");
    assert_eq!(list.matches("worktree ").count(), 1, "{list}");
    let run = e.sb.path(format!(".batty/run/{PHASE}"));
    let left: Vec<String> = std::fs::read_dir(&run)
        .map(|d| {
            d.flatten()
                .map(|f| f.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("merge"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "merge files left: {left:?}");
    assert_eq!(
        e.sb.git(["for-each-ref", &format!("refs/batty/{PHASE}/")]),
        ""
    );
}

/// The agent commits task 2 but forgets to report it; reminded, it does the work again (a new
/// commit) and reports it. Its merge is exactly its own work, gated once, and lands once; the
/// task the same agent had rejected for good before never rides along.
#[test]
fn a_task_redone_after_a_reminder_lands_once() {
    let e = E2e::new();
    let gate_log = e.outside("gate.log");
    let gate = gate_saw(
        &gate_log,
        "test \"$BATTY_MERGE_TASK\" != 1 || { echo 'task 1 is rejected'; exit 1; }",
    );
    e.configure(Setup {
        gate: Some(&gate),
        max_attempts: 1,
        demo_args: &["--forget-done", "2", "--content", "{title}, take {n}\\n"],
        ..Setup::default()
    });
    let rejected = e.add_task("rejected");
    let id = e.add_task("forgetful");
    e.work(1, true);
    e.wait_session_end();
    let events = e.events();
    assert!(
        events.contains(&format!("reminded about task #{id}")),
        "{events}"
    );
    assert_eq!(e.task_status(rejected), "review");
    assert_eq!(e.task_status(id), "done");
    // Both of its commits (the forgotten one and the redo) are its own: one merge, one gate.
    assert_eq!(e.landed(id), 2, "{events}");
    assert_eq!(
        e.gate_saw(&gate_log),
        [
            (rejected, vec!["demo/task-1.txt".to_owned()]),
            (id, vec!["demo/task-2.txt".to_owned()])
        ]
    );
    assert_eq!(
        e.sb.git(["show", "main:demo/task-2.txt"]),
        "forgetful, take 2"
    );
    assert_eq!(e.landed(rejected), 0);
    assert_eq!(
        e.sb.git(["log", "--format=%s", "main", "--", "demo/task-1.txt"]),
        ""
    );
    assert_eq!(e.queue().merged_count(), 1);
    let summary = std::fs::read_to_string(e.logs_dir().join("summary.txt")).unwrap();
    assert!(
        summary.contains("2 tasks: 1 done (1 merged on `main`)"),
        "the summary counts every merge: {summary}"
    );
    e.assert_tidy();
}
