//! Board benchmark: `cargo run --release --example bench_board [-- OPTIONS]`.
//!
//! 1. The compare-and-swap window: 1,000 `board::update` calls in the library, each timed from
//!    the end of its last check that the file is unchanged to the end of the swap (and, with
//!    `renameat2(RENAME_EXCHANGE)`, from the swap to the check after it), with the exchange and
//!    with a plain rename. Median and p99 in µs.
//! 2. A board-size sweep (1k, 10k, 100k tasks, kanban-md files in a temp folder): the
//!    `batty task add`, `task show` and `task move` processes, each as a ratio against the same
//!    command on the smallest board of the same run, and `Board::load` and the
//!    `batty task list --json` process against `cat` of the same files
//!    (`find tasks -name '*.md' -exec cat {} + > /dev/null`). Medians.
//!
//! Options: `--sizes 1000,10000,100000`, `--runs N` (default 15), `--batty PATH` (the binary
//! to time; default `target/release/batty` next to this example, e.g. to compare an older
//! build), `--window-only`.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batty::board::{self, Board};

struct Options {
    sizes: Vec<usize>,
    runs: usize,
    batty: Option<PathBuf>,
    window_only: bool,
}

fn options() -> Options {
    let mut o = Options {
        sizes: vec![1_000, 10_000, 100_000],
        runs: 15,
        batty: None,
        window_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => {
                o.sizes = args
                    .next()
                    .expect("--sizes needs a list")
                    .split(',')
                    .map(|s| s.parse().expect("a size is a number"))
                    .collect()
            }
            "--runs" => o.runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--batty" => o.batty = args.next().map(PathBuf::from),
            "--window-only" => o.window_only = true,
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn main() {
    let o = options();
    window();
    if o.window_only {
        return;
    }
    let batty = o.batty.clone().or_else(|| {
        let exe = std::env::current_exe().expect("own path");
        exe.parent()
            .and_then(Path::parent)
            .map(|release| release.join("batty"))
            .filter(|p| p.exists())
    });
    let Some(batty) = batty else {
        println!("(build `cargo build --release` first to time the `batty task` processes)");
        return;
    };
    sweep(&o, &batty);
}

/// The compare-and-swap window of `board::update`, with the exchange and with a plain rename.
fn window() {
    const CHANGES: usize = 1_000;
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path().join("board");
    generate(&dir, 10);
    println!("compare-and-swap window, {CHANGES} changes of one task (µs):");
    let mut window_us = 0.0;
    for plain in [false, true] {
        board::force_plain_rename(plain);
        let mut check_to_swap = Vec::with_capacity(CHANGES);
        let mut swap_to_recheck = Vec::with_capacity(CHANGES);
        let mut exchanged = true;
        for n in 0..CHANGES {
            let priority = ["low", "high"][n % 2];
            board::update(&dir, 5, board::now(), |t, _| {
                t.priority = priority.to_owned();
                Ok(())
            })
            .expect("change the task");
            let t = board::last_commit();
            check_to_swap.push(t.check_to_swap);
            swap_to_recheck.push(t.swap_to_recheck);
            exchanged &= t.exchanged;
        }
        if !plain {
            window_us = us(percentile(&mut check_to_swap, 50));
        }
        let how = if plain {
            "plain rename:           "
        } else if exchanged {
            "renameat2 exchange:     "
        } else {
            "exchange (unsupported, fell back to rename):"
        };
        println!(
            "  {how} last check -> swap done: median {:>6.1}, p99 {:>6.1};  swap -> check after it: median {:>6.1}, p99 {:>6.1}",
            us(percentile(&mut check_to_swap, 50)),
            us(percentile(&mut check_to_swap, 99)),
            us(percentile(&mut swap_to_recheck, 50)),
            us(percentile(&mut swap_to_recheck, 99)),
        );
    }
    board::force_plain_rename(false);
    support::Row {
        bench: "board",
        figure: "compare-and-swap window (last check -> swap), renameat2".into(),
        median: window_us,
        unit: "µs",
        baseline: None,
        ratio: None,
        goal: "-",
        ok: None,
    }
    .emit();
    println!(
        "  (with the exchange, a save landing in either span is caught by the check after the swap and kept;\n   with a plain rename, one landing between the check and the swap is overwritten)"
    );
}

fn sweep(o: &Options, batty: &Path) {
    println!(
        "\nboard-size sweep with {} (medians of {} runs, sizes interleaved):",
        batty.display(),
        o.runs
    );
    let boards: Vec<(usize, tempfile::TempDir)> = o
        .sizes
        .iter()
        .map(|&size| {
            let tmp = tempfile::tempdir().expect("create a temp dir");
            generate(&tmp.path().join("board"), size);
            (size, tmp)
        })
        .collect();
    // Time boards at rest, not the kernel still writing the generated files back (which
    // slows every fsync batty's writes make).
    Command::new("sync").status().expect("run sync");
    let dirs: Vec<PathBuf> = boards.iter().map(|(_, t)| t.path().join("board")).collect();
    let run = |dir: &Path, args: &[&str]| {
        let status = Command::new(batty)
            .args(["task"])
            .args(args)
            .arg("--board")
            .arg(dir)
            .stdout(Stdio::null())
            .status()
            .expect("run batty");
        assert!(status.success(), "batty task {args:?}");
    };
    let middle = |i: usize| (o.sizes[i] / 2).to_string();
    let cat = interleaved(o.runs, &dirs, |_, dir| {
        let status = Command::new("sh")
            .arg("-c")
            .arg("find . -name '*.md' -exec cat {} + > /dev/null")
            .current_dir(dir.join("tasks"))
            .status()
            .expect("run find/cat");
        assert!(status.success());
    });
    // In this process, one board after another: glibc's per-thread arenas make a small load
    // right after a large one's memory was freed several times slower, which says nothing
    // about a `batty` process.
    let load: Vec<Duration> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            interleaved(o.runs, std::slice::from_ref(dir), |_, dir| {
                let board = Board::load(dir).expect("load the board");
                assert_eq!(board.tasks().len(), o.sizes[i]);
            })[0]
        })
        .collect();
    let list = interleaved(o.runs, &dirs, |_, dir| run(dir, &["list", "--json"]));
    let show = interleaved(o.runs, &dirs, |i, dir| run(dir, &["show", &middle(i)]));
    let mut n = 0;
    let mv = interleaved(o.runs, &dirs, |i, dir| {
        n += 1;
        run(
            dir,
            &["move", &middle(i), ["review", "todo"][(n / dirs.len()) % 2]],
        );
    });
    let add = interleaved(o.runs, &dirs, |_, dir| {
        run(dir, &["add", "A new task for the benchmark"])
    });
    println!(
        "{:>8}  {:>22}  {:>22}  {:>22}  {:>22}  {:>22}  {:>10}",
        "tasks",
        "task add (x smallest)",
        "task show (x smallest)",
        "task move (x smallest)",
        "Board::load (x cat)",
        "task list --json (x cat)",
        "cat"
    );
    let last = o.sizes.len() - 1;
    let largest = o.sizes[last];
    for (what, t) in [("task add", &add), ("task show", &show), ("task move", &mv)] {
        let r = ratio(t[last], t[0]);
        support::Row {
            bench: "board",
            figure: format!("`batty {what}` on a {largest}-task board"),
            median: ms(t[last]),
            unit: "ms",
            baseline: Some(("the same on the smallest board", ms(t[0]))),
            ratio: Some(r),
            goal: "<= 2x",
            ok: Some(r <= 2.0),
        }
        .emit();
    }
    for (what, t) in [("Board::load", &load), ("`batty task list --json`", &list)] {
        let r = ratio(t[last], cat[last]);
        support::Row {
            bench: "board",
            figure: format!("{what} of a {largest}-task board"),
            median: ms(t[last]),
            unit: "ms",
            baseline: Some(("cat of its files", ms(cat[last]))),
            ratio: Some(r),
            goal: "<= 2x",
            ok: Some(r <= 2.0),
        }
        .emit();
    }
    for (i, size) in o.sizes.iter().enumerate() {
        println!(
            "{:>8}  {:>10.2} ms ({:>5.2}x)  {:>10.2} ms ({:>5.2}x)  {:>10.2} ms ({:>5.2}x)  {:>10.2} ms ({:>5.2}x)  {:>10.2} ms ({:>5.2}x)  {:>7.2} ms",
            size,
            ms(add[i]),
            ratio(add[i], add[0]),
            ms(show[i]),
            ratio(show[i], show[0]),
            ms(mv[i]),
            ratio(mv[i], mv[0]),
            ms(load[i]),
            ratio(load[i], cat[i]),
            ms(list[i]),
            ratio(list[i], cat[i]),
            ms(cat[i]),
        );
    }
}

/// The median time of `f` on each board, the boards taken in turn each round so that a change
/// in the machine's load falls on all of them alike. One warm-up round first (page cache, and
/// batty's id index).
fn interleaved(runs: usize, dirs: &[PathBuf], mut f: impl FnMut(usize, &Path)) -> Vec<Duration> {
    for (i, dir) in dirs.iter().enumerate() {
        f(i, dir);
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); dirs.len()];
    for _ in 0..runs {
        for (i, dir) in dirs.iter().enumerate() {
            let start = Instant::now();
            f(i, dir);
            times[i].push(start.elapsed());
        }
    }
    times.iter_mut().map(|t| percentile(t, 50)).collect()
}

fn percentile(times: &mut [Duration], p: usize) -> Duration {
    times.sort();
    times[(times.len() * p / 100).min(times.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// A board like kanban-md writes it: default v11 config, tasks with typical fields and bodies.
fn generate(dir: &Path, count: usize) {
    let tasks = dir.join("tasks");
    std::fs::create_dir_all(&tasks).expect("create the board");
    let config = batty::board::default_config_yml("bench")
        .replace("next_id: 1\n", &format!("next_id: {}\n", count + 1));
    std::fs::write(dir.join("config.yml"), config).expect("write config.yml");
    let statuses = ["backlog", "todo", "in-progress", "review", "done"];
    let priorities = ["low", "medium", "high", "critical"];
    for id in 1..=count {
        let title = format!("Task number {id}: improve the widget pipeline");
        let mut text = format!(
            "---\nid: {id}\ntitle: '{title}'\nstatus: {}\npriority: {}\n\
             created: 2026-02-01T12:00:00.123456789+02:00\nupdated: 2026-02-02T08:30:00Z\n\
             tags:\n    - backend\n    - perf\n",
            statuses[id % statuses.len()],
            priorities[id % priorities.len()],
        );
        if id > 1 {
            text.push_str(&format!("depends_on:\n    - {}\n", id - 1));
        }
        text.push_str("class: standard\n---\n\nA body paragraph describing the work in a sentence or two,\nwith a second line.\n");
        std::fs::write(tasks.join(batty::board::file_name(id as u64, &title)), text)
            .expect("write a task");
    }
}
