//! `batty log-writer` (hidden): what `pipe-pane` feeds an executor's output into. Appends
//! stdin to the pty log and rotates it past `--max-bytes`, keeping one `.old` file, so a
//! chatty agent cannot fill the disk.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Copy stdin to a pty log, rotating it past --max-bytes (used by pipe-pane).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log file.
    pub file: PathBuf,
    /// Rotate once the file passes this many bytes.
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    pub max_bytes: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    copy_rotating(std::io::stdin().lock(), &args.file, args.max_bytes)
        .with_context(|| format!("cannot write pty log `{}`", args.file.display()))
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

fn copy_rotating(mut input: impl Read, file: &Path, max_bytes: u64) -> std::io::Result<()> {
    let (mut out, mut size) = open(file)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
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

    #[test]
    fn rotates_keeping_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("logs/a.pty.log");
        copy_rotating(&b"0123456789"[..], &file, 16).unwrap();
        copy_rotating(&b"abcdefghij"[..], &file, 16).unwrap();
        assert_eq!(std::fs::read(old_path(&file)).unwrap(), b"0123456789");
        assert_eq!(std::fs::read(&file).unwrap(), b"abcdefghij");
        copy_rotating(&b"ABCDEFGHIJ"[..], &file, 16).unwrap();
        assert_eq!(std::fs::read(old_path(&file)).unwrap(), b"abcdefghij");
        assert_eq!(std::fs::read(&file).unwrap(), b"ABCDEFGHIJ");
        assert_eq!(
            std::fs::read_dir(dir.path().join("logs")).unwrap().count(),
            2
        );
    }
}
