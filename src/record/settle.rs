//! Lines a supervisor could not write because it was killed, written for it afterwards: the
//! merges that landed before it could note them (the merge queue knows them), and the `run
//! stop` of a supervisor that `batty stop` ended. Deciding what is missing is pure.

use std::path::Path;

use super::entry::{Entry, Event, Merge, MergeResult, Run, RunAction};
use super::file::{RecordError, append, read};
use super::history::History;

/// A landing the merge queue keeps (see `merge::Landed`), with what the queue still knows of
/// its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landing {
    pub task: u64,
    /// The head of the range that landed.
    pub head: String,
    /// The target's new tip; `None` when nothing needed landing.
    pub commit: Option<String>,
    /// The entry's agent and base, when the queue still lists it.
    pub agent: Option<String>,
    pub base: Option<String>,
}

/// A `merge` event for each landing the record does not have, for the attempt it belongs to
/// (the task's attempt with that head, else its latest).
pub fn missing_landings(history: &History, landings: &[Landing]) -> Vec<Event> {
    let mut out = Vec::new();
    for l in landings {
        let task = history.task(l.task);
        let recorded = task.is_some_and(|t| {
            t.attempts.iter().any(|a| match &l.commit {
                Some(c) => a.merges.iter().any(|m| m.landed.as_deref() == Some(c)),
                None => a.outcome.is_landed(),
            })
        });
        if recorded {
            continue;
        }
        let attempt = task.and_then(|t| {
            t.attempts
                .iter()
                .rev()
                .find(|a| a.head.as_deref() == Some(l.head.as_str()))
                .or_else(|| t.attempts.last())
        });
        let agent = attempt
            .map(|a| a.agent.clone())
            .or_else(|| l.agent.clone())
            .unwrap_or_default();
        out.push(Event::Merge(Merge {
            task: l.task,
            attempt: attempt.map_or(0, |a| a.attempt),
            agent,
            outcome: if l.commit.is_some() {
                MergeResult::Merged
            } else {
                MergeResult::Nothing
            },
            base: l
                .base
                .clone()
                .or_else(|| attempt.and_then(|a| a.base.clone())),
            head: Some(l.head.clone()),
            gate: None,
            gate_secs: None,
            exit_code: None,
            landed: l.commit.clone(),
            error: None,
        }));
    }
    out
}

/// The `run stop` of the supervisor `pid`, when the record's last run line is its start (it
/// did not write its stop itself).
pub fn missing_stop(entries: &[Entry], pid: u32) -> Option<Event> {
    let last = entries.iter().rev().find_map(|e| match &e.event {
        Event::Run(r) => Some(r),
        _ => None,
    })?;
    (last.action == RunAction::Start && last.pid == pid).then_some(Event::Run(Run {
        action: RunAction::Stop,
        pid,
    }))
}

/// Writes the `run stop` of supervisor `pid`, ended from outside (`batty stop`), unless it
/// wrote one. Returns whether a line was written.
pub fn note_stop(path: &Path, pid: u32) -> Result<bool, RecordError> {
    let (entries, _) = read(path);
    match missing_stop(&entries, pid) {
        Some(event) => append(path, &Entry::now(event)).map(|()| true),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::entry::{Delivered, EndOutcome, Ended};
    use crate::record::history::Outcome;

    fn at(secs: i64) -> super::super::At {
        chrono::DateTime::from_timestamp(1_780_000_000 + secs, 0).unwrap()
    }

    fn entries() -> Vec<Entry> {
        let delivered = |s, task, attempt| {
            Entry::at(
                at(s),
                Event::Delivered(Delivered {
                    task,
                    attempt,
                    agent: "ann".into(),
                    base: Some("b0".into()),
                    note: None,
                    pid: None,
                }),
            )
        };
        let done = |s, task, attempt, head: &str| {
            Entry::at(
                at(s),
                Event::Ended(Ended {
                    task,
                    attempt,
                    agent: "ann".into(),
                    outcome: EndOutcome::Done,
                    error: None,
                    base: Some("b0".into()),
                    head: Some(head.into()),
                    files: vec![],
                }),
            )
        };
        vec![
            Entry::at(
                at(0),
                Event::Run(Run {
                    action: RunAction::Start,
                    pid: 7,
                }),
            ),
            delivered(1, 1, 1),
            done(2, 1, 1, "h1"),
            Entry::at(
                at(3),
                Event::Merge(Merge {
                    task: 1,
                    attempt: 1,
                    agent: "ann".into(),
                    outcome: MergeResult::Merged,
                    base: None,
                    head: None,
                    gate: None,
                    gate_secs: None,
                    exit_code: None,
                    landed: Some("m1".into()),
                    error: None,
                }),
            ),
            delivered(4, 2, 1),
            done(5, 2, 1, "h2"),
            delivered(6, 2, 2),
            done(7, 2, 2, "h2b"),
        ]
    }

    #[test]
    fn a_landing_the_record_lacks_gets_its_merge_line_for_its_attempt() {
        let history = History::fold(&entries());
        let landing = |task, head: &str, commit: Option<&str>| Landing {
            task,
            head: head.into(),
            commit: commit.map(str::to_owned),
            agent: Some("queue-agent".into()),
            base: None,
        };
        let missing = missing_landings(
            &history,
            &[
                landing(1, "h1", Some("m1")),
                landing(2, "h2", Some("m2")),
                landing(3, "h3", None),
            ],
        );
        let [Event::Merge(two), Event::Merge(three)] = &missing[..] else {
            panic!("{missing:?}")
        };
        assert_eq!(
            (two.task, two.attempt, two.agent.as_str(), two.outcome),
            (2, 1, "ann", MergeResult::Merged),
            "the attempt whose head landed"
        );
        assert_eq!(two.landed.as_deref(), Some("m2"));
        assert_eq!(two.base.as_deref(), Some("b0"));
        assert_eq!(two.head.as_deref(), Some("h2"));
        // Never delivered by batty: the queue's agent, attempt 0.
        assert_eq!(
            (
                three.task,
                three.attempt,
                three.agent.as_str(),
                three.outcome
            ),
            (3, 0, "queue-agent", MergeResult::Nothing)
        );
        // Once written, nothing is missing any more.
        let mut all = entries();
        all.extend(missing.into_iter().map(|e| Entry::at(at(9), e)));
        let history = History::fold(&all);
        assert_eq!(
            missing_landings(
                &history,
                &[landing(2, "h2", Some("m2")), landing(3, "h3", None)]
            ),
            []
        );
        assert_eq!(
            history.task(2).unwrap().attempts[0].outcome,
            Outcome::Merged
        );
    }

    #[test]
    fn a_stop_is_missing_only_after_that_supervisors_start() {
        let mut e = entries();
        assert_eq!(
            missing_stop(&e, 7),
            Some(Event::Run(Run {
                action: RunAction::Stop,
                pid: 7
            }))
        );
        assert_eq!(missing_stop(&e, 8), None);
        e.push(Entry::at(
            at(9),
            Event::Run(Run {
                action: RunAction::Stop,
                pid: 7,
            }),
        ));
        assert_eq!(missing_stop(&e, 7), None);
        assert_eq!(missing_stop(&[], 7), None);
    }
}
