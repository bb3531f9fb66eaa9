//! How commands talk to a person: colour only on a terminal (`NO_COLOR` honoured), and the
//! `-q` switch that keeps progress and notes off stdout.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Set once from `-q` before the command runs.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A progress line or note: printed as it happens, unless `-q`.
pub fn note(line: impl std::fmt::Display) {
    if !quiet() {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Whether to colour a stream: a terminal, `NO_COLOR` unset or empty, `TERM` not `dumb`.
pub fn wants_color(is_terminal: bool, no_color: Option<&str>, term: Option<&str>) -> bool {
    is_terminal && no_color.is_none_or(str::is_empty) && term != Some("dumb")
}

/// ANSI styling for one stream, off unless [`wants_color`] says so.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    on: bool,
}

impl Style {
    fn for_terminal(is_terminal: bool) -> Style {
        let no_color = std::env::var("NO_COLOR").ok();
        let term = std::env::var("TERM").ok();
        Style {
            on: wants_color(is_terminal, no_color.as_deref(), term.as_deref()),
        }
    }

    pub fn stdout() -> Style {
        Style::for_terminal(std::io::stdout().is_terminal())
    }

    pub fn stderr() -> Style {
        Style::for_terminal(std::io::stderr().is_terminal())
    }

    pub fn plain() -> Style {
        Style { on: false }
    }

    pub fn is_on(self) -> bool {
        self.on
    }

    fn paint(self, sgr: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn error(self, text: &str) -> String {
        self.paint("1;31", text)
    }
    pub fn warn(self, text: &str) -> String {
        self.paint("1;33", text)
    }
    pub fn hint(self, text: &str) -> String {
        self.paint("1;36", text)
    }
    pub fn good(self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// An agent or phase state, coloured by what it asks of a person.
    pub fn state(self, state: &str) -> String {
        match state {
            "asking" | "stuck" | "dead" | "supervisor-down" => self.warn(state),
            "busy" | "running" => self.good(state),
            "stopped" | "not-started" | "unknown" => self.dim(state),
            _ => state.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        assert!(wants_color(true, None, Some("xterm")));
        assert!(wants_color(true, Some(""), None));
        assert!(!wants_color(false, None, Some("xterm")));
        assert!(!wants_color(true, Some("1"), Some("xterm")));
        assert!(!wants_color(true, None, Some("dumb")));
        assert_eq!(Style::plain().error("error:"), "error:");
        assert_eq!(Style { on: true }.error("e"), "\x1b[1;31me\x1b[0m");
    }
}
