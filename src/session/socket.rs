//! Where a tmux server's socket lives: the path tmux itself connects to for `-S`, `-L` and
//! the default server, so that two servers can be told apart (another `-L`, `-S` or
//! `TMUX_TMPDIR`) and a path too long for a unix socket is refused before tmux is run.

use std::path::{Path, PathBuf};

use crate::tmux::Server;

/// The longest socket path the system accepts (`sun_path` less its terminating NUL): 107
/// bytes on Linux, 103 on macOS.
pub fn max_socket_path() -> usize {
    // SAFETY: `sockaddr_un` is plain old data; all-zero is a valid value.
    let addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_path.len() - 1
}

/// The socket `server` reaches from a process with this environment: `-S` as given (made
/// absolute), `-L name` and the default server in `$TMUX_TMPDIR/tmux-<uid>/` (`/tmp` when
/// unset); the default server is the one named by `$TMUX` when inside tmux, as tmux does.
pub fn socket_path(server: &Server, env: &dyn Fn(&str) -> Option<String>, uid: u32) -> PathBuf {
    let dir = || {
        let base = env("TMUX_TMPDIR")
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/tmp".to_owned());
        let base = Path::new(&base);
        // tmux resolves the folder (`realpath`) before adding its own part.
        let base = base.canonicalize().unwrap_or_else(|_| base.to_owned());
        base.join(format!("tmux-{uid}"))
    };
    match server {
        Server::Path(path) => absolute(path),
        Server::Name(name) => dir().join(name),
        Server::Default => match env("TMUX").filter(|t| !t.is_empty()) {
            Some(tmux) => PathBuf::from(tmux.split(',').next().unwrap_or_default()),
            None => dir().join("default"),
        },
    }
}

/// [`socket_path`] for this process.
pub fn current_socket_path(server: &Server) -> PathBuf {
    // SAFETY: `getuid` has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    socket_path(server, &|k| std::env::var(k).ok(), uid)
}

/// A socket path the system cannot bind or connect to.
#[derive(Debug, thiserror::Error)]
#[error(
    "the tmux socket path `{}` is {len} bytes long; unix sockets allow at most {max}",
    path.display()
)]
pub struct TooLong {
    pub path: PathBuf,
    pub len: usize,
    pub max: usize,
    /// What chose the path: `tmux.socket`, `BATTY_TMUX_SOCKET` or `TMUX_TMPDIR`.
    pub from: &'static str,
}

impl crate::error::Diagnose for TooLong {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::User
    }
    fn hint(&self) -> Option<String> {
        Some(match self.from {
            "tmux.socket" => "set a shorter `tmux.socket` in .batty/config.yml: a name such as \
                              `batty` (tmux keeps it in its own folder) or a path under /tmp"
                .to_owned(),
            var => format!("point `{var}` at a shorter path, e.g. under /tmp"),
        })
    }
}

/// Refuses a socket path longer than [`max_socket_path`] before any tmux call (tmux would
/// fail with a bare "File name too long").
pub fn check_length(server: &Server, config_socket: Option<&str>) -> Result<PathBuf, TooLong> {
    let path = current_socket_path(server);
    let len = path.as_os_str().len();
    let max = max_socket_path();
    if len <= max {
        return Ok(path);
    }
    let from_env = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let from = match server {
        Server::Path(_) if from_env(crate::tmux::SOCKET_ENV) => "BATTY_TMUX_SOCKET",
        Server::Path(_) => "tmux.socket",
        Server::Name(_) if config_socket.is_some() && !from_env("TMUX_TMPDIR") => "tmux.socket",
        _ if from_env("TMUX") && matches!(server, Server::Default) => "TMUX",
        _ => "TMUX_TMPDIR",
    };
    Err(TooLong {
        path,
        len,
        max,
        from,
    })
}

/// True when two socket paths name the same server.
pub fn same_socket(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

fn absolute(path: &Path) -> PathBuf {
    let path = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_owned())
    };
    // The socket may not exist yet; its folder usually does.
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|d| d.join(name))
            .unwrap_or(path.clone()),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn servers_resolve_as_tmux_does() {
        let none = env(&[]);
        assert_eq!(
            socket_path(&Server::Default, &none, 1000),
            Path::new("/tmp/tmux-1000/default")
        );
        assert_eq!(
            socket_path(&Server::Name("b".into()), &none, 7),
            Path::new("/tmp/tmux-7/b")
        );
        let inside = env(&[("TMUX", "/x/tmux-1/work,123,0"), ("TMUX_TMPDIR", "/nope")]);
        assert_eq!(
            socket_path(&Server::Default, &inside, 1),
            Path::new("/x/tmux-1/work")
        );
        assert_eq!(
            socket_path(&Server::Name("b".into()), &inside, 1),
            Path::new("/nope/tmux-1/b"),
            "-L ignores $TMUX"
        );
        assert_eq!(
            socket_path(&Server::Path("/nowhere/s".into()), &none, 1),
            Path::new("/nowhere/s")
        );
        #[cfg(target_os = "linux")]
        assert_eq!(max_socket_path(), 107);
    }
}
