//! What writing the attempt record costs the supervisor: one `record::append` (serialise,
//! open with O_APPEND, one write, close), against a baseline measured in the same run: the
//! same bytes written to a file kept open (the least any durable line can cost). Also reading
//! and folding the 10,000 lines back, as `batty report` does.
//! Run: `cargo run --release --example bench_record`

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use batty::record::{self, EndOutcome, Ended, Entry, Event, FileChange, History};

const N: usize = 10_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A typical line: an attempt's end with its commit range and a few files.
fn entry(i: usize) -> Entry {
    Entry::now(Event::Ended(Ended {
        task: i as u64 % 70 + 1,
        attempt: (i % 3) as u32 + 1,
        agent: "brave-otter".into(),
        outcome: EndOutcome::Done,
        error: None,
        base: Some("4b825dc642cb6eb9a060e54bf8d69288fbee4904".into()),
        head: Some("d460b74693f1993287aebf142d1b45fde81f26e8".into()),
        files: (0..3)
            .map(|f| FileChange {
                path: format!("src/module_{f}/file.rs"),
                insertions: 12,
                deletions: 3,
                binary: false,
            })
            .collect(),
    }))
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let entries: Vec<Entry> = (0..N).map(entry).collect();

    let base_path = dir.path().join("baseline.jsonl");
    let mut open = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&base_path)
        .expect("open baseline file");
    let lines: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| {
            let mut l = serde_json::to_vec(e).expect("serialise");
            l.push(b'\n');
            l
        })
        .collect();
    let baseline: Vec<Duration> = lines
        .iter()
        .map(|l| {
            let t = Instant::now();
            open.write_all(black_box(l)).expect("write");
            t.elapsed()
        })
        .collect();

    let path = dir.path().join("logs/v1/attempts.jsonl");
    let append: Vec<Duration> = entries
        .iter()
        .map(|e| {
            let t = Instant::now();
            record::append(&path, black_box(e)).expect("append");
            t.elapsed()
        })
        .collect();

    let bytes = std::fs::metadata(&path).expect("record written").len();
    let (base, app) = (median(baseline), median(append));
    println!(
        "write to an open file (baseline): {:.2} µs median over {N}",
        us(base)
    );
    println!(
        "record::append:                   {:.2} µs median over {N} ({:.1}x baseline; {} bytes a line)",
        us(app),
        us(app) / us(base),
        bytes / N as u64
    );

    let reads: Vec<Duration> = (0..10)
        .map(|_| {
            let t = Instant::now();
            let (entries, problems) = record::read(&path);
            assert!(problems.is_empty());
            black_box(History::fold(&entries));
            t.elapsed()
        })
        .collect();
    println!(
        "read + fold of {N} lines:          {:.2} ms median of 10",
        median(reads).as_secs_f64() * 1e3
    );
    support::Row {
        bench: "record",
        figure: "one record::append of a line".into(),
        median: us(app),
        unit: "µs",
        baseline: Some(("write to an open file", us(base))),
        ratio: None,
        goal: "-",
        ok: None,
    }
    .emit();
}
