//! Reading and replacing board files safely while people edit them: only regular files are
//! opened (a FIFO named `*.md` never blocks a reader), and every replacement is a
//! compare-and-swap against the bytes that were read, so an edit made meanwhile is never lost.
//!
//! A replacement writes a temp file next to the real file (through a symlink, so the link
//! stays), checks the file is still what was read, and swaps the temp file in. On Linux the
//! swap is `renameat2(RENAME_EXCHANGE)`: the replaced file lands on the temp name, so it is
//! checked once more *after* the swap, and a person's save that slipped in between is put back
//! instead of being lost. Where the file system cannot exchange, a plain rename follows the
//! check as closely as the system allows; [`last_commit`] says how close.

use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Task files larger than this are reported, not read.
pub const MAX_TASK_FILE: u64 = 1024 * 1024;

/// Why a file could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Nothing at that path (or a dangling symlink).
    Missing,
    /// Not a regular file: what it is instead (`a FIFO`, `a directory`, ...).
    NotAFile(&'static str),
    TooLarge,
    Io(std::io::Error),
}

impl ReadError {
    pub fn reason(&self) -> String {
        match self {
            ReadError::Missing => "the file is gone".into(),
            ReadError::NotAFile(what) => format!("{what}, not a regular file; not read"),
            ReadError::TooLarge => format!(
                "the file is larger than {} KiB; not read",
                MAX_TASK_FILE / 1024
            ),
            ReadError::Io(e) => format!("cannot read: {e}"),
        }
    }
}

/// What a directory entry is, as far as it can be told without opening it.
pub(crate) fn kind_name(ft: std::fs::FileType) -> Option<&'static str> {
    if ft.is_file() || ft.is_symlink() {
        None
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_socket() {
        Some("a socket")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else {
        Some("not a regular file")
    }
}

/// A file as read, held open so that a later compare sees writes made to it in place.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The path as named (it may be a symlink).
    pub path: PathBuf,
    /// The file itself: `path` with symlinks resolved. Replacements go here.
    pub real: PathBuf,
    file: File,
    dev: u64,
    ino: u64,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// Opens `path` for reading only if it is a regular file (after symlinks): non-blocking, so a
/// FIFO swapped in after any earlier look cannot hang the open, and checked on the open file.
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata), ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::Missing,
            _ => ReadError::Io(e),
        })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if let Some(what) = kind_name(meta.file_type()) {
        return Err(ReadError::NotAFile(what));
    }
    Ok((file, meta))
}

impl Snapshot {
    /// Reads `path`, which must be (or link to) a regular file of at most [`MAX_TASK_FILE`].
    pub fn read(path: &Path) -> Result<Snapshot, ReadError> {
        let real = resolve(path)?;
        // Looked at before it is opened, so a device named `*.md` is never opened at all.
        match std::fs::metadata(&real) {
            Ok(m) => {
                if let Some(what) = kind_name(m.file_type()) {
                    return Err(ReadError::NotAFile(what));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
            Err(e) => return Err(ReadError::Io(e)),
        }
        let (file, meta) = open_regular(&real)?;
        if meta.len() > MAX_TASK_FILE {
            return Err(ReadError::TooLarge);
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
        (&file)
            .take(MAX_TASK_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(ReadError::Io)?;
        if bytes.len() as u64 > MAX_TASK_FILE {
            return Err(ReadError::TooLarge);
        }
        Ok(Snapshot {
            path: path.to_owned(),
            real,
            dev: meta.dev(),
            ino: meta.ino(),
            mode: meta.permissions().mode() & 0o7777,
            file,
            bytes,
        })
    }

    /// Whether the file at the path is still the one read, with the same bytes: not replaced
    /// (by a rename or a re-pointed link) and not written in place.
    fn unchanged(&self) -> bool {
        if self.real != self.path && resolve(&self.path).ok().as_deref() != Some(&self.real) {
            return false;
        }
        match std::fs::symlink_metadata(&self.real) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => self.same_bytes(),
            _ => false,
        }
    }

    /// Whether the open file (wherever it is now) still holds the bytes read.
    fn same_bytes(&self) -> bool {
        let mut now = vec![0u8; self.bytes.len() + 1];
        let mut got = 0;
        // Read one byte past the old length, so a file that grew does not compare equal.
        while got < now.len() {
            match self.file.read_at(&mut now[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        got == self.bytes.len() && now[..got] == self.bytes[..]
    }

    fn is_inode(&self, m: &Metadata) -> bool {
        m.dev() == self.dev && m.ino() == self.ino
    }
}

/// `path` with symlinks resolved (the path itself when it is not a link).
fn resolve(path: &Path) -> Result<PathBuf, ReadError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ReadError::Missing,
                _ => ReadError::Io(e),
            })
        }
        Ok(_) => Ok(path.to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ReadError::Missing),
        Err(e) => Err(ReadError::Io(e)),
    }
}

/// The result of a compare-and-swap that did not go through.
#[derive(Debug)]
pub(crate) enum CommitError {
    /// The file changed since it was read; read it again and redo the change.
    Conflict,
    /// A new file's name is taken.
    Exists,
    Io(std::io::Error),
}

impl From<std::io::Error> for CommitError {
    fn from(e: std::io::Error) -> Self {
        CommitError::Io(e)
    }
}

/// Timings of the last commit on this thread, for the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CommitTiming {
    /// From the end of the last check that the file is unchanged to the end of the swap: a
    /// save landing here is caught only by the check after the swap (exchange), or lost (rename).
    pub check_to_swap: Duration,
    /// From the start of the swap to the end of the check after it; zero without exchange.
    pub swap_to_recheck: Duration,
    /// Whether the swap was an exchange (checked after) rather than a plain rename.
    pub exchanged: bool,
}

thread_local! {
    static LAST: std::cell::Cell<CommitTiming> = const { std::cell::Cell::new(CommitTiming {
        check_to_swap: Duration::ZERO,
        swap_to_recheck: Duration::ZERO,
        exchanged: false,
    }) };
}

/// The timings of the last successful replacement made on this thread.
pub fn last_commit() -> CommitTiming {
    LAST.with(|l| l.get())
}

thread_local! {
    static PLAIN_RENAME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes replacements on this thread use a plain rename even where the file system can
/// exchange: for the benchmark and tests, which compare the two.
#[doc(hidden)]
pub fn force_plain_rename(on: bool) {
    PLAIN_RENAME.with(|p| p.set(on));
}

/// Points in a commit where tests act as a person saving the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The temp file is written; the check comes next.
    BeforeCheck,
    /// The check passed; the swap comes next.
    BeforeSwap,
    /// The swap is done; the check after it comes next (exchange only).
    AfterSwap,
}

#[cfg(test)]
type Hook = Box<dyn FnMut(Stage)>;

#[cfg(test)]
thread_local! {
    pub(crate) static HOOK: std::cell::RefCell<Option<Hook>> = std::cell::RefCell::new(None);
}

#[cfg(test)]
fn hook(stage: Stage) {
    // Taken out while it runs, so the hook may itself use the board.
    let taken = HOOK.with(|h| h.borrow_mut().take());
    if let Some(mut f) = taken {
        f(stage);
        HOOK.with(|h| *h.borrow_mut() = Some(f));
    }
}

#[cfg(not(test))]
#[inline(always)]
fn hook(_: Stage) {}

/// Replaces the file `snap` was read from with `text` (mode `mode`), if it is still exactly
/// what was read. On [`CommitError::Conflict`] nothing was written.
pub(crate) fn replace(snap: &Snapshot, text: &[u8], mode: u32) -> Result<(), CommitError> {
    let (tmp, written) = write_temp(&snap.real, text, mode)?;
    let result = swap_in(snap, &tmp, &written, text);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn swap_in(
    snap: &Snapshot,
    tmp: &Path,
    written: &Metadata,
    text: &[u8],
) -> Result<(), CommitError> {
    hook(Stage::BeforeCheck);
    if !snap.unchanged() {
        return Err(CommitError::Conflict);
    }
    hook(Stage::BeforeSwap);
    let checked = Instant::now();
    if !PLAIN_RENAME.with(|p| p.get()) {
        match exchange(tmp, &snap.real) {
            Ok(()) => {
                let swapped = Instant::now();
                hook(Stage::AfterSwap);
                // The file now on the temp name is what the real name held at the swap.
                let ok = std::fs::symlink_metadata(tmp)
                    .is_ok_and(|m| snap.is_inode(&m) && snap.same_bytes());
                let rechecked = Instant::now();
                if ok {
                    std::fs::remove_file(tmp)?;
                    record(CommitTiming {
                        check_to_swap: swapped - checked,
                        swap_to_recheck: rechecked - swapped,
                        exchanged: true,
                    });
                    return Ok(());
                }
                put_back(snap, tmp, written, text)?;
                return Err(CommitError::Conflict);
            }
            Err(e) if exchange_unsupported(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::rename(tmp, &snap.real)?;
    record(CommitTiming {
        check_to_swap: checked.elapsed(),
        swap_to_recheck: Duration::ZERO,
        exchanged: false,
    });
    Ok(())
}

/// After an exchange that swapped out a file someone changed meanwhile: that file goes back
/// on the real name and ours is removed. If yet another save landed on the real name after
/// the swap (made on top of ours), that save is the newest and stays; the changes of the one
/// it displaced (now on the temp name) are merged into it key by key.
fn put_back(snap: &Snapshot, tmp: &Path, written: &Metadata, text: &[u8]) -> std::io::Result<()> {
    let real = snap.real.as_path();
    let ours = |p: &Path| {
        std::fs::symlink_metadata(p)
            .is_ok_and(|m| m.dev() == written.dev() && m.ino() == written.ino())
    };
    if ours(real) && std::fs::read(real).is_ok_and(|b| b == text) {
        exchange(tmp, real)?;
        if ours(tmp) && std::fs::read(tmp).is_ok_and(|b| b == text) {
            return std::fs::remove_file(tmp);
        }
        // A save replaced (or wrote into) ours just before that swap: it is the newest, so
        // it goes back on the real name, and the one it displaced is merged into it below.
        exchange(tmp, real)?;
    }
    merge_into_newest(snap, tmp, text);
    std::fs::remove_file(tmp)
}

/// Carries the changes of the save on `tmp` into the file now on the real name, by
/// compare-and-swap (again when that file changes meanwhile).
fn merge_into_newest(snap: &Snapshot, tmp: &Path, ours: &[u8]) {
    let Ok(older) = Snapshot::read(tmp) else {
        return;
    };
    // Each level of merging may meet another save, and each retry below is caused by one.
    // Saves within microseconds of each other are rare; the bounds only stop a writer that
    // never pauses from keeping batty here forever (and then the older save's changes are
    // dropped, with a warning).
    if MERGING.with(|m| m.get()) >= MERGE_LEVELS {
        tracing::warn!(
            "{}: saves kept landing while batty wrote it; the newest is kept",
            snap.real.display()
        );
        return;
    }
    MERGING.with(|m| m.set(m.get() + 1));
    for _ in 0..MERGE_LEVELS {
        let Ok(newer) = Snapshot::read(&snap.real) else {
            break;
        };
        let Some(merged) = super::merge::merge(&snap.bytes, &older.bytes, ours, &newer.bytes)
        else {
            break;
        };
        if merged == newer.bytes {
            break;
        }
        match replace(&newer, &merged, newer.mode) {
            Err(CommitError::Conflict) => continue,
            Err(e) => {
                tracing::warn!(
                    "{}: two saves landed while batty wrote it; the newer is kept: {e:?}",
                    snap.real.display()
                );
                break;
            }
            Ok(()) => break,
        }
    }
    MERGING.with(|m| m.set(m.get() - 1));
}

/// How many saves landing during one write are merged before the newest simply wins.
const MERGE_LEVELS: u32 = 64;

thread_local! {
    /// How deep put-backs are merging into one another.
    static MERGING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn record(t: CommitTiming) {
    LAST.with(|l| l.set(t));
}

/// Creates `path` with `text` unless something already has that name.
pub(crate) fn create_new(path: &Path, text: &[u8], mode: u32) -> Result<(), CommitError> {
    let (tmp, _) = write_temp(path, text, mode)?;
    let result = rename_noreplace(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(CommitError::Exists),
        Err(e) => Err(e.into()),
    }
}

/// Renames `from` to `to` unless `to` exists.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        match renameat2(from, to, libc::RENAME_NOREPLACE) {
            Err(e) if exchange_unsupported(&e) => {}
            other => return other,
        }
    }
    // A hard link never replaces, then the old name goes: the same effect in two steps.
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
}

fn exchange_unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
    )
}

#[cfg(target_os = "linux")]
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call; the syscall only
    // reads them. Called through `syscall` so older C libraries without the wrapper work too.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `.<name>.<pid>.<n>.tmp` next to `path`, written, synced and given `mode`.
fn write_temp(path: &Path, text: &[u8], mode: u32) -> std::io::Result<(PathBuf, Metadata)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (dir, name) = crate::fsutil::folder_and_name(path);
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text)?;
        file.sync_all()?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.metadata()
    })();
    match result {
        Ok(meta) => Ok((tmp, meta)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The writer's pid in a temp file name of batty's (`.<name>.<pid>.<n>.tmp`).
pub(crate) fn temp_writer(name: &str) -> Option<u32> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = inner.rsplitn(3, '.');
    let counter = parts.next()?;
    let pid = parts.next()?;
    let target = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(counter) || !digits(pid) || target.is_empty() {
        return None;
    }
    pid.parse().ok()
}

/// Removes the temp files among `names` (in `dir`) whose writer is gone; returns their paths.
/// A temp file of a live process is a write in progress and stays; so does one whose pid now
/// belongs to a process that started before the file was written.
pub(crate) fn remove_stale_temps(dir: &Path, names: &[String]) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for name in names {
        let Some(pid) = temp_writer(name) else {
            continue;
        };
        let path = dir.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_file() || writer_alive(pid, meta.modified().ok()) {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Whether process `pid` may still be writing a file last modified at `written`.
fn writer_alive(pid: u32, written: Option<SystemTime>) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(raw, 0) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    // The pid is in use: by the writer, unless that process started after the file was written.
    match (process_start(pid), written) {
        (Some(start), Some(written)) => start <= written + Duration::from_secs(1),
        _ => true,
    }
}

/// When process `pid` started, from `/proc` (None where that is not available).
fn process_start(pid: u32) -> Option<SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count from its end.
    let after = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(boot)
            + Duration::from_millis(ticks * 1000 / hz),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(p: &Path) -> Snapshot {
        Snapshot::read(p).unwrap()
    }

    #[test]
    fn replace_swaps_in_new_bytes_and_keeps_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.md");
        std::fs::write(&p, "one").unwrap();
        replace(&snap(&p), b"two", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(last_commit().exchanged, "tmp dirs support RENAME_EXCHANGE");
    }

    #[test]
    fn a_write_in_place_or_a_rename_after_the_read_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.md");
        std::fs::write(&p, "one").unwrap();
        let s = snap(&p);
        std::fs::write(&p, "one!").unwrap();
        assert!(matches!(
            replace(&s, b"two", 0o644),
            Err(CommitError::Conflict)
        ));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one!");

        let s = snap(&p);
        let other = dir.path().join(".other");
        std::fs::write(&other, "one!").unwrap();
        std::fs::rename(&other, &p).unwrap();
        assert!(matches!(
            replace(&s, b"two", 0o644),
            Err(CommitError::Conflict)
        ));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one!");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_save_between_the_check_and_the_swap_is_put_back() {
        for stage in [Stage::BeforeSwap, Stage::AfterSwap] {
            for by_rename in [false, true] {
                let dir = tempfile::tempdir().unwrap();
                let p = dir.path().join("a.md");
                std::fs::write(&p, "one").unwrap();
                let s = snap(&p);
                let target = p.clone();
                let mut done = false;
                HOOK.with(|h| {
                    *h.borrow_mut() = Some(Box::new(move |at| {
                        if at == stage && !done {
                            done = true;
                            if by_rename {
                                let t = target.with_file_name("person.swp");
                                std::fs::write(&t, "person").unwrap();
                                std::fs::rename(&t, &target).unwrap();
                            } else {
                                // What `echo person > a.md` does at this moment: the old
                                // file is the one on the real name before the swap.
                                let f = if at == Stage::AfterSwap {
                                    find_tmp(target.parent().unwrap())
                                } else {
                                    target.clone()
                                };
                                std::fs::write(f, "person").unwrap();
                            }
                        }
                    }))
                });
                let result = replace(&s, b"batty", 0o644);
                HOOK.with(|h| h.borrow_mut().take());
                let kept = std::fs::read_to_string(&p).unwrap();
                let case = format!("{stage:?}, by rename: {by_rename}");
                if stage == Stage::AfterSwap && by_rename {
                    // The person's rename replaced batty's file after the swap: theirs stays,
                    // and batty's own commit saw its read file unchanged (their save was made
                    // on top of batty's, as a person reading the file now would).
                    assert!(result.is_ok(), "{case}");
                    assert_eq!(kept, "person", "{case}");
                } else {
                    assert!(matches!(result, Err(CommitError::Conflict)), "{case}");
                    assert_eq!(kept, "person", "{case}");
                }
                let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
                assert_eq!(left.len(), 1, "{case}: temp files left");
            }
        }
    }

    fn find_tmp(dir: &Path) -> PathBuf {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".tmp"))
            .unwrap()
    }

    #[test]
    fn symlinks_are_written_through() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let target = dir.path().join("real/a.md");
        std::fs::write(&target, "one").unwrap();
        let link = dir.path().join("a.md");
        std::os::unix::fs::symlink("real/a.md", &link).unwrap();
        let s = snap(&link);
        assert_eq!(s.real, std::fs::canonicalize(&target).unwrap());
        replace(&s, b"two", 0o644).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "two");
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.md");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(matches!(
            Snapshot::read(&fifo),
            Err(ReadError::NotAFile("a FIFO"))
        ));
        let sock = dir.path().join("s.md");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(matches!(Snapshot::read(&sock), Err(ReadError::NotAFile(_))));
        std::fs::create_dir(dir.path().join("d.md")).unwrap();
        assert!(matches!(
            Snapshot::read(&dir.path().join("d.md")),
            Err(ReadError::NotAFile("a directory"))
        ));
        let link = dir.path().join("l.md");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(matches!(
            Snapshot::read(&link),
            Err(ReadError::NotAFile("a FIFO"))
        ));
        assert!(matches!(
            Snapshot::read(&dir.path().join("none.md")),
            Err(ReadError::Missing)
        ));
    }

    #[test]
    fn create_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.md");
        create_new(&p, b"first", 0o644).unwrap();
        assert!(matches!(
            create_new(&p, b"second", 0o644),
            Err(CommitError::Exists)
        ));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_names_and_their_writers() {
        assert_eq!(temp_writer(".009-task.md.26663.8.tmp"), Some(26663));
        assert_eq!(temp_writer(".config.yml.12.0.tmp"), Some(12));
        assert_eq!(temp_writer(".a.b.tmp"), None);
        assert_eq!(temp_writer("009-task.md"), None);
        assert_eq!(temp_writer(".x.md.12.tmp"), None);
    }

    #[test]
    fn only_temps_of_gone_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // A child that has exited and been reaped: its pid is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let mut alive = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let names = vec![
            format!(".001-a.md.{gone}.0.tmp"),
            format!(".001-a.md.{}.1.tmp", alive.id()),
            format!(".001-a.md.{}.2.tmp", std::process::id()),
            "001-a.md".to_owned(),
        ];
        for n in &names {
            std::fs::write(dir.path().join(n), "x").unwrap();
        }
        let removed = remove_stale_temps(dir.path(), &names);
        alive.kill().unwrap();
        alive.wait().unwrap();
        assert_eq!(removed, vec![dir.path().join(&names[0])]);
        for n in &names[1..] {
            assert!(dir.path().join(n).exists(), "{n} kept");
        }
    }

    #[test]
    fn a_reused_pid_does_not_keep_an_old_temp() {
        let dir = tempfile::tempdir().unwrap();
        let mut alive = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let name = format!(".001-a.md.{}.0.tmp", alive.id());
        let path = dir.path().join(&name);
        std::fs::write(&path, "x").unwrap();
        // Written long before that process started: not its file.
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let removed = remove_stale_temps(dir.path(), &[name]);
        alive.kill().unwrap();
        alive.wait().unwrap();
        assert_eq!(removed, vec![path]);
    }
}
