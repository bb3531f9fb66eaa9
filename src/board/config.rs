//! A board's `config.yml` (kanban-md config versions 1 to 11): statuses, priorities, classes,
//! claim timeout, WIP limits, `next_id`, `tasks_dir`. The file is never rewritten whole: bumping
//! `next_id` replaces that one line, so comments and everything else stay byte-identical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::BoardError;
use super::time::parse_go_duration;

pub const CONFIG_FILE: &str = "config.yml";

/// The status kanban-md reserves for soft-deleted tasks; always terminal.
pub const ARCHIVED: &str = "archived";

/// A status column.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusDef {
    pub name: String,
    pub require_claim: bool,
    pub show_duration: Option<bool>,
}

/// A class of service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClassDef {
    pub name: String,
    #[serde(default)]
    pub wip_limit: u32,
    #[serde(default)]
    pub bypass_column_wip: bool,
}

/// The parts of a board's `config.yml` batty uses (other keys, such as `tui`, are left alone).
#[derive(Debug, Clone, PartialEq)]
pub struct BoardConfig {
    pub version: u32,
    pub name: String,
    pub tasks_dir: String,
    pub statuses: Vec<StatusDef>,
    pub priorities: Vec<String>,
    pub default_status: String,
    pub default_priority: String,
    pub default_class: Option<String>,
    pub wip_limits: BTreeMap<String, u32>,
    /// Zero: claims never expire.
    pub claim_timeout: Duration,
    pub classes: Vec<ClassDef>,
    pub next_id: u64,
    dir: PathBuf,
}

#[derive(Deserialize)]
struct RawConfig {
    version: Option<u32>,
    #[serde(default)]
    board: RawBoard,
    tasks_dir: Option<String>,
    #[serde(default)]
    statuses: Vec<RawStatus>,
    #[serde(default)]
    priorities: Vec<String>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    wip_limits: BTreeMap<String, u32>,
    claim_timeout: Option<String>,
    #[serde(default)]
    classes: Vec<ClassDef>,
    next_id: Option<u64>,
}

#[derive(Deserialize, Default)]
struct RawBoard {
    name: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawDefaults {
    status: Option<String>,
    priority: Option<String>,
    class: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawStatus {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        require_claim: bool,
        show_duration: Option<bool>,
    },
}

impl BoardConfig {
    /// Reads `<dir>/config.yml`.
    pub fn load(dir: &Path) -> Result<BoardConfig, BoardError> {
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BoardError::NoConfig {
                    dir: dir.to_owned(),
                });
            }
            Err(source) => return Err(BoardError::Io { path, source }),
        };
        BoardConfig::parse(dir, &text)
    }

    pub fn parse(dir: &Path, text: &str) -> Result<BoardConfig, BoardError> {
        let path = dir.join(CONFIG_FILE);
        let invalid = |line: Option<u64>, message: String| BoardError::Config {
            path: path.clone(),
            line,
            message,
        };
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let (line, reason) = crate::config::yaml_error(&e);
            invalid(line, reason)
        })?;
        let version = raw
            .version
            .ok_or_else(|| invalid(None, "missing `version`".into()))?;
        if version == 0 {
            return Err(invalid(None, "`version` must be 1 or more".into()));
        }
        let statuses: Vec<StatusDef> = raw
            .statuses
            .into_iter()
            .map(|s| match s {
                RawStatus::Name(name) => StatusDef {
                    name,
                    require_claim: false,
                    show_duration: None,
                },
                RawStatus::Full {
                    name,
                    require_claim,
                    show_duration,
                } => StatusDef {
                    name,
                    require_claim,
                    show_duration,
                },
            })
            .collect();
        if statuses.len() < 2 {
            return Err(invalid(None, "at least 2 statuses are required".into()));
        }
        // Older configs get in memory what kanban-md's migrations would add (never on disk).
        let old = version < 3;
        let claim_timeout = match raw.claim_timeout.as_deref() {
            Some(s) if !s.is_empty() => parse_go_duration(s)
                .ok_or_else(|| invalid(None, format!("invalid `claim_timeout` `{s}`")))?,
            _ if old => Duration::from_secs(3600),
            _ => Duration::ZERO,
        };
        let classes = if raw.classes.is_empty() && old {
            default_classes()
        } else {
            raw.classes
        };
        let default_class = raw
            .defaults
            .class
            .or_else(|| old.then(|| "standard".to_owned()));
        let first = statuses[0].name.clone();
        Ok(BoardConfig {
            version,
            name: raw.board.name.unwrap_or_default(),
            tasks_dir: raw
                .tasks_dir
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "tasks".into()),
            default_status: raw.defaults.status.unwrap_or(first),
            default_priority: raw
                .defaults
                .priority
                .or_else(|| raw.priorities.first().cloned())
                .unwrap_or_default(),
            statuses,
            priorities: raw.priorities,
            default_class,
            wip_limits: raw.wip_limits,
            claim_timeout,
            classes,
            next_id: raw.next_id.unwrap_or(1).max(1),
            dir: dir.to_owned(),
        })
    }

    /// The board folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `other` says anything else than this config besides `next_id` (which every
    /// `task add` bumps, and which nothing but creating a task reads).
    pub fn same_rules(&self, other: &BoardConfig) -> bool {
        *self
            == BoardConfig {
                next_id: self.next_id,
                ..other.clone()
            }
    }

    /// The folder of task files.
    pub fn tasks_path(&self) -> PathBuf {
        self.dir.join(&self.tasks_dir)
    }

    pub fn status_names(&self) -> impl Iterator<Item = &str> {
        self.statuses.iter().map(|s| s.name.as_str())
    }

    pub fn has_status(&self, status: &str) -> bool {
        self.status_names().any(|s| s == status)
    }

    /// kanban-md's terminal statuses: `archived`, and the last status (the one before
    /// `archived` when the board ends with it).
    pub fn is_terminal(&self, status: &str) -> bool {
        if status == ARCHIVED {
            return true;
        }
        match self.statuses.as_slice() {
            [.., before, last] if last.name == ARCHIVED => status == before.name,
            [.., last] => status == last.name,
            [] => false,
        }
    }

    /// The status `done`-like moves go to: the first terminal status that is not `archived`.
    pub fn done_status(&self) -> &str {
        self.status_names()
            .find(|s| self.is_terminal(s) && *s != ARCHIVED)
            .unwrap_or(ARCHIVED)
    }

    /// Higher index = higher priority; unknown priorities rank lowest.
    pub fn priority_index(&self, priority: &str) -> isize {
        self.priorities
            .iter()
            .position(|p| p == priority)
            .map_or(-1, |i| i as isize)
    }

    /// Position of a class in the configured order; an unset or unknown class counts as
    /// `standard`, as in kanban-md's `pick`.
    pub fn class_index(&self, class: Option<&str>) -> isize {
        let find = |name: &str| self.classes.iter().position(|c| c.name == name);
        class
            .and_then(find)
            .or_else(|| find("standard"))
            .map_or(-1, |i| i as isize)
    }
}

fn default_classes() -> Vec<ClassDef> {
    ["expedite", "fixed-date", "standard", "intangible"]
        .into_iter()
        .map(|name| ClassDef {
            name: name.into(),
            wip_limit: u32::from(name == "expedite"),
            bypass_column_wip: name == "expedite",
        })
        .collect()
}

/// `text` with the top-level `next_id:` line set to `next`, everything else unchanged; the key
/// is appended when the file has none.
pub fn with_next_id(text: &str, next: u64) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut replaced = false;
    for line in text.split_inclusive('\n') {
        let is_next_id = line
            .strip_prefix("next_id:")
            .is_some_and(|rest| rest.trim_start().starts_with(|c: char| c.is_ascii_digit()));
        if is_next_id && !replaced {
            let rest = &line["next_id:".len()..];
            let value_start = rest.len() - rest.trim_start().len();
            let digits = rest[value_start..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - value_start);
            out.push_str("next_id:");
            out.push_str(&rest[..value_start]);
            out.push_str(&next.to_string());
            out.push_str(&rest[value_start + digits..]);
            replaced = true;
        } else {
            out.push_str(line);
        }
    }
    if !replaced {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("next_id: {next}\n"));
    }
    out
}

/// The `config.yml` kanban-md v0.37 (`version: 11`) writes for a new board named `name`.
pub fn default_config_yml(name: &str) -> String {
    let mut out = String::from("version: 11\nboard:\n    name: ");
    super::yaml::push_scalar(&mut out, name, 8);
    out.push_str(
        "\ntasks_dir: tasks
statuses:
    - name: backlog
      show_duration: false
    - name: todo
    - name: in-progress
      require_claim: true
    - name: review
      require_claim: true
    - name: done
      show_duration: false
    - name: archived
      show_duration: false
priorities:
    - low
    - medium
    - high
    - critical
defaults:
    status: backlog
    priority: medium
    class: standard
claim_timeout: 1h
classes:
    - name: expedite
      wip_limit: 1
      bypass_column_wip: true
    - name: fixed-date
    - name: standard
    - name: intangible
tui:
    title_lines: 2
    age_thresholds:
        - after: 0s
          color: \"242\"
        - after: 1h
          color: \"34\"
        - after: 24h
          color: \"226\"
        - after: 72h
          color: \"208\"
        - after: 168h
          color: \"196\"
next_id: 1
",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> BoardConfig {
        BoardConfig::parse(Path::new("b"), text).unwrap()
    }

    #[test]
    fn default_config_reads_back() {
        let c = parse(&default_config_yml("demo"));
        assert_eq!(c.version, 11);
        assert_eq!(c.name, "demo");
        assert_eq!(c.statuses.len(), 6);
        assert!(c.statuses[2].require_claim);
        assert_eq!(c.claim_timeout, Duration::from_secs(3600));
        assert_eq!(c.default_class.as_deref(), Some("standard"));
        assert!(c.is_terminal("done") && c.is_terminal("archived") && !c.is_terminal("review"));
        assert_eq!(c.done_status(), "done");
        assert_eq!(c.next_id, 1);
    }

    #[test]
    fn v1_config_with_plain_statuses() {
        let c = parse(
            "version: 1\nboard:\n  name: old\ntasks_dir: tasks\nstatuses: [todo, doing, finished]\n\
             priorities: [low, high]\ndefaults:\n  status: todo\n  priority: low\nnext_id: 4\n",
        );
        assert!(c.is_terminal("finished"));
        assert_eq!(c.claim_timeout, Duration::from_secs(3600));
        assert_eq!(c.class_index(None), 2);
        assert_eq!(c.next_id, 4);
    }

    #[test]
    fn bad_config_names_the_line() {
        let err = BoardConfig::parse(Path::new("b"), "version: 11\nstatuses: [a\n").unwrap_err();
        assert!(err.to_string().starts_with("b/config.yml:"), "{err}");
        let err = BoardConfig::parse(
            Path::new("b"),
            "version: 11\nstatuses: [a, b]\nclaim_timeout: 1 day\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("claim_timeout"), "{err}");
    }

    #[test]
    fn next_id_replaces_one_line() {
        let text = "version: 11\n# keep me\nnext_id: 7 # counter\ntui: {}\n";
        assert_eq!(
            with_next_id(text, 8),
            "version: 11\n# keep me\nnext_id: 8 # counter\ntui: {}\n"
        );
        assert_eq!(with_next_id("version: 11", 2), "version: 11\nnext_id: 2\n");
    }
}
