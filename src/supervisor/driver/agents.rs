//! The driver's side of each agent: its run-state record, where its output and reports are
//! read from, and its panes as tmux tags them. Agents are keyed by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::paths::Project;
use crate::session::{AgentRecord, RunState};
use crate::tmux::Tmux;
use crate::watch::{LogTail, ReportReader};

use super::super::event::{AgentSpec, PaneSeen};

/// How long a death the pid watcher saw may wait for tmux to see it too. tmux can be later
/// than that with a dead pane's status (3.3a was seen to leave it empty for good): the death
/// is then told without it rather than stall the loop.
const DEATH_SEEN: std::time::Duration = std::time::Duration::from_millis(500);

/// One agent's files and record.
pub struct AgentIo {
    pub record: AgentRecord,
    pub tail: LogTail,
    pub reports: ReportReader,
    pub pty: PathBuf,
    pub report_path: PathBuf,
    /// Its window, as tmux last listed it (for renaming, and the tab a person presses).
    pub window: Option<String>,
    pub window_index: Option<u32>,
}

pub struct Agents {
    project: Project,
    phase: String,
    by_name: BTreeMap<String, AgentIo>,
}

impl Agents {
    pub fn new(project: &Project, phase: &str) -> Agents {
        Agents {
            project: project.clone(),
            phase: phase.to_owned(),
            by_name: BTreeMap::new(),
        }
    }

    /// The agents that run (the first `parallel` of the run state); new ones start reading
    /// their logs from the end (only what they print from now on matters).
    pub fn set_records(&mut self, run: &RunState) {
        let active: Vec<&AgentRecord> = run.active().iter().collect();
        self.by_name
            .retain(|name, _| active.iter().any(|r| &r.name == name));
        for rec in active {
            match self.by_name.get_mut(&rec.name) {
                Some(io) => io.record = rec.clone(),
                None => {
                    let pty = self.project.pty_log(&self.phase, &rec.name);
                    let offset = std::fs::metadata(&pty).map(|m| m.len()).unwrap_or(0);
                    let report_path = self.project.report_file(&self.phase, &rec.name);
                    self.by_name.insert(
                        rec.name.clone(),
                        AgentIo {
                            record: rec.clone(),
                            tail: LogTail::new(pty.clone(), offset),
                            reports: ReportReader::at_end(report_path.clone()),
                            pty,
                            report_path,
                            window: rec.window_id.clone(),
                            window_index: None,
                        },
                    );
                }
            }
        }
    }

    pub fn specs(&self) -> Vec<AgentSpec> {
        self.by_name
            .values()
            .map(|io| AgentSpec {
                name: io.record.name.clone(),
                kind: super::adapter_key(&io.record),
                worktree: io.record.worktree.clone(),
                branch: io.record.branch.clone(),
            })
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&AgentIo> {
        self.by_name.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut AgentIo> {
        self.by_name.get_mut(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    /// The agent whose pty log is at `path`.
    pub fn by_pty(&self, path: &Path) -> Option<String> {
        self.by_name
            .values()
            .find(|io| io.pty == path)
            .map(|io| io.record.name.clone())
    }

    /// The agent whose reports are at `path`.
    pub fn by_report(&self, path: &Path) -> Option<String> {
        self.by_name
            .values()
            .find(|io| io.report_path == path)
            .map(|io| io.record.name.clone())
    }

    pub fn window_index(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).and_then(|io| io.window_index)
    }

    /// Every agent's executor pane as tmux lists it now, found by its `@batty_agent` tag (a
    /// log pane is never one). An agent without a tagged pane is not in the list.
    pub fn list_panes(&mut self, tmux: &Tmux, session: Option<&str>) -> Vec<PaneSeen> {
        let Some(session) = session else {
            return Vec::new();
        };
        let panes = match tmux.list_panes_session(session) {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(%err, "list-panes failed");
                return Vec::new();
            }
        };
        let mut seen = Vec::new();
        for io in self.by_name.values_mut() {
            let name = &io.record.name;
            let Some(p) = panes
                .iter()
                .find(|p| &p.agent == name && p.role == "executor")
            else {
                continue;
            };
            io.window = Some(p.window_id.clone());
            io.window_index = Some(p.window_index);
            // A program that exited but that tmux has not reaped counts as dead too.
            let dead = p.dead || p.pid.is_some_and(|pid| !crate::tmux::process_running(pid));
            seen.push(PaneSeen {
                agent: name.clone(),
                pane: p.pane_id.clone(),
                pid: p.pid,
                dead,
                exit_status: p.dead_status,
                last_screen: Vec::new(),
            });
        }
        seen
    }

    /// A death is news: the dead pane's exit status (when tmux has seen it) and its last
    /// non-empty screen lines, which also go to the agent's event log. A pane that is gone
    /// shows nothing.
    pub fn last_moments(&self, tmux: &Tmux, agent: &str, pane: &str) -> (Option<i32>, Vec<String>) {
        // The pid watcher can be a moment ahead of tmux, which marks the pane dead once it
        // has read the last output and knows the status once it has reaped the process:
        // waited for briefly, so the status and screen are whole.
        let deadline = std::time::Instant::now() + DEATH_SEEN;
        let status = loop {
            let seen = tmux
                .display(pane, "#{pane_dead} #{pane_dead_status}")
                .ok()
                .map(|out| dead_and_status(&out));
            // tmux closes a pane's pty (dead) before it reaps the process (status).
            match seen {
                Some((true, Some(status))) => break Some(status),
                Some(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => break None,
            }
        };
        let Ok(screen) = tmux.capture_pane(pane) else {
            return (status, Vec::new());
        };
        let lines: Vec<String> = screen
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with("Pane is dead"))
            .map(str::to_owned)
            .collect();
        let shown = &lines[lines.len().saturating_sub(8)..];
        if !shown.is_empty() {
            let text = format!("last screen: {}", crate::text::one_line(&shown.join(" / ")));
            let _ = crate::events::append(&self.project.event_log(&self.phase, agent), &text);
        }
        // More for the core, which keeps what came after the echo of its own message.
        (status, lines[lines.len().saturating_sub(40)..].to_vec())
    }

    /// A tmux hook on every agent window that touches the died marker when a pane's program
    /// exits: one more way a death arrives as an event (the pid watcher is the first). Since
    /// tmux 3.2 `pane-died` is a window hook.
    pub fn install_died_hook(&self, tmux: &Tmux, project: &Project, phase: &str) {
        let marker = project.died_marker(phase);
        let path = marker.to_string_lossy();
        let plain = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,@%".contains(&b));
        if !plain {
            return;
        }
        let hook = format!("run-shell -b 'touch {path}'");
        for io in self.by_name.values() {
            if let Some(window) = &io.window {
                let _ = tmux
                    .cmd()
                    .args(["set-hook", "-w", "-t", window, "pane-died", &hook])
                    .run();
            }
        }
    }
}

/// `#{pane_dead} #{pane_dead_status}` read: whether the pane is dead, and its exit status once
/// tmux has reaped the process. A pane not dead yet reads `0 ` (the status empty).
fn dead_and_status(out: &str) -> (bool, Option<i32>) {
    let mut words = out.split_whitespace();
    let dead = words.next() == Some("1");
    (dead, words.next().and_then(|s| s.parse().ok()))
}

#[cfg(test)]
mod dead_status_tests {
    use super::dead_and_status;

    #[test]
    fn a_pane_not_dead_yet_is_read_as_such_and_waited_for() {
        assert_eq!(dead_and_status("0 \n"), (false, None));
        assert_eq!(dead_and_status("1 \n"), (true, None));
        assert_eq!(dead_and_status("1 3\n"), (true, Some(3)));
        assert_eq!(dead_and_status(""), (false, None));
    }
}
