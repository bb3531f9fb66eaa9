//! The line format of the attempt record: one [`Entry`] per line, version [`VERSION`]
//! (every field is documented in `docs/record.md`).
//!
//! Compatibility: a reader ignores fields it does not know, and reads an event kind or an
//! outcome it does not know as `Other`, so adding either keeps version 1. Only a change an old
//! reader would misread (a field's meaning or type) takes a new version, whose lines old
//! readers report and skip.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The version every line is written with.
pub const VERSION: u32 = 1;

/// A moment in the record: UTC, written as RFC 3339 with milliseconds.
pub type At = DateTime<Utc>;

/// One line of the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The line's format version; written first, so every line starts with `{"v":`.
    pub v: u32,
    #[serde(with = "rfc3339_ms")]
    pub at: At,
    #[serde(flatten)]
    pub event: Event,
}

impl Entry {
    /// `event`, stamped now (at millisecond precision, as it will be read back).
    pub fn now(event: Event) -> Entry {
        Entry::at(Utc::now(), event)
    }

    /// `event` at `at`, truncated to the millisecond the line keeps.
    pub fn at(at: At, event: Event) -> Entry {
        let ms = at.timestamp_millis();
        Entry {
            v: VERSION,
            at: DateTime::from_timestamp_millis(ms).unwrap_or(at),
            event,
        }
    }

    /// The task this entry is about, if any.
    pub fn task(&self) -> Option<u64> {
        match &self.event {
            Event::Delivered(d) => Some(d.task),
            Event::Ended(e) => Some(e.task),
            Event::Merge(m) => Some(m.task),
            Event::Review(r) => Some(r.task),
            Event::Reopened(r) => Some(r.task),
            Event::Run(_) | Event::Other => None,
        }
    }
}

/// What happened, tagged by the `event` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A task was handed to an agent: an attempt starts.
    Delivered(Delivered),
    /// An attempt ended (the agent is free of the task).
    Ended(Ended),
    /// A merge of an attempt's commits finished (landed or not).
    Merge(Merge),
    /// A task was given to a person.
    Review(Review),
    /// A supervisor started or stopped.
    Run(Run),
    /// A person took a task out of review (its failure budget starts again).
    Reopened(Reopened),
    /// An event kind this batty does not know (written by a newer one); ignored.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    pub task: u64,
    /// 1 for the first attempt at the task, counting every attempt however it ended.
    pub attempt: u32,
    pub agent: String,
    /// The target tip the attempt starts on (the agent's worktree was synced onto it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// What the agent was told besides the task: a resume note or the previous failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The agent's pane process: a restarted supervisor that finds the same process still
    /// running leaves it the task; a new process means the agent was restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ended {
    pub task: u64,
    pub attempt: u32,
    pub agent: String,
    pub outcome: EndOutcome,
    /// Why it ended that way: the reason, or the last lines of the agent's screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The agent's head when the attempt ended; its commits are `base..head`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// What `base..head` changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileChange>,
}

/// How an attempt ended, as the supervisor saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndOutcome {
    /// The task reached the board's done status; a `merge` event may follow.
    Done,
    /// The agent's process exited.
    AgentDied,
    /// The supervisor restarted and did not keep the attempt going.
    Restarted,
    /// Busy with no output past the hang limit.
    HangTimeout,
    /// The delivery was never taken by the agent.
    NotTaken,
    /// The agent went idle with the task unfinished, past every reminder.
    IdleAfterReminders,
    /// A person released the task (or moved it back to the queue).
    Released,
    /// A person moved the task to review while the agent held it.
    MovedToReview,
    /// An outcome this batty does not know.
    #[serde(other)]
    Other,
}

impl EndOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EndOutcome::Done => "done",
            EndOutcome::AgentDied => "agent_died",
            EndOutcome::Restarted => "restarted",
            EndOutcome::HangTimeout => "hang_timeout",
            EndOutcome::NotTaken => "not_taken",
            EndOutcome::IdleAfterReminders => "idle_after_reminders",
            EndOutcome::Released => "released",
            EndOutcome::MovedToReview => "moved_to_review",
            EndOutcome::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merge {
    pub task: u64,
    /// The attempt whose commits were merged.
    pub attempt: u32,
    pub agent: String,
    pub outcome: MergeResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The gate's command line, when a gate ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The target's new tip, when merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landed: Option<String>,
    /// The conflicting files, the gate's last lines, or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a merge ended. A moved target or a dirty checkout is not an end (the merge is tried
/// again) and is not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeResult {
    Merged,
    GateRed,
    Conflict,
    /// No commits to land (none made, or all already on the target).
    Nothing,
    Error,
    #[serde(other)]
    Other,
}

impl MergeResult {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeResult::Merged => "merged",
            MergeResult::GateRed => "gate_red",
            MergeResult::Conflict => "conflict",
            MergeResult::Nothing => "nothing",
            MergeResult::Error => "error",
            MergeResult::Other => "other",
        }
    }

    /// The result, the landed commit and the error text of a finished merge attempt; `None`
    /// for an attempt that will be retried as is (target moved, dirty checkout), which is not
    /// recorded. The gate's command, time and exit code are the caller's to fill in.
    pub fn of(
        outcome: &Result<crate::merge::MergeOutcome, crate::merge::MergeError>,
    ) -> Option<(MergeResult, Option<String>, Option<String>)> {
        use crate::merge::MergeOutcome as O;
        Some(match outcome {
            Ok(O::Merged { new_tip, .. }) => (MergeResult::Merged, Some(new_tip.clone()), None),
            Ok(O::NothingToMerge) => (MergeResult::Nothing, None, None),
            Ok(O::Conflict { files, .. }) => (MergeResult::Conflict, None, Some(files.join("\n"))),
            Ok(O::GateFailed { status, tail, .. }) => (
                MergeResult::GateRed,
                None,
                Some(format!("{status}\n{tail}")),
            ),
            Ok(O::TargetMoved) | Ok(O::MainDirty { .. }) => return None,
            Err(err) => (MergeResult::Error, None, Some(err.to_string())),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub task: u64,
    /// The task's `block_reason`.
    pub reason: String,
    /// Where the rejected commits are kept, e.g. `refs/batty/v1/rejected/12-3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reopened {
    pub task: u64,
    /// Where the person moved it.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub action: RunAction,
    pub pid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunAction {
    Start,
    Stop,
    #[serde(other)]
    Other,
}

/// One file of an attempt's commit range, as `git diff --numstat` counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    pub insertions: u64,
    pub deletions: u64,
    /// A binary file: git counts no lines.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
}

impl FileChange {
    /// Parses `git diff --numstat -z` output (`ins\tdel\tpath\0`, a rename as
    /// `ins\tdel\t\0old\0new\0`); the new name of a rename is kept. `-z` because it is the only
    /// form that gives paths verbatim.
    pub fn parse_numstat_z(text: &str) -> Vec<FileChange> {
        let mut out = Vec::new();
        let mut fields = text.split('\0');
        while let Some(head) = fields.next() {
            let head = head.trim_start_matches('\n');
            if head.is_empty() {
                continue;
            }
            let mut parts = head.splitn(3, '\t');
            let (Some(ins), Some(del), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let path = if path.is_empty() {
                // A rename: the old and the new name follow as their own fields.
                let _old = fields.next();
                fields.next().unwrap_or_default().to_owned()
            } else {
                path.to_owned()
            };
            let binary = ins == "-" && del == "-";
            out.push(FileChange {
                path,
                insertions: ins.parse().unwrap_or(0),
                deletions: del.parse().unwrap_or(0),
                binary,
            });
        }
        out
    }
}

/// `at` as `2026-05-01T12:00:00.123Z`.
pub fn format_at(at: &At) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

mod rfc3339_ms {
    use super::At;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &At, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_at(at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<At, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| serde::de::Error::custom(format!("bad time `{text}`: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> At {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn lines_have_the_documented_layout() {
        let e = Entry::at(
            at("2026-05-01T12:00:00.123456Z"),
            Event::Delivered(Delivered {
                task: 12,
                attempt: 1,
                agent: "brave-otter".into(),
                base: Some("abc".into()),
                note: None,
                pid: None,
            }),
        );
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(
            line,
            r#"{"v":1,"at":"2026-05-01T12:00:00.123Z","event":"delivered","task":12,"attempt":1,"agent":"brave-otter","base":"abc"}"#
        );
        let back: Entry = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn unknown_fields_kinds_and_outcomes_are_tolerated() {
        let e: Entry = serde_json::from_str(
            r#"{"v":1,"at":"2026-05-01T12:00:00Z","event":"ended","task":3,"attempt":2,
               "agent":"a","outcome":"paused","mood":"tired"}"#,
        )
        .unwrap();
        let Event::Ended(ended) = e.event else {
            panic!("{e:?}")
        };
        assert_eq!((ended.task, ended.outcome), (3, EndOutcome::Other));
        let e: Entry =
            serde_json::from_str(r#"{"v":1,"at":"2026-05-01T12:00:00Z","event":"nap","task":3}"#)
                .unwrap();
        assert_eq!(e.event, Event::Other);
    }

    #[test]
    fn numstat_z_keeps_paths_verbatim() {
        let text = concat!(
            "3\t1\tsrc/a.rs\0",
            "-\t-\timg.png\0",
            "2\t0\t\0old name.rs\0new\tname.rs\0"
        );
        let files = FileChange::parse_numstat_z(text);
        assert_eq!(
            files,
            [
                FileChange {
                    path: "src/a.rs".into(),
                    insertions: 3,
                    deletions: 1,
                    binary: false
                },
                FileChange {
                    path: "img.png".into(),
                    insertions: 0,
                    deletions: 0,
                    binary: true
                },
                FileChange {
                    path: "new\tname.rs".into(),
                    insertions: 2,
                    deletions: 0,
                    binary: false
                },
            ]
        );
    }

    #[test]
    fn merge_outcomes_map_to_results() {
        use crate::merge::MergeOutcome as O;
        let merged = MergeResult::of(&Ok(O::Merged {
            new_tip: "t".into(),
            commits: 2,
            gate: None,
        }));
        assert_eq!(merged, Some((MergeResult::Merged, Some("t".into()), None)));
        let conflict = MergeResult::of(&Ok(O::Conflict {
            files: vec!["a".into(), "b".into()],
            kept: None,
        }));
        assert_eq!(
            conflict,
            Some((MergeResult::Conflict, None, Some("a\nb".into())))
        );
        assert_eq!(MergeResult::of(&Ok(O::TargetMoved)), None);
    }
}
