//! The merge queue end to end: `batty work` with demo agents on a private tmux server and a
//! real git repo. Finished tasks land on `main` one at a time behind a gate; conflicts and red
//! gates go back to the agent; a dirty main checkout is never touched; a supervisor killed in
//! the middle of a merge recovers and lands the task exactly once.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use batty::merge::{EntryState, MergeQueue};
use common::{Sandbox, wait_until};

const PHASE: &str = "v1";
/// Generous: two cores shared with other builds. A passing run takes a fraction of this.
const DEADLINE: Duration = Duration::from_secs(40);

/// What `.batty/config.yml` says for a run.
struct Setup<'a> {
    /// `merge.gate`.
    gate: Option<&'a str>,
    max_retries: u32,
    /// `agents.demo.args`, after `--delay`.
    demo_args: &'a [&'a str],
    /// Simulated work per task, milliseconds.
    delay_ms: u64,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            gate: None,
            max_retries: 3,
            demo_args: &[],
            delay_ms: 0,
        }
    }
}

/// A sandboxed project with a board for `v1`. When a test panics, it prints what batty
/// recorded (event logs, merge logs, queue, board, supervisor screen) before the sandbox goes.
struct E2e {
    sb: Sandbox,
}

/// A YAML string: JSON strings are YAML double-quoted scalars.
fn yaml(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl E2e {
    /// `batty init` with its ignore lines committed, so the main checkout starts clean (the
    /// board and config stay untracked).
    fn new() -> E2e {
        let sb = Sandbox::new();
        sb.batty(["init", "--phase", PHASE]).ok();
        sb.git(["add", ".gitignore"]);
        sb.git(["commit", "-qm", "ignore batty state"]);
        E2e { sb }
    }

    /// A file outside the repo (gate logs and markers).
    fn outside(&self, name: &str) -> PathBuf {
        self.sb.root.join(name)
    }

    /// Writes `.batty/config.yml`.
    fn configure(&self, setup: Setup<'_>) {
        let mut args = vec!["--delay".to_owned(), setup.delay_ms.to_string()];
        args.extend(setup.demo_args.iter().map(|a| (*a).to_owned()));
        let args: Vec<String> = args.iter().map(|a| yaml(a)).collect();
        let mut config = format!(
            "supervisor:\n  silence: 100ms\n  delivery_timeout: 10s\n\
             merge:\n  max_retries: {}\n  gate_timeout: 60s\n",
            setup.max_retries
        );
        if let Some(gate) = setup.gate {
            config.push_str(&format!("  gate: {}\n", yaml(gate)));
        }
        config.push_str(&format!(
            "agents:\n  demo:\n    args: [{}]\n",
            args.join(", ")
        ));
        self.sb.write(".batty/config.yml", &config);
    }

    /// `batty task add`; returns the new task's id.
    fn add_task(&self, title: &str) -> u64 {
        let out = self
            .sb
            .batty(["task", "add", "--phase", PHASE, title, "--json"])
            .ok();
        let task: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        task["id"].as_u64().unwrap()
    }

    fn work(&self, agents: usize, exit_when_done: bool) {
        let n = agents.to_string();
        let mut args = vec!["work", PHASE, "--parallel", &n, "--agent", "demo"];
        if exit_when_done {
            args.push("--exit-when-done");
        }
        self.sb.batty(args).ok();
    }

    fn session_alive(&self) -> bool {
        self.sb
            .tmux_ok(["has-session", "-t", &format!("=batty-{PHASE}")])
            .is_some()
    }

    /// With `--exit-when-done`: the supervisor ends the session when all is done.
    fn wait_session_end(&self) {
        wait_until("the session to end by itself", DEADLINE, || {
            (!self.session_alive()).then_some(())
        });
    }

    fn stop(&self) {
        self.sb.batty(["stop", PHASE]).ok();
    }

    fn task(&self, id: u64) -> serde_json::Value {
        let out = self
            .sb
            .batty(["task", "show", "--phase", PHASE, &id.to_string(), "--json"])
            .ok();
        serde_json::from_str(&out.stdout).unwrap()
    }

    fn task_status(&self, id: u64) -> String {
        self.task(id)["status"].as_str().unwrap().to_owned()
    }

    fn queue(&self) -> MergeQueue {
        MergeQueue::load(&self.sb.path(format!(".batty/run/{PHASE}.merge.json"))).unwrap()
    }

    fn queue_state(&self, id: u64) -> Option<EntryState> {
        self.queue().get(id).map(|e| e.state)
    }

    fn logs_dir(&self) -> PathBuf {
        self.sb.path(format!(".batty/logs/{PHASE}"))
    }

    /// Every agent's event log, one after another.
    fn events(&self) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.logs_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.to_string_lossy().ends_with(".events.log"));
        files.sort();
        files
            .iter()
            .map(|p| {
                format!(
                    "--- {}\n{}",
                    p.file_name().unwrap().to_string_lossy(),
                    std::fs::read_to_string(p).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Commit subjects of `rev`, newest first.
    fn subjects(&self, rev: &str) -> Vec<String> {
        self.sb
            .git(["log", "--format=%s", rev])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn main_tip(&self) -> String {
        self.sb.git(["rev-parse", "refs/heads/main"])
    }

    /// Commits on `main` whose subject is the demo agent's for task `id`.
    fn landed(&self, id: u64) -> usize {
        let prefix = format!("Task #{id}: ");
        self.subjects("main")
            .iter()
            .filter(|s| s.starts_with(&prefix))
            .count()
    }

    /// History on `main` is a line, the main checkout clean (batty's own folder aside) and
    /// on the tip, and the merge worktree holds no half-done operation.
    fn assert_tidy(&self) {
        assert_eq!(self.sb.git(["rev-list", "--merges", "main"]), "", "merges");
        let status = self.sb.git(["status", "--porcelain"]);
        let dirty: Vec<&str> = status.lines().filter(|l| *l != "?? .batty/").collect();
        assert!(dirty.is_empty(), "main checkout: {dirty:?}");
        assert_eq!(self.sb.git(["rev-parse", "HEAD"]), self.main_tip());
        let merge_wt = self.sb.path(format!(".batty/worktrees/{PHASE}/.merge"));
        if merge_wt.exists() {
            let st = self.sb.git_in(
                &merge_wt,
                ["status", "--porcelain", "--untracked-files=all"],
            );
            assert_eq!(st, "", "merge worktree left dirty");
            let git_dir = PathBuf::from(self.sb.git_in(&merge_wt, ["rev-parse", "--git-dir"]));
            for op in ["CHERRY_PICK_HEAD", "REBASE_HEAD", "MERGE_HEAD", "sequencer"] {
                assert!(!git_dir.join(op).exists(), "merge worktree has {op}");
            }
        }
    }

    /// The supervisor's pid from its status snapshot.
    fn supervisor_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.sb.path(format!(".batty/run/{PHASE}.status.json")))
            .ok()?;
        let status: serde_json::Value = serde_json::from_str(&text).ok()?;
        status["supervisor_pid"].as_u64().map(|p| p as u32)
    }

    fn agents_idle(&self, n: usize) -> bool {
        let Ok(text) =
            std::fs::read_to_string(self.sb.path(format!(".batty/run/{PHASE}.status.json")))
        else {
            return false;
        };
        let Ok(status) = serde_json::from_str::<serde_json::Value>(&text) else {
            return false;
        };
        let Some(agents) = status["agents"].as_object() else {
            return false;
        };
        agents.len() == n && agents.values().all(|a| a["state"] == "idle")
    }
}

impl Drop for E2e {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!("==== events\n{}", self.events());
        if let Ok(dir) = std::fs::read_dir(self.logs_dir()) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("merge-") || name == "summary.txt" {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    eprintln!("==== {name}\n{text}");
                }
            }
        }
        let queue = std::fs::read_to_string(self.sb.path(format!(".batty/run/{PHASE}.merge.json")));
        eprintln!("==== queue\n{}", queue.unwrap_or_default());
        let board = self.sb.batty(["task", "list", "--phase", PHASE]).run();
        eprintln!("==== board\n{}", board.stdout);
        eprintln!(
            "==== main\n{}",
            self.sb.git(["log", "--oneline", "--graph", "main"])
        );
        let panes = self.sb.tmux_ok([
            "list-panes",
            "-s",
            "-t",
            &format!("=batty-{PHASE}"),
            "-F",
            "#{pane_id} #{window_name} #{pane_dead}",
        ]);
        for pane in panes.unwrap_or_default().lines() {
            let id = pane.split(' ').next().unwrap_or_default();
            let screen = self.sb.tmux_ok(["capture-pane", "-p", "-t", id]);
            eprintln!(
                "==== pane {pane}\n{}",
                screen.unwrap_or_default().trim_end()
            );
        }
    }
}

/// Running, and not a zombie waiting to be reaped.
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(") ").next().unwrap_or("").starts_with('Z'),
        Err(_) => false,
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

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

    assert_eq!(
        std::fs::read_to_string(e.logs_dir().join("summary.txt")).unwrap(),
        "phase v1: 6/6 tasks done, 6 merged\n"
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
    let sent_back = format!("task #{} sent back: conflict in `shared.txt`", loser.0);
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
        max_retries: 2,
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
        reason.contains("merge failed 2 times")
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
            .matches(&format!("task #{id} sent back: gate failed (exit code 1)"))
            .count(),
        1,
        "{events}"
    );
    assert!(
        events.contains(&format!("task #{id} moved to review: merge failed 2 times")),
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

/// Lines of a task's merge log that start an attempt.
fn attempts_logged(e: &E2e, id: u64) -> usize {
    let log = std::fs::read_to_string(e.logs_dir().join(format!("merge-{id}.log")));
    let log = log.unwrap_or_default();
    log.lines()
        .filter(|l| l.starts_with("== ") && l.contains(&format!(" task #{id} (")))
        .count()
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
