//! `batty merge <phase> --list | --retry ID` through the built binary.

use crate::common::Sandbox;
use batty::merge::{EntryState, MergeQueue, queue_file};
use batty::paths::Project;

/// A sandbox with `.batty/` and a queue: #3 failed once on a conflict, #5 waiting, #8 merged.
fn with_queue() -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path(".batty")).unwrap();
    let file = queue_file(&Project::new(&sb.repo), "v1");
    MergeQueue::update(&file, |q| {
        q.push(3, "brave-otter", "batty/v1/brave-otter", "aaa", "bbb");
        q.push(5, "ox", "batty/v1/ox", "aaa", "ccc");
        q.push(8, "ox", "batty/v1/ox", "ccc", "ddd");
        q.mark_merging(3)?;
        q.mark_failed(3, "conflict in `src/lib.rs`".into())?;
        q.mark_merged(8, Some("eee"), None)
    })
    .unwrap();
    (sb, file)
}

#[test]
fn list_shows_every_entry_with_its_reason() {
    let (sb, _) = with_queue();
    for args in [&["merge", "v1", "--list"][..], &["merge", "v1"][..]] {
        let out = sb.batty(args).ok();
        assert_eq!(
            out.stdout,
            "TASK  AGENT        STATE    FAILS  REASON\n\
             #3    brave-otter  failed   1      conflict in `src/lib.rs`\n\
             #5    ox           waiting  0\n\
             #8    ox           merged   0\n"
        );
        assert_eq!(out.stderr, "");
    }
}

#[test]
fn list_of_a_phase_without_a_queue_says_empty() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path(".batty/kanban/v2")).unwrap();
    let out = sb.batty(["merge", "v2", "--list"]).ok();
    assert_eq!(out.stdout, "merge queue of `v2` is empty\n");
}

#[test]
fn retry_requeues_a_failed_task_with_a_fresh_budget() {
    let (sb, file) = with_queue();
    let out = sb.batty(["merge", "v1", "--retry", "3"]).ok();
    assert_eq!(out.stdout, "task #3 is back in the merge queue of `v1`\n");
    let q = MergeQueue::load(&file).unwrap();
    let e = q.get(3).unwrap();
    assert_eq!(
        (e.state, e.attempts, e.reason.as_deref()),
        (EntryState::Waiting, 0, None)
    );
    assert_eq!(
        q.next_waiting().unwrap().task,
        3,
        "it keeps its place at the front"
    );
}

#[test]
fn retry_refuses_unknown_and_merged_tasks() {
    let (sb, file) = with_queue();
    let before = std::fs::read_to_string(&file).unwrap();
    sb.batty(["merge", "v1", "--retry", "99"])
        .fails(1)
        .error_mentions("no task #99 in the merge queue");
    sb.batty(["merge", "v1", "--retry", "8"])
        .fails(1)
        .error_mentions("task #8 is merged");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "nothing changed"
    );
}

#[test]
fn bad_input_is_a_user_error() {
    let (sb, file) = with_queue();
    sb.batty(["merge", "a/b", "--list"])
        .fails(1)
        .error_mentions("invalid phase name `a/b`");
    sb.batty(["merge", "v1", "--list", "--retry", "3"]).fails(1);
    std::fs::write(&file, "{broken").unwrap();
    sb.batty(["merge", "v1"])
        .fails(1)
        .error_mentions("v1/merge.json");
}

#[test]
fn status_shows_the_queue_with_reasons_and_leaves_landed_tasks_out() {
    let (sb, _) = with_queue();
    sb.write(
        ".batty/run/v1/state.json",
        r#"{"phase": "v1", "base": "main", "parallel": 0, "agents": []}"#,
    );
    let out = sb.batty(["status", "v1"]).ok();
    assert!(
        out.stdout
            .contains("merge #3 (brave-otter) failed: conflict in `src/lib.rs`\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("merge #5 (ox) waiting\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("merge #8"), "{}", out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&sb.batty(["status", "v1", "--json"]).ok().stdout).unwrap();
    let queue = &json["phases"][0]["merge_queue"];
    assert_eq!(queue.as_array().map(Vec::len), Some(2), "{json}");
    assert_eq!(queue[0]["task"], 3);
    assert_eq!(queue[0]["state"], "failed");
}
