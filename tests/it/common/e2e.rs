//! End-to-end helpers for supervisor tests: a project with a board and a test config, a
//! running phase, and readers for what the supervisor leaves behind (board, event logs,
//! status snapshot, agent branches), with a dump of all of it when a wait times out.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::{Sandbox, wait_until};

/// The phase every end-to-end test runs.
pub const PHASE: &str = "p";

/// Time a whole run may take before a test gives up (generous: 2 shared cores).
pub const RUN: Duration = Duration::from_secs(30);

/// A sandbox with `batty init --phase p` done and `.batty/config.yml` replaced by a fast test
/// config: short silence and answer grace, no merging, plus `extra` YAML (top-level keys
/// other than `supervisor` and `merge`) and `supervisor_extra` lines under `supervisor:`.
pub struct Project {
    pub sb: Sandbox,
}

impl Project {
    pub fn new(supervisor_extra: &[&str], extra: &str) -> Project {
        let sb = Sandbox::new();
        sb.batty(["init", "--phase", PHASE]).ok();
        let mut config = String::from(
            "supervisor:\n  silence: 100ms\n  answer_grace: 100ms\n  reminder_settle: 300ms\n  restart_backoff: 200ms\n",
        );
        for line in supervisor_extra {
            config.push_str(&format!("  {line}\n"));
        }
        config.push_str("merge:\n  enabled: false\n");
        config.push_str(extra);
        sb.write(".batty/config.yml", &config);
        Project { sb }
    }

    /// Adds `yaml` (whole top-level keys) to the end of `.batty/config.yml`.
    pub fn append_config(&self, yaml: &str) {
        let config = self.sb.read(".batty/config.yml");
        self.sb
            .write(".batty/config.yml", &format!("{config}{yaml}"));
    }

    /// `batty task add --phase p <title> [args]`; returns the new id.
    pub fn add(&self, title: &str, args: &[&str]) -> u64 {
        let mut argv = vec!["task", "add", "--phase", PHASE, title, "--json"];
        argv.extend_from_slice(args);
        let out = self.sb.batty(argv).ok();
        let task: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("`task add --json` printed {:?}: {e}", out.stdout));
        task["id"].as_u64().expect("task add --json has an id")
    }

    /// `batty work p --parallel n --agent kind [more]`.
    pub fn work(&self, n: usize, kind: &str, more: &[&str]) {
        let n = n.to_string();
        let mut argv = vec!["work", PHASE, "--parallel", &n, "--agent", kind];
        argv.extend_from_slice(more);
        self.sb.batty(argv).ok();
    }

    /// The board as `batty task list --json` shows it, by id.
    pub fn tasks(&self) -> BTreeMap<u64, serde_json::Value> {
        let out = self
            .sb
            .batty(["task", "list", "--phase", PHASE, "--json"])
            .ok();
        let list: Vec<serde_json::Value> = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("`task list --json` printed {:?}: {e}", out.stdout));
        list.into_iter()
            .map(|t| (t["id"].as_u64().expect("every task has an id"), t))
            .collect()
    }

    pub fn status_of(&self, id: u64) -> String {
        self.tasks()[&id]["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The agents `batty work` started, in run-state order.
    pub fn agents(&self) -> Vec<String> {
        let state: serde_json::Value =
            serde_json::from_str(&self.sb.read(format!(".batty/run/{PHASE}/state.json"))).unwrap();
        state["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The executor pane of `agent`.
    pub fn pane(&self, agent: &str) -> String {
        let state: serde_json::Value =
            serde_json::from_str(&self.sb.read(format!(".batty/run/{PHASE}/state.json"))).unwrap();
        state["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == agent)
            .and_then(|a| a["executor_pane"].as_str())
            .unwrap_or_else(|| panic!("no pane for agent {agent}"))
            .to_owned()
    }

    fn logs_dir(&self) -> PathBuf {
        self.sb.path(format!(".batty/logs/{PHASE}"))
    }

    /// The agent's event log (empty until the first event).
    pub fn events(&self, agent: &str) -> String {
        std::fs::read_to_string(self.logs_dir().join(format!("{agent}.events.log")))
            .unwrap_or_default()
    }

    pub fn pty_log(&self, agent: &str) -> String {
        std::fs::read_to_string(self.logs_dir().join(format!("{agent}.pty.log")))
            .unwrap_or_default()
    }

    /// `.batty/logs/p/summary.txt`, written with `--exit-when-done`.
    pub fn summary(&self) -> String {
        std::fs::read_to_string(self.logs_dir().join("summary.txt")).unwrap_or_default()
    }

    /// The supervisor's status snapshot, if written yet.
    pub fn snapshot(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.sb.path(format!(".batty/run/{PHASE}/status.json")))
            .ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The agent's state in the status snapshot (`idle`, `busy`, `asking`, `dead`, ...).
    pub fn state_of(&self, agent: &str) -> Option<String> {
        let snap = self.snapshot()?;
        snap["agents"][agent]["state"].as_str().map(str::to_owned)
    }

    pub fn session_alive(&self) -> bool {
        self.sb
            .tmux_ok(["has-session", "-t", &format!("={}", session())])
            .is_some()
    }

    /// With `--exit-when-done`: waits for the supervisor to end the session.
    pub fn wait_session_ends(&self) {
        self.wait("the session to end", RUN, || {
            (!self.session_alive()).then_some(())
        });
    }

    /// Subjects of the commits on `batty/p/<agent>` that are not on `main`.
    pub fn commits_on(&self, agent: &str) -> Vec<String> {
        let range = format!("main..batty/{PHASE}/{agent}");
        let out = self.sb.git(["log", "--format=%s", &range]);
        out.lines().map(str::to_owned).collect()
    }

    /// `common::wait_until`, but a timeout also shows the board, the event logs and the
    /// supervisor's pane, which is where the reason is.
    pub fn wait<T>(&self, what: &str, deadline: Duration, cond: impl FnMut() -> Option<T>) -> T {
        let res = std::panic::catch_unwind(AssertUnwindSafe(|| wait_until(what, deadline, cond)));
        match res {
            Ok(v) => v,
            Err(_) => panic!(
                "timed out after {deadline:?} waiting for {what}\n{}",
                self.dump()
            ),
        }
    }

    /// Everything that explains a run, for failure messages.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let board = self
            .sb
            .batty(["task", "list", "--phase", PHASE])
            .run()
            .stdout;
        out.push_str(&format!("--- board\n{board}"));
        if let Ok(entries) = std::fs::read_dir(self.logs_dir()) {
            let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".events.log") || name.ends_with(".pty.log") {
                    let text = std::fs::read_to_string(&f).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    out.push_str(&format!("--- {name}\n{}\n", tail.join("\n")));
                }
            }
        }
        if let Some(snap) = self.snapshot() {
            out.push_str(&format!("--- status\n{snap}\n"));
        }
        let panes = self.sb.tmux_ok([
            "list-panes",
            "-s",
            "-t",
            &format!("={}", session()),
            "-F",
            "#{window_id} #{window_name} #{pane_id} dead=#{pane_dead} status=#{pane_dead_status} hook=#{hook_pane_died}",
        ]);
        if let Some(panes) = panes {
            out.push_str(&format!("--- panes\n{panes}\n"));
        }
        let target = format!("={}:0", session());
        if let Some(screen) = self.sb.tmux_ok(["capture-pane", "-p", "-t", &target]) {
            out.push_str(&format!("--- supervisor pane\n{screen}\n"));
        }
        out
    }
}

pub fn session() -> String {
    format!("batty-{PHASE}")
}

/// How many times `delivered task #<id>:` appears in `log`.
pub fn deliveries(log: &str, id: u64) -> usize {
    let first = format!("delivered task #{id}:");
    let again = format!("delivered task #{id} (attempt ");
    log.lines()
        .filter(|l| l.contains(&first) || l.contains(&again))
        .count()
}

/// A board timestamp (RFC 3339 with nanoseconds) of `task`.
pub fn time_of(task: &serde_json::Value, key: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let text = task[key]
        .as_str()
        .unwrap_or_else(|| panic!("task #{} has no `{key}`: {task}", task["id"]));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("task #{} `{key}` {text:?}: {e}", task["id"]))
}

/// A YAML single-quoted scalar.
pub fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
