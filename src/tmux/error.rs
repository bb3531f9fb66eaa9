//! What can go wrong talking to tmux, classified from the binary's stderr.

use crate::proc::ProcError;

#[derive(Debug, thiserror::Error)]
pub enum TmuxError {
    #[error("`tmux` is not installed (not found on PATH)")]
    NotInstalled,
    #[error("no tmux server is running on {server}")]
    NoServer { server: String },
    #[error("tmux cannot find {what}")]
    NoSuchTarget { what: String },
    #[error("tmux {found} is too old: batty needs tmux 3.0 or newer")]
    TooOld { found: String },
    #[error("unexpected output from `{cmdline}`: `{output}`")]
    Parse { cmdline: String, output: String },
    #[error("the program in pane {pane} has exited")]
    PaneDead { pane: String },
    #[error(transparent)]
    Proc(ProcError),
}

impl TmuxError {
    /// Sorts a failed tmux call into the cases callers act on.
    pub(crate) fn classify(err: ProcError, server: &str) -> TmuxError {
        if err.not_found() {
            return TmuxError::NotInstalled;
        }
        let stderr = err.stderr().trim();
        if stderr.contains("no server running")
            || (stderr.starts_with("error connecting to") && stderr.contains("No such file"))
        {
            return TmuxError::NoServer {
                server: server.to_owned(),
            };
        }
        for prefix in [
            "can't find session",
            "can't find window",
            "can't find pane",
            "can't find client",
        ] {
            if let Some(rest) = stderr.strip_prefix(prefix) {
                let what = format!("{}{}", &prefix["can't find ".len()..], rest);
                return TmuxError::NoSuchTarget {
                    what: what.lines().next().unwrap_or_default().to_owned(),
                };
            }
        }
        if stderr.contains("session not found") || stderr.contains("window not found") {
            return TmuxError::NoSuchTarget {
                what: stderr.lines().next().unwrap_or_default().to_owned(),
            };
        }
        TmuxError::Proc(err)
    }

    /// True for "the server is not running" and "that session/window/pane is gone", which
    /// callers asking "is it there?" read as "no".
    pub fn is_absent(&self) -> bool {
        matches!(
            self,
            TmuxError::NoServer { .. } | TmuxError::NoSuchTarget { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(stderr: &str) -> ProcError {
        ProcError::Failed {
            cmdline: "tmux x".into(),
            status: "exit status: 1".into(),
            code: Some(1),
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn classifies_common_failures() {
        let e = TmuxError::classify(failed("no server running on /tmp/x\n"), "`-S /tmp/x`");
        assert!(matches!(e, TmuxError::NoServer { .. }), "{e}");
        let e = TmuxError::classify(
            failed("error connecting to /tmp/x (No such file or directory)\n"),
            "s",
        );
        assert!(matches!(e, TmuxError::NoServer { .. }), "{e}");
        let e = TmuxError::classify(failed("can't find pane: %99\n"), "s");
        assert_eq!(e.to_string(), "tmux cannot find pane: %99");
        assert!(e.is_absent());
        let e = TmuxError::classify(failed("unknown command: frob\n"), "s");
        assert!(matches!(e, TmuxError::Proc(_)));
        assert!(!e.is_absent());
    }
}
