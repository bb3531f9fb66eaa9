//! Micro benchmark for the supervisor's per-byte work: ANSI stripping of pty output, the log
//! tail (read + strip + split lines) and screen classification.
//! Run: `cargo run --release --example strip_bench`

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use batty::watch::{LogTail, Stripper};

/// About 1 MiB of output shaped like a TUI agent's: colours, cursor moves, titles, spinners.
fn sample() -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0u64;
    while out.len() < 1 << 20 {
        out.extend_from_slice(b"\x1b[2K\x1b[1G\x1b[38;5;208m\xe2\xa0\x8b\x1b[0m Working (12s \xe2\x80\xa2 esc to interrupt)\r");
        out.extend_from_slice(
            format!(
                "\x1b[1;32m+\x1b[0m line {i} of the diff with some code: let x = foo(bar, baz);\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(
            b"\x1b]0;claude: working\x07\x1b[?25l\x1b[3A\x1b[5C plain text after a cursor move\r\n",
        );
        out.extend_from_slice("│ > ünïcödé input box │\r\n".as_bytes());
        i += 1;
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let input = sample();
    let mb = input.len() as f64 / (1 << 20) as f64;
    let mut out = Vec::with_capacity(input.len());

    let runs: Vec<Duration> = (0..50)
        .map(|_| {
            out.clear();
            let t = Instant::now();
            let mut s = Stripper::new();
            for chunk in input.chunks(64 * 1024) {
                s.feed(black_box(chunk), &mut out);
            }
            black_box(&out);
            t.elapsed()
        })
        .collect();
    let strip = median(runs);
    println!(
        "strip:  {:.2} ms per MiB (median of 50, {:.2} MiB in 64 KiB chunks, {} bytes out)",
        strip.as_secs_f64() * 1e3 / mb,
        mb,
        out.len()
    );
    // The same chunks copied unchanged: the least any pass over the bytes costs.
    let copy = median(
        (0..50)
            .map(|_| {
                out.clear();
                let t = Instant::now();
                for chunk in input.chunks(64 * 1024) {
                    out.extend_from_slice(black_box(chunk));
                }
                black_box(&out);
                t.elapsed()
            })
            .collect(),
    );
    let per_mib = |d: Duration| d.as_secs_f64() * 1e3 / mb;
    support::Row {
        bench: "strip",
        figure: "ANSI stripping of TUI output".into(),
        median: per_mib(strip),
        unit: "ms/MiB",
        baseline: Some(("copying the bytes", per_mib(copy))),
        ratio: None,
        goal: "-",
        ok: None,
    }
    .emit();

    let dir = std::env::temp_dir().join(format!("batty-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("a.pty.log");
    std::fs::write(&log, &input).unwrap();
    let runs: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let mut tail = LogTail::new(&log, 0);
            let mut lines = 0;
            loop {
                let r = tail.read().unwrap();
                lines += r.text.len();
                if !r.more {
                    break;
                }
            }
            black_box(lines);
            t.elapsed()
        })
        .collect();
    let tail = median(runs);
    println!(
        "tail:   {:.2} ms per MiB (read + strip + split into lines)",
        tail.as_secs_f64() * 1e3 / mb
    );
    support::Row {
        bench: "strip",
        figure: "pty log tail: read + strip + split into lines".into(),
        median: per_mib(tail),
        unit: "ms/MiB",
        baseline: Some(("copying the bytes", per_mib(copy))),
        ratio: None,
        goal: "-",
        ok: None,
    }
    .emit();
    std::fs::remove_dir_all(&dir).ok();

    let screen = {
        let mut s = String::new();
        for i in 0..48 {
            s.push_str(&format!("● line {i} of an answer with some words in it\n"));
        }
        s.push_str("────────────────────────────────\n> \n────────────────────────────────\n  ? for shortcuts\n");
        s
    };
    let claude = batty::agent::builtin("claude", Path::new("batty")).unwrap();
    let runs: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            black_box(claude.classify(black_box(&screen)));
            t.elapsed()
        })
        .collect();
    let classify = median(runs);
    println!(
        "classify: {:.1} µs per 52-line claude screen (median of 200)",
        classify.as_secs_f64() * 1e6
    );
    support::Row {
        bench: "strip",
        figure: "classify a 52-line claude screen".into(),
        median: classify.as_secs_f64() * 1e6,
        unit: "µs",
        baseline: None,
        ratio: None,
        goal: "-",
        ok: None,
    }
    .emit();
}
