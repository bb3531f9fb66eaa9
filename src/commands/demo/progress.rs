//! The demo's progress line, from the supervisor's status snapshot: tasks done of all,
//! agents busy and idle, merges done (from the merge queue's record of landings: the
//! snapshot leaves landed entries out) and waiting.

use crate::status::{AgentState, PhaseStatus};

/// What the line shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub busy: usize,
    pub idle: usize,
    pub asking: usize,
    /// Agents starting, stuck or dead.
    pub other: usize,
    pub merged: usize,
    /// In the merge queue: waiting or being merged.
    pub merging: usize,
}

impl Progress {
    /// `merged`: distinct tasks landed on the target so far.
    pub fn of(status: &PhaseStatus, merged: usize) -> Progress {
        let mut p = Progress {
            done: status.tasks_done,
            total: status.tasks_total,
            merged,
            ..Progress::default()
        };
        for a in status.agents.values() {
            match a.state {
                AgentState::Busy => p.busy += 1,
                AgentState::Idle => p.idle += 1,
                AgentState::Asking => p.asking += 1,
                AgentState::Starting | AgentState::Stuck | AgentState::Dead => p.other += 1,
            }
        }
        for m in &status.merge_queue {
            if matches!(m.state.as_str(), "waiting" | "merging") {
                p.merging += 1;
            }
        }
        p
    }

    /// `4/10 tasks done · agents: 2 busy, 1 idle · merged 3, 1 in the merge queue`
    pub fn line(&self) -> String {
        let mut agents = vec![format!("{} busy", self.busy), format!("{} idle", self.idle)];
        if self.asking > 0 {
            agents.push(format!("{} asking", self.asking));
        }
        if self.other > 0 {
            agents.push(format!("{} starting or stuck", self.other));
        }
        let mut merges = format!("merged {}", self.merged);
        if self.merging > 0 {
            merges.push_str(&format!(", {} in the merge queue", self.merging));
        }
        format!(
            "{}/{} tasks done · agents: {} · {merges}",
            self.done,
            self.total,
            agents.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{AgentStatus, MergeEntryStatus};

    fn agent(state: AgentState) -> AgentStatus {
        AgentStatus {
            state,
            task: None,
            question: None,
            since: 0,
        }
    }

    fn entry(task: u64, state: &str) -> MergeEntryStatus {
        MergeEntryStatus {
            task,
            agent: "a".into(),
            state: state.into(),
            reason: None,
        }
    }

    #[test]
    fn counts_agents_and_merges() {
        let status = PhaseStatus {
            supervisor_pid: 1,
            agents: [
                ("a".to_owned(), agent(AgentState::Busy)),
                ("b".to_owned(), agent(AgentState::Busy)),
                ("c".to_owned(), agent(AgentState::Idle)),
                ("d".to_owned(), agent(AgentState::Asking)),
            ]
            .into(),
            merge_queue: vec![entry(3, "merging"), entry(4, "waiting"), entry(5, "failed")],
            tasks_done: 4,
            tasks_total: 10,
        };
        let p = Progress::of(&status, 2);
        assert_eq!(
            p.line(),
            "4/10 tasks done · agents: 2 busy, 1 idle, 1 asking · merged 2, 2 in the merge queue"
        );
        assert_eq!(
            Progress::of(&PhaseStatus::default(), 0).line(),
            "0/0 tasks done · agents: 0 busy, 0 idle · merged 0"
        );
    }
}
