//! A thin typed wrapper over the tmux binary: one [`Tmux`] value bound to a server, every call
//! through [`crate::proc::Cmd`] with its exit status checked and failures classified, targets
//! by id (`$session`, `@window`, `%pane`), text delivered literally through paste buffers.

mod error;
mod pane;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub use error::TmuxError;
pub use pane::{Pane, Session, process_running};

use crate::proc::Cmd;

/// Environment variable naming a tmux socket path; overrides config `tmux.socket`.
pub const SOCKET_ENV: &str = "BATTY_TMUX_SOCKET";

/// Which tmux server to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// The user's normal server (what a bare `tmux` reaches).
    Default,
    /// `tmux -L name`.
    Name(String),
    /// `tmux -S path`.
    Path(PathBuf),
}

impl Server {
    /// `BATTY_TMUX_SOCKET` (a path) first, then config `tmux.socket` (a name, or a path when
    /// it contains `/`), else the default server.
    pub fn resolve(env_socket: Option<&str>, config_socket: Option<&str>) -> Server {
        if let Some(path) = env_socket.filter(|s| !s.is_empty()) {
            return Server::Path(PathBuf::from(path));
        }
        match config_socket.filter(|s| !s.is_empty()) {
            Some(s) if s.contains('/') => Server::Path(PathBuf::from(s)),
            Some(s) => Server::Name(s.to_owned()),
            None => Server::Default,
        }
    }

    fn args(&self) -> Vec<OsString> {
        match self {
            Server::Default => Vec::new(),
            Server::Name(name) => vec!["-L".into(), name.into()],
            Server::Path(path) => vec!["-S".into(), path.into()],
        }
    }

    /// How the server is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Server::Default => "the default socket".to_owned(),
            Server::Name(name) => format!("socket `{name}` (`-L`)"),
            Server::Path(path) => format!("socket `{}`", path.display()),
        }
    }
}

/// Where an option is set.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Global,
    Session(&'a str),
    Window(&'a str),
    Pane(&'a str),
}

/// What a new (or respawned) pane runs. The program is executed directly (argv, no shell),
/// wrapped in `env` so variables can be removed as well as set: tmux puts `TMUX` and
/// `TMUX_PANE` into every pane, and only a wrapper can take them out again.
#[derive(Debug, Clone, Default)]
pub struct PaneSpec {
    pub cwd: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub unset: Vec<String>,
}

impl PaneSpec {
    /// The argv tmux executes.
    pub fn command(&self) -> Vec<String> {
        if self.env.is_empty() && self.unset.is_empty() {
            return self.argv.clone();
        }
        let mut out = vec!["env".to_owned()];
        for name in &self.unset {
            out.push("-u".to_owned());
            out.push(name.clone());
        }
        for (k, v) in &self.env {
            out.push(format!("{k}={v}"));
        }
        if self.argv.first().is_some_and(|p| p.contains('=')) {
            // `env` would read `A=b` as another assignment.
            out.push("--".to_owned());
        }
        out.extend(self.argv.iter().cloned());
        out
    }
}

/// Ids of a pane created with its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub session_id: String,
    pub window_id: String,
    pub pane_id: String,
}

/// Options applied to a new window in the same tmux call that creates it, so they are in
/// place before its command can exit or print.
#[derive(Debug, Clone, Default)]
pub struct WindowSetup {
    /// Keep the pane (dead) when its command exits, so the exit status can be read.
    pub remain_on_exit: bool,
    /// Shell command that receives the pane's output (`pipe-pane -o`).
    pub pipe_to: Option<String>,
}

/// Escapes text that tmux expands as a format (`#{...}`, `#(...)`): window names, `-c`
/// folders, pipe-pane and `#()` commands.
pub fn escape_format(text: &str) -> String {
    text.replace('#', "##")
}

const CREATED_FORMAT: &str = "#{session_id}\t#{window_id}\t#{pane_id}";

/// A tmux server and the calls batty makes to it.
#[derive(Debug, Clone)]
pub struct Tmux {
    server: Server,
}

impl Tmux {
    pub fn new(server: Server) -> Tmux {
        Tmux { server }
    }

    /// The server from `BATTY_TMUX_SOCKET` or config `tmux.socket`.
    pub fn from_config(config: &crate::config::TmuxConfig) -> Tmux {
        let env = std::env::var(SOCKET_ENV).ok();
        Tmux::new(Server::resolve(env.as_deref(), config.socket.as_deref()))
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    /// `tmux` with the server flags, for callers that need a command this wrapper lacks.
    pub fn cmd(&self) -> Cmd {
        Cmd::new("tmux").args(self.server.args())
    }

    fn run_cmd(&self, cmd: Cmd) -> Result<String, TmuxError> {
        cmd.read()
            .map_err(|e| TmuxError::classify(e, &self.server.describe()))
    }

    fn run<I, S>(&self, args: I) -> Result<String, TmuxError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.run_cmd(self.cmd().args(args))
    }

    /// `tmux -V`, e.g. `tmux 3.3a`.
    pub fn version(&self) -> Result<String, TmuxError> {
        self.run_cmd(Cmd::new("tmux").arg("-V"))
    }

    /// Fails with [`TmuxError::TooOld`] below tmux 3.0 (builds like `master` are accepted).
    pub fn require_version(&self) -> Result<(), TmuxError> {
        let version = self.version()?;
        match parse_version(&version) {
            Some((major, _)) if major < 3 => Err(TmuxError::TooOld { found: version }),
            _ => Ok(()),
        }
    }

    /// Every session on the server; none when the server is not running.
    pub fn sessions(&self) -> Result<Vec<Session>, TmuxError> {
        match self.run(["list-sessions", "-F", pane::SESSION_FORMAT]) {
            Ok(out) => pane::parse_sessions(&out),
            Err(e) if e.is_absent() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The id of the session with exactly this name.
    pub fn find_session(&self, name: &str) -> Result<Option<String>, TmuxError> {
        Ok(self
            .sessions()?
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| s.id))
    }

    /// A detached session whose first window runs `spec`; starts the server if needed.
    pub fn new_session(
        &self,
        name: &str,
        window_name: &str,
        spec: &PaneSpec,
        setup: &WindowSetup,
    ) -> Result<Created, TmuxError> {
        let mut args: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-x".into(),
            "200".into(),
            "-y".into(),
            "50".into(),
            "-s".into(),
            escape_format(name),
            "-n".into(),
            escape_format(window_name),
            "-c".into(),
            escape_format(&spec.cwd.to_string_lossy()),
            "-P".into(),
            "-F".into(),
            CREATED_FORMAT.into(),
        ];
        args.extend(spec.command());
        // Chained commands target the new session's only window.
        push_setup(&mut args, None, setup);
        let out = self.run(args)?;
        self.parse_created(&out)
    }

    /// A window at `index` of session `session_id` (never made current) running `spec`.
    pub fn new_window(
        &self,
        session_id: &str,
        index: u32,
        name: &str,
        spec: &PaneSpec,
        setup: &WindowSetup,
    ) -> Result<Created, TmuxError> {
        let target = format!("{session_id}:{index}");
        let mut args: Vec<String> = vec![
            "new-window".into(),
            "-d".into(),
            "-t".into(),
            target.clone(),
            "-n".into(),
            escape_format(name),
            "-c".into(),
            escape_format(&spec.cwd.to_string_lossy()),
            "-P".into(),
            "-F".into(),
            CREATED_FORMAT.into(),
        ];
        args.extend(spec.command());
        // `new-window -d` leaves the session's current window as the default target of
        // chained commands, so they name the new window by session id and index.
        push_setup(&mut args, Some(&target), setup);
        let out = self.run(args)?;
        self.parse_created(&out)
    }

    fn parse_created(&self, out: &str) -> Result<Created, TmuxError> {
        let line = out.lines().next().unwrap_or_default();
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            [s, w, p] if s.starts_with('$') && w.starts_with('@') && p.starts_with('%') => {
                Ok(Created {
                    session_id: (*s).to_owned(),
                    window_id: (*w).to_owned(),
                    pane_id: (*p).to_owned(),
                })
            }
            _ => Err(TmuxError::Parse {
                cmdline: "tmux new-window".into(),
                output: out.to_owned(),
            }),
        }
    }

    /// A pane of `lines` rows below `pane_id`, not made active; returns its id.
    pub fn split_window(
        &self,
        pane_id: &str,
        lines: u32,
        spec: &PaneSpec,
    ) -> Result<String, TmuxError> {
        let mut args: Vec<String> = vec![
            "split-window".into(),
            "-v".into(),
            "-d".into(),
            "-l".into(),
            lines.to_string(),
            "-t".into(),
            pane_id.into(),
            "-c".into(),
            escape_format(&spec.cwd.to_string_lossy()),
            "-P".into(),
            "-F".into(),
            "#{pane_id}".into(),
        ];
        args.extend(spec.command());
        let out = self.run(args)?;
        if out.starts_with('%') {
            Ok(out)
        } else {
            Err(TmuxError::Parse {
                cmdline: "tmux split-window".into(),
                output: out,
            })
        }
    }

    /// Restarts a pane (killing what runs there) with `spec`.
    pub fn respawn_pane(&self, pane_id: &str, spec: &PaneSpec) -> Result<(), TmuxError> {
        let mut args: Vec<String> = vec![
            "respawn-pane".into(),
            "-k".into(),
            "-t".into(),
            pane_id.into(),
            "-c".into(),
            escape_format(&spec.cwd.to_string_lossy()),
        ];
        args.extend(spec.command());
        self.run(args).map(drop)
    }

    /// All panes of one session, in one call.
    pub fn list_panes_session(&self, session_id: &str) -> Result<Vec<Pane>, TmuxError> {
        let out = self.run([
            "list-panes",
            "-s",
            "-t",
            session_id,
            "-F",
            pane::PANE_FORMAT,
        ])?;
        pane::parse_panes(&out)
    }

    /// All panes on the server, in one call; none when the server is not running.
    pub fn list_panes_all(&self) -> Result<Vec<Pane>, TmuxError> {
        match self.run(["list-panes", "-a", "-F", pane::PANE_FORMAT]) {
            Ok(out) => pane::parse_panes(&out),
            Err(TmuxError::NoServer { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Types `text` into a pane literally (a paste, bracketed when the program asked for it);
    /// nothing in it is read as a key name, option or command separator. No Enter.
    pub fn paste_text(&self, pane_id: &str, text: &str) -> Result<(), TmuxError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let buffer = format!(
            "batty-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.run_cmd(
            self.cmd()
                .args(["load-buffer", "-b", &buffer, "-"])
                .stdin(text.as_bytes()),
        )?;
        let pasted = self.run(["paste-buffer", "-p", "-d", "-b", &buffer, "-t", pane_id]);
        if pasted.is_err() {
            let _ = self.run(["delete-buffer", "-b", &buffer]);
        }
        pasted.map(drop)
    }

    /// [`Tmux::paste_text`] and Enter, but only into a pane whose program still runs, decided
    /// inside the server in the same command (`if-shell -F '#{pane_dead}'`): pasting into a
    /// pane whose program just exited crashed tmux 3.3a. Fails with [`TmuxError::PaneDead`]
    /// when the pane's program has exited.
    pub fn paste_line_if_alive(&self, pane_id: &str, text: &str) -> Result<(), TmuxError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let buffer = format!(
            "batty-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.run_cmd(
            self.cmd()
                .args(["load-buffer", "-b", &buffer, "-"])
                .stdin(text.as_bytes()),
        )?;
        let paste = format!("paste-buffer -p -d -b {buffer} -t {pane_id}");
        let dead = format!("delete-buffer -b {buffer} ; display-message -p dead");
        let out = self.run([
            "if-shell",
            "-F",
            "-t",
            pane_id,
            "#{pane_dead}",
            &dead,
            &paste,
        ]);
        match out {
            Ok(o) if o.trim() == "dead" => Err(TmuxError::PaneDead {
                pane: pane_id.to_owned(),
            }),
            Ok(_) => self.send_keys_if_alive(pane_id, &["Enter"]),
            Err(e) => {
                let _ = self.run(["delete-buffer", "-b", &buffer]);
                Err(e)
            }
        }
    }

    /// [`Tmux::send_keys`], only into a pane whose program still runs (decided inside the
    /// server, as for [`Tmux::paste_line_if_alive`]).
    pub fn send_keys_if_alive(&self, pane_id: &str, keys: &[&str]) -> Result<(), TmuxError> {
        let mut send = format!("send-keys -t {pane_id} --");
        for k in keys {
            // Key names are ours (`Enter`, `C-c`, `Down`): plain words, quoted for tmux.
            send.push_str(&format!(" '{}'", k.replace('\'', "")));
        }
        let out = self.run([
            "if-shell",
            "-F",
            "-t",
            pane_id,
            "#{pane_dead}",
            "display-message -p dead",
            &send,
        ])?;
        if out.trim() == "dead" {
            return Err(TmuxError::PaneDead {
                pane: pane_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Presses Enter in a pane.
    pub fn send_enter(&self, pane_id: &str) -> Result<(), TmuxError> {
        self.send_keys(pane_id, &["Enter"])
    }

    /// Sends tmux key names (`Enter`, `C-c`, `Escape`); never for user text, see
    /// [`Tmux::paste_text`].
    pub fn send_keys(&self, pane_id: &str, keys: &[&str]) -> Result<(), TmuxError> {
        let mut args = vec!["send-keys", "-t", pane_id, "--"];
        args.extend_from_slice(keys);
        self.run(args).map(drop)
    }

    /// [`Tmux::paste_text`] then Enter, as two calls so the program sees the paste end first.
    pub fn send_line(&self, pane_id: &str, text: &str) -> Result<(), TmuxError> {
        self.paste_text(pane_id, text)?;
        self.send_enter(pane_id)
    }

    /// Pipes the pane's output to a shell command (`pipe-pane -o`: only when no pipe is open).
    pub fn pipe_pane(&self, pane_id: &str, shell_command: &str) -> Result<(), TmuxError> {
        self.run([
            "pipe-pane",
            "-o",
            "-t",
            pane_id,
            &escape_format(shell_command),
        ])
        .map(drop)
    }

    /// The visible screen of a pane as plain text, one line per row.
    pub fn capture_pane(&self, pane_id: &str) -> Result<String, TmuxError> {
        self.run_cmd(self.cmd().args(["capture-pane", "-p", "-t", pane_id]))
    }

    /// The screen with its attributes as escape sequences (`capture-pane -e`): what
    /// [`crate::agent::Adapter::classify`] needs to tell a dimmed placeholder from typed text.
    pub fn capture_pane_styled(&self, pane_id: &str) -> Result<String, TmuxError> {
        self.run_cmd(self.cmd().args(["capture-pane", "-p", "-e", "-t", pane_id]))
    }

    /// [`Tmux::capture_pane_styled`] and the cursor's row, in one call: the two describe the
    /// same moment.
    pub fn capture_pane_styled_at(
        &self,
        pane_id: &str,
    ) -> Result<(String, Option<usize>), TmuxError> {
        let out = self.run_cmd(self.cmd().args([
            "capture-pane",
            "-p",
            "-e",
            "-t",
            pane_id,
            ";",
            "display-message",
            "-p",
            "-t",
            pane_id,
            "#{cursor_y}",
        ]))?;
        Ok(match out.rsplit_once('\n') {
            Some((screen, row)) => (screen.to_owned(), row.trim().parse().ok()),
            None => (String::new(), out.trim().parse().ok()),
        })
    }

    pub fn set_option(&self, scope: Scope<'_>, name: &str, value: &str) -> Result<(), TmuxError> {
        let mut args = vec!["set-option"];
        match scope {
            Scope::Global => args.push("-g"),
            Scope::Session(id) => args.extend(["-t", id]),
            Scope::Window(id) => args.extend(["-w", "-t", id]),
            Scope::Pane(id) => args.extend(["-p", "-t", id]),
        }
        args.extend(["--", name, value]);
        self.run(args).map(drop)
    }

    /// Several session options in one call.
    pub fn set_session_options(
        &self,
        session_id: &str,
        options: &[(&str, &str)],
    ) -> Result<(), TmuxError> {
        let mut args: Vec<&str> = Vec::new();
        for (i, (name, value)) in options.iter().enumerate() {
            if i > 0 {
                args.push(";");
            }
            args.extend(["set-option", "-t", session_id, "--", name, value]);
        }
        self.run(args).map(drop)
    }

    pub fn rename_window(&self, window_id: &str, name: &str) -> Result<(), TmuxError> {
        self.run(["rename-window", "-t", window_id, "--", &escape_format(name)])
            .map(drop)
    }

    pub fn kill_session(&self, session_id: &str) -> Result<(), TmuxError> {
        self.run(["kill-session", "-t", session_id]).map(drop)
    }

    pub fn kill_window(&self, window_id: &str) -> Result<(), TmuxError> {
        self.run(["kill-window", "-t", window_id]).map(drop)
    }

    pub fn kill_pane(&self, pane_id: &str) -> Result<(), TmuxError> {
        self.run(["kill-pane", "-t", pane_id]).map(drop)
    }

    /// Expands a format for a target (`display-message -p`).
    pub fn display(&self, target: &str, format: &str) -> Result<String, TmuxError> {
        self.run(["display-message", "-p", "-t", target, format])
    }

    /// Hands the terminal to tmux: `switch-client` when already inside tmux, else replaces
    /// this process with `tmux attach-session` (so it returns only on failure).
    pub fn attach(&self, session_id: &str) -> Result<(), TmuxError> {
        if Tmux::inside_tmux() && self.run(["switch-client", "-t", session_id]).is_ok() {
            return Ok(());
        }
        use std::os::unix::process::CommandExt;
        let cmd = self
            .cmd()
            .args(["attach-session", "-t", session_id])
            .env_remove("TMUX");
        let source = cmd.to_command().exec();
        Err(TmuxError::Proc(crate::proc::ProcError::Spawn {
            cmdline: cmd.cmdline(),
            source,
        }))
    }

    /// True when [`Tmux::attach`] would switch the client instead of taking the terminal.
    pub fn inside_tmux() -> bool {
        std::env::var_os("TMUX").is_some()
    }
}

fn push_setup(args: &mut Vec<String>, target: Option<&str>, setup: &WindowSetup) {
    let mut chain = |cmd: &[&str]| {
        args.push(";".into());
        let (name, rest) = cmd.split_first().expect("chained commands are never empty");
        args.push((*name).into());
        if let Some(t) = target {
            args.extend(["-t".to_owned(), t.to_owned()]);
        }
        args.extend(rest.iter().map(|s| (*s).to_owned()));
    };
    if setup.remain_on_exit {
        chain(&["set-option", "-w", "remain-on-exit", "on"]);
    }
    if let Some(pipe) = &setup.pipe_to {
        chain(&["pipe-pane", "-o", &escape_format(pipe)]);
    }
}

/// `(major, minor)` from `tmux -V` output such as `tmux 3.3a` or `tmux next-3.4`.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let (major, rest) = rest.split_once('.')?;
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_resolution_order() {
        assert_eq!(Server::resolve(None, None), Server::Default);
        assert_eq!(
            Server::resolve(None, Some("batty")),
            Server::Name("batty".into())
        );
        assert_eq!(
            Server::resolve(None, Some("/tmp/s")),
            Server::Path("/tmp/s".into())
        );
        assert_eq!(
            Server::resolve(Some("/x/sock"), Some("batty")),
            Server::Path("/x/sock".into())
        );
        assert_eq!(Server::resolve(Some(""), None), Server::Default);
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("tmux 3.3a"), Some((3, 3)));
        assert_eq!(parse_version("tmux next-3.4"), Some((3, 4)));
        assert_eq!(parse_version("tmux 2.9"), Some((2, 9)));
        assert_eq!(parse_version("tmux master"), None);
    }

    #[test]
    fn pane_command_wraps_env() {
        let spec = PaneSpec {
            cwd: "/".into(),
            argv: vec!["sh".into(), "-c".into(), "x; y".into()],
            env: vec![("A".into(), "1 2".into())],
            unset: vec!["TMUX".into()],
        };
        assert_eq!(
            spec.command(),
            ["env", "-u", "TMUX", "A=1 2", "sh", "-c", "x; y"]
        );
        let bare = PaneSpec {
            argv: vec!["sh".into()],
            ..Default::default()
        };
        assert_eq!(bare.command(), ["sh"]);
    }

    #[test]
    fn setup_chains_target_the_new_window() {
        let mut args = Vec::new();
        push_setup(
            &mut args,
            Some("$1:2"),
            &WindowSetup {
                remain_on_exit: true,
                pipe_to: Some("cat > '#x'".into()),
            },
        );
        assert_eq!(
            args,
            [
                ";",
                "set-option",
                "-t",
                "$1:2",
                "-w",
                "remain-on-exit",
                "on",
                ";",
                "pipe-pane",
                "-t",
                "$1:2",
                "-o",
                "cat > '##x'"
            ]
        );
    }
}
