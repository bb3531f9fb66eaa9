//! `.batty/config.yml`: the schema, its defaults, and validation with `file:line` errors.
//! Every key is optional; a missing file means all defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod origin;
pub use origin::{Entry, Origin, effective, schema_defaults, show_value};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        line: Option<u64>,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl crate::error::Diagnose for ConfigError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::User
    }
    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Parse { .. } | ConfigError::Invalid { .. } => {
                Some("every key, its default and meaning: docs/config.md in batty's source, or the commented file `batty init` writes".to_owned())
            }
            ConfigError::Io { .. } => None,
        }
    }
}

/// The text `batty init` writes: every setting with its default, commented.
pub const DEFAULT_CONFIG_YML: &str = include_str!("config_default.yml");

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Branch new worktrees start from; default the branch checked out in the main checkout.
    pub base_branch: Option<String>,
    /// Agent used when `batty work` gets no `--agent`.
    pub default_agent: Option<String>,
    #[serde(deserialize_with = "null_is_default")]
    pub tmux: TmuxConfig,
    #[serde(deserialize_with = "null_is_default")]
    pub worktree: WorktreeConfig,
    #[serde(deserialize_with = "null_is_default")]
    pub logs: LogsConfig,
    #[serde(deserialize_with = "null_is_default")]
    pub supervisor: SupervisorConfig,
    #[serde(deserialize_with = "null_is_default")]
    pub merge: MergeConfig,
    /// Agents by name: new ones, or overrides of the built-in `claude`, `codex`, `aider`, `demo`.
    #[serde(deserialize_with = "null_is_default")]
    pub agents: BTreeMap<String, AgentConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TmuxConfig {
    /// tmux server: unset = the normal server; a name = `-L name`; a path with `/` = `-S path`.
    pub socket: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WorktreeConfig {
    /// Globs of untracked files copied from the main checkout into a new worktree.
    pub copy: Vec<String>,
    /// Shell command run once in each new worktree.
    pub post_create: Option<String>,
    /// `BATTY_PORT` for agent k (from 0) is `port_base + k`.
    pub port_base: Option<u16>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// A pty log is rotated when it passes this many bytes; one old file is kept.
    pub max_bytes: u64,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            max_bytes: 50 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    /// Quiet time after output before the screen is classified.
    #[serde(with = "humantime_serde")]
    pub silence: Duration,
    /// Busy with no output this long while holding a task: interrupted, then restarted.
    #[serde(with = "humantime_serde")]
    pub stuck_after: Duration,
    /// A task held this long is interrupted and its attempt counts as failed.
    #[serde(with = "humantime_serde")]
    pub task_timeout: Duration,
    /// Reminders for an agent that goes idle with its task unfinished before the attempt fails.
    pub max_retries: u32,
    /// An agent idle with an unfinished task is reminded only after sitting idle this long.
    #[serde(with = "humantime_serde")]
    pub reminder_settle: Duration,
    /// Failed attempts at one task (any agent, any cause) before it goes to review.
    pub max_attempts: u32,
    /// Restarts of one agent within `restart_window` before it is parked for a person.
    pub max_restarts: u32,
    #[serde(with = "humantime_serde")]
    pub restart_window: Duration,
    /// Wait before restarting a dead agent; doubled for each restart in the window.
    #[serde(with = "humantime_serde")]
    pub restart_backoff: Duration,
    /// After an interrupt, time an agent has to come back to its prompt before a restart.
    #[serde(with = "humantime_serde")]
    pub interrupt_grace: Duration,
    /// Time a person has to answer a question before the auto-answer is sent.
    #[serde(with = "humantime_serde")]
    pub answer_grace: Duration,
    /// Time a delivered task has to show up (agent busy or text echoed).
    #[serde(with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// Run with an unanswered question on stdin; its stdout is sent as the answer.
    pub escalate_command: Option<String>,
    /// Board statuses whose tasks are dispatched.
    pub dispatch_statuses: Vec<String>,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            silence: Duration::from_millis(300),
            stuck_after: Duration::from_secs(15 * 60),
            task_timeout: Duration::from_secs(30 * 60),
            max_retries: 3,
            reminder_settle: Duration::from_secs(10),
            max_attempts: 3,
            max_restarts: 5,
            restart_window: Duration::from_secs(10 * 60),
            restart_backoff: Duration::from_secs(1),
            interrupt_grace: Duration::from_secs(30),
            answer_grace: Duration::from_millis(1500),
            delivery_timeout: Duration::from_secs(5),
            escalate_command: None,
            dispatch_statuses: vec!["backlog".into(), "todo".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MergeConfig {
    pub enabled: bool,
    /// Branch finished work lands on; default the base branch.
    pub target: Option<String>,
    /// Shell command that must pass on the merged tree, e.g. `cargo test`.
    pub gate: Option<String>,
    #[serde(with = "humantime_serde")]
    pub gate_timeout: Duration,
    pub max_retries: u32,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            enabled: true,
            target: None,
            gate: None,
            gate_timeout: Duration::from_secs(30 * 60),
            max_retries: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Shell command that starts the agent (for built-ins: replaces the default command).
    pub command: Option<String>,
    /// Extra arguments appended to the command.
    pub args: Vec<String>,
    /// Regex on the last non-empty screen line that means the agent waits for input.
    pub ready_pattern: Option<String>,
    /// Regex on the last screen lines that means the agent asks a question.
    pub question_pattern: Option<String>,
    /// Replies to questions, tried in order; first match wins.
    pub answers: Vec<AnswerRule>,
    /// Run with the agent's unattended preset (built-in agents): nobody needs to be at the
    /// keyboard; see the README for what each preset lets the agent do.
    pub unattended: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRule {
    pub pattern: String,
    pub reply: String,
}

/// A section written with only comments under it (`tmux:`) is YAML null: take the defaults.
fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Config {
    /// Reads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_saphyr::from_str(text).map_err(|e| {
            let (line, message) = yaml_error(&e);
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                message,
            }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        for (name, agent) in &self.agents {
            crate::paths::validate_agent(name).map_err(|_| {
                invalid(format!(
                    "agent name `{name}`: use lowercase letters, digits and `-`"
                ))
            })?;
            for (key, pattern) in [
                ("ready_pattern", &agent.ready_pattern),
                ("question_pattern", &agent.question_pattern),
            ] {
                if let Some(p) = pattern {
                    regex::Regex::new(p).map_err(|e| {
                        invalid(format!("agents.{name}.{key}: {}", one_line(&e.to_string())))
                    })?;
                }
            }
            for (i, rule) in agent.answers.iter().enumerate() {
                regex::Regex::new(&rule.pattern).map_err(|e| {
                    invalid(format!(
                        "agents.{name}.answers[{i}].pattern: {}",
                        one_line(&e.to_string())
                    ))
                })?;
            }
        }
        if let Some(socket) = &self.tmux.socket
            && socket.is_empty()
        {
            return Err(invalid("tmux.socket: must not be empty".into()));
        }
        if self.supervisor.dispatch_statuses.is_empty() {
            return Err(invalid(
                "supervisor.dispatch_statuses: name at least one status".into(),
            ));
        }
        Ok(())
    }
}

/// The line (1-based) and a one-line reason for a YAML error, in batty's words: the
/// library's own text is kept only where it speaks to the file's author, never where it
/// addresses a programmer ("set DuplicateKeyPolicy in Options").
pub fn yaml_error(err: &serde_saphyr::Error) -> (Option<u64>, String) {
    let line = err.location().map(|l| l.line()).filter(|&l| l > 0);
    let err = err.without_snippet();
    let reason = match err {
        serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
            format!("duplicate key `{}`", crate::text::one_line(key))
        }
        serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => "duplicate key".to_owned(),
        serde_saphyr::Error::MultipleDocuments { .. } => {
            "more than one YAML document (a `---` line); the file holds one".to_owned()
        }
        serde_saphyr::Error::Budget { .. } => {
            "the file is too large or too deeply nested".to_owned()
        }
        _ => {
            let text = one_line(&err.to_string());
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            // The plain rendering starts "line L column C: reason"; the line is reported
            // separately.
            let reason = match text.split_once(": ") {
                Some((head, rest)) if head.starts_with("line ") => rest,
                _ => text,
            };
            without_api_advice(reason)
        }
    };
    (line, reason)
}

/// Drops a trailing clause that tells a programmer which option to set.
fn without_api_advice(reason: &str) -> String {
    for marker in [
        ", set ",
        "; set ",
        ". If you ",
        "; use from_",
        " in Options",
    ] {
        if let Some(i) = reason.find(marker) {
            return reason[..i]
                .trim_end_matches([',', ';', '.', ' '])
                .to_owned();
        }
    }
    reason.to_owned()
}

/// Folds a multi-line library message (snippets, carets) into one line.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_to_defaults() {
        let c = Config::parse(Path::new("c.yml"), DEFAULT_CONFIG_YML).unwrap();
        assert_eq!(c.supervisor.silence, Duration::from_millis(300));
        assert_eq!(c.supervisor.stuck_after, Duration::from_secs(900));
        assert_eq!(c.supervisor.max_retries, 3);
        assert_eq!(c.logs.max_bytes, 50 * 1024 * 1024);
        assert!(c.merge.enabled);
        assert_eq!(c.merge.max_retries, 3);
        assert_eq!(c.supervisor.dispatch_statuses, ["backlog", "todo"]);
    }

    #[test]
    fn agents_section() {
        let text = r#"
agents:
  mybot:
    command: "mybot --flag"
    ready_pattern: 'mybot>\s*$'
    answers:
      - { pattern: "Continue\\? \\[y/n\\]", reply: "y" }
supervisor:
  silence: 150ms
"#;
        let c = Config::parse(Path::new("c.yml"), text).unwrap();
        let bot = &c.agents["mybot"];
        assert_eq!(bot.command.as_deref(), Some("mybot --flag"));
        assert_eq!(bot.answers[0].reply, "y");
        assert_eq!(c.supervisor.silence, Duration::from_millis(150));
    }

    #[test]
    fn errors_name_file_and_key() {
        let err = Config::parse(Path::new(".batty/config.yml"), "supervisr: {}\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with(".batty/config.yml:1: "), "{msg}");
        assert!(msg.contains("supervisr"), "{msg}");
        assert!(!msg.contains('\n'));

        let err = Config::parse(
            Path::new("c.yml"),
            "agents:\n  bot:\n    ready_pattern: '('\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("agents.bot.ready_pattern"),
            "{err}"
        );
    }

    #[test]
    fn library_advice_never_reaches_the_user() {
        let text = "supervisor:\n  silence: 1s\nmerge:\n  gate: x\nsupervisor:\n  max_retries: 2\n";
        let err = Config::parse(Path::new(".batty/config.yml"), text).unwrap_err();
        assert_eq!(
            err.to_string(),
            ".batty/config.yml:5: duplicate key `supervisor`"
        );
        let err = Config::parse(Path::new("c.yml"), "a: 1\n---\nb: 2\n").unwrap_err();
        assert!(!err.to_string().contains("from_str"), "{err}");
        assert_eq!(
            without_api_advice("duplicate mapping key: k, set DuplicateKeyPolicy in Options"),
            "duplicate mapping key: k"
        );
    }
}
