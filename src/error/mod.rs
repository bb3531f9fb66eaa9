//! The command edge's errors. Every domain error decides its own exit code and next step by
//! implementing [`Diagnose`]; commands return [`Error`], which `?` builds from any such error,
//! and [`report`] prints it as one `error:` line and its `hint:` lines.
//!
//! A new error type opts in with one impl (see `domain.rs` for examples):
//!
//! ```ignore
//! impl crate::error::Diagnose for MyError {
//!     fn kind(&self) -> Kind { Kind::User }
//!     fn hint(&self) -> Option<String> { None } // optional: the next step
//! }
//! ```
//!
//! A type without the impl does not convert, so `?` on it fails to compile instead of exiting
//! with the wrong code.

mod domain;

pub use domain::install_hint;

use std::fmt;

/// Whose fault an error is, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The user's input or environment (a bad argument or file, a missing program, a busy
    /// lock): exit 1. The message says what is wrong, a hint what to do.
    User,
    /// A bug, or a failure batty did not expect: exit 2.
    Internal,
}

impl Kind {
    pub fn code(self) -> i32 {
        match self {
            Kind::User => 1,
            Kind::Internal => 2,
        }
    }
}

/// What an error needs to be shown to a person: its kind and, where there is one, the next
/// step. `Display` gives the message; `source()` its causes, which [`Error`] joins on one line.
pub trait Diagnose: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> Kind;
    /// The next step, printed as `hint: ...`.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// A command's error: a one-line message naming the thing, the exit kind, and hints.
#[derive(Debug, Clone)]
pub struct Error {
    kind: Kind,
    message: String,
    hints: Vec<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of the user's input or environment (exit 1).
    pub fn user(message: impl Into<String>) -> Error {
        Error {
            kind: Kind::User,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    /// An error batty did not expect (exit 2).
    pub fn internal(message: impl Into<String>) -> Error {
        Error {
            kind: Kind::Internal,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    /// Adds a `hint:` line naming the next step.
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hints.push(hint.into());
        self
    }

    /// Puts `what` in front of the message (`what: message`), keeping kind and hints.
    pub fn context(mut self, what: impl fmt::Display) -> Error {
        self.message = format!("{what}: {}", self.message);
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn code(&self) -> i32 {
        self.kind.code()
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hints(&self) -> &[String] {
        &self.hints
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// So an [`Error`] can travel inside an `anyhow::Error` and come back whole.
impl std::error::Error for Error {}

impl<E: Diagnose> From<E> for Error {
    fn from(err: E) -> Error {
        Error {
            kind: err.kind(),
            message: chain_message(&err),
            hints: err.hint().into_iter().collect(),
        }
    }
}

/// Code that still returns `anyhow::Error` keeps working: an [`Error`] inside it keeps its
/// kind and hints; anything else was not classified by its author, so it is internal.
impl From<anyhow::Error> for Error {
    fn from(err: anyhow::Error) -> Error {
        let inner = err.chain().find_map(|c| c.downcast_ref::<Error>()).cloned();
        let message = chain_message(err.as_ref());
        match inner {
            Some(inner) => Error { message, ..inner },
            None => Error::internal(message),
        }
    }
}

/// `message: cause: cause`, each cause once, folded onto one line with control characters
/// escaped (library and program messages can carry snippets and escape codes).
fn chain_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    crate::text::one_line(&fold(&message)).into_owned()
}

/// Multi-line text (snippets, carets) as one line.
fn fold(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A user error (exit 1).
pub fn user(message: impl Into<String>) -> Error {
    Error::user(message)
}

/// A user error with a `hint:` line naming the next step.
pub fn user_hint(message: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::user(message).hint(hint)
}

/// `.context(..)` for any result whose error converts into [`Error`]: the message names what
/// was being done, the kind and hints of the cause are kept.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }

    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

/// Prints `error: ...` and any `hint:` lines on stderr; returns the exit code.
pub fn report(err: &Error) -> i32 {
    let style = crate::commands::ui::Style::stderr();
    eprintln!("{} {}", style.error("error:"), err.message);
    for hint in &err.hints {
        eprintln!("{} {}", style.hint("hint:"), crate::text::one_line(hint));
    }
    err.code()
}

/// Logs go to stderr. `-q`/`-v` choose the level when given; otherwise `BATTY_LOG` (an
/// `EnvFilter` such as `debug` or `batty=trace`); by default warnings only.
pub fn init_tracing(verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-1 => Some("error"),
        0 => None,
        1 => Some("info"),
        2 => Some("debug"),
        _ => Some("trace"),
    };
    let filter = match level {
        Some(level) => tracing_subscriber::EnvFilter::new(level),
        None => tracing_subscriber::EnvFilter::try_from_env("BATTY_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// A closed pipe (`batty task list | head`) ends the process quietly, as for other Unix tools.
pub fn restore_sigpipe() {
    // SAFETY: setting a signal disposition to its default at startup, before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer `x`")]
    struct Outer {
        #[source]
        inner: std::io::Error,
    }

    impl Diagnose for Outer {
        fn kind(&self) -> Kind {
            Kind::User
        }
        fn hint(&self) -> Option<String> {
            Some("do this".into())
        }
    }

    #[test]
    fn domain_errors_bring_kind_hint_and_causes() {
        let err: Error = Outer {
            inner: std::io::Error::other("line one\n  line two \x1b[1m"),
        }
        .into();
        assert_eq!(err.code(), 1);
        assert_eq!(err.message(), "outer `x`: line one line two \\e[1m");
        assert_eq!(err.hints(), ["do this"]);
    }

    #[test]
    fn context_keeps_kind_and_hints() {
        let r: std::result::Result<(), Outer> = Err(Outer {
            inner: std::io::Error::other("gone"),
        });
        let err = r.context("cannot start `v1`").unwrap_err();
        assert_eq!(err.message(), "cannot start `v1`: outer `x`: gone");
        assert_eq!((err.code(), err.hints().len()), (1, 1));
    }

    #[test]
    fn anyhow_keeps_a_wrapped_error_and_calls_the_rest_internal() {
        let wrapped = anyhow::Error::new(user_hint("bad `x`", "fix it")).context("while y");
        let err = Error::from(wrapped);
        assert_eq!((err.code(), err.message()), (1, "while y: bad `x`"));
        assert_eq!(err.hints(), ["fix it"]);
        let err = Error::from(anyhow::anyhow!("surprise"));
        assert_eq!(err.code(), 2);
    }
}
