//! The attempt record of a real run, through the binary with a demo agent on real tmux and
//! git: a task merged at once, one whose gate fails once and then lands, one whose agent dies,
//! one that ends in review, and a `kill -9` of the supervisor in the middle. Every line and
//! every field is checked, then `batty report --json` against the board and the target.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::e2e5::{DEADLINE, E2e, PHASE};
use crate::common::{BATTY, wait_until};

/// The gate: task 2 fails its first run, task 4 every run, the rest pass.
fn gate(marks: &std::path::Path) -> String {
    format!(
        "case $BATTY_MERGE_TASK in \
         2) test -f {m}/gate2 || {{ touch {m}/gate2; echo 'flaky: 1 failed'; exit 1; }};; \
         4) echo 'task 4 stays broken'; exit 4;; \
         esac",
        m = marks.display()
    )
}

/// The first demo agent process dies when it gets task 3; once restarted, it works.
fn wrapper(marks: &std::path::Path) -> String {
    format!(
        "#!/bin/sh\nif [ -e {m}/died ]; then exec {BATTY} demo-agent \"$@\"; fi\n\
         touch {m}/died\nexec {BATTY} demo-agent --die-on 3 \"$@\"\n",
        m = marks.display()
    )
}

fn record(e: &E2e) -> Vec<Value> {
    std::fs::read_to_string(e.logs_dir().join("attempts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("{l}: {err}")))
        .collect()
}

#[test]
fn a_run_with_every_kind_of_ending_is_recorded_exactly_and_reported_as_the_target_has_it() {
    let e = E2e::new();
    let marks = e.outside("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let script = e.outside("agent.sh");
    std::fs::write(&script, wrapper(&marks)).unwrap();
    let gate = gate(&marks);
    e.sb.write(
        ".batty/config.yml",
        &format!(
            "supervisor:\n  silence: 100ms\n  delivery_timeout: 10s\n  reminder_settle: 300ms\n\
             \x20 restart_backoff: 200ms\n  max_attempts: 2\nmerge:\n  gate_timeout: 60s\n\
             \x20 gate: {}\nagents:\n  demo:\n    command: \"sh {}\"\n    args: [\"--delay\", \"800\"]\n",
            serde_json::to_string(&gate).unwrap(),
            script.display()
        ),
    );
    let ids: Vec<u64> = ["merged", "flaky gate", "agent dies", "to review"]
        .iter()
        .map(|t| e.add_task(t))
        .collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    let start = e.main_tip();
    e.work(1, false);
    let (agent, _, _) = e.agents()[0].clone();
    wait_until("the agent working on task 1", DEADLINE, || {
        e.pty(&agent).contains("working on #1").then_some(())
    });
    let first_supervisor = e.supervisor_pid().unwrap();
    e.kill_supervisor();
    e.rework(1, true);
    e.wait_session_end();
    let lines = record(&e);
    let dump: String = lines.iter().map(|l| format!("{l}\n")).collect();

    // What git and the board say, to check the record against.
    let landed: BTreeMap<u64, String> =
        e.sb.git(["log", "--format=%H %s", "main"])
            .lines()
            .filter_map(|l| {
                let (sha, subject) = l.split_once(' ')?;
                let id = subject
                    .strip_prefix("Task #")?
                    .split(':')
                    .next()?
                    .parse()
                    .ok()?;
                Some((id, sha.to_owned()))
            })
            .collect();
    assert_eq!(
        landed.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3],
        "{dump}"
    );
    let review = e.task(4);
    assert_eq!(review["status"], "review");
    let block_reason = review["block_reason"].as_str().unwrap().to_owned();

    // The runs: the first supervisor killed (no stop), the second stopped at the end.
    let runs: Vec<(&str, u64)> = lines
        .iter()
        .filter(|l| l["event"] == "run")
        .map(|l| (l["action"].as_str().unwrap(), l["pid"].as_u64().unwrap()))
        .collect();
    let second = runs[1].1;
    assert_eq!(
        runs,
        [
            ("start", u64::from(first_supervisor)),
            ("start", second),
            ("stop", second)
        ],
        "{dump}"
    );
    assert_ne!(second, u64::from(first_supervisor));
    // Everything about tasks comes between the first start and the last stop, in time order.
    assert_eq!(lines.first().unwrap()["event"], "run", "{dump}");
    assert_eq!(lines.last().unwrap()["action"], "stop", "{dump}");
    let times: Vec<&str> = lines.iter().map(|l| l["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "lines are appended as things happen");
    // Task 1 was delivered by the first supervisor; the second kept it (same attempt).
    let second_start = lines
        .iter()
        .position(|l| l["event"] == "run" && l["pid"] == second)
        .unwrap();
    assert_eq!(
        lines[..second_start]
            .iter()
            .filter(|l| l["event"] == "delivered")
            .map(|l| l["task"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1]
    );

    let gate_cmd = Value::from(gate.as_str());
    let of = |task: u64| -> Vec<&Value> { lines.iter().filter(|l| l["task"] == task).collect() };
    let keys = |l: &Value| -> Vec<String> {
        let mut k: Vec<String> = l.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let sorted_keys = |ks: &[&str]| -> Vec<String> {
        let mut k: Vec<String> = ks.iter().map(|s| (*s).to_owned()).collect();
        k.sort();
        k
    };
    let delivered_keys = sorted_keys(&[
        "v", "at", "event", "task", "attempt", "agent", "base", "pid",
    ]);
    let noted_keys = sorted_keys(&[
        "v", "at", "event", "task", "attempt", "agent", "base", "pid", "note",
    ]);
    let done_keys = sorted_keys(&[
        "v", "at", "event", "task", "attempt", "agent", "outcome", "base", "head", "files",
    ]);
    let merged_keys = sorted_keys(&[
        "v",
        "at",
        "event",
        "task",
        "attempt",
        "agent",
        "outcome",
        "base",
        "head",
        "gate",
        "gate_secs",
        "exit_code",
        "landed",
    ]);
    let red_keys = sorted_keys(&[
        "v",
        "at",
        "event",
        "task",
        "attempt",
        "agent",
        "outcome",
        "base",
        "head",
        "gate",
        "gate_secs",
        "exit_code",
        "error",
    ]);
    // The pane's process: the same until the agent died on task 3, a new one after.
    let pids: Vec<u64> = lines
        .iter()
        .filter(|l| l["event"] == "delivered")
        .map(|l| l["pid"].as_u64().unwrap())
        .collect();
    let (before, after) = (pids[0], *pids.last().unwrap());
    assert_ne!(before, after, "{dump}");

    let file = |task: u64| serde_json::json!([{"path": format!("demo/task-{task}.txt"), "insertions": 1, "deletions": 0}]);
    let check = |l: &Value, event: &str, task: u64, attempt: u64, want_keys: &[String]| {
        assert_eq!(
            (
                l["v"].as_u64(),
                l["event"].as_str(),
                l["task"].as_u64(),
                l["attempt"].as_u64()
            ),
            (Some(1), Some(event), Some(task), Some(attempt)),
            "{l}\n{dump}"
        );
        assert_eq!(keys(l), want_keys, "{l}");
        assert_eq!(l["agent"], agent.as_str(), "{l}");
    };
    let head_of = |l: &Value| l["head"].as_str().unwrap().to_owned();
    // A new attempt starts on the target's tip: the start or a landed commit, no older than
    // the last landing recorded before its delivery (the worker may land the next one just
    // before the supervisor hands out the task and records that landing).
    let on_tip = |l: &Value| {
        let i = lines.iter().position(|x| std::ptr::eq(x, l)).unwrap();
        let recorded = lines[..i]
            .iter()
            .rev()
            .find_map(|x| x["landed"].as_str())
            .unwrap_or(start.as_str());
        let base = l["base"].as_str().unwrap();
        let tips: Vec<&str> = std::iter::once(start.as_str())
            .chain(landed.values().map(String::as_str))
            .collect();
        assert!(tips.contains(&base), "{l} is not on a tip of main\n{dump}");
        e.sb.git(["merge-base", "--is-ancestor", recorded, base]);
    };
    let content = |sha: &str, task: u64| e.sb.git(["show", &format!("{sha}:demo/task-{task}.txt")]);

    // #1: merged at once.
    let t = of(1);
    assert_eq!(t.len(), 3, "{dump}");
    check(t[0], "delivered", 1, 1, &delivered_keys);
    assert_eq!(t[0]["base"], start.as_str());
    assert_eq!(t[0]["pid"], before);
    check(t[1], "ended", 1, 1, &done_keys);
    assert_eq!(
        (&t[1]["outcome"], &t[1]["base"]),
        (&Value::from("done"), &Value::from(start.as_str()))
    );
    assert_eq!(t[1]["files"], file(1));
    assert_eq!(content(&head_of(t[1]), 1), "merged");
    check(t[2], "merge", 1, 1, &merged_keys);
    assert_eq!(t[2]["outcome"], "merged");
    assert_eq!(
        (&t[2]["base"], &t[2]["head"]),
        (&t[1]["base"], &t[1]["head"])
    );
    assert_eq!(
        (&t[2]["gate"], &t[2]["exit_code"]),
        (&gate_cmd, &Value::from(0))
    );
    assert!(t[2]["gate_secs"].as_f64().unwrap() > 0.0);
    assert_eq!(t[2]["landed"], landed[&1].as_str());

    // #2: the gate fails once, the agent is told and redoes it, then it lands.
    let t = of(2);
    assert_eq!(t.len(), 6, "{dump}");
    check(t[0], "delivered", 2, 1, &delivered_keys);
    on_tip(t[0]);
    check(t[1], "ended", 2, 1, &done_keys);
    assert_eq!(t[1]["files"], file(2));
    check(t[2], "merge", 2, 1, &red_keys);
    assert_eq!(t[2]["outcome"], "gate_red");
    assert_eq!(
        (&t[2]["gate"], &t[2]["exit_code"]),
        (&gate_cmd, &Value::from(1))
    );
    assert_eq!(t[2]["error"], "exit code 1\nflaky: 1 failed");
    assert_eq!(t[2]["head"], t[1]["head"]);
    check(t[3], "delivered", 2, 2, &noted_keys);
    assert_eq!(
        t[3]["base"], t[0]["base"],
        "the redo continues its own commits"
    );
    let note = t[3]["note"].as_str().unwrap();
    assert!(
        note.starts_with("Note: attempt 1 of this task was not merged.")
            && note.contains("\nflaky: 1 failed\n"),
        "{note}"
    );
    check(t[4], "ended", 2, 2, &done_keys);
    check(t[5], "merge", 2, 2, &merged_keys);
    assert_eq!(
        (&t[5]["exit_code"], &t[5]["landed"]),
        (&Value::from(0), &Value::from(landed[&2].as_str()))
    );
    assert_eq!(t[5]["head"], t[4]["head"]);

    // #3: the agent dies on it, is restarted, and the second attempt lands.
    let t = of(3);
    assert_eq!(t.len(), 5, "{dump}");
    check(t[0], "delivered", 3, 1, &delivered_keys);
    on_tip(t[0]);
    assert_eq!(t[0]["pid"], before);
    check(
        t[1],
        "ended",
        3,
        1,
        &sorted_keys(&[
            "v", "at", "event", "task", "attempt", "agent", "outcome", "base", "head", "error",
        ]),
    );
    assert_eq!(t[1]["outcome"], "agent_died");
    // With the exit status when tmux saw it first, without when the pid watch did.
    assert!(
        [
            "the agent's process exited",
            "the agent's process exited (exit status 3)"
        ]
        .contains(&t[1]["error"].as_str().unwrap()),
        "{}",
        t[1]
    );
    assert_eq!(t[1]["head"], t[1]["base"], "it died before committing");
    check(t[2], "delivered", 3, 2, &noted_keys);
    assert_eq!(
        (&t[2]["base"], &t[2]["pid"]),
        (&t[0]["base"], &Value::from(after))
    );
    assert!(
        t[2]["note"]
            .as_str()
            .unwrap()
            .contains("attempt 1 of this task failed: the agent's process exited"),
        "{}",
        t[2]["note"]
    );
    check(t[3], "ended", 3, 2, &done_keys);
    assert_eq!(t[3]["files"], file(3));
    check(t[4], "merge", 3, 2, &merged_keys);
    assert_eq!(t[4]["landed"], landed[&3].as_str());

    // #4: the gate fails both attempts; the task goes to review, its work kept at a ref.
    let t = of(4);
    assert_eq!(t.len(), 7, "{dump}");
    check(t[0], "delivered", 4, 1, &delivered_keys);
    on_tip(t[0]);
    assert_eq!(t[0]["pid"], after);
    check(t[1], "ended", 4, 1, &done_keys);
    assert_eq!(t[1]["files"], file(4));
    check(t[2], "merge", 4, 1, &red_keys);
    assert_eq!(
        (&t[2]["exit_code"], &t[2]["error"]),
        (
            &Value::from(4),
            &Value::from("exit code 4\ntask 4 stays broken")
        )
    );
    check(t[3], "delivered", 4, 2, &noted_keys);
    check(t[4], "ended", 4, 2, &done_keys);
    assert_eq!(
        t[4]["files"],
        file(4),
        "only its own change, after a rebase too"
    );
    check(t[5], "merge", 4, 2, &red_keys);
    assert_eq!(t[5]["exit_code"], 4);
    let r = t[6];
    assert_eq!(
        keys(r),
        sorted_keys(&["v", "at", "event", "task", "reason", "rejected_ref"])
    );
    assert_eq!(
        (&r["event"], &r["reason"]),
        (&Value::from("review"), &Value::from(block_reason.as_str()))
    );
    let kept = r["rejected_ref"].as_str().unwrap();
    assert!(block_reason.contains(kept), "{block_reason}");
    assert_eq!(
        e.sb.git(["rev-parse", kept]),
        head_of(t[4]),
        "the ref keeps the work"
    );
    assert!(!landed.contains_key(&4));

    // The record survives a restart: a later supervisor reads it back without a problem,
    // and `batty report` agrees with the board and with `main`.
    let out = e.sb.batty(["report", PHASE, "--json"]).ok();
    assert_eq!(out.stderr, "", "no unreadable line");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let tasks = report["tasks"].as_array().unwrap();
    let rows: Vec<(u64, &str, &str, usize)> = tasks
        .iter()
        .map(|t| {
            (
                t["id"].as_u64().unwrap(),
                t["status"].as_str().unwrap(),
                t["board_status"].as_str().unwrap(),
                t["attempts"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (1, "merged", "done", 1),
            (2, "merged", "done", 2),
            (3, "merged", "done", 2),
            (4, "review", "review", 2)
        ]
    );
    for t in &tasks[..3] {
        let id = t["id"].as_u64().unwrap();
        assert_eq!(t["merged"], landed[&id].as_str(), "task #{id}");
        assert_eq!(t["agents"], serde_json::json!([agent]));
    }
    assert!(tasks[3]["merged"].is_null());
    let outcomes = |i: usize| -> Vec<&str> {
        tasks[i]["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["outcome"].as_str().unwrap())
            .collect()
    };
    assert_eq!(outcomes(0), ["merged"]);
    assert_eq!(outcomes(1), ["gate_red", "merged"]);
    assert_eq!(outcomes(2), ["agent_died", "merged"]);
    assert_eq!(outcomes(3), ["gate_red", "gate_red"]);
    assert_eq!(tasks[2]["last_failure"]["outcome"], "agent_died");
    let totals = &report["totals"];
    assert_eq!(
        (totals["tasks"].as_u64(), totals["done"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(totals["merged"].as_u64(), Some(landed.len() as u64));
    assert_eq!(
        totals["in_review"],
        serde_json::json!([{"task": 4, "reason": block_reason}])
    );
    assert_eq!(
        (report["runs"].as_u64(), report["crashes"].as_u64()),
        (Some(2), Some(1))
    );
    // `summary.txt` is that report, and it names the last task, rejected, as in review.
    let summary = std::fs::read_to_string(e.logs_dir().join("summary.txt")).unwrap();
    assert!(
        summary.contains("4 tasks: 3 done (3 merged on `main`)"),
        "{summary}"
    );
    assert!(
        summary.contains("\n- In review: #4 (2 attempts failed: #1 ("),
        "{summary}"
    );
}
