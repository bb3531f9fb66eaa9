//! Fleet benchmark: `cargo run --release --example bench_fleet [-- OPTIONS]`.
//!
//! Two figures of a whole fleet, each against a floor measured in the same run:
//!
//! - **Throughput**: T tasks (default 200) dropped at once on a board worked by A zero-work
//!   agents (default 8). Each agent is a tiny shell loop that shows `zw> `, reads a task
//!   message, runs `batty task done <id>` and shows its prompt again; in the `report` variant
//!   it also says `batty agent-status busy` and `idle` around it, in the `screen` variant the
//!   supervisor reads its screen. The floor is a dispatcher that does nothing but one paste
//!   per task (one tmux call: load the buffer, paste it, press Enter) into the same kind of
//!   agents, in panes of the same server, as soon as an agent is ready: when it reports idle
//!   (`report`) or when its prompt appears in its pty log (`screen`), both seen through
//!   inotify. Tasks per second = T / (the first task file written -> the T-th task finished),
//!   finished meaning the agent ran `batty task done` and logged the id. The ratio is batty's
//!   rate over the floor's (goals: `report` >= 0.7x, `screen` >= 0.35x).
//! - **Quiet fleet**: `batty work` with Q demo agents (default 32) that sit at their prompt;
//!   over S seconds (default 30), the wake-ups (context switches of every thread) and CPU
//!   time of the supervisor and of the Q log panes (`batty logs --follow`) together (goals:
//!   under 1 wake-up/s and under 20 ms per 30 s). The pty log writers are shown apart.
//!
//! Options: `--tasks T`, `--agents A`, `--runs R` (throughput runs per variant, alternating
//! batty and floor; default 3), `--quiet-agents Q`, `--quiet S`, `--only throughput|quiet`,
//! `--batty PATH` (repeatable: measure these binaries in this run instead of the one built
//! beside this example).

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::Watcher;
use support::{CallLog, Cpu, LONG, Row, Sandbox, StatusWatch, median_f, ms, poll_until, verdict};

struct Opts {
    tasks: u64,
    agents: usize,
    runs: usize,
    quiet_agents: usize,
    quiet: u64,
    only: Option<String>,
    binaries: Vec<PathBuf>,
}

fn parse_opts() -> Opts {
    let mut opts = Opts {
        tasks: 200,
        agents: 8,
        runs: 3,
        quiet_agents: 32,
        quiet: 30,
        only: None,
        binaries: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("`{flag}` needs a value"));
        let n = || -> u64 {
            value
                .parse()
                .unwrap_or_else(|_| panic!("`{flag}` needs a number"))
        };
        match flag.as_str() {
            "--tasks" => opts.tasks = n().max(1),
            "--agents" => opts.agents = n().clamp(1, 64) as usize,
            "--runs" => opts.runs = n().max(1) as usize,
            "--quiet-agents" => opts.quiet_agents = n().clamp(1, 64) as usize,
            "--quiet" => opts.quiet = n().max(1),
            "--only" => opts.only = Some(value),
            "--batty" => opts.binaries.push(PathBuf::from(value)),
            _ => panic!(
                "unknown option `{flag}` (known: --tasks, --agents, --runs, --quiet-agents, \
                 --quiet, --only throughput|quiet, --batty PATH)"
            ),
        }
    }
    opts
}

/// How the agents tell that they are ready again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `batty agent-status busy|idle`.
    Report,
    /// Nothing: their screen is read.
    Screen,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Report => "report",
            Variant::Screen => "screen",
        }
    }

    fn goal(self) -> f64 {
        match self {
            Variant::Report => 0.7,
            Variant::Screen => 0.35,
        }
    }
}

const PROMPT: &str = "zw> ";

/// The zero-work agent. `$1` is `report` or `screen`, `$2` the file each finished id goes to.
fn agent_script(batty: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # A zero-work agent: reads a task message, runs `batty task done <id>`, shows its prompt.\n\
         batty='{}'\n\
         mode=$1\n\
         done_log=$2\n\
         printf '{PROMPT}'\n\
         while IFS= read -r line; do\n\
         \x20 case $line in\n\
         \x20   *'batty task done '*)\n\
         \x20     id=${{line##*batty task done }}\n\
         \x20     id=${{id%%[!0-9]*}}\n\
         \x20     [ \"$mode\" = report ] && \"$batty\" agent-status busy\n\
         \x20     \"$batty\" -q task done \"$id\" >/dev/null\n\
         \x20     [ \"$mode\" = report ] && \"$batty\" agent-status idle\n\
         \x20     echo \"$id\" >> \"$done_log\"\n\
         \x20     printf '{PROMPT}';;\n\
         \x20 esac\n\
         done\n",
        batty.display()
    )
}

fn main() {
    let opts = parse_opts();
    let binaries = support::binaries(&opts.binaries);
    let several = binaries.len() > 1;
    let want = |what: &str| opts.only.as_deref().is_none_or(|o| o == what);
    if want("throughput") {
        for variant in [Variant::Report, Variant::Screen] {
            throughput(&binaries, &opts, variant, several);
        }
    }
    if want("quiet") {
        for batty in &binaries {
            quiet_fleet(batty, &opts, several);
        }
    }
}

/// The sandbox for one binary's throughput runs: the agent script, a board per run.
struct Fleet {
    sb: Sandbox,
    script: PathBuf,
    runs: usize,
}

impl Fleet {
    fn new(batty: &Path, shims: bool) -> Fleet {
        let mut sb = Sandbox::new(batty.to_owned());
        if shims {
            let calls = CallLog::install(&sb.root);
            sb.path_prefix = vec![calls.dir];
        }
        let script = sb.root.join("zw.sh");
        std::fs::write(&script, agent_script(batty)).expect("write the agent script");
        let config = format!(
            "agents:\n\
             \x20 zwr: {{ command: \"sh {s} report {r}/done.log\", ready_pattern: '^zw>\\s*$' }}\n\
             \x20 zws: {{ command: \"sh {s} screen {r}/done.log\", ready_pattern: '^zw>\\s*$' }}\n",
            s = script.display(),
            r = sb.root.display()
        );
        sb.setup(&[], &config);
        Fleet {
            sb,
            script,
            runs: 0,
        }
    }

    /// A new phase with an empty board; its name.
    fn phase(&mut self, prefix: &str) -> String {
        self.runs += 1;
        let phase = format!("{prefix}{}", self.runs);
        self.sb.batty(&["init", "--phase", &phase]);
        phase
    }

    fn done_count(&self) -> u64 {
        std::fs::read(self.sb.root.join("done.log"))
            .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
            .unwrap_or(0)
    }
}

/// Tasks per second of batty and of the floor, alternating, `runs` times each.
fn throughput(binaries: &[PathBuf], opts: &Opts, variant: Variant, several: bool) {
    for batty in binaries {
        let mut fleet = Fleet::new(batty, false);
        let mut ours = Vec::new();
        let mut floor = Vec::new();
        for _ in 0..opts.runs {
            ours.push(batty_run(&mut fleet, opts, variant).0);
            floor.push(floor_run(&mut fleet, opts, variant));
        }
        drop(fleet);
        let (o, f) = (median_f(&ours), median_f(&floor));
        let ratio = o / f;
        let who = if several {
            format!(" [{}]", support::label(batty))
        } else {
            String::new()
        };
        let show = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "throughput, {} tasks on {} zero-work agents ({}){who}: batty {o:.1} tasks/s \
             (runs: {}), one paste per task {f:.1} tasks/s (runs: {}): {ratio:.2}x  goal >= \
             {}x: {}",
            opts.tasks,
            opts.agents,
            variant.name(),
            show(&ours),
            show(&floor),
            variant.goal(),
            verdict(ratio >= variant.goal())
        );
        Row {
            bench: "fleet",
            figure: format!(
                "throughput, {} tasks on {} agents that {}{who}",
                opts.tasks,
                opts.agents,
                match variant {
                    Variant::Report => "report their state",
                    Variant::Screen => "are read from the screen",
                }
            ),
            median: o,
            unit: "tasks/s",
            baseline: Some(("one paste per task", f)),
            ratio: Some(ratio),
            goal: match variant {
                Variant::Report => ">= 0.7x",
                Variant::Screen => ">= 0.35x",
            },
            ok: Some(ratio >= variant.goal()),
        }
        .emit();
        count_calls(batty, opts, variant);
    }
}

/// The supervisor's tmux and git calls per task in one more run, through logging shims (so
/// its time is not counted).
fn count_calls(batty: &Path, opts: &Opts, variant: Variant) {
    let mut fleet = Fleet::new(batty, true);
    let log = CallLog {
        dir: fleet.sb.root.join("shims"),
        log: fleet.sb.root.join("shims/calls.log"),
    };
    let (_, pid) = batty_run(&mut fleet, opts, variant);
    let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (_, parent, program, sub) in log.calls() {
        if parent == pid {
            *by.entry((program, sub)).or_default() += 1;
        }
    }
    let n = opts.tasks as f64;
    for program in ["tmux", "git"] {
        let total: usize = by
            .iter()
            .filter(|((p, _), _)| p == program)
            .map(|(_, c)| c)
            .sum();
        let subs: Vec<String> = by
            .iter()
            .filter(|((p, _), _)| p == program)
            .map(|((_, s), c)| format!("{s} {:.2}", *c as f64 / n))
            .collect();
        println!(
            "  supervisor {program} calls per task ({}): {:.2} ({}), start-up included",
            variant.name(),
            total as f64 / n,
            subs.join(", ")
        );
    }
}

/// One batty run: A agents idle, T task files dropped in, until T are finished. The rate
/// and the supervisor's pid.
fn batty_run(fleet: &mut Fleet, opts: &Opts, variant: Variant) -> (f64, u32) {
    let phase = fleet.phase("tp");
    let kind = match variant {
        Variant::Report => "zwr",
        Variant::Screen => "zws",
    };
    let n = opts.agents.to_string();
    fleet
        .sb
        .batty(&["work", &phase, "--parallel", &n, "--agent", kind]);
    let (pid, _) = StatusWatch::new(fleet.sb.status_path(&phase)).wait_idle(opts.agents);
    let before = fleet.done_count();
    let t0 = Instant::now();
    for id in 1..=opts.tasks {
        fleet.sb.add_task(&phase, id);
    }
    let end = poll_until(
        "every task finished",
        LONG * 5,
        Duration::from_millis(2),
        || (fleet.done_count() - before >= opts.tasks).then(Instant::now),
    );
    let rate = opts.tasks as f64 / (end - t0).as_secs_f64();
    fleet.sb.batty(&["stop", &phase]);
    (rate, pid)
}

/// The floor: the same agents in panes of their own, driven by nothing but one paste per
/// task as soon as an agent is ready.
fn floor_run(fleet: &mut Fleet, opts: &Opts, variant: Variant) -> f64 {
    let phase = fleet.phase("fl");
    let sb = &fleet.sb;
    let board = sb.board(&phase);
    for id in 1..=opts.tasks {
        sb.add_task(&phase, id);
    }
    let logs = sb.repo.join(format!(".batty/logs/{phase}"));
    let reports = sb.repo.join(format!(".batty/run/{phase}/agents"));
    std::fs::create_dir_all(&logs).expect("create the floor's log folder");
    std::fs::create_dir_all(&reports).expect("create the floor's report folder");
    let session = format!("floor-{phase}");
    let done_log = sb.root.join("done.log");
    let mut panes = Vec::new();
    for i in 0..opts.agents {
        let agent = format!("floor-{i}");
        let command = format!(
            "env BATTY_AGENT={agent} BATTY_PHASE={phase} BATTY_BOARD='{}' sh '{}' {} '{}'",
            board.display(),
            fleet.script.display(),
            variant.name(),
            done_log.display()
        );
        let created = if i == 0 {
            sb.tmux(&[
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "200",
                "-y",
                "50",
                "-P",
                "-F",
                "#{pane_id}",
                &command,
            ])
        } else {
            sb.tmux(&[
                "new-window",
                "-d",
                "-t",
                &session,
                "-P",
                "-F",
                "#{pane_id}",
                &command,
            ])
        };
        let pty = logs.join(format!("{agent}.pty.log"));
        sb.tmux(&[
            "pipe-pane",
            "-o",
            "-t",
            &created,
            &format!("cat >> '{}'", pty.display()),
        ]);
        panes.push(Agent {
            pane: created,
            pty,
            offset: 0,
            report: reports.join(format!("{agent}.status")),
            report_offset: 0,
            tail: Vec::new(),
        });
    }
    // Everyone at its first prompt (untimed).
    for a in &mut panes {
        poll_until(
            "a floor agent's prompt",
            LONG,
            Duration::from_millis(5),
            || {
                let screen = sb.tmux(&["capture-pane", "-p", "-t", &a.pane]);
                screen.trim_end().ends_with(PROMPT.trim_end()).then_some(())
            },
        );
        a.offset = std::fs::metadata(&a.pty).map(|m| m.len()).unwrap_or(0);
    }
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut watcher = notify::recommended_watcher(move |ev| {
        let _ = tx.send(ev);
    })
    .expect("an inotify watcher");
    let watched = match variant {
        Variant::Report => &reports,
        Variant::Screen => &logs,
    };
    watcher
        .watch(watched, notify::RecursiveMode::NonRecursive)
        .expect("watch the floor's folder");

    let before = fleet.done_count();
    let mut todo: VecDeque<u64> = (1..=opts.tasks).collect();
    let mut ready: VecDeque<usize> = (0..panes.len()).collect();
    let mut busy: BTreeMap<usize, ()> = BTreeMap::new();
    let t0 = Instant::now();
    loop {
        while let (Some(&i), Some(&id)) = (ready.front(), todo.front()) {
            ready.pop_front();
            todo.pop_front();
            panes[i].note_position();
            paste_once(sb, &panes[i].pane, &message(&board, id));
            busy.insert(i, ());
        }
        if fleet.done_count() - before >= opts.tasks {
            break;
        }
        assert!(t0.elapsed() < LONG * 5, "the floor run never finished");
        let _ = rx.recv_timeout(Duration::from_millis(100));
        while rx.try_recv().is_ok() {}
        let was_busy: Vec<usize> = busy.keys().copied().collect();
        for i in was_busy {
            if panes[i].ready_again(variant) {
                busy.remove(&i);
                ready.push_back(i);
            }
        }
    }
    let end = Instant::now();
    drop(watcher);
    sb.tmux(&["kill-session", "-t", &session]);
    opts.tasks as f64 / (end - t0).as_secs_f64()
}

/// A floor agent: its pane, and where it was in its pty log and report file.
struct Agent {
    pane: String,
    pty: PathBuf,
    offset: u64,
    report: PathBuf,
    report_offset: u64,
    tail: Vec<u8>,
}

impl Agent {
    /// Remembers where its files end before a task goes in.
    fn note_position(&mut self) {
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        self.offset = len(&self.pty);
        self.report_offset = len(&self.report);
        self.tail.clear();
    }

    /// Whether it says (`report`) or shows (`screen`) that it is ready since the last task.
    fn ready_again(&mut self, variant: Variant) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let (path, offset, needle): (&Path, &mut u64, &[u8]) = match variant {
            Variant::Report => (&self.report, &mut self.report_offset, b"\"idle\""),
            Variant::Screen => (&self.pty, &mut self.offset, PROMPT.as_bytes()),
        };
        let Ok(mut f) = std::fs::File::open(path) else {
            return false;
        };
        if f.seek(SeekFrom::Start(*offset)).is_err() {
            return false;
        }
        let before = self.tail.len();
        let _ = f.read_to_end(&mut self.tail);
        *offset += (self.tail.len() - before) as u64;
        support::find(&self.tail, needle).is_some()
    }
}

/// The message batty would paste for task `id` (its default phrasing).
fn message(board: &Path, id: u64) -> String {
    format!(
        "Task #{id}: bench {id}\nBoard: {}\nWhen you are done, commit your work on the current \
         branch, then run `batty task done {id}`.",
        board.display()
    )
}

/// One tmux call: load the text into a buffer, paste it, press Enter.
fn paste_once(sb: &Sandbox, pane: &str, text: &str) {
    use std::io::Write;
    let mut cmd = sb.command("tmux");
    cmd.arg("-S").arg(&sb.sock).args([
        "load-buffer",
        "-b",
        "floor",
        "-",
        ";",
        "paste-buffer",
        "-p",
        "-d",
        "-b",
        "floor",
        "-t",
        pane,
        ";",
        "send-keys",
        "-t",
        pane,
        "Enter",
    ]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run tmux");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("write the message to tmux");
    let status = child.wait().expect("wait for tmux");
    assert!(status.success(), "the floor's paste failed");
}

/// Q demo agents at their prompt: what the supervisor and the log panes cost over S seconds.
fn quiet_fleet(batty: &Path, opts: &Opts, several: bool) {
    let sb = Sandbox::new(batty.to_owned());
    sb.setup(
        &["quiet"],
        "agents:\n  demo:\n    args: [\"--delay\", \"0\", \"--lines\", \"0\"]\n",
    );
    let n = opts.quiet_agents;
    sb.batty(&[
        "work",
        "quiet",
        "--parallel",
        &n.to_string(),
        "--agent",
        "demo",
    ]);
    let mut status = StatusWatch::new(sb.status_path("quiet"));
    let (supervisor, _) = status.wait_idle(n);
    // Each agent's window: its executor pane and its log pane, told apart by the command
    // the pane started with (older builds do not tag their panes).
    let panes = sb.tmux(&[
        "list-panes",
        "-a",
        "-F",
        "#{pane_pid}\t#{pane_start_command}",
    ]);
    let logs: Vec<u32> = panes
        .lines()
        .filter_map(|l| {
            let (pid, start) = l.split_once('\t')?;
            (start.contains(" logs ") && start.contains("--follow"))
                .then(|| pid.parse().ok())
                .flatten()
        })
        .collect();
    assert_eq!(logs.len(), n, "one log pane per agent:\n{panes}");
    let writers = log_writers(&sb.root);
    // Past every agent's first look at its screen and the publish after it.
    std::thread::sleep(Duration::from_secs(3));
    let secs = opts.quiet as f64;
    let sup0 = Cpu::of(supervisor);
    let logs0 = Cpu::of_all(&logs);
    let writers0 = Cpu::of_all(&writers);
    std::thread::sleep(Duration::from_secs(opts.quiet));
    let sup = Cpu::of(supervisor).since(sup0);
    let log = Cpu::of_all(&logs).since(logs0);
    let wr = Cpu::of_all(&writers).since(writers0);
    let wakeups = (sup.switches + log.switches) as f64 / secs;
    let cpu30 = ms(sup.own + sup.children + log.own) * 30.0 / secs;
    let who = if several {
        format!(" [{}]", support::label(batty))
    } else {
        String::new()
    };
    println!(
        "quiet fleet, {n} agents for {} s{who}: supervisor {:.2} wake-ups/s, {:.2} ms CPU \
         ({:.2} ms own + {:.2} ms children); {n} log panes {:.2} wake-ups/s, {:.2} ms CPU; \
         together {wakeups:.2} wake-ups/s, {cpu30:.2} ms per 30 s  goal < 1 and < 20: {}",
        opts.quiet,
        sup.switches as f64 / secs,
        ms(sup.own + sup.children),
        ms(sup.own),
        ms(sup.children),
        log.switches as f64 / secs,
        ms(log.own),
        verdict(wakeups < 1.0 && cpu30 < 20.0)
    );
    println!(
        "  (the {} pty log writers: {:.2} wake-ups/s, {:.2} ms CPU)",
        writers.len(),
        wr.switches as f64 / secs,
        ms(wr.own)
    );
    for (figure, value, unit, goal, ok) in [
        (
            format!("quiet fleet of {n}: wake-ups of supervisor + log panes{who}"),
            wakeups,
            "/s",
            "< 1/s",
            wakeups < 1.0,
        ),
        (
            format!("quiet fleet of {n}: CPU of supervisor + log panes per 30 s{who}"),
            cpu30,
            "ms",
            "< 20 ms",
            cpu30 < 20.0,
        ),
    ] {
        Row {
            bench: "fleet",
            figure,
            median: value,
            unit,
            baseline: None,
            ratio: None,
            goal,
            ok: Some(ok),
        }
        .emit();
    }
}

/// Processes whose command line names this sandbox and runs `log-writer` (the pipe-pane
/// writers of the pty logs).
fn log_writers(root: &Path) -> Vec<u32> {
    let root = root.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("log-writer") && cmdline.contains(&root) {
            pids.push(pid);
        }
    }
    pids
}
