//! The merge queue end to end: `batty work` with demo agents on a private tmux server and a
//! real git repo. Finished tasks land on `main` one at a time behind a gate; conflicts and red
//! gates go back to the agent; a dirty main checkout is never touched; a supervisor killed in
//! the middle of a merge recovers and lands the task exactly once.

use crate::common::e2e5::{
    DEADLINE, E2e, PHASE, Setup, attempts_logged, process_alive, read_lines,
};
use crate::common::wait_until;
use batty::merge::EntryState;

#[test]
fn three_agents_land_every_commit_linearly_with_one_gate_run_per_merge() {
    let e = E2e::new();
    let gate_log = e.outside("gate.log");
    // The gate sees the merged tree: the task's own file must be there.
    let gate = format!(
        "test -f demo/task-$BATTY_MERGE_TASK.txt && echo $BATTY_MERGE_TASK >> {}",
        gate_log.display()
    );
    e.configure(Setup {
        gate: Some(&gate),
        delay_ms: 300,
        ..Setup::default()
    });
    let ids: Vec<u64> = (1..=6).map(|i| e.add_task(&format!("part {i}"))).collect();
    e.work(3, true);
    e.wait_session_end();

    assert!(
        std::fs::read_to_string(e.logs_dir().join("summary.txt"))
            .unwrap()
            .contains("6 tasks: 6 done (6 merged on `main`)"),
        "the summary counts every merge"
    );
    for &id in &ids {
        assert_eq!(e.task_status(id), "done", "task #{id}");
        assert_eq!(e.landed(id), 1, "task #{id} on main");
        assert_eq!(e.queue_state(id), Some(EntryState::Merged), "task #{id}");
        assert!(e.sb.path(format!("demo/task-{id}.txt")).is_file());
    }
    let agents: std::collections::BTreeSet<String> =
        e.queue().list().iter().map(|q| q.agent.clone()).collect();
    assert_eq!(agents.len(), 3, "every agent did work: {agents:?}");
    e.assert_tidy();
    // Exactly the task commits on top of the start, nothing else.
    assert_eq!(e.subjects("main").len(), ids.len() + 2);
    let mut gated: Vec<u64> = read_lines(&gate_log)
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    gated.sort();
    assert_eq!(gated, ids, "one gate run per merge");
}

#[test]
fn same_line_edits_give_one_clean_merge_and_one_conflict_that_is_redone() {
    let e = E2e::new();
    e.sb.write("shared.txt", "original\n");
    e.sb.git(["add", "shared.txt"]);
    e.sb.git(["commit", "-qm", "shared file"]);
    // Both tasks rewrite the one line of `shared.txt`. A task takes a while, so the second
    // goes to the other (idle) agent while the first still works: both start from one base.
    e.configure(Setup {
        delay_ms: 800,
        demo_args: &["--file", "shared.txt", "--content", "{title}\\n"],
        ..Setup::default()
    });
    e.work(2, false);
    wait_until("both agents idle", DEADLINE, || {
        e.agents_idle(2).then_some(())
    });
    let alpha = e.add_task("alpha");
    let beta = e.add_task("beta");
    wait_until("both tasks merged", DEADLINE, || {
        let q = e.queue();
        [alpha, beta]
            .iter()
            .all(|&id| q.get(id).is_some_and(|x| x.state == EntryState::Merged))
            .then_some(())
    });
    wait_until("both agents idle again", DEADLINE, || {
        e.agents_idle(2).then_some(())
    });

    let q = e.queue();
    let (a, b) = (q.get(alpha).unwrap(), q.get(beta).unwrap());
    assert_ne!(a.agent, b.agent, "one task per agent");
    // Exactly one of them conflicted once, was sent back, redone and merged.
    let (winner, loser) = match (a.attempts, b.attempts) {
        (0, 1) => ((alpha, "alpha"), (beta, "beta")),
        (1, 0) => ((beta, "beta"), (alpha, "alpha")),
        other => panic!("attempts (alpha, beta) = {other:?}"),
    };
    let loser_agent = &q.get(loser.0).unwrap().agent;
    let events =
        std::fs::read_to_string(e.logs_dir().join(format!("{loser_agent}.events.log"))).unwrap();
    let sent_back = format!(
        "task #{}: merge rejected: conflict in `shared.txt`",
        loser.0
    );
    assert_eq!(events.matches(&sent_back).count(), 1, "{events}");
    assert!(
        events.contains(&format!("delivered task #{}", loser.0)),
        "{events}"
    );
    for (id, _) in [winner, loser] {
        assert_eq!(e.task_status(id), "done", "task #{id}");
        assert_eq!(e.landed(id), 1, "task #{id} on main");
    }
    // The redone task landed last, so its line wins.
    let loser_line = format!("{}\n", loser.1);
    assert_eq!(e.sb.git(["show", "main:shared.txt"]) + "\n", loser_line);
    assert_eq!(e.sb.read("shared.txt"), loser_line);
    let subjects = e.subjects("main");
    assert_eq!(
        subjects[..2],
        [
            format!("Task #{}: {}", loser.0, loser.1),
            format!("Task #{}: {}", winner.0, winner.1)
        ]
    );
    e.assert_tidy();
    e.stop();
}

#[test]
fn red_gate_sends_the_task_back_then_moves_it_to_review() {
    let e = E2e::new();
    let gate_log = e.outside("gate.log");
    let gate = format!(
        "echo run >> {}; echo 'tests: 1 failed'; exit 1",
        gate_log.display()
    );
    e.configure(Setup {
        gate: Some(&gate),
        max_attempts: 2,
        ..Setup::default()
    });
    let start = e.main_tip();
    let id = e.add_task("doomed");
    e.work(1, false);
    wait_until("the task in review", DEADLINE, || {
        (e.task_status(id) == "review").then_some(())
    });

    let task = e.task(id);
    let reason = task["block_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("2 attempts failed")
            && reason.contains("gate failed (exit code 1)")
            && reason.contains("tests: 1 failed"),
        "block_reason: {reason:?}"
    );
    assert_eq!(read_lines(&gate_log).len(), 2, "gate runs");
    let entry = e.queue().get(id).cloned().unwrap();
    assert_eq!((entry.state, entry.attempts), (EntryState::Failed, 2));
    let events = e.events();
    assert_eq!(
        events
            .matches(&format!(
                "task #{id}: merge rejected: gate failed (exit code 1)"
            ))
            .count(),
        2,
        "{events}"
    );
    assert_eq!(
        events
            .matches(&format!("delivered task #{id} (attempt 2)"))
            .count(),
        1,
        "sent back once\n{events}"
    );
    assert!(
        events.contains(&format!("task #{id} moved to review: 2 attempts failed")),
        "{events}"
    );
    assert_eq!(e.main_tip(), start, "main unchanged");
    assert_eq!(e.landed(id), 0);
    // The agent was told why, with the tail of the gate's output.
    let pane = e.sb.tmux([
        "capture-pane",
        "-p",
        "-J",
        "-S",
        "-500",
        "-t",
        &format!("=batty-{PHASE}:1.0"),
    ]);
    assert!(
        pane.contains(&format!(
            "Task #{id} was not merged: the merge gate failed (exit code 1)"
        )) && pane.contains("\ntests: 1 failed\n"),
        "{pane}"
    );
    // The work is kept on the agent's branch.
    assert_eq!(e.subjects(&entry.branch)[0], format!("Task #{id}: doomed"));
    let log = std::fs::read_to_string(e.logs_dir().join(format!("merge-{id}.log"))).unwrap();
    let output = log.lines().filter(|l| *l == "tests: 1 failed").count();
    assert_eq!(output, 2, "gate output logged per run: {log}");
    e.assert_tidy();
    e.stop();
}

#[test]
fn dirty_main_checkout_is_never_touched_and_the_merge_waits_for_it() {
    let e = E2e::new();
    e.configure(Setup::default());
    let start = e.main_tip();
    let mine = "test repo\nmy own edit, not committed\n";
    e.sb.write("README.md", mine);
    let id = e.add_task("elsewhere");
    e.work(1, true);
    let waiting = format!(
        "task #{id}: waiting: `main` is checked out in {} with uncommitted changes (`README.md`)",
        e.sb.repo.display()
    );
    wait_until("the merge waiting for the dirty checkout", DEADLINE, || {
        e.events().contains(&waiting).then_some(())
    });
    // It keeps waiting: a second attempt finds the checkout dirty again and puts the task
    // back in line.
    wait_until("a second attempt to end", DEADLINE, || {
        (attempts_logged(&e, id) >= 2 && e.queue_state(id) == Some(EntryState::Waiting))
            .then_some(())
    });
    assert_eq!(e.main_tip(), start, "main moved while dirty");
    assert_eq!(e.sb.read("README.md"), mine);
    assert_eq!(e.events().matches(&waiting).count(), 1, "said once");
    let entry = e.queue().get(id).cloned().unwrap();
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("`README.md`"),
        "{entry:?}"
    );
    assert_eq!(e.task_status(id), "done");
    let list = e.sb.batty(["merge", PHASE, "--list"]).ok().stdout;
    assert!(
        list.contains(&format!("#{id}")) && list.contains("waiting: `main` is checked out"),
        "{list}"
    );

    e.sb.git(["commit", "-qam", "my edit"]);
    e.wait_session_end();
    assert_eq!(e.landed(id), 1);
    assert_eq!(
        e.subjects("main")[..2],
        [format!("Task #{id}: elsewhere"), "my edit".to_owned()]
    );
    assert_eq!(e.sb.read("README.md"), mine);
    assert_eq!(e.sb.read(format!("demo/task-{id}.txt")), "elsewhere\n");
    e.assert_tidy();
}

#[test]
fn untracked_file_in_the_way_is_never_overwritten() {
    let e = E2e::new();
    e.configure(Setup::default());
    let start = e.main_tip();
    // The task will create this very file; the user has their own copy, untracked.
    let id = 1;
    let theirs = format!("demo/task-{id}.txt");
    e.sb.write(&theirs, "mine\n");
    assert_eq!(e.add_task("collides"), id);
    e.work(1, true);
    let waiting = format!("uncommitted changes (`{theirs}`)");
    wait_until("the merge waiting for the untracked file", DEADLINE, || {
        e.events().contains(&waiting).then_some(())
    });
    assert_eq!(e.main_tip(), start);
    assert_eq!(e.sb.read(&theirs), "mine\n");
    assert_eq!(e.queue_state(id), Some(EntryState::Waiting));

    std::fs::remove_file(e.sb.path(&theirs)).unwrap();
    e.wait_session_end();
    assert_eq!(e.landed(id), 1);
    assert_eq!(e.sb.read(&theirs), "collides\n");
    e.assert_tidy();
}

#[test]
fn supervisor_killed_mid_merge_recovers_and_lands_the_task_once() {
    let e = E2e::new();
    let (pids, go, passed) = (e.outside("gate.pids"), e.outside("GO"), e.outside("passed"));
    // The gate records its pid (its process group), blocks until GO exists, then passes.
    let gate = format!(
        "echo $$ >> {pids}; while [ ! -f {go} ]; do sleep 0.05; done; echo $$ >> {passed}",
        pids = pids.display(),
        go = go.display(),
        passed = passed.display()
    );
    e.configure(Setup {
        gate: Some(&gate),
        ..Setup::default()
    });
    let start = e.main_tip();
    let id = e.add_task("survives");
    e.work(1, false);
    let first_gate: u32 = wait_until("the gate to start", DEADLINE, || {
        read_lines(&pids).first().map(|p| p.parse().unwrap())
    });
    let supervisor = e
        .supervisor_pid()
        .expect("status snapshot names the supervisor");
    assert!(process_alive(supervisor));
    assert_eq!(e.queue_state(id), Some(EntryState::Merging));
    std::process::Command::new("kill")
        .args(["-KILL", &supervisor.to_string()])
        .status()
        .unwrap();
    wait_until("the supervisor dead", DEADLINE, || {
        (!process_alive(supervisor)).then_some(())
    });
    // Its gate lives on, orphaned, still blocked.
    assert!(process_alive(first_gate));
    assert_eq!(e.main_tip(), start);

    let out =
        e.sb.batty(["work", PHASE, "--parallel", "1", "--agent", "demo"])
            .ok();
    assert!(
        out.stdout.contains("restarted the supervisor"),
        "{}",
        out.stdout
    );
    wait_until("recovery to end the orphaned gate", DEADLINE, || {
        (!process_alive(first_gate)).then_some(())
    });
    let second_gate: u32 = wait_until("the merge to start again", DEADLINE, || {
        read_lines(&pids).get(1).map(|p| p.parse().unwrap())
    });
    assert_eq!(e.main_tip(), start);
    std::fs::write(&go, "").unwrap();
    wait_until("the task merged", DEADLINE, || {
        (e.queue_state(id) == Some(EntryState::Merged)).then_some(())
    });

    assert_eq!(e.landed(id), 1, "landed exactly once");
    assert_eq!(e.subjects("main").len(), 3);
    assert_eq!(read_lines(&passed), [second_gate.to_string()]);
    assert_eq!(read_lines(&pids).len(), 2, "no third gate run");
    assert!(!process_alive(second_gate));
    assert_eq!(e.task_status(id), "done");
    e.assert_tidy();
    e.stop();
}

/// Work an agent finished while no supervisor ran (`batty task done` with the supervisor
/// dead) is queued and merged when the supervisor comes back.
#[test]
fn task_done_while_the_supervisor_was_down_is_merged_on_restart() {
    let e = E2e::new();
    e.configure(Setup::default());
    let start = e.main_tip();
    e.work(1, false);
    wait_until("the agent idle", DEADLINE, || {
        e.agents_idle(1).then_some(())
    });
    let supervisor = e
        .supervisor_pid()
        .expect("status snapshot names the supervisor");
    std::process::Command::new("kill")
        .args(["-KILL", &supervisor.to_string()])
        .status()
        .unwrap();
    wait_until("the supervisor dead", DEADLINE, || {
        (!process_alive(supervisor)).then_some(())
    });

    // Meanwhile a person hands the agent a task and it finishes it by itself.
    let id = e.add_task("done while away");
    let run: serde_json::Value =
        serde_json::from_str(&e.sb.read(format!(".batty/run/{PHASE}/state.json"))).unwrap();
    let agent = run["agents"][0]["name"].as_str().unwrap().to_owned();
    let wt = std::path::PathBuf::from(run["agents"][0]["worktree"].as_str().unwrap());
    let id_text = id.to_string();
    e.sb.batty([
        "task", "claim", &id_text, "--phase", PHASE, "--agent", &agent,
    ])
    .ok();
    std::fs::write(wt.join("away.txt"), "finished without a supervisor\n").unwrap();
    e.sb.git_in(&wt, ["add", "away.txt"]);
    e.sb.git_in(&wt, ["commit", "-q", "-m", "Task #1: done while away"]);
    e.sb.batty(["task", "done", &id_text, "--phase", PHASE])
        .ok();
    assert_eq!(e.main_tip(), start);

    e.sb.batty(["work", PHASE, "--parallel", "1", "--agent", "demo"])
        .ok();
    wait_until("the task merged", DEADLINE, || {
        (e.queue_state(id) == Some(EntryState::Merged)).then_some(())
    });
    assert_eq!(e.landed(id), 1, "{}", e.events());
    assert!(e.events().contains("was done while no supervisor ran"));
    e.stop();
    e.assert_tidy();
}

/// A task that depends on another starts only once that one's work has landed, so its agent
/// starts from a target that holds it.
#[test]
fn dependant_waits_until_its_dependency_has_landed() {
    let e = E2e::new();
    let go = e.outside("GO");
    let started = e.outside("gate-started");
    let gate = format!(
        "touch {started}; while [ ! -f {go} ]; do sleep 0.05; done",
        started = started.display(),
        go = go.display()
    );
    e.configure(Setup {
        gate: Some(&gate),
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
    e.work(2, true);
    wait_until("the first merge's gate to start", DEADLINE, || {
        started.exists().then_some(())
    });
    // The dependency is done but not landed: its dependant must still wait.
    assert_eq!(e.task_status(first), "done");
    assert_eq!(e.task_status(second), "backlog", "{}", e.events());

    std::fs::write(&go, "").unwrap();
    e.wait_session_end();
    assert_eq!(e.task_status(second), "done");
    let subjects = e.subjects("main");
    assert_eq!(
        subjects[..2],
        [
            format!("Task #{second}: built on it"),
            format!("Task #{first}: foundation")
        ],
        "{subjects:?}"
    );
    e.assert_tidy();
}
