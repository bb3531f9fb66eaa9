//! Claude Code (read from the screens of 2.1.332, `tests/fixtures/screens/claude/`).
//!
//! - Ready: the composer, a `❯` line between two full-width `─` rules, with the mode line
//!   below. What is typed follows `❯ `; a paste shows as `[Pasted text #1 +4 lines]`.
//! - Busy: the spinner line right above the composer (`✶ Shimmying…`, a glyph, a word and an
//!   ellipsis), or `esc to interrupt` in the mode line. The line that ends a turn
//!   (`✻ Cooked for 8s · done`) has no ellipsis.
//! - Question: any dialog or menu; they end in a hint line (`Enter to confirm · Esc to
//!   cancel`, `Enter to select · ↑/↓ to navigate`, `Esc to cancel · Tab to amend`) and have
//!   no numbers on most choices, with `❯` on the focused one, often "No".
//! - Routine: trusting the worktree ("Quick safety check", focus on `No, exit` by default);
//!   the auto-mode billing notice a gateway brings (`Enter to continue`, its only choice).
//!   Unattended: the bypass-permissions warning, should it show despite the preset's setting.

use regex::Regex;

use super::adapter::{Adapter, Answer, Composer, Parts, Reply, Screen};
use super::screen::{Capture, is_rule};

pub fn adapter() -> Adapter {
    Adapter {
        kind: "claude".into(),
        command: String::new(),
        program: String::new(),
        interrupt: vec!["Escape".into()],
        answers: vec![
            answer(
                r"Is this a project you created or one you trust\?(?s:.*)\n\s*❯ Yes, I trust this folder",
                &["Enter"],
            ),
            answer(
                r"Is this a project you created or one you trust\?(?s:.*)\n\s*❯ No, exit\n\s*Yes, I trust this folder",
                &["Down", "Enter"],
            ),
            // A notice, shown once per HOME at the first auto-mode check through a gateway
            // (any ANTHROPIC_BASE_URL but Anthropic's): its only choice keeps the mode the
            // user runs in. Left alone, it holds the tool call and the task until a person comes.
            answer(
                r"(?s)We're changing auto mode to no longer charge for classifier requests.*Auto mode works for now.*\n\s*Enter to continue",
                &["Enter"],
            ),
        ],
        unattended: false,
        enter_retries: true,
        parts: Parts {
            base: "claude".into(),
            always: Vec::new(),
            unattended_args: vec![
                "--dangerously-skip-permissions".into(),
                // The same key accepting the warning writes to ~/.claude/settings.json; as a
                // flag it keeps the warning off screen without changing the user's settings.
                "--settings".into(),
                r#"{"skipDangerousModePermissionPrompt":true}"#.into(),
            ],
            // Claude Code refuses the bypass as root unless told it runs in a sandbox.
            unattended_env: if is_root() {
                vec![("IS_SANDBOX".into(), "1".into())]
            } else {
                Vec::new()
            },
            unattended_answers: vec![
                answer(
                    r"Bypass Permissions mode(?s:.*)\n\s*❯ Yes, I accept",
                    &["Enter"],
                ),
                answer(
                    r"Bypass Permissions mode(?s:.*)\n\s*❯ No, exit\n\s*Yes, I accept",
                    &["Down", "Enter"],
                ),
            ],
        },
        builtin_answers: 3,
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

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Hint lines that end every dialog and menu.
fn is_hint(line: &str) -> bool {
    let t = line.trim();
    [
        "Enter to confirm",
        "Enter to select",
        "Enter to continue",
        "Esc to cancel",
        "Esc to exit",
    ]
    .iter()
    .any(|h| t.starts_with(h) || t.contains(&format!("· {h}")))
}

fn read(c: &Capture) -> Screen {
    let n = c.lines.len();
    if let Some(hint) = c.last_index(8, is_hint) {
        return Screen::Question(c.text(dialog_start(c, hint)..hint + 1));
    }
    // The composer: the last two rules with a `❯` line right under the first.
    let Some(bottom) = c.last_index(6, is_rule) else {
        return Screen::Unknown;
    };
    let Some(top) = (0..bottom).rev().find(|&i| is_rule(&c.lines[i])) else {
        return Screen::Unknown;
    };
    let first = &c.lines[top + 1];
    if top + 1 >= bottom || !first.starts_with('❯') {
        return Screen::Unknown;
    }
    let busy = c.lines[bottom + 1..n]
        .iter()
        .any(|l| l.contains("esc to interrupt"))
        || (0..top)
            .rev()
            .find(|&i| !c.lines[i].trim().is_empty())
            .is_some_and(|i| is_spinner(&c.lines[i]));
    if busy {
        return Screen::Busy;
    }
    Screen::Ready {
        composer: composer(c, top + 1, bottom),
    }
}

/// The first line of the dialog whose hint line is `hint`. A dialog is drawn under a
/// full-width rule and may hold more rules (a menu's extra choices): walking up the blocks
/// between rules, it starts at the lowest block holding the focused choice (`❯`). A notice
/// has no focus; the transcript above it may (`❯ Task #1` is the message sent): it starts
/// at the last rule. No rule at all: the whole screen.
fn dialog_start(c: &Capture, hint: usize) -> usize {
    let rules: Vec<usize> = (0..hint).filter(|&i| is_rule(&c.lines[i])).collect();
    let Some(&last) = rules.last() else {
        return 0;
    };
    let mut below = hint;
    for &rule in rules.iter().rev() {
        if (rule + 1..below).any(|i| c.lines[i].trim_start().starts_with('❯')) {
            return rule + 1;
        }
        below = rule;
    }
    last + 1
}

/// `✶ Shimmying…`, `· Skedaddling… (0s · ↓ 10 tokens)`.
fn is_spinner(line: &str) -> bool {
    let mut chars = line.chars();
    let glyph = chars.next();
    let rest: String = chars.collect();
    glyph.is_some_and(|g| "·✢✳✶✻✽*+".contains(g))
        && rest.starts_with(' ')
        && rest
            .split_whitespace()
            .next()
            .is_some_and(|w| w.ends_with('…'))
}

/// What the composer lines `from..to` hold: the first after `❯ `, the rest indented by two.
fn composer(c: &Capture, from: usize, to: usize) -> Composer {
    let mut lines = Vec::new();
    let mut all_dim = true;
    for i in from..to {
        let line = &c.lines[i];
        let skip = if i == from {
            line.find('❯').map_or(0, |p| p + '❯'.len_utf8())
        } else {
            0
        };
        let text = &line[skip..];
        let lead = text.len() - text.trim_start().len();
        if !text.trim().is_empty() && !c.all_dim(i, skip + lead..line.len()) {
            all_dim = false;
        }
        // `❯` is followed by a no-break space.
        let text = text.strip_prefix(['\u{a0}', ' ']).unwrap_or(text);
        lines.push(text.trim_end());
    }
    let text = lines.join("\n").trim_end().to_owned();
    let trimmed = text.trim();
    // An idle hint such as `Try "fix lint errors"` is drawn dim: not typed text.
    let placeholder = (c.styled && all_dim) || (!c.styled && is_suggestion(trimmed));
    if trimmed.is_empty() || placeholder {
        Composer::Empty
    } else {
        Composer::Text(text)
    }
}

fn is_suggestion(text: &str) -> bool {
    text.starts_with("Try \"") && text.ends_with('"') && !text.contains('\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::screen_fixtures::{Expect, check_all};

    #[test]
    fn every_fixture_is_read_as_captured() {
        use Expect::*;
        check_all(
            &adapter(),
            "claude",
            &[
                ("api-key", Asks("Do you want to use this API key?")),
                (
                    "ask-user-question",
                    Asks("Which name should the new file have?"),
                ),
                (
                    "auto-mode-classifier-billing",
                    Asks("We're changing auto mode"),
                ),
                ("busy-just-submitted", IsBusy),
                ("busy-thinking", IsBusy),
                ("busy-waiting-for-permission", IsBusy),
                ("busy-with-typed-text", IsBusy),
                (
                    "bypass-warning",
                    Asks("WARNING: Claude Code running in Bypass Permissions mode"),
                ),
                ("first-run-offline-check", IsUnknown),
                ("idle-after-task", Empty),
                ("idle-after-task-typed", Typed("next thing")),
                ("idle-bypass", Empty),
                ("idle-first-start", Empty),
                ("idle-manual-mode", Empty),
                ("idle-typed", Typed("hello there")),
                ("pasted-before-enter", Typed("[Pasted text #1 +4 lines]")),
                ("permission-bash", Asks("Do you want to proceed?")),
                (
                    "permission-bash-after-wait",
                    Asks("Do you want to proceed?"),
                ),
                ("root-bypass-refused", IsUnknown),
                ("trust-folder", Asks("Quick safety check")),
                ("trust-folder-yes-focused", Asks("Quick safety check")),
            ],
        );
    }

    fn question(name: &str) -> String {
        let a = adapter();
        match a.classify(&crate::agent::screen_fixtures::load("claude", name)) {
            Screen::Question(q) => q,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn dialogs_start_at_their_rule() {
        let q = question("trust-folder");
        assert!(q.starts_with(" Accessing workspace:"), "{q}");
        assert!(q.ends_with("Enter to confirm · Esc to cancel"), "{q}");
        let q = question("auto-mode-classifier-billing");
        assert!(q.starts_with("  We're changing auto mode"), "{q}");
        assert!(
            !q.contains("Task #1"),
            "a notice has no focus; the transcript's `❯` is not one: {q}"
        );
        let q = question("ask-user-question");
        assert!(
            q.starts_with(" ☐ File name"),
            "a menu's inner rule is inside it: {q}"
        );
        let q = question("permission-bash");
        assert!(q.starts_with(" Bash command"), "{q}");
        assert!(
            !q.contains("Task #4"),
            "the transcript above is not the question: {q}"
        );
    }

    #[test]
    fn trust_is_answered_by_moving_to_yes() {
        let a = adapter();
        let down = Reply::keys(&["Down", "Enter"]);
        let enter = Reply::keys(&["Enter"]);
        assert_eq!(a.answer_for(&question("trust-folder")), Some(&down));
        assert_eq!(
            a.answer_for(&question("trust-folder-yes-focused")),
            Some(&enter)
        );
        assert_eq!(
            a.answer_for(&question("auto-mode-classifier-billing")),
            Some(&enter),
            "a notice whose only choice is to go on"
        );
        for other in [
            "api-key",
            "permission-bash",
            "ask-user-question",
            "bypass-warning",
        ] {
            assert_eq!(a.answer_for(&question(other)), None, "{other} is escalated");
        }
        let a = adapter().with_unattended();
        assert_eq!(a.answer_for(&question("bypass-warning")), Some(&down));
        assert_eq!(a.answer_for(&question("permission-bash")), None);
    }

    #[test]
    fn styled_and_plain_captures_agree() {
        crate::agent::screen_fixtures::styled_agrees(&adapter(), "claude", &[]);
    }

    #[test]
    fn a_dim_suggestion_is_an_empty_composer() {
        let a = adapter();
        let rule = "─".repeat(40);
        let screen = |line: &str| format!("{rule}\n{line}\n{rule}\n  ? for shortcuts\n");
        assert_eq!(
            a.classify(&screen("❯ \u{1b}[2mTry \"fix the tests\"\u{1b}[22m")),
            Screen::Ready {
                composer: Composer::Empty
            }
        );
        assert_eq!(
            a.classify(&screen("❯ Try \"fix the tests\"")),
            Screen::Ready {
                composer: Composer::Empty
            }
        );
        assert_eq!(
            a.classify(&screen("❯ \u{1b}[1mTry \"fix the tests\"")),
            Screen::Ready {
                composer: Composer::Text("Try \"fix the tests\"".into())
            }
        );
    }
}
