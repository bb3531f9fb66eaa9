//! The fold, scenario by scenario: each record is written as the supervisor would write it, and
//! every field of the history that a report shows is checked.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::record::entry::{Delivered, Ended, Entry, Event, Merge, Review, Run};
use crate::record::file as entry_file;

pub(crate) fn t(secs: i64) -> At {
    DateTime::<Utc>::from_timestamp(1_780_000_000 + secs, 0).unwrap()
}

pub(crate) fn delivered(at: i64, task: u64, attempt: u32, agent: &str) -> Entry {
    Entry::at(
        t(at),
        Event::Delivered(Delivered {
            task,
            attempt,
            agent: agent.into(),
            base: Some(format!("base{task}.{attempt}")),
            note: None,
            pid: None,
        }),
    )
}

pub(crate) fn ended(
    at: i64,
    task: u64,
    attempt: u32,
    agent: &str,
    outcome: EndOutcome,
    error: Option<&str>,
) -> Entry {
    Entry::at(
        t(at),
        Event::Ended(Ended {
            task,
            attempt,
            agent: agent.into(),
            outcome,
            error: error.map(str::to_owned),
            base: Some(format!("base{task}.{attempt}")),
            head: (outcome == EndOutcome::Done).then(|| format!("head{task}.{attempt}")),
            files: if outcome == EndOutcome::Done {
                vec![FileChange {
                    path: format!("src/t{task}.rs"),
                    insertions: 10,
                    deletions: 2,
                    binary: false,
                }]
            } else {
                vec![]
            },
        }),
    )
}

pub(crate) fn merge(
    at: i64,
    task: u64,
    attempt: u32,
    agent: &str,
    outcome: MergeResult,
    error: Option<&str>,
) -> Entry {
    Entry::at(
        t(at),
        Event::Merge(Merge {
            task,
            attempt,
            agent: agent.into(),
            outcome,
            base: Some("tip".into()),
            head: Some(format!("head{task}.{attempt}")),
            gate: Some("cargo test".into()),
            gate_secs: Some(12.5),
            exit_code: Some(if outcome == MergeResult::GateRed {
                101
            } else {
                0
            }),
            landed: (outcome == MergeResult::Merged).then(|| format!("landed{task}")),
            error: error.map(str::to_owned),
        }),
    )
}

pub(crate) fn review(at: i64, task: u64, reason: &str) -> Entry {
    Entry::at(
        t(at),
        Event::Review(Review {
            task,
            reason: reason.into(),
            rejected_ref: Some(format!("refs/batty/v1/rejected/{task}-3")),
        }),
    )
}

pub(crate) fn run(at: i64, action: RunAction, pid: u32) -> Entry {
    Entry::at(t(at), Event::Run(Run { action, pid }))
}

fn secs(d: TimeDelta) -> i64 {
    d.num_seconds()
}

#[test]
fn a_merged_task() {
    let h = History::fold(&[
        run(0, RunAction::Start, 10),
        delivered(5, 1, 1, "brave-otter"),
        ended(65, 1, 1, "brave-otter", EndOutcome::Done, None),
        merge(80, 1, 1, "brave-otter", MergeResult::Merged, None),
        run(100, RunAction::Stop, 10),
    ]);
    let task = h.task(1).unwrap();
    assert_eq!(task.attempts.len(), 1);
    let a = &task.attempts[0];
    assert_eq!(a.attempt, 1);
    assert_eq!(a.agent, "brave-otter");
    assert_eq!((a.delivered, a.ended), (Some(t(5)), Some(t(65))));
    assert_eq!(a.outcome, Outcome::Merged);
    assert_eq!(a.error, None);
    assert_eq!(a.base.as_deref(), Some("base1.1"));
    assert_eq!(a.head.as_deref(), Some("head1.1"));
    assert_eq!(a.files.len(), 1);
    assert_eq!(a.files[0].path, "src/t1.rs");
    assert_eq!(
        a.merges,
        [MergeDetails {
            at: t(80),
            outcome: MergeResult::Merged,
            gate: Some("cargo test".into()),
            gate_secs: Some(12.5),
            exit_code: Some(0),
            landed: Some("landed1".into()),
            error: None,
        }]
    );
    assert_eq!(task.merged_commit(), Some("landed1"));
    assert_eq!(task.last_failure(), None);
    assert_eq!(task.agents(), ["brave-otter"]);
    assert_eq!(secs(h.task_time(task, t(1000))), 60);
    assert_eq!(secs(h.wall_time(t(1000))), 100);
    assert_eq!(
        h.agent_busy(t(1000))["brave-otter"],
        AgentBusy {
            busy: TimeDelta::seconds(60),
            attempts: 1,
            merged: 1
        }
    );
    assert_eq!(h.landed_commits(), ["landed1"]);
    assert!(!h.live());
}

#[test]
fn a_task_that_fails_the_gate_once_then_lands() {
    let h = History::fold(&[
        run(0, RunAction::Start, 10),
        delivered(0, 2, 1, "otter"),
        ended(30, 2, 1, "otter", EndOutcome::Done, None),
        merge(
            50,
            2,
            1,
            "otter",
            MergeResult::GateRed,
            Some("test a ... FAILED"),
        ),
        delivered(51, 2, 2, "otter"),
        ended(71, 2, 2, "otter", EndOutcome::Done, None),
        merge(90, 2, 2, "otter", MergeResult::Merged, None),
    ]);
    let task = h.task(2).unwrap();
    let outcomes: Vec<Outcome> = task.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [Outcome::GateRed, Outcome::Merged]);
    let first = &task.attempts[0];
    assert_eq!(first.error.as_deref(), Some("test a ... FAILED"));
    assert_eq!(first.ended, Some(t(30)), "the attempt ends with the agent");
    assert_eq!(first.merges[0].exit_code, Some(101));
    assert_eq!(first.landed(), None);
    assert_eq!(task.last_failure().map(|a| a.attempt), Some(1));
    assert_eq!(task.merged_commit(), Some("landed2"));
    assert_eq!(secs(h.task_time(task, t(1000))), 30 + 20);
    assert_eq!(h.next_attempt(2), 3);
    assert_eq!(h.next_attempt(99), 1);
    let busy = h.agent_busy(t(1000))["otter"];
    assert_eq!((busy.attempts, busy.merged), (2, 1));
}

#[test]
fn a_task_whose_agent_dies_is_redone_by_another() {
    let h = History::fold(&[
        run(0, RunAction::Start, 10),
        delivered(0, 3, 1, "otter"),
        ended(
            40,
            3,
            1,
            "otter",
            EndOutcome::AgentDied,
            Some("Segmentation fault"),
        ),
        delivered(45, 3, 2, "fox"),
        ended(100, 3, 2, "fox", EndOutcome::Done, None),
        merge(110, 3, 2, "fox", MergeResult::Merged, None),
    ]);
    let task = h.task(3).unwrap();
    assert_eq!(task.agents(), ["otter", "fox"]);
    let died = &task.attempts[0];
    assert_eq!(
        (died.outcome, died.error.as_deref(), died.head.as_deref()),
        (Outcome::AgentDied, Some("Segmentation fault"), None)
    );
    assert_eq!(task.attempts[1].outcome, Outcome::Merged);
    assert_eq!(task.last_failure().map(|a| a.agent.as_str()), Some("otter"));
    let busy = h.agent_busy(t(1000));
    assert_eq!(secs(busy["otter"].busy), 40);
    assert_eq!(secs(busy["fox"].busy), 55);
    assert_eq!(busy["otter"].merged, 0);
}

#[test]
fn a_task_that_ends_in_review() {
    let h = History::fold(&[
        run(0, RunAction::Start, 10),
        delivered(0, 4, 1, "otter"),
        ended(
            20,
            4,
            1,
            "otter",
            EndOutcome::IdleAfterReminders,
            Some("idle after 3 reminders"),
        ),
        delivered(21, 4, 2, "otter"),
        ended(50, 4, 2, "otter", EndOutcome::Done, None),
        merge(60, 4, 2, "otter", MergeResult::Conflict, Some("src/a.rs")),
        review(61, 4, "merge failed 1 times; last: conflict in `src/a.rs`"),
    ]);
    let task = h.task(4).unwrap();
    let outcomes: Vec<Outcome> = task.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [Outcome::IdleAfterReminders, Outcome::Conflict]);
    let note = task.review.as_ref().unwrap();
    assert_eq!(note.at, t(61));
    assert!(note.reason.contains("conflict"));
    assert_eq!(
        note.rejected_ref.as_deref(),
        Some("refs/batty/v1/rejected/4-3")
    );
    assert_eq!(
        task.last_failure().unwrap().error.as_deref(),
        Some("src/a.rs")
    );
    assert_eq!(task.merged_commit(), None);
    assert!(h.open_attempts().is_empty());
}

#[test]
fn review_ends_an_open_attempt_and_a_new_delivery_clears_it() {
    let mut h = History::fold(&[
        run(0, RunAction::Start, 10),
        delivered(0, 5, 1, "otter"),
        review(30, 5, "moved by a person"),
    ]);
    let a = &h.task(5).unwrap().attempts[0];
    assert_eq!((a.outcome, a.ended), (Outcome::MovedToReview, Some(t(30))));
    h.apply(&delivered(40, 5, 2, "otter"));
    assert_eq!(h.task(5).unwrap().review, None);
}

#[test]
fn a_supervisor_killed_mid_attempt_whose_attempt_is_redone() {
    // kill -9 after the delivery: no `ended`, no `run stop`; the next supervisor delivers
    // the task again as attempt 2.
    let h = History::fold(&[
        run(0, RunAction::Start, 10),
        delivered(10, 6, 1, "otter"),
        delivered(20, 7, 1, "fox"),
        run(500, RunAction::Start, 11),
        delivered(505, 6, 2, "otter"),
        ended(600, 6, 2, "otter", EndOutcome::Done, None),
    ]);
    let task = h.task(6).unwrap();
    let first = &task.attempts[0];
    assert_eq!(first.outcome, Outcome::Restarted);
    assert_eq!(
        first.ended,
        Some(t(20)),
        "ends when its supervisor was last heard from"
    );
    assert_eq!(task.attempts[1].outcome, Outcome::Done);
    assert_eq!(
        task.last_failure(),
        None,
        "a restart is not the attempt's failure"
    );
    assert_eq!(secs(h.task_time(task, t(1000))), 10 + 95);
    // Task 7 was never delivered again: still open, timed up to now while a supervisor runs.
    let open = h.open_attempts();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].0, open[0].1.attempt), (7, 1));
    assert_eq!(secs(h.attempt_time(open[0].1, t(1000))), 980);
    let runs = h.runs();
    assert_eq!(runs.len(), 2);
    assert!(runs[0].crashed && !runs[1].crashed);
    assert_eq!(secs(h.wall_time(t(1000))), 20 + 500);
    assert_eq!(h.live_pid(), Some(11));
}

#[test]
fn a_supervisor_killed_mid_attempt_whose_attempt_goes_on() {
    // The agent outlived the supervisor; the next one kept its task and recorded its end.
    let h = History::fold(&[
        run(0, RunAction::Start, 10),
        delivered(10, 8, 1, "otter"),
        run(300, RunAction::Start, 11),
        ended(400, 8, 1, "otter", EndOutcome::Done, None),
        merge(410, 8, 1, "otter", MergeResult::Merged, None),
    ]);
    let task = h.task(8).unwrap();
    assert_eq!(task.attempts.len(), 1);
    let a = &task.attempts[0];
    assert_eq!((a.outcome, a.ended), (Outcome::Merged, Some(t(400))));
    assert_eq!(secs(h.task_time(task, t(1000))), 390);
}

#[test]
fn an_interrupted_attempt_with_no_supervisor_is_timed_to_the_interruption() {
    let h = History::fold(&[
        run(0, RunAction::Start, 10),
        delivered(10, 9, 1, "otter"),
        run(50, RunAction::Stop, 10),
    ]);
    let a = &h.task(9).unwrap().attempts[0];
    assert!(a.is_open());
    assert_eq!(secs(h.attempt_time(a, t(1000))), 40);
    assert_eq!(secs(h.wall_time(t(1000))), 50);
    // The same attempt delivered again by the next supervisor goes on.
    let mut h = h;
    h.apply(&run(100, RunAction::Start, 12));
    h.apply(&delivered(101, 9, 1, "otter"));
    h.apply(&ended(200, 9, 1, "otter", EndOutcome::Done, None));
    let task = h.task(9).unwrap();
    assert_eq!(task.attempts.len(), 1);
    assert_eq!(task.attempts[0].outcome, Outcome::Done);
    assert_eq!(
        secs(h.wall_time(t(1000))),
        50 + 900,
        "the second run still goes"
    );
    h.apply(&run(250, RunAction::Stop, 12));
    assert_eq!(secs(h.wall_time(t(1000))), 50 + 150);
}

#[test]
fn a_new_attempt_over_an_open_one_marks_it_unrecorded() {
    let h = History::fold(&[
        run(0, RunAction::Start, 10),
        delivered(0, 10, 1, "otter"),
        delivered(30, 10, 2, "fox"),
    ]);
    let a = &h.task(10).unwrap().attempts[0];
    assert_eq!((a.outcome, a.ended), (Outcome::Unrecorded, Some(t(30))));
}

#[test]
fn a_torn_last_line_and_an_unknown_field_fold_like_the_rest() {
    let mut text = String::new();
    for e in [
        run(0, RunAction::Start, 10),
        delivered(0, 11, 1, "otter"),
        ended(30, 11, 1, "otter", EndOutcome::Done, None),
    ] {
        text.push_str(&serde_json::to_string(&e).unwrap());
        text.push('\n');
    }
    // A newer batty added a field; an older one reads the line all the same.
    let merged = serde_json::to_string(&merge(40, 11, 1, "otter", MergeResult::Merged, None))
        .unwrap()
        .replacen("\"task\":11", "\"task\":11,\"queue_secs\":3.5", 1);
    text.push_str(&merged);
    text.push('\n');
    // The supervisor died while writing the next line.
    let torn = serde_json::to_string(&delivered(50, 12, 1, "otter")).unwrap();
    text.push_str(&torn[..torn.len() / 2]);
    let (entries, problems) = entry_file::parse(Path::new("attempts.jsonl"), text.as_bytes());
    assert_eq!(entries.len(), 4);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, Some(5));
    let h = History::fold(&entries);
    let a = &h.task(11).unwrap().attempts[0];
    assert_eq!(a.outcome, Outcome::Merged);
    assert_eq!(a.merges[0].landed.as_deref(), Some("landed11"));
    assert!(h.task(12).is_none());
    // Out of order (the merge line written before the end line) comes to the same.
    let mut swapped = entries.clone();
    swapped.swap(2, 3);
    let h2 = History::fold(&swapped);
    assert_eq!(h2.task(11).unwrap().attempts[0].outcome, Outcome::Merged);
}
