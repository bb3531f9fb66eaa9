//! How the domain errors of other modules exit and what they suggest. Each impl is the
//! type's own decision, kept here while those modules are being reworked; an owner may move
//! its impl next to its type at any time. Matches end in `_` so a new variant defaults to a
//! user error (its message already names the thing) until its author says otherwise.

use super::{Diagnose, Kind};
use crate::board::BoardError;
use crate::merge::MergeError;
use crate::proc::ProcError;
use crate::supervisor::SuperviseError;
use crate::tmux::TmuxError;
use crate::worktree::WorktreeError;

/// The package hint for a program batty runs.
pub fn install_hint(program: &str) -> String {
    match program {
        "tmux" => "install tmux 3.0 or newer (Debian/Ubuntu: `apt install tmux`, macOS: \
                   `brew install tmux`)"
            .to_owned(),
        "git" => "install git 2.30 or newer (Debian/Ubuntu: `apt install git`, macOS: \
                  `brew install git`)"
            .to_owned(),
        other => format!("install `{other}` or put it on PATH"),
    }
}

impl Diagnose for ProcError {
    // A program that fails is the environment's doing; its stderr is in the message.
    fn kind(&self) -> Kind {
        Kind::User
    }
    fn hint(&self) -> Option<String> {
        match self {
            ProcError::Spawn { cmdline, .. } if self.not_found() => {
                let program = cmdline.split_whitespace().next().unwrap_or(cmdline);
                Some(install_hint(program.trim_matches('\'')))
            }
            _ => None,
        }
    }
}

impl Diagnose for TmuxError {
    fn kind(&self) -> Kind {
        match self {
            TmuxError::Parse { .. } => Kind::Internal,
            _ => Kind::User,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            TmuxError::NotInstalled | TmuxError::TooOld { .. } => Some(install_hint("tmux")),
            TmuxError::Proc(e) => e.hint(),
            _ => None,
        }
    }
}

impl Diagnose for BoardError {
    fn kind(&self) -> Kind {
        Kind::User
    }
    fn hint(&self) -> Option<String> {
        match self {
            BoardError::NoConfig { .. } => {
                Some("create a board with `batty init --phase NAME`".to_owned())
            }
            _ => None,
        }
    }
}

impl Diagnose for WorktreeError {
    fn kind(&self) -> Kind {
        Kind::User
    }
    fn hint(&self) -> Option<String> {
        match self {
            WorktreeError::AtRisk { .. } => {
                Some("commit and merge that work first, or pass `--force` to discard it".to_owned())
            }
            WorktreeError::Git(e) => e.hint(),
            _ => None,
        }
    }
}

impl Diagnose for MergeError {
    fn kind(&self) -> Kind {
        Kind::User
    }
    fn hint(&self) -> Option<String> {
        match self {
            MergeError::NoEntry { .. } => {
                Some("see the queue with `batty merge <phase> --list`".to_owned())
            }
            _ => None,
        }
    }
}

impl Diagnose for crate::git::GitError {
    // git failing is the environment's doing (a broken repository, an old git); its
    // command line and stderr are in the message.
    fn kind(&self) -> Kind {
        Kind::User
    }
    fn hint(&self) -> Option<String> {
        let text = self.to_string();
        text.contains("too old").then(|| install_hint("git"))
    }
}

impl Diagnose for crate::agent::AgentError {
    fn kind(&self) -> Kind {
        Kind::User
    }
}

impl Diagnose for crate::watch::report::ReportError {
    // Writing under `.batty/run` fails for the environment's reasons (permissions, disk).
    fn kind(&self) -> Kind {
        Kind::User
    }
}

impl Diagnose for SuperviseError {
    fn kind(&self) -> Kind {
        match self {
            SuperviseError::Tmux(e) => e.kind(),
            _ => Kind::User,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            SuperviseError::Locked { path, .. } => crate::session::lock::holder(path)
                .map(|h| h.describe())
                .or_else(|| Some("wait for the other supervisor to end".to_owned())),
            SuperviseError::Watch { .. } => Some(
                "raise the inotify limits (`sysctl fs.inotify.max_user_watches`) or stop other \
                 watchers"
                    .to_owned(),
            ),
            SuperviseError::Config(e) => e.hint(),
            SuperviseError::Tmux(e) => e.hint(),
            SuperviseError::Board(e) => e.hint(),
            _ => None,
        }
    }
}

/// A bare I/O error reached the command edge without naming its file: the environment's
/// usual failures are the user's to fix; anything else batty did not expect.
impl Diagnose for std::io::Error {
    fn kind(&self) -> Kind {
        use std::io::ErrorKind as E;
        match self.kind() {
            E::NotFound
            | E::PermissionDenied
            | E::AlreadyExists
            | E::ReadOnlyFilesystem
            | E::StorageFull
            | E::QuotaExceeded
            | E::NotADirectory
            | E::IsADirectory
            | E::DirectoryNotEmpty
            | E::InvalidFilename
            | E::BrokenPipe => Kind::User,
            _ => Kind::Internal,
        }
    }
}

/// Serialising batty's own values cannot fail on valid data.
impl Diagnose for serde_json::Error {
    fn kind(&self) -> Kind {
        Kind::Internal
    }
}
