//! What the supervisor benchmarks share: a sandbox (temp git repo, private tmux server, the
//! binary under test), watchers of the status snapshot and of pty logs, CPU and wake-up
//! counters from `/proc`, statistics, and the rows `scripts/bench` gathers into one table.
//! Included by each bench with `#[path = "support/mod.rs"] mod support;`, so not every bench
//! uses every part.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batty::status::{AgentState, PhaseStatus};

/// Generous limit for anything a benchmark waits for.
pub const LONG: Duration = Duration::from_secs(120);

/// The sandbox: temp dir with a git repo, the private tmux socket, the batty binary. Dropping
/// it kills the tmux server (and with it every agent and supervisor), also during a panic.
pub struct Sandbox {
    dir: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub repo: PathBuf,
    pub sock: PathBuf,
    pub home: PathBuf,
    pub batty: PathBuf,
    /// Folders put first on PATH of everything started in the sandbox (the counting shims).
    pub path_prefix: Vec<PathBuf>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.show_logs();
        }
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(dir) = self.dir.take() {
            // Agents killed with the server may still be leaving their worktrees.
            for _ in 0..50 {
                if std::fs::remove_dir_all(dir.path()).is_ok() || !dir.path().exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Sandbox {
    pub fn new(batty: PathBuf) -> Sandbox {
        // Short path: unix socket paths are limited to about 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("bsup")
            .tempdir_in("/tmp")
            .expect("create a temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let sb = Sandbox {
            repo: root.join("repo"),
            sock: root.join("sock"),
            home: root.join("home"),
            root,
            batty,
            dir: Some(dir),
            path_prefix: Vec::new(),
        };
        std::fs::create_dir_all(&sb.repo).expect("create the repo dir");
        std::fs::create_dir_all(&sb.home).expect("create HOME");
        sb.git(&["init", "-q", "-b", "main"]);
        std::fs::write(sb.repo.join("README.md"), "bench repo\n").expect("write README");
        sb.git(&["add", "README.md"]);
        sb.git(&["commit", "-q", "-m", "initial"]);
        sb
    }

    /// A command with the sandbox's environment: own HOME, no user git config, a fixed
    /// identity, no inherited tmux client, the private socket.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.repo)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Batty Bench")
            .env("GIT_AUTHOR_EMAIL", "bench@batty.invalid")
            .env("GIT_COMMITTER_NAME", "Batty Bench")
            .env("GIT_COMMITTER_EMAIL", "bench@batty.invalid")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("BATTY_TMUX_SOCKET", &self.sock)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .env_remove("BATTY_BOARD")
            .env_remove("BATTY_PHASE")
            .env_remove("BATTY_AGENT")
            .env_remove("BATTY_LOG");
        if !self.path_prefix.is_empty() {
            let mut dirs = self.path_prefix.clone();
            dirs.extend(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            ));
            cmd.env("PATH", std::env::join_paths(dirs).expect("PATH joins"));
        }
        cmd
    }

    pub fn checked(&self, mut cmd: Command) -> String {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = self.command("git");
        cmd.args(args);
        self.checked(cmd)
    }

    pub fn batty(&self, args: &[&str]) -> String {
        let mut cmd = self.command(&self.batty);
        cmd.args(args);
        self.checked(cmd)
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let mut cmd = self.command("tmux");
        cmd.arg("-S").arg(&self.sock).args(args);
        self.checked(cmd)
    }

    /// `batty init` for each phase, the config, and a commit of it all.
    pub fn setup(&self, phases: &[&str], config: &str) {
        for phase in phases {
            self.batty(&["init", "--phase", phase]);
        }
        std::fs::create_dir_all(self.repo.join(".batty")).expect("create .batty");
        std::fs::write(self.repo.join(".batty/config.yml"), config).expect("write the config");
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "batty board"]);
    }

    /// The end of every agent's event log and pty log, to see why a wait timed out.
    pub fn show_logs(&self) {
        let Ok(phases) = std::fs::read_dir(self.repo.join(".batty/logs")) else {
            return;
        };
        for phase in phases.flatten() {
            let Ok(files) = std::fs::read_dir(phase.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".events.log") && !name.ends_with(".pty.log") {
                    continue;
                }
                let text = std::fs::read(f.path()).unwrap_or_default();
                let text =
                    String::from_utf8_lossy(&text[text.len().saturating_sub(600)..]).into_owned();
                eprintln!("--- {}:\n{text}", f.path().display());
            }
        }
    }

    pub fn status_path(&self, phase: &str) -> PathBuf {
        self.repo.join(format!(".batty/run/{phase}/status.json"))
    }

    pub fn pty_log(&self, phase: &str, agent: &str) -> PathBuf {
        self.repo
            .join(format!(".batty/logs/{phase}/{agent}.pty.log"))
    }

    pub fn board(&self, phase: &str) -> PathBuf {
        self.repo.join(format!(".batty/kanban/{phase}"))
    }

    /// Puts a task on the board the way an editor would: written beside the task folder,
    /// then renamed into it, so the supervisor never sees half a file.
    pub fn add_task(&self, phase: &str, id: u64) {
        let board = self.board(phase);
        let tmp = board.join(format!(".bench-{id}.tmp"));
        std::fs::write(&tmp, task_text(id)).expect("write a task file");
        std::fs::rename(&tmp, board.join(format!("tasks/{id:04}-bench-{id}.md")))
            .expect("move a task file into the board");
    }
}

/// A minimal backlog task file.
pub fn task_text(id: u64) -> String {
    format!(
        "---\nid: {id}\ntitle: bench {id}\nstatus: backlog\npriority: medium\n\
         created: 2026-01-01T00:00:00Z\nupdated: 2026-01-01T00:00:00Z\n\
         class: standard\n---\n"
    )
}

/// The status snapshot, re-parsed only when the file was replaced (it is written by rename,
/// so a new inode means new content), so polling it often is cheap.
pub struct StatusWatch {
    path: PathBuf,
    key: Option<(u64, i64, i64)>,
    last: Option<PhaseStatus>,
}

impl StatusWatch {
    pub fn new(path: PathBuf) -> StatusWatch {
        StatusWatch {
            path,
            key: None,
            last: None,
        }
    }

    pub fn poll(&mut self) -> Option<&PhaseStatus> {
        if let Ok(meta) = std::fs::metadata(&self.path) {
            let key = Some((meta.ino(), meta.mtime(), meta.mtime_nsec()));
            if key != self.key {
                self.key = key;
                if let Some(status) = PhaseStatus::load(&self.path) {
                    self.last = Some(status);
                }
            }
        }
        self.last.as_ref()
    }

    /// True when the snapshot lists exactly `n` agents, all idle and free.
    pub fn all_idle(&mut self, n: usize) -> bool {
        self.poll().is_some_and(|s| {
            s.agents.len() == n
                && s.agents
                    .values()
                    .all(|a| a.state == AgentState::Idle && a.task.is_none())
        })
    }

    /// Waits for `n` idle agents and returns the supervisor's pid and the agents' names.
    pub fn wait_idle(&mut self, n: usize) -> (u32, Vec<String>) {
        poll_until(
            &format!("{n} idle agents"),
            LONG,
            Duration::from_millis(2),
            || self.all_idle(n).then_some(()),
        );
        let s = self.poll().expect("status written");
        (s.supervisor_pid, s.agents.keys().cloned().collect())
    }
}

/// What an agent's pty log shows about its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The first bytes of the task's message (`Task #<id>:`, echoed by the terminal).
    Message(u64),
    /// The ready prompt after `finished #<id>`.
    Prompt(u64),
    /// A probe pasted by the benchmark (`probe-<n>:`).
    Probe(u64),
}

/// Reads a pty log from a byte offset and finds task messages, probes and prompts in it.
pub struct PtyWatch {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    buf: Vec<u8>,
    cursor: usize,
    finished: Option<u64>,
    prompt: Vec<u8>,
}

impl PtyWatch {
    pub fn at_end(path: PathBuf, prompt: &str) -> PtyWatch {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        PtyWatch {
            path,
            file: None,
            offset,
            buf: Vec::new(),
            cursor: 0,
            finished: None,
            prompt: prompt.as_bytes().to_vec(),
        }
    }

    /// New marks since the last call.
    pub fn poll(&mut self) -> Vec<Mark> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(file) = &mut self.file else {
            return Vec::new();
        };
        let before = self.buf.len();
        if file.seek(SeekFrom::Start(self.offset)).is_ok() {
            let _ = file.read_to_end(&mut self.buf);
        }
        self.offset += (self.buf.len() - before) as u64;
        if self.buf.len() == before {
            return Vec::new();
        }
        self.scan()
    }

    fn scan(&mut self) -> Vec<Mark> {
        let mut marks = Vec::new();
        loop {
            let rest = &self.buf[self.cursor..];
            if let Some(id) = self.finished {
                match find(rest, &self.prompt) {
                    Some(at) => {
                        marks.push(Mark::Prompt(id));
                        self.finished = None;
                        self.cursor += at + self.prompt.len();
                        continue;
                    }
                    None => return marks,
                }
            }
            let found = [
                (find(rest, b"Task #"), 6, 0),
                (find(rest, b"finished #"), 10, 1),
                (find(rest, b"probe-"), 6, 2),
            ];
            let Some((at, len, kind)) = found
                .iter()
                .filter_map(|(at, len, kind)| at.map(|a| (a, *len, *kind)))
                .min()
            else {
                return marks;
            };
            let digits = &rest[at + len..];
            let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
            let Some(&after) = digits.get(n) else {
                return marks; // the number may still be growing
            };
            let id = std::str::from_utf8(&digits[..n])
                .ok()
                .and_then(|s| s.parse().ok());
            self.cursor += at + len + n;
            match (id, kind) {
                (Some(id), 0) if after == b':' => marks.push(Mark::Message(id)),
                (Some(id), 1) => self.finished = Some(id),
                (Some(id), 2) if after == b':' => marks.push(Mark::Probe(id)),
                _ => {}
            }
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Polls `f` every `every` until it gives a value; panics after `limit`.
pub fn poll_until<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

/// CPU time and wake-ups of a process: all its threads (ns on CPU from schedstat, voluntary
/// and involuntary context switches from status), and its reaped children's CPU (clock
/// ticks from stat).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub own: Duration,
    pub children: Duration,
    pub switches: u64,
}

impl Cpu {
    pub fn of(pid: u32) -> Cpu {
        let mut own = 0u64;
        let mut switches = 0u64;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                if let Ok(text) = std::fs::read_to_string(t.path().join("schedstat")) {
                    own += text
                        .split_whitespace()
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(0);
                }
                if let Ok(text) = std::fs::read_to_string(t.path().join("status")) {
                    switches += text
                        .lines()
                        .filter(|l| l.contains("ctxt_switches"))
                        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                        .sum::<u64>();
                }
            }
        }
        let children = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                // Fields after the `(comm)`, which may hold spaces: cutime is field 16,
                // cstime 17.
                let after = stat.get(stat.rfind(')')? + 2..)?.to_owned();
                let fields: Vec<&str> = after.split_whitespace().collect();
                let ticks = |i: usize| fields.get(i - 3)?.parse::<u64>().ok();
                Some(Duration::from_millis((ticks(16)? + ticks(17)?) * 10))
            })
            .unwrap_or_default();
        Cpu {
            own: Duration::from_nanos(own),
            children,
            switches,
        }
    }

    /// The sum over several processes.
    pub fn of_all(pids: &[u32]) -> Cpu {
        pids.iter()
            .map(|&p| Cpu::of(p))
            .fold(Cpu::default(), |a, b| Cpu {
                own: a.own + b.own,
                children: a.children + b.children,
                switches: a.switches + b.switches,
            })
    }

    pub fn since(self, before: Cpu) -> Cpu {
        Cpu {
            own: self.own.saturating_sub(before.own),
            children: self.children.saturating_sub(before.children),
            switches: self.switches.saturating_sub(before.switches),
        }
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    let i = ((s.len() as f64 - 1.0) * p).round() as usize;
    s[i]
}

pub fn median_f(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// The batty binary next to this example, built first (a no-op when it is up to date).
pub fn own_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("examples live in target/<profile>/examples");
    let release = dir.file_name().is_some_and(|n| n == "release");
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--bin", "batty"]);
        if release {
            cmd.arg("--release");
        }
        let ok = cmd.status().expect("run cargo build").success();
        assert!(ok, "building the batty binary failed");
    }
    let batty = dir.join("batty");
    assert!(
        batty.exists(),
        "{} is missing: run `cargo build --release` first",
        batty.display()
    );
    if !release {
        eprintln!("warning: not a release build; numbers are not meaningful");
    }
    batty
}

/// The binaries to measure: each `--batty PATH` given (in order), else our own.
pub fn binaries(given: &[PathBuf]) -> Vec<PathBuf> {
    if given.is_empty() {
        return vec![own_binary()];
    }
    given
        .iter()
        .map(|p| {
            p.canonicalize()
                .unwrap_or_else(|e| panic!("`{}`: {e}", p.display()))
        })
        .collect()
}

/// A short name for a binary in the output: its path below the work tree's `target/`.
pub fn label(batty: &Path) -> String {
    let s = batty.to_string_lossy();
    match s.find("/target/") {
        Some(i) => {
            let head = &s[..i];
            let tree = head.rsplit('/').next().unwrap_or(head);
            format!("{tree}{}", &s[i..])
        }
        None => s.into_owned(),
    }
}

/// One line of the table `scripts/bench` prints, appended to `$BATTY_BENCH_ROWS` when set:
/// `bench, figure, median, unit, baseline name, baseline median, ratio, goal, verdict`, TAB
/// separated. The ratio is `median / baseline` unless the figure says otherwise.
pub struct Row<'a> {
    pub bench: &'a str,
    pub figure: String,
    pub median: f64,
    pub unit: &'a str,
    pub baseline: Option<(&'a str, f64)>,
    /// The ratio, when it is not `median / baseline` (a rate against a floor, say).
    pub ratio: Option<f64>,
    pub goal: &'a str,
    pub ok: Option<bool>,
}

impl Row<'_> {
    pub fn emit(&self) {
        let Some(path) = std::env::var_os("BATTY_BENCH_ROWS") else {
            return;
        };
        let ratio = self
            .ratio
            .or_else(|| self.baseline.map(|(_, b)| self.median / b));
        let (base_name, base) = match self.baseline {
            Some((n, b)) => (n.to_owned(), format!("{b:.3}")),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let line = format!(
            "{}\t{}\t{:.3}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            self.bench,
            self.figure,
            self.median,
            self.unit,
            base_name,
            base,
            ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
            self.goal,
            match self.ok {
                Some(true) => "ok",
                Some(false) => "MISSED",
                None => "-",
            }
        );
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open $BATTY_BENCH_ROWS");
        f.write_all(line.as_bytes())
            .expect("append to $BATTY_BENCH_ROWS");
    }
}

/// Shims for `tmux` and `git` that log each call (time, parent pid, subcommand) to
/// `<dir>/calls.log` and then run the real program: put `dir` first on PATH to count the
/// round trips a process makes.
pub struct CallLog {
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl CallLog {
    pub fn install(root: &Path) -> CallLog {
        let dir = root.join("shims");
        std::fs::create_dir_all(&dir).expect("create the shim folder");
        let log = dir.join("calls.log");
        for program in ["tmux", "git"] {
            let real = which(program);
            // The subcommand is the first argument that is neither an option nor the value
            // of one (`tmux -S sock list-panes`, `git -C dir status`).
            let script = format!(
                "#!/bin/bash\n\
                 a=(\"$@\"); i=0\n\
                 while [[ ${{a[i]:-}} == -* ]]; do\n\
                 \x20 case ${{a[i]}} in -S|-L|-f|-C|-c) i=$((i + 2)) ;; *) i=$((i + 1)) ;; esac\n\
                 done\n\
                 printf '%s %s {program} %s\\n' \"$EPOCHREALTIME\" \"$PPID\" \"${{a[i]:-}}\" >> '{}'\n\
                 exec '{}' \"$@\"\n",
                log.display(),
                real.display()
            );
            let path = dir.join(program);
            std::fs::write(&path, script).expect("write a shim");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("make a shim executable");
        }
        CallLog { dir, log }
    }

    /// Every call logged so far: (unix time in seconds, parent pid, program, subcommand).
    pub fn calls(&self) -> Vec<(f64, u32, String, String)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                let t = f.next()?.parse().ok()?;
                let pid = f.next()?.parse().ok()?;
                let program = f.next()?.to_owned();
                let sub = f.next().unwrap_or("").to_owned();
                Some((t, pid, program, sub))
            })
            .collect()
    }
}

/// The absolute path of a program on PATH.
pub fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{program}` is not on PATH"))
}

/// Seconds since the epoch, as the shims log them.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
