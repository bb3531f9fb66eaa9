//! Supervisor benchmark: `cargo run --release --example bench_supervise [-- OPTIONS]`.
//!
//! Runs the real `batty` binary on a temp git repo and a private tmux server
//! (`tmux -S <tmp>/sock`, `TMUX` unset), with the demo agent doing no work
//! (`--delay 0 --lines 0`), and prints medians (and p95) of:
//! - dispatch latency: a task file renamed into the board's task folder -> the first bytes of
//!   its message (`Task #<id>:`) in the idle agent's pty log, against a bare paste into the
//!   same pane (`load-buffer` + `paste-buffer` of a probe line -> its echo in the same pty
//!   log), the two interleaved sample by sample so they share the machine's load;
//! - the tmux and git calls the supervisor makes per dispatched task, counted in a second
//!   sandbox whose PATH starts with logging shims: those between the task file appearing and
//!   its message in the pty log (the dispatch path), and those of the whole task;
//! - idle detection latency: the agent's ready prompt `demo> ` in its pty log -> the status
//!   snapshot `.batty/run/<phase>/status.json` saying `idle` (goal: silence + 20 ms);
//! - loop overhead per task: N tasks queued at once for one agent; (wall time until all are
//!   done and the agent idle - the agent's own time per task (its message appearing -> its
//!   prompt after `finished #<id>`) - N x silence) / N; the table shows the supervisor's
//!   whole time per task, (wall - agent) / N, against the silence window;
//! - supervisor CPU (all threads, /proc/<pid>/task/*/schedstat; plus its reaped children's
//!   utime+stime) while 8 agents sit quiet;
//! - supervisor CPU per MB of agent output (one task whose agent prints many lines).
//!
//! Options: `--tasks N` (default 50, samples per latency and tasks in the batch), `--quiet S`
//! (seconds, default 30), `--lines N` (lines the chatty agent prints, default 400000, about
//! 10 MB), `--batty PATH` (repeatable: measure these binaries, one after the other in this
//! run, instead of the one built beside this example). The tmux server is killed and the
//! temp dir removed at the end, also on failure.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use batty::status::AgentState;
use batty::tmux::{Server, Tmux};
use support::{
    CallLog, Cpu, LONG, Mark, PtyWatch, Row, Sandbox, StatusWatch, ms, percentile, poll_until,
    verdict,
};

/// How often files are polled while a latency is being timed.
const POLL: Duration = Duration::from_micros(200);

struct Opts {
    tasks: u64,
    quiet: u64,
    lines: u64,
    binaries: Vec<PathBuf>,
}

fn parse_opts() -> Opts {
    let mut opts = Opts {
        tasks: 50,
        quiet: 30,
        lines: 400_000,
        binaries: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("`{flag}` needs a value"));
        if flag == "--batty" {
            opts.binaries.push(PathBuf::from(value));
            continue;
        }
        let n: u64 = value
            .parse()
            .unwrap_or_else(|_| panic!("`{flag}` needs a number"));
        match flag.as_str() {
            "--tasks" => opts.tasks = n.max(1),
            "--quiet" => opts.quiet = n.max(1),
            "--lines" => opts.lines = n.max(1),
            _ => panic!(
                "unknown option `{flag}` (known: --tasks N, --quiet S, --lines N, --batty PATH)"
            ),
        }
    }
    opts
}

fn config(batty: &Path, lines: u64) -> String {
    format!(
        "agents:\n  demo:\n    args: [\"--delay\", \"0\", \"--lines\", \"0\"]\n  \
         chatty:\n    command: \"'{}' demo-agent --delay 0 --lines {lines}\"\n    \
         ready_pattern: '^demo>\\s*$'\n",
        batty.display()
    )
}

fn main() {
    let opts = parse_opts();
    let binaries = support::binaries(&opts.binaries);
    for batty in &binaries {
        if binaries.len() > 1 {
            println!("== {}", support::label(batty));
        }
        measure(batty, &opts, binaries.len() > 1);
    }
}

fn measure(batty: &Path, opts: &Opts, several: bool) {
    let who = support::label(batty);
    // Figures of several binaries are told apart in the table.
    let fig = |name: &str| {
        if several {
            format!("{name} [{who}]")
        } else {
            name.to_owned()
        }
    };
    let sb = Sandbox::new(batty.to_owned());
    let phase = "bench";
    sb.setup(&[phase, "bulk"], &config(batty, opts.lines));
    let loaded = batty::config::Config::load(&sb.repo.join(".batty/config.yml"))
        .expect("the bench config loads");
    let silence = loaded.supervisor.silence;
    println!(
        "bench_supervise: {} tasks, demo agent --delay 0 --lines 0, silence {} ms, merge {}",
        opts.tasks,
        silence.as_millis(),
        if loaded.merge.enabled { "on" } else { "off" }
    );
    let round_trip = round_trip(&sb);
    println!(
        "baseline: one tmux command round trip          p50 {:>7.2} ms",
        ms(round_trip)
    );

    // One agent, tasks added one at a time while it is idle; between two tasks, a bare
    // paste into the same pane.
    sb.batty(&["work", phase, "--parallel", "1", "--agent", "demo"]);
    let mut status = StatusWatch::new(sb.status_path(phase));
    let (pid, agents) = status.wait_idle(1);
    let agent = agents[0].clone();
    let pty = sb.pty_log(phase, &agent);
    let pane = agent_pane(&sb, &agent);
    let tmux = Tmux::new(Server::Path(sb.sock.clone()));

    let mut dispatch = Vec::new();
    let mut paste = Vec::new();
    let mut idle = Vec::new();
    let cpu_before = Cpu::of(pid);
    for id in 1..=opts.tasks {
        let (d, i) = one_task(&sb, &mut status, &pty, &agent, phase, id);
        dispatch.push(d);
        idle.push(i);
        paste.push(bare_paste(&tmux, &pane, &pty, id));
        // The probe made the agent print its prompt again: let the supervisor's look at
        // the screen after the silence pass before the next task is timed.
        std::thread::sleep(silence + Duration::from_millis(50));
    }
    let per_task = Cpu::of(pid).since(cpu_before);
    let n = opts.tasks as u32;

    let p50 = percentile(&paste, 0.5);
    let d50 = percentile(&dispatch, 0.5);
    let d95 = percentile(&dispatch, 0.95);
    println!(
        "baseline: bare paste into the agent's pane -> its pty log  p50 {:>7.2} ms  p95 {:>7.2} ms",
        ms(p50),
        ms(percentile(&paste, 0.95))
    );
    let ratio = ms(d50) / ms(p50);
    println!(
        "dispatch latency (file saved -> message in pty log): p50 {:>7.2} ms  p95 {:>7.2} ms  \
         ({ratio:.2}x bare paste)  goal p50 <= 2x bare paste: {}",
        ms(d50),
        ms(d95),
        verdict(ratio <= 2.0)
    );
    Row {
        bench: "supervise",
        figure: fig("dispatch p50 (file saved -> message in pty log)"),
        median: ms(d50),
        unit: "ms",
        baseline: Some(("bare paste into the same pane", ms(p50))),
        ratio: None,
        goal: "<= 2x",
        ok: Some(ratio <= 2.0),
    }
    .emit();
    let i50 = percentile(&idle, 0.5);
    let i95 = percentile(&idle, 0.95);
    let idle_ok = i50 <= silence + Duration::from_millis(20);
    println!(
        "idle detection (prompt in pty log -> status idle):   p50 {:>7.2} ms  p95 {:>7.2} ms  \
         (silence {} ms + {:.2} ms)  goal <= silence + 20: {}",
        ms(i50),
        ms(i95),
        silence.as_millis(),
        ms(i50.saturating_sub(silence)),
        verdict(idle_ok)
    );
    Row {
        bench: "supervise",
        figure: fig("idle detection p50 (prompt -> status idle)"),
        median: ms(i50),
        unit: "ms",
        baseline: Some(("silence", ms(silence))),
        ratio: None,
        goal: "<= silence + 20 ms",
        ok: Some(idle_ok),
    }
    .emit();
    println!(
        "supervisor CPU per task (one at a time): {:.2} ms own + {:.2} ms children (git, tmux)",
        ms(per_task.own) / f64::from(n),
        ms(per_task.children) / f64::from(n)
    );

    // The same agent, all tasks queued at once.
    status.wait_idle(1);
    let first = opts.tasks + 1;
    let last = opts.tasks * 2;
    let mut watch = PtyWatch::at_end(pty.clone(), "demo> ");
    let mut started: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut agent_time = Duration::ZERO;
    let t0 = Instant::now();
    for id in first..=last {
        sb.add_task(phase, id);
    }
    let end = poll_until("the batch to finish", LONG * 5, POLL, || {
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
                Mark::Probe(_) => {}
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
    // The table shows the supervisor's whole share per task (silence included): with the
    // prompt read at once the silence is no longer in the loop, and the overhead beyond it
    // would print as 0.
    let share = gap / n;
    Row {
        bench: "supervise",
        figure: fig("supervisor time per queued task (wall - agent's own time) / N"),
        median: ms(share),
        unit: "ms",
        baseline: Some(("silence", ms(silence))),
        ratio: Some(ms(share) / ms(silence)),
        goal: "<= silence + 50 ms",
        ok: Some(ms(share) <= ms(silence) + 50.0),
    }
    .emit();

    // Eight agents with nothing to do.
    sb.batty(&["work", phase, "--parallel", "8", "--agent", "demo"]);
    let pid = status.wait_idle(8).0;
    poll_until("the merge queue to drain", LONG * 5, POLL * 10, || {
        let s = status.poll()?;
        let busy = s
            .merge_queue
            .iter()
            .any(|e| e.state == "waiting" || e.state == "merging");
        (!busy).then_some(())
    });
    // Past the last silence timer and any publish after it.
    std::thread::sleep(silence * 2);
    let before = Cpu::of(pid);
    std::thread::sleep(Duration::from_secs(opts.quiet));
    let quiet = Cpu::of(pid).since(before);
    let quiet_ms = ms(quiet.own + quiet.children) * 30.0 / opts.quiet as f64;
    println!(
        "supervisor CPU, 8 agents quiet for {} s: {:.2} ms own + {:.2} ms children, {:.2} \
         wake-ups/s  goal < 30 ms per 30 s: {}",
        opts.quiet,
        ms(quiet.own),
        ms(quiet.children),
        quiet.switches as f64 / opts.quiet as f64,
        verdict(quiet_ms < 30.0)
    );
    sb.batty(&["stop", phase]);

    // One agent printing a lot for one task.
    sb.batty(&["work", "bulk", "--parallel", "1", "--agent", "chatty"]);
    let mut status = StatusWatch::new(sb.status_path("bulk"));
    let pid = status.wait_idle(1).0;
    let agent = status
        .poll()
        .and_then(|s| s.agents.keys().next().cloned())
        .expect("one agent");
    let pty = sb.pty_log("bulk", &agent);
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let bytes_before = size(&pty);
    let before = Cpu::of(pid);
    let t0 = Instant::now();
    sb.add_task("bulk", 1);
    poll_until("the chatty task to finish", LONG * 5, POLL * 10, || {
        let done = status.poll().is_some_and(|s| s.tasks_done == 1);
        (done && status.all_idle(1)).then_some(())
    });
    let took = t0.elapsed();
    let bulk = Cpu::of(pid).since(before);
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
    Row {
        bench: "supervise",
        figure: fig("supervisor CPU per MB of agent output"),
        median: per_mb,
        unit: "ms/MB",
        baseline: None,
        ratio: None,
        goal: "<= 5 ms/MB",
        ok: Some(per_mb <= 5.0),
    }
    .emit();
    drop(sb);

    count_calls(batty, opts, &fig);
}

/// Times one task: its file saved -> its message in the pty log (dispatch), and its prompt
/// after `finished` -> the status saying idle (idle detection).
fn one_task(
    sb: &Sandbox,
    status: &mut StatusWatch,
    pty: &Path,
    agent: &str,
    phase: &str,
    id: u64,
) -> (Duration, Duration) {
    poll_until("the agent to be idle", LONG, POLL, || {
        status.all_idle(1).then_some(())
    });
    let mut watch = PtyWatch::at_end(pty.to_owned(), "demo> ");
    let t0 = Instant::now();
    sb.add_task(phase, id);
    let mut seen_busy = false;
    let mut message = None;
    let prompt = poll_until(&format!("task #{id} to finish"), LONG, POLL, || {
        seen_busy |= status
            .poll()
            .is_some_and(|s| s.agents[agent].task.is_some());
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
    let idle_at = poll_until(&format!("idle after task #{id}"), LONG, POLL, || {
        seen_busy |= status
            .poll()
            .is_some_and(|s| s.agents[agent].task.is_some());
        let s = status.poll()?;
        let a = &s.agents[agent];
        (seen_busy && a.state == AgentState::Idle && a.task.is_none()).then(Instant::now)
    });
    (message - t0, idle_at - prompt)
}

/// The executor pane of `agent`: in the agent's window, the pane that is not its log pane
/// (older builds do not tag their panes, so the tags are not used).
fn agent_pane(sb: &Sandbox, agent: &str) -> String {
    let panes = sb.tmux(&[
        "list-panes",
        "-a",
        "-F",
        "#{pane_id}\t#{window_name}\t#{pane_start_command}",
    ]);
    panes
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, '\t');
            let (id, window, start) = (f.next()?, f.next()?, f.next().unwrap_or(""));
            (window == agent && !start.contains("--follow")).then(|| id.to_owned())
        })
        .unwrap_or_else(|| panic!("the agent's executor pane is listed:\n{panes}"))
}

/// A bare delivery into the agent's own pane: the two tmux calls a paste takes
/// (`load-buffer`, `paste-buffer`) of a probe line, until its echo shows in the pty log.
fn bare_paste(tmux: &Tmux, pane: &str, pty: &Path, k: u64) -> Duration {
    let marker = format!("probe-{k}:");
    let mut offset = std::fs::metadata(pty).map(|m| m.len()).unwrap_or(0);
    let mut seen = Vec::new();
    let t0 = Instant::now();
    tmux.paste_text(pane, &format!("{marker}\n"))
        .expect("paste into the agent's pane");
    poll_until("the probe's echo", LONG, POLL, || {
        let mut f = File::open(pty).ok()?;
        f.seek(SeekFrom::Start(offset)).ok()?;
        let n = f.read_to_end(&mut seen).ok()?;
        offset += n as u64;
        support::find(&seen, marker.as_bytes()).map(|_| t0.elapsed())
    })
}

/// One tmux command round trip (`display-message`), median of 30.
fn round_trip(sb: &Sandbox) -> Duration {
    sb.tmux(&["-f", "/dev/null", "new-session", "-d", "-s", "baseline"]);
    let samples: Vec<Duration> = (0..30)
        .map(|_| {
            let t0 = Instant::now();
            sb.tmux(&["display-message", "-p", "#{pid}"]);
            t0.elapsed()
        })
        .collect();
    sb.tmux(&["kill-session", "-t", "baseline"]);
    percentile(&samples, 0.5)
}

/// The supervisor's tmux and git calls per task, counted through logging shims in a sandbox
/// of their own (the shims slow every call down, so nothing is timed here).
fn count_calls(batty: &Path, opts: &Opts, fig: &dyn Fn(&str) -> String) {
    let mut sb = Sandbox::new(batty.to_owned());
    let shims = CallLog::install(&sb.root);
    sb.path_prefix = vec![shims.dir.clone()];
    let phase = "count";
    sb.setup(&[phase], &config(batty, opts.lines));
    sb.batty(&["work", phase, "--parallel", "1", "--agent", "demo"]);
    let mut status = StatusWatch::new(sb.status_path(phase));
    let (pid, agents) = status.wait_idle(1);
    let agent = agents[0].clone();
    let pty = sb.pty_log(phase, &agent);
    let n = opts.tasks.min(10);
    let mut windows = Vec::new();
    for id in 1..=n {
        let t0 = support::unix_now();
        let mut watch = PtyWatch::at_end(pty.clone(), "demo> ");
        sb.add_task(phase, id);
        let message = poll_until(&format!("task #{id}'s message"), LONG, POLL, || {
            watch
                .poll()
                .contains(&Mark::Message(id))
                .then(support::unix_now)
        });
        poll_until(&format!("idle after task #{id}"), LONG, POLL, || {
            let s = status.poll()?;
            (s.tasks_done as u64 == id && status.all_idle(1)).then_some(())
        });
        windows.push((t0, message, support::unix_now()));
    }
    let calls: Vec<_> = shims.calls().into_iter().filter(|c| c.1 == pid).collect();
    let count = |program: &str, to_message: bool| -> (f64, BTreeMap<String, usize>) {
        let mut by_sub: BTreeMap<String, usize> = BTreeMap::new();
        let mut total = 0;
        for (t, _, prog, sub) in &calls {
            let inside = windows
                .iter()
                .any(|&(a, m, e)| *t >= a && if to_message { *t <= m } else { *t <= e });
            if inside && prog == program {
                *by_sub.entry(sub.clone()).or_default() += 1;
                total += 1;
            }
        }
        (total as f64 / n as f64, by_sub)
    };
    let show = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(s, c)| format!("{s} {:.1}", *c as f64 / n as f64))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (program, what) in [("tmux", "tmux"), ("git", "git")] {
        let (path, path_by) = count(program, true);
        let (whole, whole_by) = count(program, false);
        println!(
            "{what} calls per task ({n} tasks): {path:.1} on the dispatch path ({}); \
             {whole:.1} for the whole task ({})",
            show(&path_by),
            show(&whole_by)
        );
        Row {
            bench: "supervise",
            figure: fig(&format!("{what} calls, task file saved -> message pasted")),
            median: path,
            unit: "calls",
            baseline: None,
            ratio: None,
            goal: "-",
            ok: None,
        }
        .emit();
        Row {
            bench: "supervise",
            figure: fig(&format!("{what} calls per task, dispatch to idle")),
            median: whole,
            unit: "calls",
            baseline: None,
            ratio: None,
            goal: "-",
            ok: None,
        }
        .emit();
    }
}
