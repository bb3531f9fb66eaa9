//! `batty log-writer` (hidden): what `pipe-pane` feeds an executor's output into. Appends
//! stdin to the pty log and rotates it past `--max-bytes`, keeping one `.old` file, so a
//! chatty agent cannot fill the disk.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Context as _;

/// Copy stdin to a pty log, rotating it past --max-bytes (used by pipe-pane).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log file.
    pub file: PathBuf,
    /// Rotate once the file passes this many bytes.
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    pub max_bytes: u64,
}

/// A read at least this large means the agent is streaming output: gather more for up to
/// [`GATHER`] before writing, so the supervisor's watcher wakes once per 64 KiB rather than
/// once per pipe write from tmux (about 10 KiB). Smaller reads (an echo, a prompt) are
/// written at once, so they reach the supervisor without delay.
const BURST: usize = 8 * 1024;
const GATHER: Duration = Duration::from_millis(2);

pub fn run(args: Args) -> crate::error::Result<()> {
    copy_rotating(
        std::io::stdin().lock(),
        &args.file,
        args.max_bytes,
        stdin_readable,
    )
    .with_context(|| format!("cannot write pty log `{}`", args.file.display()))
}

/// True when stdin has data (or reached its end) within `timeout`.
fn stdin_readable(timeout: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_micros().div_ceil(1000).min(1000) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut fd, 1, ms) > 0 }
}

/// One `read`, retried when interrupted.
fn read_some(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The rotated file: `<file>.old`.
pub fn old_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".old");
    PathBuf::from(name)
}

fn open(file: &Path) -> std::io::Result<(std::fs::File, u64)> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    let len = f.metadata()?.len();
    Ok((f, len))
}

/// Copies `input` to `file`; `readable(t)` says whether more input arrives within `t`.
fn copy_rotating(
    mut input: impl Read,
    file: &Path,
    max_bytes: u64,
    mut readable: impl FnMut(Duration) -> bool,
) -> std::io::Result<()> {
    let (mut out, mut size) = open(file)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut n = read_some(&mut input, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if n >= BURST {
            let deadline = Instant::now() + GATHER;
            while n < buf.len() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !readable(left) {
                    break;
                }
                match read_some(&mut input, &mut buf[n..])? {
                    0 => break, // the end: written below, then the next read returns 0
                    m => n += m,
                }
            }
        }
        if size > 0 && size + n as u64 > max_bytes {
            drop(out);
            std::fs::rename(file, old_path(file))?;
            (out, size) = open(file)?;
        }
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its data in pieces, as a pipe does.
    struct Pieces(Vec<Vec<u8>>);

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some(piece) = self.0.first_mut() else {
                return Ok(0);
            };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            piece.drain(..n);
            if piece.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    #[test]
    fn a_stream_is_gathered_and_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.pty.log");
        let pieces: Vec<Vec<u8>> = (0..20u8).map(|i| vec![b'a' + i; 10_000]).collect();
        let all: Vec<u8> = pieces.concat();
        let mut asked = 0;
        let readable = |_| {
            asked += 1;
            true
        };
        copy_rotating(Pieces(pieces), &file, 1 << 30, readable).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), all);
        assert!(asked > 0, "large reads gather more before writing");

        let mut asked = 0;
        let small = Pieces(vec![b"demo> ".to_vec(), b"Task #1: x\r\n".to_vec()]);
        copy_rotating(small, &file, 1 << 30, |_| {
            asked += 1;
            true
        })
        .unwrap();
        assert_eq!(asked, 0, "small reads are written at once");
    }

    #[test]
    fn rotates_keeping_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("logs/a.pty.log");
        copy_rotating(&b"0123456789"[..], &file, 16, |_| true).unwrap();
        copy_rotating(&b"abcdefghij"[..], &file, 16, |_| true).unwrap();
        assert_eq!(std::fs::read(old_path(&file)).unwrap(), b"0123456789");
        assert_eq!(std::fs::read(&file).unwrap(), b"abcdefghij");
        copy_rotating(&b"ABCDEFGHIJ"[..], &file, 16, |_| true).unwrap();
        assert_eq!(std::fs::read(old_path(&file)).unwrap(), b"abcdefghij");
        assert_eq!(std::fs::read(&file).unwrap(), b"ABCDEFGHIJ");
        assert_eq!(
            std::fs::read_dir(dir.path().join("logs")).unwrap().count(),
            2
        );
    }
}
