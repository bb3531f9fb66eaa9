//! Where the demo lives and how it goes away: a temp folder of its own holding the tmux
//! server's socket (and, unless the user chose a folder, the demo repository), and a guard
//! that on every way out (success, error, interrupt, panic) stops that server, waits until
//! every process started under it has ended, and removes what the demo made.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Context as _, Result, user};

/// The demo's folders. Dropping it cleans up.
pub struct Place {
    /// The temp folder the demo made for itself.
    root: PathBuf,
    /// The demo repository: `<root>/repo`, or the folder the user named.
    pub repo: PathBuf,
    /// The demo's own tmux server socket, `<root>/tmux.sock`.
    pub socket: PathBuf,
    /// Keep the repository when it is inside `root`.
    keep_repo: bool,
}

impl Place {
    /// A new temp folder (in `$TMPDIR`) for the socket, and the repository's folder: `dir`
    /// when given (it must not exist), else inside the temp folder.
    pub fn create(dir: Option<PathBuf>, keep: bool) -> Result<Place> {
        if let Some(dir) = &dir
            && dir.exists()
        {
            return Err(user(format!(
                "`{}` already exists; the demo needs a new folder",
                dir.display()
            )));
        }
        let tmp = std::env::temp_dir();
        let root = make_unique_dir(&tmp)?;
        let mut place = Place {
            repo: root.join("repo"),
            socket: root.join("tmux.sock"),
            root,
            keep_repo: keep,
        };
        let max = crate::session::socket::max_socket_path();
        let len = place.socket.as_os_str().len();
        if len > max {
            return Err(crate::error::user_hint(
                format!(
                    "the demo's tmux socket `{}` would be {len} bytes long; unix sockets allow \
                     at most {max}",
                    place.socket.display()
                ),
                "point TMPDIR at a shorter folder, e.g. `TMPDIR=/tmp batty demo`",
            ));
        }
        if let Some(dir) = dir {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            place.repo = dir.canonicalize().unwrap_or(dir);
        } else {
            std::fs::create_dir(&place.repo)
                .with_context(|| format!("cannot create {}", place.repo.display()))?;
        }
        Ok(place)
    }

    /// Whether the repository stays after the demo.
    pub fn keeps_repo(&self) -> bool {
        self.keep_repo || !self.repo.starts_with(&self.root)
    }

    /// What every process started for the demo has in its environment.
    pub fn marker(&self) -> String {
        marker(&self.socket)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        stop_server(&self.socket);
        end_processes(&self.marker(), Duration::from_secs(5));
        let removed = if self.keeps_repo() && self.repo.starts_with(&self.root) {
            std::fs::remove_file(&self.socket).or_else(ignore_missing)
        } else {
            std::fs::remove_dir_all(&self.root).or_else(ignore_missing)
        };
        if let Err(err) = removed {
            eprintln!(
                "warning: could not remove {}: {err}",
                crate::text::escape_control(&self.root.to_string_lossy())
            );
        }
    }
}

fn ignore_missing(err: std::io::Error) -> std::io::Result<()> {
    if err.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(err)
    }
}

/// `<tmp>/batty-demo-<pid>-<n>`, made by us (never one that was there before).
fn make_unique_dir(tmp: &Path) -> Result<PathBuf> {
    let pid = std::process::id();
    for n in 0..1000 {
        let dir = tmp.join(format!("batty-demo-{pid}-{n}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir.canonicalize().unwrap_or(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(crate::error::user_hint(
                    format!("cannot create a folder in {}: {e}", tmp.display()),
                    "point TMPDIR at a writable folder",
                ));
            }
        }
    }
    Err(user(format!(
        "cannot find a free `batty-demo-*` name in {}",
        tmp.display()
    )))
}

/// The environment entry that ties a process to the demo's tmux server: the server is
/// started with it and hands it to every pane, and so to everything run in them.
pub fn marker(socket: &Path) -> String {
    format!("{}={}", crate::tmux::SOCKET_ENV, socket.display())
}

fn stop_server(socket: &Path) {
    let tmux = crate::tmux::Tmux::new(crate::tmux::Server::Path(socket.to_owned()));
    let _ = tmux.cmd().arg("kill-server").run();
}

/// Waits until no process but ours carries `marker`; what is left after `grace` is
/// terminated, then killed.
fn end_processes(marker: &str, grace: Duration) {
    for signal in [None, Some(libc::SIGTERM), Some(libc::SIGKILL)] {
        if let Some(sig) = signal {
            for pid in processes_with(marker) {
                // SAFETY: kill(2) sends a signal to a pid; no memory is involved.
                unsafe {
                    libc::kill(pid as libc::pid_t, sig);
                }
            }
        }
        let deadline = Instant::now() + grace;
        // Processes end at their own pace after the server hangs up on them; /proc has no
        // event for that, so look again until they are gone.
        while !processes_with(marker).is_empty() {
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if processes_with(marker).is_empty() {
            return;
        }
    }
}

/// Every process (but this one) whose environment holds `marker` exactly.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| environ_has(&env, marker) && crate::tmux::process_running(*pid))
        })
        .collect()
}

/// Whether a NUL-separated environment block holds `entry` as one whole entry.
fn environ_has(environ: &[u8], entry: &str) -> bool {
    environ.split(|&b| b == 0).any(|e| e == entry.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_matches_whole_entries_only() {
        let m = marker(Path::new("/tmp/d/tmux.sock"));
        assert_eq!(m, "BATTY_TMUX_SOCKET=/tmp/d/tmux.sock");
        assert!(environ_has(
            b"A=1\0BATTY_TMUX_SOCKET=/tmp/d/tmux.sock\0B=2\0",
            &m
        ));
        assert!(!environ_has(b"BATTY_TMUX_SOCKET=/tmp/d/tmux.sock2\0", &m));
        assert!(!environ_has(b"XBATTY_TMUX_SOCKET=/tmp/d/tmux.sock\0", &m));
    }

    #[test]
    fn a_process_with_the_marker_is_found_and_ended() {
        let dir = tempfile::tempdir().unwrap();
        let m = marker(&dir.path().join("tmux.sock"));
        let (k, v) = m.split_once('=').unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .env(k, v)
            .spawn()
            .unwrap();
        // Its environment shows in /proc once its exec is through, a moment after spawn.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut found = processes_with(&m);
        while found.is_empty() && Instant::now() < deadline {
            std::thread::yield_now();
            found = processes_with(&m);
        }
        assert_eq!(found, vec![child.id()]);
        // Reaped by us once killed: `process_running` does not count a zombie.
        let waiter = std::thread::spawn(move || child.wait().unwrap());
        end_processes(&m, Duration::from_millis(100));
        assert!(!waiter.join().unwrap().success());
        assert!(processes_with(&m).is_empty());
    }

    #[test]
    fn unique_folders_in_the_temp_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = make_unique_dir(tmp.path()).unwrap();
        assert!(dir.starts_with(tmp.path().canonicalize().unwrap()));
        let again = make_unique_dir(tmp.path()).unwrap();
        assert_ne!(dir, again);
    }
}
