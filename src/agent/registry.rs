//! The registry of adapters: the built-in ones (Claude Code, Codex, Aider, the demo agent)
//! and [`resolve`], which merges them with `agents:` from the config.

use std::path::Path;

use regex::Regex;

use super::adapter::{Adapter, Answer, Reply};
use crate::config::{AgentConfig, Config};

/// The names of the built-in adapters.
pub const BUILTIN_KINDS: [&str; 4] = ["claude", "codex", "aider", "demo"];

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("unknown agent `{kind}`; known agents: {known}")]
    Unknown { kind: String, known: String },
    #[error("agent `{kind}` has no command: set `agents.{kind}.command` in .batty/config.yml")]
    NoCommand { kind: String },
    #[error("agent `{kind}`: bad {key} `{pattern}`: {reason}")]
    BadPattern {
        kind: String,
        key: &'static str,
        pattern: String,
        reason: String,
    },
}

/// The adapter for `kind`: a built-in one, changed by `agents.<kind>` in `config` if present,
/// or one defined entirely by the config; with its unattended preset when the config asks
/// (`agents.<kind>.unattended: true`). `batty_exe` is how the demo agent is started.
pub fn resolve(kind: &str, config: &Config, batty_exe: &Path) -> Result<Adapter, AgentError> {
    let own = config.agents.get(kind);
    let mut adapter = match (builtin(kind, batty_exe), own) {
        (Some(a), _) => a,
        (None, Some(c)) => {
            let command = c.command.clone().ok_or_else(|| AgentError::NoCommand {
                kind: kind.to_owned(),
            })?;
            super::custom::adapter(kind, &command)
        }
        (None, None) => {
            let mut known: Vec<String> = BUILTIN_KINDS.iter().map(|k| format!("`{k}`")).collect();
            known.extend(config.agents.keys().map(|k| format!("`{k}`")));
            return Err(AgentError::Unknown {
                kind: kind.to_owned(),
                known: known.join(", "),
            });
        }
    };
    if let Some(c) = own {
        apply_config(&mut adapter, c)?;
    }
    adapter.rebuild();
    if own.is_some_and(|c| c.unattended) {
        adapter = adapter.with_unattended();
    }
    Ok(adapter)
}

/// A built-in adapter by name, as it comes (no config).
pub fn builtin(kind: &str, batty_exe: &Path) -> Option<Adapter> {
    let mut adapter = match kind {
        "claude" => super::claude::adapter(),
        "codex" => super::codex::adapter(),
        "aider" => super::aider::adapter(),
        "demo" => super::demo::adapter(batty_exe),
        _ => return None,
    };
    adapter.rebuild();
    Some(adapter)
}

/// Config overrides: command replaced, args appended, patterns set, answers appended.
fn apply_config(adapter: &mut Adapter, c: &AgentConfig) -> Result<(), AgentError> {
    let kind = adapter.kind.clone();
    let compile = |key: &'static str, pattern: &str| {
        Regex::new(pattern).map_err(|e| AgentError::BadPattern {
            kind: kind.clone(),
            key,
            pattern: pattern.to_owned(),
            reason: crate::config::one_line(&e.to_string()),
        })
    };
    if let Some(command) = &c.command {
        adapter.parts.base = command.clone();
    }
    for arg in &c.args {
        adapter.parts.base.push(' ');
        adapter.parts.base.push_str(&crate::proc::shell_word(arg));
    }
    if let Some(p) = &c.ready_pattern {
        adapter.patterns.ready = Some(compile("ready_pattern", p)?);
    }
    if let Some(p) = &c.question_pattern {
        adapter.patterns.question = Some(compile("question_pattern", p)?);
    }
    for rule in &c.answers {
        adapter.answers.push(Answer {
            pattern: compile("answers pattern", &rule.pattern)?,
            reply: Reply::Text(rule.reply.clone()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{Composer, Screen};

    fn get(kind: &str) -> Adapter {
        resolve(kind, &Config::default(), Path::new("/opt/batty bin/batty")).unwrap()
    }

    #[test]
    fn every_builtin_resolves() {
        for kind in BUILTIN_KINDS {
            assert_eq!(get(kind).kind, kind);
        }
        assert_eq!(get("demo").command, "'/opt/batty bin/batty' demo-agent");
        assert_eq!(get("demo").program, "/opt/batty bin/batty");
        assert_eq!(get("claude").command, "claude");
        assert_eq!(
            get("codex").command,
            "codex --no-daemon -c allow_login_shell=false"
        );
        assert_eq!(get("aider").command, "aider");
    }

    #[test]
    fn unknown_kind_lists_the_known_ones() {
        let mut config = Config::default();
        config.agents.insert(
            "mybot".into(),
            AgentConfig {
                command: Some("mybot".into()),
                ..Default::default()
            },
        );
        let err = resolve("cluade", &config, Path::new("batty"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown agent `cluade`; known agents: `claude`, `codex`, `aider`, `demo`, `mybot`"
        );
    }

    #[test]
    fn config_extends_builtins() {
        let text = r#"
agents:
  demo:
    args: ["--delay", "50", "--ask-text", "Go on? [y/n]"]
    answers:
      - { pattern: "^Go on", reply: "y" }
  claude:
    command: "claude --model opus"
    ready_pattern: '^READY$'
"#;
        let config = Config::parse(Path::new("c.yml"), text).unwrap();
        let demo = resolve("demo", &config, Path::new("/b/batty")).unwrap();
        assert_eq!(
            demo.command,
            "/b/batty demo-agent --delay 50 --ask-text 'Go on? [y/n]'"
        );
        // Defaults first, then the config's.
        let y = Reply::Text("y".into());
        assert_eq!(demo.answer_for("Continue? [y/n]"), Some(&y));
        assert_eq!(demo.answer_for("Go on? [y/n]"), Some(&y));
        assert_eq!(demo.answers.len(), 2);

        let claude = resolve("claude", &config, Path::new("b")).unwrap();
        assert_eq!(claude.command, "claude --model opus");
        assert_eq!(
            claude.classify("x\nREADY\n"),
            Screen::Ready {
                composer: Composer::Unknown
            }
        );
    }

    #[test]
    fn unattended_presets_add_to_any_command() {
        let text = r#"
agents:
  codex:
    command: "./my-codex.sh --profile work"
    unattended: true
  aider:
    unattended: true
    answers:
      - { pattern: "Continue\\?", reply: "y" }
"#;
        let config = Config::parse(Path::new("c.yml"), text).unwrap();
        let codex = resolve("codex", &config, Path::new("b")).unwrap();
        assert!(codex.unattended);
        assert_eq!(
            codex.command,
            "./my-codex.sh --profile work --no-daemon -c allow_login_shell=false \
             --dangerously-bypass-approvals-and-sandbox"
        );
        assert_eq!(codex.program, "./my-codex.sh");
        let aider = resolve("aider", &config, Path::new("b")).unwrap();
        assert_eq!(
            aider.command,
            "aider --no-check-update --no-show-release-notes --analytics-disable"
        );
        // Built-in answers, then the preset's, then the config's.
        let replies: Vec<String> = aider
            .answers
            .iter()
            .map(|a| a.pattern.to_string())
            .collect();
        assert_eq!(replies.len(), 8, "{replies:?}");
        assert_eq!(replies[5], r"Run shell commands?\?");
        assert_eq!(replies[7], r"Continue\?");
        // Applying it twice changes nothing.
        assert_eq!(aider.clone().with_unattended().command, aider.command);

        let claude = get("claude").with_unattended();
        let root = unsafe { libc::geteuid() } == 0;
        let env = if root { "export IS_SANDBOX=1; " } else { "" };
        assert_eq!(
            claude.command,
            format!(
                "{env}claude --dangerously-skip-permissions --settings \
                 '{{\"skipDangerousModePermissionPrompt\":true}}'"
            )
        );
        assert_eq!(claude.program, "claude");
    }

    #[test]
    fn config_only_agent() {
        let text = r#"
agents:
  mybot:
    command: "mybot --flag"
    ready_pattern: 'mybot>\s*$'
    answers:
      - { pattern: "Continue\\? \\[y/n\\]", reply: "y" }
  nocmd:
    args: ["x"]
"#;
        let config = Config::parse(Path::new("c.yml"), text).unwrap();
        let bot = resolve("mybot", &config, Path::new("b")).unwrap();
        assert_eq!(bot.command, "mybot --flag");
        assert_eq!(
            bot.classify("hi\nmybot>"),
            Screen::Ready {
                composer: Composer::Unknown
            }
        );
        assert_eq!(bot.classify("hi\n$"), Screen::Unknown);
        let Screen::Question(q) = bot.classify("Continue? [y/n]") else {
            panic!("a question")
        };
        assert_eq!(bot.answer_for(&q), Some(&Reply::Text("y".into())));
        assert_eq!(
            resolve("nocmd", &config, Path::new("b"))
                .unwrap_err()
                .to_string(),
            "agent `nocmd` has no command: set `agents.nocmd.command` in .batty/config.yml"
        );
    }
}
