//! An adapter: how to start one kind of agent and how to read its screen (ready for input,
//! asking a question, or busy), plus its automatic replies to routine questions.

use regex::Regex;

/// How far up the screen a pattern looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The last non-empty line only.
    LastLine,
    /// The last `n` lines (after trailing empty ones are dropped), joined with `\n`.
    Tail(usize),
}

/// A pattern and the part of the screen it is matched against.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub regex: Regex,
    pub scope: Scope,
}

impl Matcher {
    pub fn new(regex: Regex, scope: Scope) -> Matcher {
        Matcher { regex, scope }
    }

    /// Where the match starts in the screen: the text from the start of that line to the end
    /// of the screen, or `None` when it does not match.
    fn find(&self, lines: &[&str]) -> Option<String> {
        match self.scope {
            Scope::LastLine => {
                let last = lines.last()?;
                self.regex.is_match(last).then(|| last.trim().to_owned())
            }
            Scope::Tail(n) => {
                let tail = &lines[lines.len().saturating_sub(n)..];
                let text = tail.join("\n");
                let m = self.regex.find(&text)?;
                let line_start = text[..m.start()].rfind('\n').map_or(0, |i| i + 1);
                Some(text[line_start..].to_owned())
            }
        }
    }
}

/// A reply sent to a question that matches `pattern`. The reply is typed literally and then
/// Enter is pressed; an empty reply is just Enter (takes the highlighted choice of a menu).
#[derive(Debug, Clone)]
pub struct Answer {
    pub pattern: Regex,
    pub reply: String,
}

/// What a captured screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Input is ready: the prompt or composer is drawn and no dialog or menu is on screen.
    Ready { composer: Composer },
    /// Any dialog, menu or question waiting for an answer, whatever its choice markers; the
    /// question as shown, from its first line to the screen's end.
    Question(String),
    /// A busy marker is on screen: the agent is working.
    Busy,
    /// Nothing recognised (starting up, drawing, working without a marker): not ready, not
    /// known busy.
    Unknown,
}

/// What is typed at the prompt but not yet sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Composer {
    Empty,
    Text(String),
    /// The adapter cannot tell.
    Unknown,
}

impl Screen {
    /// Ready with nothing typed (or nothing the adapter can see).
    pub fn is_ready(&self) -> bool {
        matches!(self, Screen::Ready { .. })
    }
}

/// Questions longer than this are cut (they go into logs and the status line).
const MAX_QUESTION: usize = 2000;

/// How to run and read one kind of agent.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// `claude`, `codex`, `aider`, `demo`, or a name from `agents:` in the config.
    pub kind: String,
    /// Shell command that starts the agent in its worktree.
    pub command: String,
    /// The screen shows the agent's input prompt.
    pub ready: Matcher,
    /// The screen shows a question waiting for an answer; checked first.
    pub question: Option<Matcher>,
    /// The screen shows the agent working even though its prompt may be visible; checked
    /// before `ready`.
    pub busy: Option<Matcher>,
    /// Replies to routine questions, adapter defaults first, then the config's; first match
    /// wins.
    pub answers: Vec<Answer>,
    /// The prompt text that starts the input line, when text typed after it is the composer.
    pub prompt: Option<String>,
    /// Keys that interrupt the agent's current work (tmux key names).
    pub interrupt: Vec<String>,
}

impl Adapter {
    /// Classifies a `capture-pane` snapshot: a question first, then busy markers, then the
    /// ready prompt; a screen that shows none of them counts as busy.
    pub fn classify(&self, screen: &str) -> Screen {
        let mut lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        if lines.is_empty() {
            return Screen::Unknown;
        }
        if let Some(q) = self.question.as_ref().and_then(|m| m.find(&lines)) {
            return Screen::Question(tidy_question(&q));
        }
        if self.busy.as_ref().is_some_and(|m| m.find(&lines).is_some()) {
            return Screen::Busy;
        }
        if let Some(line) = self.ready.find(&lines) {
            return Screen::Ready {
                composer: self.composer(&line),
            };
        }
        Screen::Unknown
    }

    /// What the prompt line holds after the prompt, when the adapter knows its prompt.
    fn composer(&self, line: &str) -> Composer {
        let Some(prompt) = &self.prompt else {
            return Composer::Unknown;
        };
        match line.trim_end().strip_prefix(prompt.as_str()) {
            Some(rest) if rest.trim().is_empty() => Composer::Empty,
            Some(rest) => Composer::Text(rest.trim().to_owned()),
            None if line.trim_end() == prompt.trim_end() => Composer::Empty,
            None => Composer::Unknown,
        }
    }

    /// The reply for `question`, if a rule matches it.
    pub fn answer_for(&self, question: &str) -> Option<&str> {
        self.answers
            .iter()
            .find(|a| a.pattern.is_match(question))
            .map(|a| a.reply.as_str())
    }
}

/// Drops blank lines and trailing spaces, and bounds the length.
fn tidy_question(text: &str) -> String {
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

    fn adapter() -> Adapter {
        Adapter {
            kind: "t".into(),
            command: "t".into(),
            ready: Matcher::new(Regex::new(r"^t>\s*$").unwrap(), Scope::LastLine),
            question: Some(Matcher::new(
                Regex::new(r"\[y/n\]\s*$").unwrap(),
                Scope::LastLine,
            )),
            busy: Some(Matcher::new(
                Regex::new("esc to interrupt").unwrap(),
                Scope::Tail(3),
            )),
            answers: vec![
                Answer {
                    pattern: Regex::new(r"^Continue\?").unwrap(),
                    reply: "y".into(),
                },
                Answer {
                    pattern: Regex::new("Continue").unwrap(),
                    reply: "never reached".into(),
                },
            ],
            prompt: Some("t>".into()),
            interrupt: vec!["C-c".into()],
        }
    }

    #[test]
    fn ready_uses_the_last_non_empty_line() {
        let a = adapter();
        assert_eq!(
            a.classify("output\nt>\n\n\n"),
            Screen::Ready {
                composer: Composer::Empty
            }
        );
        assert_eq!(a.classify("t>\nmore output\n"), Screen::Unknown);
        assert_eq!(a.classify(""), Screen::Unknown);
        assert_eq!(a.classify("\n\n"), Screen::Unknown);
    }

    #[test]
    fn questions_come_first_and_carry_their_text() {
        let a = adapter();
        assert_eq!(
            a.classify("work\nContinue? [y/n]   \n\n"),
            Screen::Question("Continue? [y/n]".into())
        );
        // Answered (the reply is echoed after it): no longer a question.
        assert_eq!(a.classify("Continue? [y/n] y\n"), Screen::Unknown);
    }

    #[test]
    fn busy_markers_win_over_a_visible_prompt() {
        let a = adapter();
        assert_eq!(a.classify("working (esc to interrupt)\nt>\n"), Screen::Busy);
        assert_eq!(
            a.classify("working (esc to interrupt)\n1\n2\n3\nt>\n"),
            Screen::Ready {
                composer: Composer::Empty
            },
            "the marker scrolled out of the tail"
        );
    }

    #[test]
    fn tail_question_starts_at_the_matching_line() {
        let mut a = adapter();
        a.question = Some(Matcher::new(
            Regex::new(r"(?s)Do you want to [^\n]*\?.*❯ \d\.").unwrap(),
            Scope::Tail(10),
        ));
        let screen = "old output\n Do you want to proceed?\n\n ❯ 1. Yes\n   2. No\n";
        assert_eq!(
            a.classify(screen),
            Screen::Question(" Do you want to proceed?\n ❯ 1. Yes\n   2. No".into())
        );
    }

    #[test]
    fn first_matching_answer_wins() {
        let a = adapter();
        assert_eq!(a.answer_for("Continue? [y/n]"), Some("y"));
        assert_eq!(a.answer_for("Delete everything? [y/n]"), None);
    }

    #[test]
    fn long_questions_are_cut() {
        let q = tidy_question(&"é".repeat(MAX_QUESTION));
        assert!(q.len() <= MAX_QUESTION + '…'.len_utf8());
        assert!(q.ends_with('…'));
    }
}
