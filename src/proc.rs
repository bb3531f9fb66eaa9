//! The one way batty runs another program (git, tmux, gates): a builder that logs the call and
//! puts the command line, exit status and stderr into any error.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether the programs this process runs get a process group of their own.
static OWN_GROUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on every program [`Cmd::run`] starts gets its own process group, so that the end
/// of this process (its tmux pane killed by `batty stop`, Ctrl-C in its pane, a hangup) does
/// not kill a git command halfway through its work: one killed mid-write leaves a lock file
/// or a half-updated checkout behind. For the supervisor, whose git steps are short.
pub fn children_in_own_group() {
    OWN_GROUP.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// A subprocess that failed to start or exited unsuccessfully.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("could not run `{cmdline}`: {source}")]
    Spawn {
        cmdline: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmdline}` failed ({status}){}", stderr_suffix(.stderr))]
    Failed {
        cmdline: String,
        status: String,
        code: Option<i32>,
        stdout: String,
        stderr: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let line = stderr.trim();
    if line.is_empty() {
        String::new()
    } else {
        // Keep the message on one line: the last lines of stderr carry the reason.
        let tail: Vec<&str> = line.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().map(str::trim).collect();
        format!(": {}", tail.join(" / "))
    }
}

impl ProcError {
    /// The program's stderr, or empty when it never ran.
    pub fn stderr(&self) -> &str {
        match self {
            ProcError::Spawn { .. } => "",
            ProcError::Failed { stderr, .. } => stderr,
        }
    }

    /// The exit code, when the program ran and exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            ProcError::Spawn { .. } => None,
            ProcError::Failed { code, .. } => *code,
        }
    }

    /// True when the program itself could not be found.
    pub fn not_found(&self) -> bool {
        matches!(self, ProcError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// A command line under construction.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    envs: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            envs: Vec::new(),
            stdin: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.envs
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.envs.push((key.as_ref().to_owned(), None));
        self
    }

    /// Bytes written to the program's stdin (otherwise stdin is /dev/null).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// The command line as a person would type it, for messages.
    pub fn cmdline(&self) -> String {
        let mut out = shell_word(&self.program.to_string_lossy());
        for arg in &self.args {
            out.push(' ');
            out.push_str(&shell_word(&arg.to_string_lossy()));
        }
        out
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        for (key, value) in &self.envs {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// Runs to completion; a non-zero exit is an error carrying stderr.
    pub fn run(&self) -> Result<Output, ProcError> {
        let cmdline = self.cmdline();
        tracing::debug!(cmd = %cmdline, cwd = ?self.cwd, "run");
        let mut cmd = self.command();
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if OWN_GROUP.load(std::sync::atomic::Ordering::Relaxed) {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
        }
        let spawn_err = |source| ProcError::Spawn {
            cmdline: cmdline.clone(),
            source,
        };
        let mut child = cmd.spawn().map_err(spawn_err)?;
        if let Some(bytes) = &self.stdin {
            let mut pipe = child
                .stdin
                .take()
                .expect("stdin was configured as piped above");
            // A program that exits without reading stdin closes the pipe; its exit status says
            // what went wrong, so a write error here is not the interesting one.
            let _ = pipe.write_all(bytes);
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            Ok(Output { stdout, stderr })
        } else {
            Err(ProcError::Failed {
                cmdline,
                status: out.status.to_string(),
                code: out.status.code(),
                stdout,
                stderr,
            })
        }
    }

    /// Runs and returns stdout with the trailing newline removed.
    pub fn read(&self) -> Result<String, ProcError> {
        let out = self.run()?;
        Ok(out.stdout.trim_end_matches(['\n', '\r']).to_owned())
    }

    /// Runs and reports only whether it exited 0 (for questions like "does this ref exist").
    /// Failing to start at all is still an error.
    pub fn succeeds(&self) -> Result<bool, ProcError> {
        match self.run() {
            Ok(_) => Ok(true),
            Err(ProcError::Failed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A std `Command` with this builder's settings, for callers that need to stream or
    /// inherit stdio (attach, gates with a time limit).
    pub fn to_command(&self) -> Command {
        tracing::debug!(cmd = %self.cmdline(), cwd = ?self.cwd, "spawn");
        self.command()
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cmdline())
    }
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_word_quotes_only_when_needed() {
        assert_eq!(shell_word("abc-1.2"), "abc-1.2");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn failure_carries_cmdline_and_stderr() {
        let err = Cmd::new("sh")
            .args(["-c", "echo oops >&2; exit 3"])
            .run()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`sh -c 'echo oops >&2; exit 3'`"), "{text}");
        assert!(text.ends_with(": oops"), "{text}");
        assert_eq!(err.code(), Some(3));
    }

    #[test]
    fn stdin_reaches_program() {
        let out = Cmd::new("cat").stdin("a;b C-c").read().unwrap();
        assert_eq!(out, "a;b C-c");
    }

    #[test]
    fn missing_program_is_reported() {
        let err = Cmd::new("batty-no-such-program").run().unwrap_err();
        assert!(err.not_found());
    }
}
