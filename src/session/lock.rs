//! The supervisor lock, `.batty/run/<phase>/supervisor.lock` (one supervisor per board,
//! whatever the tmux server), and the same kind of lock for `batty work` itself. A lock is an
//! advisory `flock` on the file, held for the life of the process; the file says who holds it
//! (pid, tmux socket, session) so that anyone refused can be told where the holder runs.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::proc::shell_word;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// The tmux server it works with, as a socket path ([`super::socket::socket_path`]).
    pub socket: PathBuf,
    /// The tmux session name (`batty-<phase>`).
    pub session: String,
}

impl Holder {
    /// This process, working with `server`'s session `session`.
    pub fn current(server: &crate::tmux::Server, session: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            socket: super::socket::current_socket_path(server),
            session: session.to_owned(),
        }
    }

    /// `tmux -S <socket> attach -t <session>`.
    pub fn attach_command(&self) -> String {
        format!(
            "tmux -S {} attach -t {}",
            shell_word(&self.socket.to_string_lossy()),
            shell_word(&format!("={}", self.session))
        )
    }

    /// One sentence for a person: who, where, and how to get there.
    pub fn describe(&self) -> String {
        format!(
            "it is held by pid {} on tmux socket `{}` (session `{}`); attach with `{}`",
            self.pid,
            self.socket.display(),
            crate::text::one_line(&self.session),
            self.attach_command()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("`{}` is locked: {}", path.display(), holder.as_ref().map(Holder::describe).unwrap_or_else(|| "its holder did not say who it is".to_owned()))]
    Held {
        path: PathBuf,
        holder: Option<Holder>,
    },
    #[error("cannot lock `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl crate::error::Diagnose for LockError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::User
    }
    fn hint(&self) -> Option<String> {
        match self {
            LockError::Held { .. } => Some("wait for it to end, or stop it first".to_owned()),
            LockError::Io { .. } => None,
        }
    }
}

/// How long a taker keeps trying while the lock is busy: a reader's peek ([`holder`]) holds
/// it for microseconds and must not make a supervisor fail to start.
const PEEK_GRACE: Duration = Duration::from_millis(100);

/// Takes the lock at `path` for as long as the returned file is open, and writes `holder`
/// into it. Refused with [`LockError::Held`] (naming the holder) when a live process has it.
pub fn take(path: &Path, holder: &Holder) -> Result<File, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    if !crate::fsutil::lock_within(&file, PEEK_GRACE).map_err(io)? {
        return Err(LockError::Held {
            path: path.to_owned(),
            holder: read_holder(&mut file),
        });
    }
    // A reader accepts only a complete line of JSON, so one that looks mid-write sees
    // nothing and tries again: it never takes half a record for the holder.
    let mut line = serde_json::to_vec(holder).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(&line).map_err(io)?;
    Ok(file)
}

/// The live holder of the lock at `path`, if any. A file nobody holds (a holder that died
/// leaves its record behind) is no holder.
pub fn holder(path: &Path) -> Option<Holder> {
    let mut file = File::open(path).ok()?;
    match file.try_lock_shared() {
        // Nobody holds it; dropping the file releases our shared lock at once.
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => Some(read_holder(&mut file).unwrap_or(Holder {
            pid: 0,
            socket: PathBuf::new(),
            session: String::new(),
        })),
        Err(TryLockError::Error(_)) => None,
    }
}

/// The record in a held lock, waiting briefly for a holder that has just taken it.
fn read_holder(file: &mut File) -> Option<Holder> {
    for _ in 0..20 {
        let mut text = String::new();
        if file.rewind().is_ok()
            && file.read_to_string(&mut text).is_ok()
            && let Some(line) = text.strip_suffix('\n')
            && let Ok(holder) = serde_json::from_str(line)
        {
            return Some(holder);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// What a `batty work` that found `holder` on the supervisor lock may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No supervisor runs, or it is the one in our session: go on (and repair).
    Proceed,
    /// Another supervisor has the board: refuse, naming it.
    Refuse(Holder),
}

/// The decision, pure: a holder is ours when it is on our tmux server, in our session (which
/// exists), and — when we know the pid of our session's supervisor pane — that process.
pub fn judge(
    holder: Option<&Holder>,
    our_socket: &Path,
    our_session: Option<&str>,
    our_supervisor_pid: Option<u32>,
) -> Verdict {
    let Some(holder) = holder else {
        return Verdict::Proceed;
    };
    let ours = super::socket::same_socket(&holder.socket, our_socket)
        && our_session == Some(holder.session.as_str())
        && our_supervisor_pid.is_none_or(|pid| pid == holder.pid);
    if ours {
        Verdict::Proceed
    } else {
        Verdict::Refuse(holder.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(socket: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            socket: socket.into(),
            session: "batty-v1".into(),
        }
    }

    #[test]
    fn holder_is_live_only_while_the_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/v1/supervisor.lock");
        assert_eq!(holder(&path), None);
        let h = me("/tmp/s");
        let file = take(&path, &h).unwrap();
        assert_eq!(holder(&path), Some(h.clone()));
        let err = take(&path, &me("/tmp/other")).unwrap_err();
        assert!(
            matches!(&err, LockError::Held { holder: Some(x), .. } if *x == h),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("attach with `tmux -S /tmp/s attach -t =batty-v1`")
        );
        drop(file);
        // A process another test thread forks meanwhile shares the lock until it execs.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while holder(&path).is_some() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(
            holder(&path),
            None,
            "the record of a dead holder is no holder"
        );
        take(&path, &me("/tmp/other")).unwrap();
    }

    #[test]
    fn a_half_written_record_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        std::fs::write(&path, "{\"pid\":1,\"sock").unwrap();
        let mut f = File::open(&path).unwrap();
        assert_eq!(read_holder(&mut f), None);
    }

    #[test]
    fn judging_holders() {
        let ours = Holder {
            pid: 42,
            socket: "/tmp/a".into(),
            session: "batty-v1".into(),
        };
        let sock = Path::new("/tmp/a");
        assert_eq!(judge(None, sock, None, None), Verdict::Proceed);
        assert_eq!(
            judge(Some(&ours), sock, Some("batty-v1"), Some(42)),
            Verdict::Proceed
        );
        assert_eq!(
            judge(Some(&ours), sock, Some("batty-v1"), None),
            Verdict::Proceed
        );
        for (socket, session, pid) in [
            ("/tmp/b", Some("batty-v1"), Some(42)),
            ("/tmp/a", None, None),
            ("/tmp/a", Some("batty-v2"), None),
            ("/tmp/a", Some("batty-v1"), Some(7)),
        ] {
            assert_eq!(
                judge(Some(&ours), Path::new(socket), session, pid),
                Verdict::Refuse(ours.clone()),
                "{socket} {session:?} {pid:?}"
            );
        }
    }
}
