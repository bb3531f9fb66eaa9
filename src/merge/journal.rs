//! The in-flight record of the running merge (`.batty/run/<phase>/merge-inflight.json`),
//! written by the merge worker before each step that outlives a crash: the gate's process
//! group (so recovery can end it) and the candidate commit just before the target moves
//! (so recovery can tell whether the task landed).

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub task: u64,
    pub target: String,
    /// The target's tip the attempt started from.
    pub old_tip: String,
    /// The head of the range being merged: a journal names the entry it was written for only
    /// while the entry still has that head (a redone task has a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_pgid: Option<u32>,
}

impl Journal {
    /// The last record, `None` when there is none or it cannot be read (recovery then falls back
    /// to the queue's own record, and a re-attempt drops commits already on the target).
    pub fn load(path: &Path) -> Option<Journal> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        crate::fsutil::write_atomic(path, text.as_bytes())
    }
}
