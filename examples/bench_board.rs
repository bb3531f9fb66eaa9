//! Board load benchmark: `cargo run --release --example bench_board [-- TASKS]`.
//!
//! Generates a kanban-md board of 10,000 tasks (or TASKS) in a temp folder, then prints the
//! median wall time of:
//! - `cat` reading every task file (`find tasks -name '*.md' -exec cat {} + > /dev/null`),
//! - `Board::load` plus kanban-md JSON for every task (what `batty task list --json` does),
//! - the `batty task list --json > /dev/null` process, when `target/release/batty` is built,
//!
//! and the ratios to `cat`. Goal: at most 3x `cat` and under 100 ms.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batty::board::{Board, TaskJson};

const RUNS: usize = 15;

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path().join("board");
    generate(&dir, count);
    println!("board: {count} tasks in {}", dir.display());

    let tasks_dir = dir.join("tasks");
    let cat = median(|| {
        let status = Command::new("sh")
            .arg("-c")
            .arg("find . -name '*.md' -exec cat {} + > /dev/null")
            .current_dir(&tasks_dir)
            .status()
            .expect("run find/cat");
        assert!(status.success());
    });
    let load = median(|| {
        let board = Board::load(&dir).expect("load the board");
        assert_eq!(board.tasks().len(), count);
        let json: Vec<TaskJson> = board.tasks().iter().map(TaskJson::new).collect();
        serde_json::to_writer_pretty(std::io::sink(), &json).expect("write JSON");
    });
    let load_only = median(|| {
        let board = Board::load(&dir).expect("load the board");
        assert_eq!(board.tasks().len(), count);
    });
    println!("cat all task files:            {:>8.2} ms", ms(cat));
    println!(
        "Board::load only (library):    {:>8.2} ms  ({:.2}x cat)",
        ms(load_only),
        ratio(load_only, cat)
    );
    println!(
        "Board::load + JSON (library):  {:>8.2} ms  ({:.2}x cat)",
        ms(load),
        ratio(load, cat)
    );

    let exe = std::env::current_exe().expect("own path");
    let batty = exe
        .parent()
        .and_then(Path::parent)
        .map(|release| release.join("batty"))
        .filter(|p| p.exists());
    match batty {
        Some(batty) => {
            let process = median(|| {
                let status = Command::new(&batty)
                    .args(["task", "list", "--json", "--board"])
                    .arg(&dir)
                    .stdout(Stdio::null())
                    .status()
                    .expect("run batty");
                assert!(status.success());
            });
            println!(
                "batty task list --json:        {:>8.2} ms  ({:.2}x cat)",
                ms(process),
                ratio(process, cat)
            );
        }
        None => println!(
            "(build `cargo build --release` first to also time the `batty task list --json` process)"
        ),
    }
}

fn median(mut f: impl FnMut()) -> Duration {
    f(); // warm the page cache
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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
