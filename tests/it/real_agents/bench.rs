//! Benchmark of the real agents under batty, not a test (ignored; run it with
//! `BATTY_AGENTS_BIN=... cargo test --release --test it real_agents::bench -- --ignored --nocapture`).
//!
//! Per agent (unattended preset, one agent, merge queue on, batty's default supervisor
//! settings), one warm-up task then `BENCH_TASKS` (10) tasks, each added to the board once the
//! last one is merged, and the medians of:
//! - claimed (the board's `claimed_at`) -> the agent's first model request holding the task;
//! - claimed -> merged (the record's `merge` line) minus the model's own time (the time at
//!   least one model request was open, from its arrival to its answer's last byte).
//!
//! The baseline, measured in the same run with the same program, command line, environment
//! and fake model: the agent in a bare tmux pane on a git worktree, driven the fastest way a
//! script can: the task pasted as batty pastes it the moment the composer is empty, each
//! routine question answered the moment it shows. Its figures are pasted -> first request and
//! pasted -> done (the board's `completed`) minus the model's time; the ratio is batty's.
//! `BENCH_AGENTS` (`claude,codex,aider`), `BENCH_MODEL_DELAY_MS` (0: the fake model's think
//! time before each answer) and `BENCH_ANSWER_GRACE` (`supervisor.answer_grace` under batty,
//! default its default) change the run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use batty::agent::{Adapter, Reply, Screen, TaskMessage};
use batty::tmux::{Server, Tmux};

use super::{Mode, RUN, Run};
use crate::common::BATTY;
use crate::common::e2e::{PHASE, time_of};
use crate::common::fake_model::{Api, Options, Recorded, Turn};

/// One task's figures.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Claimed (or pasted) -> its first model request.
    to_request: Duration,
    /// Claimed -> merged (or pasted -> done), minus `model`.
    to_end: Duration,
    /// The model's own time in that span.
    model: Duration,
}

#[test]
#[ignore = "a benchmark: the real agents under batty vs driven by hand, medians printed"]
fn agents() {
    let env = |k: &str| std::env::var(k).ok();
    let tasks: usize = env("BENCH_TASKS")
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let delay = Duration::from_millis(
        env("BENCH_MODEL_DELAY_MS")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    );
    let agents = env("BENCH_AGENTS").unwrap_or_else(|| "claude,codex,aider".into());
    let supervisor = env("BENCH_ANSWER_GRACE")
        .map(|g| format!("supervisor:\n  answer_grace: {g}\n"))
        .unwrap_or_default();
    let mut rows = Vec::new();
    for agent in agents.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let agent: &'static str = match agent {
            "claude" => "claude",
            "codex" => "codex",
            "aider" => "aider",
            other => panic!("BENCH_AGENTS: unknown agent `{other}` (claude, codex, aider)"),
        };
        let started = Instant::now();
        let Some(bare) = by_hand(agent, tasks, delay) else {
            continue;
        };
        let Some(batty) = under_batty(agent, tasks, delay, &supervisor) else {
            continue;
        };
        eprintln!("{agent}: measured in {:.0?}", started.elapsed());
        rows.push((agent, bare, batty));
    }
    println!(
        "\nmedians over {tasks} tasks per agent, model delay {delay:?}, {}batty (by hand) ratio",
        env("BENCH_ANSWER_GRACE").map_or(String::new(), |g| format!("answer_grace {g}, "))
    );
    println!(
        "{:<8} {:>28} {:>34} {:>20}",
        "agent", "claimed -> first request", "claimed -> merged - model time", "model time"
    );
    for (agent, bare, batty) in rows {
        let pick = |s: &[Sample], f: fn(&Sample) -> Duration| median(s.iter().map(f).collect());
        let cell = |f: fn(&Sample) -> Duration| {
            let (b, h) = (pick(&batty, f), pick(&bare, f));
            format!(
                "{} ({}) {:.2}x",
                secs(b),
                secs(h),
                b.as_secs_f64() / h.as_secs_f64().max(1e-9)
            )
        };
        println!(
            "{agent:<8} {:>28} {:>34} {:>20}",
            cell(|s| s.to_request),
            cell(|s| s.to_end),
            format!(
                "{} ({})",
                secs(pick(&batty, |s| s.model)),
                secs(pick(&bare, |s| s.model))
            ),
        );
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn median(mut v: Vec<Duration>) -> Duration {
    assert!(!v.is_empty(), "no samples");
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn since(to: SystemTime, from: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or_default()
}

/// How long at least one model request (not a model list or a ping) was open within
/// `from..to`: the union of each request's arrival -> answered span, clipped to the window.
fn model_time(requests: &[Recorded], from: SystemTime, to: SystemTime) -> Duration {
    let mut spans: Vec<(SystemTime, SystemTime)> = requests
        .iter()
        .filter(|r| r.api != Api::Other)
        .map(|r| (r.wall.max(from), r.answered.unwrap_or(to).min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    spans.sort();
    let mut total = Duration::ZERO;
    let mut open: Option<(SystemTime, SystemTime)> = None;
    for (a, b) in spans {
        match &mut open {
            Some((_, end)) if a <= *end => *end = (*end).max(b),
            _ => {
                if let Some((s, e)) = open.take() {
                    total += since(e, s);
                }
                open = Some((a, b));
            }
        }
    }
    if let Some((s, e)) = open {
        total += since(e, s);
    }
    total
}

/// The first model request that handed task `id` over.
fn first_request(requests: &[Recorded], id: u64) -> SystemTime {
    requests
        .iter()
        .filter(|r| r.turn == Turn::Task(id))
        .map(|r| r.wall)
        .min()
        .unwrap_or_else(|| panic!("task {id} never reached the model"))
}

fn board_time(task: &serde_json::Value, key: &str) -> SystemTime {
    SystemTime::from(time_of(task, key))
}

/// When the record says task `id` was merged.
fn merged_at(run: &Run, id: u64) -> Option<SystemTime> {
    let path = run.p.sb.path(format!(".batty/logs/{PHASE}/attempts.jsonl"));
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "merge" && e["task"] == id && e["outcome"] == "merged")
        .map(|e| board_time(&e, "at"))
}

/// The agent under `batty work`.
fn under_batty(
    agent: &'static str,
    tasks: usize,
    delay: Duration,
    supervisor: &str,
) -> Option<Vec<Sample>> {
    let options = Options {
        delay,
        ..Options::default()
    };
    let run = Run::with_supervisor(agent, options, 0, Mode::Unattended, supervisor)?;
    run.work_with(1, &[]);
    let mut samples = Vec::new();
    for i in 0..=tasks {
        let id = run.p.add(&format!("Bench task {i}"), &[]);
        let merged = run
            .p
            .wait(&format!("task {id} merged"), RUN, || merged_at(&run, id));
        let claimed = board_time(&run.p.tasks()[&id], "claimed_at");
        if i == 0 {
            continue;
        }
        let requests = run.model.requests();
        let model = model_time(&requests, claimed, merged);
        samples.push(Sample {
            to_request: since(first_request(&requests, id), claimed),
            to_end: since(merged, claimed).saturating_sub(model),
            model,
        });
    }
    let events = run.events();
    assert!(!events.contains("needs a person"), "{events}");
    run.p.sb.batty(["stop", PHASE]).ok();
    Some(samples)
}

/// The agent in a bare tmux pane, driven by this process.
fn by_hand(agent: &'static str, tasks: usize, delay: Duration) -> Option<Vec<Sample>> {
    let options = Options {
        delay,
        ..Options::default()
    };
    let run = Run::with_supervisor(agent, options, 0, Mode::Unattended, "")?;
    let sb = &run.p.sb;
    let config = batty::config::Config::load(&sb.path(".batty/config.yml")).expect("config");
    let adapter = batty::agent::resolve(agent, &config, Path::new(BATTY)).expect("adapter");
    assert!(adapter.unattended, "the preset, as under batty");
    let worktree = sb.path(format!(".batty/worktrees/{PHASE}/by-hand"));
    let branch = format!("batty/{PHASE}/by-hand");
    sb.git([
        "worktree",
        "add",
        "-q",
        "-b",
        &branch,
        &worktree.to_string_lossy(),
        "main",
    ]);
    let board = sb.path(format!(".batty/kanban/{PHASE}"));
    // The pane's environment as batty gives it: the agent variables, the agents' PATH.
    let command = format!(
        "env BATTY_PHASE={PHASE} BATTY_AGENT=by-hand BATTY_BOARD={} sh -c {}",
        batty::proc::shell_word(&board.to_string_lossy()),
        batty::proc::shell_word(&adapter.command)
    );
    let mut tmux_cmd = Command::new("tmux");
    tmux_cmd.arg("-S").arg(&sb.sock).args(["-f", "/dev/null"]);
    tmux_cmd.args([
        "new-session",
        "-d",
        "-x",
        "200",
        "-y",
        "50",
        "-s",
        "by-hand",
    ]);
    tmux_cmd.arg("-c").arg(&worktree).arg(&command);
    sb.apply_env(&mut tmux_cmd);
    for (key, value) in run.agent_env() {
        tmux_cmd.env(key, value);
    }
    let out = tmux_cmd.output().expect("run tmux");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pane = sb.tmux(["display-message", "-p", "-t", "=by-hand:", "#{pane_id}"]);
    let tmux = Tmux::new(Server::Path(sb.sock.clone()));
    let hand = Hand {
        tmux: &tmux,
        pane: &pane,
        adapter: &adapter,
    };
    let mut samples = Vec::new();
    for i in 0..=tasks {
        let title = format!("Bench task {i}");
        let id = run.p.add(&title, &[]);
        hand.until_ready(&run);
        let message = adapter.phrase_task(&TaskMessage {
            id,
            title,
            body: String::new(),
            board_path: board.clone(),
        });
        let pasted = SystemTime::now();
        tmux.paste_line_if_alive(&pane, &message).expect("paste");
        hand.until_done(&run, id);
        let done = board_time(&run.p.tasks()[&id], "completed");
        if i == 0 {
            continue;
        }
        let requests = run.model.requests();
        let model = model_time(&requests, pasted, done);
        samples.push(Sample {
            to_request: since(first_request(&requests, id), pasted),
            to_end: since(done, pasted).saturating_sub(model),
            model,
        });
    }
    let _ = sb.tmux_ok(["kill-session", "-t", "=by-hand"]);
    Some(samples)
}

/// This process at the agent's keyboard.
struct Hand<'a> {
    tmux: &'a Tmux,
    pane: &'a str,
    adapter: &'a Adapter,
}

impl Hand<'_> {
    fn screen(&self) -> Screen {
        let raw = self.tmux.capture_pane_styled(self.pane).expect("capture");
        self.adapter.classify(&raw)
    }

    /// Answers a routine question on screen at once; true if there was one.
    fn answer(&self, screen: &Screen) -> bool {
        let Screen::Question(q) = screen else {
            return false;
        };
        let reply = self
            .adapter
            .answer_for(q)
            .unwrap_or_else(|| panic!("a question the preset does not answer:\n{q}"));
        match reply {
            Reply::Text(t) => self.tmux.paste_line_if_alive(self.pane, t),
            Reply::Keys(k) => {
                let keys: Vec<&str> = k.iter().map(String::as_str).collect();
                self.tmux.send_keys_if_alive(self.pane, &keys)
            }
        }
        .expect("answer");
        // Once: wait for the question to go before looking again.
        let asked = screen.clone();
        let start = Instant::now();
        while self.screen() == asked && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Until the composer is ready and empty, answering what it asks.
    fn until_ready(&self, run: &Run) {
        run.p.wait("the agent ready for a task", RUN, || {
            let screen = self.screen();
            if self.answer(&screen) {
                return None;
            }
            matches!(
                screen,
                Screen::Ready {
                    composer: batty::agent::Composer::Empty
                }
            )
            .then_some(())
        });
    }

    /// Until task `id` is done on the board, answering what the agent asks meanwhile, and
    /// pressing Enter again (as batty does, 700 ms apart) while the task waits in the composer.
    fn until_done(&self, run: &Run, id: u64) {
        let mut last_enter = Instant::now();
        run.p.wait(&format!("task {id} done by hand"), RUN, || {
            if run.p.status_of(id) == "done" {
                return Some(());
            }
            let screen = self.screen();
            if let Screen::Ready {
                composer: batty::agent::Composer::Text(_),
            } = &screen
                && last_enter.elapsed() >= Duration::from_millis(700)
            {
                self.tmux.send_enter(self.pane).expect("Enter");
                last_enter = Instant::now();
            }
            self.answer(&screen);
            None
        });
    }
}

#[test]
fn model_time_is_the_union_of_open_requests_in_the_window() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let request = |from: u64, to: Option<u64>, api: Api| Recorded {
        at: Instant::now(),
        wall: ms(from),
        answered: to.map(ms),
        method: "POST".into(),
        path: "/v1/messages".into(),
        headers: Vec::new(),
        body: String::new(),
        api,
        turn: Turn::Side,
    };
    let requests = [
        request(0, Some(100), Api::Messages),
        // Overlaps the first: counted once.
        request(50, Some(150), Api::Messages),
        request(300, Some(400), Api::Chat),
        // Not a model request.
        request(500, Some(900), Api::Other),
        // Still open at the window's end.
        request(950, None, Api::Responses),
    ];
    assert_eq!(
        model_time(&requests, ms(0), ms(1000)),
        Duration::from_millis(150 + 100 + 50)
    );
    // Clipped to the window.
    assert_eq!(
        model_time(&requests, ms(120), ms(350)),
        Duration::from_millis(30 + 50)
    );
}
