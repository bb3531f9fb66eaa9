//! The board's `activity.jsonl`, appended as kanban-md does: one JSON object per line with
//! `timestamp`, `action`, `task_id` and `detail`.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::time::{Timestamp, format_rfc3339_nano};

pub const ACTIVITY_FILE: &str = "activity.jsonl";

#[derive(Serialize)]
struct Entry<'a> {
    timestamp: String,
    action: &'a str,
    task_id: u64,
    detail: &'a str,
}

/// Appends one entry. Best effort, like kanban-md: a failure here never fails the change the
/// entry describes (that change is already on disk).
pub fn append(dir: &Path, now: &Timestamp, action: &str, task_id: u64, detail: &str) {
    let entry = Entry {
        timestamp: format_rfc3339_nano(now),
        action,
        task_id,
        detail,
    };
    let Ok(mut line) = serde_json::to_vec(&entry) else {
        return;
    };
    line.push(b'\n');
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(ACTIVITY_FILE));
    match file {
        // One write call per line, so concurrent appenders do not interleave within a line.
        Ok(mut f) => {
            if let Err(e) = f.write_all(&line) {
                tracing::warn!(
                    "cannot append to {}: {e}",
                    dir.join(ACTIVITY_FILE).display()
                );
            }
        }
        Err(e) => tracing::warn!("cannot open {}: {e}", dir.join(ACTIVITY_FILE).display()),
    }
}
