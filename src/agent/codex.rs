//! OpenAI Codex CLI (read from the screens of 0.171.0, `tests/fixtures/screens/codex/`).
//!
//! - Ready: the composer line `› ` with the status line under it (`gpt-5 default ·
//!   /path/to/worktree`). About 0.5 s after start Codex draws the composer over its logo with
//!   only `? for shortcuts` under it, before it takes input and before its trust screen: that
//!   splash is not ready. An empty composer shows a dimmed placeholder (`Ask Codex to do
//!   anything`, `Ask a follow-up question`).
//! - Busy: `• Working (7s • esc to interrupt)`.
//! - Question: a menu with `›` on the focused numbered choice and a hint line (`Press enter to
//!   confirm or esc to cancel`, `enter continue · esc back`): approvals, "Trust this folder?".
//! - Routine: trusting the worktree.
//!
//! Always added: `--no-daemon` (the shared app-server daemon ran every agent's commands with
//! the environment of the agent that started it, and outlives `batty stop`) and
//! `-c allow_login_shell=false` (a login shell resets PATH from /etc/profile, losing `batty`).

use regex::Regex;

use super::adapter::{Adapter, Answer, Composer, Parts, Reply, Screen};
use super::screen::Capture;

/// Placeholders Codex 0.171 draws in an empty composer (dimmed; known here for plain captures).
const PLACEHOLDERS: [&str; 2] = ["Ask Codex to do anything", "Ask a follow-up question"];

pub fn adapter() -> Adapter {
    Adapter {
        kind: "codex".into(),
        command: String::new(),
        program: String::new(),
        interrupt: vec!["Escape".into()],
        answers: vec![
            answer(
                r"Trust this folder\?(?s:.*)\n\s*› 1\. Trust and continue",
                &["Enter"],
            ),
            answer(
                r"Trust this folder\?(?s:.*)\n\s*1\. Trust and continue\n\s*› 2\.",
                &["Up", "Enter"],
            ),
        ],
        unattended: false,
        enter_retries: true,
        parts: Parts {
            base: "codex".into(),
            always: vec![
                "--no-daemon".into(),
                "-c".into(),
                "allow_login_shell=false".into(),
            ],
            unattended_args: vec!["--dangerously-bypass-approvals-and-sandbox".into()],
            unattended_env: Vec::new(),
            unattended_answers: Vec::new(),
        },
        builtin_answers: 2,
        read: Some(read),
        patterns: Default::default(),
    }
}

fn answer(pattern: &str, keys: &[&str]) -> Answer {
    Answer {
        pattern: Regex::new(pattern).expect("built-in answer patterns are tested to compile"),
        reply: Reply::keys(keys),
    }
}

fn is_hint(line: &str) -> bool {
    let t = line.trim().to_lowercase();
    t.starts_with("press enter to") || t.starts_with("enter continue") || t.starts_with("enter to ")
}

fn is_focused_choice(line: &str) -> bool {
    let t = line.trim_start();
    t.strip_prefix("› ").is_some_and(|r| {
        r.split('.')
            .next()
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    })
}

/// `gpt-5 default · /tmp/repo`: the status line under a composer that takes input.
fn is_status(line: &str) -> bool {
    line.starts_with("  ") && (line.contains(" · /") || line.contains(" · ~"))
}

fn read(c: &Capture) -> Screen {
    let n = c.lines.len();
    if let Some(hint) = c.last_index(8, is_hint)
        && let Some(focus) = (0..hint).rev().find(|&i| is_focused_choice(&c.lines[i]))
    {
        // The dialog is the block above its choices: gaps of up to two blank lines inside it,
        // and above it more blank lines or the logo (braille art).
        let mut start = focus;
        let mut i = focus;
        while i > 0 {
            i -= 1;
            let line = &c.lines[i];
            if line.contains('⣿')
                || (focus - i > 3 && (i..i + 3).all(|j| c.lines[j].trim().is_empty()))
            {
                break;
            }
            if !line.trim().is_empty() {
                start = i;
            }
        }
        return Screen::Question(c.text(start..hint + 1));
    }
    if (n.saturating_sub(12)..n).any(|i| {
        let t = c.lines[i].trim_start();
        c.lines[i].contains("esc to interrupt")
            || t.starts_with("• Working")
            || t.starts_with("◦ Working")
    }) {
        return Screen::Busy;
    }
    let Some(top) = c.last_index(12, |l| l == "›" || l.starts_with("› ")) else {
        return Screen::Unknown;
    };
    // Its text (blank lines included) runs to the status line.
    let Some(status) = (top + 1..n).find(|&i| is_status(&c.lines[i])) else {
        return Screen::Unknown;
    };
    let mut end = status;
    while end > top + 1 && c.lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    let mut lines = Vec::new();
    let mut all_dim = true;
    for i in top..end {
        let line = &c.lines[i];
        let skip = if i == top { '›'.len_utf8() } else { 0 };
        let text = &line[skip..];
        let lead = text.len() - text.trim_start().len();
        if !text.trim().is_empty() && !c.all_dim(i, skip + lead..line.len()) {
            all_dim = false;
        }
        lines.push(if i == top {
            text.trim_start()
        } else {
            text.strip_prefix("  ").unwrap_or(text)
        });
    }
    let text = lines.join("\n");
    let placeholder = if c.styled {
        all_dim
    } else {
        PLACEHOLDERS.contains(&text.as_str())
    };
    let composer = if text.trim().is_empty() || placeholder {
        Composer::Empty
    } else {
        Composer::Text(text)
    };
    Screen::Ready { composer }
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
            "codex",
            &[
                (
                    "approval-escalated",
                    Asks("Would you like to run the following command?"),
                ),
                // 0.3 s after Enter: the composer has taken the message, no marker yet.
                ("busy-just-submitted", Empty),
                ("busy-long-with-typed-text", IsBusy),
                ("busy-thinking", IsBusy),
                ("busy-with-typed-text", IsBusy),
                ("idle-after-sandboxed-task", Empty),
                ("idle-after-task", Empty),
                ("idle-after-task-typed", Typed("more")),
                ("idle-empty", Empty),
                ("idle-typed", Typed("hello there")),
                (
                    "pasted-before-enter",
                    Typed(
                        "Task #9: Add a file\nThe body line one.\n\nBoard: /tmp/x/repo/.batty/kanban/v1\nWhen you are done, commit your work on the current branch, then run `batty task done 9`.",
                    ),
                ),
                ("splash-before-trust", IsUnknown),
                ("starting-warning", IsUnknown),
                ("trust-folder", Asks("Trust this folder?")),
            ],
        );
    }

    fn question(name: &str) -> String {
        match adapter().classify(&load("codex", name)) {
            Screen::Question(q) => q,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn trust_is_answered_approvals_are_not() {
        let a = adapter();
        let q = question("trust-folder");
        assert!(q.starts_with("  Folder access"), "{q}");
        assert_eq!(a.answer_for(&q), Some(&Reply::keys(&["Enter"])));
        let no = q
            .replace("› 1. Trust", "  1. Trust")
            .replace("  2. Back", "› 2. Back");
        assert_eq!(a.answer_for(&no), Some(&Reply::keys(&["Up", "Enter"])));
        let q = question("approval-escalated");
        assert!(q.contains("$ mkdir -p work"), "{q}");
        assert_eq!(a.answer_for(&q), None);
        assert_eq!(a.clone().with_unattended().answer_for(&q), None);
    }

    #[test]
    fn styled_and_plain_captures_agree() {
        crate::agent::screen_fixtures::styled_agrees(&adapter(), "codex", &[]);
    }

    #[test]
    fn an_unknown_placeholder_is_empty_only_when_dim() {
        let a = adapter();
        let screen = |line: &str| format!("{line}\n\n  gpt-5 default · /r\n");
        assert_eq!(
            a.classify(&screen(
                "\u{1b}[1m›\u{1b}[0m \u{1b}[2mExplain this codebase"
            )),
            Screen::Ready {
                composer: Composer::Empty
            }
        );
        assert_eq!(
            a.classify(&screen("› Explain this codebase")),
            Screen::Ready {
                composer: Composer::Text("Explain this codebase".into())
            }
        );
    }
}
