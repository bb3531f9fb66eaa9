//! The built-in adapters (Claude Code, Codex CLI, Aider, the demo agent) and [`resolve`], which
//! merges them with `agents:` from the config.
//!
//! The patterns follow each tool's screens as they are drawn today (and shortly before):
//! - Claude Code: input line `>` (or `❯`), boxed in older versions; `esc to interrupt` in the
//!   status line while a turn runs; dialogs such as "Do you want to proceed?" and the folder
//!   trust check list numbered choices with `❯` on the highlighted one.
//! - Codex CLI: composer line starting with `›` (`▌` in older versions); `esc to interrupt` in
//!   "Working (12s • esc to interrupt)"; approvals "Would you like to run the following
//!   command?" and the trust check "Do you trust the contents of this directory?" list numbered
//!   choices with `›` on the highlighted one.
//! - Aider: a plain line prompt, `> ` or `<edit format>[ multi]> `, and questions ending in
//!   `(Y)es/(N)o... [Yes]: `.
//!
//! Default answers are only for routine, safe questions: trusting the agent's own worktree,
//! adding a file to Aider's chat or creating one, keeping Aider's files out of git, and
//! declining to open a browser. Permission to run commands is never auto-approved.

use std::path::Path;

use regex::Regex;

use super::adapter::{Adapter, Answer, Matcher, Scope};
use crate::config::{AgentConfig, Config};

/// The names of the built-in adapters.
pub const BUILTIN_KINDS: [&str; 4] = ["claude", "codex", "aider", "demo"];

/// How many lines dialogs are looked for in.
const DIALOG_LINES: usize = 30;

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
/// or one defined entirely by the config. `batty_exe` is how the demo agent is started.
pub fn resolve(kind: &str, config: &Config, batty_exe: &Path) -> Result<Adapter, AgentError> {
    let base = builtin(kind, batty_exe);
    let own = config.agents.get(kind);
    let mut adapter = match (base, own) {
        (Some(a), _) => a,
        (None, Some(c)) => custom(kind, c)?,
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
    Ok(adapter)
}

/// A built-in adapter by name.
pub fn builtin(kind: &str, batty_exe: &Path) -> Option<Adapter> {
    let adapter = match kind {
        "claude" => Adapter {
            kind: kind.into(),
            command: "claude".into(),
            ready: tail(r"(?m)^\s*(?:│\s*)?[>❯](?:\s|$)", 8),
            question: Some(tail(
                r"(?s)(?:Do you want to [^\n]*\?|Would you like to [^\n]*\?|Do you trust the files in this folder\?|Is this a project you created or one you trust\?).*\n[\s│]*❯\s*\d+\.",
                DIALOG_LINES,
            )),
            busy: Some(tail(r"(?i)esc to interrupt", 12)),
            prompt: None,
            interrupt: vec!["Escape".into()],
            answers: vec![answer(
                r"(?s)(?:Do you trust the files in this folder\?|Is this a project you created or one you trust\?).*\n[\s│]*❯\s*\d+\.\s*Yes, (?:proceed|I trust this folder)",
                "",
            )],
        },
        "codex" => Adapter {
            kind: kind.into(),
            command: "codex".into(),
            ready: tail(r"(?m)^\s*[›▌](?:\s|$)", 8),
            question: Some(tail(
                r"(?s)(?:Do you trust the contents of this directory\?|Would you like to [^\n]*\?|Allow command\?).*\n\s*(?:›\s*\d+\.|.*\[y/n\]|.*Press enter to confirm)",
                DIALOG_LINES,
            )),
            busy: Some(tail(r"(?i)esc to interrupt", 12)),
            prompt: None,
            interrupt: vec!["Escape".into()],
            answers: vec![answer(
                r"(?s)Do you trust the contents of this directory\?.*\n\s*›\s*\d+\.\s*Yes, continue",
                "",
            )],
        },
        "aider" => Adapter {
            kind: kind.into(),
            command: "aider".into(),
            ready: last_line(r"^(?:[\w-]+ )*[\w-]*>\s*$"),
            question: Some(last_line(r"\(Y\)es/\(N\)o.*\[(?:Yes|No)\]:\s*$")),
            busy: None,
            prompt: None,
            interrupt: vec!["C-c".into()],
            answers: vec![
                answer(r"^Add \S+ to \.gitignore", "y"),
                answer(r"^Add file to the chat\?", "y"),
                answer(r"^Create new file\?", "y"),
                answer(r"^Open (?:URL|documentation url) for more info", "n"),
            ],
        },
        "demo" => Adapter {
            kind: kind.into(),
            command: format!(
                "{} demo-agent",
                crate::proc::shell_word(&batty_exe.to_string_lossy())
            ),
            ready: last_line(r"^demo>"),
            question: Some(last_line(r"\[y/n\]\s*$")),
            busy: None,
            prompt: Some("demo>".into()),
            interrupt: vec!["C-c".into()],
            answers: vec![answer(r"^Continue\? \[y/n\]", "y")],
        },
        _ => return None,
    };
    Some(adapter)
}

/// An agent known only from the config.
fn custom(kind: &str, c: &AgentConfig) -> Result<Adapter, AgentError> {
    let command = c.command.clone().ok_or_else(|| AgentError::NoCommand {
        kind: kind.to_owned(),
    })?;
    Ok(Adapter {
        kind: kind.into(),
        command,
        // A typical prompt ends in one of these; set `ready_pattern` for anything else.
        ready: last_line(r"[>$%#❯›:]\s*$"),
        question: Some(last_line(r"(?i)(?:\[y/n\]|\(y/n\)|\(yes/no\))\s*[:?]?\s*$")),
        busy: None,
        answers: Vec::new(),
        prompt: None,
        interrupt: vec!["C-c".into()],
    })
}

/// Config overrides: command replaced, args appended, patterns replaced, answers appended.
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
        adapter.command = command.clone();
    }
    for arg in &c.args {
        adapter.command.push(' ');
        adapter.command.push_str(&crate::proc::shell_word(arg));
    }
    if let Some(p) = &c.ready_pattern {
        adapter.ready = Matcher::new(compile("ready_pattern", p)?, Scope::LastLine);
    }
    if let Some(p) = &c.question_pattern {
        adapter.question = Some(Matcher::new(
            compile("question_pattern", p)?,
            Scope::Tail(DIALOG_LINES),
        ));
    }
    for rule in &c.answers {
        adapter.answers.push(Answer {
            pattern: compile("answers pattern", &rule.pattern)?,
            reply: rule.reply.clone(),
        });
    }
    Ok(())
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in adapter patterns are tested to compile")
}

fn tail(pattern: &str, lines: usize) -> Matcher {
    Matcher::new(re(pattern), Scope::Tail(lines))
}

fn last_line(pattern: &str) -> Matcher {
    Matcher::new(re(pattern), Scope::LastLine)
}

fn answer(pattern: &str, reply: &str) -> Answer {
    Answer {
        pattern: re(pattern),
        reply: reply.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{Composer, Screen};

    fn get(kind: &str) -> Adapter {
        resolve(kind, &Config::default(), Path::new("/opt/batty bin/batty")).unwrap()
    }

    fn question(s: &Screen) -> &str {
        match s {
            Screen::Question(q) => q,
            other => panic!("not a question: {other:?}"),
        }
    }

    #[test]
    fn every_builtin_resolves() {
        for kind in BUILTIN_KINDS {
            let a = get(kind);
            assert_eq!(a.kind, kind);
        }
        assert_eq!(get("demo").command, "'/opt/batty bin/batty' demo-agent");
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
        assert_eq!(demo.answer_for("Continue? [y/n]"), Some("y"));
        assert_eq!(demo.answer_for("Go on? [y/n]"), Some("y"));
        assert_eq!(demo.answers.len(), 2);

        let claude = resolve("claude", &config, Path::new("b")).unwrap();
        assert_eq!(claude.command, "claude --model opus");
        assert_eq!(claude.classify("x\nREADY\n"), Screen::Ready { composer: Composer::Unknown });
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
        assert_eq!(bot.classify("hi\nmybot>"), Screen::Ready { composer: Composer::Unknown });
        assert_eq!(bot.classify("hi\n$"), Screen::Busy);
        let q = bot.classify("Continue? [y/n]");
        assert_eq!(bot.answer_for(question(&q)), Some("y"));
        assert_eq!(
            resolve("nocmd", &config, Path::new("b"))
                .unwrap_err()
                .to_string(),
            "agent `nocmd` has no command: set `agents.nocmd.command` in .batty/config.yml"
        );
    }

    #[test]
    fn demo_screens() {
        let demo = get("demo");
        assert_eq!(
            demo.classify("demo> \n\n"),
            Screen::Ready {
                composer: Composer::Empty
            }
        );
        assert_eq!(
            demo.classify("demo> Task #1: x\nworking on #1\n"),
            Screen::Busy
        );
        let q = demo.classify("working on #1\nContinue? [y/n]\n");
        assert_eq!(question(&q), "Continue? [y/n]");
        assert_eq!(demo.answer_for(question(&q)), Some("y"));
        let q = demo.classify("Delete the repo? [y/n]");
        assert_eq!(demo.answer_for(question(&q)), None);
    }

    #[test]
    fn claude_screens() {
        let claude = get("claude");
        let idle_boxed = "\
╭──────────────────────────────────────╮
│ >                                    │
╰──────────────────────────────────────╯
  ? for shortcuts
";
        assert_eq!(claude.classify(idle_boxed), Screen::Ready { composer: Composer::Unknown });
        let idle_new = "\
● Done: the tests pass.

────────────────────────────────────────
> 
────────────────────────────────────────
  ⏵⏵ accept edits on (shift+tab to cycle)
";
        assert_eq!(claude.classify(idle_new), Screen::Ready { composer: Composer::Unknown });
        let working = "\
✻ Thinking… (12s · ↑ 1.2k tokens · esc to interrupt)

────────────────────────────────────────
> 
────────────────────────────────────────
";
        assert_eq!(claude.classify(working), Screen::Busy);
        let permission = "\
╭──────────────────────────────────────╮
│ Bash command                         │
│   rm -rf target                      │
│ Do you want to proceed?              │
│ ❯ 1. Yes                             │
│   2. No, and tell Claude what to do  │
╰──────────────────────────────────────╯
";
        let q = claude.classify(permission);
        assert!(
            question(&q).starts_with("│ Do you want to proceed?"),
            "{q:?}"
        );
        assert_eq!(claude.answer_for(question(&q)), None, "never auto-approved");

        let trust_old = "\
 Do you trust the files in this folder?

 /home/me/repo/.batty/worktrees/v1/otter

 Claude Code may read, write, or execute files contained in this directory.

 ❯ 1. Yes, proceed
   2. No, exit

   Enter to confirm · Esc to exit
";
        let q = claude.classify(trust_old);
        assert_eq!(claude.answer_for(question(&q)), Some(""));
        let trust_new = "\
 Accessing workspace:

 /home/me/repo

 Quick safety check: Is this a project you created or one you trust? (Like your own code, a
 well-known open source project, or work from your team).

 Claude Code'll be able to read, edit, and execute files here.

 ❯ 1. Yes, I trust this folder
   2. No, exit

 Enter to confirm · Esc to cancel
";
        let q = claude.classify(trust_new);
        assert_eq!(claude.answer_for(question(&q)), Some(""));
        // The highlight on "No": not answered, escalated.
        let trust_no = trust_new
            .replace("❯ 1. Yes", "  1. Yes")
            .replace("  2. No, exit", "❯ 2. No, exit");
        let q = claude.classify(&trust_no);
        assert_eq!(claude.answer_for(question(&q)), None);
    }

    #[test]
    fn codex_screens() {
        let codex = get("codex");
        let idle = "\
› Ask Codex to do anything

  100% context left · ? for shortcuts
";
        assert_eq!(codex.classify(idle), Screen::Ready { composer: Composer::Unknown });
        let working = "\
• Working (12s • esc to interrupt)

› Ask Codex to do anything
";
        assert_eq!(codex.classify(working), Screen::Busy);
        let trust = "\
> You are in /home/me/repo

  Do you trust the contents of this directory? Working with untrusted contents
  comes with higher risk of prompt injection.

› 1. Yes, continue
  2. No, quit

  Press enter to continue
";
        let q = codex.classify(trust);
        assert_eq!(codex.answer_for(question(&q)), Some(""));
        let approval = "\
  Would you like to run the following command?

  Reason: run the tests

  $ cargo test

› 1. Yes, proceed (y)
  2. Yes, and don't ask again for commands that start with `cargo test` (p)
  3. No, and tell Codex what to do differently (esc)

  Press enter to confirm or esc to cancel
";
        let q = codex.classify(approval);
        assert!(question(&q).contains("$ cargo test"), "{q:?}");
        assert_eq!(codex.answer_for(question(&q)), None, "never auto-approved");
    }

    #[test]
    fn aider_screens() {
        let aider = get("aider");
        for prompt in ["> ", ">", "diff> ", "architect multi> ", "ask>"] {
            assert_eq!(
                aider.classify(&format!("out\n{prompt}\n")),
                Screen::Ready {
                    composer: Composer::Unknown
                },
                "{prompt}"
            );
        }
        assert_eq!(aider.classify("> some quoted text\n"), Screen::Busy);
        let q =
            aider.classify("src/app.py\nAdd file to the chat? (Y)es/(N)o/(D)on't ask again [Yes]:");
        assert_eq!(aider.answer_for(question(&q)), Some("y"));
        let q = aider.classify("Add .aider* to .gitignore (recommended)? (Y)es/(N)o [Yes]:");
        assert_eq!(aider.answer_for(question(&q)), Some("y"));
        let q = aider.classify("Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]:");
        assert_eq!(aider.answer_for(question(&q)), None);
        let q = aider.classify("Open URL for more info? (Y)es/(N)o/(D)on't ask again [Yes]:");
        assert_eq!(aider.answer_for(question(&q)), Some("n"));
    }
}
