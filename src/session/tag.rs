//! Which tmux session is this project's. Sessions are named `batty-<phase>`, so two projects
//! with the same phase on one tmux server would share a name: each session is tagged with its
//! project's root, and a session tagged with another root is never touched.

use std::path::Path;

use crate::paths::{Project, session_name};
use crate::tmux::{Tmux, TmuxError};

/// The session user option holding the project root.
pub const ROOT_OPTION: &str = "@batty_root";

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    #[error(
        "tmux session `{name}` belongs to the project in {other}; stop it there, or give this \
         project its own tmux server with `tmux.socket` in .batty/config.yml"
    )]
    Foreign { name: String, other: String },
}

impl crate::error::Diagnose for SessionError {
    fn kind(&self) -> crate::error::Kind {
        match self {
            SessionError::Tmux(e) => e.kind(),
            SessionError::Foreign { .. } => crate::error::Kind::User,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            SessionError::Tmux(e) => e.hint(),
            SessionError::Foreign { .. } => None,
        }
    }
}

/// The id of this project's session for `phase`, if it runs. A session of that name with no
/// tag (made by hand, or by an older batty) is taken as ours.
pub fn find(tmux: &Tmux, project: &Project, phase: &str) -> Result<Option<String>, SessionError> {
    let name = session_name(phase);
    let Some(id) = tmux.find_session(&name)? else {
        return Ok(None);
    };
    let root = tmux.display(&id, &format!("#{{{ROOT_OPTION}}}"))?;
    let root = root.trim();
    if root.is_empty() || same_dir(Path::new(root), project.root()) {
        Ok(Some(id))
    } else {
        Err(SessionError::Foreign {
            name,
            other: root.to_owned(),
        })
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}
