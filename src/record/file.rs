//! Writing and reading the record file: whole lines appended, never rewritten; a line that
//! cannot be read is reported and skipped.
//!
//! Each line goes out in one `write` on a file opened with `O_APPEND`, so two writers never
//! interleave within a line and a crash loses at most the line being written. A line cut
//! short by a crash has no line break, so the next line is appended to it; the reader finds
//! the line glued on (every line starts with `{"v":`) and keeps it.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::entry::{Entry, VERSION};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write the attempt record {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A line of the record that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// 1-based; `None` when the whole file could not be read.
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

/// Appends `entry` as one line, creating the folder and the file as needed.
pub fn append(path: &Path, entry: &Entry) -> Result<(), RecordError> {
    let err = |source| RecordError::Write {
        path: path.to_owned(),
        source,
    };
    let mut line = serde_json::to_vec(entry).map_err(|e| err(io::Error::other(e)))?;
    line.push(b'\n');
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    };
    let mut file = match open() {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(err)?;
            }
            open().map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    // One write call: concurrent appenders never interleave within a line.
    file.write_all(&line).map_err(err)
}

/// Every entry of the record in file order, and the lines that were skipped. A missing file
/// is an empty record; nothing here is fatal.
pub fn read(path: &Path) -> (Vec<Entry>, Vec<Problem>) {
    match std::fs::read(path) {
        Ok(bytes) => parse(path, &bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), Vec::new()),
        Err(e) => (
            Vec::new(),
            vec![Problem {
                path: path.to_owned(),
                line: None,
                reason: format!("cannot read: {e}"),
            }],
        ),
    }
}

/// Parses the bytes of a record file (`path` is only for the problems).
pub fn parse(path: &Path, bytes: &[u8]) -> (Vec<Entry>, Vec<Problem>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.len().saturating_sub(1);
    for (i, raw) in lines.iter().enumerate() {
        let problem = |reason: String| Problem {
            path: path.to_owned(),
            line: Some(i + 1),
            reason,
        };
        let text = String::from_utf8_lossy(raw);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        // The part after the last line break has none: it was cut short, unless it is whole.
        let unfinished = i == last;
        let mut rest = text;
        loop {
            match parse_line(rest) {
                Ok(entry) => {
                    entries.push(entry);
                    break;
                }
                Err(reason) => {
                    // A line cut short by a crash has the next line glued on.
                    let glued = rest
                        .get(1..)
                        .and_then(|r| r.find(LINE_START))
                        .map(|p| p + 1);
                    match glued {
                        Some(at) => {
                            problems.push(problem(format!(
                                "a line cut short (a crash while writing?), skipped: `{}`",
                                snippet(&rest[..at])
                            )));
                            rest = &rest[at..];
                        }
                        None if unfinished => {
                            problems.push(problem(format!(
                                "the last line is cut short (a crash while writing?), skipped: `{}`",
                                snippet(rest)
                            )));
                            break;
                        }
                        None => {
                            problems.push(problem(reason));
                            break;
                        }
                    }
                }
            }
        }
    }
    (entries, problems)
}

/// How every line the writer makes begins (`v` is the first field).
const LINE_START: &str = "{\"v\":";

/// One line, or why it cannot be used.
pub fn parse_line(text: &str) -> Result<Entry, String> {
    #[derive(serde::Deserialize)]
    struct Version {
        v: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Entry>(text) {
        Ok(entry) if entry.v == VERSION => Ok(entry),
        Ok(entry) => Err(version_reason(entry.v)),
        Err(err) => {
            // A line of another version fails for its own reasons; name the version instead.
            if let Ok(Version { v: Some(v) }) = serde_json::from_str::<Version>(text)
                && let Some(v) = v.as_u64()
                && v != u64::from(VERSION)
            {
                return Err(version_reason(v as u32));
            }
            Err(format!(
                "not a record line ({}): `{}`",
                crate::text::one_line(&err.to_string()),
                snippet(text)
            ))
        }
    }
}

fn version_reason(v: u32) -> String {
    if v > VERSION {
        format!("written by a newer batty (record version {v}; this one reads {VERSION}); skipped")
    } else {
        format!("unknown record version {v}; skipped")
    }
}

/// The start of a bad line, for a message.
fn snippet(text: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    crate::text::one_line(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::entry::{Event, Run, RunAction};

    fn run(pid: u32) -> Entry {
        Entry::now(Event::Run(Run {
            action: RunAction::Start,
            pid,
        }))
    }

    #[test]
    fn appended_lines_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/v1/attempts.jsonl");
        for pid in 1..=3 {
            append(&path, &run(pid)).unwrap();
        }
        let (entries, problems) = read(&path);
        assert!(problems.is_empty(), "{problems:?}");
        let pids: Vec<u32> = entries
            .iter()
            .map(|e| match &e.event {
                Event::Run(r) => r.pid,
                _ => 0,
            })
            .collect();
        assert_eq!(pids, [1, 2, 3]);
        assert_eq!(read(&dir.path().join("none.jsonl")), (vec![], vec![]));
    }

    #[test]
    fn torn_and_bad_lines_are_reported_and_skipped() {
        let good = |pid| serde_json::to_string(&run(pid)).unwrap();
        let torn = &good(2)[..30];
        let text = format!(
            "{}\ngarbage\n{torn}{}\n{{\"v\":2,\"at\":\"x\",\"event\":\"run\"}}\n\n{torn}",
            good(1),
            good(3)
        );
        let (entries, problems) = parse(Path::new("a.jsonl"), text.as_bytes());
        assert_eq!(entries.len(), 2);
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].starts_with("a.jsonl:2: not a record line ("),
            "{lines:#?}"
        );
        assert!(lines[0].ends_with("`garbage`"), "{lines:#?}");
        assert!(
            lines[1].starts_with("a.jsonl:3: a line cut short"),
            "{lines:#?}"
        );
        assert_eq!(
            lines[2],
            "a.jsonl:4: written by a newer batty (record version 2; this one reads 1); skipped"
        );
        assert!(
            lines[3].starts_with("a.jsonl:6: the last line is cut short"),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_whole_last_line_without_break_is_kept() {
        let text = serde_json::to_string(&run(7)).unwrap();
        let (entries, problems) = parse(Path::new("a"), text.as_bytes());
        assert_eq!((entries.len(), problems.len()), (1, 0));
    }
}
