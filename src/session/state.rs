//! The persistent run state of a phase (`.batty/run/<phase>/state.json`): which agents exist, in
//! which order, and where each lives (window, panes, worktree, branch, port). Written
//! atomically; fields this version does not know are kept when it rewrites the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RunStateError {
    #[error("cannot read run state `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("run state `{path}` is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot write run state `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl crate::error::Diagnose for RunStateError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::User
    }
    fn hint(&self) -> Option<String> {
        match self {
            RunStateError::Invalid { .. } => Some(
                "remove the file (`batty doctor --fix` does), then rerun `batty work`".to_owned(),
            ),
            _ => None,
        }
    }
}

/// One phase's run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub phase: String,
    /// tmux session id (`$3`) of the last `batty work`.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Pane of the supervisor (window 0).
    #[serde(default)]
    pub supervisor_pane: Option<String>,
    /// Branch the agents' worktrees start from (and are compared with for unmerged work).
    pub base: String,
    /// How many agents run: the first `parallel` entries of `agents`. The rest are parked:
    /// their worktrees and names are kept for when the phase grows again.
    pub parallel: usize,
    pub agents: Vec<AgentRecord>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub name: String,
    /// Position from 0: window `index + 1`, port `port_base + index`.
    pub index: usize,
    /// Agent kind (`claude`, `codex`, a configured name) its executor was started with.
    pub kind: String,
    #[serde(default)]
    pub window_id: Option<String>,
    #[serde(default)]
    pub executor_pane: Option<String>,
    #[serde(default)]
    pub log_pane: Option<String>,
    pub worktree: PathBuf,
    pub branch: String,
    #[serde(default)]
    pub port: Option<u16>,
    /// `worktree.post_create` has succeeded in this worktree.
    #[serde(default)]
    pub setup_done: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl RunState {
    /// Reads the state; `None` when the phase has never run.
    pub fn load(path: &Path) -> Result<Option<RunState>, RunStateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RunStateError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| RunStateError::Invalid {
                path: path.to_owned(),
                reason: e.to_string(),
            })
    }

    pub fn save(&self, path: &Path) -> Result<(), RunStateError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| RunStateError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|source| RunStateError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// The agents that run (the first `parallel`).
    pub fn active(&self) -> &[AgentRecord] {
        &self.agents[..self.parallel.min(self.agents.len())]
    }

    pub fn agent(&self, name: &str) -> Option<&AgentRecord> {
        self.agents.iter().find(|a| a.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.json");
        assert_eq!(RunState::load(&path).unwrap(), None);
        let text = r#"{"phase":"v1","base":"main","parallel":1,"lock_owner":7,
            "agents":[{"name":"brave-otter","index":0,"kind":"sh","worktree":"/w","branch":"batty/v1/brave-otter","task":12}]}"#;
        std::fs::write(&path, text).unwrap();
        let state = RunState::load(&path).unwrap().unwrap();
        assert_eq!(state.active().len(), 1);
        assert_eq!(state.agents[0].extra["task"], 12);
        state.save(&path).unwrap();
        let again = RunState::load(&path).unwrap().unwrap();
        assert_eq!(again, state);
        assert_eq!(again.extra["lock_owner"], 7);
        std::fs::write(&path, "{").unwrap();
        let err = RunState::load(&path).unwrap_err().to_string();
        assert!(err.starts_with("run state `"), "{err}");
    }
}
