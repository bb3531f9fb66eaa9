//! The live status of a phase: what the supervisor knows about each agent and the merge queue.
//! The supervisor writes it to `.batty/run/<phase>/status.json` (atomically) whenever it
//! changes; `batty status` and the tmux status bar read it. [`report`] is what `batty status`
//! shows, built from that snapshot, the run state, the board and tmux.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub mod report;

/// What an agent is doing, as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Starting,
    Idle,
    Busy,
    Asking,
    Stuck,
    Dead,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Starting => "starting",
            AgentState::Idle => "idle",
            AgentState::Busy => "busy",
            AgentState::Asking => "asking",
            AgentState::Stuck => "stuck",
            AgentState::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub state: AgentState,
    /// The task the agent holds, if any.
    pub task: Option<u64>,
    /// The question it is waiting on, when asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// Seconds since the Unix epoch when the state last changed.
    pub since: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeEntryStatus {
    pub task: u64,
    pub agent: String,
    /// `waiting`, `merging`, `failed` or `merged`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The supervisor's snapshot of a phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseStatus {
    /// Process id of the supervisor that wrote this.
    pub supervisor_pid: u32,
    pub agents: BTreeMap<String, AgentStatus>,
    #[serde(default)]
    pub merge_queue: Vec<MergeEntryStatus>,
    pub tasks_done: usize,
    pub tasks_total: usize,
}

impl PhaseStatus {
    /// Reads the snapshot; `None` when no supervisor has written one (or it is unreadable,
    /// which a reader treats the same: state unknown).
    pub fn load(path: &Path) -> Option<PhaseStatus> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        // Rewritten on every change from the supervisor's memory: no disk flush each time.
        crate::fsutil::replace(path, text.as_bytes())
    }

    /// The tmux status-bar text: phase, tasks done/total, agents by state, merge queue length.
    pub fn bar(&self, phase: &str) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for a in self.agents.values() {
            *counts.entry(a.state.as_str()).or_default() += 1;
        }
        let agents: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let mut bar = format!(
            "{phase} [{}/{}] {}",
            self.tasks_done,
            self.tasks_total,
            agents.join(", ")
        );
        let waiting = self
            .merge_queue
            .iter()
            .filter(|m| m.state == "waiting" || m.state == "merging")
            .count();
        if waiting > 0 {
            bar.push_str(&format!(" | merge {waiting}"));
        }
        bar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_counts_agents_by_state() {
        let mut s = PhaseStatus {
            tasks_done: 2,
            tasks_total: 5,
            ..Default::default()
        };
        for (name, state) in [
            ("a", AgentState::Busy),
            ("b", AgentState::Busy),
            ("c", AgentState::Idle),
        ] {
            s.agents.insert(
                name.into(),
                AgentStatus {
                    state,
                    task: None,
                    question: None,
                    since: 0,
                },
            );
        }
        assert_eq!(s.bar("v1"), "v1 [2/5] 2 busy, 1 idle");
    }
}
