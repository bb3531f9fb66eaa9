//! The harness of the merge queue's end-to-end tests: a project with a board, a demo-agent
//! config, and what batty recorded (queue, board, event and merge logs), dumped on failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use batty::merge::{EntryState, MergeQueue};

use crate::common::{Sandbox, wait_until};

pub const PHASE: &str = "v1";
/// Generous: two cores shared with other builds. A passing run takes a fraction of this.
pub const DEADLINE: Duration = Duration::from_secs(40);

/// What `.batty/config.yml` says for a run.
pub struct Setup<'a> {
    /// `merge.gate`.
    pub gate: Option<&'a str>,
    /// `supervisor.max_attempts`: failed attempts (any cause) before review.
    pub max_attempts: u32,
    /// `agents.demo.args`, after `--delay`.
    pub demo_args: &'a [&'a str],
    /// Simulated work per task, milliseconds.
    pub delay_ms: u64,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            gate: None,
            max_attempts: 3,
            demo_args: &[],
            delay_ms: 0,
        }
    }
}

/// A sandboxed project with a board for `v1`. When a test panics, it prints what batty
/// recorded (event logs, merge logs, queue, board, supervisor screen) before the sandbox goes.
pub struct E2e {
    pub sb: Sandbox,
}

/// A YAML string: JSON strings are YAML double-quoted scalars.
fn yaml(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl E2e {
    /// `batty init` with its ignore lines committed, so the main checkout starts clean (the
    /// board and config stay untracked).
    pub fn new() -> E2e {
        let sb = Sandbox::new();
        sb.batty(["init", "--phase", PHASE]).ok();
        sb.git(["add", ".gitignore"]);
        sb.git(["commit", "-qm", "ignore batty state"]);
        E2e { sb }
    }

    /// A file outside the repo (gate logs and markers).
    pub fn outside(&self, name: &str) -> PathBuf {
        self.sb.root.join(name)
    }

    /// Writes `.batty/config.yml`.
    pub fn configure(&self, setup: Setup<'_>) {
        let mut args = vec!["--delay".to_owned(), setup.delay_ms.to_string()];
        args.extend(setup.demo_args.iter().map(|a| (*a).to_owned()));
        let args: Vec<String> = args.iter().map(|a| yaml(a)).collect();
        let mut config = format!(
            "supervisor:\n  silence: 100ms\n  delivery_timeout: 10s\n  reminder_settle: 300ms\n\
             \x20 restart_backoff: 200ms\n  max_attempts: {}\nmerge:\n  gate_timeout: 60s\n",
            setup.max_attempts
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
    pub fn add_task(&self, title: &str) -> u64 {
        let out = self
            .sb
            .batty(["task", "add", "--phase", PHASE, title, "--json"])
            .ok();
        let task: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        task["id"].as_u64().unwrap()
    }

    pub fn work(&self, agents: usize, exit_when_done: bool) {
        let n = agents.to_string();
        let mut args = vec!["work", PHASE, "--parallel", &n, "--agent", "demo"];
        if exit_when_done {
            args.push("--exit-when-done");
        }
        self.sb.batty(args).ok();
    }

    pub fn session_alive(&self) -> bool {
        self.sb
            .tmux_ok(["has-session", "-t", &format!("=batty-{PHASE}")])
            .is_some()
    }

    /// With `--exit-when-done`: the supervisor ends the session when all is done.
    pub fn wait_session_end(&self) {
        wait_until("the session to end by itself", DEADLINE, || {
            (!self.session_alive()).then_some(())
        });
    }

    pub fn stop(&self) {
        self.sb.batty(["stop", PHASE]).ok();
    }

    pub fn task(&self, id: u64) -> serde_json::Value {
        let out = self
            .sb
            .batty(["task", "show", "--phase", PHASE, &id.to_string(), "--json"])
            .ok();
        serde_json::from_str(&out.stdout).unwrap()
    }

    pub fn task_status(&self, id: u64) -> String {
        self.task(id)["status"].as_str().unwrap().to_owned()
    }

    pub fn queue(&self) -> MergeQueue {
        MergeQueue::load(&self.sb.path(format!(".batty/run/{PHASE}/merge.json"))).unwrap()
    }

    pub fn queue_state(&self, id: u64) -> Option<EntryState> {
        self.queue().get(id).map(|e| e.state)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.sb.path(format!(".batty/logs/{PHASE}"))
    }

    /// Every agent's event log, one after another.
    pub fn events(&self) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.logs_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".events.log") || name.ends_with("/supervisor.log")
        });
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
    pub fn subjects(&self, rev: &str) -> Vec<String> {
        self.sb
            .git(["log", "--format=%s", rev])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn main_tip(&self) -> String {
        self.sb.git(["rev-parse", "refs/heads/main"])
    }

    /// Commits on `main` whose subject is the demo agent's for task `id`.
    pub fn landed(&self, id: u64) -> usize {
        let prefix = format!("Task #{id}: ");
        self.subjects("main")
            .iter()
            .filter(|s| s.starts_with(&prefix))
            .count()
    }

    /// History on `main` is a line, the main checkout clean (batty's own folder aside) and
    /// on the tip, and the merge worktree holds no half-done operation.
    pub fn assert_tidy(&self) {
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
    pub fn supervisor_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.sb.path(format!(".batty/run/{PHASE}/status.json")))
            .ok()?;
        let status: serde_json::Value = serde_json::from_str(&text).ok()?;
        status["supervisor_pid"].as_u64().map(|p| p as u32)
    }

    /// The agents of the run state: name, worktree, executor pane, in order.
    pub fn agents(&self) -> Vec<(String, PathBuf, String)> {
        let run: serde_json::Value =
            serde_json::from_str(&self.sb.read(format!(".batty/run/{PHASE}/state.json"))).unwrap();
        run["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    PathBuf::from(a["worktree"].as_str().unwrap()),
                    a["executor_pane"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// What the agent's pane printed so far.
    pub fn pty(&self, agent: &str) -> String {
        std::fs::read_to_string(self.logs_dir().join(format!("{agent}.pty.log")))
            .unwrap_or_default()
    }

    /// `kill -9` of the supervisor; returns once it is gone.
    pub fn kill_supervisor(&self) {
        // A snapshot may still name the supervisor before this one.
        let pid = wait_until("a live supervisor's pid", DEADLINE, || {
            self.supervisor_pid().filter(|p| process_alive(*p))
        });
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        wait_until("the supervisor dead", DEADLINE, || {
            (!process_alive(pid)).then_some(())
        });
    }

    /// `batty work` again on the running session (it restarts a dead supervisor).
    pub fn rework(&self, agents: usize, exit_when_done: bool) -> String {
        let n = agents.to_string();
        let mut args = vec!["work", PHASE, "--parallel", &n, "--agent", "demo"];
        if exit_when_done {
            args.push("--exit-when-done");
        }
        self.sb.batty(args).ok().stdout
    }

    /// Types `text` into `pane` and presses Enter, as a person at the keyboard would.
    pub fn type_into(&self, pane: &str, text: &str) {
        self.sb.tmux(["send-keys", "-t", pane, "-l", "--", text]);
        self.sb.tmux(["send-keys", "-t", pane, "Enter"]);
    }

    /// The files each gate run saw changed against the target, by task, in run order: the
    /// log a gate made with [`GATE_SAW`] appends to.
    pub fn gate_saw(&self, log: &Path) -> Vec<(u64, Vec<String>)> {
        read_lines(log)
            .iter()
            .map(|l| {
                let mut words = l.split_whitespace();
                let task = words.next().unwrap().parse().unwrap();
                (task, words.map(str::to_owned).collect())
            })
            .collect()
    }

    pub fn agents_idle(&self, n: usize) -> bool {
        let Ok(text) =
            std::fs::read_to_string(self.sb.path(format!(".batty/run/{PHASE}/status.json")))
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
        let queue = std::fs::read_to_string(self.sb.path(format!(".batty/run/{PHASE}/merge.json")));
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

/// The start of a gate command that appends `<task> <files the merged tree changes against
/// the target>` to a file; [`gate_saw`] names the file.
pub const GATE_SAW: &str = "echo \"$BATTY_MERGE_TASK $(git diff --name-only \"refs/heads/$BATTY_MERGE_TARGET\" HEAD | tr '\\n' ' ')\" >> ";

/// A gate that logs what it saw (see [`E2e::gate_saw`]) to `log`, then runs `then`.
pub fn gate_saw(log: &Path, then: &str) -> String {
    format!("{GATE_SAW}{}; {then}", log.display())
}

/// Running, and not a zombie waiting to be reaped.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(") ").next().unwrap_or("").starts_with('Z'),
        Err(_) => false,
    }
}

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Lines of a task's merge log that start an attempt.
pub fn attempts_logged(e: &E2e, id: u64) -> usize {
    let log = std::fs::read_to_string(e.logs_dir().join(format!("merge-{id}.log")));
    let log = log.unwrap_or_default();
    log.lines()
        .filter(|l| l.starts_with("== ") && l.contains(&format!(" task #{id} (")))
        .count()
}
