//! Following a growing file from a saved byte offset, as `tail -F` does: bounded reads, and a
//! file that was truncated or replaced (rotation) is followed from the start of the new one
//! after the rest of the old one has been read. [`LogTail`] adds ANSI stripping and line
//! splitting for agents' pty logs; [`FileCursor`] is the raw part, shared with the status
//! reports reader.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::ansi::Stripper;

/// Most bytes one read returns; the caller reads again when [`RawRead::more`] is set.
pub const DEFAULT_CHUNK: usize = 1024 * 1024;

/// A longer line than this (no line break at all) is cut, so memory stays bounded.
const MAX_LINE: usize = 64 * 1024;

/// New bytes from a [`FileCursor`].
#[derive(Debug, Default)]
pub struct RawRead {
    pub bytes: Vec<u8>,
    /// The file was truncated or replaced since the last read; `bytes` start a new file.
    pub rotated: bool,
    /// The chunk limit was reached: more bytes are waiting.
    pub more: bool,
}

/// A position in a file that may be truncated or replaced under us.
#[derive(Debug)]
pub struct FileCursor {
    path: PathBuf,
    offset: u64,
    /// The open file and its inode; kept open so the end of a renamed-away file is not lost.
    file: Option<(File, u64)>,
    chunk: usize,
}

impl FileCursor {
    /// A cursor at `offset` (0 = the start) of `path`, which need not exist yet.
    pub fn new(path: impl Into<PathBuf>, offset: u64) -> FileCursor {
        FileCursor {
            path: path.into(),
            offset,
            file: None,
            chunk: DEFAULT_CHUNK,
        }
    }

    /// Sets the most bytes one read returns (at least 1).
    pub fn with_chunk(mut self, chunk: usize) -> FileCursor {
        self.chunk = chunk.max(1);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the current file consumed so far; save it to resume after a restart.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads what was appended since the last read. A missing file reads as nothing.
    pub fn read(&mut self) -> io::Result<RawRead> {
        let mut result = RawRead::default();
        if self.file.is_none() && !self.open()? {
            return Ok(result);
        }
        self.read_open(&mut result)?;
        if result.bytes.is_empty() && self.replaced()? {
            // The old file is drained; go on with the new one from its start.
            self.file = None;
            self.offset = 0;
            result.rotated = true;
            if self.open()? {
                self.read_open(&mut result)?;
            }
        }
        Ok(result)
    }

    fn open(&mut self) -> io::Result<bool> {
        match File::open(&self.path) {
            Ok(file) => {
                let ino = file.metadata()?.ino();
                self.file = Some((file, ino));
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn read_open(&mut self, result: &mut RawRead) -> io::Result<()> {
        let Some((file, _)) = &self.file else {
            return Ok(());
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            // Truncated in place (`: > file`): start over.
            self.offset = 0;
            result.rotated = true;
        }
        let want = (len - self.offset).min(self.chunk as u64) as usize;
        if want == 0 {
            return Ok(());
        }
        let start = result.bytes.len();
        result.bytes.resize(start + want, 0);
        let mut got = 0;
        while got < want {
            let n = file.read_at(&mut result.bytes[start + got..], self.offset + got as u64)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        result.bytes.truncate(start + got);
        self.offset += got as u64;
        result.more = self.offset < len;
        Ok(())
    }

    /// True when the path now names another file than the one open (or none at all while the
    /// open one was removed and a new one is not there yet: keep the old one then).
    fn replaced(&self) -> io::Result<bool> {
        let Some((_, ino)) = &self.file else {
            return Ok(false);
        };
        match std::fs::metadata(&self.path) {
            Ok(meta) => Ok(meta.ino() != *ino),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// New text from an agent's pty log.
#[derive(Debug, Default)]
pub struct TailRead {
    /// The complete lines read, control sequences removed, each ending in `\n` (one string,
    /// so a megabyte of output costs one allocation, not one per line).
    pub text: String,
    /// Raw bytes read from the log (before stripping).
    pub bytes: u64,
    /// The log was truncated or rotated; the text after it comes from the new file.
    pub rotated: bool,
    /// The chunk limit was reached: call [`LogTail::read`] again.
    pub more: bool,
}

impl TailRead {
    /// The complete lines, without their line breaks.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.lines()
    }
}

/// Follows an agent's pty log: raw bytes since the saved offset, stripped and split into lines.
#[derive(Debug)]
pub struct LogTail {
    cursor: FileCursor,
    stripper: Stripper,
    /// Stripped bytes after the last line break (an unfinished line, e.g. a prompt).
    partial: Vec<u8>,
}

impl LogTail {
    /// Follows `path` from `offset` (0 = the start).
    pub fn new(path: impl Into<PathBuf>, offset: u64) -> LogTail {
        LogTail::from_cursor(FileCursor::new(path, offset))
    }

    pub fn from_cursor(cursor: FileCursor) -> LogTail {
        LogTail {
            cursor,
            stripper: Stripper::new(),
            partial: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.cursor.path()
    }

    pub fn offset(&self) -> u64 {
        self.cursor.offset()
    }

    /// The text after the last line break, e.g. a prompt waiting for input.
    pub fn pending(&self) -> String {
        String::from_utf8_lossy(&self.partial).into_owned()
    }

    /// Reads and strips whatever was appended since the last read (at most one chunk).
    pub fn read(&mut self) -> io::Result<TailRead> {
        let raw = self.cursor.read()?;
        let mut out = TailRead {
            bytes: raw.bytes.len() as u64,
            rotated: raw.rotated,
            more: raw.more,
            text: String::new(),
        };
        let mut plain = Vec::new();
        if raw.rotated {
            // The old file's unfinished line ends with it; escapes do not continue across.
            if !self.partial.is_empty() {
                plain.append(&mut self.partial);
                plain.push(b'\n');
            }
            self.stripper = Stripper::new();
        }
        plain.append(&mut self.partial);
        self.stripper.feed(&raw.bytes, &mut plain);
        let complete = plain.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = plain.split_off(complete);
        while self.partial.len() > MAX_LINE {
            // Cut at a character boundary so no UTF-8 sequence is split.
            let mut cut = MAX_LINE;
            while cut > 0 && self.partial[cut] & 0xC0 == 0x80 {
                cut -= 1;
            }
            let rest = self.partial.split_off(cut);
            plain.append(&mut self.partial);
            plain.push(b'\n');
            self.partial = rest;
        }
        out.text = match String::from_utf8(plain) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    #[test]
    fn missing_file_reads_nothing_until_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pty.log");
        let mut tail = LogTail::new(&p, 0);
        let r = tail.read().unwrap();
        assert!(r.text.is_empty() && r.bytes == 0 && !r.rotated);
        append(&p, b"hello\n");
        assert_eq!(tail.read().unwrap().lines().collect::<Vec<_>>(), ["hello"]);
    }

    #[test]
    fn reads_only_new_bytes_and_keeps_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pty.log");
        append(&p, b"\x1b[1mone\x1b[0m\r\ntw");
        let mut tail = LogTail::new(&p, 0);
        let r = tail.read().unwrap();
        assert_eq!(r.lines().collect::<Vec<_>>(), ["one"]);
        assert_eq!(r.bytes, 15);
        assert_eq!(tail.pending(), "tw");
        assert_eq!(tail.offset(), 15);

        let r = tail.read().unwrap();
        assert!(r.text.is_empty() && r.bytes == 0);

        append(&p, b"o\r\ndemo> ");
        let r = tail.read().unwrap();
        assert_eq!(r.lines().collect::<Vec<_>>(), ["two"]);
        assert_eq!(tail.pending(), "demo> ");
    }

    #[test]
    fn escape_split_between_reads_is_stripped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pty.log");
        append(&p, b"x\x1b[3");
        let mut tail = LogTail::new(&p, 0);
        tail.read().unwrap();
        append(&p, b"1my\n");
        assert_eq!(tail.read().unwrap().lines().collect::<Vec<_>>(), ["xy"]);
    }

    #[test]
    fn resumes_from_a_saved_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pty.log");
        append(&p, b"old\nnew\n");
        let mut tail = LogTail::new(&p, 4);
        assert_eq!(tail.read().unwrap().lines().collect::<Vec<_>>(), ["new"]);
    }

    #[test]
    fn truncation_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pty.log");
        append(&p, b"a long first line\n");
        let mut tail = LogTail::new(&p, 0);
        tail.read().unwrap();
        std::fs::write(&p, b"short\n").unwrap();
        let r = tail.read().unwrap();
        assert!(r.rotated);
        assert_eq!(r.lines().collect::<Vec<_>>(), ["short"]);
    }

    #[test]
    fn rotation_drains_the_old_file_then_follows_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pty.log");
        append(&p, b"one\n");
        let mut tail = LogTail::new(&p, 0);
        assert_eq!(tail.read().unwrap().lines().collect::<Vec<_>>(), ["one"]);
        // The writer still appends to the renamed file before the new one appears.
        append(&p, b"two\npart");
        std::fs::rename(&p, dir.path().join("a.pty.log.1")).unwrap();
        let r = tail.read().unwrap();
        assert_eq!(r.lines().collect::<Vec<_>>(), ["two"]);
        assert!(!r.rotated);
        append(&p, b"three\n");
        let r = tail.read().unwrap();
        assert!(r.rotated);
        assert_eq!(r.lines().collect::<Vec<_>>(), ["part", "three"]);
        assert_eq!(tail.offset(), 6);
    }

    #[test]
    fn reads_are_bounded_by_the_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pty.log");
        append(&p, b"0123456789\n");
        let mut tail = LogTail::from_cursor(FileCursor::new(&p, 0).with_chunk(4));
        let mut lines = Vec::new();
        let mut reads = 0;
        loop {
            let r = tail.read().unwrap();
            reads += 1;
            assert!(r.bytes <= 4);
            lines.extend(r.lines().map(str::to_owned));
            if !r.more {
                break;
            }
        }
        assert_eq!(lines, ["0123456789"]);
        assert_eq!(reads, 3);
    }

    #[test]
    fn endless_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pty.log");
        append(&p, &vec![b'x'; MAX_LINE * 2 + 10]);
        let mut tail = LogTail::new(&p, 0);
        let r = tail.read().unwrap();
        assert_eq!(r.lines().count(), 2);
        assert_eq!(tail.pending().len(), 10);
    }
}
