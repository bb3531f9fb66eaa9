//! Recovery end to end (issue 8): `batty work` on a real tmux server and git repository with
//! demo agents that exit, hang, spin and crash, checked through what a person sees after: the
//! board, the target branch, the attempt record, the agents' pty logs and `batty status`.
//! Each test waits on conditions with deadlines. `BATTY_E2E_BIG=1` runs bigger boards.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::common::e2e::{PHASE, Project, yaml_str};

/// Generous: two cores shared with other builds and tests. A passing run takes a fraction.
const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(30);

fn big() -> bool {
    std::env::var_os("BATTY_E2E_BIG").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A project whose config is exactly: fast supervisor timings plus `supervisor` lines, the
/// merge queue on (landing on `main`), and the demo agent with `demo` arguments. `.gitignore`
/// is committed so the main checkout is clean and merges are not held up.
fn project(supervisor: &[&str], demo: &[&str]) -> Project {
    let p = Project::new(&[], "");
    let mut config = String::from(
        "supervisor:\n  silence: 100ms\n  answer_grace: 100ms\n  reminder_settle: 300ms\n  \
         restart_backoff: 200ms\n  delivery_timeout: 5s\n",
    );
    for line in supervisor {
        config.push_str(&format!("  {line}\n"));
    }
    config.push_str("merge:\n  enabled: true\n  target: main\n");
    let args: Vec<String> = demo.iter().map(|a| yaml_str(a)).collect();
    config.push_str(&format!(
        "agents:\n  demo:\n    args: [{}]\n",
        args.join(", ")
    ));
    p.sb.write(".batty/config.yml", &config);
    p.sb.git(["add", ".gitignore"]);
    p.sb.git(["commit", "-qm", "ignore batty state"]);
    p
}

/// The attempt record, one JSON value per line.
fn record(p: &Project) -> Vec<serde_json::Value> {
    let path = p.sb.path(format!(".batty/logs/{PHASE}/attempts.jsonl"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Record lines of `event` for `task`.
fn events_of(rec: &[serde_json::Value], event: &str, task: u64) -> Vec<serde_json::Value> {
    rec.iter()
        .filter(|r| r["event"] == event && r["task"] == task)
        .cloned()
        .collect()
}

/// Subjects of the commits on `main`.
fn on_main(p: &Project) -> Vec<String> {
    p.sb.git(["log", "--format=%s", "main"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// How many commits on `main` are the demo agent's for task `id` (`Task #<id>: <title>`).
fn landed(main: &[String], id: u64, title: &str) -> usize {
    let subject = format!("Task #{id}: {title}");
    main.iter().filter(|s| **s == subject).count()
}

/// Ids of tasks whose work the agent's process itself announced (`working on #<id>`): a
/// paste that reached its pane. Its pty log spans every process it ran.
fn worked_on(p: &Project, agent: &str) -> BTreeSet<u64> {
    p.pty_log(agent)
        .lines()
        .filter_map(|l| l.split("working on #").nth(1))
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// Every task done on the board and its commit on `main` exactly once.
fn all_done_and_landed(p: &Project, titles: &BTreeMap<u64, String>) -> bool {
    let tasks = p.tasks();
    if tasks.len() != titles.len() || tasks.values().any(|t| t["status"] != "done") {
        return false;
    }
    let main = on_main(p);
    titles
        .iter()
        .all(|(id, title)| landed(&main, *id, title) == 1)
}

fn add_tasks(p: &Project, titles: &mut BTreeMap<u64, String>, n: usize) {
    for _ in 0..n {
        let title = format!("step {}", titles.len() + 1);
        let id = p.add(&title, &[]);
        titles.insert(id, title);
    }
}

/// What `Project::dump` shows, plus the merge logs and any lock file left in the merge
/// worktree's git folder.
fn dump(p: &Project) -> String {
    let mut out = p.dump();
    let logs = p.sb.path(format!(".batty/logs/{PHASE}"));
    let mut files: Vec<_> = std::fs::read_dir(&logs)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("merge-") {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            out.push_str(&format!("--- {name}\n{text}\n"));
        }
    }
    let gitdir = p.sb.path(".git/worktrees/.merge");
    if let Ok(d) = std::fs::read_dir(&gitdir) {
        let names: Vec<String> = d
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        out.push_str(&format!("--- .git/worktrees/.merge\n{}\n", names.join(" ")));
    }
    out
}

/// `common::wait_until`, with [`dump`] on a timeout.
fn wait<T>(p: &Project, what: &str, deadline: Duration, cond: impl FnMut() -> Option<T>) -> T {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::common::wait_until(what, deadline, cond)
    }));
    match res {
        Ok(v) => v,
        Err(_) => panic!(
            "timed out after {deadline:?} waiting for {what}\n{}",
            dump(p)
        ),
    }
}

/// The tmux server still answers, with the harness's own session and ours.
fn tmux_alive(p: &Project) -> bool {
    p.sb.tmux_ok(["list-sessions", "-F", "#{session_name}"])
        .is_some_and(|s| s.lines().any(|l| l == "batty-p"))
}

/// (a) Four agents that each exit (code 0, as when their context runs out) after three tasks
/// finish a 30-task board with nobody's help: every agent is revived in place, takes work
/// again, every task is done once, its commit lands on `main` once, and no attempt counts as
/// failed (an agent that exits right after finishing did finish).
#[test]
fn agents_that_exit_after_a_few_tasks_finish_the_board_alone() {
    let n = if big() { 70 } else { 30 };
    let p = project(
        &["max_restarts: 50"],
        &["--exit-after", "3", "--delay", "30"],
    );
    let mut titles = BTreeMap::new();
    add_tasks(&p, &mut titles, n);
    p.work(4, "demo", &["--exit-when-done"]);
    let agents = p.agents();
    wait(&p, "the board finished and the session ended", LONG, || {
        (!p.session_alive()).then_some(())
    });

    let dump = dump(&p);
    assert!(all_done_and_landed(&p, &titles), "{dump}");
    let rec = record(&p);
    for id in titles.keys() {
        let ended = events_of(&rec, "ended", *id);
        let outcomes: Vec<&str> = ended.iter().filter_map(|e| e["outcome"].as_str()).collect();
        assert_eq!(outcomes, ["done"], "task #{id}: {outcomes:?}\n{dump}");
    }
    let mut revivals = 0;
    for a in &agents {
        let events = p.events(a);
        let restarts = events.matches("agent restarted").count();
        assert!(restarts >= 1, "{a} was never revived\n{dump}");
        revivals += restarts;
        assert!(
            p.pty_log(a).contains("context full, exiting"),
            "{a} never ran out\n{dump}"
        );
    }
    // Each life does three tasks; four lives were there at the start.
    assert!(revivals >= n / 3 - 4, "{revivals} revivals\n{dump}");
    assert_nothing_parked(&p, &dump);
}

/// Every commit landed, so no branch had work to park before its next task (a merge landing
/// while the branch was being put on the target is not a reason to).
fn assert_nothing_parked(p: &Project, dump: &str) {
    let parked = p.sb.git([
        "for-each-ref",
        "--format=%(refname)",
        "refs/batty/p/rejected/",
    ]);
    assert_eq!(parked, "", "{dump}");
    for a in p.agents() {
        assert!(
            !p.events(&a).contains("moved off the branch"),
            "{a}\n{dump}"
        );
    }
}

/// (b) A wedged agent (silent, deaf to C-c) holding task 1 is interrupted after
/// `stuck_after`, then restarted after `interrupt_grace`; a spinning one (output, never
/// finishing) on task 2, whose front matter says `timeout: 2s`, is interrupted at its own
/// timeout, long before `supervisor.task_timeout`. Both attempts count as failed with their
/// reason, and both tasks are then done by the agent.
#[test]
fn a_hung_agent_is_restarted_and_a_spinning_one_interrupted() {
    let once = tempfile::tempdir().unwrap();
    let dir = once.path().display().to_string();
    let p = project(
        &[
            "stuck_after: 1s",
            "interrupt_grace: 1s",
            "task_timeout: 10m",
        ],
        &["--hang-on", "1", "--spin-on", "2", "--once-dir", &dir],
    );
    let mut titles = BTreeMap::new();
    add_tasks(&p, &mut titles, 3);
    set_front_matter(&p, 2, "timeout: 2s");
    p.work(1, "demo", &["--exit-when-done"]);
    let agent = p.agents().remove(0);
    wait(&p, "the board finished and the session ended", LONG, || {
        (!p.session_alive()).then_some(())
    });

    let dump = dump(&p);
    assert!(all_done_and_landed(&p, &titles), "{dump}");
    let rec = record(&p);
    let outcome = |id: u64| -> Vec<(String, String)> {
        events_of(&rec, "ended", id)
            .iter()
            .map(|e| {
                (
                    e["outcome"].as_str().unwrap_or("").to_owned(),
                    e["error"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let one = outcome(1);
    assert_eq!(one.len(), 2, "{one:?}\n{dump}");
    assert_eq!(one[0].0, "hang_timeout", "{one:?}\n{dump}");
    assert!(
        one[0].1.contains("did not come back to its prompt"),
        "{one:?}\n{dump}"
    );
    assert_eq!(one[1].0, "done", "{dump}");
    let two = outcome(2);
    assert_eq!(two.len(), 2, "{two:?}\n{dump}");
    assert_eq!(
        (two[0].0.as_str(), two[0].1.as_str()),
        ("hang_timeout", "it hung and was interrupted"),
        "{dump}"
    );
    assert_eq!(two[1].0, "done", "{dump}");
    let events = p.events(&agent);
    assert!(
        events.contains("task #1: no output for 1s; interrupted"),
        "{dump}"
    );
    assert!(events.contains("restarting the agent: it hung"), "{dump}");
    assert!(
        events.contains("task #2: held for 2s; interrupted"),
        "the task's own timeout\n{dump}"
    );
    assert!(
        p.pty_log(&agent).contains("interrupted; dropped #2"),
        "the spin ended by C-c\n{dump}"
    );
}

/// Adds a line to task `id`'s front matter (a key kanban-md does not know).
fn set_front_matter(p: &Project, id: u64, line: &str) {
    let dir = p.sb.path(format!(".batty/kanban/{PHASE}/tasks"));
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|f| {
            std::fs::read_to_string(f).is_ok_and(|t| t.lines().any(|l| l == format!("id: {id}")))
        })
        .unwrap_or_else(|| panic!("no file for task #{id}"));
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replacen(&format!("id: {id}\n"), &format!("id: {id}\n{line}\n"), 1);
    std::fs::write(&file, text).unwrap();
}

/// (c) A task that crashes its agent every time (after committing) ends in `review` after
/// `max_attempts` (3) attempts, with each attempt's reason in `block_reason`, and its commit
/// kept under the ref the reason names; every later attempt was told the commits the earlier
/// one made and how its screen ended. The other tasks are done and land meanwhile.
#[test]
fn a_task_that_crashes_every_agent_goes_to_review_with_its_reasons() {
    let p = project(&["max_attempts: 3"], &["--crash-on", "2"]);
    let mut titles = BTreeMap::new();
    add_tasks(&p, &mut titles, 4);
    p.work(2, "demo", &["--exit-when-done"]);
    wait(&p, "the session ended", LONG, || {
        (!p.session_alive()).then_some(())
    });

    let dump = dump(&p);
    let tasks = p.tasks();
    let main = on_main(&p);
    for id in [1, 3, 4] {
        assert_eq!(tasks[&id]["status"], "done", "#{id}\n{dump}");
        assert_eq!(landed(&main, id, &titles[&id]), 1, "#{id}\n{dump}");
    }
    let t = &tasks[&2];
    assert_eq!(t["status"], "review", "{dump}");
    assert_eq!(t["blocked"], true, "{dump}");
    let reason = t["block_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("3 attempts failed: "),
        "{reason}\n{dump}"
    );
    for n in 1..=3 {
        let attempt = format!("#{n} (");
        assert!(reason.contains(&attempt), "{attempt} in {reason}\n{dump}");
    }
    assert_eq!(
        reason
            .matches("agent_died): the agent's process exited")
            .count(),
        3,
        "{reason}\n{dump}"
    );
    // The exit status is told when tmux knows it within the moment batty waits: tmux marks
    // a pane dead only once its pty is closed too, which a child of the agent still holding
    // it can delay past that.
    assert!(
        reason.contains("the agent's process exited (exit status 3)"),
        "{reason}\n{dump}"
    );
    assert_eq!(landed(&main, 2, &titles[&2]), 0, "{dump}");
    let rejected = reason
        .split('`')
        .find(|s| s.starts_with("refs/batty/"))
        .unwrap_or_else(|| panic!("no ref named in {reason}\n{dump}"));
    let kept = p.sb.git(["log", "--format=%s", rejected]);
    assert!(
        kept.lines().any(|s| s == "Task #2: step 2"),
        "{rejected}: {kept}\n{dump}"
    );
    let rec = record(&p);
    let delivered = events_of(&rec, "delivered", 2);
    assert_eq!(delivered.len(), 3, "{delivered:?}\n{dump}");
    for d in &delivered[1..] {
        let note = d["note"].as_str().unwrap_or_default();
        assert!(
            note.contains("Task #2: step 2") && note.contains("crashing on #2"),
            "a resume note names the commits and the last screen: {note:?}\n{dump}"
        );
    }
}

/// (d) Ten rounds of: add tasks, `batty work`, wait for some of them to be done, `batty stop`
/// (agents killed mid-task). Then one last run finishes the board. Each agent's pane received
/// only tasks the record says were delivered to that agent, and every task's commit is on
/// `main` exactly once.
#[test]
fn ten_rounds_of_stop_and_work_paste_only_to_the_claim_holder() {
    let rounds = if big() { 20 } else { 10 };
    let p = project(&[], &["--delay", "300"]);
    let mut titles = BTreeMap::new();
    for round in 0..rounds {
        add_tasks(&p, &mut titles, 3);
        p.work(3, "demo", &[]);
        let before = titles.len() - 3;
        wait(
            &p,
            &format!("round {round}: a task of it done"),
            LONG,
            || {
                let tasks = p.tasks();
                tasks
                    .iter()
                    .any(|(id, t)| *id as usize > before && t["status"] == "done")
                    .then_some(())
            },
        );
        p.sb.batty(["stop", PHASE]).ok();
    }
    p.work(3, "demo", &["--exit-when-done"]);
    wait(&p, "the board finished and the session ended", LONG, || {
        (!p.session_alive()).then_some(())
    });

    let dump = dump(&p);
    assert!(all_done_and_landed(&p, &titles), "{dump}");
    let rec = record(&p);
    let mut delivered: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for r in rec.iter().filter(|r| r["event"] == "delivered") {
        let agent = r["agent"].as_str().unwrap_or_default().to_owned();
        delivered
            .entry(agent)
            .or_default()
            .insert(r["task"].as_u64().unwrap_or(0));
    }
    for a in p.agents() {
        let got = worked_on(&p, &a);
        let meant = delivered.get(&a).cloned().unwrap_or_default();
        let stray: Vec<&u64> = got.difference(&meant).collect();
        assert!(
            stray.is_empty(),
            "{a} worked on {stray:?}, never delivered to it\n{dump}"
        );
    }
}

/// (e) The supervisor stopped by Ctrl-C in window 0: `batty status` says the session is up
/// but its supervisor is not running, and what to run; nothing is dispatched meanwhile;
/// `batty work` brings it back and the task added meanwhile is done.
#[test]
fn a_supervisor_stopped_by_ctrl_c_shows_in_status_and_work_brings_it_back() {
    let p = project(&[], &[]);
    let mut titles = BTreeMap::new();
    add_tasks(&p, &mut titles, 1);
    p.work(1, "demo", &[]);
    wait(&p, "task 1 done", SHORT, || {
        (p.status_of(1) == "done").then_some(())
    });
    p.sb.tmux(["send-keys", "-t", "=batty-p:0", "C-c"]);
    let status = wait(&p, "status shows the supervisor down", SHORT, || {
        let out = p.sb.batty(["status", PHASE, "--json"]).run();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        let phase = v["phases"][0].clone();
        (phase["state"] == "supervisor-down").then_some(phase)
    });
    let dump = dump(&p);
    assert_eq!(status["supervisor"]["running"], false, "{dump}");
    assert_eq!(status["hint"], "restart it with `batty work p`", "{dump}");
    let text = p.sb.batty(["status", PHASE]).run();
    assert!(
        text.stdout.contains("supervisor-down") && text.stdout.contains("batty work p"),
        "{}\n{}",
        text.stdout,
        text.stderr
    );
    add_tasks(&p, &mut titles, 1);
    assert_eq!(
        p.status_of(2),
        "backlog",
        "nobody dispatches while it is down"
    );

    p.work(1, "demo", &[]);
    wait(&p, "status shows it running again", SHORT, || {
        let out = p.sb.batty(["status", PHASE, "--json"]).run();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        (v["phases"][0]["state"] == "running").then_some(())
    });
    wait(
        &p,
        "the task added meanwhile done and landed",
        SHORT,
        || all_done_and_landed(&p, &titles).then_some(()),
    );
    p.sb.batty(["stop", PHASE]).ok();
}

/// (f) Agents that exit in the middle of a paste (as its first line arrives: the rest of the
/// message and its Enter meet a program that is gone), once for each of six tasks: the tmux
/// server survives every one, the dead agent is revived, and each task is pasted again and
/// done by a live agent.
#[test]
fn agents_that_exit_mid_paste_are_revived_and_tmux_survives() {
    let once = tempfile::tempdir().unwrap();
    let dir = once.path().display().to_string();
    let n = if big() { 16 } else { 6 };
    let mut args = vec!["--once-dir".to_owned(), dir];
    for id in 1..=n {
        args.extend(["--die-reading".to_owned(), id.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = project(&["max_restarts: 50"], &args);
    let mut titles = BTreeMap::new();
    add_tasks(&p, &mut titles, n);
    p.work(2, "demo", &[]);
    let agents = p.agents();
    wait(&p, "every task done and landed", LONG, || {
        assert!(tmux_alive(&p), "the tmux server died\n{}", dump(&p));
        all_done_and_landed(&p, &titles).then_some(())
    });

    let dump = dump(&p);
    assert!(tmux_alive(&p), "{dump}");
    let rec = record(&p);
    let deaths: usize = agents
        .iter()
        .map(|a| {
            // The agent's own line, not its echo in a later attempt's note.
            let log = p.pty_log(a);
            log.lines()
                .filter(|l| l.contains("dying while reading #") && !l.starts_with(' '))
                .count()
        })
        .sum();
    assert_eq!(deaths, n, "each task killed its first agent once\n{dump}");
    for id in titles.keys() {
        let delivered = events_of(&rec, "delivered", *id);
        assert!(delivered.len() >= 2, "task #{id} pasted again\n{dump}");
        let last = delivered.last().and_then(|d| d["agent"].as_str()).unwrap();
        assert!(
            worked_on(&p, last).contains(id),
            "#{id} done by {last}, which worked on it\n{dump}"
        );
    }
    assert_nothing_parked(&p, &dump);
    p.sb.batty(["stop", PHASE]).ok();
}

/// `batty work` checks the agent's program before it makes anything: a missing one is an
/// error (exit 1) naming the agent and its command, and no session or worktree is made.
#[test]
fn work_refuses_an_agent_whose_program_is_missing() {
    let p = Project::new(
        &[],
        "agents:\n  ghost: { command: \"no-such-agent-xyz --go\" }\n",
    );
    p.add("one", &[]);
    let out = p.sb.batty(["work", PHASE, "--agent", "ghost"]).fails(1);
    out.error_mentions(
        "agent `ghost`: `no-such-agent-xyz` is not on PATH (its command is `no-such-agent-xyz --go`)",
    );
    assert!(out.stderr.contains("hint: install it"), "{}", out.stderr);
    assert!(!p.session_alive());
    assert!(!p.sb.path(format!(".batty/worktrees/{PHASE}")).exists());
}

/// Agents whose program starts but exits at once (a bad flag, no login): `batty work`
/// fails (exit 1) saying that no agent came up, and how each ended.
#[test]
fn work_fails_when_no_agent_comes_up() {
    let p = Project::new(
        &[],
        "agents:\n  broken: { command: \"sh -c 'echo no login here >&2; exit 7'\" }\n",
    );
    p.add("one", &[]);
    let out =
        p.sb.batty(["work", PHASE, "-n", "2", "--agent", "broken"])
            .fails(1);
    let names = p.agents();
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: no agent came up: "),
        "{}",
        out.stderr
    );
    // (What it printed is shown when tmux read it before the program was gone.)
    for name in &names {
        let said = format!("`{name}` exited (status 7)");
        assert!(first.contains(&said), "{said} in {}", out.stderr);
    }
    assert!(
        out.stderr.contains("hint: fix how `broken` starts"),
        "{}",
        out.stderr
    );
    // One that does come up is not held up by the check.
    p.sb.batty(["stop", PHASE]).ok();
    let started = std::time::Instant::now();
    p.work(2, "demo", &[]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    p.sb.batty(["stop", PHASE]).ok();
}
