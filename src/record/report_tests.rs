//! `build` on a board and a record that hold one task in each state a report distinguishes,
//! and the markdown rendering of it as a snapshot.

use std::collections::BTreeSet;

use super::*;
use crate::record::entry::{EndOutcome, MergeResult, RunAction};
use crate::record::history::tests::{delivered, ended, merge, review, run, t};

pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub board: Board,
    pub entries: Vec<Entry>,
    pub on_target: BTreeSet<String>,
}

fn task_file(id: u64, title: &str, status: &str, extra: &str) -> String {
    format!("---\nid: {id}\ntitle: {title}\nstatus: {status}\npriority: medium\n{extra}---\n")
}

/// One task per report status, and a record of how they got there.
pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let board_dir = dir.path().join("v1");
    std::fs::create_dir_all(board_dir.join("tasks")).unwrap();
    std::fs::write(
        board_dir.join("config.yml"),
        crate::board::default_config_yml("v1"),
    )
    .unwrap();
    let tasks = [
        (1, "Parse the config", "done", ""),
        (2, "Add the gate | and pipes", "done", ""),
        (
            3,
            "Fix the login",
            "review",
            "blocked: true\nblock_reason: 'merge failed 3 times; last: conflict in `src/a.rs`'\n",
        ),
        (4, "Write the docs", "todo", "depends_on:\n    - 3\n"),
        (
            5,
            "Refactor \u{1b}]2;pwned\u{7} the loop",
            "in-progress",
            "claimed_by: fox\nclaimed_at: 2026-05-28T20:40:00Z\n",
        ),
        (6, "Clean up", "done", ""),
        (7, "Later", "backlog", ""),
        (
            8,
            "Pick a license",
            "todo",
            "blocked: true\nblock_reason: needs a decision\n",
        ),
        (9, "Bump versions", "done", ""),
        (10, "Flaky test", "todo", ""),
        (11, "Typo", "done", ""),
    ];
    for (id, title, status, extra) in tasks {
        let title = serde_json::to_string(title).unwrap();
        std::fs::write(
            board_dir.join("tasks").join(format!("{id:03}-task.md")),
            task_file(id, &title, status, extra),
        )
        .unwrap();
    }
    let board = Board::load(&board_dir).unwrap();
    assert!(board.problems().is_empty(), "{:?}", board.problems());
    let entries = vec![
        run(0, RunAction::Start, 100),
        delivered(0, 1, 1, "brave-otter"),
        delivered(0, 2, 1, "fox"),
        ended(60, 1, 1, "brave-otter", EndOutcome::Done, None),
        merge(70, 1, 1, "brave-otter", MergeResult::Merged, None),
        ended(90, 2, 1, "fox", EndOutcome::Done, None),
        merge(
            100,
            2,
            1,
            "fox",
            MergeResult::GateRed,
            Some("running 3 tests\ntest parse ... FAILED\n"),
        ),
        delivered(101, 2, 2, "fox"),
        delivered(100, 3, 1, "brave-otter"),
        ended(
            160,
            3,
            1,
            "brave-otter",
            EndOutcome::AgentDied,
            Some("Segmentation fault"),
        ),
        ended(200, 2, 2, "fox", EndOutcome::Done, None),
        merge(210, 2, 2, "fox", MergeResult::Merged, None),
        delivered(220, 3, 2, "fox"),
        ended(300, 3, 2, "fox", EndOutcome::Done, None),
        merge(310, 3, 2, "fox", MergeResult::Conflict, Some("src/a.rs")),
        review(311, 3, "merge failed 3 times; last: conflict in `src/a.rs`"),
        delivered(320, 6, 1, "brave-otter"),
        ended(400, 6, 1, "brave-otter", EndOutcome::Done, None),
        merge(410, 6, 1, "brave-otter", MergeResult::Merged, None),
        delivered(420, 9, 1, "brave-otter"),
        ended(500, 9, 1, "brave-otter", EndOutcome::Done, None),
        delivered(500, 10, 1, "brave-otter"),
        ended(
            560,
            10,
            1,
            "brave-otter",
            EndOutcome::HangTimeout,
            Some("no output for 10m"),
        ),
        delivered(600, 11, 1, "brave-otter"),
        ended(630, 11, 1, "brave-otter", EndOutcome::Done, None),
        merge(640, 11, 1, "brave-otter", MergeResult::Nothing, None),
        // The supervisor is killed; the next one takes task 5 as its second attempt.
        delivered(700, 5, 1, "brave-otter"),
        run(1000, RunAction::Start, 101),
        delivered(1000, 5, 2, "fox"),
        // A task since deleted from the board.
        delivered(1010, 99, 1, "brave-otter"),
        ended(1020, 99, 1, "brave-otter", EndOutcome::Released, None),
    ];
    // Task 6 landed, but the target was reset since.
    let on_target = ["landed1", "landed2", "landed11"]
        .map(String::from)
        .into_iter()
        .collect();
    Fixture {
        _dir: dir,
        board,
        entries,
        on_target,
    }
}

pub(crate) fn report(f: &Fixture) -> Report {
    build(&Inputs {
        phase: "v1",
        target: "main",
        entries: &f.entries,
        board: &f.board,
        on_target: &f.on_target,
        merging: true,
        now: t(1200),
    })
}

#[test]
fn each_task_gets_its_status() {
    let f = fixture();
    let r = report(&f);
    let got: Vec<(u64, RowStatus, Option<&str>)> = r
        .tasks
        .iter()
        .map(|row| (row.id, row.status, row.detail.as_deref()))
        .collect();
    let review = "merge failed 3 times; last: conflict in `src/a.rs`";
    assert_eq!(
        got,
        [
            (1, RowStatus::Merged, None),
            (2, RowStatus::Merged, None),
            (3, RowStatus::Review, Some(review)),
            (4, RowStatus::WaitingOnDependency, Some("waits for #3")),
            (5, RowStatus::InProgress, Some("fox, attempt 2")),
            (6, RowStatus::NotOnTarget, Some("landed6 is not on `main`")),
            (7, RowStatus::NotStarted, None),
            (8, RowStatus::Blocked, Some("needs a decision")),
            (9, RowStatus::Merging, Some("waiting for the merge queue")),
            (10, RowStatus::Queued, None),
            (11, RowStatus::NothingToMerge, None),
            (99, RowStatus::NotOnBoard, None),
        ]
    );
    let two = &r.tasks[1];
    assert_eq!(two.agents, ["fox"]);
    assert_eq!(two.attempts.len(), 2);
    assert_eq!(two.secs, 90 + 99);
    assert_eq!(two.merged.as_deref(), Some("landed2"));
    let failure = two.last_failure.as_ref().unwrap();
    assert_eq!((failure.attempt, failure.outcome), (1, Outcome::GateRed));
    let three = &r.tasks[2];
    assert_eq!(three.agents, ["brave-otter", "fox"]);
    assert_eq!(
        three.last_failure.as_ref().unwrap().outcome,
        Outcome::Conflict
    );
    // Task 5's first attempt was cut off by the crash; the second runs until now.
    let five: Vec<(Outcome, i64)> = r.tasks[4]
        .attempts
        .iter()
        .map(|a| (a.attempt.outcome, a.secs))
        .collect();
    assert_eq!(five, [(Outcome::Restarted, 0), (Outcome::InProgress, 200)]);
}

#[test]
fn totals_partition_the_board() {
    let f = fixture();
    let r = report(&f);
    let t = &r.totals;
    assert_eq!(t.tasks, 11);
    assert_eq!(t.done, 5);
    assert_eq!(t.merged, 2);
    assert_eq!(t.nothing_to_merge, 1);
    assert_eq!(t.merging, 1);
    assert_eq!(t.not_on_target, [6]);
    assert!(t.merge_failed.is_empty());
    assert_eq!(
        t.in_review,
        [Reasoned {
            task: 3,
            reason: "merge failed 3 times; last: conflict in `src/a.rs`".into()
        }]
    );
    assert_eq!(
        t.blocked,
        [Reasoned {
            task: 8,
            reason: "needs a decision".into()
        }]
    );
    assert_eq!(t.in_progress, 1);
    assert_eq!(t.waiting_on_dependency, [4]);
    assert_eq!(t.queued, 1);
    assert_eq!(t.never_started, 1);
    assert_eq!(t.not_on_board, 1);
    let in_one_status = t.merged
        + t.nothing_to_merge
        + t.merging
        + t.not_on_target.len()
        + t.merge_failed.len()
        + t.in_review.len()
        + t.blocked.len()
        + t.in_progress
        + t.waiting_on_dependency.len()
        + t.queued
        + t.never_started;
    assert_eq!(in_one_status, t.tasks);
    assert_eq!((t.attempts, t.failed_attempts), (12, 4));
    // The first run crashed after its last line at 700; the second runs until now.
    assert_eq!((r.runs, r.crashes, r.wall_secs), (2, 1, 700 + 200));
    // brave-otter: tasks 1, 3, 6, 9, 10, 11 and 99, and 0s for task 5's cut-off attempt.
    let agents: Vec<(&str, i64, u32, u32)> = r
        .agents
        .iter()
        .map(|a| (a.agent.as_str(), a.busy_secs, a.attempts, a.merged))
        .collect();
    assert_eq!(
        agents,
        [
            ("brave-otter", 60 + 60 + 80 + 80 + 60 + 30 + 10, 8, 2),
            ("fox", 90 + 99 + 80 + 200, 4, 1),
        ]
    );
}

#[test]
fn markdown_report() {
    let f = fixture();
    let mut r = report(&f);
    r.problems
        .push("attempts.jsonl:40: the last line is cut short".into());
    insta::assert_snapshot!(super::super::render::markdown(&r));
}

#[test]
fn text_report() {
    let f = fixture();
    insta::assert_snapshot!(super::super::render::text(&report(&f)));
}
