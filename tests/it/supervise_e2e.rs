//! The supervisor end to end (issue 4): `batty work` on a real tmux server and git repo with
//! the demo agent, checked through what a user can see afterwards: the board, the agents'
//! event logs, the status snapshot and the agents' branches.

use std::collections::BTreeMap;

use crate::common::e2e::{PHASE, Project, RUN, deliveries, time_of, yaml_str};

/// 3 agents, 12 tasks in `depends_on` chains (some pointing at later ids, so file order and
/// dependency order disagree): all end done, none starts before its dependencies are done,
/// each is delivered exactly once, and its commit is on the branch of the agent that held it
/// and on no other.
#[test]
fn twelve_tasks_with_dependencies_on_three_agents() {
    let p = Project::new(&[], "agents:\n  demo:\n    args: ['--delay', '100']\n");
    // id -> dependencies; #2 waits for #9, which is added after it.
    let deps: BTreeMap<u64, Vec<u64>> = [
        (1, vec![]),
        (2, vec![9]),
        (3, vec![]),
        (4, vec![1]),
        (5, vec![3, 4]),
        (6, vec![]),
        (7, vec![6]),
        (8, vec![5, 7]),
        (9, vec![8]),
        (10, vec![2]),
        (11, vec![6]),
        (12, vec![10, 11]),
    ]
    .into_iter()
    .collect();
    for (&id, d) in &deps {
        let earlier: Vec<String> = d.iter().filter(|&&x| x < id).map(u64::to_string).collect();
        let earlier = earlier.join(",");
        let args: &[&str] = if earlier.is_empty() {
            &[]
        } else {
            &["--depends-on", &earlier]
        };
        assert_eq!(p.add(&format!("step {id}"), args), id);
    }
    p.sb.batty(["task", "edit", "--phase", PHASE, "2", "--depends-on", "9"])
        .ok();
    let ready =
        p.sb.batty(["task", "list", "--phase", PHASE, "--ready"])
            .ok();
    assert!(
        !ready.stdout.contains("step 2"),
        "#2 must wait for #9:\n{}",
        ready.stdout
    );

    p.work(3, "demo", &["--exit-when-done"]);
    let agents = p.agents();
    assert_eq!(agents.len(), 3);
    p.wait_session_ends();

    let tasks = p.tasks();
    let dump = p.dump();
    assert_eq!(tasks.len(), 12, "{dump}");
    for (id, t) in &tasks {
        assert_eq!(t["status"], "done", "task #{id}\n{dump}");
        let started = time_of(t, "started");
        for dep in &deps[id] {
            let finished = time_of(&tasks[dep], "completed");
            assert!(
                started >= finished,
                "task #{id} started at {started} before its dependency #{dep} was done at {finished}\n{dump}"
            );
        }
    }
    let logs: BTreeMap<&str, String> = agents.iter().map(|a| (a.as_str(), p.events(a))).collect();
    let branches: BTreeMap<&str, Vec<String>> = agents
        .iter()
        .map(|a| (a.as_str(), p.commits_on(a)))
        .collect();
    let mut workers = std::collections::BTreeSet::new();
    for (id, t) in &tasks {
        let holder = t["claimed_by"].as_str().unwrap_or("");
        assert!(
            agents.iter().any(|a| a == holder),
            "task #{id} held by {holder:?}\n{dump}"
        );
        workers.insert(holder);
        let total: usize = logs.values().map(|l| deliveries(l, *id)).sum();
        assert_eq!(total, 1, "task #{id} delivered {total} times\n{dump}");
        assert_eq!(
            deliveries(&logs[holder], *id),
            1,
            "task #{id} not delivered to {holder}\n{dump}"
        );
        assert!(
            logs[holder].contains(&format!("task #{id} is done")),
            "{holder} did not see #{id} done\n{dump}"
        );
        let subject = format!("Task #{id}: step {id}");
        for (agent, commits) in &branches {
            let n = commits.iter().filter(|c| **c == subject).count();
            let want = usize::from(*agent == holder);
            assert_eq!(
                n, want,
                "`{subject}` {n} times on {agent}'s branch (holder {holder})\n{dump}"
            );
        }
    }
    assert!(
        workers.len() >= 2,
        "only {workers:?} worked; no parallelism\n{dump}"
    );
    assert_summary(&p, "12 tasks: 12 done");
}

/// A task added with `batty task add` while the session runs, after the first tasks are done
/// and the agents idle, is picked up at once and finished; the supervisor keeps waiting
/// for work meanwhile.
#[test]
fn task_added_mid_run_is_picked_up() {
    let p = Project::new(&[], "");
    p.add("first", &[]);
    p.add("second", &[]);
    p.work(2, "demo", &[]);
    let agents = p.agents();
    p.wait("the first tasks done and both agents idle", RUN, || {
        let tasks = p.tasks();
        let done = tasks.values().all(|t| t["status"] == "done");
        let idle = agents
            .iter()
            .all(|a| p.state_of(a).as_deref() == Some("idle"));
        (done && idle).then_some(())
    });
    assert!(p.session_alive(), "the supervisor must wait for more work");

    let id = p.add("late arrival", &[]);
    assert_eq!(id, 3);
    let holder = p.wait("the late task done", RUN, || {
        let tasks = p.tasks();
        let t = &tasks[&id];
        (t["status"] == "done").then(|| t["claimed_by"].as_str().unwrap_or("").to_owned())
    });
    let dump = p.dump();
    let tasks = p.tasks();
    let latency = time_of(&tasks[&id], "started") - time_of(&tasks[&id], "created");
    // Board edits take effect at once (the watcher), not at the 3 s safety re-read.
    assert!(
        latency < chrono::Duration::seconds(1),
        "late task claimed {} ms after it was added\n{dump}",
        latency.num_milliseconds()
    );
    let total: usize = agents.iter().map(|a| deliveries(&p.events(a), id)).sum();
    assert_eq!(total, 1, "{dump}");
    assert!(
        p.events(&holder)
            .contains("delivered task #3: late arrival"),
        "{dump}"
    );
    assert!(
        p.commits_on(&holder)
            .contains(&"Task #3: late arrival".to_owned()),
        "{dump}"
    );
    p.sb.batty(["stop", PHASE]).ok();
    assert!(!p.session_alive());
}

/// The demo agent asks `Continue? [y/n]` on task 1 only; the demo adapter's default answer
/// `y` is sent after the grace period, and the task finishes.
#[test]
fn routine_question_is_answered_automatically() {
    let p = Project::new(&[], "agents:\n  demo:\n    args: ['--ask-on', '1']\n");
    p.add("asks first", &[]);
    p.add("asks nothing", &[]);
    p.work(1, "demo", &["--exit-when-done"]);
    let agent = p.agents().remove(0);
    p.wait_session_ends();

    let dump = p.dump();
    let tasks = p.tasks();
    assert!(tasks.values().all(|t| t["status"] == "done"), "{dump}");
    let events = p.events(&agent);
    let answered: Vec<&str> = events.lines().filter(|l| l.contains("answered")).collect();
    assert_eq!(answered.len(), 1, "{dump}");
    assert!(
        answered[0].ends_with(r#"answered "y" (auto-answer)"#),
        "{dump}"
    );
    assert!(!events.contains("needs a person"), "{dump}");
    let pty = p.pty_log(&agent);
    assert!(
        pty.contains("Continue? [y/n] y"),
        "the answer reached the agent\n{dump}"
    );
    assert!(pty.contains("finished #1"), "{dump}");
    assert_summary(&p, "2 tasks: 2 done");
}

const DEPLOY: &str = "Deploy to prod? [y/n]";

fn asking_demo() -> String {
    format!(
        "agents:\n  demo:\n    args: ['--ask-on', '1', '--ask-text', {}]\n",
        yaml_str(DEPLOY)
    )
}

/// A question no rule answers is escalated: logged as needing a person, the agent shown as
/// `asking` with the question, the window flagged, nothing sent for it; then a person types
/// the answer into the pane and the task finishes.
#[test]
fn unknown_question_waits_for_a_person() {
    let p = Project::new(&[], &asking_demo());
    p.add("ship it", &[]);
    p.work(1, "demo", &["--exit-when-done"]);
    let agent = p.agents().remove(0);
    p.wait("the question escalated", RUN, || {
        p.events(&agent)
            .contains(&format!("needs a person: {DEPLOY}"))
            .then_some(())
    });
    let snap = p.wait("the agent shown asking", RUN, || {
        let snap = p.snapshot()?;
        (snap["agents"][&agent]["state"] == "asking").then_some(snap)
    });
    let dump = p.dump();
    assert_eq!(snap["agents"][&agent]["question"], DEPLOY, "{dump}");
    assert_eq!(snap["agents"][&agent]["task"], 1, "{dump}");
    let windows = p.sb.tmux([
        "list-windows",
        "-t",
        &format!("={}", crate::common::e2e::session()),
        "-F",
        "#{window_name}",
    ]);
    assert!(
        windows.lines().any(|w| w == format!("{agent}!")),
        "window flagged: {windows}\n{dump}"
    );
    // Escalating and scheduling an auto-answer are the two outcomes of one decision: no
    // `answering` line means nothing will be typed for the person.
    let events = p.events(&agent);
    assert!(!events.contains("answering"), "{dump}");
    assert!(!events.contains("answered"), "{dump}");
    assert_eq!(p.status_of(1), "in-progress", "{dump}");
    let screen = p.sb.tmux(["capture-pane", "-p", "-t", &p.pane(&agent)]);
    assert!(screen.trim_end().ends_with(DEPLOY), "{screen}\n{dump}");

    let pane = p.pane(&agent);
    p.sb.tmux(["send-keys", "-t", &pane, "-l", "y"]);
    p.sb.tmux(["send-keys", "-t", &pane, "Enter"]);
    p.wait_session_ends();
    let dump = p.dump();
    assert_eq!(p.status_of(1), "done", "{dump}");
    assert!(p.pty_log(&agent).contains("finished #1"), "{dump}");
    assert_summary(&p, "1 tasks: 1 done");
}

/// With `supervisor.escalate_command`, an escalated question goes to that command on stdin and
/// its stdout is sent as the answer.
#[test]
fn escalate_command_answers_the_question() {
    // The command runs in the project root, so `../` is the sandbox's own folder.
    let p = Project::new(
        &["escalate_command: 'cat > ../asked.txt; echo y'"],
        &asking_demo(),
    );
    let asked = p.sb.root.join("asked.txt");
    p.add("ship it", &[]);
    p.work(1, "demo", &["--exit-when-done"]);
    let agent = p.agents().remove(0);
    p.wait_session_ends();

    let dump = p.dump();
    assert_eq!(p.status_of(1), "done", "{dump}");
    let events = p.events(&agent);
    assert!(
        events.contains(&format!("needs a person: {DEPLOY}")),
        "{dump}"
    );
    assert!(
        events.contains(r#"answered "y" (escalate_command)"#),
        "{dump}"
    );
    let stdin = std::fs::read_to_string(&asked).unwrap_or_default();
    assert_eq!(stdin.trim_end(), DEPLOY, "the question on stdin\n{dump}");
    assert!(p.pty_log(&agent).contains(&format!("{DEPLOY} y")), "{dump}");
    assert_summary(&p, "1 tasks: 1 done");
}

/// An agent crashes on task 1: it is restarted in its own window, and the task's next
/// attempt goes to it again with a note saying what became of the first (its commits are on
/// its branch); everything finishes with nobody's help. The wrapper crashes only the first
/// time it runs.
#[test]
fn a_dead_agent_is_revived_and_finishes_its_task() {
    let p = Project::new(&[], "");
    let root = p.sb.root.display().to_string();
    let script = p.sb.root.join("crashy.sh");
    let batty = crate::common::BATTY;
    std::fs::write(
        &script,
        format!(
            "if mkdir '{root}/crashed' 2>/dev/null; then exec '{batty}' demo-agent --die-on 1; fi\n\
             exec '{batty}' demo-agent\n"
        ),
    )
    .unwrap();
    p.append_config(&format!(
        "agents:\n  crashy:\n    command: {}\n    ready_pattern: '^demo>\\s*$'\n",
        yaml_str(&format!("sh '{}'", script.display()))
    ));
    for title in ["one", "two"] {
        p.add(title, &[]);
    }
    p.work(1, "crashy", &["--exit-when-done"]);
    let agent = p.agents().remove(0);
    p.wait_session_ends();

    let dump = p.dump();
    let events = p.events(&agent);
    assert!(events.contains("agent process exited"), "{dump}");
    assert!(events.contains("agent restarted"), "{dump}");
    assert!(
        events.contains("task #1 attempt 1 failed: the agent's process exited"),
        "{dump}"
    );
    assert_eq!(deliveries(&events, 1), 2, "{dump}");
    assert!(
        p.pty_log(&agent)
            .contains("Note: attempt 1 of this task failed"),
        "the second attempt says what became of the first\n{dump}"
    );
    for (id, t) in &p.tasks() {
        assert_eq!(t["status"], "done", "task #{id}\n{dump}");
    }
    assert!(
        p.commits_on(&agent).contains(&"Task #1: one".to_owned()),
        "{dump}"
    );
    assert_summary(&p, "2 tasks: 2 done");
}

/// An agent that keeps going idle without finishing is reminded, then the task goes to a
/// person: in review, blocked with the reason, no longer claimed, and the run still ends.
#[test]
fn unfinished_task_goes_to_review_and_the_run_ends() {
    let p = Project::new(
        &["max_retries: 1", "max_attempts: 2"],
        "agents:\n  demo:\n    args: ['--no-done']\n",
    );
    p.add("never finished", &[]);
    p.add("depends on it", &["--depends-on", "1"]);
    p.work(1, "demo", &["--exit-when-done"]);
    let agent = p.agents().remove(0);
    p.wait_session_ends();

    let dump = p.dump();
    let tasks = p.tasks();
    assert_eq!(tasks[&1]["status"], "review", "{dump}");
    assert_eq!(tasks[&1]["blocked"], true, "{dump}");
    assert!(
        tasks[&1]["block_reason"]
            .as_str()
            .is_some_and(|r| r.contains("2 attempts failed") && r.contains("went idle 2 times")),
        "{dump}"
    );
    assert!(
        tasks[&1].get("claimed_by").is_none_or(|c| c.is_null()),
        "{dump}"
    );
    // Its dependant never became ready, and nothing was dispatched past the give-up.
    assert_eq!(tasks[&2]["status"], "backlog", "{dump}");
    let events = p.events(&agent);
    assert_eq!(deliveries(&events, 1), 2, "{dump}");
    assert!(events.contains("reminded about task #1 (1/1)"), "{dump}");
    assert_summary(&p, "0 done");
    assert!(p.summary().contains("1 in review"), "{dump}");
}

/// A person moves a claimed task back to the queue: the claim is released, and the status
/// they chose stays.
#[test]
fn task_moved_back_by_a_person_is_released() {
    let p = Project::new(&[], "agents:\n  demo:\n    args: ['--delay', '20000']\n");
    p.add("long job", &[]);
    p.work(1, "demo", &[]);
    let agent = p.agents().remove(0);
    p.wait("the task claimed", RUN, || {
        (p.tasks()[&1]["claimed_by"] == agent.as_str()).then_some(())
    });
    p.sb.batty(["task", "move", "1", "backlog", "--phase", PHASE])
        .ok();
    p.wait("the claim released", RUN, || {
        p.events(&agent)
            .contains("task #1 moved back to backlog; claim released")
            .then_some(())
    });
    let dump = p.dump();
    let task = &p.tasks()[&1];
    assert_eq!(task["status"], "backlog", "{dump}");
    assert!(task.get("claimed_by").is_none_or(|c| c.is_null()), "{dump}");
    assert_eq!(p.state_of(&agent).as_deref(), Some("busy"), "{dump}");
    p.sb.batty(["stop", PHASE]).ok();
}

/// The run's summary (the report as markdown) says `what`.
fn assert_summary(p: &Project, what: &str) {
    let summary = p.summary();
    assert!(summary.contains(what), "summary lacks {what:?}:\n{summary}");
}
