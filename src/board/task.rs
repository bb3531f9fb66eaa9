//! A task: the front matter fields kanban-md knows, the body, the file it lives in, and (for
//! rewrites) how its front matter was laid out on disk.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

use super::frontmatter::{self, Field, Layout, LineError, RawValue};
use super::time::{Timestamp, format_rfc3339_nano, parse_date, parse_timestamp};

/// One task file. Fields mirror kanban-md's front matter; `None`/empty means the key is absent.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: u64,
    pub title: String,
    pub status: String,
    pub priority: String,
    pub created: Option<Timestamp>,
    pub updated: Option<Timestamp>,
    pub started: Option<Timestamp>,
    pub completed: Option<Timestamp>,
    pub assignee: Option<String>,
    pub tags: Vec<String>,
    pub due: Option<NaiveDate>,
    pub estimate: Option<String>,
    pub parent: Option<u64>,
    pub depends_on: Vec<u64>,
    pub blocked: bool,
    pub block_reason: Option<String>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<Timestamp>,
    pub class: Option<String>,
    /// The markdown below the front matter.
    pub body: String,
    /// Top-level keys batty does not know, in file order (their text is kept on rewrite).
    pub extra_keys: Vec<String>,
    /// batty's own `timeout` key (unknown to kanban-md, so also in `extra_keys`): its text,
    /// a duration such as `45m` that the supervisor reads.
    pub timeout: Option<String>,
    pub(crate) path: PathBuf,
    /// How the file was written: set when read for a rewrite, so untouched keys keep their text.
    pub(crate) source: Option<Source>,
    /// Where some keys are in the file, for problems found after parsing.
    pub(crate) lines: KeyLines,
}

/// File lines (1-based, 0 = unknown) of the keys board problems point at. Positions never make
/// two tasks differ: equality is about what a task says, not where it says it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyLines {
    pub status: u32,
    pub depends_on: u32,
}

impl PartialEq for KeyLines {
    fn eq(&self, _: &KeyLines) -> bool {
        true
    }
}

impl KeyLines {
    pub fn status(&self) -> Option<usize> {
        (self.status > 0).then_some(self.status as usize)
    }
    pub fn depends_on(&self) -> Option<usize> {
        (self.depends_on > 0).then_some(self.depends_on as usize)
    }
}

/// The on-disk form of a task read for rewriting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    pub layout: Option<Layout>,
    pub tail: String,
    pub original: Box<Task>,
}

impl Task {
    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn title(&self) -> &str {
        &self.title
    }
    pub fn status(&self) -> &str {
        &self.status
    }
    pub fn priority(&self) -> &str {
        &self.priority
    }
    pub fn depends_on(&self) -> &[u64] {
        &self.depends_on
    }
    pub fn claimed_by(&self) -> Option<&str> {
        self.claimed_by.as_deref()
    }
    pub fn claimed_at(&self) -> Option<&Timestamp> {
        self.claimed_at.as_ref()
    }
    pub fn body(&self) -> &str {
        &self.body
    }
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }
    pub fn block_reason(&self) -> Option<&str> {
        self.block_reason.as_deref()
    }
    /// The task file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The task file's name, e.g. `003-fix-login.md`.
    pub fn file_name(&self) -> &str {
        self.path.file_name().and_then(|n| n.to_str()).unwrap_or("")
    }

    /// Forgets how the file was laid out: the task then renders exactly as kanban-md would
    /// write it (unknown keys and comments are dropped, as kanban-md drops them).
    pub fn clear_source(&mut self) {
        self.source = None;
    }

    /// Whether someone holds an unexpired claim (`timeout` zero: claims never expire).
    pub fn is_claimed(&self, now: &Timestamp, timeout: std::time::Duration) -> bool {
        if self.claimed_by.as_deref().is_none_or(str::is_empty) {
            return false;
        }
        match (&self.claimed_at, timeout.is_zero()) {
            (Some(at), false) => {
                let age = now.signed_duration_since(*at);
                age.to_std().map_or(true, |age| age <= timeout)
            }
            _ => true,
        }
    }

    /// A task with only the required fields set.
    pub(crate) fn blank(id: u64, title: String, status: String, priority: String) -> Task {
        Task {
            id,
            title,
            status,
            priority,
            created: None,
            updated: None,
            started: None,
            completed: None,
            assignee: None,
            tags: Vec::new(),
            due: None,
            estimate: None,
            parent: None,
            depends_on: Vec::new(),
            blocked: false,
            block_reason: None,
            claimed_by: None,
            claimed_at: None,
            class: None,
            body: String::new(),
            extra_keys: Vec::new(),
            timeout: None,
            path: PathBuf::new(),
            source: None,
            lines: KeyLines::default(),
        }
    }

    /// A task with the required fields, for boards built in memory ([`super::Board::from_tasks`]
    /// gives it its file name on that board).
    pub fn new(id: u64, title: impl Into<String>, status: impl Into<String>) -> Task {
        Task::blank(id, title.into(), status.into(), String::new())
    }

    /// Parses a task file's text. With `keep_source` the layout is kept for a faithful rewrite.
    pub(crate) fn parse(path: &Path, text: &str, keep_source: bool) -> Result<Task, LineError> {
        let split = frontmatter::split(text)?;
        let raw = frontmatter::parse(split.front)?;
        let line = |field: Field| frontmatter::line_of_key(split.front, field.name());
        let mut task = Task::blank(0, String::new(), String::new(), String::new());
        let mut id = None;
        for (field, value) in raw.known {
            let bad = |what: &str, got: &str| LineError {
                line: line(field),
                reason: format!("`{}`: {what}, got `{got}`", field.name()),
            };
            match value {
                RawValue::List(items) => match field {
                    Field::Tags => task.tags = items,
                    _ => {
                        for item in items {
                            let dep =
                                parse_id(&item).ok_or_else(|| bad("expected task ids", &item))?;
                            task.depends_on.push(dep);
                        }
                    }
                },
                RawValue::Scalar(None) => {}
                RawValue::Scalar(Some(s)) => {
                    let time =
                        |s: &str| parse_timestamp(s).ok_or_else(|| bad("expected a timestamp", s));
                    match field {
                        Field::Id => {
                            id = Some(
                                parse_id(&s)
                                    .ok_or_else(|| bad("expected a positive integer", &s))?,
                            )
                        }
                        Field::Title => task.title = s,
                        Field::Status => task.status = s,
                        Field::Priority => task.priority = s,
                        Field::Created => task.created = Some(time(&s)?),
                        Field::Updated => task.updated = Some(time(&s)?),
                        Field::Started => task.started = Some(time(&s)?),
                        Field::Completed => task.completed = Some(time(&s)?),
                        Field::ClaimedAt => task.claimed_at = Some(time(&s)?),
                        Field::Assignee => task.assignee = Some(s),
                        Field::Estimate => task.estimate = Some(s),
                        Field::BlockReason => task.block_reason = Some(s),
                        Field::ClaimedBy => task.claimed_by = Some(s),
                        Field::Class => task.class = Some(s),
                        Field::Due => {
                            task.due = Some(
                                parse_date(&s)
                                    .ok_or_else(|| bad("expected a date (YYYY-MM-DD)", &s))?,
                            )
                        }
                        Field::Parent => {
                            task.parent =
                                Some(parse_id(&s).ok_or_else(|| bad("expected a task id", &s))?)
                        }
                        Field::Blocked => {
                            task.blocked =
                                parse_bool(&s).ok_or_else(|| bad("expected true or false", &s))?
                        }
                        Field::Tags | Field::DependsOn => {}
                    }
                }
            }
        }
        for (field, value) in [
            (Field::Id, id.is_some()),
            (Field::Title, !task.title.trim().is_empty()),
            (Field::Status, !task.status.trim().is_empty()),
        ] {
            if !value {
                let line = if raw.keys.iter().any(|k| k == field.name()) {
                    line(field)
                } else {
                    1
                };
                return Err(LineError {
                    line,
                    reason: format!("missing required field `{}`", field.name()),
                });
            }
        }
        task.id = id.unwrap_or_default();
        task.extra_keys = raw
            .keys
            .iter()
            .filter(|k| Field::from_name(k).is_none())
            .cloned()
            .collect();
        task.timeout = raw.timeout;
        task.body = split.body.to_owned();
        task.path = path.to_owned();
        let key_line = |key: &str| {
            if raw.keys.iter().any(|k| k == key) {
                frontmatter::line_of_key(split.front, key) as u32
            } else {
                0
            }
        };
        task.lines = KeyLines {
            status: key_line("status"),
            depends_on: key_line("depends_on"),
        };
        if keep_source {
            task.source = Some(Source {
                layout: frontmatter::layout(split.front, &raw.keys),
                tail: split.tail.to_owned(),
                original: Box::new(task.clone()),
            });
        }
        Ok(task)
    }
}

fn parse_id(s: &str) -> Option<u64> {
    s.trim().parse::<u64>().ok().filter(|&n| n > 0)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => {
            Some(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => {
            Some(false)
        }
        _ => None,
    }
}

/// kanban-md's JSON shape for a task (`list --json`, `show --json`): Go's field order and
/// `omitempty` rules, plus `body` and `file`.
#[derive(Serialize)]
pub struct TaskJson<'a> {
    id: u64,
    title: &'a str,
    status: &'a str,
    priority: &'a str,
    created: String,
    updated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    due: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimate: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<u64>,
    #[serde(skip_serializing_if = "<[u64]>::is_empty")]
    depends_on: &'a [u64],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    blocked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claimed_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claimed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    body: &'a str,
    file: String,
}

/// Go's zero `time.Time`, which kanban-md prints for a missing `created`/`updated`.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl<'a> TaskJson<'a> {
    pub fn new(task: &'a Task) -> TaskJson<'a> {
        let time = |t: &Option<Timestamp>| t.as_ref().map(format_rfc3339_nano);
        let text = |s: &'a Option<String>| s.as_deref().filter(|s| !s.is_empty());
        TaskJson {
            id: task.id,
            title: &task.title,
            status: &task.status,
            priority: &task.priority,
            created: time(&task.created).unwrap_or_else(|| GO_ZERO_TIME.into()),
            updated: time(&task.updated).unwrap_or_else(|| GO_ZERO_TIME.into()),
            started: time(&task.started),
            completed: time(&task.completed),
            assignee: text(&task.assignee),
            tags: &task.tags,
            due: task.due.map(|d| d.format("%Y-%m-%d").to_string()),
            estimate: text(&task.estimate),
            parent: task.parent,
            depends_on: &task.depends_on,
            blocked: task.blocked,
            block_reason: text(&task.block_reason),
            claimed_by: text(&task.claimed_by),
            claimed_at: time(&task.claimed_at),
            class: text(&task.class),
            body: &task.body,
            file: task.path.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Task, LineError> {
        Task::parse(Path::new("t.md"), text, false)
    }

    #[test]
    fn batty_own_timeout_key_is_read_and_stays_unknown_to_kanban_md() {
        let front =
            |value: &str| format!("---\nid: 1\ntitle: T\nstatus: todo\ntimeout: {value}\n---\n");
        // The fast path, quoted or not; a number is kept as written.
        for (value, want) in [("45m", "45m"), ("'1h 30m'", "1h 30m"), ("90", "90")] {
            let t = parse(&front(value)).unwrap();
            assert_eq!(t.timeout.as_deref(), Some(want), "{value}");
            assert_eq!(t.extra_keys, ["timeout"]);
        }
        // serde-saphyr (a flow list elsewhere sends it there): a scalar, or nothing for a
        // list, a mapping or null; the task stays readable either way.
        let slow = |value: &str| {
            parse(&format!(
                "---\nid: 1\ntitle: T\nstatus: todo\ntags: [a]\ntimeout: {value}\n---\n"
            ))
            .unwrap()
            .timeout
        };
        assert_eq!(slow("2s").as_deref(), Some("2s"));
        assert_eq!(slow("[1, 2]"), None);
        assert_eq!(slow("{a: 1}"), None);
        assert_eq!(slow("~"), None);
        assert_eq!(
            parse("---\nid: 1\ntitle: T\nstatus: todo\n---\n")
                .unwrap()
                .timeout,
            None
        );
    }

    #[test]
    fn reads_all_fields() {
        let t = parse(
            "---\nid: 7\ntitle: Fix login\nstatus: todo\npriority: high\n\
             created: 2026-02-01T12:00:00Z\nupdated: 2026-02-02T12:00:00.5+02:00\n\
             tags:\n    - auth\ndue: \"2026-03-01\"\nparent: 2\ndepends_on:\n    - 3\n    - 4\n\
             blocked: true\nblock_reason: waiting\nclaimed_by: otter\n\
             claimed_at: 2026-02-03T00:00:00Z\nclass: expedite\ntype: story\n---\n\nBody\n",
        )
        .unwrap();
        assert_eq!(t.id, 7);
        assert_eq!(t.tags, ["auth"]);
        assert_eq!(t.depends_on, [3, 4]);
        assert_eq!(t.due, NaiveDate::from_ymd_opt(2026, 3, 1));
        assert!(t.blocked);
        assert_eq!(t.extra_keys, ["type"]);
        assert_eq!(t.body, "Body\n");
    }

    #[test]
    fn lenient_reading() {
        let t = parse("---\nid: 1\ntitle: 123\nstatus: todo\ncreated: 2026-02-01\n---\n").unwrap();
        assert_eq!(t.title, "123");
        assert!(t.updated.is_none());
        assert_eq!(t.priority, "");
    }

    #[test]
    fn problems_name_the_line() {
        let err = parse("---\nid: 1\ntitle: x\nstatus: todo\ncreated: soon\n---\n").unwrap_err();
        assert_eq!(err.line, 5);
        assert!(err.reason.contains("`created`"), "{err:?}");
        let err = parse("---\ntitle: x\nstatus: todo\n---\n").unwrap_err();
        assert_eq!(
            (err.line, err.reason.as_str()),
            (1, "missing required field `id`")
        );
        let err = parse("---\nid: x\ntitle: x\nstatus: todo\n---\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
