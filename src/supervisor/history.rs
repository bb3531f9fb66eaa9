//! What a restarted supervisor knows from before: the attempt record folded into each
//! task's attempts and failures, the attempts still open, and each agent's latest attempt,
//! with the merge queue's word on each task's work. Pure; the driver reads the files.

use std::collections::BTreeMap;

use super::core::{Failure, History, MergeState, OpenAttempt, TaskLog};
use super::event::{MergeVerdict, Record};

/// The history a restarted supervisor reads: attempts and failures per task from the
/// record, open attempts, and the merge queue's state.
pub fn fold(record: &[Record], merges: &BTreeMap<u64, MergeState>) -> History {
    let mut tasks: BTreeMap<u64, TaskLog> = BTreeMap::new();
    let mut open: BTreeMap<(u64, u32), OpenAttempt> = BTreeMap::new();
    let mut last_by_agent = BTreeMap::new();
    for r in record {
        match r {
            Record::Delivered {
                task,
                attempt,
                agent,
                base,
                pid,
                ..
            } => {
                let log = tasks.entry(*task).or_default();
                log.attempts = log.attempts.max(*attempt);
                log.last = Some((*attempt, agent.clone(), base.clone()));
                last_by_agent.insert(agent.clone(), (*task, *attempt));
                open.insert(
                    (*task, *attempt),
                    OpenAttempt {
                        task: *task,
                        attempt: *attempt,
                        agent: agent.clone(),
                        base: base.clone(),
                        pid: *pid,
                    },
                );
            }
            Record::Ended {
                task,
                attempt,
                agent,
                outcome,
                error,
                ..
            } => {
                open.remove(&(*task, *attempt));
                if outcome.is_failure() {
                    tasks.entry(*task).or_default().failures.push(Failure {
                        attempt: *attempt,
                        agent: agent.clone(),
                        outcome: *outcome,
                        reason: error.clone().unwrap_or_default(),
                    });
                }
            }
            Record::Merged {
                task,
                attempt,
                agent,
                verdict: MergeVerdict::Rejected { kind, reason, .. },
            } => {
                tasks.entry(*task).or_default().failures.push(Failure {
                    attempt: *attempt,
                    agent: agent.clone(),
                    outcome: *kind,
                    reason: reason.clone(),
                });
            }
            Record::Review { task, .. } => tasks.entry(*task).or_default().in_review = true,
            Record::Reopened { task, .. } => {
                let log = tasks.entry(*task).or_default();
                log.in_review = false;
                log.failures.clear();
            }
            Record::Merged { .. } => {}
        }
    }
    for (task, m) in merges {
        let log = tasks.entry(*task).or_default();
        let mut m = m.clone();
        // The queue file does not number attempts: the record's latest one is it.
        if let MergeState::Queued { attempt, .. } | MergeState::Rejected { attempt, .. } = &mut m
            && *attempt == 0
        {
            *attempt = log.last.as_ref().map_or(log.attempts, |(a, _, _)| *a);
        }
        log.merge = Some(m);
    }
    History {
        tasks,
        open: open.into_values().collect(),
        last_by_agent,
    }
}
