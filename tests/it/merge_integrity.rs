//! Every merge carries exactly its own task's work, end to end through the binary, demo agents,
//! real tmux and git: work finished while no supervisor ran lands task by task, each through a
//! gate of its own; a retry after a person fixed the gate closes the loop; restarts never queue
//! merged work again; and after a long run with restarts the counts are the target's.

use std::collections::BTreeSet;

use crate::common::e2e5::{DEADLINE, E2e, PHASE, Setup, gate_saw};
use crate::common::wait_until;
use batty::merge::EntryState;

/// `(task, [its own file])`: what a gate of that task alone must see changed.
fn own(task: u64) -> (u64, Vec<String>) {
    (task, vec![format!("demo/task-{task}.txt")])
}

/// The message batty would paste, typed line by line by a person.
fn type_task(e: &E2e, pane: &str, id: u64, title: &str) {
    e.type_into(pane, &format!("Task #{id}: {title}"));
    e.type_into(
        pane,
        &format!("When you are done, commit your work on the current branch, then run `batty task done {id}`."),
    );
}

/// Task 1 is delivered and the supervisor dies while the agent works on it; the agent finishes
/// it, then a person gives it task 2 by hand and it finishes that too. The restarted supervisor
/// queues both, each with its own range: neither rides along with the other's merge.
#[test]
fn two_tasks_of_one_agent_finished_while_the_supervisor_was_down_land_each_through_its_own_gate() {
    let e = E2e::new();
    let gate_log = e.outside("gate.log");
    let gate = gate_saw(&gate_log, "true");
    e.configure(Setup {
        gate: Some(&gate),
        delay_ms: 1500,
        ..Setup::default()
    });
    let start = e.main_tip();
    let first = e.add_task("first");
    e.work(1, false);
    let (agent, _, pane) = e.agents()[0].clone();
    wait_until("the agent working on task 1", DEADLINE, || {
        e.pty(&agent)
            .contains(&format!("working on #{first}"))
            .then_some(())
    });
    e.kill_supervisor();
    wait_until("task 1 done with no supervisor", DEADLINE, || {
        (e.task_status(first) == "done").then_some(())
    });
    let second = e.add_task("second");
    e.sb.batty([
        "task",
        "claim",
        &second.to_string(),
        "--phase",
        PHASE,
        "--agent",
        &agent,
    ])
    .ok();
    type_task(&e, &pane, second, "second");
    wait_until("task 2 done with no supervisor", DEADLINE, || {
        (e.task_status(second) == "done").then_some(())
    });
    assert_eq!(e.main_tip(), start, "nothing lands without a supervisor");
    assert_eq!(
        e.subjects(&format!("batty/{PHASE}/{agent}"))[..2],
        ["Task #2: second", "Task #1: first"]
    );

    let out = e.rework(1, true);
    assert!(out.contains("restarted the supervisor"), "{out}");
    e.wait_session_end();
    for id in [first, second] {
        assert_eq!(e.landed(id), 1, "task #{id}");
        assert_eq!(e.queue_state(id), Some(EntryState::Merged), "task #{id}");
        assert_eq!(e.task_status(id), "done");
    }
    assert_eq!(
        e.gate_saw(&gate_log),
        [own(first), own(second)],
        "one gate per task, each on its own work"
    );
    assert_eq!(
        e.subjects("main")[..2],
        ["Task #2: second", "Task #1: first"]
    );
    let summary = std::fs::read_to_string(e.logs_dir().join("summary.txt")).unwrap();
    assert!(
        summary.contains("2 tasks: 2 done (2 merged on `main`)"),
        "{summary}"
    );
    e.assert_tidy();
}

/// The agent's task 1 waits in the queue (its gate is slow) when it takes task 2; the
/// supervisor is killed, the agent finishes task 2 with no supervisor. On restart the
/// interrupted merge of task 1 is tried again and task 2 is queued too: both land, in order,
/// each through its own gate.
#[test]
fn work_finished_while_the_supervisor_was_down_behind_its_agents_queued_task_lands_on_its_own() {
    let e = E2e::new();
    let gate_log = e.outside("gate.log");
    let go = e.outside("GO");
    let gate = gate_saw(
        &gate_log,
        &format!(
            "if [ \"$BATTY_MERGE_TASK\" = 1 ]; then while [ ! -f {} ]; do sleep 0.05; done; fi",
            go.display()
        ),
    );
    e.configure(Setup {
        gate: Some(&gate),
        delay_ms: 1000,
        ..Setup::default()
    });
    let start = e.main_tip();
    let first = e.add_task("first");
    e.work(1, false);
    let (agent, _, _) = e.agents()[0].clone();
    wait_until("task 1's gate to start", DEADLINE, || {
        (!e.gate_saw(&gate_log).is_empty()).then_some(())
    });
    let second = e.add_task("second");
    wait_until("the agent working on task 2", DEADLINE, || {
        e.pty(&agent)
            .contains(&format!("working on #{second}"))
            .then_some(())
    });
    assert_eq!(e.queue_state(first), Some(EntryState::Merging));
    e.kill_supervisor();
    wait_until("task 2 done with no supervisor", DEADLINE, || {
        (e.task_status(second) == "done").then_some(())
    });
    std::fs::write(&go, "").unwrap();
    assert_eq!(e.main_tip(), start);

    e.rework(1, true);
    e.wait_session_end();
    for id in [first, second] {
        assert_eq!(e.landed(id), 1, "task #{id}");
        assert_eq!(e.queue_state(id), Some(EntryState::Merged), "task #{id}");
    }
    // Task 1's gate ran twice (the first run died with its supervisor), task 2's once.
    assert_eq!(e.gate_saw(&gate_log), [own(first), own(first), own(second)]);
    assert_eq!(
        e.subjects("main")[..2],
        ["Task #2: second", "Task #1: first"]
    );
    e.assert_tidy();
}

/// The gate is broken, so task 1 goes to review and its dependant waits. A person stops the
/// run, fixes the gate in the config, runs `batty merge --retry 1` and `batty work`: the task
/// lands with the new gate, is `done` and no longer blocked, and its dependant is dispatched and
/// lands. Restarting afterwards queues nothing.
#[test]
fn retry_after_fixing_the_gate_makes_the_task_done_and_starts_its_dependant() {
    let e = E2e::new();
    e.configure(Setup {
        gate: Some("echo 'the gate is broken'; exit 1"),
        max_attempts: 1,
        ..Setup::default()
    });
    let first = e.add_task("foundation");
    let second = e.add_task("built on it");
    e.sb.batty([
        "task",
        "edit",
        &second.to_string(),
        "--phase",
        PHASE,
        "--depends-on",
        &first.to_string(),
    ])
    .ok();
    e.work(1, false);
    wait_until("task 1 in review", DEADLINE, || {
        (e.task_status(first) == "review").then_some(())
    });
    assert_eq!(e.task(first)["blocked"], true);
    assert_eq!(e.landed(first), 0);

    // As the person did: stop, fix the gate, retry, and start again.
    e.stop();
    let gate_log = e.outside("gate.log");
    let fixed = gate_saw(&gate_log, "true");
    e.configure(Setup {
        gate: Some(&fixed),
        max_attempts: 1,
        ..Setup::default()
    });
    let out =
        e.sb.batty(["merge", PHASE, "--retry", &first.to_string()])
            .ok();
    assert!(
        out.stdout.contains("back in the merge queue"),
        "{}",
        out.stdout
    );
    e.rework(1, true);
    e.wait_session_end();
    assert_eq!(e.queue_state(second), Some(EntryState::Merged));
    let task = e.task(first);
    assert_eq!(task["status"], "done", "{task}");
    assert_ne!(task["blocked"], true, "{task}");
    assert!(task["block_reason"].is_null(), "{task}");
    assert_eq!(e.task_status(second), "done");
    assert_eq!(e.gate_saw(&gate_log), [own(first), own(second)]);
    assert_eq!(
        e.subjects("main")[..2],
        ["Task #2: built on it", "Task #1: foundation"]
    );

    // A restart afterwards finds both on the target: nothing is queued or reopened.
    let tip = e.main_tip();
    e.stop();
    e.rework(1, true);
    e.wait_session_end();
    assert_eq!(e.main_tip(), tip);
    assert_eq!(e.gate_saw(&gate_log).len(), 2, "no gate ran again");
    let events = e.events();
    assert!(
        !events.contains("was done while no supervisor ran"),
        "{events}"
    );
    assert!(!events.contains("conflict"), "{events}");
    for id in [first, second] {
        assert_eq!(e.task_status(id), "done");
        assert_eq!(e.landed(id), 1);
    }
    e.assert_tidy();
}

/// Merged work stays merged across restarts: a clean stop, a `kill -9`, and a restart that
/// finds neither the attempt record nor the merge queue (a person cleaned the logs): nothing
/// is queued again, no gate runs again, no task is redone.
#[test]
fn a_restart_never_requeues_merged_work() {
    let e = E2e::new();
    let gate_log = e.outside("gate.log");
    let gate = gate_saw(&gate_log, "true");
    e.configure(Setup {
        gate: Some(&gate),
        ..Setup::default()
    });
    let ids: Vec<u64> = (1..=4).map(|i| e.add_task(&format!("part {i}"))).collect();
    e.work(2, true);
    e.wait_session_end();
    let mut gated: Vec<u64> = e.gate_saw(&gate_log).into_iter().map(|(t, _)| t).collect();
    gated.sort();
    assert_eq!(gated, ids);
    let tip = e.main_tip();
    let record = e.logs_dir().join("attempts.jsonl");
    let deliveries = || {
        std::fs::read_to_string(&record)
            .unwrap_or_default()
            .matches("\"event\":\"delivered\"")
            .count()
    };
    assert_eq!(deliveries(), 4);

    // A new session after a clean end.
    e.rework(2, true);
    e.wait_session_end();
    // One killed with `kill -9` while idle.
    e.rework(2, false);
    wait_until("both agents idle", DEADLINE, || {
        e.agents_idle(2).then_some(())
    });
    e.kill_supervisor();
    e.rework(2, true);
    e.wait_session_end();
    assert_eq!(deliveries(), 4, "no task was redone");
    let events = e.events();
    assert!(
        !events.contains("was done while no supervisor ran"),
        "{events}"
    );

    // The record and the queue lost: the work is on the target by patch id.
    std::fs::remove_file(&record).unwrap();
    std::fs::remove_file(e.sb.path(format!(".batty/run/{PHASE}/merge.json"))).unwrap();
    e.rework(2, true);
    e.wait_session_end();
    assert_eq!(deliveries(), 0, "no task was redone");
    assert_eq!(e.gate_saw(&gate_log).len(), 4, "no gate ran again");
    assert_eq!(e.main_tip(), tip);
    for &id in &ids {
        assert_eq!(e.task_status(id), "done", "task #{id}");
        assert_eq!(e.landed(id), 1, "task #{id}");
    }
    assert!(
        e.queue()
            .list()
            .iter()
            .all(|q| q.state == EntryState::Merged),
        "{:?}",
        e.queue().list()
    );
    e.assert_tidy();
}

/// `N merged` out of the summary's totals line.
fn merged_in(summary: &str) -> usize {
    let line = summary
        .lines()
        .find(|l| l.contains(" merged on `main`"))
        .unwrap_or_else(|| panic!("no merged count in {summary}"));
    let before = &line[..line.find(" merged on `main`").unwrap()];
    let digits: String = before
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().unwrap()
}

/// Thirty tasks, three agents, and the supervisor restarted three times along the way (two
/// `kill -9`, one `batty stop`): every task lands exactly once and the summary's merged count
/// is the number of tasks whose files are on the target.
#[test]
fn after_a_thirty_task_run_with_restarts_the_summary_counts_what_is_on_the_target() {
    let e = E2e::new();
    e.configure(Setup {
        gate: Some("test -f demo/task-$BATTY_MERGE_TASK.txt"),
        delay_ms: 150,
        ..Setup::default()
    });
    let ids: Vec<u64> = (1..=30).map(|i| e.add_task(&format!("part {i}"))).collect();
    e.work(3, false);
    let merged = || e.queue().merged_count();
    let restart_at = |n: usize, how: &str| {
        wait_until(&format!("{n} tasks merged"), DEADLINE, || {
            (merged() >= n).then_some(())
        });
        match how {
            "kill" => e.kill_supervisor(),
            _ => e.stop(),
        }
        e.rework(3, false);
    };
    restart_at(6, "kill");
    restart_at(14, "stop");
    restart_at(22, "kill");
    // The last restart is the one that ends the run.
    e.kill_supervisor();
    e.rework(3, true);
    e.wait_session_end();

    let on_target: BTreeSet<String> =
        e.sb.git(["ls-tree", "--name-only", "main", "demo/"])
            .lines()
            .map(str::to_owned)
            .collect();
    let summary = std::fs::read_to_string(e.logs_dir().join("summary.txt")).unwrap();
    assert_eq!(merged_in(&summary), on_target.len(), "{summary}");
    assert_eq!(on_target.len(), ids.len(), "{summary}");
    for &id in &ids {
        assert_eq!(e.landed(id), 1, "task #{id} on main");
        assert_eq!(e.task_status(id), "done", "task #{id}");
    }
    assert!(
        summary.contains("30 tasks: 30 done (30 merged on `main`)"),
        "{summary}"
    );
    // The record knows the run's history: five supervisors, three of them killed (`batty
    // stop` is a stop, not a crash).
    let report: serde_json::Value =
        serde_json::from_str(&e.sb.batty(["report", PHASE, "--json"]).ok().stdout).unwrap();
    assert_eq!(
        (report["runs"].as_u64(), report["crashes"].as_u64()),
        (Some(5), Some(3)),
        "{summary}"
    );
    assert_eq!(report["totals"]["merged"], 30);
    e.assert_tidy();
}
