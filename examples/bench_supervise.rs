//! Supervisor benchmark: `cargo run --release --example bench_supervise [-- OPTIONS]`.
//!
//! Runs the real `batty` binary (`target/release/batty`, built first) on a temp git repo and a
//! private tmux server (`tmux -S <tmp>/sock`, `TMUX` unset), with the demo agent doing no work
//! (`--delay 0 --lines 0`), and prints medians (and p95) of:
//! - dispatch latency: a task file renamed into the board's task folder -> the first bytes of
//!   its message (`Task #<id>:`) in the idle agent's pty log;
//! - idle detection latency: the agent's ready prompt `demo> ` in its pty log -> the status
//!   snapshot `.batty/run/<phase>/status.json` saying `idle` (goal: silence + 20 ms);
//! - loop overhead per task: N tasks queued at once for one agent; (wall time until all are
//!   done and the agent idle - the agent's own time per task (its message appearing -> its
//!   prompt after `finished #<id>`) - N x silence) / N;
//! - supervisor CPU (all threads, /proc/<pid>/task/*/schedstat; plus its reaped children's
//!   utime+stime) while 8 agents sit quiet for 30 s;
//! - supervisor CPU per MB of agent output (one task whose agent prints many lines).
//!
//! Baselines measured in the same run, since the machine is noisy: one tmux command round
//! trip, and a bare delivery (the same load-buffer + paste-buffer into a `cat` pane, seen in
//! its pipe-pane log) that dispatch latency is compared with.
//!
//! Options: `--tasks N` (default 50, samples per latency and tasks in the batch), `--quiet S`
//! (seconds, default 30), `--lines N` (lines the chatty agent prints, default 400000, about
//! 10 MB). The tmux server is killed and the temp dir removed at the end, also on failure.
//!
//! `--board-sizes 0,10000` runs the board-size sweep instead: for each size, a fresh board of
//! that many done tasks (not committed, see `board_case`), the supervisor's start on it (`batty work` -> its agent idle, against
//! `cat` of the task files), and `--tasks` tasks added one at a time (dispatch latency as
//! above, and the task files opened in the task folder per task, counted by inotify from the
//! add to the next add), each against the smallest board of the same run. `--batty PATH`
//! (repeatable) times those binaries instead of the one built here, e.g. an older build
//! against the current one, sizes interleaved.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batty::status::{AgentState, PhaseStatus};
use batty::tmux::{Server, Tmux};

/// How often files are polled while waiting for something to appear.
const POLL: Duration = Duration::from_micros(200);
/// Generous limit for anything the benchmark waits for.
const LONG: Duration = Duration::from_secs(120);

struct Opts {
    tasks: u64,
    quiet: u64,
    lines: u64,
    board_sizes: Vec<u64>,
    binaries: Vec<PathBuf>,
}

fn parse_opts() -> Opts {
    let mut opts = Opts {
        tasks: 50,
        quiet: 30,
        lines: 400_000,
        board_sizes: Vec::new(),
        binaries: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--batty" {
            let path = args.next().expect("`--batty` needs a path");
            opts.binaries.push(PathBuf::from(path));
            continue;
        }
        if flag == "--board-sizes" {
            let list = args
                .next()
                .expect("`--board-sizes` needs a list, e.g. 0,10000");
            opts.board_sizes = list
                .split(',')
                .map(|n| n.trim().parse().expect("`--board-sizes` takes numbers"))
                .collect();
            continue;
        }
        let value: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("`{flag}` needs a number"));
        match flag.as_str() {
            "--tasks" => opts.tasks = value.max(1),
            "--quiet" => opts.quiet = value.max(1),
            "--lines" => opts.lines = value.max(1),
            _ => panic!(
                "unknown option `{flag}` (known: --tasks N, --quiet S, --lines N, \
                 --board-sizes N,N, --batty PATH)"
            ),
        }
    }
    opts
}

/// The sandbox: temp dir with a git repo, the private tmux socket, the batty binary. Dropping
/// it kills the tmux server (and with it every agent and supervisor), also during a panic.
struct Sandbox {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    sock: PathBuf,
    home: PathBuf,
    batty: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.show_logs();
        }
        let _ = self
            .command("tmux")
            .arg("-S")
            .arg(&self.sock)
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Sandbox {
    fn new(batty: PathBuf) -> Sandbox {
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
            batty,
            _dir: dir,
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
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
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
        cmd
    }

    fn checked(&self, mut cmd: Command) -> String {
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

    fn git(&self, args: &[&str]) -> String {
        let mut cmd = self.command("git");
        cmd.args(args);
        self.checked(cmd)
    }

    fn batty(&self, args: &[&str]) -> String {
        let mut cmd = self.command(&self.batty);
        cmd.args(args);
        self.checked(cmd)
    }

    fn tmux(&self, args: &[&str]) -> String {
        let mut cmd = self.command("tmux");
        cmd.arg("-S").arg(&self.sock).args(args);
        self.checked(cmd)
    }

    /// The end of every agent's event log and pty log, to see why a wait timed out.
    fn show_logs(&self) {
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

    fn status_path(&self, phase: &str) -> PathBuf {
        self.repo.join(format!(".batty/run/{phase}/status.json"))
    }

    fn pty_log(&self, phase: &str, agent: &str) -> PathBuf {
        self.repo
            .join(format!(".batty/logs/{phase}/{agent}.pty.log"))
    }

    /// Puts a task on the board the way an editor would: written beside the task folder,
    /// then renamed into it, so the supervisor never sees half a file.
    fn add_task(&self, phase: &str, id: u64) {
        let board = self.repo.join(format!(".batty/kanban/{phase}"));
        let tmp = board.join(format!(".bench-{id}.tmp"));
        let text = format!(
            "---\nid: {id}\ntitle: bench {id}\nstatus: backlog\npriority: medium\n\
             created: 2026-01-01T00:00:00Z\nupdated: 2026-01-01T00:00:00Z\n\
             class: standard\n---\n"
        );
        std::fs::write(&tmp, text).expect("write a task file");
        std::fs::rename(&tmp, board.join(format!("tasks/{id:04}-bench-{id}.md")))
            .expect("move a task file into the board");
    }
}

/// The status snapshot, re-parsed only when the file was replaced (it is written by rename,
/// so a new inode means new content), so polling it often is cheap.
struct StatusWatch {
    path: PathBuf,
    key: Option<(u64, i64, i64)>,
    last: Option<PhaseStatus>,
}

impl StatusWatch {
    fn new(path: PathBuf) -> StatusWatch {
        StatusWatch {
            path,
            key: None,
            last: None,
        }
    }

    fn poll(&mut self) -> Option<&PhaseStatus> {
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

    /// The agents' states, when the snapshot lists exactly `n` agents, all idle and free.
    fn all_idle(&mut self, n: usize) -> bool {
        self.poll().is_some_and(|s| {
            s.agents.len() == n
                && s.agents
                    .values()
                    .all(|a| a.state == AgentState::Idle && a.task.is_none())
        })
    }
}

/// What an agent's pty log shows about its tasks.
#[derive(Debug, Clone, Copy)]
enum Mark {
    /// The first bytes of the task's message (`Task #<id>:`, echoed by the terminal).
    Message(u64),
    /// The ready prompt after `finished #<id>`.
    Prompt(u64),
}

/// Reads a pty log from a byte offset and finds task messages and prompts in it, timing each
/// by when it was first seen.
struct PtyWatch {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    buf: Vec<u8>,
    cursor: usize,
    finished: Option<u64>,
}

impl PtyWatch {
    fn at_end(path: PathBuf) -> PtyWatch {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        PtyWatch {
            path,
            file: None,
            offset,
            buf: Vec::new(),
            cursor: 0,
            finished: None,
        }
    }

    /// New marks since the last call.
    fn poll(&mut self) -> Vec<Mark> {
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
                match find(rest, b"demo> ") {
                    Some(at) => {
                        marks.push(Mark::Prompt(id));
                        self.finished = None;
                        self.cursor += at + 6;
                        continue;
                    }
                    None => return marks,
                }
            }
            let task = find(rest, b"Task #");
            let done = find(rest, b"finished #");
            let (at, len, is_task) = match (task, done) {
                (Some(t), Some(d)) if d < t => (d, 10, false),
                (Some(t), _) => (t, 6, true),
                (None, Some(d)) => (d, 10, false),
                (None, None) => return marks,
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
            match id {
                Some(id) if is_task && after == b':' => marks.push(Mark::Message(id)),
                Some(id) if !is_task => self.finished = Some(id),
                _ => {}
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Polls `f` every [`POLL`] until it gives a value; panics after `limit`.
fn poll_until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// CPU time of a process: all its threads (ns, from schedstat) and its reaped children
/// (clock ticks from stat, converted).
#[derive(Debug, Clone, Copy)]
struct Cpu {
    own: Duration,
    children: Duration,
}

fn cpu(pid: u32) -> Cpu {
    let mut own = 0u64;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("supervisor is running");
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("schedstat")) {
            own += text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Fields after the `(comm)`, which may contain spaces: state is field 3, cutime 16, cstime 17.
    let after = &stat[stat.rfind(')').expect("stat has a comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields[i - 3].parse::<u64>().unwrap_or(0);
    let hz = 100; // USER_HZ on Linux
    Cpu {
        own: Duration::from_nanos(own),
        children: Duration::from_millis((ticks(16) + ticks(17)) * 1000 / hz),
    }
}

fn cpu_delta(a: Cpu, b: Cpu) -> Cpu {
    Cpu {
        own: b.own.saturating_sub(a.own),
        children: b.children.saturating_sub(a.children),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    let i = ((s.len() as f64 - 1.0) * p).round() as usize;
    s[i]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// Builds the batty binary next to this example (a no-op when it is up to date).
fn batty_binary() -> PathBuf {
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

fn main() {
    let opts = parse_opts();
    if !opts.board_sizes.is_empty() {
        board_sweep(&opts);
        return;
    }
    let sb = Sandbox::new(batty_binary());
    let phase = "bench";
    sb.batty(&["init", "--phase", phase]);
    sb.batty(&["init", "--phase", "bulk"]);
    let batty = sb.batty.to_string_lossy().into_owned();
    let config = format!(
        "agents:\n  demo:\n    args: [\"--delay\", \"0\", \"--lines\", \"0\"]\n  \
         chatty:\n    command: \"'{batty}' demo-agent --delay 0 --lines {}\"\n    \
         ready_pattern: '^demo>\\s*$'\n",
        opts.lines
    );
    std::fs::write(sb.repo.join(".batty/config.yml"), config).expect("write the config");
    sb.git(&["add", "-A"]);
    sb.git(&["commit", "-q", "-m", "batty board"]);
    let loaded = batty::config::Config::load(&sb.repo.join(".batty/config.yml"))
        .expect("the bench config loads");
    let silence = loaded.supervisor.silence;

    println!(
        "bench_supervise: {} tasks, demo agent --delay 0 --lines 0, silence {} ms, merge {}",
        opts.tasks,
        silence.as_millis(),
        if loaded.merge.enabled { "on" } else { "off" }
    );
    let (round_trip, paste) = baselines(&sb);
    println!(
        "baseline: one tmux command round trip          p50 {:>7.2} ms",
        ms(round_trip)
    );
    println!(
        "baseline: bare paste -> pipe-pane log (cat)     p50 {:>7.2} ms",
        ms(paste)
    );

    // One agent, tasks added one at a time while it is idle.
    sb.batty(&["work", phase, "--parallel", "1", "--agent", "demo"]);
    let mut status = StatusWatch::new(sb.status_path(phase));
    poll_until("the agent to turn idle", LONG, || {
        status.all_idle(1).then_some(())
    });
    let snapshot = status.poll().expect("status written").clone();
    let pid = snapshot.supervisor_pid;
    let agent = snapshot.agents.keys().next().expect("one agent").clone();
    let pty = sb.pty_log(phase, &agent);

    let mut dispatch = Vec::new();
    let mut idle = Vec::new();
    let cpu_before = cpu(pid);
    for id in 1..=opts.tasks {
        poll_until("the agent to be idle", LONG, || {
            status.all_idle(1).then_some(())
        });
        let mut watch = PtyWatch::at_end(pty.clone());
        let t0 = Instant::now();
        sb.add_task(phase, id);
        let mut seen_busy = false;
        let mut message = None;
        let prompt = poll_until(&format!("task #{id} to finish"), LONG, || {
            seen_busy |= status
                .poll()
                .is_some_and(|s| s.agents[&agent].task.is_some());
            let mut prompt = None;
            for mark in watch.poll() {
                match mark {
                    Mark::Message(m) if m == id => message = message.or(Some(Instant::now())),
                    Mark::Prompt(m) if m == id => prompt = Some(Instant::now()),
                    _ => {}
                }
            }
            prompt
        });
        let message = message.expect("the message appears before the task finishes");
        dispatch.push(message - t0);
        let idle_at = poll_until(&format!("idle after task #{id}"), LONG, || {
            seen_busy |= status
                .poll()
                .is_some_and(|s| s.agents[&agent].task.is_some());
            let s = status.poll()?;
            let a = &s.agents[&agent];
            (seen_busy && a.state == AgentState::Idle && a.task.is_none()).then(Instant::now)
        });
        idle.push(idle_at - prompt);
    }
    let per_task = cpu_delta(cpu_before, cpu(pid));
    let n = opts.tasks as u32;

    let d50 = percentile(&dispatch, 0.5);
    let d95 = percentile(&dispatch, 0.95);
    println!(
        "dispatch latency (file saved -> message in pty log): p50 {:>7.2} ms  p95 {:>7.2} ms  \
         ({:.1}x bare paste)  goal p50 <= 20, p95 <= 100: {}",
        ms(d50),
        ms(d95),
        ms(d50) / ms(paste),
        verdict(ms(d50) <= 20.0 && ms(d95) <= 100.0)
    );
    let i50 = percentile(&idle, 0.5);
    let i95 = percentile(&idle, 0.95);
    println!(
        "idle detection (prompt in pty log -> status idle):   p50 {:>7.2} ms  p95 {:>7.2} ms  \
         (silence {} ms + {:.2} ms)  goal <= silence + 20: {}",
        ms(i50),
        ms(i95),
        silence.as_millis(),
        ms(i50.saturating_sub(silence)),
        verdict(i50 <= silence + Duration::from_millis(20))
    );
    println!(
        "supervisor CPU per task (one at a time): {:.2} ms own + {:.2} ms children (git, tmux)",
        ms(per_task.own) / f64::from(n),
        ms(per_task.children) / f64::from(n)
    );

    // The same agent, all tasks queued at once.
    poll_until("the agent to be idle", LONG, || {
        status.all_idle(1).then_some(())
    });
    let first = opts.tasks + 1;
    let last = opts.tasks * 2;
    let mut watch = PtyWatch::at_end(pty.clone());
    let mut started: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut agent_time = Duration::ZERO;
    let t0 = Instant::now();
    for id in first..=last {
        sb.add_task(phase, id);
    }
    let end = poll_until("the batch to finish", LONG * 5, || {
        let now = Instant::now();
        for mark in watch.poll() {
            match mark {
                Mark::Message(id) => {
                    started.entry(id).or_insert(now);
                }
                Mark::Prompt(id) => {
                    if let Some(t) = started.get(&id) {
                        agent_time += now - *t;
                    }
                }
            }
        }
        let done = status.poll()?.tasks_done as u64 == last;
        (done && status.all_idle(1)).then_some(now)
    });
    let wall = end - t0;
    let gap = wall.saturating_sub(agent_time);
    let overhead = gap.saturating_sub(silence * n) / n;
    println!(
        "loop overhead per task ({} queued, 1 agent): wall {:.0} ms, agent's own time {:.0} ms, \
         (wall - agent - {n} x silence) / {n} = {:.2} ms  goal <= 50: {}",
        opts.tasks,
        ms(wall),
        ms(agent_time),
        ms(overhead),
        verdict(ms(overhead) <= 50.0)
    );
    println!(
        "  (per task: {:.2} ms wall, {:.2} ms agent, {:.2} ms supervisor incl. silence)",
        ms(wall / n),
        ms(agent_time / n),
        ms(gap / n)
    );

    // Eight agents with nothing to do.
    sb.batty(&["work", phase, "--parallel", "8", "--agent", "demo"]);
    poll_until("8 idle agents", LONG, || status.all_idle(8).then_some(()));
    poll_until("the merge queue to drain", LONG * 5, || {
        let s = status.poll()?;
        let busy = s
            .merge_queue
            .iter()
            .any(|e| e.state == "waiting" || e.state == "merging");
        (!busy).then_some(())
    });
    // Past the last silence timer and any publish after it.
    std::thread::sleep(silence * 2);
    let quiet_for = Duration::from_secs(opts.quiet);
    let before = cpu(pid);
    std::thread::sleep(quiet_for);
    let quiet = cpu_delta(before, cpu(pid));
    println!(
        "supervisor CPU, 8 agents quiet for {} s: {:.2} ms own + {:.2} ms children  \
         goal < 30: {}",
        opts.quiet,
        ms(quiet.own),
        ms(quiet.children),
        verdict(ms(quiet.own + quiet.children) < 30.0)
    );
    sb.batty(&["stop", phase]);

    // One agent printing a lot for one task.
    sb.batty(&["work", "bulk", "--parallel", "1", "--agent", "chatty"]);
    let mut status = StatusWatch::new(sb.status_path("bulk"));
    poll_until("the chatty agent to turn idle", LONG, || {
        status.all_idle(1).then_some(())
    });
    let snapshot = status.poll().expect("status written").clone();
    let pid = snapshot.supervisor_pid;
    let agent = snapshot.agents.keys().next().expect("one agent").clone();
    let pty = sb.pty_log("bulk", &agent);
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let bytes_before = size(&pty);
    let before = cpu(pid);
    let t0 = Instant::now();
    sb.add_task("bulk", 1);
    poll_until("the chatty task to finish", LONG * 5, || {
        let done = status.poll().is_some_and(|s| s.tasks_done == 1);
        (done && status.all_idle(1)).then_some(())
    });
    let took = t0.elapsed();
    let bulk = cpu_delta(before, cpu(pid));
    let mb = (size(&pty) - bytes_before) as f64 / 1e6;
    // Children (git, tmux) run per task, not per byte: only the supervisor's own CPU, less
    // what a quiet task cost it, is charged to the output.
    let task_cpu = per_task.own / n;
    let per_mb = ms(bulk.own.saturating_sub(task_cpu)) / mb;
    println!(
        "supervisor CPU per MB of output: {:.2} ms/MB ({:.1} MB in {:.1} s; {:.2} ms own, less \
         {:.2} ms for a quiet task; children {:.0} ms)  goal <= 5: {}",
        per_mb,
        mb,
        took.as_secs_f64(),
        ms(bulk.own),
        ms(task_cpu),
        ms(bulk.children),
        verdict(per_mb <= 5.0)
    );
}

/// One tmux command round trip, and a bare delivery: the same two tmux calls the supervisor
/// makes to paste a task (load-buffer, paste-buffer) into a pane running `cat`, until the
/// echo shows in the pane's pipe-pane log. Medians over 30 runs.
fn baselines(sb: &Sandbox) -> (Duration, Duration) {
    let pane = sb.tmux(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-P",
        "-F",
        "#{pane_id}",
        "-s",
        "baseline",
        "-x",
        "200",
        "-y",
        "50",
        "cat",
    ]);
    let log = sb.repo.join("baseline.pty.log");
    sb.tmux(&[
        "pipe-pane",
        "-o",
        "-t",
        &pane,
        &format!("cat >> '{}'", log.display()),
    ]);
    let round_trip: Vec<Duration> = (0..30)
        .map(|_| {
            let t0 = Instant::now();
            sb.tmux(&["display-message", "-p", "#{pid}"]);
            t0.elapsed()
        })
        .collect();
    let tmux = Tmux::new(Server::Path(sb.sock.clone()));
    let paste: Vec<Duration> = (0..30)
        .map(|k| {
            let marker = format!("probe-{k}:");
            let mut offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            let mut seen = Vec::new();
            let t0 = Instant::now();
            tmux.paste_text(&pane, &format!("{marker}\n"))
                .expect("paste into the baseline pane");
            poll_until("the baseline echo", LONG, || {
                let mut f = File::open(&log).ok()?;
                f.seek(SeekFrom::Start(offset)).ok()?;
                let n = f.read_to_end(&mut seen).ok()?;
                offset += n as u64;
                find(&seen, marker.as_bytes()).map(|_| t0.elapsed())
            })
        })
        .collect();
    sb.tmux(&["kill-session", "-t", "baseline"]);
    (percentile(&round_trip, 0.5), percentile(&paste, 0.5))
}

/// What one board size cost one binary.
struct BoardCase {
    start: Duration,
    cat: Duration,
    dispatch: Duration,
    opens_per_task: f64,
}

/// `--board-sizes`: each binary on each size, sizes interleaved so a noisy spell of the machine
/// does not fall on one binary; ratios against the smallest size of the same binary.
fn board_sweep(opts: &Opts) {
    let binaries = if opts.binaries.is_empty() {
        vec![batty_binary()]
    } else {
        opts.binaries.clone()
    };
    let mut sizes = opts.board_sizes.clone();
    sizes.sort_unstable();
    println!(
        "bench_supervise board sweep: sizes {sizes:?}, {} tasks added per size, demo agent \
         --delay 0 --lines 0",
        opts.tasks
    );
    let mut results: Vec<Vec<BoardCase>> = binaries.iter().map(|_| Vec::new()).collect();
    for &size in &sizes {
        for (b, batty) in binaries.iter().enumerate() {
            let case = board_case(batty, size, opts.tasks);
            let first = results[b].first().unwrap_or(&case);
            println!(
                "{}  {size:>6} tasks: start {:>8.1} ms ({:.2}x cat of the files, {:.1} ms; \
                 {:.2}x the smallest board)  dispatch p50 {:>7.2} ms ({:.2}x the smallest \
                 board)  task files opened per task {:.1}",
                batty.display(),
                ms(case.start),
                ms(case.start) / ms(case.cat).max(0.001),
                ms(case.cat),
                ms(case.start) / ms(first.start),
                ms(case.dispatch),
                ms(case.dispatch) / ms(first.dispatch),
                case.opens_per_task
            );
            results[b].push(case);
        }
    }
}

/// A board of `size` done tasks under one supervisor with one idle demo agent; `samples` tasks
/// added to it one at a time.
fn board_case(batty: &Path, size: u64, samples: u64) -> BoardCase {
    use notify::Watcher;

    let sb = Sandbox::new(batty.to_owned());
    let phase = "big";
    sb.batty(&["init", "--phase", phase]);
    let config = "agents:\n  demo:\n    args: [\"--delay\", \"0\", \"--lines\", \"0\"]\n";
    std::fs::write(sb.repo.join(".batty/config.yml"), config).expect("write the config");
    sb.git(&["add", "-A"]);
    sb.git(&["commit", "-q", "-m", "batty board"]);
    // The old tasks stay out of git: every agent's worktree would hold them, and its `git
    // status` before each task grows with the files in it. That is git's cost, not the board's.
    let tasks = sb.repo.join(format!(".batty/kanban/{phase}/tasks"));
    for id in 1..=size {
        let text = format!(
            "---\nid: {id}\ntitle: old {id}\nstatus: done\npriority: medium\n\
             created: 2026-01-01T00:00:00Z\nupdated: 2026-01-01T00:00:00Z\n---\n\nDone long ago.\n"
        );
        std::fs::write(tasks.join(format!("{id:04}-old-{id}.md")), text).expect("write a task");
    }
    let cat = {
        let mut cmd = sb.command("sh");
        cmd.arg("-c")
            .arg("find \"$1\" -name '*.md' -exec cat {} + > /dev/null")
            .arg("sh")
            .arg(&tasks);
        let runs: Vec<Duration> = (0..5)
            .map(|_| {
                let t0 = Instant::now();
                let ok = cmd.status().expect("run find | cat").success();
                assert!(ok, "cat of the task files failed");
                t0.elapsed()
            })
            .collect();
        percentile(&runs, 0.5)
    };

    let mut status = StatusWatch::new(sb.status_path(phase));
    let t0 = Instant::now();
    sb.batty(&["work", phase, "--parallel", "1", "--agent", "demo"]);
    poll_until("the agent to turn idle", LONG, || {
        status.all_idle(1).then_some(())
    });
    let start = t0.elapsed();
    let snapshot = status.poll().expect("status written").clone();
    let agent = snapshot.agents.keys().next().expect("one agent").clone();
    let pty = sb.pty_log(phase, &agent);

    // Every open of a task file in the folder, by anyone (only the supervisor and its agent's
    // batty calls run here): what a dispatch costs in reads.
    let opens = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = opens.clone();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        use notify::event::{AccessKind, EventKind};
        let Ok(ev) = ev else { return };
        if !matches!(ev.kind, EventKind::Access(AccessKind::Open(_))) {
            return;
        }
        let task_files = ev
            .paths
            .iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".md") && !n.starts_with('.'))
            })
            .count();
        counter.fetch_add(task_files as u64, std::sync::atomic::Ordering::Relaxed);
    })
    .expect("an inotify watcher");
    watcher
        .watch(&tasks, notify::RecursiveMode::NonRecursive)
        .expect("watch the task folder");

    let mut dispatch = Vec::new();
    let opens_before = opens.load(std::sync::atomic::Ordering::Relaxed);
    for id in size + 1..=size + samples {
        poll_until("the agent to be idle", LONG, || {
            status.all_idle(1).then_some(())
        });
        let mut watch = PtyWatch::at_end(pty.clone());
        let t0 = Instant::now();
        sb.add_task(phase, id);
        let mut seen_busy = false;
        let message = poll_until(&format!("task #{id}'s message"), LONG, || {
            watch
                .poll()
                .into_iter()
                .any(|m| matches!(m, Mark::Message(m) if m == id))
                .then(Instant::now)
        });
        dispatch.push(message - t0);
        poll_until(&format!("idle after task #{id}"), LONG, || {
            let s = status.poll()?;
            let a = &s.agents[&agent];
            seen_busy |= a.task.is_some();
            (seen_busy && a.state == AgentState::Idle && a.task.is_none()).then_some(())
        });
    }
    // The last task's done write is seen before the agent turns idle; its events need a moment
    // to come through the watcher's thread.
    std::thread::sleep(Duration::from_millis(200));
    let opened = opens.load(std::sync::atomic::Ordering::Relaxed) - opens_before;
    drop(watcher);
    sb.batty(&["stop", phase]);
    BoardCase {
        start,
        cat,
        dispatch: percentile(&dispatch, 0.5),
        opens_per_task: opened as f64 / samples as f64,
    }
}
