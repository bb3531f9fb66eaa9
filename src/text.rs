//! Text that came from outside (a task file, an agent's screen, a config) made safe to show: control
//! characters are escaped, so a title holding `\e]2;...\a` cannot retitle a terminal or a tmux
//! pane. What is pasted to an agent stays byte-exact; this is only for what batty prints.

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1) other than `\n` and `\t` written as an
/// escape (`\e`, `\a`, `\u{9b}`, ...). Text without any comes back borrowed.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// As [`escape_control`], and line breaks and tabs escaped too: for one-line places such as an
/// event log line, a table cell or a window name.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, breaks: bool) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && (breaks || (c != '\n' && c != '\t'));
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !bad(c) {
            out.push(c);
            continue;
        }
        match c {
            '\x1b' => out.push_str("\\e"),
            '\x07' => out.push_str("\\a"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push_str(&c.escape_unicode().to_string()),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            escape_control("Fix the login ✓"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(escape_control("two\nlines\tok"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_terminal_sequences() {
        assert_eq!(
            escape_control("\x1b]2;HACKED-TITLE\x07 done"),
            "\\e]2;HACKED-TITLE\\a done"
        );
        assert_eq!(escape_control("a\u{9b}31mb\x7f"), "a\\u{9b}31mb\\u{7f}");
        assert_eq!(escape_control("keep\nbreaks"), "keep\nbreaks");
        assert_eq!(one_line("one\nline\r\tx"), "one\\nline\\r\\tx");
    }
}
