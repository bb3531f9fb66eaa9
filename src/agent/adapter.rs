//! An adapter: how to start one kind of agent (its command, the flags batty always needs and
//! those of its unattended preset), how to read its screen (ready with a composer, a question,
//! busy, or unknown), how to interrupt it, and its replies to routine questions.

use regex::Regex;

use super::screen::Capture;

/// What a captured screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Input is ready: the prompt or composer is drawn and no dialog or menu is on screen.
    Ready { composer: Composer },
    /// Any dialog, menu or question waiting for an answer, whatever its choice markers; the
    /// text as shown.
    Question(String),
    /// A busy marker is on screen (the agent is working).
    Busy,
    /// Nothing recognised (starting up, drawing, an unknown screen): not ready, not known busy.
    Unknown,
}

/// What is typed in the agent's input but not yet sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Composer {
    /// Nothing typed (a dimmed placeholder counts as nothing).
    Empty,
    /// This text is waiting to be sent (a pasted block as the agent shows it, e.g.
    /// `[Pasted text #1 +4 lines]`).
    Text(String),
    /// The adapter cannot tell (a configured `ready_pattern` matched).
    Unknown,
}

/// How an answer is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Typed literally, then Enter; an empty text is Enter alone.
    Text(String),
    /// tmux key names sent as they are (`Down`, `Enter`): how a menu is answered, so a menu
    /// focused on "No" is never answered by a bare Enter.
    Keys(Vec<String>),
}

impl Reply {
    pub fn keys(keys: &[&str]) -> Reply {
        Reply::Keys(keys.iter().map(|k| (*k).to_owned()).collect())
    }

    /// For logs: `"y"` or `keys Down Enter`.
    pub fn describe(&self) -> String {
        match self {
            Reply::Text(t) => format!("{t:?}"),
            Reply::Keys(k) => format!("keys {}", k.join(" ")),
        }
    }
}

/// A reply sent to a question that matches `pattern`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub pattern: Regex,
    pub reply: Reply,
}

/// How a built-in adapter reads a screen.
pub type ReadFn = fn(&Capture) -> Screen;

/// Patterns from the config, tried before (or, for agents defined in the config, instead
/// of) the built-in reading.
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    /// Matched against the last non-empty line: ready, composer unknown.
    pub ready: Option<Regex>,
    /// Matched against the last 30 lines: a question from the matching line on.
    pub question: Option<Regex>,
}

/// How many lines a configured question pattern looks at.
pub const QUESTION_LINES: usize = 30;

/// Questions longer than this are cut (they go into logs and the status line).
const MAX_QUESTION: usize = 2000;

/// How to run and read one kind of agent.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// `claude`, `codex`, `aider`, `demo`, or a name from `agents:` in the config.
    pub kind: String,
    /// The whole shell command that starts the agent in its worktree (see [`Adapter::rebuild`]).
    pub command: String,
    /// The program that command starts, checked on PATH before anything starts.
    pub program: String,
    /// Keys that interrupt the agent's current turn.
    pub interrupt: Vec<String>,
    /// Replies to routine questions, adapter defaults first, then the config's; first match wins.
    pub answers: Vec<Answer>,
    /// Whether the unattended preset is applied.
    pub unattended: bool,
    /// Whether Enter may be pressed again while a pasted task still shows in the composer.
    /// Not for an agent that reads its terminal in order and never loses an Enter, but may
    /// take a while to show it took one: the extra Enter would wait in its input and answer
    /// its next question with the default.
    pub enter_retries: bool,
    pub(super) parts: Parts,
    /// How many of `answers` are the adapter's own (the config's follow).
    pub(super) builtin_answers: usize,
    pub(super) read: Option<ReadFn>,
    pub(super) patterns: Patterns,
}

/// What [`Adapter::command`] is built from.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    /// The built-in command, or the config's `command`, with the config's `args`.
    pub base: String,
    /// Flags batty needs whatever the command is (appended).
    pub always: Vec<String>,
    /// The unattended preset: flags appended, variables exported, answers added.
    pub unattended_args: Vec<String>,
    pub unattended_env: Vec<(String, String)>,
    pub unattended_answers: Vec<Answer>,
}

impl Adapter {
    /// Classifies a `capture-pane` snapshot, plain or with attributes (`-e`): configured
    /// patterns first, then the adapter's own reading.
    pub fn classify(&self, screen: &str) -> Screen {
        self.classify_at(screen, None)
    }

    /// [`Adapter::classify`] knowing the cursor's row: where the agent's input would go.
    pub fn classify_at(&self, screen: &str, cursor_row: Option<usize>) -> Screen {
        let mut capture = Capture::parse(screen);
        capture.cursor_row = cursor_row;
        if capture.lines.is_empty() {
            return Screen::Unknown;
        }
        if let Some(q) = &self.patterns.question {
            let from = capture.lines.len().saturating_sub(QUESTION_LINES);
            let tail = capture.lines[from..].join("\n");
            if let Some(m) = q.find(&tail) {
                let start = tail[..m.start()].rfind('\n').map_or(0, |i| i + 1);
                return Screen::Question(tidy_question(&tail[start..]));
            }
        }
        if let Some(r) = &self.patterns.ready
            && capture.lines.last().is_some_and(|l| r.is_match(l))
        {
            return Screen::Ready {
                composer: Composer::Unknown,
            };
        }
        match self.read {
            Some(read) => match read(&capture) {
                Screen::Question(q) => Screen::Question(tidy_question(&q)),
                other => other,
            },
            None => Screen::Unknown,
        }
    }

    /// The reply for `question`, if a rule matches it.
    pub fn answer_for(&self, question: &str) -> Option<&Reply> {
        self.answers
            .iter()
            .find(|a| a.pattern.is_match(question))
            .map(|a| &a.reply)
    }

    /// This adapter with its unattended preset applied (its flags, variables and answers).
    pub fn with_unattended(mut self) -> Adapter {
        if !self.unattended {
            self.unattended = true;
            let extra = self.parts.unattended_answers.clone();
            // Before the config's answers: the preset's are what makes it run unattended.
            let rest = self
                .answers
                .split_off(self.builtin_answers.min(self.answers.len()));
            self.builtin_answers += extra.len();
            self.answers.extend(extra);
            self.answers.extend(rest);
            self.rebuild();
        }
        self
    }

    /// Recomputes [`Adapter::command`]: `export VAR=value; <base> <always> [<unattended>]`.
    pub(super) fn rebuild(&mut self) {
        let mut command = String::new();
        if self.unattended {
            for (k, v) in &self.parts.unattended_env {
                command.push_str(&format!("export {k}={}; ", crate::proc::shell_word(v)));
            }
        }
        command.push_str(&self.parts.base);
        let mut args = self.parts.always.clone();
        if self.unattended {
            args.extend(self.parts.unattended_args.iter().cloned());
        }
        for arg in &args {
            command.push(' ');
            command.push_str(&crate::proc::shell_word(arg));
        }
        self.command = command;
        self.program = program_of(&self.parts.base);
    }
}

/// The program a shell command starts: its first word after any `VAR=value` assignments and
/// `exec`/`env`, with a single-quoted word unquoted.
pub fn program_of(command: &str) -> String {
    let mut rest = command.trim_start();
    loop {
        let (word, after) = if let Some(quoted) = rest.strip_prefix('\'') {
            match quoted.split_once('\'') {
                Some((w, after)) => (w, after),
                None => (quoted, ""),
            }
        } else {
            rest.split_once(char::is_whitespace).unwrap_or((rest, ""))
        };
        let assignment = word.contains('=') && !word.starts_with('=') && !rest.starts_with('\'');
        if word.is_empty() || !(assignment || word == "exec" || word == "env") {
            return word.trim_matches('"').to_owned();
        }
        rest = after.trim_start();
    }
}

/// Drops blank lines and trailing spaces, and bounds the length.
pub(super) fn tidy_question(text: &str) -> String {
    let mut out: String = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    if out.len() > MAX_QUESTION {
        let mut cut = MAX_QUESTION;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_skips_assignments_and_exec() {
        assert_eq!(program_of("claude --model opus"), "claude");
        assert_eq!(program_of("IS_SANDBOX=1 exec claude"), "claude");
        assert_eq!(program_of("env A=b ./my-wrapper.sh x"), "./my-wrapper.sh");
        assert_eq!(
            program_of("'/opt/batty bin/batty' demo-agent"),
            "/opt/batty bin/batty"
        );
    }

    #[test]
    fn long_questions_are_cut() {
        let q = tidy_question(&"é".repeat(MAX_QUESTION));
        assert!(q.len() <= MAX_QUESTION + '…'.len_utf8());
        assert!(q.ends_with('…'));
    }

    #[test]
    fn replies_describe_themselves() {
        assert_eq!(Reply::Text("y".into()).describe(), "\"y\"");
        assert_eq!(
            Reply::keys(&["Down", "Enter"]).describe(),
            "keys Down Enter"
        );
    }
}
