//! Board-size sweep of the running supervisor:
//! `cargo run --release --example bench_board_dispatch [-- OPTIONS]`.
//!
//! For each size, a fresh board of that many done tasks (not committed, see `board_case`),
//! one demo agent (`--delay 0 --lines 0`), and:
//! - the supervisor's start on it (`batty work` -> its agent idle), against `cat` of the
//!   task files in the same run;
//! - `--tasks` tasks added one at a time: dispatch latency (file renamed into the board ->
//!   the task's message in the agent's pty log), and the task files opened in the task folder
//!   per task, counted by inotify from one add to the next;
//!
//! each against the smallest board of the same run, sizes interleaved between binaries so a
//! noisy spell of the machine does not fall on one of them.
//!
//! Options: `--sizes 0,10000` (default), `--tasks N` (default 20), `--batty PATH`
//! (repeatable: time these binaries, e.g. an older build beside the current one).

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use batty::status::AgentState;
use support::{
    LONG, Mark, PtyWatch, Row, Sandbox, StatusWatch, binaries, label, ms, percentile, poll_until,
};

const POLL: Duration = Duration::from_micros(200);

struct Opts {
    sizes: Vec<u64>,
    tasks: u64,
    binaries: Vec<PathBuf>,
}

fn parse_opts() -> Opts {
    let mut opts = Opts {
        sizes: vec![0, 10_000],
        tasks: 20,
        binaries: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("`{flag}` needs a value"));
        match flag.as_str() {
            "--batty" => opts.binaries.push(PathBuf::from(value)),
            "--sizes" => {
                opts.sizes = value
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse()
                            .expect("`--sizes` takes numbers, e.g. 0,10000")
                    })
                    .collect();
            }
            "--tasks" => {
                opts.tasks = value
                    .parse::<u64>()
                    .expect("`--tasks` needs a number")
                    .max(1);
            }
            _ => panic!("unknown option `{flag}` (known: --sizes N,N, --tasks N, --batty PATH)"),
        }
    }
    opts.sizes.sort_unstable();
    opts.sizes.dedup();
    opts
}

/// What one board size cost one binary.
struct BoardCase {
    start: Duration,
    cat: Duration,
    dispatch: Duration,
    opens_per_task: f64,
}

fn main() {
    let opts = parse_opts();
    let binaries = binaries(&opts.binaries);
    println!(
        "bench_board_dispatch: sizes {:?}, {} tasks added per size, demo agent --delay 0 --lines 0",
        opts.sizes, opts.tasks
    );
    let mut results: Vec<Vec<BoardCase>> = binaries.iter().map(|_| Vec::new()).collect();
    for &size in &opts.sizes {
        for (b, batty) in binaries.iter().enumerate() {
            let case = board_case(batty, size, opts.tasks);
            let first = results[b].first().unwrap_or(&case);
            let name = label(batty);
            println!(
                "{name}  {size:>6} tasks: start {:>8.1} ms ({:.2}x cat of the files, {:.1} ms; \
                 {:.2}x the smallest board)  dispatch p50 {:>7.2} ms ({:.2}x the smallest \
                 board)  task files opened per task {:.1}",
                ms(case.start),
                ms(case.start) / ms(case.cat).max(0.001),
                ms(case.cat),
                ms(case.start) / ms(first.start),
                ms(case.dispatch),
                ms(case.dispatch) / ms(first.dispatch),
                case.opens_per_task
            );
            if b == 0 && size != opts.sizes[0] {
                let dispatch_ratio = ms(case.dispatch) / ms(first.dispatch);
                Row {
                    bench: "board_dispatch",
                    figure: format!("dispatch p50 on a {size}-task board"),
                    median: ms(case.dispatch),
                    unit: "ms",
                    baseline: Some(("smallest board", ms(first.dispatch))),
                    ratio: None,
                    goal: "<= 1.5x",
                    ok: Some(dispatch_ratio <= 1.5),
                }
                .emit();
                Row {
                    bench: "board_dispatch",
                    figure: format!("supervisor start on a {size}-task board"),
                    median: ms(case.start),
                    unit: "ms",
                    baseline: Some(("cat of the files", ms(case.cat))),
                    ratio: None,
                    goal: "-",
                    ok: None,
                }
                .emit();
                Row {
                    bench: "board_dispatch",
                    figure: format!("task files opened per dispatch, {size}-task board"),
                    median: case.opens_per_task,
                    unit: "files",
                    baseline: None,
                    ratio: None,
                    goal: "O(1)",
                    ok: Some(case.opens_per_task < 10.0),
                }
                .emit();
            }
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
    sb.setup(
        &[phase],
        "agents:\n  demo:\n    args: [\"--delay\", \"0\", \"--lines\", \"0\"]\n",
    );
    // The old tasks stay out of git: every agent's worktree would hold them, and its `git
    // status` before each task grows with the files in it. That is git's cost, not the board's.
    let tasks = sb.board(phase).join("tasks");
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
    poll_until("the agent to turn idle", LONG, POLL, || {
        status.all_idle(1).then_some(())
    });
    let start = t0.elapsed();
    let snapshot = status.poll().expect("status written").clone();
    let agent = snapshot.agents.keys().next().expect("one agent").clone();
    let pty = sb.pty_log(phase, &agent);

    // Every open of a task file in the folder, by anyone (only the supervisor and its agent's
    // batty calls run here): what a dispatch costs in reads.
    let opens = Arc::new(AtomicU64::new(0));
    let counter = opens.clone();
    // Our own open of this file marks the end: inotify keeps the order of events, so once
    // its open is seen, every open before it has been counted.
    const SENTINEL: &str = ".bench-sentinel";
    let sentinel_seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = sentinel_seen.clone();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        use notify::event::{AccessKind, EventKind};
        let Ok(ev) = ev else { return };
        if !matches!(ev.kind, EventKind::Access(AccessKind::Open(_))) {
            return;
        }
        if ev
            .paths
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == SENTINEL))
        {
            seen.store(true, Ordering::SeqCst);
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
        counter.fetch_add(task_files as u64, Ordering::Relaxed);
    })
    .expect("an inotify watcher");
    watcher
        .watch(&tasks, notify::RecursiveMode::NonRecursive)
        .expect("watch the task folder");

    let mut dispatch = Vec::new();
    let opens_before = opens.load(Ordering::Relaxed);
    for id in size + 1..=size + samples {
        poll_until("the agent to be idle", LONG, POLL, || {
            status.all_idle(1).then_some(())
        });
        let mut watch = PtyWatch::at_end(pty.clone(), "demo> ");
        let t0 = Instant::now();
        sb.add_task(phase, id);
        let mut seen_busy = false;
        let message = poll_until(&format!("task #{id}'s message"), LONG, POLL, || {
            watch.poll().contains(&Mark::Message(id)).then(Instant::now)
        });
        dispatch.push(message - t0);
        poll_until(&format!("idle after task #{id}"), LONG, POLL, || {
            let s = status.poll()?;
            let a = &s.agents[&agent];
            seen_busy |= a.task.is_some();
            (seen_busy && a.state == AgentState::Idle && a.task.is_none()).then_some(())
        });
    }
    // The opens of the last task's done write come through the watcher's own thread.
    std::fs::write(tasks.join(SENTINEL), "").expect("write the sentinel");
    drop(std::fs::File::open(tasks.join(SENTINEL)).expect("open the sentinel"));
    poll_until("the watcher to catch up", LONG, POLL, || {
        sentinel_seen.load(Ordering::SeqCst).then_some(())
    });
    let opened = opens.load(Ordering::Relaxed) - opens_before;
    drop(watcher);
    sb.batty(&["stop", phase]);
    BoardCase {
        start,
        cat,
        dispatch: percentile(&dispatch, 0.5),
        opens_per_task: opened as f64 / samples as f64,
    }
}
