//! Agents defined in `.batty/config.yml` (`agents.<name>.command`): read only through their
//! patterns, with defaults that fit a typical line prompt and `[y/n]` questions.

use regex::Regex;

use super::adapter::{Adapter, Parts, Patterns};

/// An agent known only from the config; `command` is its `command`.
pub fn adapter(kind: &str, command: &str) -> Adapter {
    let re = |p: &str| Regex::new(p).expect("built-in patterns are tested to compile");
    Adapter {
        kind: kind.into(),
        command: String::new(),
        program: String::new(),
        interrupt: vec!["C-c".into()],
        answers: Vec::new(),
        unattended: false,
        enter_retries: true,
        parts: Parts {
            base: command.into(),
            ..Parts::default()
        },
        builtin_answers: 0,
        read: None,
        patterns: Patterns {
            // A typical prompt ends in one of these; set `ready_pattern` for anything else.
            ready: Some(re(r"[>$%#❯›:]\s*$")),
            question: Some(re(r"(?i)(?:\[y/n\]|\(y/n\)|\(yes/no\))\s*[:?]?\s*$")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{Composer, Screen};

    #[test]
    fn default_patterns() {
        let mut a = adapter("bot", "bot --x");
        a.rebuild();
        assert_eq!(a.command, "bot --x");
        assert_eq!(a.program, "bot");
        assert_eq!(
            a.classify("hi\nbot> "),
            Screen::Ready {
                composer: Composer::Unknown
            }
        );
        assert_eq!(a.classify("working"), Screen::Unknown);
        assert_eq!(
            a.classify("Go on? [y/n]"),
            Screen::Question("Go on? [y/n]".into())
        );
    }
}
