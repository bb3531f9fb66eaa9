//! The command edge's error handling: one-line messages with hints, exit codes, tracing setup.

use std::fmt;

/// An error caused by the user's input or environment, with an optional next step.
#[derive(Debug)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// A user error as an `anyhow::Error`.
pub fn user(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError {
        message: message.into(),
        hint: None,
    })
}

/// A user error with a `hint:` line naming the next step.
pub fn user_hint(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError {
        message: message.into(),
        hint: Some(hint.into()),
    })
}

/// 1 when the error comes from input or environment (a domain error or a [`UserError`]),
/// 2 otherwise (a bug, or an I/O failure batty did not expect).
pub fn exit_code(err: &anyhow::Error) -> i32 {
    let user = err.chain().any(|cause| {
        cause.is::<UserError>()
            || cause.is::<crate::config::ConfigError>()
            || cause.is::<crate::paths::NameError>()
            || cause.is::<crate::proc::ProcError>()
            || cause.is::<crate::board::BoardError>()
            || cause.is::<crate::tmux::TmuxError>()
            || cause.is::<crate::worktree::WorktreeError>()
            || cause.is::<crate::session::tag::SessionError>()
            || cause.is::<crate::merge::MergeError>()
            || cause.is::<crate::git::GitError>()
    });
    if user { 1 } else { 2 }
}

/// Prints `error: ...` (the whole cause chain on one line) and any hint; returns the exit code.
pub fn report(err: &anyhow::Error) -> i32 {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    let message = crate::config::one_line(&message);
    eprintln!("error: {message}");
    if let Some(hint) = err
        .chain()
        .find_map(|c| c.downcast_ref::<UserError>())
        .and_then(|u| u.hint.as_deref())
    {
        eprintln!("hint: {hint}");
    }
    exit_code(err)
}

/// Logs go to stderr, filtered by `BATTY_LOG` (e.g. `BATTY_LOG=debug`); quiet by default.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATTY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
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
