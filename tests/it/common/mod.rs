//! The integration-test harness: an isolated sandbox per test (temp dir, real git repo with a
//! fixed identity, private tmux server on `<tmp>/sock`), a builder that runs the built `batty`
//! binary, and `wait_until` for conditions with deadlines.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub mod e2e;
pub mod e2e5;
pub mod fake_model;

pub const BATTY: &str = env!("CARGO_BIN_EXE_batty");

pub struct Sandbox {
    dir: tempfile::TempDir,
    pub root: PathBuf,
    pub repo: PathBuf,
    pub sock: PathBuf,
    tmux_started: std::cell::Cell<bool>,
}

impl Sandbox {
    /// A temp dir with an empty git repo `repo/` holding one commit on `main`.
    pub fn new() -> Sandbox {
        // Short path under /tmp: unix socket paths are limited to about 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("bt")
            .tempdir_in("/tmp")
            .expect("create temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let repo = root.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        std::fs::create_dir_all(root.join("tmux-tmp")).unwrap();
        let sb = Sandbox {
            sock: root.join("sock"),
            root,
            repo,
            dir,
            tmux_started: std::cell::Cell::new(false),
        };
        sb.git(["init", "-q", "-b", "main"]);
        std::fs::write(sb.repo.join("README.md"), "test repo\n").unwrap();
        sb.git(["add", "README.md"]);
        sb.git(["commit", "-q", "-m", "initial"]);
        sb
    }

    /// Environment every process in the sandbox gets: own HOME, no user git config, a fixed
    /// identity and clock-free settings, no inherited tmux client, the private socket.
    pub fn apply_env(&self, cmd: &mut Command) {
        cmd.env("HOME", self.root.join("home"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Batty Test")
            .env("GIT_AUTHOR_EMAIL", "test@batty.invalid")
            .env("GIT_COMMITTER_NAME", "Batty Test")
            .env("GIT_COMMITTER_EMAIL", "test@batty.invalid")
            .env("GIT_TERMINAL_PROMPT", "0")
            // Any tmux call that forgets `-S` lands here, where the guard finds it.
            .env("TMUX_TMPDIR", self.root.join("tmux-tmp"))
            .env("BATTY_TMUX_SOCKET", &self.sock)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .env_remove("CLAUDECODE")
            .env_remove("BATTY_BOARD")
            .env_remove("BATTY_PHASE")
            .env_remove("BATTY_AGENT")
            .env_remove("BATTY_LOG");
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.repo.join(rel)
    }

    pub fn write(&self, rel: impl AsRef<Path>, text: &str) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        let p = self.path(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// `batty <args>` run in the repo.
    pub fn batty<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(BATTY);
        cmd.args(args).current_dir(&self.repo);
        self.apply_env(&mut cmd);
        Run {
            cmd,
            stdin: None,
            display: String::new(),
        }
        .described()
    }

    /// `git <args>` in the repo; panics on failure, returns trimmed stdout.
    pub fn git<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.git_in(&self.repo, args)
    }

    pub fn git_in<I, S>(&self, dir: &Path, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(dir);
        self.apply_env(&mut cmd);
        checked(cmd)
    }

    /// Starts the private tmux server (no config file) if it is not running yet.
    pub fn start_tmux(&self) {
        if self.tmux_started.get() {
            return;
        }
        self.tmux([
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "harness",
            "-x",
            "200",
            "-y",
            "50",
        ]);
        self.tmux_started.set(true);
    }

    /// `tmux -S <sock> <args>`; panics on failure, returns trimmed stdout.
    pub fn tmux<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.sock).args(args);
        self.apply_env(&mut cmd);
        self.tmux_started.set(true);
        checked(cmd)
    }

    /// `tmux -S <sock> <args>`, reporting success instead of panicking.
    pub fn tmux_ok<I, S>(&self, args: I) -> Option<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.sock).args(args);
        self.apply_env(&mut cmd);
        let out = cmd.output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    }
}

/// A sandbox with a minimal hand-made board for `v1` (`.batty/` kept out of git) and a
/// plain-shell agent kind `shell`, for tests of the session rather than of agents.
pub fn shell_project(extra_config: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write(
        ".batty/config.yml",
        &format!("agents:\n  shell: {{ command: \"sh\" }}\n{extra_config}"),
    );
    sb.write(".batty/kanban/v1/config.yml", "version: 1\n");
    std::fs::create_dir_all(sb.path(".batty/kanban/v1/tasks")).unwrap();
    sb.write(".git/info/exclude", ".batty/\n");
    sb
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.sock).arg("kill-server");
        self.apply_env(&mut cmd);
        let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
        // The guard: a tmux call without `-S` would have created a default socket here.
        let stray = self.root.join("tmux-tmp");
        let touched = std::fs::read_dir(&stray)
            .map(|d| d.count() > 0)
            .unwrap_or(false);
        if touched && !std::thread::panicking() {
            let mut cmd = Command::new("tmux");
            cmd.env("TMUX_TMPDIR", &stray).arg("kill-server");
            let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
            panic!("the test talked to a tmux server other than its own `-S` socket");
        }
        let _ = &self.dir;
    }
}

fn checked(mut cmd: Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// A `batty` invocation under construction.
pub struct Run {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    display: String,
}

/// What a finished `batty` invocation did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    display: String,
}

impl Run {
    fn described(mut self) -> Run {
        let args: Vec<String> = self
            .cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        self.display = format!("batty {}", args.join(" "));
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Run {
        self.cmd.env(key, value);
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Run {
        self.cmd.current_dir(dir);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Run {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn run(mut self) -> Outcome {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.display));
        if let Some(bytes) = &self.stdin {
            let mut pipe = child.stdin.take().unwrap();
            let _ = pipe.write_all(bytes);
        }
        let out = child.wait_with_output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            display: self.display,
        }
    }

    /// Runs and asserts exit code 0.
    pub fn ok(self) -> Outcome {
        let out = self.run();
        assert_eq!(
            out.code, 0,
            "`{}` exited {}\nstdout:\n{}\nstderr:\n{}",
            out.display, out.code, out.stdout, out.stderr
        );
        out
    }

    /// Runs and asserts the exit code.
    pub fn fails(self, code: i32) -> Outcome {
        let out = self.run();
        assert_eq!(
            out.code, code,
            "`{}` exited {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            out.display, out.code, out.stdout, out.stderr
        );
        out
    }
}

impl Outcome {
    /// Asserts stderr is exactly one `error: ...` line (plus an optional `hint:` line)
    /// containing `needle`.
    pub fn error_mentions(&self, needle: &str) -> &Outcome {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(
            !lines.is_empty() && lines[0].starts_with("error: ") && lines.len() <= 2,
            "`{}`: wanted one error line, got:\n{}",
            self.display,
            self.stderr
        );
        assert!(
            lines[0].contains(needle),
            "`{}`: error does not mention {needle:?}:\n{}",
            self.display,
            self.stderr
        );
        self
    }
}

/// Polls `cond` until it returns `Some` or `deadline` passes; panics with `what` on timeout.
/// Like [`wait_until`], but gives `None` at the deadline so the caller can say what it saw.
pub fn wait_until_or_timeout<T>(
    deadline: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> Option<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if start.elapsed() > deadline {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

pub fn wait_until<T>(what: &str, deadline: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
