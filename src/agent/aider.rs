//! Aider (read from the screens of 0.86.2, `tests/fixtures/screens/aider/`).
//!
//! - Ready: below its last `─` rule, optionally the files in the chat, then the prompt:
//!   `> ` (or `<edit format>[ multi]> `), one `> ` line per line typed or pasted.
//! - Busy: `Waiting for openai/gpt-4o` with its spinner; before it shows, a message sent
//!   looks as typed in a plain capture, but a styled one has the prompt's colour reset left
//!   at the cursor below the input.
//! - Question: a last line ending in `(Y)es/(N)o... [Yes]: ` with nothing typed after it.
//! - Routine: "what's new" no, `.aider*` into `.gitignore` no (a `.gitignore` aider writes
//!   stays untracked in the worktree and is in most target trees), add a file to the chat
//!   or create one yes, open a URL no. Unattended: run the shell commands the model proposes
//!   yes, add their output to the chat no.

use regex::Regex;

use super::adapter::{Adapter, Answer, Composer, Parts, Reply, Screen};
use super::screen::{Capture, is_rule};

pub fn adapter() -> Adapter {
    Adapter {
        kind: "aider".into(),
        command: String::new(),
        program: String::new(),
        interrupt: vec!["C-c".into()],
        answers: vec![
            answer(r"Would you like to see what's new in this version\?", "n"),
            answer(r"Add \S+ to \.gitignore", "n"),
            answer(r"^(?:.*\n)*Add file to the chat\?", "y"),
            answer(r"^(?:.*\n)*Create new file\?", "y"),
            answer(r"Open (?:URL|documentation url) for more info", "n"),
        ],
        unattended: false,
        // prompt_toolkit reads its input in order: an Enter is late, never lost.
        enter_retries: false,
        parts: Parts {
            base: "aider".into(),
            always: Vec::new(),
            // Each removes a question that would wait for a person (update, release notes,
            // analytics opt-in); `--yes-always` is not used: it declines shell commands.
            unattended_args: vec![
                "--no-check-update".into(),
                "--no-show-release-notes".into(),
                "--analytics-disable".into(),
            ],
            unattended_env: Vec::new(),
            unattended_answers: vec![
                answer(r"Run shell commands?\?", "y"),
                answer(r"Add command output to the chat\?", "n"),
            ],
        },
        builtin_answers: 5,
        read: Some(read),
        patterns: Default::default(),
    }
}

fn answer(pattern: &str, reply: &str) -> Answer {
    Answer {
        pattern: Regex::new(pattern).expect("built-in answer patterns are tested to compile"),
        reply: Reply::Text(reply.into()),
    }
}

/// How far below the last input line a submitted prompt leaves its cursor (seen: 2).
const SUBMITTED_GAP: usize = 3;

/// `... (Y)es/(N)o [Yes]:` (its questions), `... (Y/n)` (its crash report's).
fn is_question(line: &str) -> bool {
    let re =
        Regex::new(r"\(Y\)es/\(N\)o.*\[(?:Yes|No)\]:$|\((?:Y/n|y/N)\)$").expect("a tested pattern");
    re.is_match(line)
}

/// `> `, `diff> `, `architect multi> ` and what follows: the prefix's length.
fn prompt_len(line: &str) -> Option<usize> {
    let gt = line.find('>')?;
    let head = &line[..gt];
    let ok = head
        .split(' ')
        .all(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && (head.is_empty() || !head.ends_with(' '));
    ok.then(|| {
        gt + line[gt + 1..]
            .chars()
            .next()
            .filter(|c| *c == ' ')
            .map_or(1, |_| 2)
    })
}

fn read(c: &Capture) -> Screen {
    let n = c.lines.len();
    let last = &c.lines[n - 1];
    if is_question(last) {
        // The question with what it is about: the lines since the last blank one.
        let start = (n.saturating_sub(6)..n - 1)
            .rev()
            .find(|&i| c.lines[i].trim().is_empty() || is_rule(&c.lines[i]))
            .map_or(n.saturating_sub(6), |i| i + 1);
        return Screen::Question(c.text(start..n));
    }
    if (n.saturating_sub(3)..n).any(|i| c.lines[i].contains("Waiting for ")) {
        return Screen::Busy;
    }
    let rule = c.last_index(n, is_rule);
    let from = rule.map_or(n - 1, |r| r + 1);
    // The prompt lines end the screen; files in the chat may stand above them.
    let Some(first) = (from..n).find(|&i| prompt_len(&c.lines[i]).is_some()) else {
        return Screen::Unknown;
    };
    // A message just submitted stays on screen exactly as typed until output starts; only
    // the cursor, gone below it, tells the two apart.
    if c.cursor_row.is_some_and(|row| !(first..n).contains(&row)) {
        return Screen::Busy;
    }
    let mut typed = Vec::new();
    for line in &c.lines[first..n] {
        match prompt_len(line) {
            Some(p) => typed.push(&line[p.min(line.len())..]),
            None => return Screen::Unknown,
        }
    }
    let text = typed.join("\n");
    // Enter pressed: the prompt stops drawing and leaves its colour reset at the cursor, one
    // blank line below the input, where the spinner comes next. Until then the message looks
    // typed; an Enter "retried" now would wait in the terminal and answer aider's next
    // question ("Run shell command? [Yes]") with its default.
    let below = n - 1;
    if !text.trim().is_empty()
        && c.trailing_reset
            .is_some_and(|r| r > below && r <= below + SUBMITTED_GAP)
    {
        return Screen::Busy;
    }
    Screen::Ready {
        composer: if text.trim().is_empty() {
            Composer::Empty
        } else {
            Composer::Text(text)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::screen_fixtures::{Expect, check_all, load};

    #[test]
    fn every_fixture_is_read_as_captured() {
        use Expect::*;
        check_all(
            &adapter(),
            "aider",
            &[
                (
                    "add-output-to-chat",
                    Asks("Add command output to the chat?"),
                ),
                // Until its output starts, a submitted message looks exactly like one typed.
                (
                    "busy-just-submitted",
                    Typed(
                        "Task #14: Add a file\nThe body line one.\n\nBoard: /tmp/x/repo/.batty/kanban/v1\nWhen you are done, commit your work on the current branch, then run `batty task done 14`.",
                    ),
                ),
                ("busy-just-submitted-short", Typed("hello there")),
                ("busy-thinking", IsBusy),
                (
                    "create-new-file",
                    Asks("work/task-15.txt\nCreate new file?"),
                ),
                ("gitignore", Asks("Add .aider* to .gitignore")),
                ("idle-after-task", Empty),
                ("idle-first-start", Empty),
                ("idle-typed", Typed("hello there")),
                (
                    "pasted-before-enter",
                    Typed(
                        "Task #14: Add a file\nThe body line one.\n\nBoard: /tmp/x/repo/.batty/kanban/v1\nWhen you are done, commit your work on the current branch, then run `batty task done 14`.",
                    ),
                ),
                (
                    "run-shell-command",
                    Asks("batty task done 15\nRun shell command?"),
                ),
                ("whats-new", Asks("what's new")),
            ],
        );
    }

    #[test]
    fn a_submitted_message_is_told_from_a_typed_one_by_the_cursor() {
        let a = adapter();
        for name in ["busy-just-submitted", "pasted-before-enter"] {
            let screen = load("aider", name);
            let last = Capture::parse(&screen).lines.len() - 1;
            assert!(matches!(
                a.classify_at(&screen, Some(last)),
                Screen::Ready {
                    composer: Composer::Text(_)
                }
            ));
            assert_eq!(a.classify_at(&screen, Some(last + 1)), Screen::Busy);
            assert_eq!(a.classify_at(&screen, Some(0)), Screen::Busy);
        }
        let idle = load("aider", "idle-after-task");
        let last = Capture::parse(&idle).lines.len() - 1;
        assert!(matches!(
            a.classify_at(&idle, Some(last)),
            Screen::Ready {
                composer: Composer::Empty
            }
        ));
    }

    fn answer_to(a: &Adapter, name: &str) -> Option<Reply> {
        match a.classify(&load("aider", name)) {
            Screen::Question(q) => a.answer_for(&q).cloned(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn routine_answers_and_the_unattended_ones() {
        let text = |t: &str| Some(Reply::Text(t.into()));
        let a = adapter();
        assert_eq!(answer_to(&a, "whats-new"), text("n"));
        assert_eq!(answer_to(&a, "gitignore"), text("n"));
        assert_eq!(answer_to(&a, "create-new-file"), text("y"));
        assert_eq!(answer_to(&a, "run-shell-command"), None, "escalated");
        assert_eq!(answer_to(&a, "add-output-to-chat"), None);
        let a = adapter().with_unattended();
        assert_eq!(answer_to(&a, "run-shell-command"), text("y"));
        assert_eq!(answer_to(&a, "add-output-to-chat"), text("n"));
        assert_eq!(answer_to(&a, "gitignore"), text("n"));
    }

    #[test]
    fn answered_questions_and_prompts_of_other_modes() {
        let a = adapter();
        assert_eq!(
            a.classify("Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: y\n"),
            Screen::Unknown
        );
        for (screen, typed) in [("architect multi> x", "x"), ("diff>", ""), ("ask> ", "")] {
            let want = if typed.is_empty() {
                Composer::Empty
            } else {
                Composer::Text(typed.into())
            };
            assert_eq!(
                a.classify(screen),
                Screen::Ready { composer: want },
                "{screen}"
            );
        }
        assert_eq!(a.classify("some output: > quoted"), Screen::Unknown);
        // Seen when aider crashed at start (two aiders writing .git/config at once).
        let crash = "```\nPlease consider reporting this bug to help improve aider!\n\
                     Open a GitHub Issue pre-filled with the above error in your browser? (Y/n)";
        let Screen::Question(q) = a.classify(crash) else {
            panic!("a question")
        };
        assert!(q.ends_with("in your browser? (Y/n)"), "{q}");
        assert_eq!(a.answer_for(&q), None, "a crash is for a person");
    }

    #[test]
    fn styled_and_plain_captures_agree() {
        use crate::agent::screen_fixtures::Expect::IsBusy;
        // Sent, before the spinner: typed in a plain capture, taken in a styled one.
        crate::agent::screen_fixtures::styled_agrees(
            &adapter(),
            "aider",
            &[
                ("busy-just-submitted", IsBusy),
                ("busy-just-submitted-short", IsBusy),
            ],
        );
    }
}
