//! `batty logs`: an agent's event log (or its raw pty log), optionally followed. Following
//! waits on inotify: nothing runs while the file does not change, and rotation (the file
//! renamed away and made anew), truncation and a file that appears later are all followed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Context as _, Result, user, user_hint};
use crate::paths::validate_agent;
use crate::session::RunState;

/// Show an agent's event log: what the supervisor did and saw (tasks, answers, states); without
/// an agent, the supervisor's own log (configuration, board problems, merge queue faults).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The agent's phase.
    pub phase: String,
    /// The agent's name (see `batty status <phase>`).
    pub agent: Option<String>,
    /// Keep printing what is appended (until interrupted).
    #[arg(long, short)]
    pub follow: bool,
    /// Show the agent's terminal output (`<agent>.pty.log`) instead, escape codes and all.
    #[arg(long)]
    pub raw: bool,
}

pub fn run(args: Args) -> Result<()> {
    crate::paths::validate_phase(&args.phase)?;
    let project = super::project()?;
    let phase = args.phase.as_str();
    let Some(agent) = args.agent.as_deref() else {
        if args.raw {
            return Err(user_hint(
                "`--raw` shows an agent's terminal output",
                format!("name the agent: `batty logs {phase} <agent> --raw`"),
            ));
        }
        if !args.follow {
            super::known_phase(&project, phase)?;
        }
        return show(project.supervisor_log(phase), args.follow);
    };
    validate_agent(agent)?;
    let path = if args.raw {
        project.pty_log(phase, agent)
    } else {
        project.event_log(phase, agent)
    };
    if !args.follow {
        super::known_phase(&project, phase)?;
        // A followed log may be asked for before the run state names the agent (log panes
        // start with their window); a one-off look at an unknown agent is a mistake.
        let known =
            RunState::load(&project.run_state(phase))?.is_some_and(|s| s.agent(agent).is_some());
        if !known && !path.exists() {
            return Err(user_hint(
                format!("no agent `{agent}` in phase `{phase}`"),
                format!("see the agents with `batty status {phase}`"),
            ));
        }
    }
    show(path, args.follow)
}

fn show(path: PathBuf, follow_on: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut log = Follower::new(path);
    log.catch_up(&mut out)?;
    if follow_on {
        follow(&mut log, &mut out)?;
    }
    Ok(())
}

/// What the watcher is on: the file itself (by inode, so a rotation is noticed), or its
/// folder while the file does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    File(u64, u64),
    Folder,
}

/// Prints what is appended to `log`, forever: a pass over the file after each inotify event,
/// and no wake-up at all between them.
fn follow(log: &mut Follower, out: &mut impl Write) -> Result<()> {
    use notify::Watcher as _;
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        // Opens (the supervisor opens the event log for every line it appends, and so do we)
        // are not changes; the write that follows is.
        if let Ok(e) = &ev
            && matches!(e.kind, notify::EventKind::Access(k)
                if k != notify::event::AccessKind::Close(notify::event::AccessMode::Write))
        {
            return;
        }
        let _ = tx.send(());
    })
    .map_err(|e| watch_error(&log.path, e))?;
    let folder = log
        .path
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut watched: Option<Watched> = None;
    loop {
        let want = match std::fs::metadata(&log.path) {
            Ok(m) => Watched::File(m.dev(), m.ino()),
            Err(_) => Watched::Folder,
        };
        if watched != Some(want) {
            match watched {
                Some(Watched::File(..)) => {
                    let _ = watcher.unwatch(&log.path);
                }
                Some(Watched::Folder) => {
                    let _ = watcher.unwatch(&folder);
                }
                None => {}
            }
            let added = match want {
                Watched::File(..) => watcher.watch(&log.path, notify::RecursiveMode::NonRecursive),
                Watched::Folder => {
                    std::fs::create_dir_all(&folder)
                        .with_context(|| format!("cannot create `{}`", folder.display()))?;
                    watcher.watch(&folder, notify::RecursiveMode::NonRecursive)
                }
            };
            match added {
                Ok(()) => watched = Some(want),
                // The file went between the look and the watch: look again.
                Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => watched = None,
                Err(e) => return Err(watch_error(&log.path, e)),
            }
            // What changed before the watch was in place is caught up now.
            log.catch_up(out)?;
            continue;
        }
        if rx.recv().is_err() {
            return Ok(());
        }
        while rx.try_recv().is_ok() {}
        log.catch_up(out)?;
    }
}

fn watch_error(path: &Path, e: notify::Error) -> crate::error::Error {
    let error = user(format!("cannot watch `{}`: {e}", path.display()));
    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
        error.hint("raise `fs.inotify.max_user_watches` (sysctl)")
    } else {
        error
    }
}

/// A log file read from where it was left, across rotation and truncation.
struct Follower {
    path: PathBuf,
    file: Option<File>,
    /// `(dev, ino)` of the open file.
    id: (u64, u64),
    pos: u64,
}

impl Follower {
    fn new(path: PathBuf) -> Follower {
        Follower {
            path,
            file: None,
            id: (0, 0),
            pos: 0,
        }
    }

    /// Prints what is new: the rest of a file rotated away first, then the file now at the
    /// path (from its start when it is new or was truncated).
    fn catch_up(&mut self, out: &mut impl Write) -> Result<()> {
        let now = std::fs::metadata(&self.path)
            .ok()
            .map(|m| ((m.dev(), m.ino()), m.len()));
        match now {
            Some((id, _)) if self.file.is_some() && id != self.id => {
                self.drain(out)?;
                self.open(id)?;
            }
            Some((_, len)) if self.file.is_some() && len < self.pos => self.pos = 0,
            Some((id, _)) if self.file.is_none() => self.open(id)?,
            None if self.file.is_some() => {
                self.drain(out)?;
                self.file = None;
                return Ok(());
            }
            _ => {}
        }
        self.drain(out)
    }

    fn open(&mut self, id: (u64, u64)) -> Result<()> {
        match File::open(&self.path) {
            Ok(f) => {
                self.file = Some(f);
                self.id = id;
                self.pos = 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.file = None,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read `{}`", self.path.display()));
            }
        }
        Ok(())
    }

    /// Prints the open file from `pos` to its end.
    fn drain(&mut self, out: &mut impl Write) -> Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let what = || format!("cannot read `{}`", self.path.display());
        file.seek(SeekFrom::Start(self.pos)).with_context(what)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).with_context(what)?;
        if !bytes.is_empty() {
            out.write_all(&bytes)?;
            out.flush()?;
            self.pos += bytes.len() as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_appends_rotation_truncation_and_late_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut f = Follower::new(path.clone());
        let mut out = Vec::new();
        f.catch_up(&mut out).unwrap();
        assert!(out.is_empty(), "a missing file prints nothing");
        std::fs::write(&path, "one\n").unwrap();
        f.catch_up(&mut out).unwrap();
        let mut append = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        append.write_all(b"two\n").unwrap();
        f.catch_up(&mut out).unwrap();
        // Rotation: the last lines of the old file, then the new one from its start.
        append.write_all(b"three\n").unwrap();
        std::fs::rename(&path, dir.path().join("a.log.old")).unwrap();
        std::fs::write(&path, "four\n").unwrap();
        f.catch_up(&mut out).unwrap();
        std::fs::write(&path, "5\n").unwrap();
        f.catch_up(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "one\ntwo\nthree\nfour\n5\n"
        );
    }
}
