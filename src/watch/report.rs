//! Agents' own state reports (`batty agent-status`): one JSON line per report appended to
//! `.batty/run/<phase>/agents/<agent>.status`, and the reader the supervisor uses to pick up new ones.
//!
//! Appending (not rewriting) keeps every report: two hooks firing at once cannot lose one, and
//! the reader never sees a half-written file, because each line is one `write` under
//! `O_APPEND` and a line without its line break is left for the next read.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tail::FileCursor;
use crate::status::AgentState;

/// What an agent says it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportedState {
    Idle,
    Busy,
    Asking,
}

impl ReportedState {
    pub fn as_agent_state(self) -> AgentState {
        match self {
            ReportedState::Idle => AgentState::Idle,
            ReportedState::Busy => AgentState::Busy,
            ReportedState::Asking => AgentState::Asking,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReportedState::Idle => "idle",
            ReportedState::Busy => "busy",
            ReportedState::Asking => "asking",
        }
    }
}

/// One line of a status file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub state: ReportedState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Milliseconds since the Unix epoch when the report was written.
    pub at_ms: i64,
}

impl Report {
    pub fn now(state: ReportedState, note: Option<String>) -> Report {
        Report {
            state,
            note,
            at_ms: chrono::Utc::now().timestamp_millis(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write agent status to {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read agent status {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: bad status line `{line}`: {reason}")]
    BadLine {
        path: PathBuf,
        line: String,
        reason: String,
    },
}

/// Where an agent's reports go: `.batty/run/<phase>/agents/<agent>.status`.
pub fn report_path(project: &crate::paths::Project, phase: &str, agent: &str) -> PathBuf {
    project.report_file(phase, agent)
}

/// Appends `report` as one JSON line to `path`, creating the folder and file as needed.
pub fn append(path: &Path, report: &Report) -> Result<(), ReportError> {
    let write_err = |source| ReportError::Write {
        path: path.to_owned(),
        source,
    };
    let mut line = serde_json::to_string(report).map_err(|e| write_err(io::Error::other(e)))?;
    line.push('\n');
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_err)?;
    // One write call: concurrent appenders never interleave within a line.
    file.write_all(line.as_bytes()).map_err(write_err)
}

/// Parses one status line.
pub fn parse_line(line: &str) -> Result<Report, String> {
    serde_json::from_str(line).map_err(|e| crate::config::one_line(&e.to_string()))
}

/// Reads the reports appended to one agent's status file since the last read.
#[derive(Debug)]
pub struct ReportReader {
    cursor: FileCursor,
    partial: Vec<u8>,
}

impl ReportReader {
    /// Reads from `offset` (0 = every report in the file; the file's length = only new ones).
    pub fn new(path: impl Into<PathBuf>, offset: u64) -> ReportReader {
        ReportReader {
            cursor: FileCursor::new(path, offset),
            partial: Vec::new(),
        }
    }

    /// Starts after the reports already in the file (those are from before this supervisor).
    pub fn at_end(path: impl Into<PathBuf>) -> ReportReader {
        let path = path.into();
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        ReportReader::new(path, len)
    }

    pub fn offset(&self) -> u64 {
        self.cursor.offset()
    }

    /// New complete reports in order; a malformed line is returned as an error in its place
    /// and the rest are still read.
    pub fn read(&mut self) -> Result<Vec<Result<Report, ReportError>>, ReportError> {
        let mut out = Vec::new();
        loop {
            let raw = self.cursor.read().map_err(|source| ReportError::Read {
                path: self.cursor.path().to_owned(),
                source,
            })?;
            if raw.rotated {
                self.partial.clear();
            }
            self.partial.extend_from_slice(&raw.bytes);
            while let Some(pos) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line[..pos]);
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                out.push(parse_line(line).map_err(|reason| ReportError::BadLine {
                    path: self.cursor.path().to_owned(),
                    line: line.chars().take(80).collect(),
                    reason,
                }));
            }
            if !raw.more {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let r = Report {
            state: ReportedState::Asking,
            note: Some("allow `rm`?".into()),
            at_ms: 1_700_000_000_000,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"state":"asking","note":"allow `rm`?","at_ms":1700000000000}"#
        );
        assert_eq!(parse_line(&text).unwrap(), r);
        let idle = parse_line(r#"{"state":"idle","at_ms":5}"#).unwrap();
        assert_eq!(idle.state, ReportedState::Idle);
        assert_eq!(idle.note, None);
    }

    #[test]
    fn reader_returns_new_reports_and_flags_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let project = crate::paths::Project::new(dir.path());
        let path = report_path(&project, "v1", "otter");
        assert!(path.ends_with(".batty/run/v1/agents/otter.status"));
        let mut reader = ReportReader::at_end(&path);
        assert!(reader.read().unwrap().is_empty());

        append(&path, &Report::now(ReportedState::Busy, None)).unwrap();
        append(
            &path,
            &Report::now(ReportedState::Idle, Some("done".into())),
        )
        .unwrap();
        let got = reader.read().unwrap();
        let states: Vec<_> = got.iter().map(|r| r.as_ref().unwrap().state).collect();
        assert_eq!(states, [ReportedState::Busy, ReportedState::Idle]);
        assert!(reader.read().unwrap().is_empty());

        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"not json\n{\"state\":\"busy\",\"at_").unwrap();
        let got = reader.read().unwrap();
        assert_eq!(got.len(), 1);
        let err = got[0].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("otter.status") && err.contains("not json"),
            "{err}"
        );
        // The half-written line is completed later.
        f.write_all(b"ms\":1}\n").unwrap();
        let got = reader.read().unwrap();
        assert_eq!(got[0].as_ref().unwrap().state, ReportedState::Busy);
    }

    #[test]
    fn reader_at_end_skips_old_reports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.status");
        append(&path, &Report::now(ReportedState::Busy, None)).unwrap();
        let mut reader = ReportReader::at_end(&path);
        assert!(reader.read().unwrap().is_empty());
        let mut from_start = ReportReader::new(&path, 0);
        assert_eq!(from_start.read().unwrap().len(), 1);
    }
}
